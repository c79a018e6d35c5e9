"""The lean segment endpoint for nginx (web/_accel.py) over an in-memory stream pair.

No sockets and no server: one `_connection` handler on one end of
`trio.testing.memory_stream_pair`, an h11 client on the other, a real SessionManager with fake
cuts and encoder (tests/streaming/fakes.py) behind it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import h11
import pytest
import trio
import trio.testing

from hlstrio.media import Library, VerifiedFiles
from hlstrio.streaming import Capabilities, Session, SessionManager, SessionParams
from hlstrio.web import Authenticator, Services
from hlstrio.web._accel import _connection
from hlstrio.web._fast import Segments

from ..streaming.fakes import FakeCuts, FakeEncoder, media_item, run_inline, settings


@pytest.fixture
async def services(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Services]:
    config = settings(tmp_path)
    manager = SessionManager(
        config,
        "ffmpeg",
        run_encoder=FakeEncoder(60, 2.0),
        make_cuts=FakeCuts(),
        run_blocking=run_inline,
    )
    await nursery.start(manager.run)
    yield Services(config, Library([]), manager, Authenticator({}))
    await manager.end_all()


async def remux_session(services: Services) -> Session:
    item = media_item()
    params = SessionParams(item.id, 0.0, "auto", None, Capabilities())
    session, _ = await services.manager.create("u", item, params, VerifiedFiles(item.file, {}))
    return session


class Client:
    """An HTTP/1.1 client over one end of the pair; keeps the connection alive between calls."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def request(self, method: str, target: str) -> tuple[h11.Response, bytes]:
        if self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        data = self.h11.send(h11.Request(method=method, target=target, headers=[("Host", "nginx")]))
        data += self.h11.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data)
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, body


async def test_segments_errors_and_keep_alive_over_one_connection(
    services: Services, nursery: trio.Nursery
) -> None:
    session = await remux_session(services)
    client_end, server_end = trio.testing.memory_stream_pair()
    done = trio.Event()

    async def serve() -> None:
        await _connection(server_end, Segments(services, None), None)
        done.set()

    nursery.start_soon(serve)
    client = Client(client_end)

    response, body = await client.request("GET", f"/hls/{session.id}/seg-3.ts")
    assert response.status_code == 200 and body == b"v-3"
    headers = dict(response.headers)
    assert headers[b"content-type"] == b"video/mp2t"
    assert headers[b"content-length"] == b"3"

    # Same connection (keep-alive): a rendition segment, a HEAD, then the errors.
    response, body = await client.request("GET", f"/hls/{session.id}/a1/seg-3.ts")
    assert (response.status_code, body) == (200, b"a1-3")
    response, body = await client.request("HEAD", f"/hls/{session.id}/seg-4.ts")
    assert (response.status_code, body) == (200, b"")
    assert dict(response.headers)[b"content-length"] == b"3"
    response, body = await client.request("GET", "/hls/nope/seg-0.ts")
    assert response.status_code == 404 and b'"session_not_found"' in body
    response, body = await client.request("GET", f"/hls/{session.id}/seg-9999.ts")
    assert response.status_code == 404 and b'"segment_not_found"' in body
    response, body = await client.request("GET", f"/hls/{session.id}/master.m3u8")
    assert response.status_code == 404 and b'"not_found"' in body  # segments only here

    # Garbage ends the connection without taking the handler (or anything else) down.
    await client_end.send_all(b"\x00\x01 not http\r\n\r\n")
    with trio.fail_after(5):
        await done.wait()
