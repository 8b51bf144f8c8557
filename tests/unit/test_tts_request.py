from typing import Any

import pytest

from tempaudio_service.errors import InvalidRequest, TextTooLong, UnknownVoice
from tempaudio_service.synth import VoiceInfo
from tempaudio_service.tts_request import parse_tts_request

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
