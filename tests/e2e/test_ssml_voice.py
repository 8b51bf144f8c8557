"""SSML and lexicons with the real voice: what the markup and a policy's lexicon say is what
the voice says, and speech marks follow it."""

from __future__ import annotations

import io
import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import documents_file, lexicon_document, policy_document
from tests.e2e import speech
from tests.e2e.speech import STEADY, marks_of

pytestmark = pytest.mark.piper


def sync(client: TestClient, **body: Any) -> dict[str, Any]:
    return speech.sync(client, **{**STEADY, **body})


def audio_of(answer: dict[str, Any]) -> Any:
    data, rate = soundfile.read(io.BytesIO(httpx.get(answer["s3_url"]).content), dtype="int16")
    assert rate == 22050
    return data


def test_a_two_second_break_moves_the_next_word_by_two_seconds(client: TestClient) -> None:
    said = '<speak>Please hold <break time="2s"/> while we connect you.</speak>'
    joined = "<speak>Please hold while we connect you.</speak>"
    held = marks_of(sync(client, text=said, text_type="ssml", speech_marks=["word"]))
    plain = marks_of(sync(client, text=joined, text_type="ssml", speech_marks=["word"]))
    assert [m["value"] for m in held] == ["Please", "hold", "while", "we", "connect", "you"]
    for mark in held:
        assert said[mark["start"] : mark["end"]] == mark["value"]
    moved = held[2]["time"] - plain[2]["time"]
    # Two seconds of silence, and the words around it said as a phrase's end and start.
    assert 1900 <= moved <= 2600
    assert abs(held[0]["time"] - plain[0]["time"]) <= 50


def test_say_as_characters_spells_the_word_out(client: TestClient) -> None:
    text = '<speak><say-as interpret-as="characters">NASA</say-as></speak>'
    spelled = sync(client, text=text, text_type="ssml", speech_marks=["word"])
    word = sync(client, text="<speak>NASA</speak>", text_type="ssml")
    # Four letters take far longer than the word "NASA", and are one written word.
    assert spelled["duration"] > 1.6 * word["duration"]
    [mark] = marks_of(spelled)
    assert (mark["value"], mark["start"]) == ("NASA", text.index("NASA"))


def test_a_mark_tag_is_an_ssml_speech_mark_at_its_place(client: TestClient) -> None:
    text = '<speak>First part. <mark name="middle"/>Second part.</speak>'
    marks = marks_of(sync(client, text=text, text_type="ssml", speech_marks=["word", "ssml"]))
    [middle] = [m for m in marks if m["type"] == "ssml"]
    assert middle["value"] == "middle"
    assert text[middle["start"] : middle["end"]] == '<mark name="middle"/>'
    second = next(m for m in marks if m["value"] == "Second")
    part = next(m for m in marks if m["value"] == "part")
    assert part["time"] < middle["time"] <= second["time"]


def test_malformed_ssml_is_a_422_with_its_position(client: TestClient) -> None:
    response = client.post("/tts/sync", json={"text": "<speak>Hi <b>there</speak>",
                                              "text_type": "ssml"})  # fmt: skip
    assert response.status_code == 422
    assert "line 1" in response.json()["message"]
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><speak>&lol2;</speak>')  # fmt: skip
    refused = client.post("/tts/sync", json={"text": bomb, "text_type": "ssml"})
    assert refused.status_code == 422


def lexicon_file(tmp_path: Path, settings: ServiceSettings, alias: str) -> Path:
    entries = [{"grapheme": "SQL", "alias": alias},
               {"grapheme": "Kubernetes", "phoneme": "kˌuːbɚnˈɛtiːz"}]  # fmt: skip
    return documents_file(
        tmp_path / "policies.yaml",
        lexicon_document("tech", entries),
        policy_document("said", settings.bucket, settings.table, lexicons=["tech"]),
        policy_document("plain", settings.bucket, settings.table),
    )


def test_a_lexicon_alias_changes_what_a_policy_says(
    tmp_path: Path, settings: ServiceSettings, store: AudioStore, piper: Any
) -> None:
    path = lexicon_file(tmp_path, settings, "sequel")
    file_settings = replace(settings, policy_source="file", policy_file=path,
                            default_policy="default/plain")  # fmt: skip
    with TestClient(create_app(file_settings, synth=piper, store=store)) as client:
        said = sync(client, text="Query it with SQL.", policy="said", speech_marks=["word"])
        spelled = sync(client, text="Query it with SQL.", policy="plain")
        alias = sync(client, text="Query it with sequel.", policy="plain")
        # Said as the alias, sample for sample; not as the letters the plain policy says.
        heard, expected = audio_of(said), audio_of(alias)
        assert heard.shape == expected.shape
        assert (heard == expected).all()
        assert said["duration"] != spelled["duration"]
        # The mark is for the written word.
        assert [m["value"] for m in marks_of(said)] == ["Query", "it", "with", "SQL"]
        phoneme = sync(client, text="Kubernetes", policy="said")
        raw = sync(client, text="[[kˌuːbɚnˈɛtiːz]]", policy="plain")
        heard, expected = audio_of(phoneme), audio_of(raw)
        assert heard.shape == expected.shape
        assert (heard == expected).all()


def test_a_mark_after_the_last_words_still_reaches_an_sse_stream(client: TestClient) -> None:
    text = '<speak>Thanks for calling.<mark name="end"/></speak>'
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav",
            "stream_format": "sse", "text_type": "ssml", "speech_marks": ["ssml", "word"]}  # fmt: skip
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        assert response.status_code == 200
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    marks = [e["mark"] for e in events if e["type"] == "speech.mark"]
    assert [m["value"] for m in marks] == ["Thanks", "for", "calling", "end"]
    assert [e["type"] for e in events][-2:] == ["speech.mark", "speech.audio.done"]


def test_ssml_that_says_nothing_is_refused_never_read_as_markup(client: TestClient) -> None:
    for text in ("<speak></speak>", "<speak> <!-- a secret --> </speak>"):
        response = client.post("/tts/sync", json={"text": text, "text_type": "ssml"})
        assert response.status_code == 422, text
        assert response.json()["error"] == "no_speech"


_CUE = re.compile(r"(\S+) --> (\S+)\n(.+?)\n")


def milliseconds(clock: str) -> int:
    """A WebVTT timestamp, hh:mm:ss.ttt, in milliseconds."""
    hours, minutes, seconds = clock.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def test_ssml_marks_and_captions_hold_the_written_words_and_end_with_them(
    client: TestClient,
) -> None:
    text = (
        '<speak><say-as interpret-as="digits">12</say-as><say-as interpret-as="digits">34'
        '</say-as> end.<break time="10s"/>Tom &amp; Jerry.</speak>'
    )
    answer = sync(client, text=text, text_type="ssml", speech_marks=["word"], captions="vtt")
    marks = marks_of(answer)
    assert [m["value"] for m in marks] == ["12", "34", "end", "Tom", "&amp;", "Jerry"]
    for before, after in itertools.pairwise(marks):
        assert before["end"] <= after["start"]
    cues = _CUE.findall(httpx.get(answer["captions_url"]).text)
    assert [shown for _, _, shown in cues] == ["12 34 end", "Tom &amp; Jerry"]
    (first_start, first_end), (second_start, second_end) = (
        (milliseconds(start), milliseconds(end)) for start, end, _ in cues
    )
    # The first cue ends with "end", long before the ten seconds of silence are over.
    assert first_end - first_start < 4000
    assert first_end + 9000 < second_start
    assert second_end - second_start <= 7000
