"""Every request and response body, declared once (pydantic): validation and the OpenAPI
document are both derived from these classes.

Limits that are settings (the text length, the voices) are checked in tts_request.py and
filled into the document by openapi.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core.core_schema import ValidationInfo

from tempaudio_service.core.errors import InvalidRequest, cut
from tempaudio_service.core.formats import FORMATS

# namespace/name of a TempAudioPolicy: 63 + 1 + 253 characters at most.
MAX_POLICY_CHARS = 317
POLICY_MUST_BE = f"a policy name or namespace/name of at most {MAX_POLICY_CHARS} characters"
ResponseFormat = Literal["wav", "mp3", "opus", "aac", "flac", "pcm", "ulaw", "alaw"]
MarkType = Literal["word", "sentence", "ssml"]
CaptionFormat = Literal["vtt", "srt"]
TextType = Literal["text", "ssml"]
SPEECH_MARKS_MUST_BE = 'a list of distinct mark types: "word", "sentence", "ssml"'


def _distinct(types: list[str]) -> list[str]:
    if len(set(types)) != len(types):
        raise ValueError(f"'speech_marks' must be {SPEECH_MARKS_MUST_BE}")
    return types


SpeechMarkTypes = Annotated[list[MarkType], Field(max_length=3), AfterValidator(_distinct)]
assert set(ResponseFormat.__args__) == set(FORMATS), "formats.py and ResponseFormat disagree"  # type: ignore[attr-defined]

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def text_problem(text: str, field: str) -> str | None:
    """Why espeak cannot take this text (it reads C strings of UTF-8), or None."""
    if not text.strip():
        return f"'{field}' must be a non-empty string"
    if "\x00" in text:
        return f"'{field}' must not contain NUL characters"
    if any("\ud800" <= char <= "\udfff" for char in text):
        return f"'{field}' must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"
    return None


def _speakable(text: str, info: ValidationInfo) -> str:
    problem = text_problem(text, str(info.field_name))
    if problem:
        raise ValueError(problem)
    return text


def _policy_name(policy: str) -> str:
    if not policy.strip():
        raise ValueError(f"'policy' must be {POLICY_MUST_BE}")
    return policy.strip()


# Text espeak can say; a TempAudioPolicy's name or namespace/name (surrounding blanks dropped).
SpeakableText = Annotated[str, AfterValidator(_speakable)]
PolicyName = Annotated[
    str, Field(min_length=1, max_length=MAX_POLICY_CHARS), AfterValidator(_policy_name)
]
_POLICY_NAME: TypeAdapter[str] = TypeAdapter(PolicyName)


def parse_policy_name(value: Any) -> str | None:
    """``name`` or ``namespace/name`` (``?policy=``), as a body's ``policy``; None when absent."""
    if value is None:
        return None
    try:
        return _POLICY_NAME.validate_python(value, strict=True)
    except ValidationError:
        raise InvalidRequest(f"'policy' must be {POLICY_MUST_BE}", param="policy") from None


class Body(BaseModel):
    """A request body; ``MUST_BE`` says, per field, what a wrongly typed value should be."""

    MUST_BE: ClassVar[dict[str, str]] = {}

    @classmethod
    def parse(cls, body: Any) -> Any:
        """The validated body, or ``InvalidRequest`` with one message a person can act on,
        naming the field at fault as its ``param``."""
        try:
            return cls.model_validate(body)
        except ValidationError as error:
            message, param = cls.explain(error)
            raise InvalidRequest(message, param=param) from None

    @classmethod
    def explain(cls, error: ValidationError) -> tuple[str, str | None]:
        """The message, and the field it is about (None: the body as a whole)."""
        problems = error.errors(include_url=False)
        unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
        if unknown:
            shown = ", ".join(cut(name) for name in unknown[:MAX_UNKNOWN_SHOWN])
            more = len(unknown) - MAX_UNKNOWN_SHOWN
            return f"unknown field(s): {shown}" + (f" and {more} more" if more > 0 else ""), None
        first = problems[0]
        if not first["loc"]:
            return "the body must be a JSON object", None
        name, kind, value = str(first["loc"][0]), first["type"], first.get("input")
        return cls._field_problem(name, kind, value, first.get("ctx", {})), name

    @classmethod
    def _field_problem(cls, name: str, kind: str, value: Any, context: dict[str, Any]) -> str:
        if kind == "value_error":
            return str(context["error"])
        if kind == "finite_number":
            return f"'{name}' must be a finite number"
        bounds = _bounds(cls, name)
        too_far = kind in ("greater_than_equal", "less_than_equal")
        # A 400-digit integer is out of range, not of the wrong type.
        if bounds and (too_far or (isinstance(value, int) and not isinstance(value, bool))):
            shown = value if isinstance(value, float) or abs(value) < 10**15 else "a huge integer"
            return f"'{name}' must be between {bounds[0]} and {bounds[1]}, got {shown}"
        if kind == "literal_error":
            return f"'{name}' must be one of {context['expected']}"
        # Missing, of the wrong type, too short or too long.
        return f"'{name}' must be {cls.MUST_BE.get(name, 'valid')}"


# Unknown fields a message names at most.
MAX_UNKNOWN_SHOWN = 5


def _bounds(model: type[BaseModel], name: str) -> tuple[float, float] | None:
    """A field's range as declared: integers for an integer field (8000, not 8000.0)."""
    field = model.model_fields.get(name)
    if field is None:
        return None
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if low is None or high is None:
        return None
    return low, high  # type: ignore[return-value]


def _knob(low: float, high: float, description: str) -> Any:
    return Field(None, ge=low, le=high, description=description)


class TtsRequestBody(Body):
    """``POST /tts/sync`` and ``POST /tts/stream``."""

    model_config = _STRICT
    MUST_BE: ClassVar[dict[str, str]] = {
        "text": "a non-empty string",
        "voice": "a non-empty string",
        "policy": POLICY_MUST_BE,
        "speaker": "a speaker id (integer) or name (string)",
        "length_scale": "a number",
        "noise_scale": "a number",
        "noise_w": "a number",
        "sentence_silence": "a number",
        "sample_rate": "an integer",
        "cache": "true or false",
        "speech_marks": SPEECH_MARKS_MUST_BE,
    }

    text: SpeakableText = Field(description="What to say.")
    voice: str | None = Field(
        None, min_length=1, description="A voice from GET /voices; default: the service's."
    )
    policy: PolicyName | None = Field(
        None,
        description=(
            "TempAudioPolicy to store under: name or namespace/name (GET /policies); "
            "default: the service's default policy."
        ),
    )
    speaker: int | str | None = Field(
        None, description="Speaker id (from 0) or name, for multi-speaker voices."
    )
    length_scale: float | None = _knob(0.1, 5.0, "Speed: >1 slower, <1 faster.")
    noise_scale: float | None = _knob(0.0, 2.0, "Generator noise.")
    noise_w: float | None = _knob(0.0, 2.0, "Phoneme width noise.")
    sentence_silence: float | None = _knob(0.0, 5.0, "Seconds of silence between sentences.")
    response_format: ResponseFormat = Field(
        "wav", description="Audio format of the stored object (and of a stream)."
    )
    sample_rate: int | None = Field(
        None,
        ge=8000,
        le=48000,
        description="Resample to this rate (Hz); default: the voice's, or the codec's next up.",
    )
    cache: bool = Field(
        True,
        description=(
            "Reuse audio made before for an identical request under the same policy (a "
            "server-side copy under a new key, with a fresh retention); false: synthesize."
        ),
    )
    text_type: TextType = Field(
        "text",
        description="ssml: 'text' is an SSML document (<speak>…</speak>; docs/api/ssml.md).",
    )
    speech_marks: SpeechMarkTypes = Field(
        default_factory=list,
        description=(
            "Speech marks to store beside the audio (Amazon Polly's JSON lines): word, "
            "sentence, ssml (<mark>). The answer's speech_marks_url signs them. /tts/sync only."
        ),
    )
    captions: CaptionFormat | None = Field(
        None,
        description="Captions to store beside the audio; captions_url signs them. /tts/sync only.",
    )


class TtsItem(BaseModel):
    """Stored audio, with a presigned URL."""

    audio_id: str = Field(json_schema_extra={"format": "uuid"})
    s3_url: str = Field(
        description=(
            "Presigned GET URL, valid until expires_at: never past the audio's own expiry, "
            "and at most 7 days (SigV4's cap)."
        )
    )
    duration: float = Field(description="Audio length in seconds.")
    text: str
    voice_id: str
    expires_at: str = Field(
        description="When s3_url stops working: the audio's expiry, capped at 7 days.",
        json_schema_extra={"format": "date-time"},
    )
    audio_expires_at: str = Field(
        description=(
            "When the audio is deleted (the item's ttl). Until then GET /tts/{date}/{audio_id} "
            "signs a fresh URL."
        ),
        json_schema_extra={"format": "date-time"},
    )
    date: str = Field(json_schema_extra={"format": "date"})
    policy: str = Field(description="The TempAudioPolicy the audio is stored under (its name).")
    format: ResponseFormat = Field("wav", description="The object's audio format.")
    content_type: str = Field("audio/wav", description="The object's Content-Type.")
    sample_rate: int | None = Field(
        None, description="The sample rate (Hz) when resampled; null: the voice's own."
    )
    cached: bool = Field(
        False, description="A copy of identical audio made before (the repeat cache)."
    )
    speech_marks_url: str | None = Field(
        None,
        description=(
            "Presigned GET URL of the speech marks (JSON lines), when requested: "
            "valid as long as s3_url."
        ),
    )
    captions_url: str | None = Field(
        None, description="Presigned GET URL of the captions (WebVTT or SubRip), when requested."
    )


class Error(BaseModel):
    error: str = Field(description="Machine-readable code.")
    message: str
