from typing import Any

import pytest

from tempaudio_service.core.errors import InvalidRequest, TextTooLong, UnknownVoice
from tempaudio_service.speech.synth import VoiceInfo
from tempaudio_service.wire.tts_request import parse_tts_request

VOICES = {
    "en_US-joe-medium": VoiceInfo("en_US-joe-medium", 22050, "en_US", "medium", 1),
    "multi": VoiceInfo("multi", 22050, "en_US", "low", 2, {"alice": 0, "bob": 1}),
}


def parse(body: Any) -> Any:
    return parse_tts_request(
        body, voices=VOICES, default_voice="en_US-joe-medium", max_text_chars=20
    )


def test_defaults() -> None:
    request = parse({"text": "hello"})
    assert request.voice == "en_US-joe-medium"
    assert request.options.speaker is None
    assert request.options.sentence_silence == 0.0


def test_knobs_and_named_speaker() -> None:
    request = parse(
        {
            "text": "hi",
            "voice": "multi",
            "speaker": "bob",
            "length_scale": 1.5,
            "noise_scale": 0.5,
            "noise_w": 0.6,
            "sentence_silence": 0.2,
        }
    )
    assert request.options.speaker == 1
    assert request.options.length_scale == 1.5
    assert (request.options.noise_scale, request.options.noise_w) == (0.5, 0.6)
    assert request.options.sentence_silence == 0.2


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ([], InvalidRequest, "JSON object"),
        ({}, InvalidRequest, "'text' must be a non-empty string"),
        ({"text": "   \n"}, InvalidRequest, "non-empty"),
        ({"text": 3}, InvalidRequest, "non-empty string"),
        ({"text": "x" * 21}, TextTooLong, "limit is 20"),
        ({"text": "hi", "voice": "nope"}, UnknownVoice, "unknown voice 'nope'"),
        ({"text": "hi", "voice": ""}, InvalidRequest, "'voice'"),
        ({"text": "hi", "length_scale": 0}, InvalidRequest, "between 0.1 and 5.0"),
        ({"text": "hi", "noise_scale": "loud"}, InvalidRequest, "must be a number"),
        ({"text": "hi", "noise_w": True}, InvalidRequest, "must be a number"),
        ({"text": "hi", "sentence_silence": 9}, InvalidRequest, "between"),
        ({"text": "hi", "speaker": 1}, InvalidRequest, "out of range"),
        ({"text": "hi", "voice": "multi", "speaker": "carol"}, InvalidRequest, "no speaker"),
        ({"text": "hi", "voice": "multi", "speaker": 1.5}, InvalidRequest, "speaker id"),
        ({"text": "hi", "speed": 2}, InvalidRequest, "unknown field"),
    ],
)
def test_rejections_say_why(body: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse(body)


def speech(body: Any, aliases: dict[str, str] | None = None, max_text_chars: int = 20) -> Any:
    from tempaudio_service.wire.tts_request import parse_speech_request

    return parse_speech_request(
        {"model": "tts-1", "input": "hi", "voice": "alloy", **body},
        voices=VOICES,
        aliases={"alloy": "en_US-joe-medium", "nova": "multi", **(aliases or {})},
        max_text_chars=max_text_chars,
    )


@pytest.mark.parametrize(
    ("body", "voice", "fmt", "rate", "length_scale"),
    [
        ({}, "en_US-joe-medium", "mp3", 22050, None),  # OpenAI's default format
        ({"voice": "nova"}, "multi", "mp3", 22050, None),  # mapped
        ({"voice": "multi"}, "multi", "mp3", 22050, None),  # a Piper voice by its name
        ({"response_format": "pcm"}, "en_US-joe-medium", "pcm", 24000, None),  # OpenAI's pcm
        ({"response_format": "opus"}, "en_US-joe-medium", "opus", 24000, None),
        ({"speed": 2.0}, "en_US-joe-medium", "mp3", 22050, 0.5),  # twice as fast
        ({"instructions": "cheerful", "future_field": 1}, "en_US-joe-medium", "mp3", 22050, None),
        ({"voice": {"id": "nova"}}, "multi", "mp3", 22050, None),  # OpenAI's voice object
        ({"voice": {"id": "multi", "newer": 1}}, "multi", "mp3", 22050, None),
    ],
)
def test_openai_speech_requests(
    body: dict[str, Any], voice: str, fmt: str, rate: int, length_scale: float | None
) -> None:
    request = speech(body)
    assert (request.voice, request.format, request.sample_rate) == (voice, fmt, rate)
    assert request.options.length_scale == length_scale


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"input": ""}, InvalidRequest, "'input' must be a non-empty string"),
        ({"input": "x" * 21}, TextTooLong, "'input' has 21 characters"),
        ({"voice": "zz"}, UnknownVoice, "unknown voice 'zz'"),
        ({"speed": 0.1}, InvalidRequest, "'speed' must be between 0.25 and 4.0"),
        (
            {"stream_format": "json"},
            InvalidRequest,
            "'stream_format' must be one of 'audio' or 'sse'",
        ),
        ({"response_format": "ogg"}, InvalidRequest, "'response_format' must be one of"),
        ({"policy": "   "}, InvalidRequest, "'policy' must be a policy name"),
        ({"policy": "p" * 318}, InvalidRequest, "'policy' must be a policy name"),
    ],
)
def test_openai_speech_rejections(
    body: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        speech(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"response_format": "flac", "sample_rate": 16000}, None),
        ({"response_format": "mp3", "sample_rate": 22051}, "mp3 takes a 'sample_rate'"),
        ({"sample_rate": True}, "'sample_rate' must be an integer"),
    ],
)
def test_formats_and_rates(body: dict[str, Any], message: str | None) -> None:
    if message is None:
        request = parse({"text": "hi", **body})
        assert (request.format, request.sample_rate) == (body["response_format"], 16000)
    else:
        with pytest.raises(InvalidRequest, match=message):
            parse({"text": "hi", **body})


def test_openai_speech_asks_for_events_or_audio() -> None:
    assert speech({}).stream_format == "audio"
    assert speech({"stream_format": "sse"}).stream_format == "sse"


@pytest.mark.parametrize(("service_limit", "limit"), [(5000, 4096), (100, 100)])
def test_openai_input_is_held_to_openai_s_limit(service_limit: int, limit: int) -> None:
    assert speech({"input": "x" * limit}, max_text_chars=service_limit).text == "x" * limit
    with pytest.raises(TextTooLong, match=f"the limit is {limit}$") as raised:
        speech({"input": "x" * (limit + 1)}, max_text_chars=service_limit)
    assert raised.value.param == "input"


TTS = {"text": "hi"}
SPEECH = {"model": "tts-1", "input": "hi", "voice": "alloy"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 21}, "text"),
        ({"voice": "nope"}, "voice"),
        ({"voice": "multi", "speaker": "carol"}, "speaker"),
        ({"speaker": 7}, "speaker"),
        ({"length_scale": 0}, "length_scale"),
        ({"response_format": "ogg"}, "response_format"),
        ({"response_format": "opus", "sample_rate": 22050}, "sample_rate"),
        ({"sample_rate": 100}, "sample_rate"),
        ({"policy": " "}, "policy"),
        ({"cache": "no"}, "cache"),
        ({"unknown": 1}, None),
    ],
)
def test_tts_rejections_name_the_field(body: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(TTS | body)
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "   "}, "input"),
        ({"input": "x" * 21}, "input"),
        ({"model": 5}, "model"),
        ({"voice": "zz"}, "voice"),
        ({"voice": {"id": "zz"}}, "voice"),
        ({"voice": {"id": ""}}, "voice"),
        ({"voice": {"name": "alloy"}}, "voice"),
        ({"voice": ["alloy"]}, "voice"),
        ({"voice": 3}, "voice"),
        ({"speed": 9.0}, "speed"),
        ({"response_format": "ogg"}, "response_format"),
        ({"response_format": "mp3", "sample_rate": 22051}, "sample_rate"),
        ({"stream_format": "json"}, "stream_format"),
        ({"policy": " "}, "policy"),
    ],
)
def test_openai_rejections_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        speech(SPEECH | body)
    assert raised.value.param == param


def test_a_voice_that_is_neither_a_name_nor_an_object_with_an_id_says_what_it_may_be() -> None:
    with pytest.raises(InvalidRequest, match=r"""'voice' must be a voice name .* or \{"id": """):
        speech({"voice": {"name": "alloy"}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sample_rate": 100}, "'sample_rate' must be between 8000 and 48000, got 100$"),
        ({"sample_rate": 10**20}, "between 8000 and 48000, got a huge integer$"),
        ({"length_scale": 9}, "'length_scale' must be between 0.1 and 5.0, got 9$"),
    ],
)
def test_ranges_are_said_as_declared(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse(TTS | body)
    with pytest.raises(InvalidRequest, match=r"'speed' must be between 0\.25 and 4\.0, got 0\.1$"):
        speech({"speed": 0.1})


@pytest.mark.parametrize(
    ("parser", "body"),
    [
        (parse, {"voice": "v" * 60_000}),
        (parse, {"voice": "multi", "speaker": "s" * 60_000}),
        (parse, {"f" * 60_000: 1, **{f"g{n}": n for n in range(100)}}),
        (speech, {"voice": "v" * 60_000}),
        (speech, {"voice": {"id": "v" * 60_000}}),
    ],
)
def test_long_values_are_cut_in_messages(parser: Any, body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parser(TTS | body if parser is parse else body)
    assert len(raised.value.message) < 300
    assert "…" in raised.value.message


def tts_ssml(document: str) -> Any:
    return parse_tts_request(
        {"text": document, "text_type": "ssml"},
        voices=VOICES,
        default_voice="en_US-joe-medium",
        max_text_chars=5000,
    )


def speech_ssml(document: str) -> Any:
    return speech({"input": document, "text_type": "ssml"}, max_text_chars=5000)


@pytest.mark.parametrize(
    "document",
    [
        f"<speak><{'t' * 4000}/></speak>",
        f'<speak><break {"a" * 4000}="1"/></speak>',
        f'<speak><say-as interpret-as="{"k" * 4000}">1</say-as></speak>',
    ],
)
@pytest.mark.parametrize("parser", [tts_ssml, speech_ssml], ids=["/tts", "/v1"])
def test_ssml_names_and_values_are_cut_in_messages_on_both_routes(
    parser: Any, document: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parser(document)
    assert raised.value.param in {"text", "input"}
    assert len(raised.value.message) < 400
    assert "…" in raised.value.message
