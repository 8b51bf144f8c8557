"""How long the probes wait while the service phonemizes long text: ``/healthz`` latency on
the health port (TEMPAUDIO_HEALTH_PORT) and on the main port, probed every 50 ms, while
three requests at a time make the service read a lot of text (issue 29, item 1).

espeak holds the GIL for the whole of one call, so one call on a long text stops every
thread of the process, the probes' server among them. Two loads, three requests at once,
``--rounds`` times each (and more, for ``MIN_LOAD_SECONDS`` at least):

- ``lexicon``: "zz zz ..." (4,997 characters) under a policy whose lexicon says "zz" as
  499 characters: about 833,000 characters said;
- ``long text``: 100,000 characters of plain text (TEMPAUDIO_MAX_TEXT_CHARS at its
  highest), with TEMPAUDIO_MAX_AUDIO_SECONDS=5 so that each is refused by the audio
  estimate right after it is phonemized: what is measured is the phonemizing.

Each tree is the real program with the real voice on moto's server: this one and the
service as it was at ``--base REV`` (a git worktree, same venv; by default the commit before
text was phonemized in pieces). Writes the "stalls" section of BENCHMARKS.md.

    python -m bench.stalls [--base REV] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bench.common import (
    REPO,
    SENTENCES,
    clean_env,
    free_port,
    machine_line,
    percentile,
    wait_http,
    write_section,
)
from bench.policies import worktree
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client

CONCURRENCY = 3
PROBE_EVERY_SECONDS = 0.05
# A load runs its rounds, and more until it has run this long (enough probes to rank).
MIN_LOAD_SECONDS = 6.0
ALIAS = "a " * 249 + "a"  # 499 characters
LONG_TEXT_CHARS = 100_000


def long_text() -> str:
    text = ""
    while len(text) < LONG_TEXT_CHARS:
        text += " ".join(SENTENCES) + " "
    return text[:LONG_TEXT_CHARS].strip()


LOADS: dict[str, dict[str, str]] = {
    "lexicon": {"text": " ".join(["zz"] * 1666), "policy": "lex"},
    "long text": {"text": long_text(), "policy": "plain"},
}


def policy_file(directory: Path, endpoint: str, name: str) -> Path:
    storage = {"bucket": name, "endpointURL": endpoint}
    documents = [
        {
            "apiVersion": "tempaudio.dev/v1alpha1",
            "kind": "TempAudioLexicon",
            "metadata": {"name": "zz", "namespace": "bench"},
            "spec": {"entries": [{"grapheme": "zz", "alias": ALIAS}]},
        },
        *(
            {
                "apiVersion": "tempaudio.dev/v1alpha1",
                "kind": "TempAudioPolicy",
                "metadata": {"name": policy, "namespace": "bench"},
                "spec": {
                    "retention": "1h",
                    "storage": storage,
                    "dynamodb": {"table": name},
                    "repeatCache": False,
                    **extra,
                },
            }
            for policy, extra in (("lex", {"lexicons": ["zz"]}), ("plain", {}))
        ),
    ]
    path = directory / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


@dataclass(frozen=True)
class Ports:
    main: str
    health: str


@contextmanager
def service(env: dict[str, str]) -> Iterator[Ports]:
    port, health = free_port(), free_port()
    env = {
        **env,
        "TEMPAUDIO_PORT": str(port),
        "TEMPAUDIO_HEALTH_PORT": str(health),
        "TEMPAUDIO_SYNTH_WORKERS": str(CONCURRENCY),
        "TEMPAUDIO_SYNTH_QUEUE": "8",
        "TEMPAUDIO_MAX_TEXT_CHARS": str(LONG_TEXT_CHARS),
        "TEMPAUDIO_MAX_BODY_BYTES": "262144",
        "TEMPAUDIO_MAX_AUDIO_SECONDS": "5",
        "TEMPAUDIO_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tempaudio_service"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", process, timeout=600)
        yield Ports(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health}")
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class Probe:
    """``/healthz`` of one port, every PROBE_EVERY_SECONDS, until stopped."""

    base: str
    seconds: list[float] = field(default_factory=list)
    failed: int = 0

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.base}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.seconds.append(time.perf_counter() - started)
                self.failed += not ok
                stop.wait(PROBE_EVERY_SECONDS)


@dataclass(frozen=True)
class Run:
    probes: dict[str, Probe]
    statuses: Counter[int]
    request_seconds: list[float]


def probed(ports: Ports, load: Callable[[], tuple[Counter[int], list[float]]]) -> Run:
    probes = {"health port": Probe(ports.health), "main port": Probe(ports.main)}
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in probes.values()]
    for thread in threads:
        thread.start()
    try:
        statuses, seconds = load()
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    return Run(probes, statuses, seconds)


def rounds_of(
    base: str, body: dict[str, str], rounds: int
) -> Callable[[], tuple[Counter[int], list[float]]]:
    def load() -> tuple[Counter[int], list[float]]:
        statuses: Counter[int] = Counter()
        seconds: list[float] = []

        def one(_: int) -> None:
            started = time.perf_counter()
            with httpx.Client(timeout=300) as client:
                statuses[client.post(f"{base}/tts/sync", json=body).status_code] += 1
            seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        done = 0
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            while done < rounds or time.perf_counter() - started < MIN_LOAD_SECONDS:
                list(pool.map(one, range(CONCURRENCY)))
                done += 1
        return statuses, seconds

    return load


def idle(seconds: float) -> Callable[[], tuple[Counter[int], list[float]]]:
    def load() -> tuple[Counter[int], list[float]]:
        time.sleep(seconds)
        return Counter(), []

    return load


def measure(env: dict[str, str], rounds: int) -> dict[str, Run]:
    with service(env) as ports:
        httpx.post(
            f"{ports.main}/tts/sync", json={"text": "Warm up.", "policy": "plain"}, timeout=120
        ).raise_for_status()
        runs = {"idle": probed(ports, idle(3.0))}
        for name, body in LOADS.items():
            runs[name] = probed(ports, rounds_of(ports.main, body, rounds))
    return runs


def rows(tree: str, runs: dict[str, Run]) -> list[str]:
    out = []
    for load, run in runs.items():
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(run.statuses.items())) or "-"
        took = f"{statistics.median(run.request_seconds):.2f} s" if run.request_seconds else "-"
        for port, probe in run.probes.items():
            ms = [s * 1000 for s in probe.seconds]
            out.append(
                f"| {tree} | {load} | {answers} | {took} | {port} | {len(ms)} | {probe.failed} |"
                f" {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} |"
            )
    return out


def run(base: str, rounds: int) -> str:
    table: list[str] = []
    with ExitStack() as stack:
        local = stack.enter_context(LocalAws())
        endpoint = local.endpoint_url
        name = "stalls"
        AudioStore(
            make_s3_client(
                region="us-east-1", endpoint_url=endpoint, timeout_seconds=5, local=True
            ),
            make_dynamodb_client(
                region="us-east-1", endpoint_url=endpoint, timeout_seconds=5, local=True
            ),
            bucket=name,
            table=name,
        ).ensure_resources()
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = clean_env(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            TEMPAUDIO_LOCAL_AWS="false",
            TEMPAUDIO_POLICY_FILE=str(policy_file(directory, endpoint, name)),
        )
        tree = stack.enter_context(worktree(base))
        # The old tree first on the path: its packages, this venv's dependencies.
        path = ":".join(str(tree / part) for part in ("api", "service", "operator"))
        trees = {f"before ({base})": {**env, "PYTHONPATH": path}, "this tree": env}
        for label, tree_env in trees.items():
            table += rows(label, measure(tree_env, rounds))
    return (
        f"Probe stalls, {machine_line()}: `python -m bench.stalls --base {base}"
        f" --rounds {rounds}`.\n\n"
        f"`GET /healthz` every {PROBE_EVERY_SECONDS * 1000:.0f} ms on each port while"
        f" {CONCURRENCY} `POST /tts/sync` run at once, {rounds} rounds a load or more, for"
        f" {MIN_LOAD_SECONDS:g} s at least; real voice,"
        f" {CONCURRENCY} synthesis workers, TEMPAUDIO_MAX_TEXT_CHARS={LONG_TEXT_CHARS:,},"
        " TEMPAUDIO_MAX_AUDIO_SECONDS=5. Probe latencies in ms.\n\n"
        "| tree | load | answers | request p50 | probed | probes | failed | p50 | p99 | max |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(table)
        + "\n\nBefore, a request was one espeak call on its whole said text, and espeak holds the"
        " GIL through a call: every thread waited, the probes' servers too. Now a lexicon's"
        " said text over the text limit is refused before anything is phonemized, and long"
        " text is read in pieces of at most 1,000 characters."
    )


def base_revision() -> str:
    """The parent of the commit that made the phonemizer read text in pieces."""
    added = subprocess.run(
        [
            "git",
            "log",
            "-S",
            "MAX_PHONEMIZE_CHARS",
            "--format=%H",
            "--",
            "service/tempaudio_service/speech/chunking.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("chunking.MAX_PHONEMIZE_CHARS is not committed yet: pass --base REV")
    return f"{added[-1]}^"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stalls", description=__doc__)
    parser.add_argument("--base", help="revision to compare with (default: before the pieces)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 3 requests a load")
    args = parser.parse_args(argv)
    base = args.base or base_revision()
    report = run(base, args.rounds)
    print(report)
    write_section("BENCHMARKS.md", "stalls", "## Probe stalls\n\n" + report, "Benchmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
