from datetime import timedelta
from typing import Any

import pytest

from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy

BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**BASE, **spec}, name="p", namespace="ns")


def test_defaults_match_the_crd() -> None:
    p = policy()
    assert p.retention == timedelta(hours=24)
    assert (p.schedule, p.time_zone, p.suspend, p.dry_run) == (
        "*/15 * * * *",
        "Etc/UTC",
        False,
        False,
    )
    assert (p.prefix, p.region, p.endpoint_url) == ("temp-audio/", "us-east-1", None)
    assert p.ttl_attribute == "ttl"
    assert p.job.backoff_limit == 2


@pytest.mark.parametrize(
    ("retention", "days"), [("24h", 2), ("1h", 2), ("25h", 3), ("2d", 3), ("2d1s", 4)]
)
def test_lifecycle_days_is_ceil_plus_one(retention: str, days: int) -> None:
    assert policy(retention=retention, schedule="*/5 * * * *").lifecycle_days == days


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"retention": "soon"}, "not a duration"),
        ({"retention": "30s"}, "between 1m and 365d"),
        # Ready before, while every cleanup Job crashed with OverflowError.
        ({"retention": "999999d"}, "between 1m and 365d"),
        ({"storage": {"bucket": "audio", "region": "x" * 74}}, "not an AWS region name"),
        ({"retention": "2h", "schedule": "0 0 * * *"}, "shorter than the schedule's period"),
        ({"retention": "6d", "schedule": "0 0 * * 0"}, "schedule's period"),
        ({"schedule": "  "}, "must not be empty"),
        ({"schedule": "every hour"}, "five fields"),
        ({"storage": {"bucket": "Bad_Bucket"}}, "storage.bucket"),
        ({"storage": {"bucket": "a..b"}}, "storage.bucket"),
        ({"storage": {"bucket": "ok-bucket", "prefix": ""}}, "storage.prefix"),
        ({"storage": {"bucket": "ok-bucket", "prefix": "/abs/"}}, "storage.prefix"),
        ({"storage": {"bucket": "ok-bucket", "prefix": "noslash"}}, "storage.prefix"),
        ({"dynamodb": {"table": "x"}}, "dynamodb.table"),
        ({"metadata": {"table": "x"}}, "not both"),
    ],
)
def test_invalid_specs_say_why(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy(**spec)


def test_policy_names_that_cannot_label_a_cronjob_are_refused() -> None:
    spec = {"storage": {"bucket": "audio"}, "metadata": {"table": "audio"}}
    Policy.from_spec(spec, name="x" * 63, namespace="ns")
    with pytest.raises(PolicyError, match="at most 63"):
        Policy.from_spec(spec, name="x" * 64, namespace="ns")


@pytest.mark.parametrize(("value", "expected"), [(None, True), (True, True), (False, False)])
def test_repeat_cache_defaults_on(value: bool | None, expected: bool) -> None:

    spec: dict[str, Any] = {"storage": {"bucket": "audio"}, "dynamodb": {"table": "audio"}}
    if value is not None:
        spec["repeatCache"] = value
    assert Policy.from_spec(spec, name="p", namespace="n").repeat_cache is expected


def test_repeat_cache_must_be_a_boolean() -> None:

    spec = {"storage": {"bucket": "audio"}, "dynamodb": {"table": "audio"}, "repeatCache": "no"}
    with pytest.raises(PolicyError, match="repeatCache 'no' must be true or false"):
        Policy.from_spec(spec, name="p", namespace="n")
