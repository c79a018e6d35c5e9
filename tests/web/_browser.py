"""Helpers for the real-browser tests: a `python -m hlstrio serve` subprocess and chromium.

Playwright's sync API runs its own event loop, so these tests are plain sync tests against a
server in another process (no trio run to share). The browser is Debian's chromium, driven
through `executable_path` (the `chromium` fixture); `playwright install` is never needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..support import session_processes

# The chromium binary is the `chromium` fixture (tests/conftest.py): skipped or failed there.
# playwright adds --headless itself; the rest keeps chromium off the network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium's native HLS exposes `video.audioTracks` only with this flag: the player then
# switches audio natively instead of through hls.js.
AUDIO_TRACKS_FLAG = "--enable-experimental-web-platform-features"
# Set to a directory to keep the pages' screenshots (docs/screenshots/ comes from these).
SCREENSHOT_DIR = os.environ.get("HLSTRIO_SCREENSHOTS")
VIDEO = "document.getElementById('video')"


def watch_page_errors(context: Any) -> list[str]:
    """Collect uncaught page errors and what the Content-Security-Policy blocked (both bugs)."""
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    context.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return errors


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), full_page=full_page)


def press_play_if_asked(page: Any) -> None:
    """A page opened by URL, not by a click, may not autoplay with sound: then the player
    shows its play button, and a person clicks it."""
    page.wait_for_function(
        f"() => !{VIDEO}.paused || !document.getElementById('big-play').hidden", timeout=20_000
    )
    if page.locator("#big-play").is_visible():
        page.locator("#big-play").click()


def wait_playing_past(page: Any, seconds: float, timeout: float = 20) -> float:
    page.wait_for_function(
        f"() => {VIDEO}.currentTime > {seconds} && !{VIDEO}.paused", timeout=timeout * 1000
    )
    current: float = page.evaluate(f"() => {VIDEO}.currentTime")
    return current


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    cache_dir: Path
    log: Path
    token: str | None = None

    def api(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(
            method, self.url + path, headers=auth | (headers or {}), timeout=30, **kwargs
        )

    def sessions(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/v1/sessions")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def media_id(self, relpath: str) -> str:
        response = self.api("GET", "/api/v1/media")
        assert response.status_code == 200, response.text
        for item in response.json()["items"]:
            if item["path"] == relpath:
                return str(item["id"])
        raise KeyError(relpath)

    def end_all_sessions(self) -> None:
        for session in self.sessions():
            self.api("DELETE", f"/api/v1/sessions/{session['id']}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def serve(
    media: Path,
    work: Path,
    *,
    users: dict[str, str] | None = None,
    cors_origins: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Run the CLI server on a free port; on exit stop it with SIGTERM and check for leaks."""
    work.mkdir(parents=True, exist_ok=True)
    temp_dir, cache_dir, log = work / "sessions", work / "cache", work / "server.log"
    config = [
        f"media = [{json.dumps(str(media))}]",  # a JSON string is a TOML basic string
        f"temp_dir = {json.dumps(str(temp_dir))}",
        f"cache_dir = {json.dumps(str(cache_dir))}",
        "segment_seconds = 2",
        f"cors_origins = {json.dumps(list(cors_origins))}",  # a JSON list of strings is TOML
    ]
    for user, token in (users or {}).items():
        config += [f"[users.{user}]", f"token = {json.dumps(token)}"]
    (work / "hlstrio.toml").write_text("\n".join(config) + "\n")
    argv = [sys.executable, "-m", "hlstrio", "serve", "--port", "0"]
    argv += ["--config", str(work / "hlstrio.toml"), "--log-level", "warning"]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log_file)
    assert process.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()

    def pump(stream: Any) -> None:  # drain stdout for the server's whole life
        for line in stream:
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    server = ServerProcess("", process, temp_dir, cache_dir, log)
    try:
        deadline = time.monotonic() + 60
        while not server.url:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line, f"server exited before listening:\n{server.log_tail()}"
            if line.startswith(b"hlstrio listening on "):
                server.url = line.split()[-1].decode()
        server.token = next(iter((users or {}).values()), None)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, f"server exited with {code}:\n{server.log_tail()}"
    leftovers = list(temp_dir.iterdir()) if temp_dir.exists() else []
    assert leftovers == [], f"session temp dirs left after shutdown: {leftovers}"
    assert session_processes(temp_dir) == [], "ffmpeg left running after shutdown"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a condition (an HTTP call, /proc) until it holds, failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
