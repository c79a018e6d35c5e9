from __future__ import annotations

import os
from pathlib import Path

import pytest

import hlstrio.media._demo as demo_module
from hlstrio._ffmpeg import FfmpegNotFound, ffmpeg_exe
from hlstrio.media import (
    ClipKind,
    Library,
    default_cache_dir,
    ensure_demo_library,
    generate_clip,
    probe,
)


def test_generate_h264_aac_mkv(tmp_path: Path, ffmpeg: str) -> None:
    dest = generate_clip(
        tmp_path / "clip.mkv", "h264_aac_mkv", ffmpeg=ffmpeg, seconds=2.5, width=160, height=90
    )
    assert dest == tmp_path / "clip.mkv"
    assert os.listdir(tmp_path) == ["clip.mkv"]  # the temporary file was renamed, not copied
    info = probe(dest)
    assert info.container == "matroska"
    assert info.duration == pytest.approx(2.5, abs=0.1)
    assert info.video is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 160, 90)
    assert [a.codec for a in info.audio] == ["aac"]


def test_generate_overwrites_atomically(tmp_path: Path, ffmpeg: str) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"old")
    inode = dest.stat().st_ino
    generate_clip(dest, "h264_aac_mp4", ffmpeg=ffmpeg, seconds=1, width=64, height=64)
    assert dest.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert probe(dest).duration == pytest.approx(1.0, abs=0.1)


def test_generate_rejects_bad_arguments(tmp_path: Path, ffmpeg: str) -> None:
    with pytest.raises(ValueError):
        generate_clip(
            tmp_path / "a.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=1, width=63, height=64
        )
    with pytest.raises(ValueError):
        generate_clip(
            tmp_path / "a.mp4", "h264_aac_mp4", ffmpeg=ffmpeg, seconds=0, width=64, height=64
        )
    bogus: ClipKind = "vp9_webm"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        generate_clip(tmp_path / "a.mp4", bogus, ffmpeg=ffmpeg, seconds=1, width=64, height=64)
    assert os.listdir(tmp_path) == []


def test_ffmpeg_failure_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="Unknown encoder libx264"):
        generate_clip(
            out / "a.mp4", "h264_aac_mp4", ffmpeg=str(fake), seconds=1, width=64, height=64
        )
    with pytest.raises(RuntimeError, match="cannot run ffmpeg"):
        generate_clip(
            out / "a.mp4",
            "h264_aac_mp4",
            ffmpeg=str(tmp_path / "nope"),
            seconds=1,
            width=64,
            height=64,
        )
    assert os.listdir(out) == []  # no half-written or temporary files left behind


def test_ensure_demo_library_generates_once(
    tmp_path: Path, ffmpeg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_module, "_DEMO_SECONDS", 1.0)
    monkeypatch.setattr(demo_module, "_DEMO_SIZE", (64, 36))
    demo = ensure_demo_library(tmp_path, ffmpeg=ffmpeg)
    assert demo == tmp_path / "demo-v2"
    names = sorted(os.listdir(demo))
    clips = sorted(name for name, _ in demo_module._DEMO_CLIPS)
    # The several-tracks clip has its forced French subtitles beside it, as a library would.
    sidecar = Path(clips[0]).stem + demo_module.FORCED_SIDECAR_SUFFIX
    assert clips[0].startswith("Multiple Tracks")
    assert names == sorted([*clips, sidecar])
    mtimes = {n: (demo / n).stat().st_mtime_ns for n in names}

    def must_not_run(*args: object, **kwargs: object) -> Path:
        raise AssertionError("regenerated an existing clip")

    monkeypatch.setattr(demo_module, "generate_clip", must_not_run)
    assert ensure_demo_library(tmp_path, ffmpeg=ffmpeg) == demo
    assert {n: (demo / n).stat().st_mtime_ns for n in names} == mtimes


@pytest.mark.slow
def test_real_demo_library(tmp_path: Path, ffmpeg: str) -> None:
    # ~12 s on 2 cores; timed in `nox -s bench -- startup`, not here.
    demo = ensure_demo_library(tmp_path, ffmpeg=ffmpeg)

    lib = Library([demo])
    lib.scan()
    items = {item.title: item.info for item in lib.items()}
    assert sorted(items) == [
        "Multiple Tracks (English, French Surround, Subtitles)",
        "Test Pattern (H264, AAC)",
        "Test Pattern (HEVC, Opus)",
        "Two Audio Tracks (English, French)",
    ]
    for info in items.values():
        assert info.duration == pytest.approx(30.0, abs=0.1)
        assert info.video is not None and (info.video.width, info.video.height) == (640, 360)
        assert len(info.keyframe_pts) >= 15
    hevc = items["Test Pattern (HEVC, Opus)"]
    assert hevc.video is not None and hevc.video.codec == "hevc"
    two = items["Two Audio Tracks (English, French)"]
    assert [a.language for a in two.audio] == ["en", "fr"]
    several = items["Multiple Tracks (English, French Surround, Subtitles)"]
    assert [(a.codec, a.channels, a.language) for a in several.audio] == [
        ("aac", 2, "en"),
        ("ac3", 6, "fr"),
    ]
    assert [(s.codec, s.text) for s in several.subtitles] == [
        ("subrip", True),
        ("hdmv_pgs_subtitle", False),
    ]
    (item,) = [i for i in lib.items() if i.title.startswith("Multiple")]
    assert [(s.language, s.forced) for s in item.sidecars] == [("fr", True)]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hlstrio"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the spec says
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "hlstrio"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "hlstrio"


# --- ffmpeg_exe --------------------------------------------------------------------------------


def make_executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_ffmpeg_exe_configured(tmp_path: Path) -> None:
    exe = make_executable(tmp_path / "my-ffmpeg")
    assert ffmpeg_exe(str(exe)) == str(exe)
    not_exec = tmp_path / "plain"
    not_exec.write_text("")
    for bad in (str(tmp_path / "missing"), str(not_exec), str(tmp_path)):
        with pytest.raises(FfmpegNotFound) as exc_info:
            ffmpeg_exe(bad)
        assert "\n" not in str(exc_info.value)


def test_ffmpeg_exe_prefers_path_then_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    on_path = make_executable(bindir / "ffmpeg")
    monkeypatch.setenv("PATH", str(bindir))
    assert ffmpeg_exe() == str(on_path)
    assert ffmpeg_exe(None) == str(on_path)

    on_path.unlink()
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    bundled = ffmpeg_exe()
    assert os.path.isfile(bundled) and os.access(bundled, os.X_OK)
    assert "imageio_ffmpeg" in bundled
