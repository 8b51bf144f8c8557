"""A request's audio answered as it is made (``POST /tts/stream``, ``/v1/audio/speech``):
the pair made first, so its URL goes out in the headers, what is sent also uploaded, and
stored once the last sentence is sent; or OpenAI's events."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from tempaudio_service.audio import audio_requests, companions
from tempaudio_service.audio.pairs import (
    Pair,
    abort_later,
    new_pair,
    signed_item,
    writer_of,
)
from tempaudio_service.audio.rendering import RenderStream
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.audio.services import Services
from tempaudio_service.http.streaming import AudioStream, StreamEnd
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.wire import sse
from tempaudio_service.wire.tts_request import TtsRequest


def stream(
    services: Services,
    tts: TtsRequest,
    request: AudioRequest | None,
    *,
    keep: bool,
    finished: Callable[[float, str | None, StreamEnd], None] = lambda seconds, audio_id, end: None,
) -> AudioStream:
    """The audio of ``tts`` as it is made; with ``keep``, also stored as ``request``'s pair
    (under its policy, for its caller), with the URL, id and expiry in ``X-Tempaudio-*``
    headers. ``finished`` gets the audio seconds made, the id of the audio kept (if it was)
    and how the stream ended. ``tts.stream_format`` "sse": as OpenAI's events (sse.py);
    what is kept is the audio."""
    headers = {"X-Tempaudio-Voice": tts.voice, "X-Audio-Sample-Rate": str(tts.sample_rate)}
    started = time.perf_counter()
    pair: Pair | None = None
    writer: ObjectWriter | None = None
    saving = False
    if keep:
        # The URL is known before the object: it goes out in the headers, the object follows.
        assert request is not None
        pair = new_pair(services, request, Decimal(0))
        writer = writer_of(pair)
        answer = signed_item(pair.policy, pair.store, pair.item, pair.created)
        headers |= {
            "X-Tempaudio-Audio-Id": answer["audio_id"],
            "X-Tempaudio-Date": answer["date"],
            "X-Tempaudio-Policy": answer["policy"],
            "X-Tempaudio-Url": answer["s3_url"],
            "X-Tempaudio-Expires-At": answer["expires_at"],
            "X-Tempaudio-Audio-Expires-At": answer["audio_expires_at"],
        }

    async def keep_stream(finished: RenderStream) -> None:
        nonlocal saving
        assert pair is not None
        assert writer is not None
        saving = True  # from here on, the repository undoes what fails
        # Still served, as the sync path checks after synthesis; the item's duration is
        # the stream's own.
        try:
            services.recheck(pair.policy)
        except BaseException:
            abort_later(services, writer)
            raise
        await audio_requests.keep(services, pair, writer, tts, finished, url_out=True)

    def first_sent() -> None:
        services.metrics.first_audio_seconds.observe(time.perf_counter() - started)

    def done(rendered: RenderStream, end: StreamEnd) -> None:
        if writer is not None and not saving:  # cut before its end: nothing is kept
            abort_later(services, writer)
        services.metrics.streams.labels(end.outcome).inc()
        audio_requests.observe(
            services, tts, time.perf_counter() - started, rendered.duration_seconds
        )
        kept = pair.item.audio_id if pair is not None and end.stored else None
        finished(rendered.duration_seconds, kept, end)

    events = companions.MarkEvents(tts)

    def done_event(rendered: RenderStream) -> bytes:
        return events.rest(rendered) + sse.audio_done(len(tts.text), rendered.duration_seconds)

    as_events = tts.stream_format == "sse"
    return AudioStream(
        pool=services.pool,
        guard=services.draining.tracked,
        open_stream=lambda: RenderStream(services.synth, tts, keep=writer),
        media_type=sse.MEDIA_TYPE if as_events else tts.audio_format.content_type,
        headers=headers,
        send_timeout_seconds=services.settings.body_timeout_seconds,
        keep=keep_stream if keep else None,
        on_done=done,
        on_first=first_sent,
        frame=events.frame if as_events else None,
        trailer=done_event if as_events else None,
        error_event=sse.error if as_events else None,
    )
