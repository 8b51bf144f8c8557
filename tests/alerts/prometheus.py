"""Debian's Prometheus server for a test: loopback only, a temporary TSDB, our rules loaded,
scraping the targets given and nothing else."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.alerts.rules import tool, write
from tests.controlplane import free_port

SCRAPE_SECONDS = 1


@dataclass(frozen=True)
class Target:
    job: str
    address: str  # host:port on 127.0.0.1
    labels: dict[str, str]


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def query(self, expression: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        body = answer.json()
        assert body["status"] == "success", (expression, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(self, expression: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Poll until ``expression`` returns at least one series."""
        deadline = time.monotonic() + timeout
        while not (found := self.query(expression)):
            assert time.monotonic() < deadline, f"no series for {expression}"
            time.sleep(SCRAPE_SECONDS / 2)
        return found

    def rules(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]


@contextmanager
def running(directory: Path, targets: list[Target], rules: dict[str, Any]) -> Iterator[Prometheus]:
    write(directory / "rules.yaml", rules)
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "1s"},
        "rule_files": [str(directory / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": target.job,
                "static_configs": [{"targets": [target.address], "labels": target.labels}],
            }
            for target in targets
        ],
    }
    assert all(t.address.startswith("127.0.0.1:") for t in targets)
    write(directory / "prometheus.yml", config)
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = Prometheus(f"http://127.0.0.1:{port}", log)
        try:
            _wait_ready(server, process)
            yield server
        finally:
            process.terminate()
            process.wait(30)


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, server.log.read_text()
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.2)
