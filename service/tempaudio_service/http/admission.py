"""Who asks, and may they: each synthesis and read is authenticated (``identity.py``),
checked against its policy's clients, readers and quotas, and written to the audit log.

The audit log is one JSON line per synthesis or read (logger ``tempaudio.audit``): who,
which policy, how many characters, how many audio seconds, the outcome. The text only with
``TEMPAUDIO_AUDIT_TEXT=true``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from tempaudio_api.access import Caller, Quotas
from tempaudio_service.access import quotas
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.audio.services import Services
from tempaudio_service.core.errors import Forbidden, QuotaExceeded
from tempaudio_service.http import audio_streams
from tempaudio_service.http.streaming import AudioStream, StreamEnd
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.wire.tts_request import TtsRequest

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("tempaudio.audit")
# The audit status of a request whose client went away before its answer (nginx's 499).
CLIENT_GONE = 499
_SCOPE_KEY = "tempaudio.audit"


@dataclass
class AuditRecord:
    """Filled in by the handler as it learns; written once the response is sent."""

    route: str = ""
    caller: str | None = None
    policy: str | None = None
    characters: int | None = None
    audio_seconds: float | None = None
    audio_id: str | None = None
    cached: bool | None = None
    outcome: str = "ok"
    # How a stream ended (streaming.StreamEnd); None: not a stream.
    stream: str | None = None
    # What the client got, where it differs from the status line sent: 499 (nginx's
    # "client closed request") when it went away first; a stream cut by an error, the
    # error's status.
    status: int | None = None
    text: str | None = None


def audit_of(request: Request) -> AuditRecord:
    """This request's record; the route is audited from now on."""
    record: AuditRecord = request.scope.setdefault(_SCOPE_KEY, AuditRecord())
    if not record.route:
        route = request.scope.get("route")
        record.route = getattr(route, "path", request.url.path)
    return record


def note_outcome(request: Request, code: str) -> None:
    """An error answer's code, if the request is audited."""
    record = request.scope.get(_SCOPE_KEY)
    if isinstance(record, AuditRecord):
        record.outcome = code


def write_audit_of(scope: Scope, status: int, seconds: float) -> None:
    """The audit line of an audited request, once it is answered (app.py's middleware)."""
    record = scope.get(_SCOPE_KEY)
    if isinstance(record, AuditRecord) and record.route:
        write_audit(record, scope["method"], status, seconds)


def audit_line(record: AuditRecord, method: str, status: int, seconds: float) -> dict[str, Any]:
    """The audit entry (pure): the record without empty fields, with the answer."""
    entry = {k: v for k, v in asdict(record).items() if v is not None}
    status = record.status if record.status is not None else status
    if record.outcome == "ok" and status >= 400:
        entry["outcome"] = "error"
    entry.update(method=method, status=status, milliseconds=round(seconds * 1000, 1))
    return entry


def note_client_gone(scope: Scope) -> None:
    """The client went away before its answer was sent (app.py's middleware)."""
    record = scope.get(_SCOPE_KEY)
    if isinstance(record, AuditRecord):
        record.outcome, record.status = "client_gone", CLIENT_GONE


def answer_is_audited(scope: Scope) -> bool:
    """The request is audited and answered whole (a stream reports its own end)."""
    record = scope.get(_SCOPE_KEY)
    return isinstance(record, AuditRecord) and bool(record.route) and record.stream is None


def _note_stream_end(record: AuditRecord, end: StreamEnd) -> None:
    record.stream = end.outcome
    if end.outcome == "client_gone":
        record.outcome, record.status = "client_gone", CLIENT_GONE
    elif end.outcome == "cut":
        error = end.error
        record.outcome = error.code if error is not None else "cut"
        record.status = error.status_code if error is not None else 500


def write_audit(record: AuditRecord, method: str, status: int, seconds: float) -> None:
    entry = audit_line(record, method, status, seconds)
    audit_logger.info("audit %s", json.dumps(entry), extra={"audit": entry})


async def caller_of(services: Services, request: Request) -> Caller | None:
    """The authenticated caller (401 or 503 otherwise); None when the service authenticates
    none. Called before the request's body is read."""
    audit_of(request)
    if services.authenticator is None:
        return None
    caller = await services.authenticator.caller(request.headers.get("authorization"))
    audit_of(request).caller = caller.key
    return caller


async def _labels(
    services: Services, caller: Caller | None, policy: ServedPolicy
) -> Mapping[str, str] | None:
    if caller is None or services.authenticator is None or not policy.access.needs_labels:
        return None
    return await services.authenticator.namespace_labels(caller.namespace)


async def admit_synthesis(
    services: Services,
    request: Request,
    caller: Caller | None,
    policy: ServedPolicy | None,
    text: str,
) -> None:
    """Authorize ``caller`` (``caller_of``, before the body is read) against the policy's
    clients and count the request against its quotas; raises 403, 429 or 503. ``policy``
    None: audio that no policy keeps (OpenAI speech without a default policy), so only
    authentication applies."""
    record = audit_of(request)
    record.characters = len(text)
    if services.settings.audit_text:
        record.text = text
    if policy is None:
        return
    record.policy = policy.key
    if not policy.access.admits_client(caller, await _labels(services, caller, policy)):
        services.metrics.access_refusals.labels(policy.key, "client").inc()
        if caller is None:
            raise Forbidden(
                f"policy {policy.key} names its clients, and this service authenticates none"
                " (TEMPAUDIO_AUTH=none): set TEMPAUDIO_AUTH=serviceaccount"
            )
        raise Forbidden(f"{caller.key} is not among the clients of policy {policy.key}")
    if policy.access.quotas == Quotas():
        return
    counters = services.stores.get(policy.storage).counters
    key, limits = _quota_key(policy, caller), policy.access.quotas
    try:
        # Shared by every replica (quotas.py): a store that cannot answer refuses, 503.
        # The caller's last audio on this replica is counted first (charged after its answer).
        await services.repository.written(("charge", key))
        await services.repository.call(
            "DynamoDB", quotas.admit, counters, key, limits, _now(services)
        )
    except QuotaExceeded as error:
        services.metrics.quota_refusals.labels(policy.key, error.quota).inc()
        raise


def finished_synthesis(
    services: Services,
    request: Request,
    policy: ServedPolicy | None,
    caller: Caller | None,
    audio_seconds: float,
    audio_id: str | None = None,
    *,
    cached: bool | None = None,
) -> None:
    """Complete the audit record and charge the audio to the caller's hour in the shared
    count, after the answer: the caller's next request on this replica waits for it, one on
    another replica may be in flight with it (quotas.py). A failed charge is logged, never
    the request's failure (its audio exists)."""
    _note_audio(request, audio_seconds, audio_id, cached)
    _charge_later(services, policy, caller, audio_seconds)


def _charge_later(
    services: Services, policy: ServedPolicy | None, caller: Caller | None, seconds: float
) -> None:
    """Charge ``seconds`` of audio to the caller's hour in the background, if the policy
    limits audio; tagged, so that the caller's next admission here waits for it."""
    if policy is None or policy.access.quotas.audio_seconds_per_hour is None:
        return
    counters = services.stores.get(policy.storage).counters
    key, limits = _quota_key(policy, caller), policy.access.quotas
    services.repository.later(
        "DynamoDB",
        quotas.charge,
        counters,
        key,
        limits,
        _now(services),
        seconds,
        tag=("charge", key),
    )


def _note_audio(
    request: Request, audio_seconds: float, audio_id: str | None, cached: bool | None
) -> None:
    record = audit_of(request)
    record.audio_seconds = round(audio_seconds, 3)
    record.audio_id = audio_id
    record.cached = cached


async def may_read(
    services: Services,
    request: Request,
    policy: ServedPolicy,
    caller: Caller | None,
    item: AudioItem,
) -> bool:
    """The maker of the audio, or a reader the policy names (without authentication: audio
    made without it)."""
    record = audit_of(request)
    record.policy = policy.key
    record.audio_id = item.audio_id
    labels = await _labels(services, caller, policy)
    allowed = policy.access.admits_reader(caller, item.caller, labels)
    if not allowed:
        services.metrics.access_refusals.labels(policy.key, "reader").inc()
    return allowed


def stream(
    services: Services,
    request: Request,
    tts: TtsRequest,
    caller: Caller | None,
    audio: AudioRequest | None,
    *,
    keep: bool,
) -> AudioStream:
    """The admitted request's audio stream (``audio``: resolved under a policy, None when
    no policy applies); its audio is charged and audited at the end."""
    policy = None if audio is None else audio.policy
    audit_of(request).stream = "refused"  # until it starts: admission may still refuse it

    def finished(audio_seconds: float, audio_id: str | None, end: StreamEnd) -> None:
        _note_audio(request, audio_seconds, audio_id, None)
        _note_stream_end(audit_of(request), end)
        _charge_later(services, policy, caller, audio_seconds)

    return audio_streams.stream(services, tts, audio, keep=keep, finished=finished)


def _quota_key(policy: ServedPolicy, caller: Caller | None) -> tuple[str, str]:
    return policy.key, caller.key if caller is not None else "anonymous"


def _now(services: Services) -> float:
    return services.clock().timestamp()
