"""The service follows the TempAudioPolicies the operator accepts (real control plane).

The operator runs in-process (kopf), the service as its app with the real Kubernetes
policy source (list + watch through the API server), the tone synthesizer and an
injected clock; S3 and DynamoDB are moto's server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from kubernetes import client
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer, list_keys
from tests.kube_fixtures import (
    GROUP,
    PLURAL,
    VERSION,
    delete_policy,
    run_here,
    wait_for,
    wait_policy_gone,
)
from tests.operator.test_correctness import cleanup_retention, create, read_cronjob, settled
from tests.operator.test_operator import events, spec_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator", "aws_env")]
# The service's clock, and moto's while the service stores (LastModified).
T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# How soon an accepted edit reaches new requests (docs/concepts/policies.md states this bound).
EDIT_BOUND_SECONDS = 10


@contextmanager
def service(namespace: str, default: str | None = "audio") -> Iterator[TestClient]:
    settings = ServiceSettings(
        policy_source="kubernetes",
        policy_namespaces=(namespace,),
        default_policy=default,
        io_timeout_seconds=5,
        synth_workers=1,
        synth_queue=2,
    )
    app = create_app(settings, synth=ToneSynthesizer(), clock=lambda: T0)
    with TestClient(app) as test:
        yield test


def stored_at(test: TestClient, when: datetime, body: dict[str, Any]) -> dict[str, Any]:
    """POST while moto's S3 clock says ``when`` (the object's LastModified)."""
    naive = when.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("moto.s3.models.utcnow", return_value=naive):
        answer = test.post("/tts/sync", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def served(test: TestClient, name: str) -> dict[str, Any] | None:
    for row in test.get("/policies").json()["policies"]:
        if row["name"] == name:
            return row  # type: ignore[no-any-return]
    return None


def second_store(aws: dict[str, Any], s3: Any, dynamodb: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10]
    other = {**aws, "bucket": f"vm-{suffix}", "table": f"vm-{suffix}"}
    AudioStore(s3, dynamodb, bucket=other["bucket"], table=other["table"]).ensure_resources(
        enable_ttl=False
    )
    return other


def test_one_service_serves_two_policies_each_with_its_own_storage(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], s3: Any, dynamodb: Any
) -> None:
    voicemail = second_store(aws, s3, dynamodb)
    create(custom, namespace, "audio", spec_for(aws, retention="1h"))
    spec = spec_for(voicemail, retention="7d")
    spec["storage"]["prefix"] = "vm/"
    spec["dynamodb"]["ttlAttribute"] = "expires"
    create(custom, namespace, "voicemail", spec)
    settled(custom, namespace, "voicemail", "True")
    with service(namespace) as test:
        wait_for(lambda: test.get("/readyz").status_code == 200, what="service ready")
        wait_for(lambda: (served(test, "voicemail") or {}).get("ready"), what="voicemail served")
        first = stored_at(test, T0, {"text": "Hello"})
        second = stored_at(test, T0, {"text": "Call me back", "policy": "voicemail"})

    assert first["audio_expires_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert second["audio_expires_at"] == (T0 + timedelta(days=7)).isoformat()
    assert list_keys(s3, aws["bucket"]) == {f"temp-audio/2026-06-15/{first['audio_id']}.wav"}
    assert list_keys(s3, voicemail["bucket"]) == {f"vm/2026-06-15/{second['audio_id']}.wav"}

    # ttlAttribute end to end: the operator enabled TTL on "expires", and the service
    # writes "expires" with the URL's promise.
    ttl = dynamodb.describe_time_to_live(TableName=voicemail["table"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"
    item = dynamodb.get_item(
        TableName=voicemail["table"],
        Key={"date": {"S": "2026-06-15"}, "audio_id": {"S": second["audio_id"]}},
    )["Item"]
    assert item["expires"] == {"N": str(int((T0 + timedelta(days=7)).timestamp()))}


def run_cleanup(batch: client.BatchV1Api, namespace: str, now: datetime) -> dict[str, Any]:
    """The CronJob's container command, run here with the clock injected."""
    cron = read_cronjob(batch, namespace, "audio-cleanup")
    result = run_here(cron.spec.job_template.spec.template.spec.containers[0], now)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_a_shrink_never_deletes_audio_an_earlier_url_promises(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any], s3: Any,
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, retention="24h"))
    with service(namespace) as test:
        wait_for(lambda: (served(test, "audio") or {}).get("retention") == "1d", what="24h")
        early = stored_at(test, T0, {"text": "Promised a day"})
        assert early["audio_expires_at"] == (T0 + timedelta(days=1)).isoformat()

        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "audio", {"spec": {"retention": "1h"}}
        )
        # The service signs with the new retention once the operator has recorded it.
        wait_for(
            lambda: (served(test, "audio") or {}).get("retention") == "1h",
            timeout=EDIT_BOUND_SECONDS, what="the edit reaching the service",
        )  # fmt: skip
        late = stored_at(test, T0, {"text": "Promised an hour"})
        assert late["audio_expires_at"] == (T0 + timedelta(hours=1)).isoformat()

    early_key = f"temp-audio/2026-06-15/{early['audio_id']}.wav"
    late_key = f"temp-audio/2026-06-15/{late['audio_id']}.wav"
    # The real cleanup, as the CronJob runs it now, just before the early URL's promise ends.
    run_cleanup(batch, namespace, T0 + timedelta(days=1) - timedelta(seconds=2))
    assert early_key in list_keys(s3, aws["bucket"])
    assert late_key in list_keys(s3, aws["bucket"])  # kept longer than promised: safe
    # Once the longest promise has ended, the audio goes.
    summary = run_cleanup(batch, namespace, T0 + timedelta(days=1, seconds=2))
    assert summary["deleted"] == 2
    assert not list_keys(s3, aws["bucket"])


def test_a_policy_the_operator_refuses_is_not_served(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    create(custom, namespace, "audio", spec_for(aws, storage={"bucket": aws["bucket"],
           "endpointURL": "http://10.0.0.1:9000"}))  # fmt: skip
    settled(custom, namespace, "audio", "False")
    with service(namespace) as test:
        answer = wait_for(
            lambda: (r := test.post("/tts/sync", json={"text": "Hi"})).status_code == 503
            and r.json()["error"] == "policy_not_ready" and r,
            what="policy_not_ready",
        )  # fmt: skip
        assert "NotAllowed" in answer.json()["message"]
        assert test.get("/readyz").status_code == 503


def test_a_deleted_policy_stops_being_served_and_leaves_a_final_cleanup(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any], s3: Any,
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, retention="1h", lifecycleSafetyNet=True))
    with service(namespace) as test:
        wait_for(lambda: (served(test, "audio") or {}).get("ready"), what="served")
        promised = stored_at(test, T0, {"text": "Promised an hour"})
        deleted = datetime.now(UTC)
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "audio")
        answer = wait_for(
            lambda: (r := test.post("/tts/sync", json={"text": "Hi"})).status_code != 200 and r,
            timeout=EDIT_BOUND_SECONDS, what="the deletion reaching the service",
        )  # fmt: skip
        assert answer.json()["error"] in {"unknown_policy", "policy_not_ready"}
        assert test.get("/readyz").status_code == 503
    wait_policy_gone(custom, namespace, "audio")
    # The lifecycle rule went with the policy (issue 10); the audio is not orphaned: a final
    # cleanup runs once every promise is over (lag 600 s + 1h + a minute or two).
    final = read_cronjob(batch, namespace, "audio-final")
    assert final is not None
    assert not final.metadata.owner_references
    run_after = datetime.fromisoformat(final.metadata.annotations["tempaudio.dev/run-after"])
    earliest = deleted + timedelta(seconds=600, hours=1, minutes=1)
    assert earliest <= run_after <= earliest + timedelta(minutes=3)
    assert final.spec.schedule == f"{run_after.minute} {run_after.hour} {run_after.day} " \
        f"{run_after.month} *"  # fmt: skip
    container = final.spec.job_template.spec.template.spec.containers[0]
    assert container.args[container.args.index("--retention") + 1] == "1h"
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=aws["bucket"])

    # Its run deletes the audio the URL promised until then, and only once that is over.
    key = f"temp-audio/2026-06-15/{promised['audio_id']}.wav"
    early = run_here(container, T0 + timedelta(minutes=59))
    assert early.returncode == 0, early.stderr
    assert key in list_keys(s3, aws["bucket"])
    assert run_here(container, T0 + timedelta(hours=1, seconds=2)).returncode == 0
    assert key not in list_keys(s3, aws["bucket"])


def test_a_recreated_policy_keeps_what_its_namesake_promised(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any],
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, retention="1d"))
    settled(custom, namespace, "audio", "True")
    delete_policy(custom, namespace, "audio")
    assert read_cronjob(batch, namespace, "audio-final") is not None  # left before it went

    # Recreated at 1h: audio of the deleted policy is still promised a day.
    create(custom, namespace, "audio", spec_for(aws, retention="1h"))
    policy = settled(custom, namespace, "audio", "True")
    assert policy["status"]["enforcedRetention"] == "1d"
    assert policy["status"]["enforcedUntil"]
    wait_for(lambda: cleanup_retention(batch, namespace) == "1d", what="1d enforced")
    wait_for(lambda: "RetentionInherited" in events(core, namespace), what="the Event")
    # The promise lives on in the new policy: the final cleanup is no longer needed (it
    # would delete the new policy's audio by the old retention).
    wait_for(lambda: read_cronjob(batch, namespace, "audio-final") is None, what="final gone")


def test_a_final_cleanup_that_has_run_in_time_goes(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, retention="1h"))
    settled(custom, namespace, "audio", "True")
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "audio")
    final = wait_for(lambda: read_cronjob(batch, namespace, "audio-final"), what="final cleanup")
    run_after = datetime.fromisoformat(final.metadata.annotations["tempaudio.dev/run-after"])

    # Play the CronJob controller: a run that succeeded before the promises were over
    # (a schedule that fired early) does not count...
    def succeeded_at(moment: datetime) -> None:
        stamp = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        batch.patch_namespaced_cron_job_status(
            "audio-final", namespace, {"status": {"lastSuccessfulTime": stamp}}
        )

    succeeded_at(run_after - timedelta(minutes=5))
    assert read_cronjob(batch, namespace, "audio-final") is not None
    # ...one after them does.
    succeeded_at(run_after + timedelta(minutes=1))
    wait_for(lambda: read_cronjob(batch, namespace, "audio-final") is None, what="final gone")
