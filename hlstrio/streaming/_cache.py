"""Recently cut remux segments of all sessions, in memory, capped in bytes (pure bookkeeping).

One cache for the whole server, not one per session: its memory is bounded by a setting, not
by how many players happen to be connected (8 segments x 200 sessions was 3.3 GiB).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

Key = Hashable  # what identifies a segment within its owner: (rendition, index)


class SegmentCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[str, Key], bytes] = OrderedDict()
        self._owners: dict[str, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, owner: str, index: Key) -> bytes | None:
        key = (owner, index)
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, owner: str, index: Key, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return  # larger than the whole cache: serve it, do not keep it
        self._discard((owner, index))
        self._items[(owner, index)] = data
        self._owners.setdefault(owner, set()).add(index)
        self.bytes += len(data)
        while self.bytes > self.max_bytes:
            self._discard(next(iter(self._items)))

    def drop_owner(self, owner: str) -> None:
        for index in self._owners.pop(owner, set()):
            data = self._items.pop((owner, index), None)
            if data is not None:
                self.bytes -= len(data)

    def _discard(self, key: tuple[str, Key]) -> None:
        data = self._items.pop(key, None)
        if data is None:
            return
        self.bytes -= len(data)
        indexes = self._owners.get(key[0])
        if indexes is not None:
            indexes.discard(key[1])
            if not indexes:
                del self._owners[key[0]]
