"""The machinery of the pure backend's message classes (the classes are generated from the spec
into `messages.py`).

Each class is slotted and immutable. Its slots live on a private, mutable twin class
(`_<Name>Slots`); the parser fills a twin and then switches its `__class__` to the public,
frozen class. That costs one assignment per field plus one class switch, which is far cheaper than
`object.__setattr__` per field, and it keeps plain slot reads on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

__all__ = ["SUCCESS_STATUSES", "Message", "Record", "_message_class"]

MessageT = TypeVar("MessageT", bound="_Frozen")

# TxStatus::is_success of the SDK.
SUCCESS_STATUSES = frozenset({"processed", "published", "submitted", "finalized"})


class _Frozen:
    """Slotted, immutable, compared and shown field by field."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The public constructor (tests, user code); the parser builds instances faster.
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, got {len(args)}")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            if key in values:
                raise TypeError(f"{type(self).__name__} got field {key!r} twice")
            values[key] = value
        missing = [f for f in fields if f not in values]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        for key in fields:
            object.__setattr__(self, key, values[key])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable, like the pyclasses

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"


class Message(_Frozen):
    """Base class of every server message. `request_id` is the echoed id where the message
    type carries one (acks, pongs, errors, order results), else None."""

    __slots__ = ()
    is_error: ClassVar[bool] = False

    @property
    def request_id(self) -> int | None:
        return None


class Record(_Frozen):
    """Base class of the records inside messages (`MarketStatusEntry`, `DegenPosition`)."""

    __slots__ = ()


def _refuse_setattr(self: _Frozen, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


def _refuse_delattr(self: _Frozen, name: str) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


@property  # type: ignore[misc]
def _request_id(self: Any) -> int | None:
    id_: int | None = self.id
    return id_


def _message_class(fields: str) -> Callable[[type[MessageT]], type[MessageT]]:
    """Give a public message class its fields: slots on a mutable twin base, match args, order.

    Used as `@_message_class("a b c") class Name(Message): ...`; the decorated body may only add
    properties and class constants (its own `__slots__` must be empty).
    """
    names = tuple(fields.split())

    def decorate(cls: type[MessageT]) -> type[MessageT]:
        # The twin keeps object's plain attribute writes (the fast path for the parser).
        slots_base = type(f"_{cls.__name__}Slots", cls.__bases__, {"__slots__": names})
        namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
        namespace.update(
            __slots__=(),
            _fields=names,
            __match_args__=names,
            __setattr__=_refuse_setattr,
            __delattr__=_refuse_delattr,
        )
        if "id" in names and issubclass(cls, Message):
            namespace["request_id"] = _request_id
        public = type(cls.__name__, (slots_base,), namespace)
        public.__module__ = cls.__module__
        public.__qualname__ = cls.__qualname__
        public._builder = slots_base  # type: ignore[attr-defined]
        return public

    return decorate
