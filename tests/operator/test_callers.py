"""Callers as Kubernetes ServiceAccounts (real control plane): tokens minted through the
TokenRequest API and checked by the service with TokenReview, the policy's clients,
readers and quotas, and the API server going quiet.

The operator runs in-process (kopf), the service as its app with the Kubernetes policy
source, ``TEMPAUDIO_AUTH=serviceaccount``, the tone synthesizer and an injected clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kubernetes import client
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tests.conftest import MovableClock, ToneSynthesizer
from tests.controlplane import ControlPlane
from tests.kube_fixtures import fresh_namespace, wait_for
from tests.operator.test_correctness import create, settled
from tests.operator.test_operator import condition, spec_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator", "aws_env")]
T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
CACHE_SECONDS = 60
ISSUER = "https://kubernetes.default.svc.cluster.local"


def token(core: client.CoreV1Api, namespace: str, account: str, **spec: Any) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=spec.pop("audiences", ["tempaudio"]), expiration_seconds=600, **spec
        )
    )
    answer = core.create_namespaced_service_account_token(account, namespace, request)
    return str(answer.status.token)


def signed_token(plane: ControlPlane, account: Any, expires: datetime) -> str:
    """A token as the API server signs one, with the cluster's own key and a chosen expiry."""
    key = serialization.load_pem_private_key((plane.workdir / "sa.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ["tempaudio"],
        "sub": f"system:serviceaccount:{account.metadata.namespace}:{account.metadata.name}",
        "iat": now - 3600,
        "nbf": now - 3600,
        "exp": int(expires.timestamp()),
        "kubernetes.io": {
            "namespace": account.metadata.namespace,
            "serviceaccount": {"name": account.metadata.name, "uid": account.metadata.uid},
        },
    }

    def part(value: Any) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "RS256", "kid": kid, "typ": "JWT"}) + b"." + part(claims)
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def reviewed(value: str) -> bool:
    """The API server's own verdict on a token for the audience tempaudio."""
    spec = client.V1TokenReviewSpec(token=value, audiences=["tempaudio"])
    review = client.AuthenticationV1Api().create_token_review(client.V1TokenReview(spec=spec))
    return bool(review.status.authenticated)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@contextmanager
def namespaces(core: client.CoreV1Api) -> Iterator[dict[str, str]]:
    """team-a (clients), team-b (neither), team-c (readers, by label); a notifier in each
    and a batch job in team-a."""
    with ExitStack() as stack:
        names = {team: stack.enter_context(fresh_namespace(f"c{team[-1]}")) for team in "abc"}
        core.patch_namespace(names["c"], {"metadata": {"labels": {"tempaudio.dev/reader": "true"}}})
        for name in names.values():
            core.create_namespaced_service_account(name, {"metadata": {"name": "notifier"}})
        core.create_namespaced_service_account(names["a"], {"metadata": {"name": "batch"}})
        yield names


@contextmanager
def service(namespace: str, clock: MovableClock, default: str = "audio") -> Iterator[TestClient]:
    settings = ServiceSettings(
        policy_source="kubernetes",
        policy_namespaces=(namespace,),
        default_policy=default,
        io_timeout_seconds=2,
        synth_workers=1,
        synth_queue=2,
        auth="serviceaccount",
        auth_cache_seconds=CACHE_SECONDS,
    )
    app = create_app(settings, synth=ToneSynthesizer(), clock=clock)
    with TestClient(app) as test:
        wait_for(lambda: test.get("/readyz").status_code == 200 or None, what="service ready")
        yield test


def test_service_account_callers_on_the_real_control_plane(
    control_plane: ControlPlane,
    namespace: str,
    aws: dict[str, Any],
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tempaudio.audit")
    clock = MovableClock(T0)
    with namespaces(core) as teams:
        spec = spec_for(
            aws,
            clients=[{"namespace": teams["a"], "serviceAccount": "notifier"}],
            readers=[{"namespaceSelector": {"matchLabels": {"tempaudio.dev/reader": "true"}}}],
            quotas={"requestsPerMinute": 3},
        )
        create(custom, namespace, "audio", spec)
        settled(custom, namespace, "audio", "True")
        notifier = token(core, teams["a"], "notifier")
        with service(namespace, clock) as test:

            def post(headers: dict[str, str]) -> Any:
                return test.post(
                    "/tts/sync", json={"text": "Your code is 4 8 1 5."}, headers=headers
                )

            # The allowed caller: 200, and the item records who asked.
            made = post(bearer(notifier))
            assert made.status_code == 200, made.text
            item = aws["store"].get_item(made.json()["date"], made.json()["audio_id"])
            assert item["caller"] == f"{teams['a']}/notifier"

            # Another namespace's ServiceAccount of the same name, and another in team-a: 403.
            for other in (token(core, teams["b"], "notifier"), token(core, teams["a"], "batch")):
                refused = post(bearer(other))
                assert refused.status_code == 403, refused.text
                assert refused.json()["error"] == "forbidden"

            # No token, garbage, a token for another audience: 401.
            wrong_audience = token(core, teams["a"], "notifier", audiences=["vault"])
            for headers in ({}, bearer("not-a-token"), bearer(wrong_audience)):
                answer = post(headers)
                assert answer.status_code == 401, answer.text
                assert answer.json()["error"] == "unauthenticated"
                assert answer.headers["www-authenticate"].startswith("Bearer")

            # A token signed with the cluster's key: valid until its exp, refused after it
            # (the API server allows 60 s of clock skew).
            account = core.read_namespaced_service_account("notifier", teams["a"])
            now = datetime.now(UTC)
            assert (
                post(
                    bearer(signed_token(control_plane, account, now + timedelta(minutes=10)))
                ).status_code
                == 200
            )
            expired = post(bearer(signed_token(control_plane, account, now - timedelta(minutes=5))))
            assert expired.status_code == 401, expired.text

            # Reading: the maker and the labelled readers' namespace; others learn nothing.
            where = f"/tts/{made.json()['date']}/{made.json()['audio_id']}"
            assert test.get(where, headers=bearer(notifier)).status_code == 200
            assert (
                test.get(where, headers=bearer(token(core, teams["c"], "notifier"))).status_code
                == 200
            )
            for other in (token(core, teams["b"], "notifier"), token(core, teams["a"], "batch")):
                hidden = test.get(where, headers=bearer(other))
                assert hidden.status_code == 404, hidden.text
            assert test.get(where).status_code == 401

            # The quota: 3 requests a minute for this caller (2 made so far: the 401s and
            # 403s are not counted, reads are not requests for audio); the fourth waits,
            # with Retry-After.
            assert post(bearer(notifier)).status_code == 200
            limited = post(bearer(notifier))
            assert limited.status_code == 429, limited.text
            assert limited.json()["error"] == "quota_exceeded"
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            clock.now += timedelta(seconds=61)
            assert post(bearer(notifier)).status_code == 200

            # Revoked: a token bound to a Secret stops working once the Secret is gone, within
            # the service's cache lifetime (cached until then).
            secret = core.create_namespaced_secret(
                teams["a"], {"metadata": {"name": "binding"}, "type": "Opaque"}
            )
            bound = token(
                core,
                teams["a"],
                "notifier",
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Secret", name="binding", uid=secret.metadata.uid
                ),
            )
            clock.now += timedelta(seconds=61)  # a new quota minute
            assert post(bearer(bound)).status_code == 200
            core.delete_namespaced_secret("binding", teams["a"])
            wait_for(
                lambda: core.list_namespaced_secret(teams["a"]).items == [] or None,
                what="secret gone",
            )
            # The API server keeps its own verdicts for 10 s (kube-apiserver's token cache).
            wait_for(lambda: not reviewed(bound) or None, what="the API server refuses the token")
            assert post(bearer(bound)).status_code == 200  # cached
            clock.now += timedelta(seconds=CACHE_SECONDS + 1)
            revoked = post(bearer(bound))
            assert revoked.status_code == 401, revoked.text

            # The API server stops answering: the cached caller keeps working, a new one gets
            # 503 (never an open door).
            post(bearer(notifier))  # cached again under the new clock
            fresh = token(core, teams["a"], "notifier")
            with control_plane.paused("kube-apiserver"):
                assert post(bearer(notifier)).status_code == 200
                unavailable = post(bearer(fresh))
            assert unavailable.status_code == 503, unavailable.text
            assert unavailable.json()["error"] == "auth_unavailable"
            assert "retry-after" in unavailable.headers
            assert post(bearer(fresh)).status_code == 200  # back

            metrics = test.get("/metrics").text
            for line in (
                'tempaudio_auth_lookups_total{result="unavailable"}',
                f'tempaudio_quota_refusals_total{{policy="{namespace}/audio",quota="requests_per_minute"}}',
                f'tempaudio_access_refusals_total{{policy="{namespace}/audio",rule="client"}}',
            ):
                assert line in metrics

    audits = [r.audit for r in caplog.records if r.name == "tempaudio.audit"]  # type: ignore[attr-defined]
    assert {a["status"] for a in audits} >= {200, 401, 403, 404, 429, 503}
    first = next(a for a in audits if a["status"] == 200)
    assert first["caller"] == f"{teams['a']}/notifier"
    assert first["policy"] == f"{namespace}/audio"
    assert first["characters"] == len("Your code is 4 8 1 5.")
    assert first["audio_seconds"] > 0
    assert "text" not in first


def test_an_invalid_selector_is_reported_in_the_policy_status(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    # The CRD's schema takes any string as a label key; the operator's parser does not.
    selector = {"matchLabels": {"tempaudio.dev/bad key!": "true"}}
    create(custom, namespace, "audio", spec_for(aws, clients=[{"namespaceSelector": selector}]))
    policy = settled(custom, namespace, "audio", "False")
    ready = condition(policy, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "clients[0].namespaceSelector.matchLabels" in ready["message"]
    assert "is not a label key" in ready["message"]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"namespace": "team-a", "namespaceSelector": {"matchLabels": {"a": "b"}}}, "exactly one"),
        ({"serviceAccount": "notifier"}, "exactly one"),
        (
            {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
            "Unsupported value",
        ),
        ({"namespace": "Team_A"}, "should match"),
    ],
    ids=["both", "neither", "operator", "namespace-name"],
)
def test_the_crd_refuses_malformed_clients(
    custom: client.CustomObjectsApi,
    namespace: str,
    aws: dict[str, Any],
    entry: dict[str, Any],
    says: str,
) -> None:
    with pytest.raises(client.ApiException) as refused:
        create(custom, namespace, "audio", spec_for(aws, clients=[entry]))
    assert refused.value.status == 422
    assert "spec.clients[0]" in str(refused.value.body)
    assert says in str(refused.value.body)


def test_policies_sharing_storage_keep_their_callers_audio_apart(
    namespace: str,
    aws: dict[str, Any],
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    s3: Any,
) -> None:
    """Three policies on one table: ``open`` and ``secret`` share a bucket too (prefixes
    open/ and secret/), ``other`` has its own bucket. team-b speaks under ``secret``; team-c
    reads everything under ``open``. An item is answered under its own policy only."""
    other_bucket = f"{aws['bucket']}-other"
    s3.create_bucket(Bucket=other_bucket)
    clock = MovableClock(T0)
    with namespaces(core) as teams:
        readers = [{"namespace": teams["c"]}]
        policies = {
            "open": spec_for(aws, readers=readers),
            "secret": spec_for(aws, clients=[{"namespace": teams["b"]}]),
            "other": spec_for(aws, readers=readers),
        }
        policies["open"]["storage"]["prefix"] = "open/"
        policies["secret"]["storage"]["prefix"] = "secret/"
        policies["other"]["storage"]["bucket"] = other_bucket
        for name, spec in policies.items():
            create(custom, namespace, name, spec)
        for name in policies:
            settled(custom, namespace, name, "True")
        team_a, team_b, team_c = (token(core, teams[t], "notifier") for t in "abc")
        with service(namespace, clock, default="open") as test:

            def speak(policy: str, who: str, text: str) -> Any:
                body = {"text": text, "policy": policy}
                answer = test.post("/tts/sync", json=body, headers=bearer(who))
                assert answer.status_code == 200, answer.text
                return answer.json()

            said = speak("secret", team_b, "The merger closes on Friday.")
            item = aws["store"].get_item(said["date"], said["audio_id"])
            assert item["policy"] == f"{namespace}/secret"
            where = f"/tts/{said['date']}/{said['audio_id']}"
            # 1. team-c reads all of open's audio, and none of secret's through it.
            through_open = test.get(f"{where}?policy=open", headers=bearer(team_c))
            assert through_open.status_code == 404, through_open.text
            assert "merger" not in through_open.text
            assert test.get(f"{where}?policy=secret", headers=bearer(team_b)).status_code == 200

            # 2. Audio of a policy with its own bucket, asked for under another: 404, not 500.
            elsewhere = speak("other", team_a, "Kept in its own bucket.")
            where = f"/tts/{elsewhere['date']}/{elsewhere['audio_id']}"
            for policy in ("open", "secret"):
                crossed = test.get(f"{where}?policy={policy}", headers=bearer(team_c))
                assert crossed.status_code == 404, crossed.text
            assert test.get(f"{where}?policy=other", headers=bearer(team_c)).status_code == 200

            # 5. The repeat cache: team-c saying what team-a said is synthesized anew.
            first = speak("open", team_a, "Your code is 4 8 1 5.")
            again = speak("open", team_a, "Your code is 4 8 1 5.")
            stranger = speak("open", team_c, "Your code is 4 8 1 5.")
            assert (first["cached"], again["cached"], stranger["cached"]) == (False, True, False)
