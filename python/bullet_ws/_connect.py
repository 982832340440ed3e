"""`Connect`: what each backend's `connect()` returns (awaitable and async context manager)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from bullet_ws.config import ManagedWsConfig
from bullet_ws.urls import resolve_url

__all__ = ["Closable", "Connect", "resolve_connect_args"]


class Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


WsT = TypeVar("WsT", bound=Closable)
Opener = Callable[[str, ManagedWsConfig], Awaitable[WsT]]


def resolve_connect_args(
    url: object, config: object, overrides: Mapping[str, Any]
) -> tuple[str, ManagedWsConfig]:
    """Resolve `connect()`'s arguments at call time, so bad input raises before any await."""
    ws_url = resolve_url(url)  # type: ignore[arg-type]  # resolve_url type-checks it
    if config is None:
        base = ManagedWsConfig()
    elif isinstance(config, ManagedWsConfig):
        base = config
    else:
        raise TypeError(f"config must be a ManagedWsConfig or None, got {type(config).__name__}")
    return ws_url, base.with_overrides(**overrides)


class Connect(Generic[WsT]):
    """The result of `connect()`: `await` it for the socket, or use it as `async with`.

    Each `await` opens a new socket. As a context manager it opens one on entry and awaits
    `ws.close()` on exit.
    """

    __slots__ = ("_opener", "_ws", "config", "url")

    def __init__(self, opener: Opener[WsT], ws_url: str, config: ManagedWsConfig) -> None:
        self._opener = opener
        self.url = ws_url
        self.config = config
        self._ws: WsT | None = None

    def __repr__(self) -> str:
        return f"<Connect url={self.url!r}>"

    def __await__(self) -> Generator[Any, None, WsT]:
        return self._opener(self.url, self.config).__await__()

    async def __aenter__(self) -> WsT:
        self._ws = await self._opener(self.url, self.config)
        return self._ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
