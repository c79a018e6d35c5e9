"""A lean HTTP/1.1 endpoint for nginx's segment requests (`accel_listen`): h11 on trio, no
Hypercorn, no Quart.

Why: behind nginx, hlstrio's answer to a transcode segment is a few headers
(X-Accel-Redirect), and on Hypercorn that answer costs ~0.4 ms of CPU in Hypercorn's
per-request machinery alone (task, channel, events, timers) while our own work (lookup, touch,
readiness) is a few percent of it. Here one h11 parse, one `Segments.answer` and one write
make the answer. Only nginx should talk to it: bind it to loopback. It answers exactly what the
public segment route answers (same `Segments.answer`, same headers and JSON errors) for
GET/HEAD `/hls/{id}/seg-{n}.ts`, a JSON 404 for anything else; the public port is unchanged.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

import h11
import trio

from .._metrics import Metrics
from ._errors import ApiError
from ._fast import Segments, error_answer, parse_segment_path, segment_headers
from ._services import Services

log = logging.getLogger("hlstrio.accel")

KEEP_ALIVE = 120.0  # s an idle nginx upstream connection is kept (nginx closes at 60 s idle)
_SMALL = 64 * 1024  # bodies up to this leave in one write with their headers


async def serve_accel(
    services: Services,
    metrics: Metrics | None,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on host:port until cancelled; reports the bound port."""
    segments = Segments(services, metrics)
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=2048)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        await _connection(stream, segments, metrics)

    await trio.serve_listeners(handle, listeners)


async def _connection(
    stream: trio.abc.HalfCloseableStream, segments: Segments, metrics: Metrics | None
) -> None:
    connection = h11.Connection(h11.SERVER)
    try:
        while True:
            request = await _next_request(connection, stream)
            if request is None:
                return
            started = time.perf_counter()
            try:
                await _respond(connection, stream, request, segments, metrics)
            finally:
                if metrics is not None:
                    metrics.route_seconds["segment"].observe(time.perf_counter() - started)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        pass
    except Exception:
        # A bug on one connection must not end the listener (and with it the server).
        log.exception("segment endpoint: connection failed")
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def _next_request(connection: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    """The next request with its (ignored) body read; None when the peer is gone or idle."""
    request: h11.Request | None = None
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            with trio.move_on_after(KEEP_ALIVE):
                data = await stream.receive_some(65536)
                connection.receive_data(bytes(data))
                continue
            return None
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _respond(
    connection: h11.Connection,
    stream: trio.abc.Stream,
    request: h11.Request,
    segments: Segments,
    metrics: Metrics | None,
) -> None:
    method = request.method
    target = request.target.split(b"?", 1)[0].decode("latin-1")
    parsed = parse_segment_path(unquote(target)) if method in (b"GET", b"HEAD") else None
    try:
        if parsed is None:
            raise ApiError(404, "not_found", "no such resource")
        answer = await segments.answer(*parsed)
    except ApiError as exc:
        if metrics is not None:
            metrics.error(exc.status, exc.code)
        status, headers, body = error_answer(exc)
    except Exception:
        log.exception("unhandled error serving %s", target)
        status, headers, body = error_answer(ApiError(500, "internal_error", "internal error"))
    else:
        status, headers, body = 200, segment_headers(answer), answer.body
    head = connection.send(h11.Response(status_code=status, headers=headers)) or b""
    # Content-Length framing: h11 adds nothing after the body, so EndOfMessage writes nothing.
    if method == b"HEAD" or not body:
        connection.send(h11.EndOfMessage())
        await stream.send_all(head)
    elif len(body) <= _SMALL:
        data = connection.send(h11.Data(data=body)) or b""
        connection.send(h11.EndOfMessage())
        await stream.send_all(head + data)
    else:
        await stream.send_all(head)
        data = connection.send(h11.Data(data=body)) or b""
        connection.send(h11.EndOfMessage())
        await stream.send_all(data)
