"""One playback session: a task under its own cancel scope, and the segment path.

Everything a session starts (encoder runs, in-process cuts, idle watchdog) runs in the
session's own nursery, inside the scope the registry holds; cancelling that scope is the one
way a session ends, and its `finally` is the one place that cleans up (ffmpeg killed by its
runner, temp dir removed, registry entry dropped).

A session serves renditions (`_decision.Plan`): the video, one per audio choice, all on one
timeline. A segment request names a rendition and an index; in-process renditions are cut on
demand in a worker thread (`_remux.renditions`), encoded video comes from the `Transcoder`.

Its state lives in one `SessionLifecycle` (`_lifecycle.py`: one enum, one transition table),
where the player is in one `Playhead`. Two lifetimes: `idle_timeout` without a request stops
the encoder and drops cut segments (state IDLE); the next request restarts it where asked.
`session_ttl` without a request ends the session itself.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import trio

from ..media import MediaItem
from ._context import StreamingContext
from ._decision import Capabilities, Plan
from ._encoder import EncodeJob
from ._errors import (
    CutError,
    CutFailed,
    EncoderGaveUp,
    MediaRemoved,
    SegmentNotFound,
    SegmentNotReady,
    SessionEnded,
)
from ._lifecycle import SessionEvent, SessionLifecycle, SessionState
from ._playlist import INIT_SEGMENT_URI, VIDEO_RENDITION, media_playlist, session_master
from ._policy import Playhead
from ._remux import INIT_INDEX, RenditionCut, SessionSource
from ._timeline import Timeline, fixed_grid, keyframe_timeline
from ._transcode import Transcoder
from ._trickplay import (
    IFrameList,
    KeyframeSizes,
    cut_iframe_fmp4,
    cut_iframe_ts,
    iframe_playlist,
    iframe_stream_inf,
    iframes_for,
    thumbnail_count,
    thumbnail_jpeg,
    thumbnail_key,
    thumbnail_keyframe,
    thumbnails_vtt,
)

log = logging.getLogger("hlstrio.session")

T = TypeVar("T")

# Session temp dirs carry this prefix and a marker file naming the owning server process, so
# a restarted server removes its predecessor's leftovers and never touches anyone else's.
SESSION_DIR_PREFIX = "hlstrio-session-"
# What a TS muxer may repeat before each keyframe (SPS/PPS, VPS for HEVC): a generous bound
# for the I-frame playlist's BANDWIDTH.
_PARAMETER_SET_BYTES = 256
MARKER_FILE = ".hlstrio-session"


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What a client asked for; equal params from the same user reuse the session."""

    media_id: str
    start: float
    mode: str
    audio: int | str | None  # default audio track: stream index or language
    capabilities: Capabilities
    subtitle: int | str | None = None  # stream index, sidecar id or language; None: the file's


def build_timeline(item: MediaItem, plan: Plan, segment_seconds: float) -> Timeline:
    """Keyframe cuts when the video is copied, else the fixed grid an encoder is forced to."""
    info = item.info
    if plan.video is not None and plan.video.action == "copy":
        assert info.video_time_base is not None and info.video_end_pts is not None
        return keyframe_timeline(
            info.keyframe_pts, info.video_time_base, info.video_end_pts, segment_seconds
        )
    frame = 1.0 / info.video.fps if info.video is not None and info.video.fps > 0 else 0.0
    return fixed_grid(info.duration, segment_seconds, frame, origin=info.start_time)


class Session:
    def __init__(
        self,
        context: StreamingContext,
        *,
        session_id: str,
        user: str,
        item: MediaItem,
        source: SessionSource,
        params: SessionParams,
        plan: Plan,
        on_end: Callable[[Session], None],
    ) -> None:
        self.id = session_id
        self.user = user
        self.item = item
        self.params = params
        self.plan = plan
        self._context = context
        self._settings = context.settings
        self._source = source  # the files, as the library just verified them
        self._on_end = on_end
        self.timeline = build_timeline(item, plan, self._settings.segment_seconds)
        origin = self.timeline[0].start
        self.start_index = self.timeline.index_at(origin + params.start) if params.start else 0
        self._cuts = context.make_cuts(source, plan, self.timeline)
        self._iframes = self._iframe_list()
        iframe_stream = None
        if self._iframes is not None and plan.video is not None:
            iframe_stream = iframe_stream_inf(
                self._iframes,
                codec=plan.video.codec_string,
                width=plan.video.width,
                height=plan.video.height,
                video_range=plan.video.dynamic_range if plan.video.dynamic_range != "SDR" else None,
            )
        self.master_text = session_master(item.info, plan, self.timeline, iframe_stream)
        start_offset = params.start or None
        # Every rendition's playlist lists the same segments (one timeline): only the URI
        # extension differs. Encoded video (no in-process cut) is MPEG-TS from the encoder.
        self._extensions = {rendition: cut.extension for rendition, cut in self._cuts.items()}
        if plan.video is not None and plan.video.action == "encode":
            self._extensions[VIDEO_RENDITION] = "ts"
        # fMP4 renditions (RFC 8216 4.3.2.5 EXT-X-MAP, version 7) name their init segment.
        self._inits = {r for r, cut in self._cuts.items() if cut.has_init}
        self._media_texts = {
            rendition: media_playlist(
                self.timeline,
                start_offset,
                extension=extension,
                init_uri=INIT_SEGMENT_URI if rendition in self._inits else None,
                version=7 if rendition in self._inits else 3,
            )
            for rendition, extension in self._extensions.items()
        }
        self._moves_playhead = {r for r, c in self._cuts.items() if c.kind != "subtitles"}
        self._moves_playhead.add(VIDEO_RENDITION)
        self._job = self._encode_job()
        # What was asked of the picture and this ffmpeg cannot do (tone mapping without
        # zscale): said in the reason, not silently skipped.
        notes = self._job.notes if self._job is not None else ()
        self.reason = "; ".join([plan.reason, *notes])
        # Created now, not in run(), so the registry holds the scope from the first moment.
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        initial = SessionState.STARTING if plan.transcodes else SessionState.RUNNING
        self.lifecycle = SessionLifecycle(initial)
        self.playhead = Playhead(self.start_index, self.start_index)
        self.created_at = time.time()
        self.last_access = self.created_at
        self._last_touch = trio.current_time()
        self._gone_at = 0.0  # when the media left the library (state GONE)
        self._watchdog_wakeup = trio.Event()
        self.temp_dir: Path | None = None
        self.transcoder: Transcoder | None = None
        self._nursery: trio.Nursery | None = None
        self._waiters: dict[tuple[str, int], trio.Event] = {}
        self._waiting: Counter[tuple[str, int]] = Counter()  # requests waiting, per segment
        # In-process cuts that failed: their errors (the bytes of good ones go to the cache).
        self._cut_errors: dict[tuple[str, int], str] = {}

    # -- registry protocol ----------------------------------------------------------------
    @property
    def media_id(self) -> str:
        return self.item.id

    @property
    def transcodes(self) -> bool:
        return self.plan.transcodes

    @property
    def state(self) -> str:
        return self.lifecycle.state.value

    @property
    def master_url(self) -> str:
        return f"/hls/{self.id}/master.m3u8"

    @property
    def encoder_state(self) -> str | None:
        """ "running" | "paused" | "stopped"; None without an encoder (no video encode)."""
        if not self.plan.transcodes:
            return None
        return "stopped" if self.transcoder is None else self.transcoder.encoder_state

    @property
    def position(self) -> float:
        """Start (s from the beginning) of the segment last requested: where the player is."""
        return self.timeline[self.playhead.position].start - self.timeline[0].start

    def segment_extension(self, rendition: str) -> str | None:
        """The URI extension of a rendition's segments; None if there is no such rendition."""
        return self._extensions.get(rendition)

    def touch(self) -> None:
        self.last_access = time.time()
        self._last_touch = trio.current_time()
        self.lifecycle.handle(SessionEvent.REQUEST)

    def to_json(self) -> dict[str, object]:
        plan = self.plan
        default_audio = plan.default_audio
        return {
            "id": self.id,
            "media_id": self.item.id,
            "mode": plan.mode,
            "container": plan.container,
            "duration": round(self.timeline.duration, 3),
            "master_url": self.master_url,
            "state": self.state,
            "created_at": _iso(self.created_at),
            "last_access": _iso(self.last_access),
            "start": self.params.start,
            "position": round(self.position, 3),
            "encoder": self.encoder_state,
            "waiting": sum(self._waiting.values()),
            "audio": default_audio.stream_index if default_audio is not None else None,
            "video_action": plan.video.action if plan.video is not None else None,
            "audio_action": default_audio.action if default_audio is not None else None,
            "reason": self.reason,
            "renditions": self._renditions_json(),
        }

    def _renditions_json(self) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        video = self.plan.video
        if video is not None:
            items.append(
                {
                    "id": VIDEO_RENDITION,
                    "type": "video",
                    "stream": video.stream_index,
                    "action": video.action,
                    "codec": video.codec_string,
                    "width": video.width,
                    "height": video.height,
                    "reason": video.reason,
                }
            )
        for audio in self.plan.audio:
            items.append(
                {
                    "id": audio.rendition,
                    "type": "audio",
                    "stream": audio.stream_index,
                    "action": audio.action,
                    "codec": audio.codec_string,
                    "channels": audio.channels,
                    "group": audio.group,
                    "name": audio.name,
                    "language": audio.language,
                    "default": audio.default,
                    "reason": audio.reason,
                }
            )
        for subtitle in self.plan.subtitles:
            items.append(
                {
                    "id": subtitle.rendition,
                    "type": "subtitles",
                    "stream": subtitle.stream_index,
                    "action": "convert",
                    "codec": "wvtt",
                    "group": "subs",
                    "name": subtitle.name,
                    "language": subtitle.language,
                    "default": subtitle.default,
                    "forced": subtitle.forced,
                    "reason": f"{subtitle.codec} as segmented WebVTT",
                }
            )
        return items

    # -- lifetime ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        label = f"session {self.id[:8]}"
        try:
            with self.scope:
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        if self.plan.transcodes:
                            # Shielded: a session cancelled while the thread makes its dir
                            # (a shutdown right after the create) must still know the dir,
                            # or the cleanup below would leave it behind.
                            with trio.CancelScope(shield=True):
                                temp_dir = await self._context.run_blocking(self._make_temp_dir)
                                self.temp_dir = temp_dir
                            self.transcoder = self._new_transcoder(label, nursery, temp_dir)
                            self.transcoder.start(self.start_index)
                        nursery.start_soon(self._watchdog)
                        task_status.started()
                        log.info("%s: %s of %s", label, self.plan.mode, self.item.path)
                        await trio.sleep_forever()
                except Exception:
                    # A bug in one session must not take the manager (and every session) down.
                    log.exception("%s: crashed", label)
        finally:
            self.lifecycle.handle(SessionEvent.CLOSE)
            self.wake_waiters()
            with trio.CancelScope(shield=True):
                self._context.cache.drop_owner(self.id)
                if self.transcoder is not None:
                    self.transcoder.close()
                if self.temp_dir is not None:
                    temp_dir = self.temp_dir
                    await self._context.run_blocking(
                        lambda: shutil.rmtree(temp_dir, ignore_errors=True)
                    )
                self._on_end(self)
                self.finished.set()
                log.info("%s: ended", label)

    def close(self) -> None:
        """End the session (idempotent); `finished` is set once cleanup is done."""
        self.scope.cancel()

    def media_removed(self, reason: str) -> None:
        """The file left the library: free the encoder and cached cuts now; the next request
        hears why (410) and ends the session, or, if none comes, it ends idle_timeout later."""
        self.lifecycle.handle(SessionEvent.MEDIA_REMOVED, reason)
        self._gone_at = trio.current_time()
        self._watchdog_wakeup.set()  # it now ends the session idle_timeout from here
        if self.transcoder is not None:
            self.transcoder.stop()
        self._context.cache.drop_owner(self.id)
        self.wake_waiters()

    def _encode_job(self) -> EncodeJob | None:
        """What the encoder makes, if the video is encoded (pure: built once, in __init__)."""
        video = self.plan.video
        if video is None or video.action != "encode":
            return None
        assert video.bitrate is not None
        return EncodeJob(
            source=self._source.media,
            video_index=video.stream_index,
            timeline=self.timeline,
            source_start=self.item.info.start_time,
            width=video.width,
            height=video.height,
            bitrate=video.bitrate,
            segment_seconds=self._settings.segment_seconds,
            burn_subtitle=video.burn_subtitle,
            deinterlace=video.deinterlace,
            tonemap=video.tonemap,
            source_video=self.item.info.video,
            filters=self._context.filters,
        )

    def _new_transcoder(self, label: str, nursery: trio.Nursery, temp_dir: Path) -> Transcoder:
        assert self._job is not None
        return Transcoder(
            self._context,
            self._job,
            label=label,
            owner=self.id,
            temp_dir=temp_dir,
            nursery=nursery,
            playhead=self.playhead,
            events=self,
        )

    def _make_temp_dir(self) -> Path:
        parent = self._settings.temp_dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{SESSION_DIR_PREFIX}{self.id[:12]}-", dir=parent))
        marker = {"pid": os.getpid(), "session": self.id[:12], "created": self.created_at}
        (path / MARKER_FILE).write_text(json.dumps(marker))
        return path

    async def _watchdog(self) -> None:
        """Stop the encoder after `idle_timeout`, end the session after `session_ttl`."""
        idle, ttl = self._settings.idle_timeout, self._settings.session_ttl
        while True:
            now = trio.current_time()
            if self._waiting:
                # A request waiting for a segment is a player that is still there.
                self._last_touch = now
            if now >= self._last_touch + ttl:
                log.info("session %s: no request for %.0f s, ending", self.id[:8], ttl)
                self.close()
                return
            gone = self.lifecycle.state is SessionState.GONE
            if gone and now >= max(self._last_touch, self._gone_at) + idle:
                # Its file left the library and nobody came to hear why: end it (disk freed).
                log.info("session %s: media gone, nobody asked, ending", self.id[:8])
                self.close()
                return
            idle_now = self.lifecycle.state is SessionState.IDLE
            if not idle_now and now >= self._last_touch + idle:
                before = self.lifecycle.state
                self.lifecycle.handle(SessionEvent.IDLE_TIMEOUT)
                idle_now = True
                if before in (SessionState.STARTING, SessionState.RUNNING):
                    if self.transcoder is not None:
                        log.info("session %s: idle, stopping the encoder", self.id[:8])
                        self.transcoder.stop()
                    self._context.cache.drop_owner(self.id)
            deadline = self._last_touch + (ttl if idle_now else min(idle, ttl))
            if gone:
                deadline = max(self._last_touch, self._gone_at) + idle
            if self._waiting:
                deadline = min(deadline, now + min(idle, 1.0))
            with trio.move_on_at(deadline):
                await self._watchdog_wakeup.wait()
            if self._watchdog_wakeup.is_set():
                self._watchdog_wakeup = trio.Event()

    # -- TranscoderEvents ---------------------------------------------------------------------
    def segment_ready(self, index: int) -> None:
        self.lifecycle.handle(SessionEvent.SEGMENT_READY)
        waiter = self._waiters.pop((VIDEO_RENDITION, index), None)
        if waiter is not None:
            waiter.set()

    def encoder_failed(self, message: str) -> None:
        self.lifecycle.handle(SessionEvent.ENCODER_FAILED, message)
        self.wake_waiters()

    def wake_waiters(self) -> None:
        for waiter in self._waiters.values():
            waiter.set()
        self._waiters.clear()

    # -- the segment path ---------------------------------------------------------------------
    async def segment(self, rendition: str, index: int) -> bytes:
        """The bytes of a segment, waiting up to `segment_wait` for them to exist."""
        return await self._wait_for(rendition, index, self._try_segment)

    async def segment_path(self, rendition: str, index: int) -> Path | None:
        """The on-disk file of an encoded video segment (for X-Accel-Redirect), waiting like
        `segment`; None for in-process renditions, whose segments exist only in memory."""
        self._check_rendition(rendition, index)
        if rendition != VIDEO_RENDITION or not self.plan.transcodes:
            return None
        return await self._wait_for(rendition, index, self._try_path)

    def _check_rendition(self, rendition: str, index: int) -> None:
        if rendition not in self._media_texts:
            raise SegmentNotFound(f"no rendition {rendition!r} in this session")
        if index == INIT_INDEX and rendition in self._inits:
            return
        if not 0 <= index < len(self.timeline):
            raise SegmentNotFound(f"segment {index} is not in the playlist")

    async def init_segment(self, rendition: str) -> bytes:
        """The fMP4 init segment (init.mp4) of a rendition, made once and cached."""
        if rendition not in self._inits:
            raise SegmentNotFound(f"rendition {rendition!r} has no init segment")
        return await self._wait_for(rendition, INIT_INDEX, self._try_segment)

    async def _wait_for(
        self, rendition: str, index: int, attempt: Callable[[str, int], Awaitable[T | None]]
    ) -> T:
        self._check_rendition(rendition, index)
        self._check_usable()
        self.touch()
        if rendition in self._moves_playhead and index >= 0:  # subtitles: fetched ahead/behind
            self.playhead.request(index)
        key = (rendition, index)
        with trio.move_on_after(self._settings.segment_wait):
            while True:
                self._check_usable()
                result = await attempt(rendition, index)
                if result is not None:
                    self.touch()
                    self._read_ahead(rendition, index)
                    return result
                waiter = self._waiters.get(key)
                if waiter is None:
                    waiter = self._waiters[key] = trio.Event()
                    cut = self._cuts.get(rendition)
                    if cut is not None:
                        assert self._nursery is not None
                        self._nursery.start_soon(self._cut, cut, key, waiter)
                self._waiting[key] += 1
                try:
                    await waiter.wait()
                finally:
                    self._leave(key, waiter)
        self._check_usable()
        retry = max(1, round(self.timeline[max(index, 0)].duration))
        raise SegmentNotReady(f"segment {index} is not ready yet", retry)

    def _read_ahead(self, rendition: str, index: int) -> None:
        """After serving segment `index` of a rendition that is slow to cut (`read_ahead`: audio
        encoded in-process), start cutting the next one, so the player's request for it finds
        it made instead of waiting for the encode. It goes to the cache like any cut; a request
        that comes while it runs waits on it. After a seek, at most one cut was wasted."""
        cut = self._cuts.get(rendition)
        key = (rendition, index + 1)
        if (
            cut is None
            or not cut.read_ahead
            or index < 0
            or index + 1 >= len(self.timeline)
            or key in self._waiters  # being cut already
            or key in self._cut_errors
            or self._context.cache.get(self.id, key) is not None
            or self._nursery is None
            or self.scope.cancel_called
        ):
            return
        waiter = self._waiters[key] = trio.Event()
        self._nursery.start_soon(self._cut, cut, key, waiter)

    def _leave(self, key: tuple[str, int], waiter: trio.Event) -> None:
        """A request stops waiting (answered, timed out or its client gone): the last one out
        drops the event, so nothing is left behind for a request that no longer exists."""
        self._waiting[key] -= 1
        if self._waiting[key] <= 0:
            del self._waiting[key]
            if self._waiters.get(key) is waiter:
                del self._waiters[key]

    def _check_usable(self) -> None:
        state = self.lifecycle.state
        # Cancelled but not yet cleaned up (its nursery takes no new cuts): ended already.
        if state is SessionState.ENDED or self.scope.cancel_called:
            raise SessionEnded("the session has ended")
        if state is SessionState.FAILED:
            raise EncoderGaveUp(f"the encoder failed: {self.lifecycle.failure}")
        if state is SessionState.GONE:
            # Said once, then the session ends: its id is no use any more.
            self.close()
            raise MediaRemoved(f"the media is gone: {self.lifecycle.failure}")

    async def _try_path(self, rendition: str, index: int) -> Path | None:
        if self.transcoder is None:
            return None  # the encoder is not set up yet (the session is starting)
        return self.transcoder.request(index)

    async def _try_segment(self, rendition: str, index: int) -> bytes | None:
        if rendition not in self._cuts:  # encoded video: a file the encoder wrote
            path = await self._try_path(rendition, index)
            if path is None:
                return None
            try:
                return await self._context.run_blocking(path.read_bytes)
            except FileNotFoundError:
                # Pruned between the check and the read: the next round re-makes it.
                if self.transcoder is not None:
                    self.transcoder.prune(index)
                return None
        key = (rendition, index)
        data = self._context.cache.get(self.id, key)
        if data is not None:
            return data
        error = self._cut_errors.pop(key, None)
        if error is not None:
            raise CutFailed(error)
        return None

    async def _cut(self, cut: RenditionCut, key: tuple[str, int], done: trio.Event) -> None:
        try:
            data = await self._context.run_blocking(
                partial(cut.cut, key[1]), limiter=self._context.cut_limiter
            )
        except CutError as exc:
            log.error("session %s: %s segment %d: %s", self.id[:8], key[0], key[1], exc)
            self._cut_errors[key] = str(exc)
        except Exception:
            # A bug in one cut answers that request with an error; the session plays on.
            log.exception("session %s: %s segment %d", self.id[:8], key[0], key[1])
            self._cut_errors[key] = "internal error while cutting this segment"
        else:
            self._context.cache.put(self.id, key, data)
        finally:
            if self._waiters.get(key) is done:
                del self._waiters[key]
            done.set()

    # -- trick play (_trickplay) --------------------------------------------------------------
    def _iframe_list(self) -> IFrameList | None:
        """I-frames of copied video only: an encoder's keyframes are not known in advance."""
        info = self.item.info
        if self.plan.video is None or self.plan.video.action != "copy":
            return None
        sizes = None
        if len(info.keyframe_bytes) == len(info.keyframe_pts):
            # SPS/PPS that a TS muxer may repeat before each keyframe: a generous bound.
            sizes = KeyframeSizes(info.keyframe_bytes, _PARAMETER_SET_BYTES, exact=False)
        return iframes_for(info, sizes, self.plan.container)

    def iframe_playlist(self) -> str:
        if self._iframes is None:
            raise SegmentNotFound("this session has no I-frame playlist (its video is encoded)")
        self._check_usable()
        self.touch()
        if self.plan.container == "fmp4":
            return iframe_playlist(self._iframes, extension="m4s", init_uri=INIT_SEGMENT_URI)
        return iframe_playlist(self._iframes)

    def thumbnails_track(self) -> str:
        """The WebVTT thumbnails track (one `thumb-N.jpg` every THUMB_SECONDS)."""
        if self.item.info.video is None:
            raise SegmentNotFound("an audio-only session has no thumbnails")
        self._check_usable()
        return thumbnails_vtt(self.timeline.duration)

    async def iframe(self, index: int, extension: str) -> bytes:
        """`iframe-K.ts|m4s`: one keyframe of the copied video, cut on demand."""
        frames, video = self._iframes, self.plan.video
        extension_here = "m4s" if self.plan.container == "fmp4" else "ts"
        if frames is None or video is None or not 0 <= index < len(frames):
            raise SegmentNotFound(f"no I-frame {index} in this session")
        if extension != extension_here:
            raise SegmentNotFound(f"I-frames of this session are .{extension_here}")
        frame, path, stream = frames[index], self._source.media, video.stream_index
        if self.plan.container == "fmp4":
            init = await self.init_segment(VIDEO_RENDITION)
            make = partial(cut_iframe_fmp4, path, stream, frame, init)
        else:
            make = partial(cut_iframe_ts, path, stream, frame)
        return await self._trick_resource(("iframe", index), make)

    async def thumbnail(self, index: int) -> bytes:
        """`thumb-N.jpg`: the keyframe at or before N x THUMB_SECONDS, decoded on demand."""
        info = self.item.info
        video = info.video
        if video is None or info.video_time_base is None:
            raise SegmentNotFound("an audio-only session has no thumbnails")
        if not 0 <= index < thumbnail_count(self.timeline.duration):
            raise SegmentNotFound(f"no thumbnail {index} in this session")
        pts = thumbnail_keyframe(info.keyframe_pts, info.video_time_base, index)
        make = partial(thumbnail_jpeg, self._source.media, video.index, pts)
        return await self._trick_resource(thumbnail_key(index), make)

    async def _trick_resource(self, key: tuple[str, int], make: Callable[[], bytes]) -> bytes:
        """Made once in a worker thread (under the cut limiter) and kept in the shared cache.
        Scrubbing never touches the player's position or keeps an encoder alive."""
        self._check_usable()
        data = self._context.cache.get(self.id, key)
        if data is None:
            try:
                data = await self._context.run_blocking(make, limiter=self._context.cut_limiter)
            except CutError as exc:
                raise CutFailed(str(exc)) from None
            self._context.cache.put(self.id, key, data)
        return data

    # -- playlists ----------------------------------------------------------------------------
    def master(self) -> str:
        self._check_usable()
        self.touch()
        return self.master_text

    def media(self, rendition: str = VIDEO_RENDITION) -> str:
        text = self._media_texts.get(rendition)
        if text is None:
            raise SegmentNotFound(f"no rendition {rendition!r} in this session")
        self._check_usable()
        self.touch()
        return text


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
