from typing import Any

import pytest

from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy
from tempaudio_operator.tenancy import Tenancy, endpoint_allowed, refusal


def policy(namespace: str = "team-a", **spec: Any) -> Policy:
    base: dict[str, Any] = {"storage": {"bucket": "audio"}, "metadata": {"table": "audio"}}
    for key, value in spec.items():
        if key in {"storage", "metadata"}:
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Policy.from_spec(base, name="p", namespace=namespace)


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("http://minio.storage.svc:9000", ("http://minio.storage.svc:9000",), True),
        ("http://minio.storage.svc:9001", ("http://minio.storage.svc:9000",), False),
        ("http://127.0.0.1:4566", ("http://127.0.0.1",), True),  # no port: any port
        ("https://127.0.0.1:4566", ("http://127.0.0.1",), False),
        # A string prefix would let these through.
        ("http://127.0.0.1:1@evil.example", ("http://127.0.0.1",), False),
        ("http://127.0.0.1.evil.example", ("http://127.0.0.1",), False),
        ("http://anything", ("*",), True),
        ("http://anything", (), False),
    ],
)
def test_endpoints_compare_scheme_host_and_port(
    url: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert endpoint_allowed(url, allowed) is ok


@pytest.mark.parametrize(
    ("candidate", "tenancy", "says"),
    [
        (policy(), Tenancy(), None),
        (policy(storage={"endpointURL": "http://x:1"}), Tenancy(), "storage.endpointURL"),
        (
            policy(storage={"endpointURL": "http://s3:1"}, metadata={"endpointURL": "http://d:2"}),
            Tenancy(allowed_endpoints=("http://s3",)),
            "dynamodb.endpointURL",
        ),
        (
            policy(storage={"prefix": "logs/"}),
            Tenancy(allowed_storage=("audio/{namespace}/*",)),
            "storage the operator allows",
        ),
        (
            policy(storage={"bucket": "other", "prefix": "team-a/"}),
            Tenancy(allowed_storage=("audio/{namespace}/*",)),
            "storage the operator allows",
        ),
        (
            policy(storage={"prefix": "team-a/voicemail/"}),
            Tenancy(allowed_storage=("audio/{namespace}/*",)),
            None,
        ),
        (
            policy("team-b", storage={"prefix": "team-a/voicemail/"}),
            Tenancy(allowed_storage=("audio/{namespace}/*",)),
            "storage the operator allows",
        ),
        (policy(jobTemplate={"image": "evil:1"}), Tenancy(), "jobTemplate.image"),
        (policy(jobTemplate={"image": "mine:1"}), Tenancy(allow_job_image=True), None),
        (policy(jobTemplate={"serviceAccountName": "admin"}), Tenancy(), "serviceAccountName"),
        (
            policy(jobTemplate={"serviceAccountName": "cleaner"}),
            Tenancy(allowed_service_accounts=("cleaner",)),
            None,
        ),
        (policy(jobTemplate={"serviceAccountName": "default"}), Tenancy(), None),
    ],
)
def test_refusal(candidate: Policy, tenancy: Tenancy, says: str | None) -> None:
    found = refusal(candidate, tenancy)
    if says is None:
        assert found is None
    else:
        assert found is not None
        assert says in found


def test_a_job_may_read_only_the_secrets_the_operator_allows() -> None:
    job = {
        "env": [{"name": "AWS_ACCESS_KEY_ID",
                 "valueFrom": {"secretKeyRef": {"name": "keys", "key": "id"}}}],
        "envFrom": [{"secretRef": {"name": "more-keys"}}, {"configMapRef": {"name": "cfg"}}],
    }  # fmt: skip
    candidate = policy(jobTemplate=job)
    assert refusal(candidate, Tenancy(allowed_storage=("*",))) == (
        "jobTemplate Secret keys is not among the Secrets the operator allows"
    )
    allowed = Tenancy(allowed_storage=("*",), allowed_secrets=("keys", "more-keys"))
    assert refusal(candidate, allowed) is None


def test_the_operators_own_variables_are_not_a_policys_to_set() -> None:
    with pytest.raises(PolicyError, match="TEMPAUDIO_TERMINATION_LOG"):
        policy(jobTemplate={"env": [{"name": "TEMPAUDIO_TERMINATION_LOG", "value": "/x"}]})
