"""Shared pieces of the bench scripts: texts, percentiles, processes, report sections."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

SENTENCES = [
    "The quarterly review meeting starts at nine o'clock tomorrow morning in the large conference room.",
    "Please bring the printed reports and your laptop, because the projector on the third floor is broken.",
    "Our delivery drivers completed more routes this week than in any week since the warehouse opened.",
    "If the weather stays clear, the outdoor maintenance crew will repaint the parking lines on Friday.",
    "Customer satisfaction scores improved after we shortened the average waiting time on the phone line.",
    "The new security badges arrive on Monday, and every employee must collect one at the front desk.",
]
TEXTS = {
    "short": "Your package has been delivered to the front desk of the main office.",
    "medium": " ".join(SENTENCES[:4]),
}


def _long_text(words: int = 400) -> str:
    out: list[str] = []
    index = 0
    while sum(len(s.split()) for s in out) < words:
        out.append(SENTENCES[index % len(SENTENCES)])
        index += 1
    return " ".join(out)


TEXTS["long"] = _long_text()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# How long a synthesis waits for the one before it to be over (see ``alternate``).
SETTLE_SECONDS = 0.1


def alternate(
    calls: Mapping[str, Callable[[], object]], rounds: int, settle: float = 0.0
) -> dict[str, list[float]]:
    """Seconds of each call, the calls taking turns ``rounds`` times at concurrency 1, so a
    drift in the machine's speed (other tenants) hits all alike.

    With ``settle`` (SETTLE_SECONDS where syntheses alternate), each call starts that long
    after the one before it ended: what a call leaves running must not be charged to the
    next. onnxruntime's threads spin after a run unless told to stop: after each raw Piper
    synthesis (its default session) its process burns a core for about 40 ms more
    (measured), which the system measured right after it lost.
    """
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            if settle:
                time.sleep(settle)
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEMPAUDIO_"))}
    env.update(extra)
    return env


@contextlib.contextmanager
def previous_version(revision: str) -> Iterator[dict[str, str]]:
    """The environment that runs the programs as they were at ``revision`` (a git worktree
    of it first on PYTHONPATH), for a comparison with the previous version in the same run;
    the worktree is removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="tempaudio-previous-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield {"PYTHONPATH": f"{folder / 'service'}{os.pathsep}{folder / 'api'}"}
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
            check=False,
            capture_output=True,
        )


def write_section(document: str, name: str, body: str, title: str) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md / RELIABILITY.md."""
    path = REPO / document
    text = path.read_text() if path.exists() else f"# {title}\n\n"
    begin, end = f"<!-- begin:{name} -->", f"<!-- end:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text:
        text = re.sub(
            re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.DOTALL
        )
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def machine_line() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"


def fresh_storage(moto: str, prefix: str) -> str:
    """A new bucket and table of one name on moto's server (TTL on), for one scenario."""
    import uuid

    from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    s3 = make_s3_client(region="us-east-1", endpoint_url=moto, timeout_seconds=10, local=True)
    dynamodb = make_dynamodb_client(
        region="us-east-1", endpoint_url=moto, timeout_seconds=10, local=True
    )
    AudioStore(s3, dynamodb, bucket=name, table=name).ensure_resources()
    return name
