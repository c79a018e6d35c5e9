"""SessionRegistry: pure bookkeeping of sessions, owners and caps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hlstrio.streaming import CapExceeded, SessionRegistry


@dataclass(frozen=True)
class Entry:
    id: str
    user: str
    media_id: str
    transcodes: bool = False


def make(
    max_sessions: int = 100, max_per_user: int = 4, max_transcodes: int = 4
) -> SessionRegistry[Entry]:
    return SessionRegistry(
        max_sessions=max_sessions, max_per_user=max_per_user, max_transcodes=max_transcodes
    )


def assert_consistent(reg: SessionRegistry[Entry]) -> None:
    """Every derived counter agrees with the sessions actually registered."""
    entries = list(reg)
    assert len(reg) == len(entries) == len({e.id for e in entries})
    assert reg.transcodes == sum(e.transcodes for e in entries)
    users = {e.user for e in entries}
    for user in users:
        mine = [e for e in entries if e.user == user]
        assert reg.count_for(user) == len(mine)
        assert sorted(e.id for e in reg.owned_by(user)) == sorted(e.id for e in mine)
    for e in entries:
        assert reg.lookup(e.id) is e
        assert reg.lookup_owned(e.id, e.user) is e
        assert reg.find(e.user, e.media_id) is e


# --- add / lookup ------------------------------------------------------------------------------


def test_empty_registry() -> None:
    reg = make()
    assert len(reg) == 0
    assert list(reg) == []
    assert reg.transcodes == 0
    assert reg.lookup("nope") is None
    assert reg.lookup_owned("nope", "alice") is None
    assert reg.find("alice", "m1") is None
    assert reg.count_for("alice") == 0
    assert reg.owned_by("alice") == []
    assert reg.remove("nope") is None


def test_add_then_lookup_returns_the_same_object() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1")
    reg.add(a)
    assert len(reg) == 1
    assert reg.lookup("s1") is a
    assert reg.lookup("s2") is None
    assert reg.find("alice", "m1") is a
    assert reg.find("alice", "m2") is None
    assert reg.find("bob", "m1") is None
    assert reg.count_for("alice") == 1
    assert reg.count_for("bob") == 0
    assert list(reg) == [a]
    assert_consistent(reg)


def test_lookup_owned_hides_other_users_sessions() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1")
    reg.add(a)
    assert reg.lookup_owned("s1", "alice") is a
    assert reg.lookup_owned("s1", "bob") is None
    # The same answer as for a session that does not exist at all.
    assert reg.lookup_owned("s1", "bob") == reg.lookup_owned("missing", "bob")
    assert reg.lookup_owned("missing", "alice") is None
    # Case matters: user names are exact.
    assert reg.lookup_owned("s1", "Alice") is None


def test_same_media_for_two_users_are_separate_keys() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1")
    b = Entry("s2", "bob", "m1")
    reg.add(a)
    reg.add(b)
    assert reg.find("alice", "m1") is a
    assert reg.find("bob", "m1") is b
    reg.remove("s1")
    assert reg.find("alice", "m1") is None
    assert reg.find("bob", "m1") is b
    assert_consistent(reg)


def test_duplicate_id_is_rejected_and_leaves_state_unchanged() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1", transcodes=True)
    reg.add(a)
    with pytest.raises(KeyError, match="duplicate session id s1"):
        reg.add(Entry("s1", "bob", "m2", transcodes=True))
    assert len(reg) == 1
    assert reg.lookup("s1") is a
    assert reg.count_for("bob") == 0
    assert reg.find("bob", "m2") is None
    assert reg.transcodes == 1
    assert_consistent(reg)


def test_second_session_for_same_user_and_media_is_rejected() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1")
    reg.add(a)
    with pytest.raises(KeyError, match="already has session s1"):
        reg.add(Entry("s2", "alice", "m1"))
    assert len(reg) == 1
    assert reg.lookup("s2") is None
    assert reg.find("alice", "m1") is a
    assert reg.count_for("alice") == 1
    assert_consistent(reg)


def test_iteration_is_a_snapshot() -> None:
    reg = make(max_per_user=10)
    for i in range(5):
        reg.add(Entry(f"s{i}", "alice", f"m{i}"))
    # Removing while iterating must not raise "dictionary changed size during iteration".
    for entry in reg:
        reg.remove(entry.id)
    assert len(reg) == 0
    assert reg.count_for("alice") == 0


# --- remove ------------------------------------------------------------------------------------


def test_remove_returns_the_session_then_none() -> None:
    reg = make()
    a = Entry("s1", "alice", "m1", transcodes=True)
    reg.add(a)
    assert reg.remove("s1") is a
    assert reg.remove("s1") is None
    assert reg.remove("s1") is None
    assert len(reg) == 0
    assert reg.transcodes == 0
    assert reg.count_for("alice") == 0
    assert reg.find("alice", "m1") is None
    assert reg.lookup("s1") is None
    assert reg.owned_by("alice") == []


def test_remove_twice_does_not_drive_counters_negative() -> None:
    reg = make()
    reg.add(Entry("s1", "alice", "m1", transcodes=True))
    reg.add(Entry("s2", "alice", "m2", transcodes=True))
    reg.remove("s1")
    reg.remove("s1")
    assert reg.count_for("alice") == 1
    assert reg.transcodes == 1
    reg.remove("s2")
    reg.remove("s2")
    assert reg.count_for("alice") == 0
    assert reg.transcodes == 0
    assert len(reg) == 0


def test_removing_a_replaced_session_keeps_the_new_sessions_key() -> None:
    # The manager's replace flow: remove old, add new for the same (user, media); later the
    # old session's own cleanup calls remove(old.id) again.
    reg = make()
    old = Entry("old", "alice", "m1", transcodes=True)
    new = Entry("new", "alice", "m1", transcodes=False)
    reg.add(old)
    reg.remove(old.id)
    reg.add(new)
    assert reg.remove(old.id) is None
    assert reg.find("alice", "m1") is new
    assert reg.lookup("new") is new
    assert reg.count_for("alice") == 1
    assert reg.transcodes == 0
    assert_consistent(reg)
    # And the key goes when the new one is removed.
    assert reg.remove("new") is new
    assert reg.find("alice", "m1") is None


def test_user_disappears_from_counts_after_last_removal() -> None:
    reg = make()
    reg.add(Entry("s1", "alice", "m1"))
    reg.remove("s1")
    # No zero-count residue that would e.g. show up when iterating counters.
    assert reg.count_for("alice") == 0
    assert "alice" not in reg._per_user
    # count_for on an unknown user must not create an entry either.
    assert reg.count_for("ghost") == 0
    assert "ghost" not in reg._per_user


# --- counts ------------------------------------------------------------------------------------


def test_per_user_and_transcode_counts() -> None:
    reg = make(max_sessions=10, max_per_user=10, max_transcodes=10)
    reg.add(Entry("a1", "alice", "m1", transcodes=True))
    reg.add(Entry("a2", "alice", "m2", transcodes=False))
    reg.add(Entry("a3", "alice", "m3", transcodes=True))
    reg.add(Entry("b1", "bob", "m1", transcodes=False))
    assert reg.count_for("alice") == 3
    assert reg.count_for("bob") == 1
    assert reg.count_for("carol") == 0
    assert reg.transcodes == 2
    assert len(reg) == 4
    assert sorted(e.id for e in reg.owned_by("alice")) == ["a1", "a2", "a3"]
    assert [e.id for e in reg.owned_by("bob")] == ["b1"]
    assert reg.owned_by("carol") == []
    reg.remove("a1")
    assert reg.count_for("alice") == 2
    assert reg.transcodes == 1
    reg.remove("a2")
    assert reg.transcodes == 1
    reg.remove("a3")
    assert reg.transcodes == 0
    assert reg.count_for("alice") == 0
    assert_consistent(reg)


def test_owned_by_returns_a_fresh_list() -> None:
    reg = make()
    reg.add(Entry("s1", "alice", "m1"))
    listing = reg.owned_by("alice")
    listing.clear()
    assert [e.id for e in reg.owned_by("alice")] == ["s1"]


# --- caps --------------------------------------------------------------------------------------


def test_check_caps_passes_below_every_cap() -> None:
    reg = make(max_sessions=3, max_per_user=2, max_transcodes=1)
    reg.check_caps("alice", transcodes=True)
    reg.add(Entry("s1", "alice", "m1"))
    reg.check_caps("alice", transcodes=True)


def test_max_sessions_cap() -> None:
    reg = make(max_sessions=2, max_per_user=10, max_transcodes=10)
    reg.add(Entry("s1", "alice", "m1"))
    reg.add(Entry("s2", "bob", "m1"))
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("carol", transcodes=False)
    assert info.value.cap == "max_sessions"
    assert info.value.limit == 2
    with pytest.raises(CapExceeded) as info:
        reg.add(Entry("s3", "carol", "m1"))
    assert info.value.cap == "max_sessions"
    assert len(reg) == 2
    assert reg.lookup("s3") is None
    assert reg.count_for("carol") == 0
    # Freeing a slot makes room again.
    reg.remove("s1")
    reg.check_caps("carol", transcodes=False)
    reg.add(Entry("s3", "carol", "m1"))
    assert_consistent(reg)


def test_max_sessions_per_user_cap_is_per_user() -> None:
    reg = make(max_sessions=10, max_per_user=2, max_transcodes=10)
    reg.add(Entry("a1", "alice", "m1"))
    reg.add(Entry("a2", "alice", "m2"))
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=False)
    assert info.value.cap == "max_sessions_per_user"
    assert info.value.limit == 2
    with pytest.raises(CapExceeded):
        reg.add(Entry("a3", "alice", "m3"))
    assert reg.count_for("alice") == 2
    # Bob is not affected by alice's count.
    reg.check_caps("bob", transcodes=False)
    reg.add(Entry("b1", "bob", "m1"))
    reg.add(Entry("b2", "bob", "m2"))
    assert reg.count_for("bob") == 2
    assert_consistent(reg)


def test_max_transcodes_cap_only_applies_to_transcodes() -> None:
    reg = make(max_sessions=10, max_per_user=10, max_transcodes=1)
    reg.add(Entry("t1", "alice", "m1", transcodes=True))
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("bob", transcodes=True)
    assert info.value.cap == "max_transcodes"
    assert info.value.limit == 1
    with pytest.raises(CapExceeded):
        reg.add(Entry("t2", "bob", "m1", transcodes=True))
    # A remux session does not need an encoder slot.
    reg.check_caps("bob", transcodes=False)
    reg.add(Entry("r1", "bob", "m1", transcodes=False))
    assert reg.transcodes == 1
    assert len(reg) == 2
    assert_consistent(reg)


def test_zero_caps_refuse_everything() -> None:
    reg = make(max_sessions=0, max_per_user=0, max_transcodes=0)
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=False)
    assert info.value.cap == "max_sessions"
    reg = make(max_sessions=5, max_per_user=0, max_transcodes=0)
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=False)
    assert info.value.cap == "max_sessions_per_user"
    reg = make(max_sessions=5, max_per_user=5, max_transcodes=0)
    reg.check_caps("alice", transcodes=False)
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=True)
    assert info.value.cap == "max_transcodes"


def test_cap_order_global_first_then_user_then_transcodes() -> None:
    reg = make(max_sessions=1, max_per_user=1, max_transcodes=1)
    reg.add(Entry("s1", "alice", "m1", transcodes=True))
    # All three are full for alice; the global one is reported.
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=True)
    assert info.value.cap == "max_sessions"
    reg = make(max_sessions=5, max_per_user=1, max_transcodes=1)
    reg.add(Entry("s1", "alice", "m1", transcodes=True))
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=True)
    assert info.value.cap == "max_sessions_per_user"


def test_replacing_frees_the_global_slot() -> None:
    reg = make(max_sessions=1, max_per_user=10, max_transcodes=10)
    old = Entry("s1", "alice", "m1")
    reg.add(old)
    with pytest.raises(CapExceeded):
        reg.check_caps("alice", transcodes=False)
    reg.check_caps("alice", transcodes=False, replacing=old)
    # check_caps never changes anything.
    assert reg.lookup("s1") is old
    assert len(reg) == 1


def test_replacing_frees_the_user_slot_only_for_its_owner() -> None:
    reg = make(max_sessions=10, max_per_user=1, max_transcodes=10)
    alices = Entry("a1", "alice", "m1")
    reg.add(alices)
    reg.add(Entry("b1", "bob", "m1"))
    reg.check_caps("alice", transcodes=False, replacing=alices)
    # Replacing someone else's session does not give bob one more of his own.
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("bob", transcodes=False, replacing=alices)
    assert info.value.cap == "max_sessions_per_user"


def test_replacing_frees_the_encoder_slot_only_if_it_transcodes() -> None:
    reg = make(max_sessions=10, max_per_user=10, max_transcodes=1)
    transcode = Entry("t1", "alice", "m1", transcodes=True)
    remux = Entry("r1", "alice", "m2", transcodes=False)
    reg.add(transcode)
    reg.add(remux)
    reg.check_caps("alice", transcodes=True, replacing=transcode)
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("alice", transcodes=True, replacing=remux)
    assert info.value.cap == "max_transcodes"
    # Replacing a transcode by a remux is always fine with respect to encoders.
    reg.check_caps("alice", transcodes=False, replacing=remux)


def test_replace_flow_at_every_cap() -> None:
    # One slot of everything: the manager's replace (check with replacing=, remove, add) works.
    reg = make(max_sessions=1, max_per_user=1, max_transcodes=1)
    old = Entry("old", "alice", "m1", transcodes=True)
    reg.add(old)
    new = Entry("new", "alice", "m1", transcodes=True)
    reg.check_caps("alice", transcodes=True, replacing=old)
    reg.remove(old.id)
    reg.add(new)
    assert reg.find("alice", "m1") is new
    assert reg.transcodes == 1
    assert reg.count_for("alice") == 1
    assert_consistent(reg)


def test_cap_exceeded_fields_and_message() -> None:
    exc = CapExceeded("max_transcodes", 4)
    assert exc.cap == "max_transcodes"
    assert exc.limit == 4
    assert str(exc) == "max_transcodes reached (4)"
    assert isinstance(exc, Exception)


def test_cap_exceeded_message_from_registry() -> None:
    reg = make(max_sessions=0)
    with pytest.raises(CapExceeded, match=r"^max_sessions reached \(0\)$"):
        reg.check_caps("alice", transcodes=False)


def test_cap_exceeded_accepts_notes() -> None:
    # Python 3.11+ code (trio, hypothesis, pytest, ExceptionGroup handling) attaches notes to
    # exceptions in flight; a frozen slots dataclass refuses the attribute.
    exc = CapExceeded("max_sessions", 1)
    exc.add_note("while creating a session")
    assert exc.__notes__ == ["while creating a session"]


def test_cap_exceeded_propagates_through_a_contextmanager() -> None:
    # contextlib's __exit__ assigns exc.__traceback__ in Python; the registry's error must
    # come out as itself (-> 429), not as a TypeError (-> 500).
    @contextlib.contextmanager
    def around() -> Iterator[None]:
        yield

    reg = make(max_sessions=0)
    with pytest.raises(CapExceeded) as info, around():
        reg.check_caps("alice", transcodes=False)
    assert info.value.cap == "max_sessions"


# --- scale -------------------------------------------------------------------------------------


def test_ten_thousand_sessions() -> None:
    n = 10_000
    users = [f"user{u}" for u in range(50)]
    reg = make(max_sessions=n, max_per_user=n, max_transcodes=n)
    entries = [
        Entry(f"s{i:05d}", users[i % len(users)], f"m{i // len(users)}", transcodes=i % 3 == 0)
        for i in range(n)
    ]
    for e in entries:
        reg.add(e)
    assert len(reg) == n
    assert reg.transcodes == sum(1 for i in range(n) if i % 3 == 0)
    for u in users:
        assert reg.count_for(u) == n // len(users)
    # The global cap is now full.
    with pytest.raises(CapExceeded) as info:
        reg.check_caps("newcomer", transcodes=False)
    assert info.value.cap == "max_sessions"
    for e in entries:
        assert reg.lookup(e.id) is e
        assert reg.find(e.user, e.media_id) is e
        assert reg.lookup_owned(e.id, e.user) is e
        assert reg.lookup_owned(e.id, "intruder") is None
    assert len(reg.owned_by(users[0])) == n // len(users)
    # Remove in an order different from insertion, each twice.
    for e in reversed(entries[::2]):
        assert reg.remove(e.id) is e
        assert reg.remove(e.id) is None
    assert len(reg) == n // 2
    assert_consistent(reg)
    for e in entries[1::2]:
        assert reg.remove(e.id) is e
    assert len(reg) == 0
    assert list(reg) == []
    assert reg.transcodes == 0
    assert all(reg.count_for(u) == 0 for u in users)
    assert all(reg.find(e.user, e.media_id) is None for e in entries)
    assert reg._by_id == {}
    assert reg._by_key == {}
    assert not reg._per_user
