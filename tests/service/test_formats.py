"""Every response_format through POST /tts/sync: stored with its type, decoded by FFmpeg."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tempaudio_service.core.formats import FORMATS
from tempaudio_service.core.settings import ServiceSettings
from tests.conftest import decoded_seconds, list_keys

TEXT = "One sentence to say.  And a second one, a little longer than the first."
# Encoder priming and padding a decoder does not trim (AAC in ADTS: 1024 + up to 1023 frames).
TOLERANCE = 0.1
# The tone synthesizer's audio for TEXT: 10 ms per character of each sentence.
TONE_SECONDS = round(sum(int(22050 * 0.01 * len(s)) for s in TEXT.split("  ")) / 22050, 3)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_is_stored_with_its_type_and_decodes_to_its_duration(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any, fmt: str
) -> None:
    answer = client.post("/tts/sync", json={"text": TEXT, "response_format": fmt})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    spec = FORMATS[fmt]
    key = f"temp-audio/{body['date']}/{body['audio_id']}.{spec.extension}"
    assert list_keys(s3, settings.bucket) == {key}
    assert s3.head_object(Bucket=settings.bucket, Key=key)["ContentType"] == spec.content_type
    assert (body["format"], body["content_type"]) == (fmt, spec.content_type)

    download = httpx.get(body["s3_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == spec.content_type
    expected_rate = 24000 if fmt == "opus" else 22050  # Opus has no 22.05 kHz
    seconds, _ = decoded_seconds(download.content, fmt, rate=expected_rate)
    assert seconds == pytest.approx(body["duration"], abs=TOLERANCE)
    # The duration is the synthesized audio's, exactly, whatever the format adds.
    assert body["duration"] == TONE_SECONDS

    item = dynamodb.get_item(
        TableName=settings.table,
        Key={"date": {"S": body["date"]}, "audio_id": {"S": body["audio_id"]}},
    )["Item"]
    if fmt == "wav":  # the seed's audio keeps the seed's seven attributes
        assert "format" not in item
    else:
        assert item["format"] == {"S": fmt}
    again = client.get(f"/tts/{body['date']}/{body['audio_id']}").json()
    assert (again["format"], again["content_type"]) == (fmt, spec.content_type)


@pytest.mark.parametrize(("fmt", "rate"), [("flac", 16000), ("wav", 8000), ("mp3", 44100)])
def test_sample_rate_resamples_and_keeps_the_duration(
    client: TestClient, fmt: str, rate: int
) -> None:
    plain = client.post("/tts/sync", json={"text": TEXT, "response_format": fmt}).json()
    resampled = client.post(
        "/tts/sync", json={"text": TEXT, "response_format": fmt, "sample_rate": rate}
    ).json()
    assert resampled["sample_rate"] == rate
    assert resampled["duration"] == plain["duration"]
    seconds, decoded_rate = decoded_seconds(httpx.get(resampled["s3_url"]).content, fmt)
    assert decoded_rate == rate
    assert seconds == pytest.approx(plain["duration"], abs=TOLERANCE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"response_format": "ogg"}, "'response_format' must be one of 'wav', 'mp3'"),
        ({"response_format": "opus", "sample_rate": 22050}, "opus takes a 'sample_rate' of 8000"),
        ({"sample_rate": 4000}, "'sample_rate' must be between 8000"),
        ({"sample_rate": 16000.5}, "'sample_rate' must be an integer"),
    ],
)
def test_bad_formats_and_rates_are_refused_and_store_nothing(
    client: TestClient, settings: ServiceSettings, s3: Any, body: dict[str, Any], message: str
) -> None:
    answer = client.post("/tts/sync", json={"text": TEXT, **body})
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"
    assert message in answer.json()["message"]
    assert list_keys(s3, settings.bucket) == set()
