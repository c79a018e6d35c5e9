from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

import hlstrio.media._library as library_module
from hlstrio.media import (
    AudioInfo,
    Library,
    MediaGone,
    MediaInfo,
    MediaItem,
    ProbeError,
    VideoInfo,
    media_id_for,
    probe,
)
from hlstrio.media._library import _CACHE_VERSION, title_for

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
    assert data == {
        "id": item.id,
        "title": "two audio",
        "path": "two_audio.mp4",
        "duration": pytest.approx(4.0, abs=0.1),
        "container": "mov",
        "video": {"codec": "h264", "width": 320, "height": 180, "fps": 24.0},
        "audio": [
            {"index": 1, "codec": "aac", "channels": 2, "language": "eng"},
            {"index": 2, "codec": "aac", "channels": 2, "language": "fra"},
        ],
    }
    assert json.loads(json.dumps(data)) == data


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
        "audio": [{"index": 0, "codec": "aac", "channels": 1, "language": None}],
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
