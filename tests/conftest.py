# ---------------------------------------------------------------------------------------------
# Media fixtures: synthetic clips generated once per test session (hlstrio.media.generate_clip).
# ---------------------------------------------------------------------------------------------

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import generate_clip


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return ffmpeg_exe()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """Tiny real clips plus files that must be rejected. Treat as read-only: copy to modify."""
    root = tmp_path_factory.mktemp("media")
    size = {"width": 320, "height": 180}
    generate_clip(root / "h264_aac.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=6, **size)
    generate_clip(root / "hevc_opus.mkv", "hevc_opus_mkv", ffmpeg=ffmpeg, seconds=4, **size)
    generate_clip(root / "two_audio.mp4", "two_audio_mp4", ffmpeg=ffmpeg, seconds=4, **size)
    # H.264; English stereo AAC (default), French AC-3 5.1; an embedded English SRT, a PGS
    # bitmap track, and a forced French sidecar (multi_track.fr.forced.srt) beside it.
    generate_clip(root / "multi_track.mkv", "multi_track_mkv", ffmpeg=ffmpeg, seconds=6, **size)
    (root / "corrupt.mp4").write_bytes(random.Random(1).randbytes(64 * 1024))
    valid = (root / "h264_aac.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(valid[: len(valid) * 4 // 10])
    (root / "notes.txt").write_text("not media\n")
    return root


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def long_media_dir(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """Two-minute clips for seeking, throttling and pruning (tiny frames keep them cheap)."""
    root = tmp_path_factory.mktemp("long-media")
    size = {"width": 256, "height": 144}
    generate_clip(root / "long_hevc.mkv", "hevc_opus_mkv", ffmpeg=ffmpeg, seconds=120, **size)
    generate_clip(root / "long_h264.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=120, **size)
    return root


# ---------------------------------------------------------------------------------------------
# System tools some tests need: Debian's packages, which .ci/run installs. Without one, its tests
# are skipped with the reason (pytest -ra) and the session's header and summary say so; under
# CI (CI=true) they fail instead, so CI can never pass by skipping them.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemTool:
    path: str  # the binary the tests run
    package: str  # `apt-get install -y PACKAGE`
    tests: str  # the tests that need it

    @property
    def available(self) -> bool:
        return shutil.which(self.path) is not None


SYSTEM_TOOLS = {
    # HLSTRIO_CHROMIUM: another chromium binary (see hlstrio._config.NOT_SETTINGS).
    "chromium": SystemTool(
        os.environ.get("HLSTRIO_CHROMIUM", "/usr/bin/chromium"),
        "chromium",
        "tests/web/test_browser.py",
    ),
    # /usr/sbin is not on a non-root PATH.
    "nginx": SystemTool(
        shutil.which("nginx") or "/usr/sbin/nginx", "nginx-light", "tests/web/test_nginx_front.py"
    ),
    # VLC without its interface ("-I dummy"): a player nobody here wrote.
    "vlc": SystemTool(
        shutil.which("cvlc") or "/usr/bin/cvlc", "vlc-bin vlc-plugin-base", "tests/web/test_vlc.py"
    ),
    # MKV as most rips are written (its own cluster and cues layout).
    "mkvmerge": SystemTool(
        shutil.which("mkvmerge") or "/usr/bin/mkvmerge", "mkvtoolnix", "tests/media (mkvmerge)"
    ),
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(name: str) -> str:
    tool = SYSTEM_TOOLS[name]
    if not tool.available:
        reason = f"no {name} at {tool.path} (apt-get install -y {tool.package})"
        if _in_ci():
            pytest.fail(f"{reason}: .ci/run installs it, so in CI this is a failure")
        pytest.skip(reason)
    return tool.path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, for playwright (never `playwright install`)."""
    return _require("chromium")


@pytest.fixture(scope="session")
def vlc() -> str:
    """Debian's cvlc (run as nobody by the tests: VLC refuses to run as root)."""
    return _require("vlc")


@pytest.fixture(scope="session")
def mkvmerge() -> str:
    return _require("mkvmerge")


@pytest.fixture(scope="session")
def nginx() -> str:
    """Debian's nginx, run in the foreground by the test itself."""
    return _require("nginx")


def _missing_tool_lines() -> list[str]:
    outcome = "FAIL (CI=true)" if _in_ci() else "are SKIPPED"
    return [
        f"hlstrio: no {name} at {tool.path}: the tests that need it ({tool.tests}) {outcome}; "
        f"apt-get install -y {tool.package}"
        for name, tool in SYSTEM_TOOLS.items()
        if not tool.available
    ]


def pytest_report_header() -> list[str]:
    found = ", ".join(f"{name} {tool.path}" for name, tool in SYSTEM_TOOLS.items())
    return _missing_tool_lines() or [f"hlstrio: full suite, found {found}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _missing_tool_lines():
        terminalreporter.write_line(line, yellow=True, bold=True)
