"""Audio streamed as it is synthesized: chunked HTTP, one sentence per chunk.

The stream is admitted like any synthesis (503 when the queue is full) and holds its worker
until it ends. Everything that can refuse the request (validation, admission, the first
sentence's refusals) happens before the status line, so errors are still JSON. After that:
- a client that disconnects, or stops reading for the send timeout, ends the stream; its
  worker is free once the sentence in progress is done, and nothing is stored;
- a stream that is also kept stores its object and item after the last sentence and
  before the response's last chunk: if storing fails, the connection is cut, so the client
  sees a broken stream, never a complete one whose URL does not work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .pool import SynthesisPool
from .rendering import RenderStream

logger = logging.getLogger(__name__)
Step = Callable[[Callable[[], Any]], Awaitable[Any]]
# Called with the whole stream, once it is complete and before its end is sent.
Keep = Callable[[RenderStream], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected or stopped reading."""


class AudioStream(Response):
    """Starts a RenderStream on the pool when called; see the module docstring."""

    def __init__(
        self,
        *,
        pool: SynthesisPool,
        guard: Callable[[], AbstractAsyncContextManager[None]],
        open_stream: Callable[[], RenderStream],
        media_type: str,
        headers: Mapping[str, str],
        send_timeout_seconds: float,
        keep: Keep | None = None,
        on_done: Callable[[RenderStream, str], None] | None = None,
    ) -> None:
        super().__init__(media_type=media_type, headers=dict(headers))
        # Chunked: no Content-Length (Response would say 0 for an empty body).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._pool = pool
        self._guard = guard
        self._open = open_stream
        self._keep = keep
        self._send_timeout = send_timeout_seconds
        self._on_done = on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._guard(), self._pool.stream() as step:
            stream: RenderStream = await step(self._open)
            outcome = "refused"
            try:
                # Refusals of the text come from here, before the status line.
                first = await step(stream.step)
                outcome = "cut"
                await self._send_all(scope, receive, send, step, stream, first)
                outcome = "complete"
            except ClientGone:
                outcome = "client_gone"
                logger.info("stream ended: the client went away or stopped reading")
            finally:
                stream.close()
                if self._on_done is not None:
                    self._on_done(stream, outcome)

    async def _send_all(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        step: Step,
        stream: RenderStream,
        first: bytes | None,
    ) -> None:
        async with anyio.create_task_group() as group:
            gone = anyio.Event()

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self._send(send, self._start_message())
                chunk = first
                while chunk is not None:
                    if chunk:
                        await self._send(send, _body(chunk, more=True))
                    chunk = await step(stream.step)
                if self._keep is not None:
                    with anyio.CancelScope(shield=True):
                        await self._keep(stream)
                await self._send(send, _body(b"", more=False))
            finally:
                group.cancel_scope.cancel()
        if gone.is_set():
            raise ClientGone

    def _start_message(self) -> dict[str, Any]:
        return {"type": "http.response.start", "status": 200, "headers": self.raw_headers}

    async def _send(self, send: Send, message: dict[str, Any]) -> None:
        with anyio.move_on_after(self._send_timeout) as waited:
            try:
                await send(message)
            except OSError as error:  # uvicorn raises this once the peer is gone
                raise ClientGone from error
        if waited.cancelled_caught:
            raise ClientGone


def _body(chunk: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": chunk, "more_body": more}
