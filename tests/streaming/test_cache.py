"""The shared remux segment cache, pure."""

from __future__ import annotations

from hlstrio.streaming._cache import SegmentCache


def test_lru_within_a_byte_cap_across_sessions() -> None:
    cache = SegmentCache(max_bytes=10)
    cache.put("a", 0, b"1234")
    cache.put("b", 0, b"5678")
    assert cache.get("a", 0) == b"1234"  # now most recently used
    cache.put("a", 1, b"xyz")  # 11 bytes: the least recently used (b, 0) goes
    assert cache.get("b", 0) is None
    assert (cache.get("a", 0), cache.get("a", 1)) == (b"1234", b"xyz")
    assert cache.bytes == 7 and len(cache) == 2


def test_replace_drop_owner_and_oversized() -> None:
    cache = SegmentCache(max_bytes=10)
    cache.put("a", 0, b"12")
    cache.put("a", 0, b"1234")
    assert cache.bytes == 4
    cache.put("a", 1, b"x" * 11)  # bigger than the cache: not kept
    assert cache.get("a", 1) is None and cache.bytes == 4
    cache.put("b", 0, b"zz")
    cache.drop_owner("a")
    cache.drop_owner("a")
    assert cache.bytes == 2 and len(cache) == 1 and cache.get("b", 0) == b"zz"
