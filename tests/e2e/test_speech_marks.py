"""Speech marks and captions with the real voice: marks index the request's text, follow the
audio, live and die with it."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
import soundfile
from starlette.testclient import TestClient

from tempaudio_service.cleanup.job import S3Cleaner
from tempaudio_service.core.settings import ServiceSettings
from tests.conftest import list_keys, scan_items
from tests.e2e.speech import STEADY, marks_of, sync

pytestmark = pytest.mark.piper

NUMBERS = "Dr. Smith paid $4,815 on 3/12 at 5:30pm, e.g. in the U.S.A. It is a test."
# The words of NUMBERS as written, in order.
NUMBERS_WORDS = ["Dr", "Smith", "paid", "$4,815", "on", "3/12", "at", "5:30pm", "e.g.",
                 "in", "the", "U.S.A.", "It", "is", "a", "test"]  # fmt: skip


def test_word_marks_index_the_written_words_in_order_within_the_audio(
    client: TestClient,
) -> None:
    answer = sync(client, text=NUMBERS, speech_marks=["word", "sentence"])
    marks = marks_of(answer)
    words = [m for m in marks if m["type"] == "word"]
    assert [m["value"] for m in words] == NUMBERS_WORDS
    for mark in marks:
        assert NUMBERS[mark["start"] : mark["end"]] == mark["value"]
        assert set(mark) == {"time", "type", "start", "end", "value"}
    times = [m["time"] for m in words]
    assert times == sorted(times)
    assert len(set(times)) == len(times)  # every word has its own time
    assert times[0] >= 0
    assert times[-1] < answer["duration"] * 1000
    # "$4,815" is five spoken words: the next written word starts well over a second later.
    money = NUMBERS_WORDS.index("$4,815")
    assert times[money + 1] - times[money] > 1000
    sentences = [m for m in marks if m["type"] == "sentence"]
    assert [m["value"] for m in sentences][-1] == "It is a test"
    assert sentences[0]["time"] <= words[0]["time"]


def test_only_the_requested_mark_types_are_kept(client: TestClient) -> None:
    marks = marks_of(sync(client, text="One. Two three.", speech_marks=["sentence"]))
    assert [(m["type"], m["value"]) for m in marks] == [
        ("sentence", "One"),
        ("sentence", "Two three"),
    ]


def test_word_starts_follow_the_audio_s_own_silences(client: TestClient) -> None:
    """Between sentences the voice is silent: with a second of silence requested between
    them, the second sentence's first word starts about a second later than without it."""
    text = "Hello there. General Kenobi."
    plain = [m for m in marks_of(sync(client, text=text, speech_marks=["word"], **STEADY))]
    paused = marks_of(
        sync(client, text=text, speech_marks=["word"], sentence_silence=1.0, **STEADY)
    )
    moved = paused[2]["time"] - plain[2]["time"]
    assert plain[2]["value"] == "General"
    assert 950 <= moved <= 1050
    assert paused[1]["time"] == plain[1]["time"]


def test_captions_are_cues_of_the_words_in_time(client: TestClient) -> None:
    text = " ".join(["The meeting starts at nine in the main hall."] * 4)
    answer = sync(client, text=text, captions="vtt", speech_marks=["word"])
    vtt = httpx.get(answer["captions_url"])
    assert vtt.status_code == 200
    assert vtt.headers["content-type"].startswith("text/vtt")
    body = vtt.text
    assert body.startswith("WEBVTT\n\n")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+?)(?:\n\n|\n?$)",
                      body, flags=re.DOTALL)  # fmt: skip
    assert len(cues) >= 4  # a sentence starts a cue
    shown = " ".join(" ".join(c[2].split()) for c in cues)
    assert shown == text
    for _, _, cue_text in cues:
        assert all(len(line) <= 42 for line in cue_text.splitlines())
    ends = [c[1] for c in cues]
    assert ends == sorted(ends)
    srt = httpx.get(sync(client, text=text, captions="srt")["captions_url"]).text
    assert srt.startswith("1\n00:00:00,")


def test_marks_and_captions_live_and_go_with_their_audio(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any
) -> None:
    answer = sync(client, text="Your code is 4 8 1 5.", speech_marks=["word"], captions="srt")
    stem = answer["s3_url"].split("?")[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    keys = list_keys(s3, settings.bucket)
    assert {key.rsplit("/", 1)[-1] for key in keys} == {
        f"{stem}.wav", f"{stem}.marks", f"{stem}.srt",
    }  # fmt: skip
    [item] = [i for i in scan_items(dynamodb, settings.table) if i["audio_id"] == {"S": stem}]
    assert item["speech_marks_s3_url"]["S"].endswith(f"/{stem}.marks")  # type: ignore[index]
    assert item["captions_s3_url"]["S"].endswith(f"/{stem}.srt")  # type: ignore[index]
    # GET signs all three again.
    again = client.get(f"/tts/{answer['date']}/{answer['audio_id']}").json()
    assert httpx.get(again["speech_marks_url"]).text == httpx.get(answer["speech_marks_url"]).text

    written = [s3.head_object(Bucket=settings.bucket, Key=key)["LastModified"] for key in keys]
    cleaner = S3Cleaner(s3, bucket=settings.bucket, prefix=settings.prefix)
    # Not before the retention has passed for every one of them ...
    early = cleaner.run(now=min(written) + settings.retention - timedelta(seconds=5),
                        retention=settings.retention, dry_run=False)  # fmt: skip
    assert early.deleted == 0
    assert list_keys(s3, settings.bucket) == keys
    # ... and all of them once it has.
    cleaner.run(now=max(written) + settings.retention + timedelta(seconds=2),
                retention=settings.retention, dry_run=False)  # fmt: skip
    assert list_keys(s3, settings.bucket) == set()


def test_a_repeat_copies_the_marks_with_the_audio(client: TestClient) -> None:
    first = sync(client, text="Repeat after me.", speech_marks=["word"], captions="vtt")
    second = sync(client, text="Repeat after me.", speech_marks=["word"], captions="vtt")
    assert second["cached"] is True
    assert second["audio_id"] != first["audio_id"]
    assert marks_of(second) == marks_of(first)
    assert httpx.get(second["captions_url"]).text == httpx.get(first["captions_url"]).text
    # Without marks the request is another one: not a copy of audio that has them.
    plain = sync(client, text="Repeat after me.")
    assert plain["cached"] is False
    assert plain["speech_marks_url"] is None


def test_openai_sse_sends_marks_before_the_audio_that_holds_them(client: TestClient) -> None:
    text = "First words here. Then some more."
    with client.stream(
        "POST", "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav",
              "stream_format": "sse", "speech_marks": ["word"]},
    ) as response:  # fmt: skip
        assert response.status_code == 200
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done"
    assert kinds[0] == "speech.mark"  # before any audio
    words = [e["mark"] for e in events if e["type"] == "speech.mark"]
    assert [w["value"] for w in words] == ["First", "words", "here", "Then", "some", "more"]
    audio = b"".join(
        base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta"
    )
    data, rate = soundfile.read(io.BytesIO(audio))
    assert words[-1]["time"] < len(data) * 1000 / rate
    # Each mark comes before the delta that holds its audio: what was sent before a mark
    # ends at or before the mark's time.
    sent = 0
    for event in events:
        if event["type"] == "speech.audio.delta":
            sent += len(base64.b64decode(event["audio"]))
        elif event["type"] == "speech.mark":
            sent_ms = max(0, sent - 44) / 2 / rate * 1000  # 16-bit WAV after its header
            assert sent_ms <= event["mark"]["time"] + 1


def test_marks_need_a_voice_that_times_words_and_a_place_to_go(client: TestClient) -> None:
    stream = client.post("/tts/stream", json={"text": "hi", "speech_marks": ["word"]})
    assert stream.status_code == 422
    assert stream.json()["error"] == "invalid_request"
    v1 = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alloy",
                                               "speech_marks": ["word"]})  # fmt: skip
    assert v1.status_code == 400  # OpenAI's status for an invalid request
    assert "stream_format sse" in v1.json()["error"]["message"]
    bad = client.post("/tts/sync", json={"text": "hi", "speech_marks": ["viseme"]})
    assert bad.status_code == 422
    twice = client.post("/tts/sync", json={"text": "hi", "speech_marks": ["word", "word"]})
    assert twice.status_code == 422
