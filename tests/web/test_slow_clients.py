"""Slow and vanishing clients hold no lock, slow no one down and leave nothing behind.

A slow reader is a raw trio socket with a tiny receive buffer that reads a few bytes at a time.
Whether the server is really stuck in its send is read from the kernel (/proc/net/tcp): bytes
the client got + bytes queued at both ends < the body means the server has not handed the whole
body to the kernel yet, i.e. its send is blocked on this client. Every wait is a condition with
a deadline; nothing asserts on speed.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import trio

from hlstrio.streaming import Session

from ..support import Harness, fake_ffmpeg, session_processes, wait_until
from ._conns import task_count, tcp_row
from .conftest import StartServer


class SlowClient:
    """An HTTP/1.1 client on a raw socket that reads as little as it is told to."""

    def __init__(self, sock: trio.socket.SocketType, server_port: int) -> None:
        self.sock = sock
        self.server_port = server_port
        self.port = sock.getsockname()[1]
        self.received = b""

    @classmethod
    async def connect(cls, port: int) -> SlowClient:
        sock = trio.socket.socket()
        # A tiny window: the server can push only a few KiB before its send blocks.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", port))
        return cls(sock, port)

    async def request(self, path: str) -> None:
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        await self.sock.send(head.encode())

    async def read(self, size: int) -> int:
        data = await self.sock.recv(size)
        self.received += data
        return len(data)

    def in_flight(self) -> int:
        """Bytes of the response already written by the server: got + queued in the kernel."""
        server_side = tcp_row(self.server_port, self.port)
        client_side = tcp_row(self.port, self.server_port)
        tx = server_side[1] if server_side else 0
        rx = client_side[2] if client_side else 0
        return len(self.received) + tx + rx

    def body(self) -> bytes:
        head, _, body = self.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        return body

    def abort(self) -> None:
        """Vanish with a RST, like a player killed mid-download."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


async def _session_with_segment(server: Harness) -> tuple[dict[str, Any], str, bytes]:
    session = await server.create("h264_aac.mp4")
    url = session["master_url"].replace("master.m3u8", "seg-1.ts")
    reference = await server.client.get(url)  # cut once: the slow request is a pure send
    assert reference.status_code == 200
    return session, url, reference.content


async def test_slow_reader_slows_no_one(start_server: StartServer) -> None:
    server = await start_server()
    session, url, expected = await _session_with_segment(server)
    other = await server.create("two_audio.mp4")

    slow = await SlowClient.connect(int(server.url.rsplit(":", 1)[1]))
    await slow.request(url)
    await slow.read(256)
    # The server started answering and is stuck in its send: the body is not all out.
    await wait_until(lambda: 0 < slow.in_flight() < len(expected), timeout=10)

    # Meanwhile another player gets 30 answers (segments, playlists) over its own connection.
    done = 0
    with trio.fail_after(20):
        for i in range(10):
            for path in (
                other["master_url"].replace("master.m3u8", f"seg-{i % 2}.ts"),
                other["master_url"].replace("master", "index"),
                session["master_url"].replace("master.m3u8", f"seg-{i % 3}.ts"),
            ):
                response = await server.client.get(path)
                assert response.status_code == 200
                done += 1
            await slow.read(64)  # the slow one keeps trickling
    assert done == 30
    assert slow.in_flight() < len(expected), "the slow response was never held up"

    # The slow reader still gets every byte, identical to a fast fetch.
    with trio.fail_after(30):
        while await slow.read(4096):
            pass
    assert slow.body() == expected
    slow.sock.close()


async def test_reader_that_never_reads_does_not_block_shutdown(start_server: StartServer) -> None:
    server = await start_server()
    _, url, expected = await _session_with_segment(server)
    slow = await SlowClient.connect(int(server.url.rsplit(":", 1)[1]))
    await slow.request(url)
    await slow.read(256)
    await wait_until(lambda: 0 < slow.in_flight() < len(expected), timeout=10)
    # It stays connected and silent; the fixture's teardown shuts the server down with a
    # deadline and checks that nothing is left behind.
    server.running.shutdown.set()
    with trio.fail_after(20):
        while True:
            try:
                if not await slow.read(65536):
                    break  # the server closed the connection
            except OSError:
                break
    slow.sock.close()


async def test_client_vanishing_mid_body_frees_its_task(start_server: StartServer) -> None:
    server = await start_server()
    session, url, expected = await _session_with_segment(server)
    baseline = task_count(
        skip_lingering=False
    )  # the server plus the test client's keep-alive connection
    for _ in range(3):
        slow = await SlowClient.connect(int(server.url.rsplit(":", 1)[1]))
        await slow.request(url)
        await slow.read(1024)
        await wait_until(lambda: 0 < slow.in_flight() < len(expected), timeout=10)  # noqa: B023
        assert task_count(skip_lingering=False) > baseline
        slow.abort()
        await wait_until(lambda: task_count(skip_lingering=False) <= baseline, timeout=10)
    # Everyone else is still served, the session included.
    response = await server.client.get(url)
    assert response.status_code == 200 and response.content == expected
    assert (await server.client.get(session["master_url"])).status_code == 200


def _pending_waiters(session: Session) -> int:
    """Requests parked on a segment that is not made yet (internal, by design of this test)."""
    waiters: dict[tuple[str, int], trio.Event] = session._waiters
    return sum(1 for event in waiters.values() if not event.is_set())


async def _stuck_transcode(
    start_server: StartServer, tmp_path: Path, segment_wait: float
) -> tuple[Harness, dict[str, Any], Session]:
    # An encoder that never produces: every segment request waits (up to segment_wait).
    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "stuck"), segment_wait=segment_wait)
    created = await server.create("hevc_opus.mkv")
    session = server.running.services.manager.lookup(created["id"])
    assert session is not None
    return server, created, session


async def test_disconnect_while_waiting_ends_the_request_within_segment_wait(
    start_server: StartServer, tmp_path: Path
) -> None:
    """hypercorn's HTTP/1.1 protocol stops reading the socket while a response is pending
    (h11 PAUSED), so the app hears of a vanished client only when it answers: a waiting request
    ends at segment_wait, not at the disconnect. It must end then, and hold no one up before."""
    segment_wait = 3.0
    server, created, session = await _stuck_transcode(start_server, tmp_path, segment_wait)
    url = created["master_url"].replace("master.m3u8", "seg-0.ts")
    other = await server.create("h264_aac.mp4")
    baseline = task_count(skip_lingering=False)
    port = int(server.url.rsplit(":", 1)[1])

    clients = [await SlowClient.connect(port) for _ in range(3)]
    for client in clients:
        await client.request(url)
    await wait_until(lambda: _pending_waiters(session) >= 1, timeout=10)
    for client in clients:
        client.abort()
    # While they wait, everyone else is served at once.
    with trio.fail_after(segment_wait):
        for path in ("master.m3u8", "index.m3u8", "seg-0.ts", "seg-1.ts"):
            url_other = other["master_url"].replace("master.m3u8", path)
            assert (await server.client.get(url_other)).status_code == 200
    # The abandoned requests end (their 503 goes nowhere): no task is left.
    await wait_until(
        lambda: task_count(skip_lingering=False) <= baseline, timeout=segment_wait + 10
    )
    assert (await server.client.get(created["master_url"])).status_code == 200
    assert len(session_processes(server.temp_dir)) == 1
    assert server.running.services.manager.lookup(created["id"]) is session


async def test_no_waiter_is_left_behind_when_a_wait_ends(
    start_server: StartServer, tmp_path: Path
) -> None:
    server, created, session = await _stuck_transcode(start_server, tmp_path, 0.5)
    # A wait that times out (503), then one whose client vanished.
    response = await server.client.get(created["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert response.status_code == 503
    baseline = task_count(skip_lingering=False)
    client = await SlowClient.connect(int(server.url.rsplit(":", 1)[1]))
    await client.request(created["master_url"].replace("master.m3u8", "seg-1.ts"))
    await wait_until(lambda: ("v", 1) in session._waiters, timeout=10)  # it is waiting
    client.abort()
    await wait_until(lambda: task_count(skip_lingering=False) <= baseline, timeout=10)
    assert session._waiters == {}
