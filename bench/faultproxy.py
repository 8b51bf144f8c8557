"""An HTTP proxy on loopback that can take an AWS endpoint down, slow it or fail half its calls."""

from __future__ import annotations

import http.client
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ERRORS = {
    # What S3 and DynamoDB answer when they fail; botocore retries both.
    "s3": (503, "application/xml",
           b"<Error><Code>SlowDown</Code><Message>injected fault</Message></Error>"),
    "dynamodb": (500, "application/x-amz-json-1.0",
                 b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected fault"}'),
}  # fmt: skip


class FaultProxy:
    """Modes: ok, down (connections dropped), slow (delay seconds), flaky (fail ``rate``),
    hung (hold every request, like a SIGSTOPped endpoint, until the mode changes; then it
    lands)."""

    def __init__(self, target: str, service: str, *, seed: int = 7) -> None:
        parts = urlsplit(target)
        self.target_host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.mode = "ok"
        self.delay = 0.0
        self.rate = 0.5
        self.forwarded = 0
        self.injected = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        error = _ERRORS[service]
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave as two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK (about 40 ms a call, measured in bench.
            # shared_state), which the proxy would add to every call it passes on.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = proxy.mode
                if mode == "down":
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "slow":
                    time.sleep(proxy.delay)
                while proxy.mode == "hung":
                    time.sleep(0.05)
                if mode == "flaky":
                    with proxy._lock:
                        fail = proxy._random.random() < proxy.rate
                    if fail:
                        proxy.injected += 1
                        status, content_type, payload = error
                        self.send_response(status)
                        self.send_header("Content-Type", content_type)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                upstream = http.client.HTTPConnection(
                    proxy.target_host, proxy.target_port, timeout=60
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                proxy.forwarded += 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in {
                        "transfer-encoding",
                        "connection",
                        "content-length",
                        "date",
                        "server",
                    }:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def set(self, mode: str, *, delay: float = 0.0, rate: float = 0.5) -> None:
        self.mode, self.delay, self.rate = mode, delay, rate

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
