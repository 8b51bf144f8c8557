from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tempaudio_service.storage import layout

CREATED = datetime(2026, 3, 4, 23, 30, 15, tzinfo=UTC)
AUDIO_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_object_key_uses_utc_date_folder() -> None:
    assert layout.object_key("temp-audio/", CREATED, AUDIO_ID) == (
        f"temp-audio/2026-03-04/{AUDIO_ID}.wav"
    )
    # 23:30 UTC is already the 5th in UTC+2, but folders are UTC days.
    local = CREATED.astimezone(timezone(timedelta(hours=2)))
    assert layout.date_folder(local) == "2026-03-04"


def _item(**fields: Any) -> layout.AudioItem:
    return layout.new_audio_item(
        created=CREATED,
        audio_id=AUDIO_ID,
        bucket="b",
        key=f"temp-audio/2026-03-04/{AUDIO_ID}.wav",
        text="hi",
        voice_id="en_US-joe-medium",
        duration=Decimal("1.250"),
        retention=timedelta(hours=24),
        **fields,
    )


def test_audio_item_has_exactly_the_contract_attributes() -> None:
    record = _item().record()
    # The seed's seven attributes, in the seed's order.
    assert list(record) == ["date", "audio_id", "s3_url", "text", "voice_id", "duration", "ttl"]
    assert record["date"] == "2026-03-04"
    assert record["s3_url"] == f"s3://b/temp-audio/2026-03-04/{AUDIO_ID}.wav"
    assert record["ttl"] == int(CREATED.timestamp()) + 86400
    assert isinstance(record["duration"], Decimal)


def test_an_item_holds_keys_and_reads_back_from_its_record() -> None:
    item = _item(
        audio_format="mp3",
        sample_rate=44100,
        caller="team-a/notifier",
        policy="team-a/p",
        ttl_attribute="expires",
        companions={"speech_marks": f"temp-audio/2026-03-04/{AUDIO_ID}.marks"},
    )
    record = item.record()
    assert record["expires"] == record["ttl"]
    assert record["speech_marks_s3_url"] == f"s3://b/temp-audio/2026-03-04/{AUDIO_ID}.marks"
    # What DynamoDB gives back is the same item (its TTL attribute is the policy's to say).
    assert layout.AudioItem.from_record(record, "b") == replace(item, ttl_attribute="ttl")
    assert layout.AudioItem.from_record(record, "other") is None
    assert layout.AudioItem.from_record({**record, "format": "exe"}, "b") is None
    assert layout.AudioItem.from_record({"s3_url": record["s3_url"]}, "b") is None


@pytest.mark.parametrize(
    ("frames", "rate", "expected"),
    [(22050, 22050, "1.000"), (33075, 22050, "1.500"), (1, 22050, "0.000"), (11, 22050, "0.000")],
)
def test_duration_decimal(frames: int, rate: int, expected: str) -> None:
    assert layout.duration_decimal(frames, rate) == Decimal(expected)


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (timedelta(hours=24), 86400),
        (timedelta(seconds=5), 5),
        (timedelta(seconds=-5), 0),
        (timedelta(days=30), 7 * 86400),  # SigV4 limit
    ],
)
def test_presign_never_outlives_audio(remaining: timedelta, expected: int) -> None:
    expires = int((CREATED + remaining).timestamp())
    assert layout.presign_seconds(CREATED, expires) == expected


def test_key_from_s3_uri_round_trip_and_foreign_bucket() -> None:
    key = f"temp-audio/2026-03-04/{AUDIO_ID}.wav"
    assert layout.key_from_s3_uri(layout.s3_uri("b", key), "b") == key
    with pytest.raises(ValueError, match="not an object of bucket"):
        layout.key_from_s3_uri(layout.s3_uri("other", key), "b")


@pytest.mark.parametrize(
    ("audio_id", "valid"),
    [(AUDIO_ID, True), (AUDIO_ID.upper(), False), ("../../etc", False), ("", False)],
)
def test_is_valid_audio_id(audio_id: str, valid: bool) -> None:
    assert layout.is_valid_audio_id(audio_id) is valid


@pytest.mark.parametrize(
    ("ttl_offset", "expired"), [(-1, True), (0, True), (1, False), (3600, False)]
)
def test_item_expiry_is_checked_on_read(ttl_offset: int, expired: bool) -> None:
    item = replace(_item(), ttl=int(CREATED.timestamp()) + ttl_offset)
    assert layout.is_item_expired(item, CREATED) is expired


@pytest.mark.parametrize(
    ("common_prefix", "expected"),
    [
        ("temp-audio/2026-03-04/", date(2026, 3, 4)),
        ("temp-audio/2026-02-30/", None),
        ("temp-audio/latest/", None),
        ("other/2026-03-04/", None),
        ("temp-audio/2026-03-04", None),
    ],
)
def test_folder_date(common_prefix: str, expected: date | None) -> None:
    assert layout.folder_date("temp-audio/", common_prefix) == expected


def test_noon_of_the_next_day_does_not_make_yesterday_expired() -> None:
    # The system this replaces deleted yesterday's folder at noon: 12h-old audio went too.
    now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    cutoff = layout.expiry_cutoff(now, timedelta(hours=24))
    assert layout.folder_may_hold_expired(date(2026, 3, 4), cutoff)
    assert not layout.is_object_expired(datetime(2026, 3, 4, 18, 0, tzinfo=UTC), cutoff)
    assert layout.is_object_expired(datetime(2026, 3, 4, 11, 59, 58, tzinfo=UTC), cutoff)


def test_folders_after_the_cutoff_day_are_skipped() -> None:
    now = datetime(2026, 3, 5, 0, 30, tzinfo=UTC)
    cutoff = layout.expiry_cutoff(now, timedelta(hours=1))
    assert layout.folder_may_hold_expired(date(2026, 3, 4), cutoff)
    assert not layout.folder_may_hold_expired(date(2026, 3, 5), cutoff)


def test_cutoff_keeps_a_last_modified_granularity_margin() -> None:
    now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    cutoff = layout.expiry_cutoff(now, timedelta(hours=1))
    exactly_retention_old = now - timedelta(hours=1)
    assert not layout.is_object_expired(exactly_retention_old, cutoff)
    assert layout.is_object_expired(exactly_retention_old - timedelta(seconds=1), cutoff)


@pytest.mark.parametrize(("count", "size", "sizes"), [(0, 3, []), (3, 3, [3]), (7, 3, [3, 3, 1])])
def test_chunked(count: int, size: int, sizes: list[int]) -> None:
    assert [len(batch) for batch in layout.chunked(range(count), size)] == sizes


def test_an_item_is_of_a_policy_only_at_its_exact_key() -> None:
    record = {
        "date": "2026-03-04",
        "audio_id": AUDIO_ID,
        "text": "hi",
        "voice_id": "v",
        "duration": 1,
        "ttl": 1,
        "s3_url": f"s3://b/audio/team-b/2026-03-04/{AUDIO_ID}.wav",
    }
    item = layout.AudioItem.from_record(record, "b")
    assert item is not None
    # An item from before items named their policy, under nested prefixes.
    assert layout.is_item_of(item, "ns/b", "b", "audio/team-b/")
    assert not layout.is_item_of(item, "ns/a", "b", "audio/")
    assert not layout.is_item_of(item, "ns/b", "other", "audio/team-b/")
    recorded = layout.AudioItem.from_record({**record, "policy": "ns/b"}, "b")
    assert recorded is not None
    assert not layout.is_item_of(recorded, "ns/a", "b", "audio/team-b/")


AUDIO_KEY = f"temp-audio/2026-03-04/{AUDIO_ID}.mp3"
STEM = f"temp-audio/2026-03-04/{AUDIO_ID}"


@pytest.mark.parametrize(
    ("key", "extension", "expected"),
    [
        (AUDIO_KEY, "marks", f"{STEM}.marks"),
        (f"{STEM}.wav", "vtt", f"{STEM}.vtt"),
        ("a.b/c.d.ogg", "srt", "a.b/c.d.srt"),
    ],
)
def test_a_companion_is_kept_at_the_audio_stem_with_another_extension(
    key: str, extension: str, expected: str
) -> None:
    assert layout.companion_key(key, extension) == expected


def _companions(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The companions an item read from ``record`` takes (of ``names``)."""
    base = {
        "date": "2026-03-04",
        "audio_id": AUDIO_ID,
        "text": "hi",
        "voice_id": "v",
        "duration": 1,
        "ttl": 1,
        "format": "mp3",
    }
    item = layout.AudioItem.from_record({**base, **record}, "b", names)
    assert item is not None
    return dict(item.companions)


def test_companions_of_finds_the_named_objects_beside_the_audio() -> None:
    item = {
        "s3_url": f"s3://b/{AUDIO_KEY}",
        "speech_marks_s3_url": f"s3://b/{layout.companion_key(AUDIO_KEY, 'marks')}",
        "captions_s3_url": f"s3://b/{layout.companion_key(AUDIO_KEY, 'vtt')}",
        "unasked_s3_url": f"s3://b/{STEM}.txt",
    }
    assert _companions(item, ("speech_marks", "captions")) == {
        "speech_marks": f"{STEM}.marks",
        "captions": f"{STEM}.vtt",
    }


def test_an_item_without_companions_has_none() -> None:
    assert _companions({"s3_url": f"s3://b/{AUDIO_KEY}"}, ("speech_marks",)) == {}


OTHER_ID = "1f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    "named",
    [
        pytest.param(f"s3://b/temp-audio/2026-03-05/{AUDIO_ID}.marks", id="another folder"),
        pytest.param(f"s3://b/other/{STEM}.marks", id="under another prefix"),
        pytest.param(f"s3://other/{STEM}.marks", id="another bucket"),
        pytest.param(f"s3://bb/{STEM}.marks", id="a bucket the name begins"),
        pytest.param(f"s3://b/temp-audio/2026-03-04/{OTHER_ID}.marks", id="another stem"),
        pytest.param(f"s3://b/{STEM}0.marks", id="a stem that begins with it"),
        pytest.param(f"s3://b/{STEM}.x/evil.marks", id="a nested path"),
        pytest.param(f"s3://b/{STEM}./../{OTHER_ID}.wav", id="a way out"),
        pytest.param(f"s3://b/{AUDIO_KEY}", id="the audio itself"),
        pytest.param(f"{STEM}.marks", id="a bare key"),
        pytest.param(42, id="a number"),
        pytest.param(None, id="nothing"),
        pytest.param([f"s3://b/{STEM}.marks"], id="a list"),
        pytest.param(f"s3://b/{STEM}.marks".encode(), id="bytes"),
    ],
)
def test_companions_of_ignores_what_is_not_beside_the_audio(named: object) -> None:
    item = {"s3_url": f"s3://b/{AUDIO_KEY}", "speech_marks_s3_url": named}
    assert _companions(item, ("speech_marks",)) == {}
