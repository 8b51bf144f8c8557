"""How every answer is framed, whatever its route (middleware.py, app.py): no cache keeps an
answer that carries a presigned URL, and no path redirects to a Host the client named."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


def test_answers_that_carry_a_presigned_url_are_never_stored_by_a_cache(
    client: TestClient,
) -> None:
    made = client.post("/tts/sync", json={"text": "Hello.", "speech_marks": ["word"]})
    read = client.get(f"/tts/{made.json()['date']}/{made.json()['audio_id']}")
    streamed = client.post("/tts/stream", json={"text": "Hello."})
    sse = {"model": "tts-1", "input": "Hi.", "voice": "alloy", "stream_format": "sse"}
    events = client.post("/v1/audio/speech", json=sse | {"policy": "default"})
    assert "s3_url" in made.json()
    assert "s3_url" in read.json()
    assert "x-tempaudio-url" in streamed.headers
    assert "x-tempaudio-url" in events.headers
    assert events.headers["content-type"].startswith("text/event-stream")
    for answer in (made, read, streamed, events):
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/voices/", "/tts/sync/", "/policies/"])
def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_client_s_host(
    client: TestClient, path: str
) -> None:
    method = "POST" if path.startswith("/tts/") else "GET"
    response = client.request(
        method, path, json={"text": "Hi."}, headers={"host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"] == "not_found"
