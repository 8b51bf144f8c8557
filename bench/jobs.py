"""Jobs benchmark: a 100,000-character job on one and on two replicas (the real program,
moto's SQS, S3 and DynamoDB in this process), against synthesizing the same parts directly;
requests while a job runs, against none; and the scale on paper.

- **Parallel efficiency**: the parts' synthesis CPU time, measured one after the other
  in this process (one onnxruntime thread), divided by the cores used, against the job's
  wall time from submission to completion.
- **Overhead**: the job's wall time against the same parts synthesized directly, in this
  process, by as many threads as the job's workers: what the queue, the storage of the
  parts and their joining add.
- **Submission to running**: from the POST to the first poll that sees ``running``.
- **Requests under a job**: c=1 ``/tts/sync`` latency and ``/tts/stream`` time to first
  audio of a short sentence, alternating, with a job running on the same replica and
  without.

Writes the "jobs" section of BENCHMARKS.md.

    python -m bench.jobs            # ~12 minutes on 2 cores
    python -m bench.jobs --quick    # 20,000 characters, fewer requests
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import SENTENCES, free_port, machine_line, previous_version, write_section
from bench.synthesis import MOTO, local_moto, tempaudio_server

SHORT = SENTENCES[0]
CORES = 2
VOICE = "en_US-joe-medium"
PART_CHARS = 1500
# Requests under a job: rounds per block, the conditions alternating block by block.
BLOCK = 5
# Each replica's process, by its base URL.
PIDS: dict[str, int] = {}


def article(characters: int, seed: int = 5) -> str:
    """The benchmark's sentences in a shuffled order, a paragraph every six."""
    pick = random.Random(seed)
    sentences: list[str] = []
    while sum(len(s) + 1 for s in sentences) < characters:
        sentences.append(pick.choice(SENTENCES))
    paragraphs = [" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs)[:characters].rsplit(" ", 1)[0] + "."


@dataclass
class Direct:
    cpu_seconds: float  # the parts one after the other, one thread: their synthesis CPU
    serial_seconds: float  # and wall time
    threaded_seconds: float  # the parts on CORES threads: wall time
    audio_seconds: float
    parts: int
    part_seconds: list[float]


def direct(text: str) -> Direct:
    """The job's parts (cut as the service cuts them) synthesized in this process."""
    from tempaudio_service.jobs.parts import split
    from tempaudio_service.speech.script import plain
    from tempaudio_service.speech.synth import PiperSynthesizer
    from tempaudio_service.speech.voices import SynthesisOptions

    synth = PiperSynthesizer(intra_op_threads=1, idle_threads=1)
    parts = split(plain(text), PART_CHARS, len(text), 0.0)
    options = SynthesisOptions()

    def say(index: int) -> int:
        return sum(len(pcm) for pcm in synth.speak(parts[index].script, VOICE, options)) // 2

    say(0)  # warm up
    cpu, wall = time.process_time(), time.perf_counter()
    part_seconds = []
    frames = 0
    for index in range(len(parts)):
        started = time.perf_counter()
        frames += say(index)
        part_seconds.append(time.perf_counter() - started)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    started = time.perf_counter()
    with ThreadPoolExecutor(CORES) as pool:
        list(pool.map(say, range(len(parts))))
    threaded = time.perf_counter() - started
    return Direct(cpu, wall, threaded, frames / 22050, len(parts), part_seconds)


def queue_url() -> str:
    import uuid

    from tempaudio_service.storage.aws_clients import make_sqs_client
    from tempaudio_service.storage.job_queue import ensure_queue

    sqs = make_sqs_client(region="us-east-1", endpoint_url=MOTO[0], timeout_seconds=10, local=True)
    return ensure_queue(sqs, f"bench-jobs-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def replicas(
    count: int, workers: int, *, defaults: bool = False, env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """``count`` replicas of the service on one queue, each with ``workers`` job workers
    (and as many synthesis workers), one onnxruntime thread per synthesis; with
    ``defaults``, the service's own synthesis settings (2 workers, a 2-thread session for a
    request that runs alone); ``env`` adds to their environment (a previous version's)."""
    url = queue_url()
    env = {
        **(env or {}),
        "TEMPAUDIO_JOBS_QUEUE_URL": url,
        "TEMPAUDIO_JOBS_WORKERS": str(workers),
        "TEMPAUDIO_JOBS_PART_CHARS": str(PART_CHARS),
    }
    if not defaults:
        env["TEMPAUDIO_ONNX_IDLE_THREADS"] = "1"
    with contextlib.ExitStack() as stack:
        bases = []
        for _ in range(count):
            port = free_port()
            synthesis_workers = CORES if defaults else workers
            _, process = stack.enter_context(
                tempaudio_server(workers=synthesis_workers, port=port, extra_env=env)
            )
            bases.append(f"http://127.0.0.1:{port}")
            PIDS[bases[-1]] = process.pid
        yield bases


@dataclass
class JobRun:
    to_running: float
    wall: float
    duration: float
    join: float = 0.0  # seconds the finisher took to join the parts
    service_cpu: float = 0.0  # the replicas' CPU seconds during the job
    bench_cpu: float = 0.0  # this process's (moto's and the polls')


def joined_seconds(bases: list[str]) -> float:
    """The replicas' ``tempaudio_jobs_assembly_seconds_sum``, added up."""
    total = 0.0
    for base in bases:
        for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
            if line.startswith("tempaudio_jobs_assembly_seconds_sum"):
                total += float(line.split()[-1])
    return total


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, its children's included (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run_job(base: str, text: str, bases: list[str] | None = None) -> JobRun:
    """Submit ``text`` as a job and poll it to its end; with ``bases`` (the replicas), the
    CPU time they and this process used meanwhile."""
    pids = [PIDS[b] for b in bases or []]
    before = [cpu_seconds(pid) for pid in pids]
    own = time.process_time()
    client = httpx.Client(timeout=60)
    started = time.perf_counter()
    answer = client.post(f"{base}/tts/jobs", json={"text": text})
    answer.raise_for_status()
    location = base + answer.headers["location"]
    to_running = None
    while True:
        job = client.get(location).json()
        if to_running is None and job["status"] != "queued":
            to_running = time.perf_counter() - started
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        # Every 20 ms while the start or the end is near, every second between: a poll is
        # a request and a DynamoDB read, and 50 a second would take a tenth of the cores
        # from the parts (moto shares them here).
        progress = job["progress"]
        near = to_running is None or progress["parts_done"] >= progress["parts_total"] - 1
        time.sleep(0.02 if near else 1.0)
    assert job["status"] == "completed", job
    run = JobRun(to_running or 0.0, time.perf_counter() - started, float(job["duration"]))
    run.service_cpu = sum(cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True))
    run.bench_cpu = time.process_time() - own
    return run


def parts_running(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("tempaudio_jobs_running_parts "):
            return float(line.split()[-1])
    return 0.0


def requests_alone_and_under_a_job(
    text: str, rounds: int, job_workers: int, env: dict[str, str] | None = None
) -> dict[str, tuple[float, float]]:
    """p50 of c=1 sync latency and stream first audio, without a job and with one, on a
    replica with the service's synthesis defaults and ``job_workers`` job workers.

    The two conditions alternate in blocks of ``BLOCK`` rounds (a job submitted, measured
    under, cancelled, its parts ended, then measured alone), so that the machine's drift
    falls on both alike."""
    with replicas(1, job_workers, defaults=True, env=env) as (base,):
        client = httpx.Client(timeout=60)

        def sync() -> float:
            started = time.perf_counter()
            client.post(f"{base}/tts/sync", json={"text": SHORT, "cache": False}).raise_for_status()
            return time.perf_counter() - started

        def first_audio() -> float:
            started = time.perf_counter()
            first = None
            with client.stream("POST", f"{base}/tts/stream", json={"text": SHORT}) as answer:
                answer.raise_for_status()
                for chunk in answer.iter_raw():
                    if chunk and first is None:
                        first = time.perf_counter() - started
            assert first is not None
            return first

        times: dict[str, dict[str, list[float]]] = {
            condition: {"sync": [], "stream": []} for condition in ("alone", "under")
        }

        def measure(condition: str, count: int) -> None:
            for _ in range(count):
                times[condition]["sync"].append(sync())
                time.sleep(0.3)  # a gap: the job's parts go on between requests
                times[condition]["stream"].append(first_audio())
                time.sleep(0.3)

        sync(), first_audio()  # warm up
        for block in range(0, rounds, BLOCK):
            count = min(BLOCK, rounds - block)
            measure("alone", count)
            answer = client.post(f"{base}/tts/jobs", json={"text": text})
            answer.raise_for_status()
            location = base + answer.headers["location"]
            while parts_running(base) < job_workers:  # every job worker on a part
                assert client.get(location).json()["status"] in ("queued", "running")
                time.sleep(0.05)
            measure("under", count)
            still = client.get(location).json()["status"]
            client.delete(location)
            assert still == "running", "the job ended before the requests under it were measured"
            while parts_running(base) > 0:
                time.sleep(0.1)
    median = {
        condition: {name: statistics.median(values) for name, values in found.items()}
        for condition, found in times.items()
    }
    return {name: (median["alone"][name], median["under"][name]) for name in ("sync", "stream")}


# --- the scale on paper: what one job asks of SQS, DynamoDB and S3 -----------------------


def calls_per_job(
    parts: int, replicas: int, part_seconds: float, join_seconds: float
) -> dict[str, float]:
    """The calls the code makes for one job of ``parts`` parts (jobs/), at its defaults:
    visibility 60 s, extended every 20 s; a finisher's hold extended every 20 s."""
    extensions = parts * int(part_seconds // 20)
    sqs = (
        -(-parts // 10)  # SendMessageBatch at submission
        + parts  # ReceiveMessage that returns a part (empty polls aside)
        + extensions  # ChangeMessageVisibility while parts are made
        + int(join_seconds // 20)  # and while the last part's message waits for the join
        + parts  # DeleteMessage
        + 1  # the callback's message (if any)
    )
    dynamodb = (
        2  # PutItem of the record, UpdateItem of the caller's index
        + parts  # GetItem of the record per part
        + 1  # UpdateItem queued -> running
        + parts  # UpdateItem adding the part to the done set
        + 1  # the claim
        + int(join_seconds // 20)  # the hold
        + 1  # GetItem: is the audio's item there already
        + 1  # PutItem of the audio's item
        + 1  # UpdateItem completed
    )
    s3 = (
        2  # PutObject request.json and parts.json
        + 2 * replicas  # each replica reads them once
        + 2 * parts  # PutObject of each part's PCM and marks
        + 2 * parts  # GetObject of each, by the finisher
        + 1  # ListObjectsV2 of the job's folder
        + -(-(2 * parts + 2) // 1000)  # DeleteObjects
    )
    return {"SQS": sqs, "DynamoDB": dynamodb, "S3": s3}


# AWS list prices (us-east-1, on demand): SQS standard $0.40 per million requests; DynamoDB
# on demand $1.25 per million write and $0.25 per million read request units; S3 standard
# $0.005 per thousand PUT/LIST and $0.0004 per thousand GET; one vCPU-hour of a general
# purpose instance (m7i.large: $0.1008 for 2 vCPU).
PRICE_SQS = 0.40e-6
PRICE_DYNAMODB = 1.0e-6  # writes dominate: about 4 writes for each read
PRICE_S3_WRITE, PRICE_S3_READ = 0.005e-3, 0.0004e-3
PRICE_VCPU_HOUR = 0.0504


def paper(measured: Direct, join_seconds: float, characters: int) -> str:
    parts_200k = -(-200_000 // PART_CHARS)
    part_seconds = statistics.median(measured.part_seconds)
    scale = 200_000 / characters  # audio, CPU and the join grow with the text
    audio_hours = measured.audio_seconds * scale / 3600
    join_seconds *= scale
    calls = calls_per_job(parts_200k, 20, part_seconds, join_seconds)
    requests_cost = (
        calls["SQS"] * PRICE_SQS
        + calls["DynamoDB"] * PRICE_DYNAMODB
        + (4 * parts_200k) * PRICE_S3_WRITE / 2
        + (2 * parts_200k) * PRICE_S3_READ
    )
    cpu_hours = measured.cpu_seconds * scale / 3600
    waves = -(-parts_200k // (20 * CORES))
    return (
        f"A 200,000-character job is {parts_200k} parts of about {PART_CHARS} characters"
        f" ({audio_hours:.1f} h of audio at this voice's pace). On 20 replicas of 2 workers,"
        f" the parts go in {waves} waves of about {part_seconds:.0f} s (the median part here),"
        f" then one replica joins them: about {waves * part_seconds + join_seconds:.0f} s"
        f" from submission, against {measured.cpu_seconds * scale / CORES / 60:.0f} minutes on one"
        f" 2-core replica. The job asks SQS for {calls['SQS']:.0f} calls, DynamoDB for"
        f" {calls['DynamoDB']:.0f} and S3 for {calls['S3']:.0f} (the code's calls at its"
        f" defaults; empty long polls aside, about 3 a minute per idle worker). At AWS list"
        f" prices that is ${requests_cost:.4f} of requests per job, and"
        f" {cpu_hours:.2f} vCPU-hours of synthesis (${cpu_hours * PRICE_VCPU_HOUR:.3f}):"
        f" about ${(requests_cost + cpu_hours * PRICE_VCPU_HOUR) / audio_hours:.3f} per"
        f" hour of audio, nearly all of it CPU."
    )


def under_rows(
    text: str, rounds: int, against: str | None
) -> tuple[list[str], dict[str, dict[int, dict[str, tuple[float, float]]]]]:
    """The table of requests under a job: this version (and ``against``'s), with the
    default single job worker and with two."""
    found: dict[str, dict[int, dict[str, tuple[float, float]]]] = {}
    with contextlib.ExitStack() as stack:
        versions: list[tuple[str, dict[str, str]]] = [("now", {})]
        if against:
            versions.append((against, stack.enter_context(previous_version(against))))
        for label, env in versions:
            for job_workers in (1, CORES):
                under = requests_alone_and_under_a_job(text, rounds, job_workers, env)
                print(label, job_workers, under, flush=True)
                found.setdefault(label, {})[job_workers] = under
    rows = []
    for label, by_workers in found.items():
        for job_workers, under in by_workers.items():
            who = "this version" if label == "now" else f"`{label}`"
            workers = (
                "1 job worker (the default)" if job_workers == 1 else f"{job_workers} job workers"
            )
            for name, request in (
                ("sync", "`/tts/sync` latency"),
                ("stream", "`/tts/stream` first audio"),
            ):
                alone, under_job = under[name]
                rows.append(
                    f"| {who} | {workers} | {request} | {alone:.3f} | {under_job:.3f}"
                    f" | {under_job / alone:.2f}x |"
                )
    return rows, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--against", metavar="REV", help="requests under a job: also a previous version's"
    )
    parser.add_argument(
        "--only", choices=["requests"], help="print one part (not written to BENCHMARKS.md)"
    )
    args = parser.parse_args()
    quick = args.quick
    characters = 20_000 if quick else 100_000
    text = article(characters)
    rounds = 10 if quick else 40
    if args.only == "requests":
        with local_moto():
            rows, _ = under_rows(text, rounds, args.against)
        print("\n".join(rows))
        return
    print(f"direct synthesis of {characters} characters ...", flush=True)
    measured = direct(text)
    print(measured, flush=True)
    runs: dict[str, JobRun] = {}
    with local_moto():
        for count, workers in ((1, 1), (1, CORES), (2, 1)):
            with replicas(count, workers) as bases:
                run_job(bases[0], article(3_000, seed=9))  # warm up every replica's path
                before = joined_seconds(bases)
                runs[f"{count}x{workers}"] = run = run_job(bases[0], text, bases)
                run.join = joined_seconds(bases) - before
                print(count, workers, runs[f"{count}x{workers}"], flush=True)
        under, _ = under_rows(text, rounds, args.against)
    rows = []
    for name, key, cores in (
        ("1 replica, 1 job worker (the default)", "1x1", 1),
        ("1 replica, 2 job workers", "1x2", 2),
        ("2 replicas, 1 job worker each", "2x1", 2),
    ):
        run = runs[key]
        direct_wall = measured.serial_seconds if cores == 1 else measured.threaded_seconds
        rows.append(
            f"| {name} | {cores} | {run.wall:.1f} | {measured.cpu_seconds / cores / run.wall:.0%}"
            f" | {run.wall / direct_wall:.2f}x | {run.to_running:.2f} | {run.duration:.0f}"
            f" | {run.service_cpu:.0f} | {run.bench_cpu:.0f} |"
        )
    body = f"""## Jobs: long-form audio over the queue

`python -m bench.jobs{" --quick" if quick else ""}{f" --against {args.against}" if args.against else ""}` ({machine_line()}). A {characters:,}-character
text ({measured.parts} parts of at most {PART_CHARS} characters, {measured.audio_seconds / 60:.0f}
minutes of audio) as a job, with the real program and moto's SQS, S3 and DynamoDB in the
benchmark's process. Its parts synthesized directly in one process: **{measured.cpu_seconds:.0f} s**
of CPU one after the other (one onnxruntime thread; {measured.serial_seconds:.0f} s of wall
time), **{measured.threaded_seconds:.1f} s** of wall time on {CORES} threads of one process.
"Efficiency" is that CPU time over the cores the job's workers use, against the job's wall
time (target >= 90%); "overhead" is the job's wall time against the direct synthesis of the
same parts on as many threads (target <= 1.05x); "to running" is from the POST to
the first poll that sees `running` (target < 1 s). The benchmark polls the job every 20 ms
until it runs and once its last part is near, every second between: each poll is a request
and a DynamoDB read, and moto shares the 2 cores with the workers. The CPU columns are what
the replicas and the benchmark's process (moto and the polls) used during the job.

| run | cores used | wall (s) | efficiency | overhead | to running (s) | audio (s) | replicas' CPU (s) | moto's CPU (s) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Requests while a job runs on the same replica, with the service's synthesis defaults (2
workers, a 2-thread session for a request that runs alone) and 1 or 2 job workers; c=1, a
short sentence, p50 of {rounds} each, alone and under a job alternating in blocks of {BLOCK}
(a job submitted, measured under once every job worker is on a part, cancelled, its parts
ended). A part waits between sentences while a request is admitted; its sentences are made
on the jobs' own threads at `nice 19` with one onnxruntime thread, are not counted as running
syntheses (a request alone still gets the 2-thread session) and never hold up a request's
decoding (jobs/low_priority.py, speech/decode_budget.py). Target: first audio under
a job <= 1.1x alone.

| version | job workers | request | alone (s) | under a job (s) | ratio |
|---|---|---|---|---|---|
{chr(10).join(under)}

The finisher joined the parts in {runs["1x1"].join:.1f} s, {runs["1x2"].join:.1f} s and
{runs["2x1"].join:.1f} s, included in the wall times above.

Scale on paper: {paper(measured, runs["1x2"].join, characters)}
"""
    print(body)
    write_section("BENCHMARKS.md", "jobs", body, "Benchmarks")


if __name__ == "__main__":
    main()
