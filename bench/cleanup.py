"""Cleanup benchmark: tempaudio-cleanup vs a naive list-then-delete-each loop.

N objects spread evenly over the last five days, retention 24h (so about 80% expire).
Both run against moto's server over HTTP; requests are counted per operation from
botocore's own events. The floor is ceil(expired / 1000) DeleteObjects calls plus the
listing pages. Objects are seeded straight into moto's backend (setup, not measured).

    python -m bench.cleanup                  # 10k and 100k
    python -m bench.cleanup --sizes 2000     # a smoke run
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import machine_line, write_section
from tempaudio_service.cleanup.job import S3Cleaner
from tempaudio_service.storage import layout
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.store import make_s3_client

PREFIX = "temp-audio/"
RETENTION = timedelta(hours=24)
SPAN = timedelta(days=5)


def seed(bucket: str, count: int, now: datetime) -> int:
    """Put ``count`` objects created evenly over SPAN; returns how many are expired."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    cutoff = layout.expiry_cutoff(now, RETENTION)
    expired = 0
    for index in range(count):
        created = now - SPAN * (index + 0.5) / count
        key = layout.object_key(PREFIX, created, str(uuid.uuid4()))
        stored = backend.put_object(bucket, key, b"RIFF" + bytes(60))
        stored.last_modified = created.replace(tzinfo=None)
        expired += created <= cutoff
    return expired


def counted_client(endpoint: str) -> tuple[Any, Counter[str]]:
    s3 = make_s3_client(region="us-east-1", endpoint_url=endpoint, timeout_seconds=60, local=True)
    calls: Counter[str] = Counter()
    # Once per API call (retries not counted twice), named by operation.
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return s3, calls


def _count_by_operation(calls: Counter[str]) -> dict[str, int]:
    return dict(calls)


def naive(s3: Any, bucket: str, now: datetime) -> int:
    """What a hand-written job does: list everything, delete old objects one by one."""
    cutoff = now - RETENTION
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for entry in page.get("Contents", []):
            if entry["LastModified"] <= cutoff:
                s3.delete_object(Bucket=bucket, Key=entry["Key"])
                deleted += 1
    return deleted


def run(endpoint: str, size: int) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    results: dict[str, Any] = {"size": size}
    for name in ("tempaudio", "naive"):
        bucket = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        s3, calls = counted_client(endpoint)
        s3.create_bucket(Bucket=bucket)
        expired = seed(bucket, size, now)
        calls.clear()
        started = time.perf_counter()
        if name == "tempaudio":
            stats = S3Cleaner(s3, bucket=bucket, prefix=PREFIX).run(
                now=now, retention=RETENTION, dry_run=False
            )
            deleted = stats.deleted
        else:
            deleted = naive(s3, bucket, now)
        wall = time.perf_counter() - started
        remaining = sum(
            page.get("KeyCount", 0)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
        )
        requests = sum(calls.values())
        results[name] = {
            "expired": expired, "deleted": deleted, "remaining": remaining, "wall": wall,
            "requests": requests, "by_operation": _count_by_operation(calls),
        }  # fmt: skip
        print(f"{name:9} n={size}: deleted {deleted}/{expired} in {wall:.1f}s with {requests} requests "
              f"{dict(calls)}", flush=True)  # fmt: skip
    return results


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        (
            f"Measured by `python -m bench.cleanup` on {machine_line()}, against moto's S3 server over "
            "HTTP. Objects spread evenly over five days, retention 24h. The naive loop lists the "
            "whole prefix and calls DeleteObject once per expired key."
        ),
        "",
        "| objects | expired | tempaudio requests (list + delete) | floor | naive requests | tempaudio objects deleted per request | tempaudio wall (s) | naive wall (s) | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        t, n = row["tempaudio"], row["naive"]
        ops = t["by_operation"]
        floor = math.ceil(t["expired"] / 1000)
        lines.append(
            f"| {row['size']:,} | {t['expired']:,} | {t['requests']} ({ops.get('ListObjectsV2', 0)} + "
            f"{ops.get('DeleteObjects', 0)}) | {floor} DeleteObjects + listing | {n['requests']:,} | "
            f"{t['deleted'] / max(1, t['requests']):.0f} | {t['wall']:.1f} | {n['wall']:.1f} | "
            f"{n['wall'] / t['wall']:.1f}x |"
        )
    lines += [
        "",
        (
            "Both delete exactly the expired objects (checked: deleted == expired, remaining == "
            "objects - expired). tempaudio lists only the date folders that can hold expired audio, "
            "so today's folder is never listed object by object."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    rows = []
    with LocalAws() as local:
        for size in args.sizes:
            row = run(local.endpoint_url, size)
            for name in ("tempaudio", "naive"):
                result = row[name]
                assert result["deleted"] == result["expired"], row
                assert result["remaining"] == size - result["expired"], row
            rows.append(row)
    write_section("BENCHMARKS.md", "cleanup", "## Cleanup\n\n" + report(rows), "Benchmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
