# ---------------------------------------------------------------------------------------------
# Media fixtures: synthetic clips generated once per test session (hlstrio.media.generate_clip).
# ---------------------------------------------------------------------------------------------

from __future__ import annotations

import random
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
