"""One audio object written as it is made: a file an encoder writes into, uploaded in parts
so that no request holds its whole audio.

The file's first part (``part_bytes``) stays in memory until the end, because the formats
that need their length up front (WAV's sizes, MP3's gapless header, FLAC's STREAMINFO)
rewrite a header within their first kilobytes once they are whole: a seek back lands there.
Bytes past the first part go out as S3 multipart parts 2, 3, … as soon as a part's worth
has gathered (on the thread that writes, the synthesis worker: back-pressure, not a queue);
``complete`` sends part 1 last and completes the upload. A file that fits in one part, as
nearly every one does, is sent by one PutObject at ``complete``: no multipart calls at all.

Memory per request: at most two parts (the held first part and the one gathering), whatever
the length of the audio. ``abort`` drops an upload that will not be completed; one left by a
killed process is aborted by the cleanup job. Not thread-safe: one thread writes, then one
completes or aborts.
"""

from __future__ import annotations

import io
import logging
import threading

from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)
# Every part but the last at least this size; S3 takes 5 MiB at the least.
PART_BYTES = 8 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024


class ObjectWriter:
    """A seekable, write-only file whose bytes become the object ``key`` of ``store``."""

    def __init__(
        self, store: AudioStore, key: str, content_type: str, *, part_bytes: int = PART_BYTES
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"parts are at least {MIN_PART_BYTES} bytes (S3's minimum)")
        self._store, self._key, self._content_type = store, key, content_type
        self._part_bytes = part_bytes
        self._head = bytearray()  # part 1, held: a header may still be rewritten
        self._gathering = bytearray()  # the next part
        self._size = 0
        self._position = 0
        self._upload_id: str | None = None
        self._parts: list[tuple[int, str]] = []
        self._finished = False
        # Between the writing thread and an abort from another one (a request given up at
        # shutdown while its synthesis thread still writes): no upload starts after it.
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return self._key

    @property
    def size(self) -> int:
        return self._size

    @property
    def uploading(self) -> bool:
        """Parts have gone out: the object's key and store are fixed."""
        return self._upload_id is not None

    def retarget(self, store: AudioStore, key: str) -> None:
        """Write to ``key`` of ``store`` instead (a policy changed while the audio was made);
        only before any part has gone out."""
        if self.uploading:
            raise ValueError("parts of the object are already uploaded")
        self._store, self._key = store, key

    # The file an encoder writes into.
    def write(self, data: bytes) -> int:
        if self._finished:
            raise ValueError("the object is already complete or aborted")
        if self._position < self._size:
            self._patch(bytes(data))
        else:
            self._append(bytes(data))
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if not 0 <= position <= self._size:
            raise ValueError(f"cannot seek to {position} in an object of {self._size} bytes")
        self._position = position
        return position

    def tell(self) -> int:
        return self._position

    def _patch(self, data: bytes) -> None:
        end = self._position + len(data)
        if end > len(self._head) or end > self._size:
            raise ValueError("only the object's first part can be rewritten, within its size")
        self._head[self._position : end] = data
        self._position = end

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        self._position = self._size
        if not self.uploading and not self._gathering:
            room = self._part_bytes - len(self._head)
            self._head += data[:room]
            data = data[room:]
        self._gathering += data
        if len(self._gathering) >= self._part_bytes:
            self._send_gathered()

    def _send_gathered(self) -> None:
        with self._lock:
            if self._finished:
                raise ValueError("the object is already complete or aborted")
            if self._upload_id is None:
                self._upload_id = self._store.start_upload(self._key, self._content_type)
            upload_id = self._upload_id
        number = len(self._parts) + 2  # part 1 is the held head
        etag = self._store.upload_part(self._key, upload_id, number, bytes(self._gathering))
        self._parts.append((number, etag))
        self._gathering.clear()

    # The end: one of these, once.
    def complete(self) -> None:
        """Make the object: one PutObject when it fits in a part, else the last parts and
        CompleteMultipartUpload. Raises ``StorageUnavailable``; ``abort`` then."""
        if self._finished:
            raise ValueError("the object is already complete or aborted")
        if self._upload_id is None:
            self._head += self._gathering
            self._gathering = bytearray()
            self._store.put_audio(self._key, bytes(self._head), self._content_type)
        else:
            if self._gathering:
                self._send_gathered()
            head = self._store.upload_part(self._key, self._upload_id, 1, bytes(self._head))
            self._store.complete_upload(self._key, self._upload_id, [(1, head), *self._parts])
        self._finished = True
        self._upload_id = None  # complete: nothing left to abort
        self._release()

    def abort(self) -> None:
        """Drop what was uploaded of an object that will not be completed (idempotent; a
        failure is logged: the cleanup job aborts the upload later)."""
        with self._lock:
            upload_id, self._upload_id = self._upload_id, None
            self._finished = True  # a write after this is refused, and no upload starts
        self._release()
        if upload_id is None:
            return
        try:
            self._store.abort_upload(self._key, upload_id)
        except StorageUnavailable as error:
            logger.warning("upload of %s left for the cleanup job: %s", self._key, error.message)

    def _release(self) -> None:
        self._head = bytearray()
        self._gathering = bytearray()
