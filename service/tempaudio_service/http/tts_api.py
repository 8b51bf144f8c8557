"""The ``/tts`` API: synthesize and store (``POST /tts/sync``), stream and store
(``POST /tts/stream``), and read stored audio back (``GET /tts/{date}/{audio_id}``, and its
speech marks)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tempaudio_service.audio import audio_requests, pairs
from tempaudio_service.audio.resolved import resolve
from tempaudio_service.audio.services import Services, read_json, services_of
from tempaudio_service.audio.voice_view import requested_policy, voice_view
from tempaudio_service.core.errors import AudioNotFound, InvalidRequest
from tempaudio_service.http import admission
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.speech import marks
from tempaudio_service.storage import layout
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.schemas import parse_policy_name
from tempaudio_service.wire.tts_request import TtsRequest, parse_tts_request

logger = logging.getLogger(__name__)
# The most speech marks a read answers: those of the longest text (100,000 characters, every
# word and sentence marked) are a few MB; a larger object is not one the service wrote.
MAX_MARKS_BYTES = 16 * 1024 * 1024


async def tts_sync(request: Request) -> JSONResponse:
    services = services_of(request)
    async with services.draining.tracked():
        return await _tts_sync(services, request)


async def _parse(services: Services, request: Request) -> TtsRequest:
    settings = services.settings
    body = await read_json(request, settings.max_body_bytes, settings.body_timeout_seconds)
    view = voice_view(services, requested_policy(services, body))
    tts = parse_tts_request(
        body,
        voices=view.voices,
        default_voice=view.default_voice,
        max_text_chars=settings.max_text_chars,
    )
    view.check(tts.voice)
    return tts


async def _tts_sync(services: Services, request: Request) -> JSONResponse:
    caller = await admission.caller_of(services, request)
    tts = await _parse(services, request)
    # Resolved once, here, and passed down; checked again after synthesis (recheck): the
    # retention, storage and ttl attribute are those in force when the pair is made.
    audio = resolve(services, tts, caller)
    await admission.admit_synthesis(services, request, caller, audio.policy, audio.tts.text)
    answer = await audio_requests.answer(services, audio)
    admission.finished_synthesis(
        services,
        request,
        audio.policy,
        caller,
        answer["duration"],
        answer["audio_id"],
        cached=answer["cached"],
    )
    return JSONResponse(answer)


async def tts_stream(request: Request) -> Response:
    """The body of /tts/sync; the audio streams back as it is made and is stored as well."""
    services = services_of(request)
    caller = await admission.caller_of(services, request)
    tts = await _parse(services, request)
    if tts.timed:
        raise InvalidRequest(
            "speech marks and captions are made with POST /tts/sync, or as events by "
            "/v1/audio/speech with stream_format sse",
            param="speech_marks" if tts.speech_marks else "captions",
        )
    audio = resolve(services, tts, caller)
    await admission.admit_synthesis(services, request, caller, audio.policy, audio.tts.text)
    return admission.stream(services, request, audio.tts, caller, audio, keep=True)


async def _readable_item(
    services: Services, request: Request
) -> tuple[ServedPolicy, AudioStore, AudioItem]:
    """The item of the path's audio under the query's policy, if the caller may read it;
    ``AudioNotFound`` otherwise (what ``GET /tts/{date}/{audio_id}`` and its speech marks
    answer alike)."""
    day = str(request.path_params["date"])
    audio_id = str(request.path_params["audio_id"])
    if layout.parse_date(day) is None or not layout.is_valid_audio_id(audio_id):
        raise AudioNotFound(f"no audio {day[:10]}/{audio_id[:36]}")
    policy, store = services.served(parse_policy_name(request.query_params.get("policy")))
    caller = await admission.caller_of(services, request)
    item = await services.repository.lookup(store, day, audio_id)
    # DynamoDB deletes expired items lazily (and moto never does): filter on read. Audio
    # the caller may not read is answered as missing: its existence is not told either.
    if (
        item is None
        or not layout.is_item_of(item, policy.key, store.bucket, policy.storage.prefix)
        or layout.is_item_expired(item, services.clock())
        or not await admission.may_read(services, request, policy, caller, item)
    ):
        raise AudioNotFound(
            f"no audio {day}/{audio_id} under policy {policy.name}, or it has expired"
        )
    return policy, store, item


async def get_audio(request: Request) -> JSONResponse:
    services = services_of(request)
    policy, store, item = await _readable_item(services, request)
    return JSONResponse(pairs.signed_item(policy, store, item, services.clock()))


async def get_speech_marks(request: Request) -> Response:
    """The audio's speech marks (JSON lines) read through the service, for a page of this
    origin (the web console) that cannot fetch the presigned URL of another one."""
    services = services_of(request)
    _, store, item = await _readable_item(services, request)
    key = item.companions.get("speech_marks")
    found = None if key is None else await services.repository.read(store, key, MAX_MARKS_BYTES)
    if found is None:
        raise AudioNotFound(f"no speech marks for {item.date}/{item.audio_id}")
    return Response(found, media_type=marks.MARKS_CONTENT_TYPE)


ROUTES = [
    Route("/tts/sync", tts_sync, methods=["POST"]),
    Route("/tts/stream", tts_stream, methods=["POST"]),
    Route("/tts/{date}/{audio_id}", get_audio, methods=["GET"]),
    Route("/tts/{date}/{audio_id}/speech-marks", get_speech_marks, methods=["GET"]),
]
