"""Where a policy's audio and items live: bucket, prefix, region and table rules, and the tag
that marks the service's objects (pure)."""

from __future__ import annotations

import re

from .errors import PolicyError

DEFAULT_PREFIX = "temp-audio/"
DEFAULT_REGION = "us-east-1"
# Every object the service writes carries this tag; the lifecycle safety net and the cleanup
# touch only tagged objects, so a shared prefix loses nothing else.
AUDIO_TAG_KEY = "tempaudio"
AUDIO_TAG_VALUE = "audio"
AUDIO_TAGGING = f"{AUDIO_TAG_KEY}={AUDIO_TAG_VALUE}"  # as S3's PutObject takes it

# The table layouts (spec.dynamodb.keySchema): (attribute, key type) of each key. The first
# is the seed's and the default; AudioId spreads a day's writes over partitions.
KEY_SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "DateAudioId": (("date", "HASH"), ("audio_id", "RANGE")),
    "AudioId": (("audio_id", "HASH"),),
}

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TABLE = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
# An AWS region name: us-east-1, eu-central-2, us-gov-west-1.
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
REGION = re.compile(REGION_PATTERN)
# The CRD's patterns are these rules (OpenAPI patterns have no non-capturing groups).
# Segments that are neither empty, "." nor "..", each ending in "/".
PREFIX_PATTERN = r"^(([^/.][^/]*|[.][^/.][^/]*|[.][.][^/]+)/)+$"
_PREFIX = re.compile(PREFIX_PATTERN)


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot scope a policy's objects, or None. Not empty (the cleanup
    deletes under it), no leading '/', no empty, '.' or '..' segment, ending in '/'."""
    if _PREFIX.match(prefix) is None:
        return (
            f"prefix {prefix[:60]!r} is not a key prefix such as temp-audio/: segments ending"
            " in '/', none of them empty, '.' or '..'"
        )
    return None


def check_prefix(prefix: str) -> str:
    problem = prefix_problem(prefix)
    if problem:
        raise PolicyError(f"storage.{problem}")
    return prefix


def check_bucket(bucket: str) -> str:
    if not BUCKET.match(bucket) or ".." in bucket:
        raise PolicyError(f"storage.bucket {bucket[:70]!r} is not a valid S3 bucket name")
    return bucket


def check_table(table: str) -> str:
    if not TABLE.match(table):
        raise PolicyError(f"dynamodb.table {table[:70]!r} is not a valid DynamoDB table name")
    return table


def check_region(region: str) -> str:
    if not REGION.match(region):
        raise PolicyError(f"storage.region {region[:40]!r} is not an AWS region name")
    return region
