"""Finding the ffmpeg executable.

The imageio-ffmpeg wheel ships a static ffmpeg, so the server works on a machine without a
system install; a configured or system ffmpeg wins because it may have hardware encoders.
"""

from __future__ import annotations

import os
import shutil


class FfmpegNotFound(Exception):
    """No usable ffmpeg executable."""


def ffmpeg_exe(configured: str | None = None) -> str:
    """Path of the ffmpeg to run: `configured` if given, else ffmpeg on PATH, else the bundled one.

    A configured value that is not an executable file is an error, not a silent fallback:
    the operator asked for that binary.
    """
    if configured:
        found = shutil.which(configured)
        if found is None or not os.path.isfile(found):
            raise FfmpegNotFound(f"configured ffmpeg {configured!r} is not an executable file")
        return found
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise FfmpegNotFound(f"no ffmpeg on PATH and no bundled one: {exc}") from exc
    return str(exe)
