"""An object uploaded as it is made (object_writer.py), against moto's S3 over HTTP: one PUT
when it fits in a part, S3 multipart otherwise, its first part held so a header can still be
rewritten, and nothing left behind by an abort."""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import pytest

from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.object_writer import MIN_PART_BYTES, ObjectWriter
from tempaudio_service.storage.store import AudioStore

PART = MIN_PART_BYTES
KEY = "temp-audio/2026-12-06/object.wav"


class CountingStore(AudioStore):
    """The store, counting each object call it is asked for."""

    def __init__(self, base: AudioStore) -> None:
        super().__init__(base._s3, base._dynamodb, bucket=base.bucket, table=base.table)
        self.calls: list[str] = []

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        self.calls.append("put")
        super().put_audio(key, audio, content_type)

    def start_upload(self, key: str, content_type: str) -> str:
        self.calls.append("start")
        return super().start_upload(key, content_type)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        self.calls.append(f"part {number} {len(data)}")
        return super().upload_part(key, upload_id, number, data)

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.calls.append("complete")
        super().complete_upload(key, upload_id, parts)


class PartsFail(CountingStore):
    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        if number > 2:
            raise StorageUnavailable("S3 is unavailable (UploadPart failed); retry later")
        return super().upload_part(key, upload_id, number, data)


@pytest.fixture
def counting(store: AudioStore) -> CountingStore:
    return CountingStore(store)


def _object(s3: Any, bucket: str, key: str = KEY) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


def test_a_file_that_fits_in_a_part_is_one_put_with_its_header_rewritten(
    counting: CountingStore, settings: ServiceSettings, s3: Any
) -> None:
    writer = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    writer.write(b"HEAD" + b"\0" * 40)
    writer.write(b"samples" * 1000)
    end = writer.tell()
    writer.seek(4)
    writer.write(b"SIZE")
    writer.seek(0, io.SEEK_END)
    assert writer.tell() == end
    writer.complete()
    assert counting.calls == ["put"]
    assert _object(s3, settings.bucket) == b"HEADSIZE" + b"\0" * 36 + b"samples" * 1000
    tags = s3.get_object_tagging(Bucket=settings.bucket, Key=KEY)["TagSet"]
    assert tags  # tagged as the service's, as a single PUT is


def test_a_long_file_goes_out_in_parts_as_it_is_written(
    counting: CountingStore, settings: ServiceSettings, s3: Any
) -> None:
    data = os.urandom(PART * 4 + 12345)
    writer = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    for start in range(0, len(data), 100_000):
        writer.write(data[start : start + 100_000])
    # Parts 2 and 3 left while the file was being written; part 1, the head, is held.
    assert [call.split()[:2] for call in counting.calls] == [
        ["start"],
        ["part", "2"],
        ["part", "3"],
    ]
    assert all(int(call.split()[2]) >= PART for call in counting.calls[1:])
    writer.seek(8)
    writer.write(b"PATCHED!")  # a header rewritten at the end still lands in part 1
    writer.seek(0, io.SEEK_END)
    writer.complete()
    assert [call.split()[:2] for call in counting.calls[3:]] == [
        ["part", "4"],
        ["part", "1"],
        ["complete"],
    ]
    expected = data[:8] + b"PATCHED!" + data[16:]
    assert _object(s3, settings.bucket) == expected
    assert s3.get_object_tagging(Bucket=settings.bucket, Key=KEY)["TagSet"]
    assert _uploads(s3, settings.bucket) == []


def test_bytes_already_sent_cannot_be_rewritten(counting: CountingStore) -> None:
    writer = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    writer.write(os.urandom(PART * 2 + 10))
    writer.seek(PART + 1)  # in part 2, which has gone out
    with pytest.raises(ValueError, match="first part"):
        writer.write(b"x")
    with pytest.raises(ValueError, match="seek"):
        writer.seek(PART * 3)
    writer.abort()


def test_an_aborted_upload_leaves_no_parts_and_no_object(
    counting: CountingStore, settings: ServiceSettings, s3: Any
) -> None:
    writer = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    writer.write(os.urandom(PART * 2 + 10))
    assert writer.uploading
    assert len(_uploads(s3, settings.bucket)) == 1
    writer.abort()
    writer.abort()  # twice is harmless
    assert _uploads(s3, settings.bucket) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket)
    with pytest.raises(ValueError, match="aborted"):
        writer.write(b"more")


def test_a_part_that_fails_fails_the_write_and_the_abort_cleans_up(
    store: AudioStore, settings: ServiceSettings, s3: Any
) -> None:
    failing = PartsFail(store)
    writer = ObjectWriter(failing, KEY, "audio/wav", part_bytes=PART)
    writer.write(os.urandom(PART * 2))  # part 1 held, part 2 sent
    with pytest.raises(StorageUnavailable):
        writer.write(os.urandom(PART))  # part 3 fails
    writer.abort()
    assert _uploads(s3, settings.bucket) == []


def test_a_writer_moves_to_another_key_only_before_any_part_went_out(
    counting: CountingStore, settings: ServiceSettings, s3: Any
) -> None:
    writer = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    writer.write(b"short")
    writer.retarget(counting, "temp-audio/2026-12-07/moved.wav")
    writer.complete()
    assert _object(s3, settings.bucket, "temp-audio/2026-12-07/moved.wav") == b"short"
    long = ObjectWriter(counting, KEY, "audio/wav", part_bytes=PART)
    long.write(os.urandom(PART * 2 + 1))
    with pytest.raises(ValueError, match="already uploaded"):
        long.retarget(counting, "elsewhere.wav")
    long.abort()


def test_parts_are_at_least_s3s_minimum(counting: CountingStore) -> None:
    with pytest.raises(ValueError, match="at least"):
        ObjectWriter(counting, KEY, "audio/wav", part_bytes=1024)


class SlowStart(CountingStore):
    """S3 whose CreateMultipartUpload is held until the test lets it go."""

    def __init__(self, base: AudioStore) -> None:
        super().__init__(base)
        self.starting = threading.Event()
        self.go = threading.Event()

    def start_upload(self, key: str, content_type: str) -> str:
        self.starting.set()
        assert self.go.wait(30)
        return super().start_upload(key, content_type)


def test_an_abort_while_an_upload_starts_leaves_no_upload_behind(
    store: AudioStore, settings: ServiceSettings, s3: Any
) -> None:
    # A request given up at shutdown: its synthesis thread still writes while another
    # thread aborts. Whatever the order, no upload is left for the cleanup job.
    slow = SlowStart(store)
    writer = ObjectWriter(slow, KEY, "audio/wav", part_bytes=PART)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            writer.write(os.urandom(PART * 2))
            writer.write(os.urandom(PART))
        except (ValueError, StorageUnavailable) as error:
            errors.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    assert slow.starting.wait(30)
    aborting = threading.Thread(target=writer.abort)
    aborting.start()
    slow.go.set()
    thread.join(30)
    aborting.join(30)
    assert _uploads(s3, settings.bucket) == []
    assert errors  # the writer was refused once it was aborted
