from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

import hlstrio.media._library as library_module
from hlstrio.media import (
    AudioInfo,
    Library,
    MediaGone,
    MediaInfo,
    MediaItem,
    ProbeError,
    Sidecar,
    SubtitleInfo,
    VideoInfo,
    media_id_for,
    probe,
)
from hlstrio.media._library import _CACHE_VERSION, title_for
from hlstrio.media._watch import Debounce, ScanFailed, ScanScheduler, is_relevant

LAYOUT = {
    "Movies/h264_aac.mp4": "h264_aac.mp4",
    "two_audio.mp4": "two_audio.mp4",
    "Shows/S01/hevc_opus.mkv": "hevc_opus.mkv",
    "Shows/corrupt.mp4": "corrupt.mp4",
    "truncated.mp4": "truncated.mp4",
    "notes.txt": "notes.txt",
    ".hidden.mp4": "h264_aac.mp4",
    ".hidden_dir/inside.mp4": "h264_aac.mp4",
    "Movies/LOUD.MP4": "two_audio.mp4",
}
PLAYABLE = sorted(
    ["Movies/h264_aac.mp4", "Movies/LOUD.MP4", "Shows/S01/hevc_opus.mkv", "two_audio.mp4"]
)


@pytest.fixture
def root(tmp_path: Path, media_dir: Path) -> Path:
    root = tmp_path / "library"
    for rel, source in LAYOUT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(media_dir / source, root / rel)
    return root


@pytest.fixture
def count_probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def counting_probe(path: Path) -> MediaInfo:
        calls.append(path)
        return probe(path)

    monkeypatch.setattr(library_module, "probe", counting_probe)
    return calls


def scanned(roots: list[Path], cache: Path | None = None) -> Library:
    lib = Library(roots, cache_file=cache)
    lib.scan()
    return lib


def by_path(lib: Library) -> dict[str, MediaItem]:
    return {item.path: item for item in lib.items()}


def test_scan_lists_playable_files(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        lib = scanned([root])
    items = lib.items()
    assert sorted(i.path for i in items) == PLAYABLE
    # Sorted by case-insensitive title, then path.
    assert [i.title for i in items] == ["h264 aac", "hevc opus", "LOUD", "two audio"]
    resolved = root.resolve()
    for item in items:
        assert item.root == resolved
        assert item.file == resolved / item.path
        assert len(item.id) == 24 and set(item.id) <= set("0123456789abcdef")
        assert item.info.size == item.file.stat().st_size
        assert lib.get(item.id) is item
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("corrupt.mp4" in m for m in skipped)
    assert any("truncated.mp4" in m and "truncated" in m.split(":", 1)[1] for m in skipped)
    assert not any("notes.txt" in m or "hidden" in m for m in skipped)


def test_get_unknown_ids(root: Path) -> None:
    lib = scanned([root])
    for media_id in ("", "0" * 24, "../../etc/passwd", "Movies/h264_aac.mp4", str(root)):
        assert lib.get(media_id) is None


def test_ids_are_stable_and_derived_from_root_and_path(root: Path) -> None:
    first, second = scanned([root]), scanned([root / "." / "Movies" / ".."])
    assert [i.id for i in first.items()] == [i.id for i in second.items()]
    for item in first.items():
        assert item.id == media_id_for(root.resolve(), item.path)
    assert len({i.id for i in first.items()}) == len(PLAYABLE)
    assert media_id_for(Path("/a"), "b/c.mp4") != media_id_for(Path("/a/b"), "c.mp4")


def test_to_json_shape(root: Path) -> None:
    item = by_path(scanned([root]))["two_audio.mp4"]
    data = item.to_json()
    # The API contract's fields (id, title, path, duration, container, video{codec, width,
    # height, fps}, audio[{index, codec, channels, language}]) and what came with every track.
    assert data == {
        "id": item.id,
        "title": "two audio",
        "path": "two_audio.mp4",
        "duration": pytest.approx(4.0, abs=0.1),
        "container": "mov",
        "video": {
            "codec": "h264",
            "width": 320,
            "height": 180,
            "fps": 24.0,
            "profile": "High",
            "bit_depth": 8,
            "dynamic_range": "SDR",
            "interlaced": False,
        },
        "audio": [
            {
                "index": 1,
                "codec": "aac",
                "channels": 2,
                "layout": "stereo",
                "language": "en",
                "title": "English",
                "default": True,
            },
            {
                "index": 2,
                "codec": "aac",
                "channels": 2,
                "layout": "stereo",
                "language": "fr",
                "title": "Français",
                "default": False,
            },
        ],
        "subtitles": [],
    }
    assert json.loads(json.dumps(data)) == data


def test_to_json_lists_every_subtitle(tmp_path: Path) -> None:
    info = MediaInfo(
        container="matroska",
        duration=2.0,
        size=10,
        video=None,
        audio=(AudioInfo(1, "ac3", 6, 48000, "de", "ac-3", None, layout="5.1(side)"),),
        keyframe_pts=(),
        gop_bytes=(),
        video_time_base=None,
        video_start_pts=None,
        video_end_pts=None,
        subtitles=(
            SubtitleInfo(2, "subrip", True, "en", "Signs", forced=True),
            SubtitleInfo(3, "hdmv_pgs_subtitle", False, None, default=True),
        ),
    )
    sidecar = Sidecar(
        "x0123456789",
        "a/t.\udcff.srt",
        tmp_path / "t.srt",
        "subrip",
        "fr",
        "\udcff",
        hearing_impaired=True,
    )
    item = MediaItem("i" * 24, "t", "a/t.mkv", tmp_path, tmp_path / "t.mkv", info, (sidecar,))
    data = item.to_json()
    common = {"forced": False, "default": False, "hearing_impaired": False}
    assert data["subtitles"] == [
        {
            **common,
            "id": "s2",
            "index": 2,
            "format": "subrip",
            "text": True,
            "language": "en",
            "title": "Signs",
            "forced": True,
            "sidecar": False,
        },
        {
            **common,
            "id": "s3",
            "index": 3,
            "format": "hdmv_pgs_subtitle",
            "text": False,
            "language": None,
            "title": None,
            "default": True,
            "sidecar": False,
        },
        {
            **common,
            "id": "x0123456789",
            "index": None,
            "format": "subrip",
            "text": True,
            "language": "fr",
            "title": "\ufffd",  # undecodable file name bytes, made printable
            "hearing_impaired": True,
            "sidecar": True,
        },
    ]
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    assert str(tmp_path) not in json.dumps(data)


def test_to_json_without_video() -> None:
    info = MediaInfo(
        container="mov",
        duration=2.0,
        size=10,
        video=None,
        audio=(AudioInfo(0, "aac", 1, 44100, None, "mp4a.40.2", None),),
        keyframe_pts=(),
        gop_bytes=(),
        video_time_base=None,
        video_start_pts=None,
        video_end_pts=None,
    )
    item = MediaItem("x" * 24, "t", "t.mp4", Path("/r"), Path("/r/t.mp4"), info)
    assert item.to_json() == {
        "id": "x" * 24,
        "title": "t",
        "path": "t.mp4",
        "duration": 2.0,
        "container": "mov",
        "video": None,
        "audio": [
            {
                "index": 0,
                "codec": "aac",
                "channels": 1,
                "layout": None,
                "language": None,
                "title": None,
                "default": False,
            }
        ],
        "subtitles": [],
    }


def test_cache_hit_skips_probe(
    root: Path, tmp_path: Path, count_probes: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "state" / "probe-cache.json"
    first = scanned([root], cache)
    assert len(count_probes) == len(PLAYABLE) + 2  # corrupt and truncated are probed too
    assert cache.is_file()
    assert [p.name for p in cache.parent.iterdir()] == ["probe-cache.json"]  # no temp files left

    count_probes.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        second = scanned([root], cache)
    assert count_probes == []  # failures are remembered as well
    assert [(i.id, i.info) for i in second.items()] == [(i.id, i.info) for i in first.items()]
    info = by_path(second)["Shows/S01/hevc_opus.mkv"].info
    assert info.video_time_base == Fraction(1, 1000)
    assert isinstance(info.audio, tuple) and isinstance(info.keyframe_pts, tuple)
    assert any("corrupt.mp4" in r.getMessage() for r in caplog.records)  # still reported


def test_cache_invalidated_by_mtime_change(
    root: Path, tmp_path: Path, count_probes: list[Path]
) -> None:
    cache = tmp_path / "cache.json"
    scanned([root], cache)
    count_probes.clear()
    target = root / "two_audio.mp4"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    scanned([root], cache)
    assert count_probes == [target.resolve()]


def test_cache_invalidated_by_size_change(
    root: Path, tmp_path: Path, count_probes: list[Path]
) -> None:
    cache = tmp_path / "cache.json"
    scanned([root], cache)
    count_probes.clear()
    corrupt = root / "Shows" / "corrupt.mp4"
    st = corrupt.stat()
    shutil.copyfile(root / "two_audio.mp4", corrupt)  # repaired, same mtime
    os.utime(corrupt, ns=(st.st_atime_ns, st.st_mtime_ns))
    lib = scanned([root], cache)
    assert count_probes == [corrupt.resolve()]
    assert "Shows/corrupt.mp4" in by_path(lib)


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"version": 999, "entries": {}}', b"\xff\xfe\x00"]
)
def test_bad_cache_file_is_ignored(
    root: Path, tmp_path: Path, count_probes: list[Path], content: bytes
) -> None:
    cache = tmp_path / "cache.json"
    cache.write_bytes(content)
    lib = scanned([root], cache)
    assert sorted(by_path(lib)) == PLAYABLE
    assert len(count_probes) == len(PLAYABLE) + 2
    assert json.loads(cache.read_text())["version"] == _CACHE_VERSION  # rewritten


def test_malformed_cache_entry_is_a_miss(
    root: Path, tmp_path: Path, count_probes: list[Path]
) -> None:
    cache = tmp_path / "cache.json"
    scanned([root], cache)
    data = json.loads(cache.read_text())
    key = str((root / "two_audio.mp4").resolve())
    del data["entries"][key]["info"]["video"]["width"]
    cache.write_text(json.dumps(data))
    count_probes.clear()
    lib = scanned([root], cache)
    assert count_probes == [Path(key)]
    assert by_path(lib)["two_audio.mp4"].info.video is not None


def test_symlink_escaping_root_is_skipped(
    root: Path, tmp_path: Path, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(media_dir / "h264_aac.mp4", outside / "secret.mp4")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "Movies" / "relative_escape.mp4").symlink_to(Path("..", "..", "outside", "secret.mp4"))
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)  # never followed
    (root / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        lib = scanned([root])
    assert sorted(by_path(lib)) == PLAYABLE
    messages = [r.getMessage() for r in caplog.records]
    assert any("escape.mp4" in m and "outside" in m for m in messages)
    assert any("relative_escape.mp4" in m and "outside" in m for m in messages)
    assert any("dangling.mp4" in m for m in messages)


def test_symlink_inside_root_is_listed(root: Path) -> None:
    (root / "alias.mp4").symlink_to(Path("Movies", "h264_aac.mp4"))
    (root / "Shows" / "alias_dir").symlink_to(root / "Movies", target_is_directory=True)
    lib = scanned([root])
    items = by_path(lib)
    assert sorted(items) == sorted([*PLAYABLE, "alias.mp4"])  # directory links not followed
    alias, original = items["alias.mp4"], items["Movies/h264_aac.mp4"]
    assert alias.file == original.file == (root / "Movies" / "h264_aac.mp4").resolve()
    assert alias.id != original.id
    assert lib.verify(alias) == original.file


def test_verify(root: Path, tmp_path: Path, media_dir: Path) -> None:
    lib = scanned([root])
    items = by_path(lib)
    hevc = items["Shows/S01/hevc_opus.mkv"]
    assert lib.verify(hevc) == (root / "Shows" / "S01" / "hevc_opus.mkv").resolve()

    (root / "Shows" / "S01" / "hevc_opus.mkv").unlink()
    with pytest.raises(MediaGone, match="no longer exists"):
        lib.verify(hevc)

    # Swapped for a symlink to an identical file outside the root after the scan.
    outside = tmp_path / "outside.mp4"
    shutil.copyfile(media_dir / "two_audio.mp4", outside)
    two = items["two_audio.mp4"]
    (root / "two_audio.mp4").unlink()
    (root / "two_audio.mp4").symlink_to(outside)
    with pytest.raises(MediaGone, match="outside"):
        lib.verify(two)

    # Rewritten in place: the keyframe index from the scan no longer describes it.
    h264 = items["Movies/h264_aac.mp4"]
    with open(root / "Movies" / "h264_aac.mp4", "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(MediaGone, match="changed"):
        lib.verify(h264)

    # Replaced by a directory.
    loud = items["Movies/LOUD.MP4"]
    (root / "Movies" / "LOUD.MP4").unlink()
    (root / "Movies" / "LOUD.MP4").mkdir()
    with pytest.raises(MediaGone):
        lib.verify(loud)


def test_rescan_replaces_items(root: Path) -> None:
    lib = scanned([root])
    before = lib.items()
    gone = by_path(lib)["two_audio.mp4"]
    (root / "two_audio.mp4").unlink()
    lib.scan()
    assert lib.get(gone.id) is None
    assert len(lib.items()) == len(before) - 1
    assert gone in before  # earlier snapshots are unaffected


def test_unicode_file_names(root: Path, media_dir: Path) -> None:
    name = "日本語 ümlaut ✓.mp4"
    (root / "Ünïcode").mkdir()
    shutil.copyfile(media_dir / "h264_aac.mp4", root / "Ünïcode" / name)
    try:
        raw = os.path.join(os.fsencode(root), b"caf\xe9_latin1.mp4")  # not valid UTF-8
        shutil.copyfile(media_dir / "h264_aac.mp4", raw)
    except OSError:
        raw = None
    lib = scanned([root])
    items = by_path(lib)
    item = items[f"Ünïcode/{name}"]
    assert item.title == "日本語 ümlaut ✓"
    assert item.to_json()["path"] == f"Ünïcode/{name}"
    assert lib.verify(item) == (root / "Ünïcode" / name).resolve()
    if raw is not None:
        [latin] = [i for i in lib.items() if i.path.endswith("_latin1.mp4")]
        data = latin.to_json()
        assert data["title"] == "caf\ufffd latin1"
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # serialisable as UTF-8
        assert lib.verify(latin).name == os.fsdecode(b"caf\xe9_latin1.mp4")


def test_roots(
    root: Path, tmp_path: Path, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(media_dir / "two_audio.mp4", other / "two_audio.mp4")
    not_a_dir = tmp_path / "file_root"
    not_a_dir.write_text("x")
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        lib = scanned([tmp_path / "missing", root, other, not_a_dir, root])
    messages = [r.getMessage() for r in caplog.records]
    assert any("missing" in m for m in messages)
    assert any("file_root" in m for m in messages)
    items = lib.items()
    assert len(items) == len(PLAYABLE) + 1  # the repeated root adds nothing
    same_name = [i for i in items if i.path == "two_audio.mp4"]
    assert {i.root for i in same_name} == {root.resolve(), other.resolve()}
    assert len({i.id for i in same_name}) == 2


def test_probe_errors_never_escape(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(path: Path) -> MediaInfo:
        raise ProbeError(f"{path}: nope")

    fail: Callable[[Path], MediaInfo] = failing
    monkeypatch.setattr(library_module, "probe", fail)
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        lib = scanned([root])
    assert lib.items() == []
    assert sum("nope" in r.getMessage() for r in caplog.records) == len(PLAYABLE) + 2


@pytest.mark.parametrize(
    ("relpath", "title"),
    [
        ("My_Holiday.2019.mkv", "My Holiday 2019"),
        ("Shows/S01/a__b.mkv", "a b"),
        ("Test Pattern (H264, AAC).mp4", "Test Pattern (H264, AAC)"),
        ("noext", "noext"),
        ("___.mp4", "___.mp4"),
    ],
)
def test_title_for(relpath: str, title: str) -> None:
    assert title_for(relpath) == title


def test_video_info_roundtrip_types() -> None:
    info = MediaInfo(
        container="matroska",
        duration=1.5,
        size=3,
        video=VideoInfo(0, "hevc", 2, 2, 25.0, None, None),
        audio=(),
        keyframe_pts=(0, 40),
        gop_bytes=(1, 2),
        video_time_base=Fraction(1, 1000),
        video_start_pts=0,
        video_end_pts=80,
    )
    data = json.loads(json.dumps(library_module._info_to_json(info)))
    assert library_module._info_from_json(data) == info


def test_every_field_roundtrips_through_the_cache() -> None:
    info = MediaInfo(
        container="matroska",
        duration=1.5,
        size=3,
        video=VideoInfo(
            0,
            "hevc",
            3840,
            2160,
            23.976,
            "hvc1.2.4.L153.B0",
            None,
            profile="Main 10",
            pix_fmt="yuv420p10le",
            bit_depth=10,
            color_primaries="bt2020",
            color_transfer="smpte2084",
            color_space="bt2020nc",
            color_range="tv",
            dynamic_range="PQ",
            field_order="progressive",
        ),
        audio=(
            AudioInfo(
                1,
                "truehd",
                8,
                48000,
                "en",
                None,
                None,
                title="Atmos",
                default=True,
                layout="7.1",
                profile="Dolby TrueHD + Dolby Atmos",
                bit_depth=24,
            ),
            AudioInfo(2, "ac3", 2, 48000, "fr", "ac-3", 192000, commentary=True),
        ),
        keyframe_pts=(0, 40),
        gop_bytes=(1, 2),
        video_time_base=Fraction(1, 1000),
        video_start_pts=0,
        video_end_pts=80,
        subtitles=(SubtitleInfo(3, "hdmv_pgs_subtitle", False, "fr", "Forced", forced=True),),
        index_source="cues",
    )
    data = json.loads(json.dumps(library_module._info_to_json(info)))
    assert library_module._info_from_json(data) == info
    assert library_module._info_from_json({**data, "index_source": "guess"}) is None
    del data["subtitles"]
    assert library_module._info_from_json(data) is None


# --- staying current: what a scan changed, and how scans are coalesced ----------------------


def test_scan_reports_what_changed(root: Path, media_dir: Path) -> None:
    lib = scanned([root])
    before = by_path(lib)
    assert lib.scans == 1
    shutil.copyfile(media_dir / "hevc_opus.mkv", root / "new.mkv")  # added
    (root / "Movies" / "LOUD.MP4").unlink()  # removed
    # Rewritten with other content: 6 s of H.264 where 4 s of two-audio video was.
    shutil.copyfile(media_dir / "h264_aac.mp4", root / "two_audio.mp4")
    # Same content, new mtime: the probe no longer vouches for it either.
    hevc = root / "Shows" / "S01" / "hevc_opus.mkv"
    st = hevc.stat()
    os.utime(hevc, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    (root / "Movies" / "h264_aac.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")

    changes = lib.scan()
    after = by_path(lib)
    assert changes.added == (after["new.mkv"].id,)
    assert changes.removed == (before["Movies/LOUD.MP4"].id,)
    assert set(changes.changed) == {
        before["two_audio.mp4"].id,
        before["Shows/S01/hevc_opus.mkv"].id,
    }
    assert changes.subtitles_changed == (before["Movies/h264_aac.mp4"].id,)
    assert changes.to_json() == {
        "added": 1,
        "changed": 2,
        "removed": 1,
        "subtitles_changed": 1,
        "items": len(PLAYABLE),
    }
    reasons = dict(changes.gone())
    assert reasons[before["Movies/LOUD.MP4"].id] == library_module.REMOVED_REASON
    assert "keyframe index" in reasons[before["two_audio.mp4"].id]
    assert before["Movies/h264_aac.mp4"].id not in reasons  # new subtitles end no session
    assert after["Movies/h264_aac.mp4"].sidecars[0].language == "en"
    assert round(before["two_audio.mp4"].info.duration) == 4
    assert round(after["two_audio.mp4"].info.duration) == 6  # probed again
    assert lib.scans == 2

    (root / "Movies" / "h264_aac.en.srt").unlink()
    again = lib.scan()
    assert again.subtitles_changed == (before["Movies/h264_aac.mp4"].id,)
    assert again.added == again.changed == again.removed == ()


def test_verify_notices_a_same_size_rewrite(root: Path) -> None:
    lib = scanned([root])
    item = by_path(lib)["two_audio.mp4"]
    target = root / "two_audio.mp4"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))  # same size, new mtime
    os.utime(target, ns=(0, (item.mtime_ns or 0) + 1))
    with pytest.raises(MediaGone, match="changed"):
        lib.verify(item)


def test_rescans_reuse_probes_without_a_cache_file(root: Path, count_probes: list[Path]) -> None:
    lib = scanned([root])
    assert len(count_probes) == len(PLAYABLE) + 2
    count_probes.clear()
    lib.scan()
    assert count_probes == []  # a watcher's scans cost a walk and stats, not probes


def test_interrupted_scan_publishes_nothing(root: Path, media_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    lib = scanned([root], cache)
    before = lib.items()
    cached = cache.read_bytes()
    shutil.copyfile(media_dir / "hevc_opus.mkv", root / "new.mkv")
    calls: list[int] = []

    class Stop(Exception):
        pass

    def interrupt() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        lib.collect(interrupt)
    assert lib.items() == before and lib.scans == 1
    assert cache.read_bytes() == cached
    assert lib.scan().added  # the next scan finds it


def test_debounce_due() -> None:
    debounce = Debounce(quiet_seconds=1.0, max_delay_seconds=5.0)
    assert debounce.due(first_event=10.0, last_event=10.0) == 11.0
    assert debounce.due(first_event=10.0, last_event=12.5) == 13.5
    assert debounce.due(first_event=10.0, last_event=14.5) == 15.0  # capped


Recorder = tuple[ScanScheduler[int], list[float]]


def recorder(gate: trio.Event | None = None, fail_first: bool = False) -> Recorder:
    """A scheduler whose scans record their start time (and may wait on `gate`, or fail)."""
    started: list[float] = []

    async def scan() -> int:
        started.append(trio.current_time())
        if fail_first and len(started) == 1:
            raise OSError("disk on fire")
        if gate is not None and len(started) == 1:
            await gate.wait()
        return len(started)

    return ScanScheduler(scan, Debounce(1.0, 5.0)), started


# pytest-trio runs a test under a clock only if the test function itself requests it.


async def test_a_burst_of_events_is_one_scan(autojump_clock: MockClock) -> None:
    scheduler, started = recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        t0 = trio.current_time()
        for _ in range(50):  # 50 files copied in, 10 ms apart
            scheduler.notify()
            await trio.sleep(0.01)
        last = trio.current_time() - 0.01
        assert scheduler.busy
        await trio.sleep(30)
        assert started == [pytest.approx(last + 1.0)]
        assert started[0] - t0 < 5.0
        assert not scheduler.busy
        nursery.cancel_scope.cancel()


async def test_a_constant_stream_is_scanned_every_max_delay(autojump_clock: MockClock) -> None:
    scheduler, started = recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        t0 = trio.current_time()
        for _ in range(40):  # a change every 0.3 s for 12 s: never quiet for 1 s
            scheduler.notify()
            await trio.sleep(0.3)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    offsets = [round(t - t0, 1) for t in started]
    # Capped at 5 s after each batch's first event; the tail is scanned once quiet.
    assert offsets == [5.0, 10.1, pytest.approx(12.7, abs=0.01)]


async def test_events_during_a_scan_cost_one_more_scan(autojump_clock: MockClock) -> None:
    gate = trio.Event()
    scheduler, started = recorder(gate)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        scheduler.notify()
        await trio.sleep(1.5)
        assert len(started) == 1 and scheduler.scanning
        for _ in range(20):
            scheduler.notify()
            await trio.sleep(0.05)
        last = trio.current_time() - 0.05
        gate.set()
        await trio.sleep(30)
        assert started[1:] == [pytest.approx(last + 1.0)]  # one more, not 20
        nursery.cancel_scope.cancel()


async def test_rescans_skip_the_wait_and_share_one_scan(autojump_clock: MockClock) -> None:
    gate = trio.Event()
    scheduler, started = recorder(gate)
    results: list[int] = []

    async def ask() -> None:
        results.append(await scheduler.rescan())

    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        t0 = trio.current_time()
        nursery.start_soon(ask)
        await trio.sleep(1)
        assert started == [t0]  # at once: no quiet period
        # Three rescans and a watcher event while scan 1 runs: one scan after it, for all.
        for _ in range(3):
            nursery.start_soon(ask)
        scheduler.notify()
        await trio.sleep(1)
        gate.set()
        released = trio.current_time()
        await trio.sleep(10)
        assert sorted(results) == [1, 2, 2, 2]
        assert started[1:] == [released]
        nursery.cancel_scope.cancel()


async def test_a_rescan_during_a_scan_waits_for_the_next(autojump_clock: MockClock) -> None:
    gate = trio.Event()
    scheduler, started = recorder(gate)
    results: list[int] = []

    async def ask() -> None:
        results.append(await scheduler.rescan())

    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        scheduler.notify()
        await trio.sleep(1.5)
        assert scheduler.scanning
        nursery.start_soon(ask)
        await trio.sleep(1)
        assert results == []
        gate.set()
        released = trio.current_time()
        await trio.sleep(1)
        # Scan 1 began before the rescan was asked: it cannot have seen what prompted it.
        assert results == [2]
        assert started[1] == released  # at once: no quiet period for a rescan
        nursery.cancel_scope.cancel()


async def test_a_failed_scan_fails_its_rescans_only(autojump_clock: MockClock) -> None:
    scheduler, _ = recorder(fail_first=True)
    with pytest.raises(RuntimeError, match="not running"):
        await scheduler.rescan()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        with pytest.raises(ScanFailed, match="disk on fire"):
            await scheduler.rescan()
        assert await scheduler.rescan() == 2
        nursery.cancel_scope.cancel()


def test_which_changes_are_relevant(tmp_path: Path) -> None:
    root, own = tmp_path / "lib", tmp_path / "lib" / "sessions"
    relevant = functools.partial(is_relevant, roots=[root], ignore=[own])
    assert relevant(str(root / "Movies" / "a.mkv"))
    assert relevant(str(root / "Movies"))  # a folder renamed or removed
    assert relevant(str(root / "notes.txt"))  # cheap to rescan, and names may matter
    assert not relevant(str(root / ".a.mkv.part"))
    assert not relevant(str(root / "Movies" / ".git" / "HEAD"))
    assert not relevant(str(own / "hlstrio-session-x" / "seg-1.ts"))
    assert relevant(str(tmp_path / "elsewhere"))


async def test_keep_current_scans_in_a_thread_and_tells_listeners(
    root: Path, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []

    def recording_probe(path: Path) -> MediaInfo:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return probe(path)

    monkeypatch.setattr(library_module, "probe", recording_probe)
    lib = Library([root])
    gone: list[tuple[str, str]] = []
    lib.on_gone(lambda media_id, reason: gone.append((media_id, reason)))
    async with trio.open_nursery() as nursery:
        await nursery.start(lib.keep_current)
        first = await lib.rescan()
        assert first.items == len(PLAYABLE) and gone == []
        old = by_path(lib)
        (root / "Movies" / "LOUD.MP4").unlink()
        shutil.copyfile(media_dir / "h264_aac.mp4", root / "two_audio.mp4")
        changes = await lib.rescan()
        nursery.cancel_scope.cancel()
    assert changes.to_json()["removed"] == changes.to_json()["changed"] == 1
    assert gone == [
        (old["Movies/LOUD.MP4"].id, library_module.REMOVED_REASON),
        (old["two_audio.mp4"].id, library_module.CHANGED_REASON),
    ]
    assert on_loop and not any(on_loop)  # every probe ran in a worker thread
