"""The web console at ``/``: a page, a script, a style sheet and an icon, shipped in the
package (``console/``), served as they are; no build step, nothing fetched from elsewhere.
It speaks through the public API like any client (docs/console.md), and reads one thing no
public route says: which route a text takes (``/console/config``).
``TEMPAUDIO_CONSOLE=false`` leaves these routes out of the app."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tempaudio_api.jobs import MAX_JOB_CHARACTERS
from tempaudio_service.audio.services import services_of
from tempaudio_service.http.jobs_api import jobs_of
from tempaudio_service.wire.status_schemas import ConsoleConfig

# The files the page may load, and their types: nothing else is read from the package.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# The page runs only its own script and style, is framed by no one and sends no Referer.
# media-src: the audio plays from the presigned URL, an origin that is not this one and is
# not known when the page is served: each policy's S3 endpoint signs it (the embedded moto on
# http://127.0.0.1:<port>, a MinIO Service over http, AWS's virtual-hosted https names, which
# S3 may redirect to a regional name), policies change while the page is open, and the
# answer names the URL only after the request. So media may come from any http(s) origin.
# That lets the <audio> element load sound and nothing more: scripts, styles, fetches
# (connect-src via default-src), frames and form posts stay on this origin or are refused.
DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "media-src 'self' https: http:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(DIRECTIVES)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change with the image: revalidate (If-None-Match with the ETag, answered
    # 304 while the file is the same) rather than keep an old console.
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> tuple[bytes, str]:
    """The file and its entity tag (a digest of its bytes: it changes with the image)."""
    body = (resources.files(__package__) / "console" / name).read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` or is ``*``, compared weakly as RFC 9110
    says for it (``W/"x"`` matches ``"x"``) (pure)."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _file(request: Request, name: str) -> Response:
    """The file, or ``304 Not Modified`` (no body) when the browser holds this version."""
    body, etag = _read(name)
    headers = HEADERS | {"ETag": etag}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=FILES[name], headers=headers)


async def index(request: Request) -> Response:
    return _file(request, "index.html")


async def console_file(request: Request) -> Response:
    name = str(request.path_params["name"])
    if name not in FILES or name == "index.html":
        raise HTTPException(404, f"no console file {name[:64]}")
    return _file(request, name)


async def console_config(request: Request) -> JSONResponse:
    """Text up to the sync limit is spoken by ``POST /tts/sync``; longer text, up to the
    jobs' limit, becomes a job when the service has a queue, so the page asks before it
    speaks. A policy may still refuse a job or hold it to fewer characters (spec.jobs): the
    page shows that refusal as the API words it, as it shows a too-long text without jobs."""
    config = ConsoleConfig(
        max_text_chars=services_of(request).settings.max_text_chars,
        jobs=jobs_of(request).queue is not None,
        max_job_chars=MAX_JOB_CHARACTERS,
    )
    return JSONResponse(config.model_dump(), headers={"Cache-Control": "no-cache"})


ROUTES = [
    Route("/", index, methods=["GET"]),
    # Before the files' route, which would take "config" for a file's name.
    Route("/console/config", console_config, methods=["GET"]),
    Route("/console/{name}", console_file, methods=["GET"]),
]
