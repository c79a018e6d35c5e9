"""Bytes of transcode segments on disk across all sessions, oldest first (pure bookkeeping)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator


class DiskBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # bytes; 0 = no limit
        self.total = 0
        self._entries: OrderedDict[tuple[str, int], int] = OrderedDict()

    def add(self, owner: str, index: int, size: int) -> None:
        key = (owner, index)
        self.total -= self._entries.pop(key, 0)
        self._entries[key] = size
        self.total += size

    def remove(self, owner: str, index: int) -> None:
        self.total -= self._entries.pop((owner, index), 0)

    def oldest(self) -> Iterator[tuple[str, int]]:
        """Entries from the oldest written; safe to remove entries while iterating."""
        yield from list(self._entries)

    @property
    def over_limit(self) -> bool:
        return self.limit > 0 and self.total > self.limit
