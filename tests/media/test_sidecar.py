"""Subtitle files next to a video: names parsed, files matched to videos, found by scans.

What a name says ends up in EXT-X-MEDIA TYPE=SUBTITLES (RFC 8216 4.3.4.1: LANGUAGE, FORCED,
DEFAULT; CHARACTERISTICS "public.accessibility.describes-music-and-sound" for SDH, Apple HLS
authoring spec), so each flag is checked here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from hlstrio.media import SIDECAR_MAX_BYTES, Library, MediaGone, MediaItem
from hlstrio.media._sidecar import SidecarName, match_sidecars, parse_sidecar_name, sidecar_id

SRT = "1\n00:00:00,000 --> 00:00:01,000\nHello\n"


def name(
    fmt: str = "subrip",
    language: str | None = None,
    title: str | None = None,
    *,
    forced: bool = False,
    default: bool = False,
    hi: bool = False,
) -> SidecarName:
    return SidecarName(fmt, language, title, forced, default, hi)


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("Name.srt", name()),
        ("Name.en.srt", name(language="en")),
        ("Name.fr.forced.srt", name(language="fr", forced=True)),
        ("Name.en.sdh.srt", name(language="en", hi=True)),
        ("Name.eng.default.srt", name(language="en", default=True)),
        ("Name.de.cc.vtt", name("webvtt", "de", hi=True)),
        ("Name.en.hi.srt", name(language="en", hi=True)),  # "hi" after a language: a flag
        ("Name.hi.srt", name(language="hi")),  # first: Hindi
        ("Name.forced.srt", name(forced=True)),
        ("Name.pt-BR.ass", name("ass", "pt-BR")),
        ("Name.English.Commentary.ssa", name("ssa", "en", "Commentary")),
        ("Name.Français.SRT", name(language="fr")),
        ("name.EN.Srt", name(language="en")),  # stems and tags compare case-insensitively
        ("Name.Signs and Songs.srt", name(title="Signs and Songs")),
        ("Name.fr.en.srt", name(language="fr", title="en")),  # one language: the first
        ("Name..en..srt", name(language="en")),
    ],
)
def test_parse_sidecar_name(file_name: str, expected: SidecarName) -> None:
    assert parse_sidecar_name("Name", file_name) == expected


@pytest.mark.parametrize(
    "file_name", ["Named.srt", "Name.mkv", "Name.en.sub", "Name.idx", "Other.en.srt", "Name"]
)
def test_not_a_sidecar(file_name: str) -> None:
    assert parse_sidecar_name("Name", file_name) is None


def test_match_prefers_the_longest_stem() -> None:
    videos = ["Show.mkv", "Show.Part2.mkv", "Show.mp4", "Other.avi"]
    files = ["Show.en.srt", "show.PART2.fr.srt", "Show.Part2.srt", "x.srt", "Show.nfo", *videos]
    matched = match_sidecars(videos, files)
    assert {v: [f for f, _ in m] for v, m in matched.items()} == {
        "Show.mkv": ["Show.en.srt"],
        "Show.mp4": ["Show.en.srt"],  # same stem, same sidecars
        "Show.Part2.mkv": ["Show.Part2.srt", "show.PART2.fr.srt"],
    }
    assert matched["Show.Part2.mkv"][1][1].language == "fr"
    # Whatever the order: here the longer stem sorts after the shorter one.
    later = match_sidecars(["show.part3.mkv", "show.mkv"], ["show.part3.en.srt", "show.en.srt"])
    assert {v: [f for f, _ in m] for v, m in later.items()} == {
        "show.mkv": ["show.en.srt"],
        "show.part3.mkv": ["show.part3.en.srt"],
    }


def test_sidecar_ids_are_url_safe_and_stable() -> None:
    ids = {sidecar_id(n) for n in ("Name.en.srt", "Name.fr.srt", "Name.en.sdh.srt")}
    assert len(ids) == 3
    for i in ids:
        assert i.startswith("x") and len(i) == 11 and i[1:].isalnum() and i == i.lower()
    assert sidecar_id("Name.en.srt") == sidecar_id("Name.en.srt")


@pytest.fixture
def library(tmp_path: Path, media_dir: Path) -> Path:
    root = tmp_path / "library"
    (root / "Films").mkdir(parents=True)
    shutil.copyfile(media_dir / "h264_aac.mp4", root / "Films" / "Movie.mp4")
    for sub in ("Movie.en.srt", "Movie.fr.forced.srt", "Movie.en.sdh.vtt", "Other.srt"):
        (root / "Films" / sub).write_text(SRT)
    return root


def scan(root: Path) -> MediaItem:
    lib = Library([root])
    lib.scan()
    [item] = lib.items()
    return item


def test_scan_finds_sidecars(library: Path) -> None:
    item = scan(library)
    got = [(x.path, x.format, x.language, x.forced, x.hearing_impaired) for x in item.sidecars]
    assert got == [
        ("Films/Movie.en.sdh.vtt", "webvtt", "en", False, True),
        ("Films/Movie.en.srt", "subrip", "en", False, False),
        ("Films/Movie.fr.forced.srt", "subrip", "fr", True, False),
    ]
    for x in item.sidecars:
        assert x.file == (library / x.path).resolve() and x.text
        assert item.sidecar(x.id) is x
    assert item.sidecar("s0") is None and item.sidecar("../Movie.en.srt") is None


def test_sidecars_in_json_never_show_paths(library: Path) -> None:
    item = scan(library)
    subtitles = item.to_json()["subtitles"]
    assert isinstance(subtitles, list)
    assert [s["id"] for s in subtitles] == [x.id for x in item.sidecars]
    assert subtitles[2] == {
        "id": sidecar_id("Movie.fr.forced.srt"),
        "index": None,
        "format": "subrip",
        "text": True,
        "language": "fr",
        "title": None,
        "forced": True,
        "default": False,
        "hearing_impaired": False,
        "sidecar": True,
    }
    text = json.dumps(subtitles)
    assert "Movie." not in text and str(library) not in text


def test_rescan_picks_up_added_and_removed_sidecars(library: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    lib = Library([library], cache_file=cache)
    lib.scan()
    [before] = lib.items()
    (library / "Films" / "Movie.de.srt").write_text(SRT)
    (library / "Films" / "Movie.en.srt").unlink()
    lib.scan()  # the probe comes from the cache; sidecars never do
    [after] = lib.items()
    assert sorted(x.language or "" for x in after.sidecars) == ["de", "en", "fr"]
    assert "Films/Movie.en.srt" not in {x.path for x in after.sidecars}
    # Ids of the sidecars that stayed do not move when others come and go.
    ids_before = {x.path: x.id for x in before.sidecars}
    ids_after = {x.path: x.id for x in after.sidecars}
    kept = {path for path, i in ids_before.items() if ids_after.get(path) == i}
    assert kept == {"Films/Movie.en.sdh.vtt", "Films/Movie.fr.forced.srt"}


def test_huge_broken_and_escaping_sidecars_are_skipped(
    library: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    films = library / "Films"
    with open(films / "Movie.ja.srt", "wb") as f:  # sparse: costs no disk
        f.truncate(SIDECAR_MAX_BYTES + 1)
    (films / "Movie.it.srt").symlink_to(tmp_path / "nowhere.srt")
    outside = tmp_path / "secret.srt"
    outside.write_text(SRT)
    (films / "Movie.es.srt").symlink_to(outside)
    (films / "Movie.ko.srt").mkdir()
    (films / ".Movie.nl.srt").write_text(SRT)  # hidden files are not scanned
    with caplog.at_level(logging.WARNING, logger="hlstrio.media"):
        item = scan(library)
    assert sorted(x.language or "" for x in item.sidecars) == ["en", "en", "fr"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("Movie.ja.srt" in m and "limit" in m for m in messages)
    assert any("Movie.it.srt" in m and "broken" in m for m in messages)
    assert any("Movie.es.srt" in m and "outside" in m for m in messages)
    assert not any("Movie.ko.srt" in m or "nl.srt" in m for m in messages)


def test_verify_sidecar(library: Path, tmp_path: Path) -> None:
    lib = Library([library])
    lib.scan()
    [item] = lib.items()
    en = next(x for x in item.sidecars if x.path == "Films/Movie.en.srt")
    assert lib.verify_sidecar(item, en) == (library / en.path).resolve()
    target = library / en.path
    with open(target, "ab") as f:
        f.truncate(SIDECAR_MAX_BYTES + 1)
    with pytest.raises(MediaGone, match="larger"):
        lib.verify_sidecar(item, en)
    outside = tmp_path / "outside.srt"
    outside.write_text(SRT)
    os.unlink(target)
    target.symlink_to(outside)
    with pytest.raises(MediaGone, match="outside"):
        lib.verify_sidecar(item, en)
    os.unlink(target)
    with pytest.raises(MediaGone, match="no longer exists"):
        lib.verify_sidecar(item, en)
