"""The web console's routes (its page, files and security headers, and the setting that
turns it off) and the same-origin read of speech marks it plays with, which answers exactly
whom and what ``GET /tts/{date}/{audio_id}`` answers. The browser tests are tests/console/."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.http import tts_api
from tempaudio_service.storage.store import AudioStore
from tests.conftest import (
    MovableClock,
    ToneSynthesizer,
    documents_file,
    policy_document,
    serving,
)
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
    for name in ("index.html", "console.py", "nope.js"):
        assert client.get(f"/console/{name}").status_code == 404, name
    # The speech is a JSON POST like any client's: the CSRF stance holds for the page too.
    assert client.post("/tts/sync", content=b"text=hi", headers={
        "content-type": "application/x-www-form-urlencoded"}).status_code == 415  # fmt: skip
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/", "/console/{name}", "/tts/{date}/{audio_id}/speech-marks"} <= set(paths)


def raw_get(base: str, target: bytes) -> tuple[int, bytes]:
    """``GET target`` sent byte for byte over a socket (an HTTP client would resolve a
    ``..`` before sending it); the status and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_console_files_cannot_be_reached_by_an_encoded_path(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    with serving(create_app(settings, synth=tone, store=store, clock=lambda: NOW)) as base:
        assert raw_get(base, b"/console/console.js")[0] == 200
        for target in (b"/console/..%2fapp.py", b"/console/%2e%2e%2fapp.py",
                       b"/console/console.js%00", b"/console/%2e%2e/app.py",
                       b"/console/..%5capp.py", b"/console/%2e%2e%2f%2e%2e%2fsettings.py",
                       b"/console/..%252fapp.py"):  # fmt: skip
            status, body = raw_get(base, target)
            assert status == 404, target
            assert json.loads(body)["error"] == "not_found", target


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
    return documents_file(
        tmp_path / "policies.yaml",
        *(policy_document(name, settings.bucket, settings.table) for name in ("first", "second")),
    )


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


def test_an_empty_speech_marks_file_reads_as_empty(client: TestClient) -> None:
    # SSML marks of plain text: none, so the stored file is empty (0 bytes). S3 answers a
    # Range on an empty object with 416 InvalidRange; that is no outage (it was a 503).
    made = client.post("/tts/sync", json={"text": "Hello.", "speech_marks": ["ssml"]}).json()
    assert httpx.get(made["speech_marks_url"]).content == b""
    marks = client.get(f"/tts/{made['date']}/{made['audio_id']}/speech-marks")
    assert marks.status_code == 200, marks.text
    assert marks.content == b""
    assert marks.headers["content-type"] == "application/x-json-stream"


def test_marks_larger_than_the_service_writes_are_a_json_502_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made = client.post("/tts/sync", json={"text": "Hello there.", "speech_marks": ["word"]})
    where = f"/tts/{made.json()['date']}/{made.json()['audio_id']}/speech-marks"
    # An object over the bound is one the service did not write (its own are far smaller).
    monkeypatch.setattr(tts_api, "MAX_MARKS_BYTES", 16)
    answer = client.get(where)
    assert answer.status_code == 502
    assert answer.json()["error"] == "object_too_large"
    assert "marks" not in answer.json()["message"]  # the key goes to the log, not the client
    assert not [record for record in caplog.records if record.exc_info]


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


# What Chromium sends from a page (tests/console shows it): Sec-Fetch-* to secure origins
# only (https, localhost, 127.0.0.1), Origin on every POST, its User-Agent on everything.
SAME_ORIGIN = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"
SPEAK = {"text": "Hello."}


def test_a_browser_naming_another_host_is_refused_dns_rebinding(client: TestClient) -> None:
    # A page of http://evil.example:8080 rebound to 127.0.0.1 is same-origin: its Host is
    # the only sign. Every route refuses it, the API as the console.
    rebound = [
        {**SAME_ORIGIN, "host": "evil.example:8080"},
        {"host": "evil.example:8080", "origin": "http://evil.example:8080"},  # a POST over http
        {"host": "evil.example:8080", "user-agent": CHROME},  # a GET over http
        {**SAME_ORIGIN, "host": "localhost.evil.example"},
        {**SAME_ORIGIN, "host": "127.0.0.1.evil.example:8080"},
    ]
    for headers in rebound:
        for answer in (client.get("/policies", headers=headers),
                       client.post("/tts/sync", json=SPEAK, headers=headers),
                       client.get("/", headers=headers)):  # fmt: skip
            assert answer.status_code == 421, (headers, answer.request.url)
            assert answer.json()["error"] == "unknown_host"
            assert answer.headers["x-content-type-options"] == "nosniff"
    refused = client.get("/v1/models", headers=rebound[0])
    assert refused.status_code == 421
    assert refused.json()["error"]["code"] == "unknown_host"  # OpenAI's shape under /v1
    counted = 'tempaudio_requests_total{method="POST",route="unmatched",status="421"} 5.0'
    assert counted in client.get("/metrics").text


def test_a_browser_at_a_console_host_is_served(client: TestClient) -> None:
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "localhost."):
        headers = {**SAME_ORIGIN, "host": host, "user-agent": CHROME, "origin": f"http://{host}"}
        assert client.get("/policies", headers=headers).status_code == 200, host
        assert client.post("/tts/sync", json=SPEAK, headers=headers).status_code == 200, host
        assert client.get("/", headers=headers).status_code == 200, host


def test_clients_that_are_not_browsers_are_served_whatever_their_host(client: TestClient) -> None:
    for host in ("evil.example:8080", "tempaudio-service.tempaudio.svc:8080", "10.96.0.12",
                 "tempaudio-service", "testserver"):  # fmt: skip
        for agent in ("python-httpx/0.28", "curl/8.5.0", "kube-probe/1.31", "OpenAI/Python 1.5"):
            headers = {"host": host, "user-agent": agent}
            assert client.get("/readyz", headers=headers).status_code == 200, (host, agent)
            assert client.post("/tts/sync", json=SPEAK, headers=headers).status_code == 200


def test_the_console_hosts_setting_names_more_hosts_or_any(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    def statuses(hosts: tuple[str, ...], *names: str) -> list[int]:
        app = create_app(replace(settings, console_hosts=hosts), synth=tone, store=store)
        with TestClient(app) as test:
            return [
                test.get("/voices", headers={**SAME_ORIGIN, "host": name}).status_code
                for name in names
            ]

    names = ("tts.example.com", "a.b.example.com", "example.com", "evil.example", "localhost")
    assert statuses(("*.example.com",), *names) == [200, 200, 421, 421, 421]
    assert statuses(("example.com", "localhost"), *names) == [421, 421, 200, 421, 200]
    assert statuses(("*",), *names) == [200] * 5


@pytest.mark.parametrize("path", ["/", "/console/console.js", "/console/console.css"])
def test_console_files_are_revalidated_by_their_etag(client: TestClient, path: str) -> None:
    first = client.get(path)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert etag[0] == etag[-1] == '"'
    assert client.get(path).headers["etag"] == etag  # the same file, the same tag
    for held in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        same = client.get(path, headers={"if-none-match": held})
        assert same.status_code == 304, held
        assert same.content == b""
        assert same.headers["etag"] == etag
        assert same.headers["content-security-policy"] == first.headers["content-security-policy"]
    changed = client.get(path, headers={"if-none-match": '"an-older-console"'})
    assert changed.status_code == 200
    assert changed.content == first.content
    assert len({client.get(p).headers["etag"] for p in ("/", "/console/console.js")}) == 2
