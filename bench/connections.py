"""Idle and slow connections, and what the connection layer costs.

    python -m bench.connections                 # both parts, writes RELIABILITY.md and BENCHMARKS.md
    python -m bench.connections --only idle
    python -m bench.connections --only cost --rounds 200

idle: the service (``tempaudio-service``, its own process) with TEMPAUDIO_MAX_CONNECTIONS
idle sockets opened at once, and as many again that trickle one header byte a second. Each
socket's time until the server closes it is recorded, and the probes are asked every 0.5 s
throughout, on the health port and on the client port. The previous server (plain
``uvicorn --factory`` with httptools and the same connection cap) runs the same scenario in
the same run, with a bounded wait.

cost: the guarded h11 protocol against uvicorn's httptools, the same app, taking turns at
concurrency 1 (``bench.common.alternate``): GET /healthz and POST /tts/sync with a short text.

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import httpx

from bench.common import (
    BIN,
    TEXTS,
    alternate,
    clean_env,
    free_port,
    fresh_storage,
    machine_line,
    percentile,
    wait_http,
    write_section,
)
from tempaudio_service.storage.embedded import LocalAws

CAP = 32  # TEMPAUDIO_MAX_CONNECTIONS for the scenario
# idle: nothing sent; trickling: headers a byte a second; answered: a request refused before
# its body was read (415), whose body then trickles a byte a second.
KINDS = ("idle", "trickling", "answered")
EARLY_ANSWERED = (
    b"POST /tts/sync HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\n"
    b"content-length: 100000\r\n\r\nx"
)
OBSERVE_SECONDS = 40.0  # how long the idle scenario watches at most
PROBE_EVERY = 0.5


@dataclass
class Server:
    base: str
    health: str | None
    process: subprocess.Popen[bytes]


@contextmanager
def server(moto: str, *, guarded: bool, cap: int = CAP) -> Iterator[Server]:
    bucket = table = fresh_storage(moto, "conn")
    port, health_port = free_port(), free_port()
    env = clean_env(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        TEMPAUDIO_LOCAL_AWS="false", TEMPAUDIO_PORT=str(port),
        TEMPAUDIO_BUCKET=bucket, TEMPAUDIO_TABLE=table, TEMPAUDIO_S3_ENDPOINT_URL=moto,
        TEMPAUDIO_LOG_LEVEL="WARNING", TEMPAUDIO_REPEAT_CACHE_ENTRIES="0",
        TEMPAUDIO_MAX_CONNECTIONS=str(cap),
    )  # fmt: skip
    if guarded:
        env["TEMPAUDIO_HEALTH_PORT"] = str(health_port)
        command = [str(BIN / "tempaudio-service")]
    else:  # the previous server: uvicorn's defaults (httptools), the same connection cap
        command = [
            str(BIN / "uvicorn"), "--factory", "tempaudio_service.app:app_from_env",
            "--port", str(port), "--limit-concurrency", str(cap), "--log-level", "warning",
        ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", process)
        yield Server(base, f"http://127.0.0.1:{health_port}" if guarded else None, process)
    finally:
        process.terminate()
        process.wait(30)


def _probe(url: str) -> int:
    try:
        return httpx.get(url, timeout=3).status_code
    except httpx.TransportError:
        return 0


@dataclass
class IdleResult:
    closed: dict[str, list[float]]  # seconds from connect to close, by kind
    still_open: dict[str, int]
    probes: dict[str, Counter[int]]  # status codes, by port


class Sockets:
    """The scenario's sockets: opened at once, some trickling, each timed until closed."""

    def __init__(self, port: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.opened: dict[socket.socket, tuple[str, float]] = {}
        self.closed: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for kind in KINDS:
            for _ in range(CAP):
                sock = socket.create_connection(("127.0.0.1", port))
                if kind == "answered":  # a body the service refuses before reading it
                    sock.sendall(EARLY_ANSWERED)
                sock.setblocking(False)
                self.opened[sock] = (kind, time.monotonic())
                self.selector.register(sock, selectors.EVENT_READ)

    def trickle(self, byte: bytes) -> None:
        """A byte more of each trickler's headers, and of each answered socket's body."""
        for sock, (kind, _) in list(self.opened.items()):
            if kind in ("trickling", "answered"):
                with suppress(OSError):
                    sock.send(byte)

    def reap(self) -> None:
        """Time the sockets the server closed (a 408 before the close is read past)."""
        for key, _ in self.selector.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if data:
                continue
            kind, at = self.opened.pop(sock)
            self.closed[kind].append(time.monotonic() - at)
            self.selector.unregister(sock)
            sock.close()

    def close_rest(self) -> dict[str, int]:
        still_open = {kind: 0 for kind in self.closed}
        for sock, (kind, _) in self.opened.items():
            still_open[kind] += 1
            sock.close()
        return still_open


def idle_scenario(srv: Server) -> IdleResult:
    """``CAP`` idle sockets and ``CAP`` tricklers; when each was closed; probe answers."""
    started = time.monotonic()
    sockets = Sockets(int(srv.base.rsplit(":", 1)[1]))
    request = b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-slow: " + b"a" * 1000
    probes: dict[str, Counter[int]] = {"health": Counter(), "client": Counter()}
    stop = threading.Event()

    def ask() -> None:
        while not stop.wait(PROBE_EVERY):
            probes["client"][_probe(f"{srv.base}/healthz")] += 1
            if srv.health is not None:
                probes["health"][_probe(f"{srv.health}/healthz")] += 1

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    sent = 0
    while sockets.opened and time.monotonic() - started < OBSERVE_SECONDS:
        if time.monotonic() - started >= sent and sent < len(request):  # a byte a second
            sockets.trickle(request[sent : sent + 1])
            sent += 1
        sockets.reap()
    stop.set()
    asker.join(10)
    return IdleResult(sockets.closed, sockets.close_rest(), probes)


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.1f} / {percentile(values, 50):.1f} / {max(values):.1f} s"


def _answers(counts: Counter[int]) -> str:
    if not counts:
        return "-"
    total = sum(counts.values())
    shown = ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(counts.items()))
    return f"{counts[200]}/{total} ok ({shown})"


def idle(moto: str) -> str:
    rows = []
    for name, guarded in (("tempaudio (h11, header deadline 10 s, health port)", True),
                          ("previous (uvicorn httptools, no deadline)", False)):  # fmt: skip
        with server(moto, guarded=guarded) as srv:
            result = idle_scenario(srv)
        closed, still, probes = result.closed, result.still_open, result.probes
        rows.append(
            f"| {name} | "
            + " | ".join(f"{_seconds(closed[k])} ({still[k]} open at the end)" for k in KINDS)
            + f" | {_answers(probes['health'])} | {_answers(probes['client'])} |"
        )
        print(rows[-1], flush=True)
    return "\n".join([
        "## Idle and slow connections",
        "",
        (f"{CAP} idle sockets (connected, nothing sent), {CAP} trickling sockets (one header "
         f"byte a second) and {CAP} sockets whose request was answered before its body was read "
         "(a text/plain POST, 415) and whose body then trickles, a byte a second, all opened at "
         f"once against a pod with TEMPAUDIO_MAX_CONNECTIONS={CAP}; "
         f"watched for at most {OBSERVE_SECONDS:.0f} s. Close times are min / median / max "
         f"from connect; probes are GET /healthz every {PROBE_EVERY} s on the health port "
         "(TEMPAUDIO_HEALTH_PORT, what the chart's probes use) and on the client port."),
        "",
        "| server | idle sockets closed after | trickling sockets closed after | answered sockets closed after | probes, health port | probes, client port |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        ("The client port answers uvicorn's 503 while its places are taken, as it should "
         "(the cap bounds memory); the probes no longer share those places, and no socket "
         "holds one past the header deadline."),
    ])  # fmt: skip


def cost(moto: str, rounds: int) -> str:
    with server(moto, guarded=True) as new, server(moto, guarded=False) as old:
        clients = {"h11 guarded": httpx.Client(timeout=60), "httptools": httpx.Client(timeout=60)}
        bases = {"h11 guarded": new.base, "httptools": old.base}
        body = json.dumps({"text": TEXTS["short"], "cache": False})
        headers = {"content-type": "application/json"}
        rows = []
        for label, path, payload in (("GET /healthz", "/healthz", None),
                                     ("POST /tts/sync, short text", "/tts/sync", body)):  # fmt: skip

            def call(name: str, path: str = path, payload: str | None = payload) -> None:
                url = bases[name] + path
                if payload is None:
                    clients[name].get(url).raise_for_status()
                else:
                    clients[name].post(url, content=payload, headers=headers).raise_for_status()

            times = alternate(
                {name: (lambda name=name: call(name)) for name in bases},
                rounds if payload is None else max(10, rounds // 10),
            )
            new_p50 = percentile(times["h11 guarded"], 50) * 1000
            old_p50 = percentile(times["httptools"], 50) * 1000
            rows.append(
                f"| {label} | {new_p50:.2f} ms | {old_p50:.2f} ms | {new_p50 / old_p50:.2f}x |"
            )
            print(rows[-1], flush=True)
    return "\n".join([
        "## Connection layer cost",
        "",
        ("The service's HTTP/1.1 layer (uvicorn's h11 protocol with the header deadline and "
         "cap, connections.py) against uvicorn's httptools, the same app, taking turns at "
         "concurrency 1; p50 of each."),
        "",
        "| request | h11 guarded | httptools | ratio |",
        "| --- | --- | --- | --- |",
        *rows,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["idle", "cost"], action="append")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    parts = args.only or ["idle", "cost"]
    with LocalAws() as local:
        if "idle" in parts:
            write_section(
                "RELIABILITY.md", "idle-connections",
                f"{idle(local.endpoint_url)}\n\nMeasured by `python -m bench.connections --only idle`"
                f" on {machine_line()}.", "Reliability",
            )  # fmt: skip
        if "cost" in parts:
            write_section(
                "BENCHMARKS.md", "connection-cost",
                f"{cost(local.endpoint_url, args.rounds)}\n\nMeasured by `python -m bench.connections"
                f" --only cost` on {machine_line()}.", "Benchmarks",
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
