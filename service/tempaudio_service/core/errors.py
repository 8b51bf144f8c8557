"""Domain errors; app.py maps each to one JSON response."""

from __future__ import annotations

# How much of a client's value a message repeats.
SHOWN_CHARS = 40


def cut(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a message repeats it: at most ``limit`` characters, cut with "…"."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


class TempAudioError(Exception):
    status_code = 500
    code = "internal_error"
    retry_after_seconds: int | None = None
    # The request field at fault (OpenAI's ``param``); None: no one field.
    param: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str] | None:
        if self.retry_after_seconds is None:
            return None
        return {"Retry-After": str(self.retry_after_seconds)}


class InvalidRequest(TempAudioError):
    status_code = 422
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        if param is not None:
            self.param = param


class MalformedJson(TempAudioError):
    status_code = 400
    code = "malformed_json"


class BodyTooLarge(TempAudioError):
    status_code = 413
    code = "body_too_large"


class BodyTimeout(TempAudioError):
    """The client did not send its whole body within TEMPAUDIO_BODY_TIMEOUT."""

    status_code = 408
    code = "body_timeout"


class TextTooLong(InvalidRequest):
    code = "text_too_long"


class UnknownVoice(InvalidRequest):
    code = "unknown_voice"
    param = "voice"


class UnknownPolicy(InvalidRequest):
    """The request names a policy this service does not serve (or none, without a default)."""

    code = "unknown_policy"
    param = "policy"


class NoSpeech(InvalidRequest):
    """The text holds nothing to say (only punctuation, spaces or invisible characters)."""

    code = "no_speech"
    param = "text"


class AudioTooLong(InvalidRequest):
    """The audio would run past the per-request cap (TEMPAUDIO_MAX_AUDIO_SECONDS)."""

    code = "audio_too_long"
    param = "text"


class AudioNotFound(TempAudioError):
    status_code = 404
    code = "not_found"


class ModelNotFound(TempAudioError):
    """An OpenAI request names a model that is not in GET /v1/models."""

    status_code = 404
    code = "model_not_found"
    param = "model"


class Overloaded(TempAudioError):
    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class StorageUnavailable(TempAudioError):
    status_code = 503
    code = "storage_unavailable"
    retry_after_seconds = 5

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        # The store answered no (an error response, not a timeout): nothing was written.
        self.refused = refused


class PolicyChanged(TempAudioError):
    """The policy's storage changed while long audio was being uploaded under the old one:
    nothing is kept, and the same request made again is stored under the new one."""

    status_code = 503
    code = "policy_changed"
    retry_after_seconds = 1


class ShuttingDown(TempAudioError):
    """SIGTERM arrived: this replica takes no new work; another one will."""

    status_code = 503
    code = "shutting_down"
    retry_after_seconds = 1


class PolicyNotReady(TempAudioError):
    """The policy exists but is not served now: the operator has not accepted it (yet)."""

    status_code = 503
    code = "policy_not_ready"
    retry_after_seconds = 5


class PolicyStale(TempAudioError):
    """The service lost touch with the Kubernetes API for longer than it may vouch for
    a policy (an edit it has not seen could have shortened the retention)."""

    status_code = 503
    code = "policy_stale"
    retry_after_seconds = 5


class Unauthenticated(TempAudioError):
    """No ServiceAccount token, or one the API server does not vouch for (for this audience)."""

    status_code = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": 'Bearer realm="tempaudio"'}


class Forbidden(TempAudioError):
    """An authenticated caller the policy does not name."""

    status_code = 403
    code = "forbidden"


class QuotaExceeded(TempAudioError):
    """The caller used its share under the policy's quotas; Retry-After says when it returns."""

    status_code = 429
    code = "quota_exceeded"

    def __init__(self, message: str, retry_after_seconds: int, quota: str) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.quota = quota  # requests_per_minute or audio_seconds_per_hour


class AuthUnavailable(TempAudioError):
    """The Kubernetes API cannot vouch for a caller now (and none is cached): never an open
    door."""

    status_code = 503
    code = "auth_unavailable"
    retry_after_seconds = 5


class ClientWentAway(TempAudioError):
    """The client went away before its request had arrived: nobody reads the answer, which
    is audited as nginx logs it, 499, and never as a server error."""

    status_code = 499
    code = "client_gone"


class UnsupportedMediaType(TempAudioError):
    """A body that does not say ``Content-Type: application/json``: a browser's cross-site
    "simple" POST (text/plain, a form) cannot make the service speak."""

    status_code = 415
    code = "unsupported_media_type"


class ObjectTooLarge(TempAudioError):
    """A small object read whole (speech marks) is larger than any the service writes: it
    was put there by something else, so the storage behind the service answered what the
    service cannot vouch for. 502, as a gateway answers an upstream's invalid reply; not
    503, since retrying reads the same object."""

    status_code = 502
    code = "object_too_large"


class UnknownHost(TempAudioError):
    """A browser's request names a Host outside TEMPAUDIO_CONSOLE_HOSTS: a page of another
    site whose name was rebound to this address (DNS rebinding) is not this service's."""

    status_code = 421
    code = "unknown_host"


class JobNotFound(TempAudioError):
    """No such job under the policy, or another caller's (the same answer: its existence
    is not told)."""

    status_code = 404
    code = "not_found"


class JobsUnavailable(TempAudioError):
    """This service has no job queue (``TEMPAUDIO_JOBS_QUEUE_URL``)."""

    status_code = 503
    code = "jobs_unavailable"


class JobsDisabled(TempAudioError):
    """The policy turns jobs off (``spec.jobs.enabled: false``)."""

    status_code = 403
    code = "jobs_disabled"


class CallbackNotAllowed(InvalidRequest):
    """A ``callback_url`` outside the policy's ``spec.jobs.callbackUrlPrefixes``."""

    code = "callback_not_allowed"
    param = "callback_url"


class IdempotencyConflict(TempAudioError):
    """An ``Idempotency-Key`` used before with another body."""

    status_code = 409
    code = "idempotency_conflict"


class JobConflict(TempAudioError):
    """The job cannot change so: it has finished, or it is being finished."""

    status_code = 409
    code = "job_conflict"


class VoiceNotReady(TempAudioError):
    """A declared voice that cannot be spoken now: missing, tampered with (its bytes do not
    match its sha256), or unreadable. The message names the reason."""

    status_code = 503
    code = "voice_not_ready"
    param = "voice"
    retry_after_seconds = 30

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message if reason in message else f"{reason}: {message}")
        self.reason = reason


class VoiceNotAllowed(TempAudioError):
    """A voice outside the policy's ``spec.voices``."""

    status_code = 403
    code = "voice_not_allowed"
    param = "voice"
