"""Load: simulated remux players at real playback pace against a live server.

Each player is its own user with its own connection: it creates a remux session, reads the
master and media playlists, then asks for one segment per segment duration from a random
starting point (wrapping at the end), for the whole run. Reported: errors (anything but a
200), segment latency percentiles, how many segments arrived later than their own duration
(a real player would have stalled only if that happened several times in a row), and the
server's CPU, memory and file descriptors.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from ._live import LiveServer, process_usage


@dataclass(frozen=True)
class LoadConfig:
    players: int = 200
    seconds: float = 60.0
    ramp: float = 6.0  # players start evenly over this long
    segment_seconds: float = 6.0
    seed: int = 1

    def server_settings(self) -> dict[str, Any]:
        return {
            "segment_seconds": self.segment_seconds,
            "max_sessions": max(100, self.players * 2),
            "max_sessions_per_user": 4,
            "idle_timeout": 60.0,
        }

    def users(self) -> dict[str, str]:
        rng = random.Random(self.seed)
        return {
            f"p{i:04d}": f"load-token-{i:04d}-{rng.getrandbits(64):016x}"
            for i in range(self.players)
        }


@dataclass
class LoadReport:
    config: LoadConfig
    segment_latency: list[float] = field(default_factory=list)
    playlist_latency: list[float] = field(default_factory=list)
    create_latency: list[float] = field(default_factory=list)
    late: int = 0  # segments that took longer than their own duration
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    server_rss: int = 0
    server_fds: int = 0  # at the end, after every player left
    server_fds_peak: int = 0
    server_rss_peak: int = 0
    concurrent_peak: int = 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < 50:
            self.errors.append(message)

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def summary(self) -> str:
        seg = self.segment_latency
        ms = 1000.0
        lines = [
            f"load: {self.config.players} remux players, {self.config.seconds:.0f} s at playback "
            f"pace ({self.config.segment_seconds:.0f} s segments), wall {self.wall:.1f} s, "
            f"peak concurrent players {self.concurrent_peak}",
            f"  segments {len(seg)} ({self.bytes / 1e6:.0f} MB, "
            f"{self.bytes * 8 / max(self.wall, 1e-9) / 1e6:.0f} Mbit/s), errors "
            f"{self.error_count}, later than their duration {self.late}",
            f"  segment latency ms: p50 {self.pct(seg, 50) * ms:.1f}, p90 "
            f"{self.pct(seg, 90) * ms:.1f}, p99 {self.pct(seg, 99) * ms:.1f}, max "
            f"{max(seg, default=float('nan')) * ms:.1f}",
            f"  playlist latency ms: p50 {self.pct(self.playlist_latency, 50) * ms:.1f}, p99 "
            f"{self.pct(self.playlist_latency, 99) * ms:.1f}; session create ms: p50 "
            f"{self.pct(self.create_latency, 50) * ms:.1f}, p99 "
            f"{self.pct(self.create_latency, 99) * ms:.1f}",
            f"  server CPU {self.server_cpu / max(self.wall, 1e-9) * 100:.0f}% of one core, "
            f"RSS peak {self.server_rss_peak / 2**20:.0f} MiB, fds peak {self.server_fds_peak} "
            f"(after all players left: {self.server_fds}); load client CPU "
            f"{self.client_cpu / max(self.wall, 1e-9) * 100:.0f}%",
        ]
        lines += [f"    {e}" for e in self.errors[:20]]
        return "\n".join(lines)


_EXTINF = re.compile(r"#EXTINF:([0-9.]+),\s*\n([^\n#]+)")


async def _player(
    index: int,
    server: LiveServer,
    token: str,
    media_id: str,
    start_at: float,
    end_at: float,
    report: LoadReport,
    active: list[int],
) -> None:
    rng = random.Random(index)
    await trio.sleep_until(start_at)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:

        async def get(url: str, latencies: list[float]) -> httpx.Response | None:
            sent = trio.current_time()
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                report.error(f"player {index} {url}: {type(exc).__name__}: {exc}")
                return None
            latencies.append(trio.current_time() - sent)
            if response.status_code != 200:
                report.error(f"player {index} {url}: {response.status_code} {response.text[:120]}")
                return None
            return response

        sent = trio.current_time()
        try:
            created = await client.post(
                "/api/v1/sessions", json={"media_id": media_id, "mode": "remux"}, headers=headers
            )
        except httpx.HTTPError as exc:
            report.error(f"player {index} create: {exc!r}")
            return
        report.create_latency.append(trio.current_time() - sent)
        if created.status_code != 201:
            report.error(f"player {index} create: {created.status_code} {created.text[:120]}")
            return
        master_url = created.json()["master_url"]
        if await get(master_url, report.playlist_latency) is None:
            return
        playlist = await get(master_url.replace("master", "index"), report.playlist_latency)
        if playlist is None:
            return
        segments = [(float(d), uri.strip()) for d, uri in _EXTINF.findall(playlist.text)]
        base = master_url.rsplit("/", 1)[0]
        position = rng.randrange(len(segments))
        due = trio.current_time()
        active[0] += 1
        report.concurrent_peak = max(report.concurrent_peak, active[0])
        try:
            while due < end_at:
                await trio.sleep_until(due)
                duration, uri = segments[position]
                response = await get(f"{base}/{uri}", report.segment_latency)
                if response is not None:
                    report.bytes += len(response.content)
                    if report.segment_latency[-1] > duration:
                        report.late += 1
                due += duration
                position = (position + 1) % len(segments)
        finally:
            active[0] -= 1
        try:
            gone = await client.delete(created.headers["location"], headers=headers)
            if gone.status_code != 204:
                report.error(f"player {index} delete: {gone.status_code}")
        except httpx.HTTPError as exc:
            report.error(f"player {index} delete: {exc!r}")


async def run_load(server: LiveServer, config: LoadConfig) -> LoadReport:
    report = LoadReport(config)
    users = config.users()
    first = next(iter(users.values()))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        items = (
            await client.get("/api/v1/media", headers={"Authorization": f"Bearer {first}"})
        ).json()["items"]
    media_id = items[0]["id"]
    cpu_before, _, _ = process_usage(server.pid)
    client_before = time.process_time()
    began = trio.current_time()
    start = began + 0.5
    end = start + config.ramp + config.seconds
    active = [0]

    async def sample() -> None:
        while True:
            _, rss, fds = process_usage(server.pid)
            report.server_rss_peak = max(report.server_rss_peak, rss)
            report.server_fds_peak = max(report.server_fds_peak, fds)
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        async with trio.open_nursery() as players:
            for i, token in enumerate(users.values()):
                at = start + config.ramp * i / max(1, config.players)
                players.start_soon(_player, i, server, token, media_id, at, end, report, active)
        nursery.cancel_scope.cancel()
    report.wall = trio.current_time() - began
    cpu_after, rss, fds = process_usage(server.pid)
    report.server_cpu = cpu_after - cpu_before
    report.client_cpu = time.process_time() - client_before
    report.server_rss, report.server_fds = rss, fds
    return report
