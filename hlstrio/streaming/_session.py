"""One playback session: a task under its own cancel scope, and the segment path.

Everything a session starts (encoder, remux cuts, idle watchdog) runs in the session's own
nursery, inside the scope the registry holds; cancelling that scope is the one way a session
ends, and its `finally` is the one place that cleans up (ffmpeg killed by its runner, temp dir
removed, registry entry dropped).

Two lifetimes: `idle_timeout` without a request stops only the encoder (CPU freed, state
"idle"); the next request restarts it where asked. `session_ttl` without a request ends the
session itself.
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
from pathlib import Path
from typing import Literal, TypeVar

import trio

from .._config import Settings
from .._metrics import Metrics
from .._reaper import Reaper
from ..media import MediaItem
from ._cache import SegmentCache
from ._decision import (
    ENCODED_AUDIO_BITRATE,
    ENCODED_AUDIO_CODEC,
    ENCODED_VIDEO_CODEC,
    Capabilities,
    Plan,
    choose_audio,
)
from ._disk import DiskBudget
from ._playlist import Variant, master_playlist, media_playlist
from ._remux import CutError, cut_segment
from ._timeline import Timeline, fixed_grid, keyframe_timeline
from ._transcode import SegmentMissing, Transcoder

log = logging.getLogger("hlstrio.session")

State = Literal["starting", "running", "idle", "failed"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What a client asked for; equal params from the same user reuse the session."""

    media_id: str
    start: float
    mode: str
    audio: int | None
    capabilities: Capabilities


class SegmentError(Exception):
    """A segment request that cannot be answered with bytes: HTTP status + JSON error."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


def build_timeline(item: MediaItem, plan: Plan, segment_seconds: float) -> Timeline:
    """Keyframe cuts when video is copied (remux or copy-transcode), else the fixed grid."""
    info = item.info
    if plan.video == "copy":
        assert info.video_time_base is not None and info.video_end_pts is not None
        return keyframe_timeline(
            info.keyframe_pts, info.video_time_base, info.video_end_pts, segment_seconds
        )
    frame = 1.0 / info.video.fps if info.video is not None and info.video.fps > 0 else 0.0
    return fixed_grid(info.duration, segment_seconds, frame)


def _ts_bits(payload_bytes: float, packets: float) -> float:
    """MPEG-TS size of elementary-stream bytes: 4 of every 188 bytes are header, and each
    frame's PES header and last-packet stuffing cost ~150 bytes (measured on PyAV's muxer)."""
    return (payload_bytes * 188 / 184 + packets * 150) * 8


def build_variant(item: MediaItem, plan: Plan, timeline: Timeline) -> Variant:
    """BANDWIDTH is the peak segment bitrate as sent (TS overhead included), as RFC 8216 asks;
    for copied video it comes from the source's real GOP sizes, for encoded video from the
    encoder's maxrate."""
    info = item.info
    audio = choose_audio(info, plan.audio_index) if plan.audio is not None else None
    codecs: list[str] = []
    if plan.video == "copy" and info.video is not None and info.video.hls_codec:
        codecs.append(info.video.hls_codec)
    elif plan.video == "encode":
        codecs.append(ENCODED_VIDEO_CODEC)
    if plan.audio == "copy" and audio is not None and audio.hls_codec:
        codecs.append(audio.hls_codec)
    elif plan.audio == "encode":
        codecs.append(ENCODED_AUDIO_CODEC)

    audio_bits = 0.0
    if audio is not None and plan.audio is not None:
        rate = ENCODED_AUDIO_BITRATE if plan.audio == "encode" else audio.bit_rate or 192_000
        frames = (audio.sample_rate or 48_000) / 1024
        audio_bits = _ts_bits(rate / 8, frames)
    fps = info.video.fps if info.video is not None and info.video.fps > 0 else 30.0
    if plan.video == "encode":
        peak = _ts_bits((plan.video_bitrate or 0) / 8, fps) + audio_bits
        average = peak * 0.75
    elif plan.video == "copy" and info.video_time_base is not None:
        # Sum GOP sizes into the timeline's segments; the densest segment sets BANDWIDTH.
        per_segment = [0] * len(timeline)
        cursor = 0
        for pts, size in zip(info.keyframe_pts, info.gop_bytes, strict=True):
            while cursor + 1 < len(timeline) and pts >= (timeline[cursor + 1].start_pts or 0):
                cursor += 1
            per_segment[cursor] += size
        rates = [
            _ts_bits(size / seg.duration, fps) + audio_bits
            for size, seg in zip(per_segment, timeline.segments, strict=True)
            if seg.duration > 0
        ]
        peak = max(rates, default=audio_bits)
        average = _ts_bits(sum(info.gop_bytes) / max(timeline.duration, 0.1), fps) + audio_bits
    else:
        peak = average = audio_bits
    return Variant(
        bandwidth=int(peak * 1.03) + 1000,  # PAT/PMT per segment and rounding
        average_bandwidth=int(min(average, peak)),
        codecs=tuple(codecs),
        width=plan.width,
        height=plan.height,
        frame_rate=info.video.fps if info.video is not None and info.video.fps > 0 else None,
    )


# Session temp dirs carry this prefix and a marker file naming the owning server process, so
# a restarted server removes its predecessor's leftovers and never touches anyone else's.
SESSION_DIR_PREFIX = "hlstrio-session-"
MARKER_FILE = ".hlstrio-session"


class Session:
    def __init__(
        self,
        *,
        session_id: str,
        user: str,
        item: MediaItem,
        params: SessionParams,
        plan: Plan,
        settings: Settings,
        ffmpeg: str,
        on_end: Callable[[Session], None],
        disk: DiskBudget | None = None,
        reaper: Reaper | None = None,
        on_disk_change: Callable[[], None] | None = None,
        cache: SegmentCache | None = None,
        cut_limiter: trio.CapacityLimiter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = session_id
        self.user = user
        self.item = item
        self.params = params
        self.plan = plan
        self._settings = settings
        self._ffmpeg = ffmpeg
        self._on_end = on_end
        self._disk = DiskBudget(0) if disk is None else disk
        self._reaper = reaper
        self._on_disk_change = on_disk_change or (lambda: None)
        # `is None`, not `or`: an empty cache is falsy (it has a length).
        self._cache = SegmentCache(settings.remux_cache_bytes) if cache is None else cache
        self._metrics = metrics
        # Cuts hold the GIL: more threads than cores only slow each other down.
        self._cut_limiter = trio.CapacityLimiter(2) if cut_limiter is None else cut_limiter
        self.timeline = build_timeline(item, plan, settings.segment_seconds)
        self.variant = build_variant(item, plan, self.timeline)
        self.start_index = self.timeline.index_at(params.start) if params.start else 0
        self.master_text = master_playlist(self.variant)
        self.media_text = media_playlist(self.timeline, params.start or None)
        # Created now, not in run(), so the registry holds the scope from the first moment.
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.state: State = "running" if plan.mode == "remux" else "starting"
        self.failure: str | None = None
        self.created_at = time.time()
        self.last_access = self.created_at
        self._last_touch = trio.current_time()
        self._idle = False
        self.temp_dir: Path | None = None
        self.transcoder: Transcoder | None = None
        self._closed = False
        self._nursery: trio.Nursery | None = None
        self._waiters: dict[int, trio.Event] = {}
        self._waiting: Counter[int] = Counter()  # requests waiting, per segment
        self._position = self.start_index  # last segment requested
        # remux: errors of cuts that failed (the bytes of good ones go to the shared cache)
        self._cut_errors: dict[int, str] = {}

    # -- registry protocol ----------------------------------------------------------------
    @property
    def media_id(self) -> str:
        return self.item.id

    @property
    def transcodes(self) -> bool:
        return self.plan.transcodes

    @property
    def master_url(self) -> str:
        return f"/hls/{self.id}/master.m3u8"

    @property
    def encoder_state(self) -> str | None:
        """ "running" | "paused" | "stopped"; None for a remux (it has no encoder)."""
        if self.transcoder is None:
            return "stopped" if self.plan.transcodes else None
        return self.transcoder.encoder_state

    @property
    def position(self) -> float:
        """Start (s) of the segment last requested: where the player is."""
        return self.timeline[self._position].start

    def touch(self) -> None:
        self.last_access = time.time()
        self._last_touch = trio.current_time()
        if self._idle:
            self._idle = False
            if self.state == "idle":
                self.state = "running"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "media_id": self.item.id,
            "mode": self.plan.mode,
            "duration": round(self.timeline.duration, 3),
            "master_url": self.master_url,
            "state": self.state,
            "created_at": _iso(self.created_at),
            "last_access": _iso(self.last_access),
            "start": self.params.start,
            "position": round(self.position, 3),
            "encoder": self.encoder_state,
            "waiting": sum(self._waiting.values()),
            "audio": self.plan.audio_index,
            "video_action": self.plan.video,
            "audio_action": self.plan.audio,
            "reason": self.plan.reason,
        }

    # -- lifetime ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        label = f"session {self.id[:8]}"
        try:
            with self.scope:
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        if self.plan.transcodes:
                            self.temp_dir = await trio.to_thread.run_sync(self._make_temp_dir)
                            self.transcoder = self._new_transcoder(label, nursery, self.temp_dir)
                            self.transcoder.start(self.start_index)
                        nursery.start_soon(self._watchdog)
                        task_status.started()
                        log.info("%s: %s of %s", label, self.plan.mode, self.item.path)
                        await trio.sleep_forever()
                except Exception:
                    # A bug in one session must not take the manager (and every session) down.
                    log.exception("%s: crashed", label)
        finally:
            self._closed = True
            self._wake_all()
            with trio.CancelScope(shield=True):
                self._cache.drop_owner(self.id)
                if self.transcoder is not None:
                    self.transcoder.close()
                if self.temp_dir is not None:
                    temp_dir = self.temp_dir
                    await trio.to_thread.run_sync(
                        lambda: shutil.rmtree(temp_dir, ignore_errors=True)
                    )
                self._on_end(self)
                self.finished.set()
                log.info("%s: ended", label)

    def close(self) -> None:
        """End the session (idempotent); `finished` is set once cleanup is done."""
        self.scope.cancel()

    def _new_transcoder(self, label: str, nursery: trio.Nursery, temp_dir: Path) -> Transcoder:
        return Transcoder(
            label=label,
            owner=self.id,
            item=self.item,
            plan=self.plan,
            timeline=self.timeline,
            settings=self._settings,
            ffmpeg=self._ffmpeg,
            temp_dir=temp_dir,
            nursery=nursery,
            disk=self._disk,
            reaper=self._reaper,
            on_ready=self._segment_ready,
            wake_all=self._wake_all,
            on_failed=self._failed,
            on_disk_change=self._on_disk_change,
            start_index=self.start_index,
            metrics=self._metrics,
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
            if not self._idle and now >= self._last_touch + idle:
                self._idle = True
                if self.state == "running":
                    self.state = "idle"
                if self.transcoder is not None:
                    log.info("session %s: idle, stopping the encoder", self.id[:8])
                    self.transcoder.stop()
                self._cache.drop_owner(self.id)
            deadline = self._last_touch + (ttl if self._idle else min(idle, ttl))
            if self._waiting:
                deadline = min(deadline, now + min(idle, 1.0))
            await trio.sleep_until(deadline)

    def _segment_ready(self, index: int) -> None:
        if self.state == "starting":
            self.state = "running"
        waiter = self._waiters.pop(index, None)
        if waiter is not None:
            waiter.set()

    def _failed(self, message: str) -> None:
        self.state = "failed"
        self.failure = message
        self._wake_all()

    def _wake_all(self) -> None:
        for waiter in self._waiters.values():
            waiter.set()
        self._waiters.clear()

    # -- the segment path ---------------------------------------------------------------------
    async def segment(self, index: int) -> bytes:
        """The bytes of segment `index`, waiting up to `segment_wait` for them to exist."""
        return await self._wait_for(index, self._try_segment)

    async def segment_path(self, index: int) -> Path | None:
        """The on-disk file of a transcode segment (for X-Accel-Redirect), waiting like
        `segment`; None for a remux, whose segments exist only in memory."""
        if not self.plan.transcodes:
            return None
        return await self._wait_for(index, self._try_path)

    async def _wait_for(self, index: int, attempt: Callable[[int], Awaitable[T | None]]) -> T:
        if not 0 <= index < len(self.timeline):
            raise SegmentError(404, "segment_not_found", f"segment {index} is not in the playlist")
        self._check_usable()
        self.touch()
        self._position = index
        with trio.move_on_after(self._settings.segment_wait):
            while True:
                self._check_usable()
                result = await attempt(index)
                if result is not None:
                    self.touch()
                    return result
                waiter = self._waiters.get(index)
                if waiter is None:
                    waiter = self._waiters[index] = trio.Event()
                    if not self.plan.transcodes:
                        assert self._nursery is not None
                        self._nursery.start_soon(self._cut, index, waiter)
                self._waiting[index] += 1
                try:
                    await waiter.wait()
                finally:
                    self._leave(index, waiter)
        self._check_usable()
        retry = max(1, round(self.timeline[index].duration))
        raise SegmentError(
            503, "segment_not_ready", f"segment {index} is not ready yet", retry_after=retry
        )

    def _leave(self, index: int, waiter: trio.Event) -> None:
        """A request stops waiting (answered, timed out or its client gone): the last one out
        drops the event, so nothing is left behind for a request that no longer exists."""
        self._waiting[index] -= 1
        if self._waiting[index] <= 0:
            del self._waiting[index]
            if self._waiters.get(index) is waiter:
                del self._waiters[index]

    def _check_usable(self) -> None:
        if self._closed:
            raise SegmentError(404, "session_not_found", "the session has ended")
        if self.state == "failed":
            raise SegmentError(502, "encoder_failed", f"the encoder failed: {self.failure}")

    async def _try_path(self, index: int) -> Path | None:
        if self.transcoder is None:
            return None  # the encoder is not set up yet (the session is starting)
        try:
            return self.transcoder.request(index)
        except SegmentMissing as exc:
            raise SegmentError(502, "segment_missing", str(exc)) from None

    async def _try_segment(self, index: int) -> bytes | None:
        if self.plan.transcodes:
            path = await self._try_path(index)
            if path is None:
                return None
            try:
                return await trio.to_thread.run_sync(path.read_bytes)
            except FileNotFoundError:
                # Pruned between the check and the read: the next round re-makes it.
                if self.transcoder is not None:
                    self.transcoder.prune(index)
                return None
        data = self._cache.get(self.id, index)
        if data is not None:
            return data
        error = self._cut_errors.pop(index, None)
        if error is not None:
            raise SegmentError(502, "remux_failed", error)
        return None

    async def _cut(self, index: int, done: trio.Event) -> None:
        info = self.item.info
        assert info.video is not None
        segment = self.timeline[index]
        try:
            data = await trio.to_thread.run_sync(
                cut_segment,
                self.item.file,
                segment,
                info.video.index,
                self.plan.audio_index,
                abandon_on_cancel=True,
                limiter=self._cut_limiter,
            )
        except CutError as exc:
            log.error("session %s: segment %d: %s", self.id[:8], index, exc)
            self._cut_errors[index] = str(exc)
        else:
            self._cache.put(self.id, index, data)
        finally:
            if self._waiters.get(index) is done:
                del self._waiters[index]
            done.set()

    # -- playlists ----------------------------------------------------------------------------
    def master(self) -> str:
        self._check_usable()
        self.touch()
        return self.master_text

    def media(self) -> str:
        self._check_usable()
        self.touch()
        return self.media_text


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
