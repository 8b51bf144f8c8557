"""When a storage error means nothing was written (aws_clients.refused): only a plain no to
the first attempt. After a retry, a write may have landed through an attempt whose answer
was lost, so the pair's undo must revoke the item."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tempaudio_service.storage.aws_clients import refused, unavailable


def _error(code: str, status: int, attempts: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "no"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": attempts},
        },
        "PutItem",
    )


@pytest.mark.parametrize(
    ("error", "nothing_written"),
    [
        pytest.param(_error("ResourceNotFoundException", 400, 0), True, id="no table"),
        pytest.param(_error("AccessDeniedException", 400, 0), True, id="not allowed"),
        pytest.param(_error("ThrottlingException", 400, 2), False, id="throttled after retries"),
        pytest.param(
            _error("ConditionalCheckFailedException", 400, 1), False, id="an earlier attempt landed"
        ),
        pytest.param(_error("ConditionalCheckFailedException", 400, 0), False, id="the key exists"),
        pytest.param(_error("InternalServerError", 500, 0), False, id="a server error"),
        pytest.param(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), False, id="timeout"),
    ],
)
def test_only_a_plain_no_to_the_first_attempt_means_nothing_was_written(
    error: Exception, nothing_written: bool
) -> None:
    assert refused(error) is nothing_written
    assert unavailable("DynamoDB", "PutItem", error).refused is nothing_written
