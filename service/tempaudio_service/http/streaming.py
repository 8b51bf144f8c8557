"""Audio streamed as it is synthesized: chunked HTTP, one sentence per chunk.

The stream is admitted like any synthesis (503 when the queue is full) and holds its worker
until it ends. Everything that can refuse the request (validation, admission, the first
sentence's refusals) happens before the status line, so errors are still JSON. After that:
- a client that disconnects, or stops reading for the send timeout, ends the stream; its
  worker is free once the sentence in progress is done, and nothing is stored;
- a stream that is also kept stores its object and item after the last sentence and
  before the response's last chunk: if storing fails, the connection is cut (reset, so an
  HTTP/1.0 client's close-delimited body does not look whole either), so the client sees a
  broken stream, never a complete one whose URL does not work;
- a stream whose format can say why it ends (OpenAI's events: ``error_event``) ends with
  that instead of a reset, whatever cut it (storing, the audio cap, the drain): the client
  reads the error, and the stream has no ``speech.audio.done``.

Each stream ends with one ``StreamEnd``, which the metrics and the audit line report: a
stream read to its end is ``complete``; the others say what happened, without error logs
for what a client did.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tempaudio_service.audio.pool import SynthesisPool
from tempaudio_service.audio.rendering import RenderStream
from tempaudio_service.core.errors import ShuttingDown, TempAudioError
from tempaudio_service.http.connections import abort_of

logger = logging.getLogger(__name__)
Step = Callable[[Callable[[], Any]], Awaitable[Any]]
# Called with the whole stream, once it is complete and before its end is sent.
Keep = Callable[[RenderStream], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected or stopped reading."""


@dataclass(frozen=True)
class StreamEnd:
    """How a stream ended: ``complete`` (read to its end), ``client_gone`` (disconnected or
    stopped reading), ``cut`` (the service could not finish it: ``error`` says why) or
    ``refused`` (before the status line: an error answer). ``stored``: its pair was kept."""

    outcome: str
    stored: bool = False
    error: TempAudioError | None = None


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
        on_done: Callable[[RenderStream, StreamEnd], None] | None = None,
        on_first: Callable[[], None] | None = None,
        frame: Callable[[RenderStream, bytes], bytes] | None = None,
        trailer: Callable[[RenderStream], bytes] | None = None,
        error_event: Callable[[TempAudioError], bytes] | None = None,
    ) -> None:
        """``frame`` wraps each chunk of audio (of the stream given) and ``trailer`` makes
        the last one, after the stream is kept (sse.py's events); ``error_event`` makes the
        last one of a stream cut by an error (else the connection is reset); ``on_first`` is
        called once the first chunk of audio is sent (the time to first audio)."""
        super().__init__(media_type=media_type, headers=dict(headers))
        # Chunked: no Content-Length (Response would say 0 for an empty body).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._pool = pool
        self._guard = guard
        self._open = open_stream
        self._keep = keep
        self._send_timeout = send_timeout_seconds
        self._on_done = on_done
        self._on_first = on_first
        self._frame = frame
        self._trailer = trailer
        self._error_event = error_event
        self._started = False
        self._stored = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._run(scope, receive, send)
        except TempAudioError as error:
            if not self._started:
                raise  # answered as JSON
            # After the status line (the drain time ran out): cut, as any failure.
            logger.warning("stream cut: %s", error.message)
            await self._end_cut(scope, send, error)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._guard(), self._pool.stream() as step:
            stream: RenderStream = await step(self._open)
            end = StreamEnd("refused")
            try:
                # Refusals of the text come from here, before the status line.
                first = await step(stream.step)
                end = await self._send_all(receive, send, step, stream, first)
            finally:
                if self._started and end.outcome == "refused":
                    # Cancelled past the status line: the drain time ran out (pool.abandon).
                    gone = ShuttingDown("the service shut down before this stream finished")
                    end = StreamEnd("cut", self._stored, gone)
                stream.close()
                if self._on_done is not None:
                    self._on_done(stream, end)
            if end.outcome == "client_gone":
                logger.info("stream ended: the client went away or stopped reading")
            elif end.outcome == "cut":
                assert end.error is not None
                logger.warning("stream cut: %s", end.error.message)
                await self._end_cut(scope, send, end.error)
                return
            if end.outcome != "complete":
                _cut(scope)

    async def _send_all(
        self, receive: Receive, send: Send, step: Step, stream: RenderStream, first: bytes | None
    ) -> StreamEnd:
        ended = False  # the last message is being sent: a disconnect now is the normal end
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not ended:
                    gone = True
                    group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self._send(send, self._start_message())
                self._started = True
                chunk = first
                while chunk is not None:
                    if chunk:
                        framed = chunk if self._frame is None else self._frame(stream, chunk)
                        await self._send(send, _body(framed, more=True))
                        if self._on_first is not None:
                            self._on_first()
                            self._on_first = None
                    chunk = await step(stream.step)
                if self._keep is not None:
                    with anyio.CancelScope(shield=True):
                        await self._keep(stream)
                    self._stored = True
                ended = True
                last = b"" if self._trailer is None else self._trailer(stream)
                await self._send(send, _body(last, more=False))
            except ClientGone:
                gone = True
            except TempAudioError as error:
                return StreamEnd("cut", self._stored, error)
            finally:
                group.cancel_scope.cancel()
        return StreamEnd("client_gone" if gone else "complete", self._stored)

    async def _end_cut(self, scope: Scope, send: Send, error: TempAudioError) -> None:
        """End a stream the service cannot finish: with its error event where the format has
        one (and the client still reads), else by resetting the connection."""
        if self._error_event is not None:
            try:
                with anyio.CancelScope(shield=True):
                    await self._send(send, _body(self._error_event(error), more=False))
            except ClientGone:
                pass  # nobody reads it: reset below, as any cut
            else:
                return
        _cut(scope)

    def _start_message(self) -> dict[str, Any]:
        return {"type": "http.response.start", "status": 200, "headers": self.raw_headers}

    async def _send(self, send: Send, message: dict[str, Any]) -> None:
        with anyio.move_on_after(self._send_timeout) as waited:
            try:
                await send(message)
            except OSError as error:  # some servers raise this once the peer is gone
                raise ClientGone from error
        if waited.cancelled_caught:
            raise ClientGone


def _cut(scope: Scope) -> None:
    """End the connection without the stream's last chunk, so the client sees it broken."""
    abort = abort_of(scope)
    if abort is not None:
        abort()


def _body(chunk: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": chunk, "more_body": more}
