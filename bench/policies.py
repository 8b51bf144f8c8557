"""What serving requests from TempAudioPolicies costs: request latency against the service
as it was before policies, in the same run.

Three peers, each its own process with the real voice, one after another request by
request (concurrency 1, short text), so a drift in the machine's speed hits all alike:

- ``before``: the commit before the policy work (a git worktree of it, same venv);
- ``one policy``: this tree, the built-in policy with the ``TEMPAUDIO_*`` shorthand;
- ``64 policies``: this tree, a file of 64 policies (the default cap), requests naming the
  last one.

Also the lookup itself, in process: ``PolicyBook.resolve`` among 64 policies plus the
store for it. Writes the "policies" section of BENCHMARKS.md.

    python -m bench.policies [--quick] [--base REV]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import yaml

from bench.common import (
    REPO,
    TEXTS,
    clean_env,
    free_port,
    machine_line,
    wait_http,
    write_section,
)
from tempaudio_service.core.locations import Storage
from tempaudio_service.policy.policies import PolicyBook, ServedPolicy
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.store import AudioStore, Stores, make_dynamodb_client, make_s3_client

POLICIES = 64


def base_revision() -> str:
    """The parent of the commit that added the policy module."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--",
         "service/tempaudio_service/policy/policies.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not added:
        raise SystemExit("policies.py is not committed yet: pass --base REV")
    return f"{added[-1]}^"


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tempaudio-base-") as parent:
        path = Path(parent) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(path), revision],
                       cwd=REPO, check=True, capture_output=True)  # fmt: skip
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)],
                           cwd=REPO, check=False, capture_output=True)  # fmt: skip


@contextmanager
def service(env: dict[str, str], body: dict[str, str]) -> Iterator[Callable[[], float]]:
    port = free_port()
    # The repeat cache off: repeated texts are measured as syntheses, as before it existed.
    env = {**env, "TEMPAUDIO_PORT": str(port), "TEMPAUDIO_SYNTH_WORKERS": "2",
           "TEMPAUDIO_LOG_LEVEL": "WARNING", "TEMPAUDIO_REPEAT_CACHE_ENTRIES": "0"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "tempaudio_service"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", process)
        client = httpx.Client(timeout=120)

        def call() -> float:
            started = time.perf_counter()
            answer = client.post(f"http://127.0.0.1:{port}/tts/sync", json=body)
            answer.raise_for_status()
            return time.perf_counter() - started

        yield call
    finally:
        process.terminate()
        process.wait(30)


def policy_file(directory: Path, endpoint: str) -> Path:
    documents = [
        {
            "apiVersion": "tempaudio.dev/v1alpha1",
            "kind": "TempAudioPolicy",
            "metadata": {"name": f"team-{index:02d}", "namespace": "bench"},
            "spec": {
                "retention": "24h",
                "storage": {
                    "bucket": "tempaudio",
                    "prefix": f"team-{index:02d}/",
                    "endpointURL": endpoint,
                },
                "metadata": {"table": "tempaudio"},
            },
        }
        for index in range(POLICIES)
    ]
    path = directory / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def lookup_microseconds(endpoint: str) -> float:
    """One request's policy work: resolve a name among 64 policies, then its store."""
    entries = [
        ServedPolicy("bench", f"team-{i:02d}", timedelta(hours=24),
                     Storage("tempaudio", f"team-{i:02d}/", "us-east-1", "tempaudio", endpoint))
        for i in range(POLICIES)
    ]  # fmt: skip
    book = PolicyBook.of(entries, default="team-00")
    stores = Stores(timeout_seconds=5)

    def lookup() -> None:
        stores.get(book.resolve("team-63", time.monotonic()).storage)

    lookup()
    runs = 20_000
    return min(timeit.repeat(lookup, number=runs, repeat=5)) / runs * 1e6


def run(quick: bool, base: str) -> str:
    rounds = 6 if quick else 25
    with ExitStack() as stack:
        local = stack.enter_context(LocalAws())
        endpoint = local.endpoint_url
        AudioStore(
            make_s3_client(region="us-east-1", endpoint_url=endpoint, timeout_seconds=5,
                           local=True),
            make_dynamodb_client(region="us-east-1", endpoint_url=endpoint, timeout_seconds=5,
                                 local=True),
            bucket="tempaudio", table="tempaudio",
        ).ensure_resources()  # fmt: skip
        tree = stack.enter_context(worktree(base))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "TEMPAUDIO_LOCAL_AWS": "false"}  # fmt: skip
        shorthand = clean_env(**credentials, TEMPAUDIO_S3_ENDPOINT_URL=endpoint)
        text = {"text": TEXTS["short"]}
        peers = {
            # The old tree first on the path: its packages, this venv's dependencies.
            "before": stack.enter_context(service(
                {**shorthand, "PYTHONPATH": f"{tree / 'service'}:{tree / 'operator'}"}, text)),
            "one policy": stack.enter_context(service(shorthand, text)),
            "64 policies": stack.enter_context(service(
                clean_env(**credentials,
                          TEMPAUDIO_POLICY_FILE=str(policy_file(directory, endpoint))),
                {**text, "policy": "team-63"})),
        }  # fmt: skip
        for call in peers.values():  # warm up
            call()
            call()
        latencies: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(rounds):
            for name, call in peers.items():
                latencies[name].append(call())
        lookup = lookup_microseconds(endpoint)

    before = statistics.median(latencies["before"])
    rows = "\n".join(
        f"| {name} | {statistics.median(values) * 1000:.0f} ms | "
        f"{statistics.median(values) / before:.3f}x |"
        for name, values in latencies.items()
    )
    low, _, high = statistics.quantiles(latencies["before"], n=4)
    worst = max(statistics.median(v) for v in latencies.values()) - before
    verdict = "within that noise" if worst <= (high - low) else "more than that noise: look closer"
    return (
        f"Policy lookup, {machine_line()}: `python -m bench.policies{' --quick' if quick else ''}`"
        f" ({rounds} rounds, base {base}).\n\n"
        "`POST /tts/sync`, short text, real voice, concurrency 1; the three services take\n"
        "turns request by request, so they share the machine's drift.\n\n"
        "| service | p50 | vs before |\n| --- | --- | --- |\n"
        f"{rows}\n\n"
        f"The lookup itself (resolve a name among {POLICIES} policies, then its store):"
        f" {lookup:.1f} µs per request, against a p50 of {before * 1000:.0f} ms. The"
        f" interquartile range of `before` alone is {low * 1000:.0f} to {high * 1000:.0f} ms;"
        f" the largest p50 difference, {worst * 1000:+.0f} ms, is {verdict}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policies")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--base", help="revision to compare with (default: before policies)")
    args = parser.parse_args(argv)
    base = args.base or base_revision()
    body = run(args.quick, base)
    print(body)
    write_section("BENCHMARKS.md", "policies", "## Policy lookup\n\n" + body, "Benchmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
