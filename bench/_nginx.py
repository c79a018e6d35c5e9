"""nginx for the benchmarks: a plain static server (the baseline) and the documented front.

The front is docs/nginx.conf itself with its three site-specific values swapped in, so the
numbers are for the configuration we ship.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._common import free_port, require, wait_for_port

DOCS_CONF = Path(__file__).resolve().parent.parent / "docs" / "nginx.conf"


def front_config(listen: int, upstream: str, segments: str, temp_dir: Path, tag: str = "") -> str:
    """docs/nginx.conf with our port, hlstrio's main and segment addresses (host:port) and
    temp_dir; fails if the doc drifts. `tag` renames the upstreams, so two fronts can share
    one nginx."""
    text = DOCS_CONF.read_text()
    for name in ("hlstrio_segments", "hlstrio"):
        text = text.replace(f"upstream {name} ", f"upstream {name}{tag} ")
        text = text.replace(f"http://{name};", f"http://{name}{tag};")
    for old, new in (
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen};"),
        ("server 127.0.0.1:8000;", f"server {upstream};"),
        ("server 127.0.0.1:8001;", f"server {segments};"),
        ("alias /var/tmp/hlstrio/;", f"alias {temp_dir}/;"),
    ):
        if text.count(old) != 1:
            raise RuntimeError(f"docs/nginx.conf no longer contains {old!r} exactly once")
        text = text.replace(old, new)
    return text


def static_config(listen: int, root: Path) -> str:
    """The baseline: nginx serving files with sendfile, nothing else in the way."""
    return f"""
server {{
    listen 127.0.0.1:{listen};
    root {root};
    sendfile on;
    tcp_nopush on;
    types {{ video/mp2t ts; application/vnd.apple.mpegurl m3u8; }}
}}
"""


def main_config(prefix: Path, servers: str, workers: str = "auto") -> str:
    """A self-contained nginx.conf: no daemon, everything (pid, logs, temp files) in `prefix`."""
    # As root, workers would drop to `nobody` and could not read 0700 session dirs.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{servers}
}}
"""


@contextmanager
def nginx(prefix: Path, servers: str, ports: list[int]) -> Iterator[None]:
    """Run nginx in the foreground with `servers` (server/upstream blocks) until the block ends."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, servers))
    process = subprocess.Popen(
        [require("nginx"), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for port in ports:
            try:
                wait_for_port(port)
            except OSError:
                process.kill()
                _, err = process.communicate()
                raise RuntimeError(f"nginx did not start: {err.decode(errors='replace')}") from None
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish in-flight responses
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


__all__ = ["free_port", "front_config", "main_config", "nginx", "static_config"]
