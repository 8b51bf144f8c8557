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
import random
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from bench.common import SENTENCES, free_port, machine_line, write_section
from bench.synthesis import MOTO, local_moto, tempaudio_server

SHORT = SENTENCES[0]
CORES = 2
VOICE = "en_US-joe-medium"
PART_CHARS = 1500


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
def replicas(count: int, workers: int) -> Iterator[list[str]]:
    """``count`` replicas of the service on one queue, each with ``workers`` job workers
    (and as many synthesis workers), one onnxruntime thread per synthesis."""
    url = queue_url()
    env = {
        "TEMPAUDIO_JOBS_QUEUE_URL": url,
        "TEMPAUDIO_JOBS_WORKERS": str(workers),
        "TEMPAUDIO_JOBS_PART_CHARS": str(PART_CHARS),
        "TEMPAUDIO_ONNX_IDLE_THREADS": "1",
    }
    with contextlib.ExitStack() as stack:
        bases = []
        for _ in range(count):
            port = free_port()
            stack.enter_context(tempaudio_server(workers=workers, port=port, extra_env=env))
            bases.append(f"http://127.0.0.1:{port}")
        yield bases


@dataclass
class JobRun:
    to_running: float
    wall: float
    duration: float
    join: float = 0.0  # seconds the finisher took to join the parts


def joined_seconds(bases: list[str]) -> float:
    """The replicas' ``tempaudio_jobs_assembly_seconds_sum``, added up."""
    total = 0.0
    for base in bases:
        for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
            if line.startswith("tempaudio_jobs_assembly_seconds_sum"):
                total += float(line.split()[-1])
    return total


def run_job(base: str, text: str) -> JobRun:
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
        time.sleep(0.02)
    assert job["status"] == "completed", job
    return JobRun(to_running or 0.0, time.perf_counter() - started, float(job["duration"]))


def requests_alone_and_under_a_job(text: str, rounds: int) -> dict[str, tuple[float, float]]:
    """p50 of c=1 sync latency and stream first audio, without a job and with one."""
    with replicas(1, CORES) as (base,):
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

        def measure() -> dict[str, float]:
            sync(), first_audio()  # warm up
            times: dict[str, list[float]] = {"sync": [], "stream": []}
            for _ in range(rounds):
                times["sync"].append(sync())
                time.sleep(0.3)  # a gap: the job's parts go on between requests
                times["stream"].append(first_audio())
                time.sleep(0.3)
            return {name: statistics.median(values) for name, values in times.items()}

        alone = measure()
        answer = client.post(f"{base}/tts/jobs", json={"text": text})
        answer.raise_for_status()
        location = base + answer.headers["location"]
        while client.get(location).json()["status"] == "queued":
            time.sleep(0.05)
        under = measure()
        still = client.get(location).json()["status"]
        client.delete(location)
    assert still == "running", "the job ended before the requests under it were measured"
    return {name: (alone[name], under[name]) for name in alone}


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    characters = 20_000 if quick else 100_000
    text = article(characters)
    print(f"direct synthesis of {characters} characters ...", flush=True)
    measured = direct(text)
    print(measured, flush=True)
    runs: dict[str, JobRun] = {}
    with local_moto():
        for count, workers in ((1, 1), (1, CORES), (2, 1)):
            with replicas(count, workers) as bases:
                run_job(bases[0], article(3_000, seed=9))  # warm up every replica's path
                before = joined_seconds(bases)
                runs[f"{count}x{workers}"] = run = run_job(bases[0], text)
                run.join = joined_seconds(bases) - before
                print(count, workers, runs[f"{count}x{workers}"], flush=True)
        under = requests_alone_and_under_a_job(text, 6 if quick else 15)
        print(under, flush=True)
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
            f" | {run.wall / direct_wall:.2f}x | {run.to_running:.2f} | {run.duration:.0f} |"
        )
    body = f"""## Jobs: long-form audio over the queue

`python -m bench.jobs{" --quick" if quick else ""}` ({machine_line()}). A {characters:,}-character
text ({measured.parts} parts of at most {PART_CHARS} characters, {measured.audio_seconds / 60:.0f}
minutes of audio) as a job, with the real program and moto's SQS, S3 and DynamoDB in the
benchmark's process. Its parts synthesized directly in one process: **{measured.cpu_seconds:.0f} s**
of CPU one after the other (one onnxruntime thread; {measured.serial_seconds:.0f} s of wall
time), **{measured.threaded_seconds:.1f} s** of wall time on {CORES} threads of one process.
"Efficiency" is that CPU time over the cores the job's workers use, against the job's wall
time (target >= 90%); "overhead" is the job's wall time against the direct synthesis of the
same parts on as many threads (target <= 1.05x); "to running" is from the POST to
the first poll (every 20 ms) that sees `running` (target < 1 s).

| run | cores used | wall (s) | efficiency | overhead | to running (s) | audio (s) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Requests while a job runs on the same replica (2 synthesis workers, 2 job workers: the
job takes both cores between requests; c=1, a
short sentence, p50 of {6 if quick else 15}, alternating with a pause): a part waits between
sentences while a request is admitted, so a request waits at most for the sentences being
made when it arrives.

| request | alone (s) | under a job (s) | ratio |
|---|---|---|---|
| `/tts/sync` latency | {under["sync"][0]:.3f} | {under["sync"][1]:.3f} | {under["sync"][1] / under["sync"][0]:.2f}x |
| `/tts/stream` first audio | {under["stream"][0]:.3f} | {under["stream"][1]:.3f} | {under["stream"][1] / under["stream"][0]:.2f}x |

The finisher joined the parts in {runs["1x1"].join:.1f} s, {runs["1x2"].join:.1f} s and
{runs["2x1"].join:.1f} s, included in the wall times above.

Scale on paper: {paper(measured, runs["1x2"].join, characters)}
"""
    print(body)
    write_section("BENCHMARKS.md", "jobs", body, "Benchmarks")


if __name__ == "__main__":
    main()
