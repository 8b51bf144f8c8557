"""The connection layer (connections.py) under a real uvicorn, spoken to over raw sockets as
careless and hostile clients would: idle and trickling sockets, huge headers, HTTP/1.0,
transfer codings, half-closed clients, cross-site bodies, and probes while client
connections are exhausted.

No sleeps decide anything: deadlines are short, and a test waits for what it expects with
a generous bound that only ends a failing test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tempaudio_service.__main__ import DrainingServer, server_configs
from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer, serving
from tests.service.conftest import NOW

WAIT = 30.0
JSON = "content-type: application/json\r\n"


def _app(settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer) -> Any:
    return create_app(settings, synth=tone, store=store, clock=lambda: NOW)


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset counts as a close)."""
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def _split(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _request(path: str, body: dict[str, Any], version: str = "1.1", extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/{version}\r\nhost: t\r\n{extra}content-length: {len(data)}\r\n\r\n"
    return head.encode() + data


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The audit lines, once there are any (the server writes them after its answer)."""
    for _ in range(int(WAIT * 20)):
        lines = [r.audit for r in caplog.records if r.name == "tempaudio.audit"]  # type: ignore[attr-defined]
        if lines:
            return lines
        threading.Event().wait(0.05)
    raise AssertionError("no audit line")


@pytest.fixture
def base(settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer) -> Iterator[str]:
    with serving(_app(settings, store, tone), header_timeout_seconds=0.5) as url:
        yield url


def test_a_connection_that_sends_nothing_is_closed_after_the_header_deadline(base: str) -> None:
    with _connect(base) as idle:
        assert _read_all(idle) == b""  # closed by the server, with nothing to say


def test_headers_that_trickle_past_the_deadline_get_408_and_a_close(base: str) -> None:
    with _connect(base) as slow:
        slow.sendall(b"POST /tts/sync HTTP/1.1\r\nhost: t\r\n")  # and nothing more
        status, headers, body = _split(_read_all(slow))
    assert status.startswith("HTTP/1.1 408")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "header_timeout"


def test_a_kept_alive_connection_trickling_its_next_request_is_closed(base: str) -> None:
    with _connect(base) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        first = client.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        client.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request's headers never end
        rest = _read_all(client)
    assert rest.startswith(b"HTTP/1.1 408")


def test_headers_over_the_cap_get_431(base: str) -> None:
    with _connect(base) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 40_000)
        status, _, body = _split(_read_all(client))
    assert status.startswith("HTTP/1.1 431")
    assert json.loads(body)["error"] == "headers_too_large"


def test_a_large_body_in_the_same_packet_as_its_headers_is_not_mistaken_for_headers(
    base: str,
) -> None:
    padding = "x" * 50_000  # more than the header cap, in the body
    with _connect(base) as client:
        client.sendall(_request("/tts/sync", {"text": "Hi", "pad": padding}, extra=JSON))
        status, _, body = _split(_read_all_until_json(client))
    assert status.startswith(("HTTP/1.1 413", "HTTP/1.1 422")), status
    assert json.loads(body)["error"] in ("body_too_large", "invalid_request")


def _read_all_until_json(sock: socket.socket) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("path", ["/tts/stream", "/v1/audio/speech"])
def test_http_1_0_gets_a_close_delimited_stream_never_chunks(base: str, path: str) -> None:
    body = (
        {"text": "Hello there. Second sentence."}
        if path == "/tts/stream"
        else {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "wav"}
    )
    with _connect(base) as client:
        client.sendall(_request(path, body, version="1.0", extra=JSON))
        status, headers, audio = _split(_read_all(client))
    assert status.split()[1] == "200"
    assert "transfer-encoding" not in headers
    assert headers.get("connection", "").lower() == "close"
    assert audio.startswith(b"RIFF")


def test_transfer_codings_other_than_chunked_are_refused(base: str) -> None:
    data = b'{"text": "hi"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
    with _connect(base) as client:
        client.sendall(
            b"POST /tts/sync HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: gzip, chunked\r\n\r\n" + chunked
        )
        status, headers, body = _split(_read_all(client))
    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "bad_request"


def test_every_answer_says_nosniff(base: str) -> None:
    made = httpx.post(f"{base}/tts/sync", json={"text": "Hello."}, timeout=WAIT)
    refused = httpx.post(f"{base}/tts/sync", json={"text": ""}, timeout=WAIT)
    missing = httpx.get(f"{base}/nowhere", timeout=WAIT)
    with httpx.stream("POST", f"{base}/tts/stream", json={"text": "Hi."}, timeout=WAIT) as stream:
        streamed = stream.headers
    for headers in (made.headers, refused.headers, missing.headers, streamed):
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
@pytest.mark.parametrize("path", ["/tts/sync", "/tts/stream", "/v1/audio/speech"])
def test_bodies_that_do_not_say_json_get_415(
    base: str, s3: Any, settings: ServiceSettings, path: str, content_type: str | None
) -> None:
    body = json.dumps({"text": "Hi", "model": "tts-1", "input": "Hi", "voice": "alloy"})
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=WAIT)
    # /v1 answers OpenAI's 400 invalid_request_error, with tempaudio's code.
    assert response.status_code == (400 if path.startswith("/v1/") else 415)
    assert "unsupported_media_type" in response.text
    assert s3.list_objects_v2(Bucket=settings.bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_media_types_with_parameters_are_taken(base: str, content_type: str) -> None:
    response = httpx.post(
        f"{base}/tts/sync", content=b'{"text": "Hi"}', headers={"content-type": content_type}
    )
    assert response.status_code == 200


BODIES = {
    "/tts/sync": {"text": "Hi"},
    "/tts/stream": {"text": "Hi"},
    "/v1/audio/speech": {"model": "tts-1", "input": "Hi", "voice": "alloy"},
}


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [("utf-16", "utf-16"), ("ISO-8859-1", "latin-1"), ('"windows-1252"', "cp1252")],
)
@pytest.mark.parametrize("path", sorted(BODIES))
def test_a_charset_other_than_utf_8_gets_415_not_invalid_utf_8(
    base: str, s3: Any, settings: ServiceSettings, path: str, charset: str, encoding: str
) -> None:
    body = json.dumps(BODIES[path], ensure_ascii=False).encode(encoding)
    headers = {"content-type": f"application/json; charset={charset}"}
    response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=WAIT)
    assert response.status_code == (400 if path.startswith("/v1/") else 415)
    assert "unsupported_media_type" in response.text
    assert f"charset={charset.strip(chr(34)).lower()}" in response.text
    assert s3.list_objects_v2(Bucket=settings.bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("path", sorted(BODIES))
def test_a_key_named_twice_is_a_400(
    base: str, s3: Any, settings: ServiceSettings, path: str
) -> None:
    pairs = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in BODIES[path].items())
    field = "input" if path.startswith("/v1/") else "text"
    # Which text was meant? One parser keeps the first value, another the last.
    body = "{" + pairs + f', "{field}": "Something else"' + "}"
    headers = {"content-type": "application/json; charset=UTF-8"}
    response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=WAIT)
    assert response.status_code == 400
    assert "malformed_json" in response.text
    assert f"the key '{field}' twice" in response.text
    assert s3.list_objects_v2(Bucket=settings.bucket).get("KeyCount", 0) == 0


def test_a_client_that_half_closes_is_audited_as_gone(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tempaudio.audit")
    with _connect(base) as client:
        client.sendall(_request("/tts/sync", {"text": "Hello there."}, extra=JSON))
        client.shutdown(socket.SHUT_WR)
        assert _read_all(client) == b""  # uvicorn ends the connection at the client's EOF
    (line,) = _audit_lines(caplog)
    assert (line["outcome"], line["status"]) == ("client_gone", 499)


def test_probes_answer_on_their_own_port_while_client_connections_are_exhausted(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    main_sock, health_sock = socket.socket(), socket.socket()
    main_sock.bind(("127.0.0.1", 0))
    health_sock.bind(("127.0.0.1", 0))
    health_port = health_sock.getsockname()[1]
    health_sock.close()  # uvicorn binds the health port itself
    changed = replace(
        settings, max_connections=4, health_port=health_port, header_timeout_seconds=60
    )
    app = _app(changed, store, tone)
    main_config, health_config = server_configs(app, changed)
    server = DrainingServer(main_config, app, health_config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [main_sock]}, daemon=True)
    thread.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(600):
            if server.started:
                break
            threading.Event().wait(0.05)
        base = f"http://127.0.0.1:{main_sock.getsockname()[1]}"
        health = f"http://127.0.0.1:{health_port}"
        assert httpx.get(f"{health}/readyz", timeout=WAIT).status_code == 200
        idle = [_connect(base) for _ in range(4)]  # every client place, held by idle sockets
        exhausted = httpx.get(f"{base}/healthz", timeout=WAIT)
        assert exhausted.status_code == 503  # uvicorn's own limit on the client port
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(f"{health}{path}", timeout=WAIT).status_code == 200, path
        only_probes = httpx.post(f"{health}/tts/sync", json={"text": "Hi"}, timeout=WAIT)
        assert only_probes.status_code == 404
    finally:
        for sock in idle:
            sock.close()
        server.should_exit = True
        thread.join(WAIT)
        main_sock.close()


def test_an_answer_before_the_body_closes_the_connection_after_it(base: str) -> None:
    # A 415 goes out before the declared body is read; the rest of the body, sent a byte
    # at a time, must not hold the connection (nothing would time it out).
    with _connect(base) as client:
        client.sendall(
            b"POST /tts/sync HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\n"
            b"content-length: 100000\r\n\r\nx"
        )
        status, _, _ = _split(client.recv(65536))
        assert status.startswith("HTTP/1.1 415")
        client.sendall(b"y")  # more of the body
        rest = _read_all(client)  # the server closes
    assert b"HTTP/1.1" not in rest  # one answer, no second 431 for the body's bytes


def test_a_refused_body_is_not_invited_with_100_continue(base: str) -> None:
    with _connect(base) as client:
        client.sendall(
            b"POST /tts/sync HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\n"
            b"expect: 100-continue\r\ncontent-length: 1000000\r\n\r\n"
        )
        answer = _read_all(client)
    assert answer.startswith(b"HTTP/1.1 415"), answer[:40]
    assert b"100 Continue" not in answer


def test_headers_ended_by_bare_newlines_with_a_large_body_are_not_too_large(base: str) -> None:
    body = json.dumps({"text": "Hi", "pad": "x" * 40_000}).encode()
    head = f"POST /tts/sync HTTP/1.1\nhost: t\n{JSON.strip()}\ncontent-length: {len(body)}\n\n"
    with _connect(base) as client:
        client.sendall(head.encode() + body)
        status, _, _ = _split(_read_all_until_json(client))
    assert not status.startswith("HTTP/1.1 431"), status


def test_a_client_gone_while_sending_its_body_is_audited_499_without_errors(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with _connect(base) as client:
        client.sendall(
            b"POST /tts/sync HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"text": '
        )
        threading.Event().wait(0.2)  # the handler is reading the body
    (line,) = _audit_lines(caplog)
    assert (line["outcome"], line["status"]) == ("client_gone", 499)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_stream_refused_at_admission_is_audited_as_refused(
    settings: ServiceSettings,
    store: AudioStore,
    tone: ToneSynthesizer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tempaudio.audit")
    app = create_app(replace(settings, synth_workers=1, synth_queue=0), synth=tone, store=store)
    with serving(app) as url:
        app.state.services.pool._admit()  # the one place is taken
        refused = httpx.post(f"{url}/tts/stream", json={"text": "Hi."}, timeout=WAIT)
    assert refused.status_code == 503
    (line,) = [r.audit for r in caplog.records if r.name == "tempaudio.audit"]  # type: ignore[attr-defined]
    assert (line["stream"], line["outcome"], line["status"]) == ("refused", "overloaded", 503)
