"""What the real-voice tests of speech marks, SSML and lexicons share: a synthesis that must
succeed, its marks as JSON, and the knobs that make the voice repeatable."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.testclient import TestClient

# No noise: the same phonemes make the same audio, sample for sample.
STEADY = {"noise_scale": 0.0, "noise_w": 0.0}


def sync(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/tts/sync", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def marks_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The speech marks file the answer signs, served as Polly serves it."""
    download = httpx.get(answer["speech_marks_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/x-json-stream"
    return [json.loads(line) for line in download.text.splitlines()]
