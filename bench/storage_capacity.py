"""Capacity on paper: the S3 and DynamoDB calls and capacity units of each path, and the request
rates at which each table layout and the date prefix meet AWS's per-partition and per-prefix
limits. The item sizes are those of real items (layout.AudioItem.record, sized by DynamoDB's rules);
the rest is arithmetic, written out.

    python -m bench.storage_capacity      # writes the "capacity-storage" section of BENCHMARKS.md
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.common import TEXTS, machine_line, write_section
from tempaudio_service.access.quotas import HOUR, counter_name
from tempaudio_service.storage import layout

# AWS's documented limits.
PARTITION_WCU = 1000  # write capacity units a second per partition
PARTITION_RCU = 3000  # read capacity units a second per partition (strongly consistent: 4 KB)
PREFIX_PUTS = 3500  # PUT/COPY/POST/DELETE a second per S3 prefix
TABLE_WCU = 40_000  # an on-demand table's default write throughput (a quota AWS raises)
CREATED = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values (strings as UTF-8, numbers
    about 1 byte per 2 digits + 1, booleans 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, str):
            size += len(value.encode())
        elif isinstance(value, bool):
            size += 1
        else:  # int, Decimal
            size += math.ceil(len(str(Decimal(value)).replace(".", "").lstrip("-0") or "0") / 2) + 1
    return size


def audio_item(text: str) -> dict[str, Any]:
    audio_id = str(uuid.uuid4())
    return layout.new_audio_item(
        created=CREATED,
        audio_id=audio_id,
        bucket="my-audio",
        key=layout.object_key("temp-audio/", CREATED, audio_id),
        text=text,
        voice_id="en_US-joe-medium",
        duration=Decimal("12.345"),
        retention=timedelta(hours=24),
        caller="team-a/notifier",
        policy="team-a/notifications",
    ).record()


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


def main(argv: list[str] | None = None) -> int:
    texts = {"short": TEXTS["short"], "medium": TEXTS["medium"], "5,000 characters": "a" * 5000}
    sizes = {name: item_bytes(audio_item(text)) for name, text in texts.items()}
    counter = item_bytes({"date": "counter#" + counter_name(("team-a/notifications",
                          "team-a/notifier"), "requests_per_minute", 0).rpartition("#")[0],
                          "audio_id": "29692080", "n": 60, "ttl": 1_781_524_860})  # fmt: skip
    entry = item_bytes({"date": "repeat#" + "f" * 64, "audio_id": "-",
                        "source_key": "temp-audio/2026-06-15/" + "f" * 36 + ".wav",
                        "expires": 1_781_611_200, "duration": Decimal("12.345"),
                        "ttl": 1_781_611_200})  # fmt: skip
    short_wcu = units(sizes["short"], 1024)
    rows_size = [f"| {name} | {size} B | {units(size, 1024)} |" for name, size in sizes.items()]
    body = f"""## Capacity: S3 and DynamoDB per request

Item sizes by DynamoDB's rules (names + values), from real items with a caller and a policy:

| item | size | WCU to write |
| --- | --- | --- |
{chr(10).join(rows_size)}
| quota counter | {counter} B | {units(counter, 1024)} |
| shared repeat cache entry | {entry} B | {units(entry, 1024)} |

Calls per request, by path (the same under both table layouts; a GetItem is strongly
consistent, 1 RCU per 4 KB). W is the audio item's WCU from the table above.

| path | S3 | DynamoDB | WCU | RCU |
| --- | --- | --- | --- | --- |
| synthesis (a miss), repeat cache off or `cache: false` | PutObject | PutItem | W | 0 |
| synthesis (a miss), repeat cache on | PutObject | GetItem (entry, first sight on this replica) + PutItem + PutItem (entry) | W + 1 | 1 |
| repeat (a hit) | CopyObject | (GetItem, first sight on this replica) + PutItem + PutItem (entry) | W + 1 | 0-1 |
| quota `requestsPerMinute` | | UpdateItem (conditional) | 1 | 0 |
| quota `audioSecondsPerHour` | | GetItem + UpdateItem (the audio, once made) | 1 | 1 |
| `GET /tts/{{date}}/{{id}}` | (presign: no call) | GetItem | 0 | 1 |
| stream, kept | PutObject | PutItem | W | 0 |

Where the limits are met (AWS: {PARTITION_WCU:,} WCU/s and {PARTITION_RCU:,} RCU/s per partition,
{PREFIX_PUTS:,} writes/s per S3 prefix, {TABLE_WCU:,} WCU/s per on-demand table by default):

- **DateAudioId** (the seed's): every audio item of a UTC day shares the partition key
  `date`, so a day's writes meet {PARTITION_WCU:,} WCU/s at {PARTITION_WCU:,} / W requests/s:
  {PARTITION_WCU // short_wcu:,}/s with short texts, {PARTITION_WCU // units(sizes["5,000 characters"], 1024):,}/s with 5,000-character texts.
  Reads by id use the same partition: {PARTITION_RCU:,} strongly consistent GETs/s a day
  (items under 4 KB). DynamoDB's split for heat raises this over minutes, throttling meanwhile.
- **AudioId**: each item is its own partition, so no partition is hot; the table's
  throughput is the bound: {TABLE_WCU:,} / W requests/s ({TABLE_WCU // short_wcu:,}/s with short texts).
- Quota counters and repeat cache entries have partitions of their own (one per policy,
  caller and quota; one per prompt) under either layout, so they never add to a day's
  partition. One caller's `requestsPerMinute` counter takes 1 WCU per request: a single
  caller meets its partition's limit at {PARTITION_WCU:,} requests/s, far above any quota.
- **S3's date prefix** (`<prefix>YYYY-MM-DD/`): every object of a day is written under one
  prefix, so a day's writes (PutObject and CopyObject alike) meet {PREFIX_PUTS:,}/s; S3 splits a
  busy prefix over time, and each new day starts on a fresh one.

So with the seed's layout the table, not S3, is the first limit: {PARTITION_WCU // short_wcu:,} short or
{PARTITION_WCU // units(sizes["5,000 characters"], 1024):,} long requests/s, against {PREFIX_PUTS:,}/s for the prefix. `keySchema: AudioId` moves
the bound to the prefix ({PREFIX_PUTS:,}/s) and the table's throughput. At the sizing table's 100
requests/s ("Capacity"), every layout is under a tenth of its limit.
The quota counters expire an hour after their window (KEEP_SECONDS = {HOUR} s).
"""
    write_section(
        "BENCHMARKS.md", "capacity-storage",
        f"{body}\nWritten by `python -m bench.storage_capacity` on {machine_line()}.",
        "Benchmarks",
    )  # fmt: skip
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
