"""Domain errors; app.py maps each to one JSON response."""

from __future__ import annotations


class TempAudioError(Exception):
    status_code = 500
    code = "internal_error"
    retry_after_seconds: int | None = None

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


class MalformedJson(TempAudioError):
    status_code = 400
    code = "malformed_json"


class BodyTooLarge(TempAudioError):
    status_code = 413
    code = "body_too_large"


class TextTooLong(InvalidRequest):
    code = "text_too_long"


class UnknownVoice(InvalidRequest):
    code = "unknown_voice"


class AudioNotFound(TempAudioError):
    status_code = 404
    code = "not_found"


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
