"""Disk budget bookkeeping, pure."""

from __future__ import annotations

from hlstrio.streaming._disk import DiskBudget


def test_totals_and_oldest_order() -> None:
    disk = DiskBudget(limit=100)
    disk.add("a", 0, 40)
    disk.add("b", 0, 30)
    disk.add("a", 1, 40)
    assert disk.total == 110 and disk.over_limit
    assert list(disk.oldest()) == [("a", 0), ("b", 0), ("a", 1)]
    for owner, index in disk.oldest():  # removal while iterating is allowed
        disk.remove(owner, index)
        if not disk.over_limit:
            break
    assert disk.total == 70 and list(disk.oldest()) == [("b", 0), ("a", 1)]


def test_re_adding_replaces_size_and_moves_to_newest() -> None:
    disk = DiskBudget(limit=0)
    disk.add("a", 0, 10)
    disk.add("a", 1, 10)
    disk.add("a", 0, 25)
    assert disk.total == 35
    assert list(disk.oldest()) == [("a", 1), ("a", 0)]
    assert not disk.over_limit  # 0 = no limit
    disk.remove("a", 0)
    disk.remove("a", 0)  # idempotent
    assert disk.total == 10
