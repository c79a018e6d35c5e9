"""Poster frames: one JPEG per media file, grabbed by ffmpeg a little into the file.

Posters are cached on disk under a name made of the media id, the poster width and the file's
size and mtime, so a rewritten file gets a new poster and an unchanged one is never re-encoded.
Nothing here blocks the event loop: file system calls run in worker threads and ffmpeg runs as
a trio subprocess (killed if the request that wanted it is cancelled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

from ._library import MediaItem

log = logging.getLogger("hlstrio.media.poster")

POSTER_WIDTHS = (320, 480, 960)  # the widths clients may ask for (a small, bounded cache)
DEFAULT_POSTER_WIDTH = 480
POSTER_POSITION = 0.10  # fraction of the duration: past black openings and fade-ins
_FFMPEG_TIMEOUT = 30.0
_MAX_CONCURRENT_ENCODES = 2  # a library page asks for every poster at once


class PosterUnavailable(Exception):
    """No poster can be made for this file (no video stream, or ffmpeg failed on it)."""

    def __init__(self, message: str, *, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting  # False: worth another try later (e.g. a timeout under load)


@dataclass(frozen=True, slots=True)
class Poster:
    path: Path  # the cached JPEG
    etag: str  # strong validator: changes whenever the file or the width changes


def poster_time(duration: float) -> float:
    """Where to grab the frame: ~10% in, and always before the last frame."""
    if duration <= 0:
        return 0.0
    return max(0.0, min(duration * POSTER_POSITION, duration - 0.5))


def poster_argv(
    ffmpeg: str, source: Path, dest: Path, *, at: float, stream: int, width: int
) -> list[str]:
    return [
        ffmpeg,
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
        # Input seeking: jumps to the keyframe before `at`, then decodes only up to it.
        *("-ss", f"{at:.3f}", "-i", str(source)),
        *("-map", f"0:{stream}", "-frames:v", "1"),
        # Never upscale; x264-style even height keeps odd sources valid for mjpeg.
        *("-vf", f"scale='min({width},iw)':-2", "-q:v", "3"),
        *("-f", "image2", "-c:v", "mjpeg", str(dest)),
    ]


async def make_poster(
    ffmpeg: str, source: Path, dest: Path, *, at: float, stream: int, width: int
) -> None:
    """Write one JPEG frame of `source` to `dest`, atomically (readers never see half a file)."""
    tmp = await trio.to_thread.run_sync(_temp_file_beside, dest)
    try:
        try:
            with trio.fail_after(_FFMPEG_TIMEOUT):
                result = await trio.run_process(
                    poster_argv(ffmpeg, source, tmp, at=at, stream=stream, width=width),
                    capture_stderr=True,
                    check=False,
                )
        except trio.TooSlowError:
            raise PosterUnavailable(
                f"ffmpeg took over {_FFMPEG_TIMEOUT:.0f} s", lasting=False
            ) from None
        written = await trio.to_thread.run_sync(lambda: tmp.stat().st_size)
        if result.returncode != 0 or written == 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            raise PosterUnavailable(lines[-1] if lines else "ffmpeg wrote no frame")
        await trio.to_thread.run_sync(os.replace, tmp, dest)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_unlink_quietly, tmp)


def _temp_file_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".jpg")
    os.close(fd)
    return Path(name)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


class PosterCache:
    """Posters on disk under `directory`; concurrent requests for one poster share one ffmpeg."""

    def __init__(self, directory: Path, ffmpeg: str) -> None:
        self.directory = directory
        self._ffmpeg = ffmpeg
        self._limiter = trio.CapacityLimiter(_MAX_CONCURRENT_ENCODES)
        self._in_flight: dict[str, trio.Event] = {}
        self._failed: dict[str, str] = {}  # key -> reason; a broken file stays broken

    def key(self, item: MediaItem, source: Path, width: int) -> str:
        """Blocking (stats `source`): the cache key, also the file name and ETag."""
        st = source.stat()
        return f"{item.id}-w{width}-{st.st_size:x}-{st.st_mtime_ns:x}"

    async def get(self, item: MediaItem, source: Path, width: int) -> Poster:
        """The poster of `item` (read from the verified path `source`), made if not cached."""
        if item.info.video is None:
            raise PosterUnavailable("no video stream")
        if width not in POSTER_WIDTHS:
            raise ValueError(f"width must be one of {POSTER_WIDTHS}")
        key = await trio.to_thread.run_sync(self.key, item, source, width)
        path = self.directory / f"{key}.jpg"
        while True:
            if key in self._failed:
                raise PosterUnavailable(self._failed[key])
            if await trio.to_thread.run_sync(path.is_file):
                return Poster(path, f'"{key}"')
            running = self._in_flight.get(key)
            if running is None:
                break
            await running.wait()

        done = self._in_flight[key] = trio.Event()
        try:
            async with self._limiter:
                await make_poster(
                    self._ffmpeg,
                    source,
                    path,
                    at=poster_time(item.info.duration),
                    stream=item.info.video.index,
                    width=width,
                )
            await trio.to_thread.run_sync(self._drop_stale, item.id, width, path)
        except PosterUnavailable as exc:
            log.warning("no poster for %s: %s", item.path, exc)
            if exc.lasting:
                self._failed[key] = str(exc)
            raise
        finally:
            del self._in_flight[key]
            done.set()
        return Poster(path, f'"{key}"')

    def _drop_stale(self, media_id: str, width: int, keep: Path) -> None:
        """Remove this item's posters for older versions of the file (blocking)."""
        for old in self.directory.glob(f"{media_id}-w{width}-*.jpg"):
            if old != keep:
                with contextlib.suppress(OSError):
                    old.unlink()
