"""The job queue: SQS, shared by every replica (``TEMPAUDIO_JOBS_QUEUE_URL``).

Each message is one unit of a job's work: a part to synthesize, or a callback to deliver.
A message being worked on stays invisible while its worker extends it; a worker that dies
lets it reappear after the visibility timeout, for another replica. SQS counts how often a
message was received (``ApproximateReceiveCount``): the workers fail a part received too
often, so a part that kills its worker cannot go round for ever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_service.storage.aws_clients import unavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# SQS's limits: ten messages per batch call, a delay of at most 15 minutes, a long poll of
# at most 20 seconds.
MAX_BATCH = 10
MAX_DELAY_SECONDS = 900
MAX_WAIT_SECONDS = 20


@dataclass(frozen=True)
class Received:
    """A message as a worker holds it: its body, the receipt that deletes or extends it,
    and how many times it has been received (this time included)."""

    body: Mapping[str, Any]
    receipt: str
    receive_count: int


class JobQueue:
    dependency = "SQS"

    def __init__(self, sqs: SQSClient, url: str) -> None:
        self._sqs = sqs
        self.url = url

    def send(self, bodies: Sequence[Mapping[str, Any]], delay_seconds: int = 0) -> None:
        """Every body as a message, ten per call; raises ``StorageUnavailable`` if any one
        was not taken (the caller fails the whole submission)."""
        delay = max(0, min(MAX_DELAY_SECONDS, delay_seconds))
        for start in range(0, len(bodies), MAX_BATCH):
            batch = bodies[start : start + MAX_BATCH]
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": json.dumps(body, separators=(",", ":")),
                    "DelaySeconds": delay,
                }
                for index, body in enumerate(batch)
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)  # type: ignore[arg-type]
            except (BotoCoreError, ClientError) as error:
                raise unavailable("SQS", "SendMessageBatch", error) from error
            failed = answer.get("Failed") or []
            if failed:
                raise unavailable(
                    "SQS", "SendMessageBatch", RuntimeError(f"{len(failed)} message(s) refused")
                )

    def receive(self, *, most: int, wait_seconds: int, visibility_seconds: int) -> list[Received]:
        """Up to ``most`` messages, waiting up to ``wait_seconds`` for the first (a long
        poll); each stays invisible to the others for ``visibility_seconds``."""
        try:
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(MAX_BATCH, most)),
                WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, wait_seconds)),
                VisibilityTimeout=visibility_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("SQS", "ReceiveMessage", error) from error
        received = []
        for message in answer.get("Messages", []):
            try:
                body = json.loads(message.get("Body", ""))
            except ValueError:
                body = None
            count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            received.append(
                Received(
                    body=body if isinstance(body, dict) else {},
                    receipt=message["ReceiptHandle"],
                    receive_count=count,
                )
            )
        return received

    def delete(self, receipt: str) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("SQS", "DeleteMessage", error) from error

    def extend(self, receipt: str, visibility_seconds: int) -> None:
        """Keep a message invisible for ``visibility_seconds`` from now (its worker lives)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=visibility_seconds
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("SQS", "ChangeMessageVisibility", error) from error

    def depth(self) -> tuple[int, int]:
        """(waiting, in flight): SQS's approximate counts of the queue's messages."""
        try:
            answer = self._sqs.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("SQS", "GetQueueAttributes", error) from error
        attributes = answer.get("Attributes", {})
        return (
            int(attributes.get("ApproximateNumberOfMessages", "0")),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
        )

    def check(self) -> None:
        self.depth()


def ensure_queue(sqs: SQSClient, name: str) -> str:
    """The URL of queue ``name``, created when missing (the embedded local mode only)."""
    return sqs.create_queue(QueueName=name)["QueueUrl"]
