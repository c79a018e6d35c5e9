"""Load: simulated remux players at real playback pace against a live server.

Each player is its own user with its own connection: it creates a remux session, reads the
master and media playlists, then asks for one segment per segment duration from a random
starting point (wrapping at the end), for the whole run. Reported: errors (anything but a
200), segment latency percentiles, how many segments arrived later than their own duration
(a real player would have stalled only if that happened several times in a row), and the
server's CPU, memory and file descriptors.
"""

from __future__ import annotations

import os
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
    machine_busy: float = 0.0  # CPU seconds used by every process on the machine meanwhile
    # The server's own view (its /metrics histogram): request in to last byte handed to the
    # kernel, as "at most" bucket bounds; None when metrics are off.
    server_p50_le: float | None = None
    server_p99_le: float | None = None
    wait_p50_le: float | None = None  # of that, waiting for the segment (the remux cut)
    wait_p99_le: float | None = None

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
            # Others sharing the machine distort the figures: say how much they used.
            f"  machine: {os.cpu_count()} cores, busy {self.machine_busy / self.wall * 100:.0f}% "
            f"of one core in all, of which neither server nor load client "
            f"{(self.machine_busy - self.server_cpu - self.client_cpu) / self.wall * 100:.0f}%",
        ]
        if self.server_p50_le is not None and self.server_p99_le is not None:
            lines.append(
                f"  server-side segment time (its /metrics histogram): p50 <= "
                f"{self.server_p50_le * ms:.1f} ms, p99 <= {self.server_p99_le * ms:.1f} ms"
            )
        if self.wait_p50_le is not None and self.wait_p99_le is not None:
            lines.append(
                f"  of which waiting for the segment (cut): p50 <= {self.wait_p50_le * ms:.1f} "
                f"ms, p99 <= {self.wait_p99_le * ms:.1f} ms"
            )
        lines += [f"    {e}" for e in self.errors[:20]]
        return "\n".join(lines)


class _Conn:
    """One keep-alive HTTP/1.1 connection for segment GETs that counts the body and drops it.

    A thin client keeps the measuring cheap: httpx spent a third of a core reading 500 Mbit/s.
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.stream: trio.SocketStream | None = None
        self.buffer = b""

    async def get(self, path: str) -> tuple[int, int, bytes]:
        """(status, body length, first bytes of the body)."""
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(self.host, self.port)
            self.buffer = b""
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        await self.stream.send_all(request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += await self._receive(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
        length = int(fields.get("content-length", "0"))
        first, got = rest[:length], min(len(rest), length)
        while got < length:
            data = await self._receive(min(1 << 20, length - got))
            got += len(data)
            if len(first) < 188:
                first += data[:188]
        self.buffer = rest[length:]
        if fields.get("connection", "").strip() == "close":
            await self.aclose()
        return status, length, first[:188]

    async def _receive(self, size: int) -> bytes:
        assert self.stream is not None
        data = await self.stream.receive_some(size)
        if not data:
            raise ConnectionError("the server closed the connection")
        return bytes(data)

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None


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
        conn = _Conn(server.url)
        try:
            while due < end_at:
                await trio.sleep_until(due)
                duration, uri = segments[position]
                sent = trio.current_time()
                try:
                    status, length, first = await conn.get(f"{base}/{uri}")
                except (OSError, ConnectionError, trio.BrokenResourceError) as exc:
                    report.error(f"player {index} {uri}: {exc!r}")
                    await conn.aclose()
                else:
                    latency = trio.current_time() - sent
                    report.segment_latency.append(latency)
                    report.bytes += length
                    report.late += latency > duration
                    if status != 200 or not first.startswith(b"G"):  # 0x47: MPEG-TS sync byte
                        report.error(f"player {index} {uri}: {status} {first[:80]!r}")
                due += duration
                position = (position + 1) % len(segments)
        finally:
            active[0] -= 1
            await conn.aclose()
        try:
            gone = await client.delete(created.headers["location"], headers=headers)
            if gone.status_code != 204:
                report.error(f"player {index} delete: {gone.status_code}")
        except httpx.HTTPError as exc:
            report.error(f"player {index} delete: {exc!r}")


def _machine_busy() -> float:
    """CPU seconds all processes have used since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _histogram_quantiles(text: str, name: str, label: str) -> tuple[float | None, float | None]:
    """p50 and p99 upper bounds from a Prometheus histogram's cumulative buckets."""
    buckets = []
    pattern = re.compile(name + r'_bucket\{[^}]*le="([^"]+)"[^}]*\} ([0-9.e+]+)$')
    for line in text.splitlines():
        match = pattern.match(line)
        if match and label in line:
            buckets.append((float(match.group(1)), float(match.group(2))))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None, None
    total = buckets[-1][1]

    def bound(q: float) -> float:
        return next(le for le, count in buckets if count >= q * total)

    return bound(0.5), bound(0.99)


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
    busy_before = _machine_busy()
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
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        scrape = await client.get("/metrics", headers={"Authorization": f"Bearer {first}"})
    if scrape.status_code == 200:
        text = scrape.text
        duration = ("hlstrio_http_request_duration_seconds", 'route="segment"')
        wait = ("hlstrio_segment_wait_seconds", 'mode="remux"')
        report.server_p50_le, report.server_p99_le = _histogram_quantiles(text, *duration)
        report.wait_p50_le, report.wait_p99_le = _histogram_quantiles(text, *wait)
    cpu_after, rss, fds = process_usage(server.pid)
    report.server_cpu = cpu_after - cpu_before
    report.client_cpu = time.process_time() - client_before
    report.machine_busy = _machine_busy() - busy_before
    report.server_rss, report.server_fds = rss, fds
    return report
