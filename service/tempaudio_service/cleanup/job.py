"""``tempaudio-cleanup``: delete audio older than its retention, and nothing younger.

Lists only the date folders that can hold expired audio, checks each object's
LastModified, deletes in DeleteObjects batches of up to 1,000 keys, retries the
keys a response reports as failed, and ends with one JSON summary line.

It also aborts multipart uploads under the prefix that were started more than a day ago:
long audio is uploaded in parts as it is made (object_writer.py), and a replica killed
mid-upload leaves parts that are no object (no URL promises them) but are billed. S3's own
rule for this (AbortIncompleteMultipartUpload) takes no tag filter, so the lifecycle rule,
which must spare untagged objects under a shared prefix, cannot do it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.durations import format_duration, parse_retention
from tempaudio_api.storage import DEFAULT_PREFIX
from tempaudio_service.core.config import ConfigError, Env, parse_prefix
from tempaudio_service.storage import layout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_DELETE_BATCH = 1000
SUMMARY_EVENT = "tempaudio-cleanup-summary"
# An upload started longer ago than this is abandoned: a request makes its audio in minutes.
STALE_UPLOAD_AGE = timedelta(days=1)


@dataclass
class CleanupStats:
    scanned: int = 0
    expired: int = 0
    deleted: int = 0
    bytes: int = 0
    errors: int = 0
    folders_scanned: int = 0
    folders_skipped: int = 0
    list_requests: int = 0
    delete_requests: int = 0
    uploads_aborted: int = 0
    dry_run: bool = False
    duration_seconds: float = 0.0

    def summary_line(self) -> str:
        return json.dumps({"event": SUMMARY_EVENT, **asdict(self)}, sort_keys=True)


class S3Cleaner:
    def __init__(
        self,
        s3: S3Client,
        *,
        bucket: str,
        prefix: str,
        batch_size: int = MAX_DELETE_BATCH,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= batch_size <= MAX_DELETE_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_DELETE_BATCH}")
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._sleep = sleep

    def _folders(self, stats: CleanupStats) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            stats.list_requests += 1
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"]

    def _objects(self, folder: str, stats: CleanupStats) -> Iterator[layout.StoredObject]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            stats.list_requests += 1
            for entry in page.get("Contents", []):
                stats.scanned += 1
                yield layout.StoredObject(
                    key=entry["Key"], size=entry["Size"], last_modified=entry["LastModified"]
                )

    def _expired(self, cutoff: datetime, stats: CleanupStats) -> Iterator[layout.StoredObject]:
        """Expired objects of every date folder that can hold any, listed lazily."""
        for folder in self._folders(stats):
            day = layout.folder_date(self.prefix, folder)
            if day is None or not layout.folder_may_hold_expired(day, cutoff):
                stats.folders_skipped += 1
                continue
            stats.folders_scanned += 1
            for obj in self._objects(folder, stats):
                if layout.is_object_expired(obj.last_modified, cutoff):
                    yield obj

    def _delete(self, batch: Sequence[layout.StoredObject], stats: CleanupStats) -> None:
        """Delete one batch; retry the keys the response names as failed."""
        pending = {obj.key: obj for obj in batch}
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(min(5.0, 0.2 * 2**attempt))
            stats.delete_requests += 1
            try:
                answer = self._s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in pending], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as error:
                logger.warning("DeleteObjects failed (attempt %d): %s", attempt + 1, error)
                continue
            failed = {error["Key"] for error in answer.get("Errors", []) if "Key" in error}
            for key in set(pending) - failed:
                stats.deleted += 1
                stats.bytes += pending.pop(key).size
            if not pending:
                return
            logger.warning("%d key(s) failed to delete, retrying", len(pending))
        for key in pending:
            logger.error("could not delete %s after %d attempts", key, self._max_attempts)
        stats.errors += len(pending)

    def _stale_uploads(self, now: datetime, stats: CleanupStats) -> Iterator[tuple[str, str]]:
        """(key, upload id) of each multipart upload of the service's (an audio key,
        ``<prefix><date>/<uuid4>.<ext>``) under the prefix started before ``now`` less
        ``STALE_UPLOAD_AGE``: another writer's uploads under a shared prefix are its own."""
        paginator = self._s3.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            stats.list_requests += 1
            for upload in page.get("Uploads", []):
                key = upload["Key"]
                if upload["Initiated"] < now - STALE_UPLOAD_AGE and self._is_audio_key(key):
                    yield key, upload["UploadId"]

    def _is_audio_key(self, key: str) -> bool:
        folder, _, name = key[len(self.prefix) :].rpartition("/")
        day = layout.folder_date(self.prefix, f"{self.prefix}{folder}/")
        return day is not None and layout.is_valid_audio_id(name.rsplit(".", 1)[0])

    def abort_stale_uploads(self, now: datetime, stats: CleanupStats, *, dry_run: bool) -> None:
        for key, upload_id in list(self._stale_uploads(now, stats)):
            if dry_run:
                logger.info("dry run: would abort the upload of %s", key)
                continue
            try:
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (BotoCoreError, ClientError) as error:
                logger.warning("could not abort the upload of %s: %s", key, error)
                stats.errors += 1
                continue
            stats.uploads_aborted += 1

    def run(
        self,
        *,
        now: datetime,
        retention: timedelta,
        dry_run: bool,
        stats: CleanupStats | None = None,
    ) -> CleanupStats:
        """Delete what has expired; counters accumulate in ``stats`` even if a call raises."""
        started = time.monotonic()
        stats = stats or CleanupStats()
        stats.dry_run = dry_run
        cutoff = layout.expiry_cutoff(now, retention)
        # Batches fill across date folders: ceil(expired / 1000) DeleteObjects in all.
        for batch in layout.chunked(self._expired(cutoff, stats), self._batch_size):
            stats.expired += len(batch)
            if dry_run:
                stats.bytes += sum(obj.size for obj in batch)
                for obj in batch:
                    logger.info("dry run: would delete %s", obj.key)
            else:
                self._delete(batch, stats)
        self.abort_stale_uploads(now, stats, dry_run=dry_run)
        stats.duration_seconds = round(time.monotonic() - started, 3)
        return stats


def _parse_now(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("--now needs a timezone, e.g. 2026-01-02T12:00:00+00:00")
    return value.astimezone(UTC)


def _argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A shared rule from ``config`` as an argparse type: its error becomes a usage error."""

    def checked(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    checked.__name__ = parse.__name__.removeprefix("parse_")
    return checked


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags default from the environment, read by the same strict rules as the service.

    A bad variable is a usage error naming it (exit 2) before anything is listed or deleted.
    """
    parser = argparse.ArgumentParser(
        prog="tempaudio-cleanup",
        description="Delete tempaudio objects older than the retention, and nothing younger.",
    )
    env = Env(environ)
    try:
        bucket = env.raw("TEMPAUDIO_BUCKET")
        retention = env.retention("TEMPAUDIO_RETENTION", timedelta(0)) or None
        prefix = env.prefix("TEMPAUDIO_PREFIX", DEFAULT_PREFIX)
        dry_run = env.boolean("TEMPAUDIO_CLEANUP_DRY_RUN", False)
        log_format = env.choice("TEMPAUDIO_LOG_FORMAT", "text", ("text", "json"))
    except ConfigError as error:
        parser.error(str(error))
    parser.add_argument(
        "--bucket", default=bucket, required=bucket is None, help="bucket (TEMPAUDIO_BUCKET)"
    )
    parser.add_argument(
        "--prefix",
        type=_argument_type(parse_prefix),
        default=prefix,
        help="key prefix holding the YYYY-MM-DD/ folders (TEMPAUDIO_PREFIX, default temp-audio/)",
    )
    parser.add_argument(
        "--retention",
        type=_argument_type(parse_retention),
        default=retention,
        required=retention is None,
        help="delete objects older than this, 1m to 365d, e.g. 24h, 90m, 2d (TEMPAUDIO_RETENTION)",
    )
    parser.add_argument(
        "--region",
        default=env.raw("TEMPAUDIO_REGION") or env.raw("AWS_REGION") or "us-east-1",
        help="AWS region (TEMPAUDIO_REGION)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=env.raw("TEMPAUDIO_S3_ENDPOINT_URL"),
        help="S3 endpoint for S3-compatible stores (TEMPAUDIO_S3_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=dry_run,
        help="list what would be deleted, delete nothing (TEMPAUDIO_CLEANUP_DRY_RUN)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=log_format,
        help="log format (TEMPAUDIO_LOG_FORMAT)",
    )
    # For tests: pretend the clock says this.
    parser.add_argument("--now", type=_parse_now, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from tempaudio_service.core.logsetup import configure_logging
    from tempaudio_service.storage.store import make_s3_client

    # argparse runs each type= on defaults taken from the environment, too.
    args = build_parser(os.environ if env is None else env).parse_args(argv)
    configure_logging(args.log_format)
    now = args.now or datetime.now(UTC)
    logger.info(
        "cleanup of s3://%s/%s: retention=%s dry_run=%s now=%s",
        args.bucket,
        args.prefix,
        format_duration(args.retention),
        args.dry_run,
        now.isoformat(),
    )
    s3 = make_s3_client(region=args.region, endpoint_url=args.endpoint_url, timeout_seconds=30)
    cleaner = S3Cleaner(s3, bucket=args.bucket, prefix=args.prefix)
    stats = CleanupStats(dry_run=args.dry_run)
    try:
        cleaner.run(now=now, retention=args.retention, dry_run=args.dry_run, stats=stats)
    except (BotoCoreError, ClientError) as error:
        logger.error("cleanup failed: %s", error)
        stats.errors += 1
    except BaseException:
        # The operator reads the summary back: it is written whatever went wrong.
        stats.errors += 1
        _report(stats, env)
        raise
    _report(stats, env)
    return 1 if stats.errors else 0


def _report(stats: CleanupStats, env: Mapping[str, str] | None) -> None:
    summary = stats.summary_line()
    print(summary, flush=True)
    _write_termination_message(summary, (os.environ if env is None else env))


def _write_termination_message(summary: str, env: Mapping[str, str]) -> None:
    """In a pod, the summary also becomes the container's termination message."""
    path = env.get("TEMPAUDIO_TERMINATION_LOG")
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as message:  # noqa: PTH123
            message.write(summary + "\n")
    except OSError as error:
        logger.warning("could not write termination message to %s: %s", path, error)


if __name__ == "__main__":
    sys.exit(main())
