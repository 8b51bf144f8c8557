"""How AWS's refusals map to retries (moto accepts repeats; these are AWS's real answers)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tempaudio_operator.aws import AwsNotReady, ensure_ttl


def stubbed() -> tuple[object, Stubber]:
    dynamodb = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return dynamodb, Stubber(dynamodb)


def describe(stub: Stubber, status: str, attribute: str | None = None) -> None:
    description = {"TimeToLiveStatus": status}
    if attribute:
        description["AttributeName"] = attribute
    stub.add_response(
        "describe_time_to_live", {"TimeToLiveDescription": description}, {"TableName": "t"}
    )


def test_enabled_ttl_is_not_updated_again() -> None:
    dynamodb, stub = stubbed()
    describe(stub, "ENABLED", "ttl")
    with stub:
        assert ensure_ttl(dynamodb, "t", "ttl") is False  # type: ignore[arg-type]
    stub.assert_no_pending_responses()


def test_disabled_ttl_is_enabled_once() -> None:
    dynamodb, stub = stubbed()
    describe(stub, "DISABLED")
    stub.add_response(
        "update_time_to_live",
        {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "ttl"}},
        {"TableName": "t", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "ttl"}},
    )
    with stub:
        assert ensure_ttl(dynamodb, "t", "ttl") is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "reason", "throttled"),
    [
        (
            "Time to live has been modified multiple times within a fixed interval",
            "Throttled",
            True,
        ),
        ("User is not authorized to perform: dynamodb:UpdateTimeToLive", "UpdateFailed", False),
    ],
)
def test_update_refusals_become_retries(message: str, reason: str, throttled: bool) -> None:
    dynamodb, stub = stubbed()
    describe(stub, "DISABLED")
    stub.add_client_error("update_time_to_live", "ValidationException", message)
    with stub, pytest.raises(AwsNotReady) as refused:
        ensure_ttl(dynamodb, "t", "ttl")  # type: ignore[arg-type]
    assert (refused.value.reason, refused.value.throttled) == (reason, throttled)


def test_already_enabled_answer_is_success() -> None:
    dynamodb, stub = stubbed()
    describe(stub, "DISABLED")
    stub.add_client_error(
        "update_time_to_live", "ValidationException", "TimeToLive is already enabled"
    )
    with stub:
        assert ensure_ttl(dynamodb, "t", "ttl") is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "attribute", "reason"),
    [("DISABLING", None, "TTLChanging"), ("ENABLED", "expires", "TTLAttributeMismatch")],
)
def test_states_that_need_waiting(status: str, attribute: str | None, reason: str) -> None:
    dynamodb, stub = stubbed()
    describe(stub, status, attribute)
    with stub, pytest.raises(AwsNotReady) as refused:
        ensure_ttl(dynamodb, "t", "ttl")  # type: ignore[arg-type]
    assert refused.value.reason == reason
    assert refused.value.throttled is True
