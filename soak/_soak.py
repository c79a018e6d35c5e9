"""Soak: thousands of randomized operations against a live server, then the invariants.

Operations: create (random mode/start), play (playlists, then the next segment), seek (a far
segment), delete, abandon (stop using a session: it must idle out / expire), kill (SIGKILL a
session's ffmpeg, found in /proc). Workers run concurrently, each with its own users and its
own seeded RNG, so each knows exactly what to expect of its own sessions.

Every few rounds all workers pause and the invariants are checked from outside, through the
public API, /proc and the temp dir only (the server's internals are free to change):
- every listed session answers its playlist (its task is alive),
- every session dir and every ffmpeg belongs to a listed session, at most one ffmpeg each,
- an abandoned session is gone (404, no dir, no ffmpeg) once its idle/TTL deadline passed,
- a session in use did not vanish.
At the end every session is deleted and the server stopped: nothing may be left.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from ._live import LiveServer, encoder_pids, process_usage, session_dirs


@dataclass(frozen=True)
class SoakConfig:
    ops: int = 3000  # in total, over all workers
    seed: int = 1
    workers: int = 3
    users_per_worker: int = 2
    rounds: int = 15  # invariant checks (all workers paused) between rounds
    idle_timeout: float = 1.5
    session_ttl: float = 3.0
    max_transcodes: int = 3
    max_sessions_per_user: int = 3

    @property
    def gone_after(self) -> float:
        """A session untouched this long may have ended (idle end or TTL, whichever applies)."""
        return min(self.idle_timeout, self.session_ttl) - 0.25

    @property
    def gone_by(self) -> float:
        """...and must have ended this long after its last use."""
        return max(self.idle_timeout, self.session_ttl) + 5.0

    def server_settings(self) -> dict[str, Any]:
        return {
            "segment_seconds": 2.0,
            "segment_wait": 15.0,
            "idle_timeout": self.idle_timeout,
            "session_ttl": self.session_ttl,
            "max_sessions": 100,
            "max_sessions_per_user": self.max_sessions_per_user,
            "max_transcodes": self.max_transcodes,
        }

    def users(self) -> dict[str, str]:
        rng = random.Random(self.seed)
        return {
            f"w{w}u{u}": f"soak-token-{w}-{u}-{rng.getrandbits(64):016x}"
            for w in range(self.workers)
            for u in range(self.users_per_worker)
        }


@dataclass
class Tracked:
    id: str
    user: str
    media_id: str
    mode: str
    master_url: str
    segments: int = 0  # known after the first media playlist
    position: int = 0
    touched: float = field(default_factory=time.monotonic)  # sent time of the last answered call
    killed: bool = False

    @property
    def tag(self) -> str:
        return self.id[:12]  # what session dir names and encoder command lines carry


@dataclass
class Report:
    ops: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    created: int = 0
    killed: int = 0
    checks: int = 0
    seconds: float = 0.0
    peak_encoders: int = 0
    peak_fds: int = 0
    server_cpu: float = 0.0
    exit_code: int | None = None

    def error(self, message: str) -> None:
        if len(self.errors) < 200:
            self.errors.append(message)

    def summary(self) -> str:
        lines = [
            f"soak: {sum(self.ops.values())} operations in {self.seconds:.1f} s "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.ops.items()))})",
            f"  sessions created {self.created}, encoders SIGKILLed {self.killed}, "
            f"invariant checks {self.checks}, peak encoders {self.peak_encoders}, "
            f"peak server fds {self.peak_fds}, server CPU {self.server_cpu:.1f} s, "
            f"exit code {self.exit_code}",
            "  answers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            f"  errors: {len(self.errors)}",
        ]
        lines += [f"    {e}" for e in self.errors[:30]]
        return "\n".join(lines)


class Worker:
    def __init__(
        self,
        index: int,
        server: LiveServer,
        tokens: dict[str, str],
        media: list[dict[str, Any]],
        config: SoakConfig,
        report: Report,
    ) -> None:
        self.server = server
        self.tokens = tokens
        self.media = media
        self.config = config
        self.report = report
        self.rng = random.Random(f"{config.seed}/{index}")
        self.client = httpx.AsyncClient(base_url=server.url, timeout=60)
        self.sessions: dict[tuple[str, str], Tracked] = {}
        self.abandoned: list[tuple[float, Tracked]] = []  # (must be gone by, session)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def _call(self, op: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.report.error(f"{op} {method} {url}: {type(exc).__name__}: {exc}")
            return None
        self.report.statuses[f"{op} {response.status_code}"] += 1
        if response.status_code >= 500 and response.status_code not in (502, 503):
            self.report.error(f"{op} {method} {url}: {response.status_code} {response.text[:200]}")
        return response

    def _may_be_gone(self, tracked: Tracked, sent: float) -> bool:
        return sent - tracked.touched > self.config.gone_after

    def _forget(self, tracked: Tracked) -> None:
        key = (tracked.user, tracked.media_id)
        if self.sessions.get(key) is tracked:
            del self.sessions[key]

    async def run(self, ops: int) -> None:
        choices = ["create", "play", "play", "play", "seek", "delete", "abandon", "kill"]
        weights = [4, 10, 10, 10, 5, 2, 2, 2]
        for _ in range(ops):
            op = self.rng.choices(choices, weights)[0]
            if op != "create" and not self.sessions:
                op = "create"
            self.report.ops[op] += 1
            await getattr(self, f"op_{op}")()

    def _pick(self, transcodes: bool = False) -> Tracked | None:
        pool = [t for t in self.sessions.values() if not transcodes or t.mode == "transcode"]
        return self.rng.choice(sorted(pool, key=lambda t: t.id)) if pool else None

    async def op_create(self) -> None:
        user = self.rng.choice(sorted(self.tokens))
        item = self.rng.choice(self.media)
        mode = self.rng.choice(["auto", "auto", "remux", "transcode"])
        body: dict[str, Any] = {"media_id": item["id"], "mode": mode}
        if self.rng.random() < 0.3:
            body["start"] = round(self.rng.uniform(0, item["duration"] * 0.9), 3)
        previous = self.sessions.get((user, item["id"]))
        sent = time.monotonic()
        response = await self._call(
            "create", "POST", "/api/v1/sessions", json=body, headers=self._auth(user)
        )
        if response is None:
            return
        status = response.status_code
        hevc = item["video"] is not None and item["video"]["codec"] == "hevc"
        if status == 429 or (status == 415 and mode == "remux" and hevc):
            return
        if status not in (200, 201):
            self.report.error(f"create {body}: {status} {response.text[:200]}")
            return
        data = response.json()
        if status == 201:
            self.report.created += 1
        tracked = Tracked(data["id"], user, item["id"], data["mode"], data["master_url"])
        tracked.touched = sent
        if previous is not None and previous.id != tracked.id:
            # Replaced (or it had expired): the old one must be gone for good.
            old = await self._call(
                "replaced", "GET", f"/api/v1/sessions/{previous.id}", headers=self._auth(user)
            )
            if old is not None and old.status_code != 404:
                self.report.error(
                    f"replaced session {previous.tag} still answers {old.status_code}"
                )
            self.abandoned.append((time.monotonic() + 10.0, previous))
        elif previous is not None:
            tracked = previous  # reused: same id, keep what we know of it
            tracked.touched = sent
        # An abandoned session asked for again with the same parameters is back in use.
        self.abandoned = [(due, t) for due, t in self.abandoned if t.id != tracked.id]
        self.sessions[(user, item["id"])] = tracked

    async def _get(self, op: str, tracked: Tracked, name: str) -> httpx.Response | None:
        sent = time.monotonic()
        url = tracked.master_url.replace("master.m3u8", name)
        response = await self._call(op, "GET", url)
        if response is None:
            return None
        if response.status_code == 200:
            tracked.touched = sent
            return response
        code = response.json().get("error", {}).get("code") if response.content else None
        if response.status_code == 404 and code == "session_not_found":
            if not self._may_be_gone(tracked, sent):
                self.report.error(f"{op}: session {tracked.tag} vanished while in use ({name})")
            self._forget(tracked)
        elif response.status_code in (502, 503) and tracked.killed:
            pass  # its encoder was killed: restarted, or failed with a clear error
        else:
            self.report.error(
                f"{op} {tracked.mode} {tracked.tag} {name}: {response.status_code} "
                f"{response.text[:200]}"
            )
        return None

    async def op_play(self) -> None:
        tracked = self._pick()
        if tracked is None:
            return
        if tracked.segments == 0 or self.rng.random() < 0.1:
            if await self._get("play", tracked, "master.m3u8") is None:
                return
            playlist = await self._get("play", tracked, "index.m3u8")
            if playlist is None:
                return
            tracked.segments = playlist.text.count("#EXTINF")
        await self._get("play", tracked, f"seg-{tracked.position}.ts")
        tracked.position = (tracked.position + 1) % max(tracked.segments, 1)

    async def op_seek(self) -> None:
        tracked = self._pick()
        if tracked is None or tracked.segments == 0:
            return await self.op_play()
        tracked.position = self.rng.randrange(tracked.segments)
        await self._get("seek", tracked, f"seg-{tracked.position}.ts")

    async def op_delete(self) -> None:
        tracked = self._pick()
        if tracked is None:
            return
        self._forget(tracked)
        sent = time.monotonic()
        response = await self._call(
            "delete", "DELETE", f"/api/v1/sessions/{tracked.id}", headers=self._auth(tracked.user)
        )
        if response is None:
            return
        if response.status_code == 204:
            # DELETE answers once the encoder is dead and the temp dir gone.
            dirs = [d for d in session_dirs(self.server.temp_dir) if tracked.tag in d]
            procs = [p for p, c in encoder_pids(self.server.temp_dir).items() if tracked.tag in c]
            if dirs or procs:
                self.report.error(f"delete {tracked.tag}: left dirs {dirs}, encoders {procs}")
        elif not (response.status_code == 404 and self._may_be_gone(tracked, sent)):
            self.report.error(f"delete {tracked.tag}: {response.status_code} {response.text[:200]}")

    async def delete_all(self) -> None:
        """Every session of this worker's users, as listed by the server, tracked or not."""
        self.sessions.clear()
        for user in self.tokens:
            listed = await self.client.get("/api/v1/sessions", headers=self._auth(user))
            for item in listed.json()["items"]:
                url = f"/api/v1/sessions/{item['id']}"
                response = await self._call("delete", "DELETE", url, headers=self._auth(user))
                if response is not None and response.status_code not in (204, 404):
                    self.report.error(f"final delete: {response.status_code}")

    async def op_abandon(self) -> None:
        tracked = self._pick()
        if tracked is None:
            return
        self._forget(tracked)
        self.abandoned.append((tracked.touched + self.config.gone_by, tracked))

    async def op_kill(self) -> None:
        tracked = self._pick(transcodes=True)
        if tracked is None:
            return
        for pid, cmdline in encoder_pids(self.server.temp_dir).items():
            if tracked.tag in cmdline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                tracked.killed = True
                self.report.killed += 1


async def check_invariants(
    server: LiveServer,
    workers: list[Worker],
    config: SoakConfig,
    report: Report,
    *,
    final: bool = False,
    timeout: float = 20.0,
) -> None:
    """All workers are paused. Retry until consistent (sessions ending on their own finish
    their cleanup meanwhile); report what is still wrong at the deadline."""
    report.checks += 1
    client = workers[0].client
    deadline = time.monotonic() + timeout
    while True:
        problems: list[str] = []
        listed: dict[str, dict[str, Any]] = {}
        for worker in workers:
            for user in worker.tokens:
                response = await client.get("/api/v1/sessions", headers=worker._auth(user))
                if response.status_code != 200:
                    problems.append(f"list {user}: {response.status_code}")
                    continue
                for item in response.json()["items"]:
                    listed[item["id"]] = item
        killed = {t.id for w in workers for t in w.sessions.values() if t.killed}
        killed |= {t.id for w in workers for _, t in w.abandoned if t.killed}
        for session_id, item in listed.items():
            answer = await client.get(item["master_url"])
            ok = (200, 502) if session_id in killed else (200,)
            if answer.status_code not in ok:
                problems.append(f"listed {session_id[:12]} answers {answer.status_code}")
        tags = {sid[:12] for sid, item in listed.items() if item["mode"] == "transcode"}
        dirs = session_dirs(server.temp_dir)
        problems += [f"dir of no session: {d}" for d in dirs if not any(t in d for t in tags)]
        encoders = encoder_pids(server.temp_dir)
        report.peak_encoders = max(report.peak_encoders, len(encoders))
        per_tag = Counter(t for cmd in encoders.values() for t in tags if t in cmd)
        problems += [
            f"encoder of no session: {p}"
            for p, c in encoders.items()
            if not any(t in c for t in tags)
        ]
        problems += [f"{n} encoders for {t}" for t, n in per_tag.items() if n > 1]
        if len(encoders) > config.max_transcodes:
            problems.append(f"{len(encoders)} encoders > max_transcodes {config.max_transcodes}")
        now = time.monotonic()
        for worker in workers:
            for due, tracked in worker.abandoned:
                if now >= due and tracked.id in listed:
                    problems.append(f"abandoned {tracked.tag} still listed {now - due:.1f} s late")
            for tracked in worker.sessions.values():
                if now - tracked.touched < config.gone_after - 0.5 and tracked.id not in listed:
                    problems.append(f"session {tracked.tag} in use but not listed")
        if final and (listed or dirs or encoders):
            problems.append(f"left at the end: {len(listed)} sessions, {dirs}, {list(encoders)}")
        if not problems:
            for worker in workers:
                worker.abandoned = [(d, t) for d, t in worker.abandoned if d > now]
            break
        if time.monotonic() > deadline:
            for problem in problems:
                report.error(f"invariant: {problem}")
            break
        await trio.sleep(0.1)
    _, _, fds = process_usage(server.pid)
    report.peak_fds = max(report.peak_fds, fds)


async def run_soak(server: LiveServer, config: SoakConfig) -> Report:
    """Drive `server` (started with config.server_settings() and config.users())."""
    report = Report()
    started = time.monotonic()
    cpu_before, _, _ = process_usage(server.pid)
    users = config.users()
    names = sorted(users)
    first = {"Authorization": f"Bearer {users[names[0]]}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        media = (await client.get("/api/v1/media", headers=first)).json()["items"]
    assert media, "the server lists no media"
    workers = []
    for w in range(config.workers):
        mine = {u: users[u] for u in names if u.startswith(f"w{w}u")}
        workers.append(Worker(w, server, mine, media, config, report))
    per_round = max(1, config.ops // (config.workers * config.rounds))
    try:
        done = 0
        while done < config.ops:
            async with trio.open_nursery() as nursery:
                for worker in workers:
                    n = min(per_round, max(0, (config.ops - done) // config.workers) or 1)
                    nursery.start_soon(worker.run, n)
            done = sum(report.ops.values())
            await check_invariants(server, workers, config, report)
        # Abandoned sessions must all expire; then delete the rest and expect nothing left.
        wait = max((due for w in workers for due, _ in w.abandoned), default=0.0)
        await trio.sleep(max(0.0, wait - time.monotonic()))
        await check_invariants(server, workers, config, report)
        for worker in workers:
            await worker.delete_all()
        await check_invariants(server, workers, config, report, final=True)
        cpu_after, _, _ = process_usage(server.pid)
        report.server_cpu = cpu_after - cpu_before
    finally:
        for worker in workers:
            await worker.aclose()
    report.exit_code = server.stop()
    if report.exit_code != 0:
        report.error(f"server exit code {report.exit_code}")
    left = session_dirs(server.temp_dir), list(encoder_pids(server.temp_dir))
    if any(left):
        report.error(f"left after the server stopped: dirs {left[0]}, encoders {left[1]}")
    report.seconds = time.monotonic() - started
    return report
