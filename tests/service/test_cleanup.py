"""tempaudio-cleanup against moto's server over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempaudio_service.cleanup.job import S3Cleaner, main
from tempaudio_service.storage import layout
from tests.conftest import list_keys, put_object_created_at

NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)
PREFIX = "temp-audio/"


def new_bucket(s3: Any) -> str:
    bucket = f"cleanup-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


# Date folders are UTC days: every date-sensitive test runs at several fixed instants.
INSTANTS = [
    datetime(2026, 6, 15, 0, 30, tzinfo=UTC),
    NOW,
    datetime(2026, 6, 15, 23, 59, tzinfo=UTC),
    datetime(2026, 3, 1, 0, 30, tzinfo=UTC),  # yesterday is the last day of February
]


def put_aged(
    s3: Any, bucket: str, age: timedelta, body: bytes = b"wav", *, now: datetime = NOW
) -> str:
    created = now - age
    key = layout.object_key(PREFIX, created, str(uuid.uuid4()))
    put_object_created_at(s3, bucket, key, created, body)
    return key


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ages=st.lists(st.integers(min_value=0, max_value=4 * 86400), min_size=1, max_size=12),
    retention_seconds=st.integers(min_value=60, max_value=3 * 86400),
)
def test_nothing_younger_than_retention_is_deleted_and_everything_older_is(
    s3: Any, ages: list[int], retention_seconds: int
) -> None:
    bucket = new_bucket(s3)
    retention = timedelta(seconds=retention_seconds)
    keys = {put_aged(s3, bucket, timedelta(seconds=age)): age for age in ages}

    stats = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
        now=NOW, retention=retention, dry_run=False
    )

    remaining = list_keys(s3, bucket)
    for key, age in keys.items():
        if age < retention_seconds:
            assert key in remaining, f"deleted {age}s-old audio with retention {retention_seconds}s"
        elif age > retention_seconds + 1:  # LastModified has whole-second precision
            assert key not in remaining, (
                f"kept {age}s-old audio with retention {retention_seconds}s"
            )
    assert stats.deleted == len(keys) - len(remaining)
    assert stats.errors == 0
    # A second run finds nothing more to do.
    again = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
        now=NOW, retention=retention, dry_run=False
    )
    assert again.deleted == 0
    assert list_keys(s3, bucket) == remaining


def test_batches_of_1000_and_only_possible_folders_are_listed(s3: Any) -> None:
    bucket = new_bucket(s3)
    old = [put_aged(s3, bucket, timedelta(days=2, seconds=i)) for i in range(2100)]
    fresh = [put_aged(s3, bucket, timedelta(minutes=5)) for _ in range(3)]
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}not-a-date/keep.wav", Body=b"x")
    s3.put_object(Bucket=bucket, Key="elsewhere/2026-01-01/keep.wav", Body=b"x")

    stats = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
        now=NOW, retention=timedelta(hours=24), dry_run=False
    )

    assert stats.deleted == 2100
    assert stats.bytes == 2100 * len(b"wav")
    assert stats.delete_requests == 3  # ceil(2100 / 1000)
    # Today's folder and the foreign folder are never listed object by object.
    assert stats.folders_scanned == 1
    assert stats.folders_skipped == 2
    assert list_keys(s3, bucket) == {
        *fresh,
        f"{PREFIX}not-a-date/keep.wav",
        "elsewhere/2026-01-01/keep.wav",
    }
    assert not set(old) & list_keys(s3, bucket)


def test_dry_run_deletes_nothing(s3: Any) -> None:
    bucket = new_bucket(s3)
    keys = {put_aged(s3, bucket, timedelta(days=3)) for _ in range(5)}
    stats = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
        now=NOW, retention=timedelta(hours=1), dry_run=True
    )
    assert (stats.expired, stats.deleted, stats.dry_run) == (5, 0, True)
    assert list_keys(s3, bucket) == keys


class FlakyDeletes:
    """Pass-through S3 client whose first DeleteObjects reports some keys as failed."""

    def __init__(self, s3: Any, fail_keys: int) -> None:
        self._s3 = s3
        self._fail_keys = fail_keys

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        objects = Delete["Objects"]
        failing, passing = objects[: self._fail_keys], objects[self._fail_keys :]
        self._fail_keys = 0
        answer = self._s3.delete_objects(Bucket=Bucket, Delete={**Delete, "Objects": passing})
        errors = [
            {"Key": o["Key"], "Code": "InternalError", "Message": "try again"} for o in failing
        ]
        return {**answer, "Errors": errors}


def test_per_key_errors_are_retried(s3: Any) -> None:
    bucket = new_bucket(s3)
    for _ in range(10):
        put_aged(s3, bucket, timedelta(days=2))
    cleaner = S3Cleaner(
        FlakyDeletes(s3, fail_keys=3), bucket=bucket, prefix=PREFIX, sleep=lambda _: None
    )  # type: ignore[arg-type]
    stats = cleaner.run(now=NOW, retention=timedelta(hours=24), dry_run=False)
    assert (stats.deleted, stats.errors, stats.delete_requests) == (10, 0, 2)
    assert list_keys(s3, bucket) == set()


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tempaudio_service.cleanup.job", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("now", "scanned", "folders"),
    # Shortly after midnight the 12-hour-old object sits in yesterday's folder, which can
    # hold expired audio, so it is listed (and kept); later in the day it is not listed.
    [
        (INSTANTS[0], 2, (2, 0)),
        (NOW, 1, (1, 1)),
        (INSTANTS[2], 1, (1, 1)),
        (INSTANTS[3], 2, (2, 0)),
    ],
    ids=str,
)
def test_cli_deletes_and_prints_one_json_summary(
    s3: Any, aws_env: dict[str, str], now: datetime, scanned: int, folders: tuple[int, int]
) -> None:
    bucket = new_bucket(s3)
    old = put_aged(s3, bucket, timedelta(hours=30), now=now)
    young = put_aged(s3, bucket, timedelta(hours=12), now=now)
    result = run_cli(["--bucket", bucket, "--retention", "24h", "--now", now.isoformat()], aws_env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["event"] == "tempaudio-cleanup-summary"
    assert (summary["scanned"], summary["deleted"], summary["errors"]) == (scanned, 1, 0)
    assert (summary["folders_scanned"], summary["folders_skipped"]) == folders
    assert summary["dry_run"] is False
    assert list_keys(s3, bucket) == {young}
    assert old not in list_keys(s3, bucket)


def test_cli_reads_its_defaults_from_the_environment(s3: Any, aws_env: dict[str, str]) -> None:
    bucket = new_bucket(s3)
    put_aged(s3, bucket, timedelta(hours=3))
    env = {**aws_env, "TEMPAUDIO_BUCKET": bucket, "TEMPAUDIO_RETENTION": "2h"}
    result = run_cli(["--dry-run", "--now", NOW.isoformat()], env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["expired"], summary["deleted"], summary["dry_run"]) == (1, 0, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--retention", "24h"], "--bucket"),
        (["--bucket", "b"], "--retention"),
        (["--bucket", "b", "--retention", "soon"], "invalid duration"),
        # A traceback and no summary line before.
        (["--bucket", "b", "--retention", "99999999d"], "between 1m and 365d"),
        (["--bucket", "b", "--retention", "1h", "--prefix", "/abs"], "not a key prefix"),
        (["--bucket", "b", "--retention", "1h", "--prefix", ""], "must not be empty"),
        (["--bucket", "b", "--retention", "1h", "--now", "2026-01-01T00:00"], "timezone"),
    ],
)
def test_cli_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args, env={})
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_fails_non_zero_when_the_bucket_is_missing(aws_env: dict[str, str]) -> None:
    result = run_cli(["--bucket", "no-such-bucket-here", "--retention", "1h"], aws_env)
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["errors"] == 1
    assert "NoSuchBucket" in result.stderr


@pytest.mark.parametrize("value", ["on", " true", "YES", "1"])
def test_every_true_word_makes_a_dry_run(s3: Any, aws_env: dict[str, str], value: str) -> None:
    bucket = new_bucket(s3)
    old = put_aged(s3, bucket, timedelta(hours=3))
    env = {**aws_env, "TEMPAUDIO_CLEANUP_DRY_RUN": value}
    result = run_cli(["--bucket", bucket, "--retention", "1h", "--now", NOW.isoformat()], env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["expired"], summary["deleted"], summary["dry_run"]) == (1, 0, True)
    assert list_keys(s3, bucket) == {old}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # "y" once ran a real, deleting cleanup: only 1/true/yes were known.
        ("TEMPAUDIO_CLEANUP_DRY_RUN", "y"),
        ("TEMPAUDIO_CLEANUP_DRY_RUN", "dry"),
        ("TEMPAUDIO_RETENTION", "99999999d"),
        ("TEMPAUDIO_PREFIX", ""),
        ("TEMPAUDIO_LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_variable_is_a_usage_error_and_deletes_nothing(
    s3: Any, aws_env: dict[str, str], variable: str, value: str
) -> None:
    bucket = new_bucket(s3)
    old = put_aged(s3, bucket, timedelta(hours=3))
    env = {**aws_env, "TEMPAUDIO_BUCKET": bucket, "TEMPAUDIO_RETENTION": "1h", variable: value}
    result = run_cli(["--now", NOW.isoformat()], env)
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert list_keys(s3, bucket) == {old}


def test_every_format_s_extension_is_cleaned_up(s3: Any) -> None:
    """Objects of every format live in the same date folders and go the same way."""
    from tempaudio_service.core.formats import FORMATS

    bucket = new_bucket(s3)
    old, young = {}, {}
    for fmt in FORMATS.values():
        for ages, age in ((old, timedelta(hours=30)), (young, timedelta(hours=1))):
            created = NOW - age
            key = layout.object_key(PREFIX, created, str(uuid.uuid4()), fmt.extension)
            put_object_created_at(s3, bucket, key, created)
            ages[fmt.name] = key  # (ulaw, alaw and wav share .wav)

    stats = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
        now=NOW, retention=timedelta(hours=24), dry_run=False
    )

    assert list_keys(s3, bucket) == set(young.values())
    assert stats.deleted == len(old) == len(FORMATS)


# moto dates every multipart upload 2010-11-10T20:48:33Z; the clock is set against that.
MOTO_INITIATED = datetime(2010, 11, 10, 20, 48, 33, tzinfo=UTC)


def test_uploads_abandoned_over_a_day_ago_are_aborted_and_younger_ones_kept(s3: Any) -> None:
    bucket = new_bucket(s3)
    ours = s3.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}2010-11-10/{uuid.uuid4()}.wav")
    s3.create_multipart_upload(Bucket=bucket, Key="elsewhere/b.wav")  # not under the prefix
    # Another writer's, under the same prefix: not an audio key of the service's.
    s3.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}backups/dump.tar")
    cleaner = S3Cleaner(s3, bucket=bucket, prefix=PREFIX)

    young = cleaner.run(
        now=MOTO_INITIATED + timedelta(hours=23), retention=timedelta(hours=1), dry_run=False
    )
    dry = cleaner.run(
        now=MOTO_INITIATED + timedelta(days=2), retention=timedelta(hours=1), dry_run=True
    )
    assert (young.uploads_aborted, dry.uploads_aborted) == (0, 0)
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 3

    stale = cleaner.run(
        now=MOTO_INITIATED + timedelta(days=2), retention=timedelta(hours=1), dry_run=False
    )
    assert stale.uploads_aborted == 1
    left = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert sorted(upload["Key"] for upload in left) == [
        "elsewhere/b.wav",
        f"{PREFIX}backups/dump.tar",
    ]
    assert ours["UploadId"] not in {upload["UploadId"] for upload in left}
