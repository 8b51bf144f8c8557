"""tempaudio on a real node: pods, probes, DNS, RBAC, the CronJob's Job, upgrade, uninstall.

One release for the module, in the order a platform team meets it. Nothing here plays the
kubelet: pods run from the image built from the Dockerfile, and the cleanup summary comes
back through the container's real termination message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from kubernetes import client

from tempaudio_service.storage import layout
from tests.cluster.conftest import IMAGE, NAMESPACE, run, wait_for
from tests.conftest import list_keys, live_items, put_object_created_at

pytestmark = pytest.mark.usefixtures("release")
# What the run log (make e2e) shows of each step.
log = logging.getLogger("e2e")
SERVICE = "ta-tempaudio-service"
POLICY = "ta-tempaudio"
CRONJOB = "ta-tempaudio-cleanup"
# What a client pod runs: POST by the Service's DNS name, then download the presigned URL.
CLIENT = r"""
import io, json, sys, urllib.request, wave
request = urllib.request.Request(sys.argv[1] + "/tts/sync", method="POST",
    data=json.dumps({"text": "Hello from a pod on a real node."}).encode(),
    headers={"content-type": "application/json"})
item = json.load(urllib.request.urlopen(request, timeout=180))
audio = urllib.request.urlopen(item["s3_url"], timeout=30).read()
with wave.open(io.BytesIO(audio)) as w:
    print(json.dumps({"item": item, "bytes": len(audio), "rate": w.getframerate(),
                      "seconds": w.getnframes() / w.getframerate()}))
"""


# A client pod streams OpenAI's endpoint (opus, kept under the policy) and decodes the audio
# with the image's own PyAV; it prints how many chunks came and whether the kept object is
# the stream.
STREAM_CLIENT = r"""
import io, json, sys, urllib.request
import av
body = {"model": "tts-1", "voice": "alloy", "response_format": "opus", "policy": sys.argv[2],
        "input": "First sentence from a pod. Second sentence. And a third one."}
request = urllib.request.Request(sys.argv[1] + "/v1/audio/speech", method="POST",
    data=json.dumps(body).encode(), headers={"content-type": "application/json"})
chunks = []
with urllib.request.urlopen(request, timeout=180) as response:
    headers = response.headers  # case-insensitive
    while chunk := response.read1(65536):
        chunks.append(chunk)
audio = b"".join(chunks)
with av.open(io.BytesIO(audio)) as container:
    seconds = sum(f.samples / f.sample_rate for f in container.decode(audio=0))
kept = urllib.request.urlopen(headers["X-Tempaudio-Url"], timeout=30).read()
print(json.dumps({"chunks": len(chunks), "seconds": seconds, "kept_is_stream": kept == audio,
                  "type": headers["Content-Type"], "encoding": headers.get("Transfer-Encoding"),
                  "id": headers["X-Tempaudio-Audio-Id"], "date": headers["X-Tempaudio-Date"]}))
"""


def core(kube: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


def service_pods(kube: client.ApiClient) -> list[Any]:
    selector = "app.kubernetes.io/component=service"
    return list(core(kube).list_namespaced_pod(NAMESPACE, label_selector=selector).items)


def cluster_url(kube: client.ApiClient) -> str:
    """The Service's ClusterIP, which kube-proxy makes reachable from this machine too."""
    ip = core(kube).read_namespaced_service(SERVICE, NAMESPACE).spec.cluster_ip
    return f"http://{ip}:8080"


def policy(kube: client.ApiClient) -> Any:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "tempaudio.dev", "v1alpha1", NAMESPACE, "tempaudiopolicies", POLICY
    )


def ran_by_a_job(pod: Any) -> bool:
    return any(owner.kind == "Job" for owner in pod.metadata.owner_references or [])


def test_every_pod_is_ready_and_helm_test_passes(kube: client.ApiClient) -> None:
    pods = core(kube).list_namespaced_pod(NAMESPACE).items
    assert {p.metadata.labels["app.kubernetes.io/component"] for p in pods} >= {
        "service", "operator",
    }  # fmt: skip
    for pod in pods:
        log.info("pod %s: %s, image %s", pod.metadata.name, pod.status.phase,
                 pod.spec.containers[0].image)  # fmt: skip
        assert pod.spec.containers[0].image == IMAGE
        if ran_by_a_job(pod):  # the CronJob's cleanup (every 15 minutes) may have run since
            assert pod.status.phase != "Failed", pod.metadata.name
            continue
        assert pod.status.phase == "Running", pod.metadata.name
        assert all(c.ready for c in pod.status.container_statuses), pod.metadata.name
    tested = run("helm", "test", "ta", "-n", NAMESPACE, "--timeout", "3m")
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout
    log.info("helm test: %s", " ".join(tested.stdout.split()))


def run_client_pod(
    kube: client.ApiClient, script: str, *args: str, token_as: str | None = None
) -> dict[str, Any]:
    """Run ``script`` in a labelled client pod of the project image; its last line, as JSON.
    ``token_as``: the pod runs as that ServiceAccount with a projected token for the
    audience tempaudio at /var/run/secrets/tempaudio/token (docs/concepts/tenancy.md)."""
    name = f"client-{uuid.uuid4().hex[:6]}"
    container: dict[str, Any] = {
        "name": "client", "image": IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "-c", script,
                    f"http://{SERVICE}.{NAMESPACE}.svc.cluster.local:8080", *args],
    }  # fmt: skip
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "containers": [container],
    }
    if token_as is not None:
        spec["serviceAccountName"] = token_as
        spec["volumes"] = [{"name": "tempaudio-token", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "tempaudio", "expirationSeconds": 3600,
                                     "path": "token"}},
        ]}}]  # fmt: skip
        container["volumeMounts"] = [
            {"name": "tempaudio-token", "mountPath": "/var/run/secrets/tempaudio", "readOnly": True}
        ]
    core(kube).create_namespaced_pod(NAMESPACE, {
        "metadata": {"name": name, "labels": {"tempaudio.dev/client": "true"}},
        "spec": spec,
    })  # fmt: skip
    try:
        phase = wait_for(
            lambda: (p := core(kube).read_namespaced_pod(name, NAMESPACE).status.phase)
            in {"Succeeded", "Failed"} and p,
            timeout=240, what="the client pod",
        )  # fmt: skip
        logs = core(kube).read_namespaced_pod_log(name, NAMESPACE)
    finally:
        core(kube).delete_namespaced_pod(name, NAMESPACE)
    assert phase == "Succeeded", logs
    answer: dict[str, Any] = json.loads(logs.strip().splitlines()[-1])
    return answer


def test_a_client_pod_calls_the_service_by_its_dns_name(kube: client.ApiClient) -> None:
    answer = run_client_pod(kube, CLIENT)
    log.info("in-cluster request: %s s of audio (%d bytes) at %s", answer["seconds"],
             answer["bytes"], answer["item"]["s3_url"].split("?")[0])  # fmt: skip
    assert answer["rate"] == 22050
    assert abs(answer["seconds"] - answer["item"]["duration"]) < 0.01
    assert answer["item"]["policy"] == POLICY


def test_a_client_pod_streams_openai_speech_and_the_stream_is_kept(
    kube: client.ApiClient,
) -> None:
    answer = run_client_pod(kube, STREAM_CLIENT, POLICY)
    log.info("in-cluster stream: %d chunks, %.2f s of %s, kept as %s/%s", answer["chunks"],
             answer["seconds"], answer["type"], answer["date"], answer["id"])  # fmt: skip
    assert answer["type"] == "audio/ogg"
    assert answer["encoding"] == "chunked"
    assert answer["chunks"] >= 2  # sentence by sentence, not one body
    assert answer["kept_is_stream"]
    item = httpx.get(f"{cluster_url(kube)}/tts/{answer['date']}/{answer['id']}").json()
    assert abs(answer["seconds"] - item["duration"]) < 0.1
    assert item["format"] == "opus"


def test_the_running_service_is_not_root_and_cannot_write_its_root_filesystem(
    kube: client.ApiClient,
) -> None:
    pod = service_pods(kube)[0].metadata.name
    probe = (
        "import os\nprint(os.getuid(), os.getgid())\n"
        "try:\n    open('/opt/tempaudio/x', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
        "open('/tmp/x', 'w').write('ok')\nprint('tmp ok')"
    )
    result = run("kubectl", "exec", "-n", NAMESPACE, pod, "--", "python3", "-c", probe)
    lines = result.stdout.split()
    assert lines[:2] == ["10001", "10001"]
    assert lines[2] == "30"  # EROFS: the root filesystem is read-only
    log.info("in %s: uid/gid %s/%s, root filesystem read-only (EROFS)", pod, *lines[:2])
    assert "tmp ok" in result.stdout  # /tmp is the emptyDir


def test_the_cronjob_runs_a_real_job_that_deletes_expired_audio_only(
    kube: client.ApiClient, moto: dict[str, Any]
) -> None:
    s3, now = moto["s3"], datetime.now(UTC)
    old = [layout.object_key("temp-audio/", now - timedelta(hours=30), str(uuid.uuid4()))
           for _ in range(3)]  # fmt: skip
    young = layout.object_key("temp-audio/", now - timedelta(hours=2), str(uuid.uuid4()))
    for key in old:
        put_object_created_at(s3, "tempaudio", key, now - timedelta(hours=30))
    put_object_created_at(s3, "tempaudio", young, now - timedelta(hours=2))
    wait_for(lambda: client.BatchV1Api(kube).read_namespaced_cron_job(CRONJOB, NAMESPACE),
             what="the operator's CronJob")  # fmt: skip
    job = f"e2e-{uuid.uuid4().hex[:6]}"
    run("kubectl", "create", "job", "-n", NAMESPACE, job, f"--from=cronjob/{CRONJOB}")
    run("kubectl", "wait", "-n", NAMESPACE, "--for=condition=Complete", f"job/{job}",
        "--timeout=180s")  # fmt: skip
    keys = list_keys(s3, "tempaudio", "temp-audio/")
    assert young in keys
    assert not set(old) & keys
    # The counters come back through the pod's termination message, read by the operator.
    last = wait_for(
        lambda: (c := (policy(kube).get("status") or {}).get("lastCleanup") or {})
        and c.get("jobName") == job and c,
        what="status.lastCleanup",
    )  # fmt: skip
    assert last["succeeded"] is True
    assert last["deleted"] == 3
    log.info("Job %s Complete; status.lastCleanup: %s", job, last)
    s3.delete_object(Bucket="tempaudio", Key=young)  # it had no item: keep the pairs check clean


def test_helm_upgrade_changes_what_the_service_signs_and_the_cronjob_runs(
    kube: client.ApiClient,
) -> None:
    run("helm", "upgrade", "ta", "charts/tempaudio", "-n", NAMESPACE, "--reuse-values",
        "--set", "retention=48h", "--wait", "--timeout", "5m")  # fmt: skip

    def cronjob_retention() -> str:
        cron = client.BatchV1Api(kube).read_namespaced_cron_job(CRONJOB, NAMESPACE)
        args = cron.spec.job_template.spec.template.spec.containers[0].args
        return str(args[args.index("--retention") + 1])

    wait_for(lambda: cronjob_retention() == "48h", what="the CronJob's retention")
    base = cluster_url(kube)
    wait_for(
        lambda: any(p["retention"] == "2d" for p in httpx.get(f"{base}/policies").json()["policies"]),
        what="the service's retention",
    )  # fmt: skip
    before = datetime.now(UTC)
    answer = httpx.post(f"{base}/tts/sync", json={"text": "Two days."}, timeout=120).json()
    promised = datetime.fromisoformat(answer["audio_expires_at"]) - before
    assert timedelta(hours=47, minutes=58) <= promised <= timedelta(hours=48, minutes=2)
    log.info("after helm upgrade: the CronJob runs --retention 48h, the service promises %s",
             promised)  # fmt: skip


def test_killing_the_service_pod_under_load_loses_no_pair(
    kube: client.ApiClient, moto: dict[str, Any]
) -> None:
    base = cluster_url(kube)
    stored: list[dict[str, Any]] = []
    failures: list[str] = []
    stop_at: list[float] = []

    def load() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop_at or time.monotonic() < stop_at[0]:
                try:
                    answer = http.post(
                        f"{base}/tts/sync", json={"text": "Under load.", "cache": False}
                    )
                except httpx.TransportError as error:
                    failures.append(type(error).__name__)
                    time.sleep(0.5)
                    continue
                if answer.status_code == 200:
                    stored.append(answer.json())
                else:
                    failures.append(str(answer.status_code))
                    time.sleep(0.5)

    victim = service_pods(kube)[0].metadata.name
    with ThreadPoolExecutor(2) as pool:
        workers = [pool.submit(load) for _ in range(2)]
        wait_for(lambda: len(stored) >= 3, what="load")
        core(kube).delete_namespaced_pod(victim, NAMESPACE)
        # The Deployment recovers: a new pod, Ready, serving.
        wait_for(
            lambda: any(p.metadata.name != victim and p.status.container_statuses
                        and all(c.ready for c in p.status.container_statuses)
                        for p in service_pods(kube)),
            timeout=240, what="a new ready service pod",
        )  # fmt: skip
        count = len(stored)
        wait_for(lambda: len(stored) >= count + 3, timeout=120, what="requests served again")
        stop_at.append(time.monotonic())
        for worker in workers:
            worker.result()
    log.info("pod %s killed under load: %d stored, %d refused or cut (%s); a new pod serves",
             victim, len(stored), len(failures), ", ".join(sorted(set(failures))))  # fmt: skip

    keys = list_keys(moto["s3"], "tempaudio", "temp-audio/")
    items = {item["s3_url"]["S"] for item in live_items(moto["dynamodb"], "tempaudio")}
    for answer in stored:  # every answer promised a pair, and it is there
        assert f"temp-audio/{answer['date']}/{answer['audio_id']}.wav" in keys
    # No object without its item, no item without its object.
    assert {f"s3://tempaudio/{key}" for key in keys} == items


def test_a_release_whose_policy_the_operator_refuses_fails_and_rolls_back(
    kube: client.ApiClient,
) -> None:
    history = json.loads(run("helm", "history", "ta", "-n", NAMESPACE, "-o", "json").stdout)
    good = history[-1]["revision"]
    # Monthly cleanup for 48h audio: past the CRD's rules, the operator says InvalidSpec.
    refused = run("helm", "upgrade", "ta", "charts/tempaudio", "-n", NAMESPACE, "--reuse-values",
                  "--set", "policy.schedule=0 0 1 * *", "--wait", "--timeout", "3m",
                  check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "post-upgrade hooks failed" in refused.stderr, refused.stderr
    ready = next(c for c in policy(kube)["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    log.info("helm upgrade to a refused policy failed: %s", ready["message"])
    # The way back is a rollback: an upgrade that sets the old value again computes no
    # change against the last good release, and Helm leaves the refused spec in place.
    run("helm", "rollback", "ta", str(good), "-n", NAMESPACE, "--wait", "--timeout", "3m")
    wait_for(lambda: policy(kube)["status"].get("acceptedGeneration")
             == policy(kube)["metadata"]["generation"], what="the policy accepted again")  # fmt: skip
    answer = httpx.post(f"{cluster_url(kube)}/tts/sync", json={"text": "Back."}, timeout=120)
    assert answer.status_code == 200, answer.text


# A client pod that sends its projected token, if it has one: POST, then read the item back.
AUTH_CLIENT = r"""
import json, sys, urllib.error, urllib.request
from pathlib import Path
token = Path("/var/run/secrets/tempaudio/token")
headers = {"content-type": "application/json"}
if token.exists():
    headers["Authorization"] = "Bearer " + token.read_text()
def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(request, timeout=180) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
status, made = call("POST", sys.argv[1] + "/tts/sync", {"text": "Who is asking?"})
read = call("GET", f"{sys.argv[1]}/tts/{made['date']}/{made['audio_id']}")[0] if status == 200 else None
print(json.dumps({"status": status, "answer": made, "read": read}))
"""


def test_callers_prove_who_they_are_with_projected_service_account_tokens(
    kube: client.ApiClient, moto: dict[str, Any]
) -> None:
    for account in ("notifier", "stranger"):
        core(kube).create_namespaced_service_account(NAMESPACE, {"metadata": {"name": account}})
    clients = json.dumps([{"namespace": NAMESPACE, "serviceAccount": "notifier"}])
    run("helm", "upgrade", "ta", "charts/tempaudio", "-n", NAMESPACE, "--reuse-values",
        "--set", "service.auth.mode=serviceaccount", "--set-json", f"policy.clients={clients}",
        "--wait", "--timeout", "5m")  # fmt: skip
    wait_for(lambda: policy(kube)["status"].get("acceptedGeneration")
             == policy(kube)["metadata"]["generation"], what="the policy accepted")  # fmt: skip

    allowed = run_client_pod(kube, AUTH_CLIENT, token_as="notifier")
    assert allowed["status"] == 200, allowed
    assert allowed["read"] == 200  # its maker reads it back
    answer = allowed["answer"]
    item = moto["dynamodb"].get_item(
        TableName="tempaudio",
        Key={"date": {"S": answer["date"]}, "audio_id": {"S": answer["audio_id"]}},
    )["Item"]
    assert item["caller"] == {"S": f"{NAMESPACE}/notifier"}
    stranger = run_client_pod(kube, AUTH_CLIENT, token_as="stranger")
    assert stranger["status"] == 403, stranger
    anonymous = run_client_pod(kube, AUTH_CLIENT)
    assert anonymous["status"] == 401, anonymous
    log.info("projected tokens on the node: notifier %s (item caller %s), stranger %s (%s), "
             "no token %s", allowed["status"], item["caller"]["S"], stranger["status"],
             stranger["answer"]["message"], anonymous["status"])  # fmt: skip


# A client pod that POSTs each body on a new connection (kube-proxy picks a pod for each)
# with its projected token; one list per answer: status, cached, audio_id, duration, Date.
REPLICA_CLIENT = r"""
import json, sys, urllib.error, urllib.request
from pathlib import Path
headers = {"content-type": "application/json",
           "Authorization": "Bearer " + Path("/var/run/secrets/tempaudio/token").read_text()}
answers = []
for body in json.loads(sys.argv[2]):
    request = urllib.request.Request(sys.argv[1] + "/tts/sync", method="POST",
                                     headers=headers, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=180) as response:
            made = json.load(response)
            answers.append([response.status, made["cached"], made["audio_id"],
                            made["duration"], response.headers["date"]])
    except urllib.error.HTTPError as error:
        answers.append([error.code, None, None, 0.0, error.headers["date"]])
print(json.dumps({"answers": answers}))
"""
AUDIO_QUOTA = 30  # audio seconds an hour for each caller


def served_by(kube: client.ApiClient) -> dict[str, str]:
    """audio_id -> the pod whose audit line made it (JSON logs, docs/concepts/tenancy.md)."""
    made = {}
    for pod in service_pods(kube):
        logs = core(kube).read_namespaced_pod_log(pod.metadata.name, NAMESPACE)
        for line in logs.splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            audit = entry.get("audit") or {}
            if audit.get("route") == "/tts/sync" and audit.get("audio_id"):
                made[audit["audio_id"]] = pod.metadata.name
    return made


def expected_statuses(answers: list[list[Any]]) -> list[int]:
    """What one shared hourly count admits, given the audio each admitted answer made: a
    request is admitted while the caller's hour is under the quota."""
    used, statuses = 0.0, []
    for answer in answers:
        statuses.append(200 if used < AUDIO_QUOTA else 429)
        used += answer[3] if statuses[-1] == 200 else 0.0
    return statuses


def ready_replicas(kube: client.ApiClient, but: str = "") -> int:
    return len([p for p in service_pods(kube) if p.metadata.name != but
                and p.status.container_statuses
                and all(c.ready for c in p.status.container_statuses)])  # fmt: skip


def test_three_replicas_keep_one_quota_and_one_repeat_cache(kube: client.ApiClient) -> None:
    """The callers test left authentication on and notifier among the clients."""
    run("helm", "upgrade", "ta", "charts/tempaudio", "-n", NAMESPACE, "--reuse-values",
        "--set", "service.replicaCount=3", "--set", "service.resources.requests.cpu=300m",
        "--set-json", f'policy.quotas={{"audioSecondsPerHour": {AUDIO_QUOTA}}}',
        "--wait", "--timeout", "6m")  # fmt: skip
    wait_for(lambda: policy(kube)["status"].get("acceptedGeneration")
             == policy(kube)["metadata"]["generation"], what="the policy accepted")  # fmt: skip
    wait_for(lambda: ready_replicas(kube) == 3 or None, timeout=240, what="3 ready replicas")

    # One prompt, eight times, each on a new connection: made once, copied on every pod.
    same = [{"text": "Your table is ready."}] * 8
    repeats = run_client_pod(kube, REPLICA_CLIENT, json.dumps(same), token_as="notifier")
    answers = repeats["answers"]
    assert [a[:2] for a in answers] == [[200, False]] + [[200, True]] * 7, answers
    pods = served_by(kube)
    made_on = pods[answers[0][2]]
    copied_on = {pods[a[2]] for a in answers[1:]}
    assert copied_on - {made_on}, f"every copy was made on {made_on}, where the audio was"

    # Long texts until the caller's hour is used up, whichever pod answers; then a pod is
    # killed, and its replacement counts on from the same shared count.
    long = [{"text": "A long announcement for the quota. " * 4}] * 6
    answers += run_client_pod(kube, REPLICA_CLIENT, json.dumps(long), token_as="notifier")[
        "answers"
    ]
    victim = service_pods(kube)[0].metadata.name
    core(kube).delete_namespaced_pod(victim, NAMESPACE)
    wait_for(lambda: ready_replicas(kube, but=victim) == 3 or None, timeout=240,
             what="3 ready replicas again")  # fmt: skip
    after = run_client_pod(kube, REPLICA_CLIENT, json.dumps(long[:3]), token_as="notifier")
    answers += after["answers"]
    hours = {parsedate_to_datetime(a[4]).hour for a in answers}
    statuses = [a[0] for a in answers]
    if len(hours) == 1:  # (a run across the top of an hour would start a new window)
        assert statuses == expected_statuses(answers), answers
    assert statuses[-3:] == [429] * 3  # the count outlived the pod
    log.info("3 replicas: one prompt made on %s and copied on %s; the audio quota admitted %d"
             " of %d requests, before and after pod %s was killed", made_on, sorted(copied_on),
             statuses.count(200), len(statuses), victim)  # fmt: skip


def test_helm_uninstall_leaves_no_tempaudio_objects_but_the_crd(kube: client.ApiClient) -> None:
    run("helm", "uninstall", "ta", "-n", NAMESPACE, "--wait", "--timeout", "3m")
    selector = "app.kubernetes.io/instance=ta"

    def left() -> list[str]:
        apps, rbac = client.AppsV1Api(kube), client.RbacAuthorizationV1Api(kube)
        names = [
            f"Deployment/{d.metadata.name}"
            for d in apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items
        ]
        names += [f"Pod/{p.metadata.name}" for p in core(kube).list_namespaced_pod(NAMESPACE).items]
        names += [
            f"ClusterRole/{r.metadata.name}"
            for r in rbac.list_cluster_role(label_selector=selector).items
        ]
        names += [
            f"Role/{r.metadata.name}"
            for r in rbac.list_namespaced_role(NAMESPACE, label_selector=selector).items
        ]
        names += [
            f"TempAudioPolicy/{p['metadata']['name']}"
            for p in client.CustomObjectsApi(kube).list_namespaced_custom_object(
                "tempaudio.dev", "v1alpha1", NAMESPACE, "tempaudiopolicies"
            )["items"]
        ]
        names += [
            f"CronJob/{c.metadata.name}"
            for c in client.BatchV1Api(kube).list_namespaced_cron_job(NAMESPACE).items
            if "tempaudio.dev/retired-policy" not in (c.metadata.labels or {})
        ]
        return names  # fmt: skip

    wait_for(lambda: not left() or None, timeout=180, what="nothing left")
    finals = [
        c.metadata.name for c in client.BatchV1Api(kube).list_namespaced_cron_job(NAMESPACE).items
    ]
    log.info("helm uninstall: nothing left but the CRD and the final cleanup %s", finals)
    crds = client.ApiextensionsV1Api(kube).list_custom_resource_definition().items
    assert "tempaudiopolicies.tempaudio.dev" in {c.metadata.name for c in crds}
