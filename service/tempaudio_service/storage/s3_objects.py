"""Audio objects in S3 (``AudioObjects``, store.py): put, server-side copy, delete, presign,
a bounded read of a small object (speech marks), every object tagged as the service's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tempaudio_api.storage import AUDIO_TAGGING
from tempaudio_service.core.errors import ObjectTooLarge
from tempaudio_service.storage.aws_clients import logger, unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Every object is tagged: the operator's lifecycle safety net expires tagged objects only.
AUDIO_TAG = AUDIO_TAGGING


class SourceMissing(Exception):
    """The object a copy starts from is gone (deleted by the cleanup, or by hand)."""


class S3Objects:
    """One bucket's audio."""

    dependency = "S3"

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=audio, ContentType=content_type, Tagging=AUDIO_TAG
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "PutObject", error) from error

    def start_upload(self, key: str, content_type: str) -> str:
        """A multipart upload of audio too long for one part; its upload id. Until it is
        completed no object exists (and none is tagged): an upload left behind is aborted
        by the cleanup job (``stale_uploads``)."""
        try:
            answer = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, Tagging=AUDIO_TAG
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "CreateMultipartUpload", error) from error
        return answer["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Part ``number`` of the upload; its ETag."""
        try:
            answer = self._s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "UploadPart", error) from error
        return answer["ETag"]

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """The object from its parts, (number, ETag) in any order."""
        try:
            self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "CompleteMultipartUpload", error) from error

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "AbortMultipartUpload", error) from error

    def copy_audio(self, source_key: str, key: str, content_type: str) -> None:
        """A server-side copy of this bucket's ``source_key`` (S3 moves no audio through us).

        Raises ``SourceMissing`` when the source is gone: nothing was written then.
        """
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                ContentType=content_type,
                MetadataDirective="REPLACE",
                Tagging=AUDIO_TAG,
                TaggingDirective="REPLACE",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise SourceMissing(source_key) from error
            raise unavailable("S3", "CopyObject", error) from error
        except BotoCoreError as error:
            raise unavailable("S3", "CopyObject", error) from error

    def delete_audio(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "DeleteObject", error) from error

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a job's folder: its request and parts)."""
        keys: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                keys.extend(entry["Key"] for entry in page.get("Contents", []))
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "ListObjectsV2", error) from error
        return keys

    def delete_keys(self, keys: list[str]) -> None:
        """Delete ``keys``, a thousand per call; a key S3 could not delete is an error."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                answer = self._s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as error:
                raise unavailable("S3", "DeleteObjects", error) from error
            if answer.get("Errors"):
                raise unavailable(
                    "S3", "DeleteObjects", RuntimeError(f"{len(answer['Errors'])} key(s) left")
                )

    def read_object(self, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes, or None when it is gone; only its first ``max_bytes`` + 1 are
        asked for (a Range), and more than ``max_bytes`` raises ``ObjectTooLarge``.

        An empty object (speech marks of text with no ``<mark>``) has no byte 0: S3 answers
        the Range with 416 InvalidRange, which is its empty body here, not an outage.
        """
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
            body = answer["Body"].read(max_bytes + 1)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return None
            if code in ("InvalidRange", "416"):
                return b""
            raise unavailable("S3", "GetObject", error) from error
        except BotoCoreError as error:
            raise unavailable("S3", "GetObject", error) from error
        if len(body) > max_bytes:
            logger.warning(
                "S3 object %s is over %d bytes: not written by this service", key, max_bytes
            )
            raise ObjectTooLarge(
                f"the stored object is larger than any this service writes (over {max_bytes}"
                " bytes): something else put it there; it is not read"
            )
        return body

    def presign(self, key: str, expires_in: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the bucket answers."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise unavailable("S3", "HeadBucket", error) from error

    def ensure(self) -> None:
        """Create the bucket when missing (the embedded local mode only)."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = self._s3.meta.region_name
            if region == "us-east-1":  # the one region that takes no location constraint
                self._s3.create_bucket(Bucket=self.bucket)
            else:
                self._s3.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
