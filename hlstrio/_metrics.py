"""Prometheus metrics for one server: its own CollectorRegistry, never the global one.

Each server (and so each test) builds one `Metrics`; nothing is shared between apps. Counters
and histograms are updated on the request path (a few microseconds: precomputed label children,
one lock per value); everything that can be read off the session registry (sessions by state,
encoders running/paused) is computed when /metrics is scraped instead, so the hot path pays
nothing for it.

The streaming layer reports encoder events through the `encoder_*` methods; they are plain
calls with no I/O and never raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol
from weakref import WeakSet

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

SESSION_STATES = ("starting", "running", "idle", "failed", "gone")
ENCODER_STATES = ("running", "paused")
ROUTES = ("segment", "playlist", "api", "metrics", "other")
MODES = ("remux", "transcode")

# Request latency: loopback playlist hits are ~0.5 ms, a 2 MB segment a few ms, a segment that
# waits for its encoder up to segment_wait (15 s by default).
_LATENCY_BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)
_FIRST_SEGMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class SessionView(Protocol):
    """What the scrape-time collector reads from a session (hlstrio.streaming.Session)."""

    @property
    def state(self) -> str: ...
    @property
    def encoder_state(self) -> str | None: ...


class Metrics:
    def __init__(self, sessions: Callable[[], Iterable[SessionView]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            "hlstrio_http_request_duration_seconds",
            "HTTP request latency, from the request reaching the app to its last body byte "
            "handed to the socket, by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "hlstrio_http_errors",
            "Error responses by HTTP status and JSON error code",
            ["status", "code"],
            registry=r,
        )
        self.segment_wait_seconds = Histogram(
            "hlstrio_segment_wait_seconds",
            "Time a segment request waited for its segment (remux cut, encoder, disk read), "
            "by session mode",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_segment_seconds = Histogram(
            "hlstrio_first_segment_seconds",
            "Session created -> its first segment ready to answer, by session mode",
            ["mode"],
            buckets=_FIRST_SEGMENT_BUCKETS,
            registry=r,
        )
        self.segment_bytes = Counter(
            "hlstrio_segment_bytes",
            "Segment bytes answered: sent by hlstrio (direct) or handed to nginx via "
            "X-Accel-Redirect (accel)",
            ["via"],
            registry=r,
        )
        self.encoder_starts = Counter(
            "hlstrio_encoder_starts", "ffmpeg encoders started for a new session", registry=r
        )
        self.encoder_restarts = Counter(
            "hlstrio_encoder_restarts",
            "ffmpeg encoders restarted for an existing session, by reason",
            ["reason"],
            registry=r,
        )
        self.encoder_probe_runs = Counter(
            "hlstrio_encoder_probe_runs",
            "Short ffmpeg runs beside the main one for a player's probe of the first segments",
            registry=r,
        )
        self.encoder_failures = Counter(
            "hlstrio_encoder_failures", "ffmpeg encoders that exited with an error", registry=r
        )
        self.encoder_first_segment_seconds = Histogram(
            "hlstrio_encoder_first_segment_seconds",
            "ffmpeg (re)started -> its first segment closed",
            buckets=_FIRST_SEGMENT_BUCKETS,
            registry=r,
        )
        # Label children resolved once: `.labels()` takes a lock and builds a key per call.
        self.route_seconds = {route: self.request_seconds.labels(route) for route in ROUTES}
        self.wait_seconds = {mode: self.segment_wait_seconds.labels(mode) for mode in MODES}
        self.first_seconds = {mode: self.first_segment_seconds.labels(mode) for mode in MODES}
        self.bytes_direct = self.segment_bytes.labels("direct")
        self.bytes_accel = self.segment_bytes.labels("accel")
        # Sessions that have answered a segment already (weak: ended sessions just vanish).
        self._served: WeakSet[object] = WeakSet()
        if sessions is not None:
            self.collect_sessions(sessions)

    def collect_sessions(self, sessions: Callable[[], Iterable[SessionView]]) -> None:
        """Report sessions and encoders by state, read off `sessions()` at scrape time."""
        self.registry.register(_SessionCollector(sessions))

    # -- web layer ----------------------------------------------------------------------------
    def error(self, status: int, code: str) -> None:
        self.errors.labels(str(status), code).inc()

    def segment_served(
        self, session: object, mode: str, waited: float, created_at: float, now: float
    ) -> None:
        """A segment is ready to answer: wait time, and time to first segment once per session."""
        wait = self.wait_seconds.get(mode)
        if wait is not None:
            wait.observe(waited)
        if session not in self._served:
            self._served.add(session)
            first = self.first_seconds.get(mode)
            if first is not None:
                first.observe(max(0.0, now - created_at))

    # -- streaming layer (called by hlstrio.streaming; see PERFORMANCE.md) ----------------------
    def encoder_started(self) -> None:
        self.encoder_starts.inc()

    def encoder_restarted(self, reason: str) -> None:
        """`reason`: "seek" (a far request restarts the running encoder), "resume" (a new run
        after the last one stopped: idle, or done), "retry" (after a failed run)."""
        self.encoder_restarts.labels(reason).inc()

    def encoder_probe(self) -> None:
        self.encoder_probe_runs.inc()

    def encoder_failed(self) -> None:
        self.encoder_failures.inc()

    def encoder_first_segment(self, seconds: float) -> None:
        self.encoder_first_segment_seconds.observe(seconds)

    # -- exposition ---------------------------------------------------------------------------
    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SessionCollector:
    """Sessions by state and encoders by state, read off the registry at scrape time."""

    def __init__(self, sessions: Callable[[], Iterable[SessionView]]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        states = dict.fromkeys(SESSION_STATES, 0)
        encoders = dict.fromkeys(ENCODER_STATES, 0)
        for session in self._sessions():
            states[session.state] = states.get(session.state, 0) + 1
            encoder = session.encoder_state
            if encoder in encoders:
                encoders[encoder] += 1
        by_state = GaugeMetricFamily(
            "hlstrio_sessions", "Sessions registered, by state", labels=["state"]
        )
        for state, count in states.items():
            by_state.add_metric([state], count)
        yield by_state
        running = GaugeMetricFamily(
            "hlstrio_encoders", "ffmpeg encoders alive, by state", labels=["state"]
        )
        for state, count in encoders.items():
            running.add_metric([state], count)
        yield running
