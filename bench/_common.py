"""Shared bench plumbing: generated media, a server subprocess, wrk, nginx, the results table."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import ClipKind, generate_clip

WORK = Path(os.environ.get("HLSTRIO_BENCH_DIR", "/tmp/hlstrio-bench"))


@dataclass(frozen=True)
class Result:
    figure: str
    value: float
    baseline: float
    unit: str
    target: str
    command: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def media(name: str, kind: ClipKind, seconds: float, width: int, height: int) -> Path:
    """Generate a bench clip once (kept between runs under WORK/media)."""
    path = WORK / "media" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_clip(path, kind, ffmpeg=ffmpeg_exe(), seconds=seconds, width=width, height=height)
    return path


@contextmanager
def server(media_dir: Path, config: str = "") -> Iterator[str]:
    """`python -m hlstrio serve` on a free loopback port; yields its base URL."""
    WORK.mkdir(parents=True, exist_ok=True)
    # One file per server: several may run side by side (A/B rounds).
    fd, name = tempfile.mkstemp(prefix="bench-", suffix=".toml", dir=WORK)
    os.close(fd)
    cfg = Path(name)
    base = f'cache_dir = "{WORK / "cache"}"\n'
    if "temp_dir" not in config:
        base += f'temp_dir = "{WORK / "sessions"}"\n'
    cfg.write_text(base + config)
    argv = [sys.executable, "-m", "hlstrio", "serve", str(media_dir), "--port", "0"]
    argv += ["--config", str(cfg), "--log-level", "warning"]
    try:
        with listening(argv, cfg.with_suffix(".log")) as url:
            yield url
    finally:
        cfg.unlink(missing_ok=True)


@contextmanager
def listening(argv: list[str], log: Path) -> Iterator[str]:
    """Run a server that prints "... listening on URL" first; SIGTERM it afterwards."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {line!r}; see {log}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_pid(url: str) -> int:
    """Pid of the process listening on `url`'s port (for profilers and /proc lookups)."""
    port = int(url.rsplit(":", 1)[1])
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inode = fields[9]
    if inode is None:
        raise LookupError(url)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    raise LookupError(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def require(tool: str) -> str:
    path = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
    )
    if path is None:
        raise RuntimeError(
            f"{tool} not found: apt-get install -y nginx-light wrk (nox -s bench does)"
        )
    return path


@dataclass(frozen=True)
class Wrk:
    requests_per_s: float
    errors: int  # socket errors + non-2xx/3xx answers
    latency_ms: float  # mean


def wrk(url: str, seconds: float = 8, connections: int = 20, threads: int = 2) -> Wrk:
    """wrk's fixed-concurrency closed loop; the same settings for a figure and its baseline."""
    out = subprocess.run(
        [require("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    latency = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    mean = float(latency.group(1)) * scale[latency.group(2)] if latency else float("nan")
    return Wrk(rps, errors, mean)


def concat_copies(name: str, unit: Path, copies: int) -> Path:
    """`unit` concatenated `copies` times without re-encoding, once (minutes of media in
    seconds), under WORK/media."""
    out = WORK / "media" / name
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    listing = WORK / "lists" / f"{out.name}.txt"  # not beside `out`: that may be a library
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"file '{unit}'\n" for _ in range(copies)))
    part = out.with_name(out.stem + ".part" + out.suffix)
    mp4 = ["-movflags", "+faststart"] if out.suffix == ".mp4" else []
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"),
            *("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", *mp4, str(part)),
        ],
        check=True,
    )
    os.replace(part, out)
    return out


def two_hours_1080p_mp4() -> Path:
    """2 h of 1080p H.264/AAC MP4 (4.6 GB), shared by the seek, thumbnails and subtitles
    benches: a generated minute, concatenated."""
    unit = media("seek/unit-1080p.mp4", "h264_aac_mp4", 60, 1920, 1080)
    return concat_copies("seek/two-hours-1080p.mp4", unit, 120)


def evict(path: Path) -> None:
    """Drop this one file's pages from the page cache (nothing system-wide), so the next
    read of it comes from the disk: what "cold" means for a file nobody opened lately."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a live process, all its threads, plus its reaped
    children's; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": state is field 3 of proc(5), so utime (14) .. cstime (17) are [11:15].
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of `pid` and every live descendant (nginx's workers, hlstrio's reaper)."""
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(stat[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu_seconds(p) for p in tree)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start
