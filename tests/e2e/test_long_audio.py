"""Long audio with the real voice is uploaded as it is made (object_writer.py): ten minutes
of 48 kHz WAV goes to S3 in multipart parts, never whole in memory, and reads back at its
length; formats whose header is rewritten at the end (WAV sizes, MP3's and FLAC's headers,
G.711 in WAV) are whole and exact however they were sent."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
import soundfile
from starlette.testclient import TestClient

from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.encoders import WAV_HEADER_BYTES
from tests.conftest import live_items
from tests.e2e.speech import sync

pytestmark = pytest.mark.piper

# 590 s of audio from two words: what the probe sent (bench.memory measures its memory).
LONG_SSML = "<speak>a" + '<break time="10s"/>' * 59 + "b</speak>"


def _decoded(url: str) -> tuple[Any, int, bytes]:
    body = httpx.get(url, timeout=60).content
    data, rate = soundfile.read(io.BytesIO(body))
    return data, rate, body


def test_ten_minutes_of_48_khz_wav_are_stored_in_parts_and_read_back_whole(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any
) -> None:
    answer = sync(client, text=LONG_SSML, text_type="ssml", sample_rate=48000)
    assert 590 < answer["duration"] < 595
    data, rate, body = _decoded(answer["s3_url"])
    assert rate == 48000
    assert len(data) / rate == pytest.approx(answer["duration"], abs=0.01)
    assert len(body) == WAV_HEADER_BYTES + len(data) * 2  # exact sizes in the header
    # Far over one part: it went up as a multipart upload, completed and tagged.
    key = answer["s3_url"].split(f"/{settings.bucket}/", 1)[1].split("?", 1)[0]
    head = s3.head_object(Bucket=settings.bucket, Key=key, PartNumber=1)
    assert head["PartsCount"] >= 6
    assert s3.get_object_tagging(Bucket=settings.bucket, Key=key)["TagSet"]
    assert s3.list_multipart_uploads(Bucket=settings.bucket).get("Uploads", []) == []
    assert len(live_items(dynamodb, settings.table)) == 1


@pytest.mark.parametrize(
    ("response_format", "rate"), [("mp3", 44100), ("flac", 48000), ("ulaw", 8000)]
)
def test_a_header_rewritten_at_the_end_is_in_the_stored_file(
    client: TestClient, response_format: str, rate: int
) -> None:
    text = '<speak>Hello<break time="10s"/>there.</speak>'
    rate_field = {} if response_format == "ulaw" else {"sample_rate": rate}
    answer = sync(
        client, text=text, text_type="ssml", response_format=response_format, **rate_field
    )
    data, decoded_rate, _ = _decoded(answer["s3_url"])
    assert decoded_rate == rate
    # The length the header declares (FLAC's STREAMINFO, the MP3's Xing frame, the WAV's
    # sizes) is the audio's own: libsndfile reads exactly the reported duration.
    assert len(data) / decoded_rate == pytest.approx(answer["duration"], abs=0.08)


def test_a_long_kept_stream_is_stored_in_parts_as_it_was_sent(
    client: TestClient, settings: ServiceSettings, s3: Any
) -> None:
    text = "<speak>a" + '<break time="10s"/>' * 25 + "b</speak>"  # 23 MB: three parts
    with client.stream(
        "POST", "/tts/stream", json={"text": text, "text_type": "ssml", "sample_rate": 48000}
    ) as response:
        assert response.status_code == 200
        sent = b"".join(response.iter_bytes())
        url = response.headers["x-tempaudio-url"]
    data, rate, stored = _decoded(url)
    assert rate == 48000
    # The stream went out with unknown sizes; the object has the real ones, and the same audio.
    assert stored[WAV_HEADER_BYTES:] == sent[WAV_HEADER_BYTES:]
    assert sent[4:8] == b"\xff\xff\xff\xff"
    assert len(stored) == len(sent) > 20 * 1024 * 1024
    assert len(data) == (len(sent) - WAV_HEADER_BYTES) // 2
    key = url.split(f"/{settings.bucket}/", 1)[1].split("?", 1)[0]
    assert s3.head_object(Bucket=settings.bucket, Key=key, PartNumber=1)["PartsCount"] == 3
