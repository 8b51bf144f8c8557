"""What the service is and how it is: its voices and policies, the probes, the metrics and
its OpenAPI document. The health listener (``TEMPAUDIO_HEALTH_PORT``) serves the probes and
the metrics of this module and nothing else."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tempaudio_service.audio.services import services_of
from tempaudio_service.audio.voice_view import plain_name, requested_policy, voice_view
from tempaudio_service.core.errors import TempAudioError, VoiceNotReady
from tempaudio_service.http.openapi import openapi_document
from tempaudio_service.speech.voices import VoiceInfo


async def list_policies(request: Request) -> JSONResponse:
    return JSONResponse(services_of(request).book().listing(time.monotonic()))


async def list_voices(request: Request) -> JSONResponse:
    """Every voice the service knows (declared ones as ``namespace/name``); with
    ``?policy=``, the voices a request under it may name, by the names it uses, and
    whether the policy allows each."""
    services = services_of(request)
    services.book()  # the declared voices as the policy view has them now
    resident = services.synth.resident()
    failed = services.synth.failed()
    requested = request.query_params.get("policy")
    if requested is None:
        known = services.synth.voices
        listed = [
            _voice(info, info.name, info.name in resident, True, failed.get(info.name))
            for info in known.values()
        ]
        default = services.settings.default_voice
    else:
        view = voice_view(services, requested_policy(services, {"policy": requested}))
        listed = [
            _voice(
                info,
                name,
                info.name in resident,
                view.allowed is None or name in view.allowed,
                failed.get(info.name),
            )
            for name, info in view.voices.items()
            if "/" not in name
        ]
        default = plain_name(view.default_voice)
    listed.sort(key=lambda voice: str(voice["name"]))
    return JSONResponse({"default": default, "voices": listed})


def _voice(
    info: VoiceInfo, name: str, resident: bool, allowed: bool, failure: VoiceNotReady | None
) -> dict[str, object]:
    """A voice as listed; one whose last load failed is not ready, for that reason, while
    requests for it are refused."""
    listed = {**info.as_json(), "name": name, "resident": resident, "allowed": allowed}
    if failure is not None:
        listed |= {"ready": False, "reason": failure.reason}
    return listed


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services = services_of(request)
    if services.draining.started:
        return JSONResponse({"status": "draining"}, status_code=503)
    problems: dict[str, str] = {}
    book, now = services.book(), time.monotonic()
    if book.stale_for(now) is not None:
        problems["policies"] = book.stale_message("any policy")
    elif book.default is not None:
        # Ready when the default policy is served and its storage answers.
        try:
            policy = book.resolve(None, now)
        except TempAudioError as error:
            problems["policy"] = error.message
        else:
            store = services.stores.get(policy.storage)
            problems.update(await services.readiness.problems_now(services.repository, store))
    if not services.synth.voices:
        problems["voices"] = "no voice loaded"
    if problems:
        return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "voices": sorted(services.synth.voices)})


async def metrics(request: Request) -> Response:
    registry = services_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    settings = services_of(request).settings
    return JSONResponse(
        openapi_document(
            max_text_chars=settings.max_text_chars,
            default_voice=settings.default_voice,
            console=settings.console,
        )
    )


ROUTES = [
    Route("/voices", list_voices, methods=["GET"]),
    Route("/policies", list_policies, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
# What the health listener serves.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
