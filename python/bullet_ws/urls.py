"""WebSocket URL resolution (PROTOCOL.md §1.1, §1.2)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["MAINNET_WS_URL", "TESTNET_WS_URL", "resolve_url"]

MAINNET_WS_URL = "wss://tradingapi.bullet.xyz/ws"
TESTNET_WS_URL = "wss://tradingapi.testnet.bullet.xyz/ws"

_NETWORKS = {"mainnet": MAINNET_WS_URL, "testnet": TESTNET_WS_URL}
# The SDK derives the WebSocket URL from a REST base: the scheme maps, the path is dropped.
_REST_TO_WS = {"https": "wss", "http": "ws"}


def resolve_url(url: str) -> str:
    """Return the WebSocket URL for `url`.

    "mainnet"/"testnet" (any case) name the networks; ws:// and wss:// URLs are used as given
    (the scheme in any case, as RFC 3986 says, and returned in lower case); an http(s):// REST
    base becomes ws(s)://<authority>/ws exactly as the SDK derives it. Anything else raises
    ValueError (also port 0, a fragment, control characters); a non-str raises TypeError.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    network = _NETWORKS.get(url.lower())
    if network is not None:
        return network
    try:
        parts = urlsplit(url)
        # Reading .port validates it (a non-numeric or out-of-range port raises ValueError).
        parts.port  # noqa: B018
    except ValueError as exc:
        raise ValueError(f"url is malformed: {url!r} ({exc})") from None
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise ValueError(f"url has no valid host: {url!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError(f"url must not contain control characters: {url!r}")
    if parts.port == 0:
        raise ValueError(f"url port must be in 1..65535, got 0: {url!r}")
    # urlsplit lowercases the scheme: schemes are case-insensitive (RFC 3986 §3.1).
    if parts.scheme in ("ws", "wss"):
        if parts.fragment or url.endswith("#"):
            raise ValueError(f"url must not have a fragment (RFC 6455 §3): {url!r}")
        return parts.scheme + url[len(parts.scheme) :]
    ws_scheme = _REST_TO_WS.get(parts.scheme)
    if ws_scheme is None:
        raise ValueError(
            "url must be 'mainnet', 'testnet', a ws:// or wss:// URL or an http(s):// REST base,"
            f" got {url!r}"
        )
    return f"{ws_scheme}://{parts.netloc}/ws"
