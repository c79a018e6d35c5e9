"""What a trio run and the kernel say about connections: task counts and TCP socket state."""

from __future__ import annotations

import socket

import trio

TCP_CLOSE_WAIT = 0x08  # the peer closed; we have not


def tcp_row(local_port: int, remote_port: int) -> tuple[int, int, int] | None:
    """(state, tx_queue, rx_queue) of the IPv4 socket local_port -> remote_port (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.split(":")[1], 16) == local_port
                and int(remote.split(":")[1], 16) == remote_port
            ):
                tx, rx = (int(q, 16) for q in fields[4].split(":"))
                return int(fields[3], 16), tx, rx
    return None


def _lingering(stream: object) -> bool:
    """A hypercorn connection that is over but not yet reaped.

    hypercorn 0.18 (trio/tcp_server.py) keeps two kinds until keep_alive_timeout: after it
    refused bytes that are not HTTP (socket closed, idle timer never stopped), and after the
    client closed an idle keep-alive connection (EOF read, but the socket stays in CLOSE_WAIT
    until the idle timer fires). Both end by themselves; neither holds a request.
    """
    if not isinstance(stream, trio.SocketStream):
        return False
    sock = stream.socket
    if sock.fileno() == -1:
        return True
    if sock.family != socket.AF_INET:
        return False
    try:
        row = tcp_row(sock.getsockname()[1], sock.getpeername()[1])
    except OSError:  # reset by the peer: not connected any more
        return True
    return row is not None and row[0] == TCP_CLOSE_WAIT


def task_count(*, skip_lingering: bool = True) -> int:
    """Tasks alive in the calling trio run: the test, the server, one or two per connection."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        frame = getattr(task.coro, "cr_frame", None)
        if skip_lingering and task.name.endswith("_run_handler") and frame is not None:
            children = [c.name for n in task.child_nurseries for c in n.child_tasks]
            # Only a connection with nothing but its idle timer left: never a request in flight.
            idle = all(name.endswith("_idle_timeout") for name in children)
            if idle and _lingering(frame.f_locals.get("stream")):
                continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count
