"""The object and its item as one pair, each storage call within a time budget.

Every call runs on a bounded thread pool and is awaited for at most ``budget_seconds``,
botocore's retries included: a hung endpoint costs a request one budget, not three
attempts of connect and read timeouts. A call still running when its budget is spent goes
on in the background.

The two halves of a pair are written at once (the object's PUT or copy, and the item's
PutItem): a request waits for the slower of two round trips, not for their sum. Nobody
knows the audio's id before the answer, so an item briefly ahead of its object promises
nothing to anyone. If either half fails or runs out of its budget, the pair is undone once
both have settled (a late write may still land): the item is replaced by a tombstone (see
``AudioStore.revoke_item``), then the objects are deleted and an unfinished upload is
aborted. No item outlives its object; an object whose PUT an endpoint held past the undo has
no item, so no URL promises it, and the cleanup job removes it. The client has its ``503``
by then; shutdown waits for the undoing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.metrics import Metrics
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.storage.store import AudioStore, SourceMissing

logger = logging.getLogger(__name__)
T = TypeVar("T")
# How long undoing one half of a pair may take in the background (the call it waits for
# is bounded by botocore's own timeouts and attempts).
UNDO_GRACE_SECONDS = 120.0
UNDO_ATTEMPTS = 3


# The tombstone's key and expiry: date, audio_id, ttl, and the policy's ttl attribute.
ItemKey = tuple[str, str, int, str]
# Objects kept beside the audio (speech marks, captions): key, body, content type.
Companion = tuple[str, bytes, str]
# The writes of a pair that an undo waits for (the objects', and the item's).
Writes = tuple["asyncio.Future[Any]", ...]
# A companion's copy for a repeat: source key, key, content type.
CompanionCopy = tuple[str, str, str]


def operation_name(func: Callable[..., Any], dependency: str) -> str:
    """The label a failed call is counted under: the function's name (``get_item``,
    ``check_s3``, ``admit``), else the dependency's (``dynamodb``)."""
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() else dependency.lower()


class AudioRepository:
    """Storage calls of every policy's store, on one bounded pool with one budget."""

    def __init__(self, *, budget_seconds: float, threads: int, metrics: Metrics) -> None:
        self.budget_seconds = budget_seconds
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="storage")
        self._metrics = metrics
        self._undoing: set[asyncio.Task[None]] = set()
        self._tagged: dict[object, set[asyncio.Task[None]]] = {}

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    def _start(self, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, partial(func, *args))

    async def _within_budget(self, call: asyncio.Future[T], dependency: str, calls: int = 1) -> T:
        """``call`` within the budget of ``calls`` storage calls (writes of a pair with its
        companions are several PUTs in one)."""
        budget = self.budget_seconds * calls
        try:
            return await asyncio.wait_for(asyncio.shield(call), budget)
        except TimeoutError:
            raise StorageUnavailable(
                f"{dependency} did not answer within {budget:g} s; retry later"
            ) from None

    async def call(self, dependency: str, func: Callable[..., T], *args: Any) -> T:
        """One read or check within the budget (``dependency`` names it in the error); a
        failure is counted under the name of ``func`` (a method of the store: a bounded set)."""
        try:
            return await self._within_budget(self._start(func, *args), dependency)
        except StorageUnavailable:
            self._metrics.storage_failures.labels(operation_name(func, dependency)).inc()
            raise

    def later(
        self, dependency: str, func: Callable[..., Any], *args: Any, tag: object = None
    ) -> None:
        """A write that no answer waits for (a quota's audio charge), within the budget;
        shutdown waits for it (``settle``), a failure is logged. ``tag``: what
        ``written(tag)`` waits for."""

        async def run() -> None:
            try:
                await self.call(dependency, func, *args)
            except StorageUnavailable as error:
                logger.warning("a background write failed: %s", error.message)

        task = asyncio.get_running_loop().create_task(run())
        self._undoing.add(task)
        task.add_done_callback(self._undoing.discard)
        if tag is not None:
            tagged = self._tagged.setdefault(tag, set())
            tagged.add(task)
            task.add_done_callback(lambda done: self._untag(tag, done))

    def _untag(self, tag: object, task: asyncio.Task[None]) -> None:
        tagged = self._tagged.get(tag)
        if tagged is not None:
            tagged.discard(task)
            if not tagged:
                del self._tagged[tag]

    async def written(self, tag: object) -> None:
        """Once the background writes tagged ``tag`` so far have settled (usually at once:
        a caller's next request waits for the charge of its last one on this replica)."""
        tagged = self._tagged.get(tag)
        if tagged:
            await asyncio.wait(set(tagged))

    async def lookup(self, store: AudioStore, day: str, audio_id: str) -> AudioItem | None:
        """The item of ``day``/``audio_id``, or None (a tombstone reads as None too, and so
        does an item whose object is not in the store's bucket)."""
        record = await self.call("DynamoDB", store.get_item, day, audio_id)
        return None if record is None else AudioItem.from_record(record, store.bucket)

    async def read(self, store: AudioStore, key: str, max_bytes: int) -> bytes | None:
        """A small object kept beside the audio (speech marks), whole; None when it is gone."""
        return await self.call("S3", store.read_object, key, max_bytes)

    async def save(
        self,
        store: AudioStore,
        audio: ObjectWriter,
        item: AudioItem,
        companions: tuple[Companion, ...] = (),
        *,
        overlap: bool = True,
    ) -> None:
        """The pair: the companions and the audio (``audio.complete``: its last parts, or
        its only PUT) beside the item; whatever fails is undone in the background. Without
        ``overlap`` the item is written only once the objects exist: for audio whose id and
        URL are already out (a kept stream's headers), so a lookup never finds an item
        before its object."""

        def write() -> None:
            for companion in companions:
                store.put_audio(*companion)
            audio.complete()

        keys = [audio.key, *(companion[0] for companion in companions)]
        await self._pair(store, keys, write, "put_object", item, audio.abort, overlap=overlap)

    async def save_copy(
        self,
        store: AudioStore,
        source_key: str,
        item: AudioItem,
        companions: tuple[CompanionCopy, ...] = (),
    ) -> None:
        """A repeat's pair: server-side copies of ``source_key`` and its companions beside
        the item (at ``item.key``), undone like ``save``. ``SourceMissing``: a source is
        gone (what was written is undone)."""

        def write() -> None:
            for companion in companions:
                store.copy_audio(*companion)
            store.copy_audio(source_key, item.key, item.content_type)

        keys = [item.key, *(companion[1] for companion in companions)]
        await self._pair(store, keys, write, "copy_object", item)

    async def _pair(
        self,
        store: AudioStore,
        keys: list[str],
        write: Callable[[], None],
        operation: str,
        item: AudioItem,
        abort: Callable[[], None] | None = None,
        *,
        overlap: bool = True,
    ) -> None:
        """The objects (``write``) and the item at once (or, without ``overlap``, the item
        after the objects), within the budget of the objects' calls; undone when either
        fails, whatever the failure."""
        budget = self.budget_seconds * len(keys)
        objects = self._start(write)
        if not overlap:
            await asyncio.wait({objects}, timeout=budget)
            self._undo_if_failed(
                store,
                (objects,),
                keys,
                None,
                abort,
                lambda: self._failure(objects, operation, budget),
            )
        put_item = self._start(store.put_item, item.record())
        await asyncio.wait({objects, put_item}, timeout=budget)
        self._undo_if_failed(
            store,
            (objects, put_item),
            keys,
            self._revoked(put_item, item),
            abort,
            lambda: (
                self._failure(objects, operation, budget)
                or self._failure(put_item, "put_item", budget)
            ),
        )

    def _undo_if_failed(
        self,
        store: AudioStore,
        writes: Writes,
        keys: list[str],
        item_key: ItemKey | None,
        abort: Callable[[], None] | None,
        failed: Callable[[], Exception | None],
    ) -> None:
        """Raise what ``failed`` finds, once the undoing (after ``writes``) is scheduled;
        an unexpected error is undone too."""
        try:
            failure = failed()
        except BaseException:
            self._undo(store, writes, keys, item_key, abort)
            raise
        if failure is not None:
            self._undo(store, writes, keys, item_key, abort)
            raise failure

    @staticmethod
    def _revoked(put_item: asyncio.Future[None], item: AudioItem) -> ItemKey | None:
        """The item to revoke when its pair is undone: unless DynamoDB answered its first
        attempt with a plain no (``StorageUnavailable.refused``), it may have landed (or
        may still)."""
        error = put_item.exception() if put_item.done() else None
        if isinstance(error, StorageUnavailable) and error.refused:
            return None
        return (item.date, item.audio_id, item.ttl, item.ttl_attribute)

    def _failure(
        self, write: asyncio.Future[None], operation: str, budget: float
    ) -> Exception | None:
        """Why ``write`` failed (counted under ``operation``), or None: it succeeded.
        ``SourceMissing`` (a repeat's copy) is no storage failure; the caller synthesizes."""
        if not write.done():
            self._metrics.storage_failures.labels(operation).inc()
            dependency = "DynamoDB" if operation == "put_item" else "S3"
            return StorageUnavailable(
                f"{dependency} did not answer within {budget:g} s; retry later"
            )
        error = write.exception()
        if isinstance(error, StorageUnavailable):
            self._metrics.storage_failures.labels(operation).inc()
        if error is not None and not isinstance(error, StorageUnavailable | SourceMissing):
            raise error
        return error

    def _undo(
        self,
        store: AudioStore,
        writes: Writes,
        keys: list[str],
        item_key: ItemKey | None,
        abort: Callable[[], None] | None = None,
    ) -> None:
        undo = self._undo_after(store, writes, keys, item_key, abort)
        task = asyncio.get_running_loop().create_task(undo)
        self._undoing.add(task)
        task.add_done_callback(self._undoing.discard)

    async def _undo_after(
        self,
        store: AudioStore,
        writes: Writes,
        keys: list[str],
        item_key: ItemKey | None,
        abort: Callable[[], None] | None,
    ) -> None:
        """Once the failed writes have settled (they may have landed), revoke the item,
        then delete the objects and abort an unfinished upload. The tombstone is tried a
        few times: it is what keeps a late PutItem from leaving an item without its object."""
        failures = self._metrics.storage_failures
        await asyncio.wait(set(writes), timeout=UNDO_GRACE_SECONDS)
        for write in writes:  # what failed is known by now: taken, so never logged as lost
            if write.done() and not write.cancelled():
                write.exception()
        if abort is not None:
            await asyncio.wait({self._start(abort)}, timeout=UNDO_GRACE_SECONDS)
        if item_key is not None:
            for attempt in range(UNDO_ATTEMPTS):
                try:
                    await self._settled(self._start(store.revoke_item, *item_key))
                    break
                except (StorageUnavailable, TimeoutError):
                    failures.labels("revoke_item").inc()
                    await asyncio.sleep(self.budget_seconds * (attempt + 1))
            else:
                logger.error("item %s/%s may be left without its object", *item_key[:2])
        for key in keys:
            try:
                await self._settled(self._start(store.delete_audio, key))
            except (StorageUnavailable, TimeoutError):
                failures.labels("delete_object").inc()
                # Only an object whose item was written is certain to exist; either way the
                # cleanup job removes it once it is past the retention.
                level = logging.ERROR if item_key is not None else logging.WARNING
                logger.log(level, "object %s may be left without its item until cleanup", key)

    @staticmethod
    async def _settled(call: asyncio.Future[None]) -> None:
        await asyncio.wait_for(call, UNDO_GRACE_SECONDS)

    async def settle(self) -> None:
        """Wait until every failed write has been undone."""
        while self._undoing:
            await asyncio.wait(set(self._undoing))

    async def close(self) -> None:
        """Settle, then let the threads go (the app's lifespan ends with this)."""
        await self.settle()
        self._executor.shutdown(wait=False, cancel_futures=True)
