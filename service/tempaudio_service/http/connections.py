"""The HTTP/1.1 connection layer under uvicorn: h11 with a deadline and a size cap for request
headers, JSON for the errors it answers itself, and a way for a response to cut its stream.

uvicorn times out idle keep-alive connections but not a connection that has not sent its
first request, nor one trickling its headers: with ``limit_concurrency`` such sockets take
the places of real clients (and of the probes) for as long as their peers like. Here:

- a request's headers must be complete within ``header_timeout_seconds`` of its first byte
  (of the connection, for its first request); otherwise the connection is closed, with a
  ``408`` when part of a request had arrived;
- headers larger than ``max_header_bytes`` get ``431`` and the connection is closed;
- h11 refuses what HTTP/1.1 forbids or tempaudio does not take (a transfer coding other than
  ``chunked``, bad framing) with a JSON ``400``, not uvicorn's plain text;
- h11 frames a streamed response to an HTTP/1.0 client by closing the connection, never
  with chunks (RFC 9112 §7.1);
- the ``tempaudio.abort`` extension lets a response end its connection at once (a reset),
  so a stream that fails or whose client stalls is cut without uvicorn logging an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)
_HEAD_END = re.compile(rb"\n\r?\n")
ABORT_EXTENSION = "tempaudio.abort"
DEFAULT_HEADER_TIMEOUT_SECONDS = 10
DEFAULT_MAX_HEADER_BYTES = 32 * 1024


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response that closes its connection (pure)."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        "x-content-type-options: nosniff\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def server_options(
    *,
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_connections: int | None = None,
) -> dict[str, Any]:
    """``uvicorn.Config`` keywords for this connection layer (the service and its tests)."""
    return {
        "http": guarded_protocol(header_timeout_seconds, max_header_bytes),
        # h11's own cap answers a plain 400; ours (431) comes first.
        "h11_max_incomplete_event_size": max_header_bytes + 4,
        "limit_concurrency": max_connections,
    }


def abort_of(scope: Any) -> Callable[[], None] | None:
    """The connection's abort, where the server offers it (not under TestClient)."""
    extensions = scope.get("extensions") or {}
    abort = extensions.get(ABORT_EXTENSION)
    return abort if callable(abort) else None


def guarded_protocol(
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> type[H11Protocol]:
    """uvicorn's ``http=`` class with these limits."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.header_timeout_seconds = header_timeout_seconds
    Guarded.max_header_bytes = max_header_bytes
    return Guarded


class GuardedH11Protocol(H11Protocol):
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._announced: object = None  # the cycle whose scope got the abort extension

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Only a request's head is capped: once an answer has gone out early (415, 413, 401)
        # the bytes still arriving are the rest of its body, and the connection closes.
        if self.conn.their_state is h11.IDLE and self._headers_too_large(data):
            self._refuse(
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                f"the request headers exceed {self.max_header_bytes} bytes",
            )
            return
        super().data_received(data)

    def _headers_too_large(self, data: bytes) -> bool:
        """More than the cap has arrived, and the headers have not ended within it."""
        buffered = self.conn.trailing_data[0]
        if len(buffered) + len(data) <= self.max_header_bytes:
            return False
        head = (bytes(buffered) + data[: self.max_header_bytes + 4])[: self.max_header_bytes + 4]
        return _HEAD_END.search(head) is None  # h11 ends a head at a blank line, CRLF or LF

    def handle_events(self) -> None:
        super().handle_events()
        if self._in_request():
            self._disarm_header_deadline()
            if self.cycle is not self._announced:
                self._announced = self.cycle
                # The request's task is created but has not run yet: it sees this.
                extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
                extensions[ABORT_EXTENSION] = self._abort
        elif self.conn.trailing_data[0] and not self.transport.is_closing():
            self._arm_header_deadline()  # part of the next request is here

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before its body was read (415, 413, 401, a probe with a body): the
            # rest of it would hold the connection with nothing to time it out, so it
            # closes once the answer is out, as nginx and most servers do.
            self.server_state.total_requests += 1
            self.transport.close()
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "Bad Request", "bad_request", "invalid HTTP request: " + msg.lower())

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(
                self.header_timeout_seconds, self._headers_late
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._in_request() or self.transport.is_closing():
            return
        if self.conn.trailing_data[0]:
            logger.info("closing a connection whose request headers did not arrive in time")
            self._refuse(
                408,
                "Request Timeout",
                "header_timeout",
                f"the request headers did not arrive within {self.header_timeout_seconds:g} s",
            )
        else:
            self.transport.close()

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            self.transport.write(error_bytes(status, reason, code, message))
            self.transport.close()
        if self.conn.our_state is not h11.ERROR:
            self.conn.send_failed()

    def _abort(self) -> None:
        """End the connection now, unfinished: the client sees a reset, never a complete
        body (a close-delimited HTTP/1.0 body would look complete after a clean close)."""
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.abort()
