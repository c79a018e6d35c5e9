"""Beyond one node: the session directory the nodes of a cluster share.

`LocalDirectory` (the default, no Redis) keeps a single node exactly as it was; with
`[cluster] redis_url`, `RedisDirectory` (imported only then: coredis is an optional
dependency) holds the records, caps and encoder leases of every node's sessions.
"""

from ._directory import (
    EVENT_DONE,
    EVENT_END,
    EVENT_LEASE,
    RETRY_AFTER_SECONDS,
    SYNC_ENDED,
    SYNC_LEASE_LOST,
    SYNC_LOST,
    SYNC_OK,
    SYNC_SERVED_ELSEWHERE,
    Adoption,
    Directory,
    DirectoryUnavailable,
    Ended,
    EventHandler,
    LocalDirectory,
    NodeBusy,
    Reservation,
    SyncEntry,
)
from ._records import SessionRecord, iso_time

__all__ = [
    "EVENT_DONE",
    "EVENT_END",
    "EVENT_LEASE",
    "RETRY_AFTER_SECONDS",
    "SYNC_ENDED",
    "SYNC_LEASE_LOST",
    "SYNC_LOST",
    "SYNC_OK",
    "SYNC_SERVED_ELSEWHERE",
    "Adoption",
    "Directory",
    "DirectoryUnavailable",
    "Ended",
    "EventHandler",
    "LocalDirectory",
    "NodeBusy",
    "Reservation",
    "SessionRecord",
    "SyncEntry",
    "iso_time",
]
