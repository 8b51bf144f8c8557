"""Jobs on a real node (issue 31): three replicas make one long job's parts from the queue in
moto, and a pod deleted mid-job costs the job nothing but time.

pytest takes the files in name order, so this module meets the session's fresh release before
test_running.py does, and leaves it as it found it: one replica, and none of its audio in the
bucket or the table (test_running.py checks that every object there has its item).
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import soundfile
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.conftest import NAMESPACE, RELEASE, run, wait_for
from tests.cluster.test_running import cluster_url, core, ready_replicas, service_pods
from tests.conftest import list_keys
from tests.controlplane import REPO
from tests.e2e.speech import marks_of
from tests.e2e.test_jobs import article

pytestmark = pytest.mark.usefixtures("release")
log = logging.getLogger("e2e")
HEALTH_PORT = 8081  # the chart's service.healthPort: probes and /metrics
ENDED = ("completed", "failed", "cancelled")
# Parts done before a pod is deleted: the job is under way on every replica by then.
DELETE_AFTER_PARTS = 3
JOB_TIMEOUT = 600  # seconds; about 30 minutes of audio on two shared cores


@dataclass(frozen=True)
class PartCounts:
    """What a pod's /metrics says of the job parts it handled."""

    done: float
    running: float


def part_counts(pod: Any) -> PartCounts | None:
    """The pod's counts, or None while it has no address or no longer answers."""
    if not pod.status.pod_ip:
        return None
    try:
        text = httpx.get(f"http://{pod.status.pod_ip}:{HEALTH_PORT}/metrics", timeout=5).text
    except httpx.TransportError:
        return None
    done = running = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tempaudio_jobs_parts_total" and sample.labels["outcome"] == "done":
                done = sample.value
            elif sample.name == "tempaudio_jobs_running_parts":
                running = sample.value
    return PartCounts(done, running)


def scale(kube: client.ApiClient, replicas: int) -> None:
    """Only the replica count changes (no new pod template): scaling back removes pods."""
    chart = str(REPO / "charts/tempaudio")
    upgrade = ["upgrade", RELEASE, chart, "-n", NAMESPACE, "--reuse-values", "--wait"]
    run("helm", *upgrade, "--set", f"service.replicaCount={replicas}", "--timeout", "6m")
    wait_for(
        lambda: len(service_pods(kube)) == ready_replicas(kube) == replicas or None,
        timeout=240,
        what=f"{replicas} ready service pods and no others",
    )


def remove_audio(s3: Any, dynamodb: Any, job: dict[str, Any]) -> None:
    """The job's audio, its speech marks and its item: test_running.py expects none but its
    own pairs."""
    stem = f"temp-audio/{job['date']}/{job['audio_id']}."
    for key in list_keys(s3, "tempaudio", stem):
        s3.delete_object(Bucket="tempaudio", Key=key)
    dynamodb.delete_item(
        TableName="tempaudio",
        Key={"date": {"S": job["date"]}, "audio_id": {"S": job["audio_id"]}},
    )


@dataclass
class Watch:
    """What the test saw while the job ran: each pod's parts done (kept for a deleted pod as
    last seen) and the pod it deleted, with the job's progress then."""

    done_on: dict[str, float]
    victim: str | None = None
    progress_then: dict[str, int] | None = None

    def look(self, kube: client.ApiClient) -> dict[str, float]:
        """Scrape every service pod; the parts each is making now."""
        running: dict[str, float] = {}
        for pod in service_pods(kube):
            counts = part_counts(pod)
            if counts is not None:
                name = pod.metadata.name
                self.done_on[name] = max(self.done_on.get(name, 0.0), counts.done)
                running[name] = counts.running
        return running

    def delete_a_busy_pod(self, kube: client.ApiClient, job: dict[str, Any]) -> None:
        """Delete a pod making a part now (any pod if none is), as a rollout or an eviction
        would: SIGTERM after the preStop sleep."""
        running = self.look(kube) or {service_pods(kube)[0].metadata.name: 0.0}
        self.victim = max(running, key=lambda name: running[name])
        self.progress_then = job["progress"]
        core(kube).delete_namespaced_pod(self.victim, NAMESPACE)
        log.info(
            "jobs: deleted pod %s (%.0f parts running on it) at %s",
            self.victim,
            running[self.victim],
            job["progress"],
        )


def follow(kube: client.ApiClient, location: str, watch: Watch) -> dict[str, Any]:
    """Poll the job through the Service about once a second until it ends, scraping the
    pods and deleting one once a few parts are done."""
    deadline = time.monotonic() + JOB_TIMEOUT
    job: dict[str, Any] = {}
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < deadline:
            try:
                answer = http.get(location)
            except httpx.TransportError:  # the Service may still pick the deleted pod
                answer = None
            if answer is not None and answer.status_code == 200:
                job = answer.json()
                if job["status"] in ENDED:
                    watch.look(kube)
                    return job
                if watch.victim is None and job["progress"]["parts_done"] >= DELETE_AFTER_PARTS:
                    watch.delete_a_busy_pod(kube, job)
            watch.look(kube)
            time.sleep(1)
    raise AssertionError(f"the job did not end in {JOB_TIMEOUT} s: {job}")


def check_audio(text: str, job: dict[str, Any]) -> None:
    """The audio decodes at the reported length; its word marks index the text in order,
    every written word once (no part lost, none counted twice)."""
    download = httpx.get(job["s3_url"], timeout=120)
    assert download.status_code == 200
    audio, rate = soundfile.read(io.BytesIO(download.content), dtype="int16")
    assert audio.shape[0] / rate == pytest.approx(job["duration"], abs=0.01)
    marks = marks_of(job)
    for mark in marks:
        assert text[mark["start"] : mark["end"]] == mark["value"], mark
    words = [m for m in marks if m["type"] == "word"]
    assert len(words) == len(text.split())
    times = [m["time"] for m in words]
    assert times == sorted(times)
    assert times[-1] < job["duration"] * 1000
    starts = [m["start"] for m in words]
    assert starts == sorted(starts)


def test_three_replicas_share_a_long_job_and_a_pod_deleted_mid_job_loses_none_of_it(
    kube: client.ApiClient, moto: dict[str, Any]
) -> None:
    started = time.monotonic()
    text = article(30_000)
    scale(kube, 3)
    job: dict[str, Any] = {}
    try:
        base = cluster_url(kube)
        submitted = httpx.post(
            f"{base}/tts/jobs", json={"text": text, "speech_marks": ["word"]}, timeout=60
        )
        assert submitted.status_code == 202, submitted.text
        submitted_at = time.monotonic()
        watch = Watch(done_on={})
        job = follow(kube, base + submitted.headers["location"], watch)
        made_in = time.monotonic() - submitted_at
        assert job["status"] == "completed", job
        progress = job["progress"]
        assert progress["parts_done"] == progress["parts_total"] >= 30
        assert progress["characters_done"] == len(text)
        # The pod went while the job was under way, not after.
        assert watch.progress_then is not None
        assert watch.progress_then["parts_done"] < progress["parts_total"]
        busy = sorted(name for name, done in watch.done_on.items() if done > 0)
        assert len(busy) >= 2, watch.done_on
        check_audio(text, job)
        job_id = job["job_id"]
        assert not {k for k in list_keys(moto["s3"], "tempaudio", "temp-audio/") if job_id in k}
        log.info(
            "jobs: %d characters in %d parts, %.0f s of audio made in %.0f s; parts done"
            " per pod %s (pod %s deleted at %d parts done)",
            len(text),
            progress["parts_total"],
            job["duration"],
            made_in,
            watch.done_on,
            watch.victim,
            watch.progress_then["parts_done"],
        )
    finally:
        if job.get("audio_id"):
            remove_audio(moto["s3"], moto["dynamodb"], job)
        scale(kube, 1)  # as installed (values-small.yaml)
    log.info("jobs: the test took %.0f s with scaling up and back", time.monotonic() - started)
