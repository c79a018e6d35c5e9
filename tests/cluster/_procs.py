"""Real Redis, HAProxy and hlstrio nodes as child processes, on free loopback ports.

Each one runs in the foreground with everything it writes (data, logs, pid, temp dirs) under
a directory the test owns, and is stopped (then killed if it lingers) by the test: nothing
outlives the test session. Synchronous on purpose: session-scoped fixtures use them, and an
async test calls the slow ones (start, restart) through `trio.to_thread`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DOCS_HAPROXY = Path(__file__).resolve().parents[2] / "docs" / "cluster" / "haproxy.cfg"
START_SECONDS = 60.0  # generous: a loaded 2-core machine starts Python slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} is not listening on {port}: {_tail(log)}") from None
            time.sleep(0.02)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Signal, wait up to 20 s, then SIGKILL: the process is gone when this returns."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Redis:
    """redis-server on a loopback port, no persistence (the hard case: a restart loses all)."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "redis.log"
        argv = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--save", "", "--appendonly", "no", "--logfile", str(log), "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process, "redis-server", log)
        return self

    def stop(self) -> None:
        stop(self.process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Node:
    """`python -m hlstrio serve` as a cluster node (a real process, so SIGKILL is real)."""

    name: str
    root: Path
    media: Path
    redis_url: str
    config: str = ""  # more TOML, top level
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def temp_dir(self) -> Path:
        return self.root / "sessions"

    def start(self) -> Node:
        self.launch()
        return self.wait()

    def wait(self) -> Node:
        assert self.process is not None
        wait_for_port(self.port, self.process, f"node {self.name}", self.root / "node.log")
        return self

    def launch(self) -> None:
        """Start the process; `wait` for it to listen (several nodes start side by side)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "hlstrio.toml"
        config.write_text(
            f'temp_dir = "{self.temp_dir}"\ncache_dir = "{self.root / "cache"}"\n{self.config}\n'
            f'[cluster]\nredis_url = "{self.redis_url}"\nnode = "{self.name}"\n'
            "sync_interval = 0.5\n"
        )
        log = self.root / "node.log"
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hlstrio", "serve", str(self.media),
                 "--port", str(self.port), "--config", str(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: no cleanup of its own; its reaper must kill its encoders."""
        stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        stop(self.process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return _tail(self.root / "node.log")


def haproxy_config(port: int, nodes: list[Node], root: Path) -> str:
    """docs/cluster/haproxy.cfg with the site values (listen port, servers) swapped in."""
    text = DOCS_HAPROXY.read_text()
    old_bind = "bind 127.0.0.1:8080"
    assert text.count(old_bind) == 1, "docs/cluster/haproxy.cfg changed: bind"
    text = text.replace(old_bind, f"bind 127.0.0.1:{port}")
    servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port} check" for n in nodes)
    marker = "    # site: servers\n"
    assert text.count(marker) == 2, "docs/cluster/haproxy.cfg changed: servers"
    lines, out, skipping = text.splitlines(keepends=True), [], False
    for line in lines:
        if line == marker:
            out.append(marker + servers + "\n")
            skipping = True
            continue
        if skipping and line.lstrip().startswith("server "):
            continue
        skipping = False
        out.append(line)
    # The packaged file logs to syslog; here to stderr (the test's log file).
    return "".join(out).replace("log /dev/log local0", "log stderr format raw local0")


@dataclass
class Haproxy:
    root: Path
    nodes: list[Node]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.root / "admin.sock"

    def start(self) -> Haproxy:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "haproxy.cfg"
        text = haproxy_config(self.port, self.nodes, self.root)
        # The runtime API, for the tests to see which nodes HAProxy takes as up.
        text = text.replace("global\n", f"global\n    stats socket {self.socket} level admin\n", 1)
        config.write_text(text)
        log = self.root / "haproxy.log"
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            )  # fmt: skip
        wait_for_port(self.port, self.process, "haproxy", log)
        return self

    def stop(self) -> None:
        stop(self.process, signal.SIGUSR1)  # soft stop: in-flight answers finish

    def up(self, backend: str = "hlstrio_hls") -> set[str]:
        """Names of the servers HAProxy's checks take as UP in `backend` (`show stat`)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        up = set()
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            server = row.get("svname") not in ("FRONTEND", "BACKEND")
            if row.get("pxname") == backend and server and row.get("status", "").startswith("UP"):
                up.add(row["svname"])
        return up
