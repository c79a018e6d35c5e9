"""A watchdog process that kills our ffmpeg children if the server dies, even by SIGKILL.

PR_SET_PDEATHSIG would be the usual tool, but it fires when the *thread* that forked exits,
and trio forks from worker threads that it retires after 10 s idle: it would kill healthy
encoders. Instead one small process per server holds a pipe from us; when the pipe closes
(the server is gone, however it died) it kills every encoder we told it about. Each is named
with its session dir, checked in /proc before the kill, so a recycled pid is never hit.

Parent side: `Reaper` (in the server's nursery). Child side: `python -m hlstrio._reaper`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys

import trio

log = logging.getLogger("hlstrio.reaper")


class Reaper:
    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[str](1000)
        self.enabled = False

    def watch(self, pid: int, marker: str) -> None:
        """Kill `pid` if the server dies, provided its command line still contains `marker`."""
        self._post(f"+{pid} {marker}\n")

    def unwatch(self, pid: int) -> None:
        self._post(f"-{pid}\n")

    def _post(self, line: str) -> None:
        if not self.enabled or "\n" in line[:-1]:
            return
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(line)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "hlstrio._reaper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=None,
        )
        assert process.stdin is not None
        self.enabled = True
        task_status.started()
        try:
            async for line in self._receive:
                await process.stdin.send_all(line.encode("utf-8", "surrogateescape"))
        finally:
            # A clean stop: our encoders are already dead; closing the pipe ends the watchdog.
            self.enabled = False
            with trio.CancelScope(shield=True):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await process.stdin.aclose()
                with trio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


def cmdline(pid: int) -> bytes:
    """A process's NUL-separated argv, b"" once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def kill_if_running(pid: int, marker: bytes) -> None:
    """SIGKILL `pid` if its argv still contains `marker` (so a recycled pid is never hit)."""
    if marker and marker in cmdline(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)  # a stopped (throttled) process must die too
            os.kill(pid, signal.SIGKILL)


def kill_all_using(marker: bytes) -> None:
    """SIGKILL every process whose argv contains `marker` (a session dir path)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            kill_if_running(int(entry), marker)


def _child_main() -> int:
    watched: dict[int, bytes] = {}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal ^C must not kill the watchdog first
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\n")
        try:
            if line.startswith(b"+"):
                pid, _, marker = line[1:].partition(b" ")
                watched[int(pid)] = marker
            elif line.startswith(b"-"):
                watched.pop(int(line[1:]), None)
        except ValueError:
            continue
    # EOF: the server is gone (or closed us on a clean stop, with nothing left to kill).
    for pid, marker in watched.items():
        kill_if_running(pid, marker)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
