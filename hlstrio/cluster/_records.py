"""A session as the cluster's directory knows it: a record, pure data, no I/O.

The record is what any node needs to rebuild the session exactly as its creator did (user,
media id, the parameters as canonical JSON) plus what the API answers about it on a node that
does not hold it (the Session JSON as last reported). Redis stores it as one hash of strings;
`to_fields` and `from_fields` are the whole encoding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str  # the 192-bit capability id, as in the HLS URLs
    user: str
    media_id: str
    params: str  # canonical JSON of the session's parameters (equal params = equal text)
    transcodes: bool  # runs an encoder, under a lease, on one node at a time
    node: str  # the node that created it
    created: float  # unix seconds
    last_access: float  # unix seconds, as last reported by a node that served it
    state: str  # the session state as last reported ("starting", "running", "idle", ...)
    snapshot: str = "{}"  # JSON: the Session answer when it was made (its static part)
    live: str = "{}"  # JSON: its changing part as last reported (state, position, encoder, ...)
    seen: str = ""  # the node that last reported a request for it
    lease: str = ""  # the node running its encoder ("" none)
    epoch: int = 0  # grows each time the lease moves to another node

    @property
    def created_at(self) -> float:
        return self.created

    def to_fields(self) -> list[str]:
        """Field/value pairs for HSET (the lease fields start empty: adoption sets them)."""
        return [
            "id", self.id,
            "user", self.user,
            "media", self.media_id,
            "params", self.params,
            "tx", "1" if self.transcodes else "0",
            "node", self.node,
            "created", repr(self.created),
            "access", repr(self.last_access),
            "state", self.state,
            "snap", self.snapshot,
            "live", self.live,
            "seen", self.seen,
            "lease", self.lease,
            "lease_until", "0",
            "epoch", str(self.epoch),
        ]  # fmt: skip

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SessionRecord:
        """From HGETALL; raises KeyError/ValueError on a record this version cannot read."""
        return cls(
            id=fields["id"],
            user=fields["user"],
            media_id=fields["media"],
            params=fields["params"],
            transcodes=fields["tx"] == "1",
            node=fields["node"],
            created=float(fields["created"]),
            last_access=float(fields["access"]),
            state=fields.get("state", ""),
            snapshot=fields.get("snap", "{}"),
            live=fields.get("live", "{}"),
            seen=fields.get("seen", ""),
            lease=fields.get("lease", ""),
            epoch=int(fields.get("epoch", "0") or 0),
        )

    def to_json(self) -> dict[str, object]:
        """The Session answer of the API, from the record: the snapshot made at create with
        the live part and last access as last reported (at most a sync interval old)."""
        answer: dict[str, object] = json.loads(self.snapshot)
        answer.update(json.loads(self.live))
        answer["id"] = self.id
        answer["last_access"] = iso_time(self.last_access)
        return answer


def pairs(flat: Sequence[object]) -> dict[str, str]:
    """HGETALL's flat [field, value, ...] reply (what a Lua script returns) as a dict."""
    items = [str(v) for v in flat]
    return dict(zip(items[0::2], items[1::2], strict=True))


def iso_time(timestamp: float) -> str:
    """The API's time format (the same as Session.to_json's)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
