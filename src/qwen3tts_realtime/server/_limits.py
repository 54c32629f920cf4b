"""The server's guards: the API key, body-size limits and admission (active + queued streams, then 429).

The API key comes in `Authorization: Bearer <key>` (or bare); a websocket may send it instead as a
subprotocol entry `bearer.<key>` beside `qwen3tts` (browsers cannot set headers on a websocket), and the
server then selects `qwen3tts`. It is never read from the URL (URLs end up in logs and histories) and
never logged.

Admission counts streams from the moment a request is accepted until its response or websocket stream ends.
The engine runs `max_streams` of them at once and queues the rest in order (it never drops one); the server
admits at most `max_streams + max_queue`, and answers 429 with Retry-After beyond that. Everything here runs
on the event loop's thread, so the counter needs no lock.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping, Sequence

from ._requests import ApiError

__all__ = ["Admission", "check_api_key", "read_limited", "SUBPROTOCOL", "KEY_SUBPROTOCOL_PREFIX"]

RETRY_AFTER_S = 1
SUBPROTOCOL = "qwen3tts"  # the websocket subprotocol the server selects
KEY_SUBPROTOCOL_PREFIX = "bearer."  # a subprotocol entry carrying the API key


class Admission:
    """At most `max_streams + max_queue` streams admitted at once."""

    def __init__(self, max_streams: int, max_queue: int) -> None:
        self.max_streams, self.max_queue = max_streams, max_queue
        self.admitted = 0

    @property
    def limit(self) -> int:
        return self.max_streams + self.max_queue

    def enter(self) -> None:
        """Admit one stream, or raise the 429."""
        if self.admitted >= self.limit:
            raise ApiError(
                429,
                f"the server is at capacity: {self.max_streams} streams generating and {self.max_queue} "
                f"waiting (--max-streams, --max-queue); retry in {RETRY_AFTER_S} s",
                code="server_busy", headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.admitted += 1

    def leave(self) -> None:
        assert self.admitted > 0, "Admission.leave() without enter()"
        self.admitted -= 1


def check_api_key(
    headers: Mapping[str, str], api_key: str | None, subprotocols: Sequence[str] | None = None
) -> None:
    """Pass when no key is configured or the given key matches (in constant time). The key comes from the
    `Authorization` header, sent as `Bearer <key>` or bare (as some clients send it), else (a websocket
    handshake, whose offered `subprotocols` are given) from an entry `bearer.<key>`."""
    if api_key is None:
        return
    header = headers.get("authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    given = rest if scheme.lower() == "bearer" else header
    if not given.strip():
        given = next((p[len(KEY_SUBPROTOCOL_PREFIX):] for p in subprotocols or ()
                      if p.lower().startswith(KEY_SUBPROTOCOL_PREFIX)), "")
    if not given.strip():
        how = "'Authorization: Bearer <key>'" + (
            "" if subprotocols is None else f", or offer the subprotocols '{SUBPROTOCOL}' and "
            f"'{KEY_SUBPROTOCOL_PREFIX}<key>'")
        raise ApiError(401, f"missing API key: send {how}", code="missing_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), api_key.encode()):
        raise ApiError(401, "wrong API key", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def read_limited(
    headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int, what: str, setting: str
) -> bytes:
    """A request body of at most `limit` bytes (checked against Content-Length first, then as it arrives)."""
    too_large = ApiError(413, f"{what} larger than {limit} bytes ({setting})", code="payload_too_large")
    declared = headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and _exceeds(declared, limit):
        raise too_large
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _exceeds(digits: str, limit: int) -> bool:
    """`int(digits) > limit`, without converting thousands of digits (which Python refuses)."""
    significant = digits.lstrip("0")
    return len(significant) > len(str(limit)) or int(significant or "0") > limit
