"""A bounded, thread-safe index whose least recently used entries go first (pure).

The repeat cache, the caller and namespace caches and the quota book each keep at most so
many entries in memory; this is the one eviction they share.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruIndex(Generic[K, V]):
    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._index: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: K, keep: Callable[[V], bool] = lambda value: True) -> V | None:
        """The entry, now the most recently used; one that ``keep`` rejects is dropped."""
        with self._lock:
            value = self._index.get(key)
            if value is None:
                return None
            if not keep(value):
                del self._index[key]
                return None
            self._index.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Add or replace, as the most recently used; the least recently used go beyond
        the bound."""
        with self._lock:
            self._index[key] = value
            self._index.move_to_end(key)
            while len(self._index) > self._entries:
                self._index.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._index.pop(key, None)
