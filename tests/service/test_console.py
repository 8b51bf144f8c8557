"""The web console's routes (its page, files and security headers, and the setting that
turns it off) and the same-origin read of speech marks it plays with, which answers exactly
whom and what ``GET /tts/{date}/{audio_id}`` answers. The browser tests are tests/console/."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import yaml
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.settings import ServiceSettings
from tempaudio_service.store import AudioStore
from tests.conftest import MovableClock, ToneSynthesizer
from tests.service.conftest import NOW
from tests.service.test_callers import CLIENTS, auth, serve


def test_the_console_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<label for="text">Text</label>' in page.text
    assert '<button id="speak" type="submit">Speak</button>' in page.text
    # Its own script and style only: nothing inline, nothing from elsewhere.
    assert "<style" not in page.text
    assert "<script>" not in page.text.replace(" ", "")
    assert "http" not in page.text.replace('href="/openapi.json"', "")
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["media-src"] == "'self' https: http:"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, media in (
        ("console.js", "text/javascript"),
        ("console.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        answer = client.get(f"/console/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media)
        assert answer.headers["content-security-policy"] == page.headers["content-security-policy"]
    for name in ("index.html", "../app.py", "console.py", "nope.js"):
        assert client.get(f"/console/{name}").status_code == 404, name
    # The speech is a JSON POST like any client's: the CSRF stance holds for the page too.
    assert client.post("/tts/sync", content=b"text=hi", headers={
        "content-type": "application/x-www-form-urlencoded"}).status_code == 415  # fmt: skip
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/", "/console/{name}", "/tts/{date}/{audio_id}/speech-marks"} <= set(paths)


def test_one_setting_turns_the_console_off(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    app = create_app(replace(settings, console=False), synth=tone, store=store, clock=lambda: NOW)
    with TestClient(app) as client:
        for path in ("/", "/console/console.js"):
            missing = client.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"] == "not_found"
        paths = client.get("/openapi.json").json()["paths"]
        assert "/" not in paths
        assert "/console/{name}" not in paths
        assert client.post("/tts/sync", json={"text": "Still here."}).status_code == 200


def two_policies(tmp_path: Path, settings: ServiceSettings) -> Path:
    """Two policies on one bucket and table: each must hide the other's audio."""
    documents = [
        {"apiVersion": "tempaudio.dev/v1alpha1", "kind": "TempAudioPolicy",
         "metadata": {"name": name},
         "spec": {"retention": "1h", "storage": {"bucket": settings.bucket},
                  "dynamodb": {"table": settings.table}}}
        for name in ("first", "second")
    ]  # fmt: skip
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_speech_marks_answer_what_the_audio_lookup_answers(
    tmp_path: Path, settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    clock = MovableClock(NOW)
    file_settings = replace(
        settings, policy_source="file", policy_file=two_policies(tmp_path, settings),
        default_policy="first",
    )  # fmt: skip
    with TestClient(create_app(file_settings, synth=tone, clock=clock)) as client:
        body = {"text": "Hello from the console.", "speech_marks": ["word", "sentence"]}
        made = client.post("/tts/sync", json=body).json()
        where = f"/tts/{made['date']}/{made['audio_id']}"
        marks = client.get(f"{where}/speech-marks?policy=first")
        assert marks.status_code == 200
        assert marks.headers["content-type"] == "application/x-json-stream"
        # The object the presigned URL names, byte for byte.
        assert marks.content == httpx.get(made["speech_marks_url"]).content
        assert b'"value":"Hello"' in marks.content
        assert client.get(f"{where}/speech-marks").status_code == 200  # the default policy
        # Under the other policy, as the audio itself: not found.
        for path in (where, f"{where}/speech-marks"):
            hidden = client.get(f"{path}?policy=second")
            assert hidden.status_code == 404, path
            assert hidden.json()["error"] == "not_found"
            assert client.get(f"{path}?policy=third").status_code == 422, path
        # Audio made without marks has none to read.
        plain = client.post("/tts/sync", json={"text": "No marks."}).json()
        assert (
            client.get(f"/tts/{plain['date']}/{plain['audio_id']}/speech-marks").status_code == 404
        )
        for malformed in (
            "/tts/2026-13-01/x/speech-marks",
            f"/tts/{made['date']}/nope/speech-marks",
        ):
            assert client.get(malformed).status_code == 404, malformed
        # Once the audio has expired, its marks have too.
        clock.now += timedelta(hours=1, seconds=1)
        assert client.get(f"{where}/speech-marks").status_code == 404
        assert client.get(where).status_code == 404


def test_speech_marks_answer_the_maker_and_the_readers_only(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    test, _, _ = serve(tmp_path, settings, CLIENTS)
    with test:
        body = {"text": "Hello.", "speech_marks": ["word"]}
        made = test.post("/tts/sync", json=body, headers=auth("t-notifier")).json()
        where = f"/tts/{made['date']}/{made['audio_id']}/speech-marks"
        assert test.get(where, headers=auth("t-notifier")).status_code == 200
        assert test.get(where, headers=auth("t-support")).status_code == 200  # by label
        assert test.get(where, headers=auth("t-stranger")).status_code == 404
        unauthenticated = test.get(where)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
