"""Hostile input, driven by hypothesis, against a real server over real sockets.

Every answer to a bad request must be a 4xx JSON error `{"error": {"code", "message"}}`: never
a 500, never a file from outside the library, never a stuck request. After every generated
example the registry must be consistent and no session dir or encoder may be left over.

hypothesis's @given cannot drive an async pytest-trio test against one long-lived server, so
the server runs its own `trio.run` in a thread (one per module) and the tests are plain sync
functions speaking HTTP over sockets; the checks that look inside the server run in its trio
thread through `trio.from_thread`. Requests whose bytes must reach the server unchanged
(traversal, control characters, chunked bodies) go over a raw socket: httpx would normalise
`..` segments and refuse bad headers before sending.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import trio
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from hlstrio._config import Settings
from hlstrio._server import RunningServer, serve

from ..support import decode, hls_client_argv, session_processes
from ._conns import task_count
from ._spec import check_response

ALICE = "alice-token-0123456789"
AUTH = {"Authorization": f"Bearer {ALICE}"}

# Deterministic (same examples every run), no example database on disk, no per-example deadline
# (a transcode start may take a while on a busy 2-core machine).
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # The fixtures are per module or idempotent: sharing them across examples is the point.
        HealthCheck.function_scoped_fixture,
    ],
)

ODD_NAMES = [
    "日本語 ümlaut ✓.mp4",
    "a%2Fb.mp4",
    "x\ny.mp4",
    "a\\b.mp4",
    "sp ace?#&=;.mp4",
    "e\u0301clair \u202egnp.mp4",  # combining accent, right-to-left override
    "%2e%2e/inside.mp4",  # a directory literally named "%2e%2e"
]
HIDDEN_NAMES = ["..mp4", ".hidden.mp4"]  # dot files are never listed
NON_UTF8_NAME = b"caf\xe9.mp4"  # Latin-1 bytes: not decodable as UTF-8


# --- a real server in a thread ------------------------------------------------------------------


class ThreadedServer:
    """`hlstrio._server.serve` in its own trio.run on a thread; stopped gracefully at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: RunningServer | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="hlstrio-test-server", daemon=True)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the test thread by start()/stop()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self.running = await nursery.start(partial(serve, self.settings, handle_signals=False))
            self._ready.set()

    def start(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(60), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` in the server's trio thread (no await in between: a consistent snapshot)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def stop(self) -> None:
        assert self.running is not None
        self.call(self.running.shutdown.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "server did not stop"
        if self._error is not None:
            raise self._error

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Hostile:
    server: ThreadedServer
    client: httpx.Client
    temp_dir: Path
    media: dict[str, str]  # path -> id
    durations: dict[str, float]  # id -> seconds
    baseline_tasks: int = 0  # tasks in the server's trio run with one idle client connection

    def invariants(self) -> None:
        assert_consistent(self.server, self.temp_dir)


def _make_odd_library(root: Path, clip: Path, hevc: Path) -> None:
    for name in [*ODD_NAMES, *HIDDEN_NAMES]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / name)
    shutil.copy(hevc, root / "x\ny.mkv")  # an odd name that needs a transcode
    with open(os.path.join(os.fsencode(root), NON_UTF8_NAME), "wb") as f:
        f.write(clip.read_bytes())
    # Symlinks that resolve outside the root are never served, whatever they are called.
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    shutil.copy(clip, outside / "secret.mp4")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "passwd.mp4").symlink_to("/etc/passwd")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Iterator[Hostile]:
    base = tmp_path_factory.mktemp("hostile")
    library = base / "library"
    library.mkdir()
    _make_odd_library(library, media_dir / "h264_aac.mp4", media_dir / "hevc_opus.mkv")
    temp_dir = base / "sessions"
    server = ThreadedServer(
        Settings(
            media=(library,),
            port=0,
            temp_dir=temp_dir,
            cache_dir=base / "cache",
            segment_seconds=2.0,
            segment_wait=10.0,
            max_sessions_per_user=50,
            users={"alice": ALICE},
        )
    ).start()
    client = httpx.Client(base_url=server.url, headers=AUTH, timeout=30)
    try:
        items = client.get("/api/v1/media").json()["items"]
        harness = Hostile(
            server,
            client,
            temp_dir,
            {i["path"]: i["id"] for i in items},
            {i["id"]: i["duration"] for i in items},
        )
        harness.baseline_tasks = server.call(task_count)
        yield harness
    finally:
        client.close()
        server.stop()
    assert not temp_dir.exists() or list(temp_dir.iterdir()) == []
    assert session_processes(temp_dir) == []


@pytest.fixture
def live_session(hostile: Hostile) -> dict[str, Any]:
    """A remux session on the plain clip, created once and reused (same params -> same id)."""
    response = hostile.client.post(
        "/api/v1/sessions", json={"media_id": hostile.media["日本語 ümlaut ✓.mp4"]}
    )
    assert response.status_code in (200, 201), response.text
    session: dict[str, Any] = response.json()
    return session


# --- consistency: registry, temp dirs, encoders --------------------------------------------------


def _snapshot(running: RunningServer) -> list[tuple[str, bool, bool, int]]:
    registry = running.services.manager.registry
    rows = []
    for session in registry:
        # Registered means findable, alive, and (when no request is in flight) nobody waiting.
        assert registry.lookup(session.id) is session
        rows.append(
            (session.id, session.transcodes, session.finished.is_set(), len(session._waiters))
        )
    return rows


def assert_consistent(server: ThreadedServer, temp_dir: Path, timeout: float = 15.0) -> None:
    """Eventually (sessions being replaced finish their cleanup concurrently) the registry, the
    session dirs and the encoder processes agree, with no waiter left behind."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.call(_snapshot, server.running)
        ids = [sid[:12] for sid, transcodes, _, _ in rows if transcodes]
        dirs = sorted(p.name for p in temp_dir.iterdir()) if temp_dir.exists() else []
        problems = [f"finished but registered: {sid}" for sid, _, done, _ in rows if done]
        problems += [f"waiters left: {sid}" for sid, _, _, waiting in rows if waiting]
        problems += [f"dir of no session: {d}" for d in dirs if not any(i in d for i in ids)]
        for pid in session_processes(temp_dir):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # exited meanwhile
            if not any(i in cmdline for i in ids):
                problems.append(f"encoder of no session: {pid}")
        if not problems:
            return
        assert time.monotonic() < deadline, problems
        time.sleep(0.05)


# --- raw HTTP ------------------------------------------------------------------------------------


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 20.0) -> Raw:
    """Send bytes as they are; read to EOF (the request says Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    data = b"".join(chunks)
    assert data, "the server closed the connection without an answer"
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    while lines[0].startswith(b"HTTP/1.1 100"):  # Expect: 100-continue
        head_part, _, rest = rest.partition(b"\r\n\r\n")
        lines = head_part.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        out, pos = b"", 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            out += rest[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
        rest = out
    elif "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    return Raw(status, headers, rest)


def get(port: int, target: bytes, method: bytes = b"GET", extra: bytes = b"") -> Raw:
    head = (
        method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + ALICE.encode() + b"\r\n" + extra + b"Connection: close\r\n\r\n"
    )
    return raw_request(port, head)


def assert_json_error(response: Raw | httpx.Response, *allowed: int) -> None:
    status = response.status_code if isinstance(response, httpx.Response) else response.status
    body = response.content if isinstance(response, httpx.Response) else response.body
    assert 400 <= status < 500 and (not allowed or status in allowed), (status, body[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    payload = json.loads(body)
    assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}, payload
    assert isinstance(payload["error"]["code"], str) and payload["error"]["code"]
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FRAMING = {b"content-length", b"transfer-encoding", b"host"}


def target_refusable(target: bytes) -> bool:
    """Request targets h11 refuses: whitespace, controls or non-ASCII bytes, or too long."""
    return any(b <= 0x20 or b >= 0x7F for b in target) or len(target) > 16000


def header_refusable(name: bytes, value: bytes) -> bool:
    """Header lines h11 refuses: a name that is not a token, NUL/CR/LF/VT/FF in the value, or
    a framing header (length, chunking, host) with a value it cannot accept."""
    return (
        not _TOKEN.fullmatch(name)
        or any(c in value for c in b"\x00\r\n\x0b\x0c")
        or name.lower() in _FRAMING
    )


def assert_protocol_reject_or_json_error(response: Raw, refusable: bool, *allowed: int) -> None:
    """Bytes that are not valid HTTP are refused by hypercorn's parser before the app sees them
    (400/431 with an empty body, connection closed). Anything the app sees gets a JSON error."""
    if refusable and response.body == b"":
        assert response.status in (400, 431), response
        return
    assert_json_error(response, *allowed)


def no_foreign_file(body: bytes) -> None:
    assert b"root:" not in body and b"/bin/" not in body, body[:200]


# --- strategies ----------------------------------------------------------------------------------

TRAVERSALS = [
    "..",
    ".",
    "../..",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "%252e%252e%252f",  # double-encoded
    "%c0%ae%c0%ae%c0%af",  # overlong UTF-8 dots and slash
    "..%5c..%5cwindows",
    "..\\..\\etc\\passwd",
    "/etc/passwd",
    "//etc/passwd",
    "%2Fetc%2Fpasswd",
    "%00",
    "a%00b",
    "..%00.mp4",
    "....//....//",
    "~root",
    "%7e",
    "$HOME",
    "*",
    "%ff%fe",
    "%ed%a0%80",  # an encoded lone surrogate
    "%zz%4",  # broken escapes
    "media_id",
    "a" * 255,
    "a" * 4096,
    "é" * 3000,
]
TRAVERSAL_PIECES = ["..", "/", "%2f", "%2F", "%2e", ".", "%00", "%5c", "\\", "etc", "passwd", "~"]

path_values = st.one_of(
    st.sampled_from(TRAVERSALS),
    st.lists(st.sampled_from(TRAVERSAL_PIECES), min_size=1, max_size=12).map("".join),
    # Any text at all, percent-encoded as a careful client would.
    st.text(min_size=1, max_size=80).map(lambda s: quote(s, safe="")),
    # Printable ASCII sent as is (spaces and '#'/'?' encoded so the target stays one token).
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80).map(
        lambda s: s.replace("%", "%25").replace("#", "%23").replace("?", "%3F")
    ),
    # Raw bytes: control characters, NUL, non-ASCII (the HTTP parser may refuse them).
    st.binary(min_size=1, max_size=40).map(lambda b: b.decode("latin-1")),
)

ROUTES = [
    ("GET", "/api/v1/media/{}"),
    ("GET", "/api/v1/media/{}/poster.jpg"),
    ("GET", "/api/v1/sessions/{}"),
    ("DELETE", "/api/v1/sessions/{}"),
    ("GET", "/hls/{}/master.m3u8"),
    ("GET", "/hls/{}/index.m3u8"),
    ("GET", "/hls/{}/seg-0.ts"),
    ("GET", "/hls/{live}/{}"),  # the file name of a live session
    ("GET", "/hls/{live}/seg-{}.ts"),
    ("GET", "/play/{}"),
    ("GET", "/assets/{}"),
]

_LEGIT_HLS_FILE = re.compile(r"(master|index)\.m3u8|seg-[0-9]{1,9}\.ts")


def live_segments(hostile: Hostile, session: dict[str, Any]) -> int:
    """How many segments the session's (video) media playlist lists."""
    response = hostile.client.get(session["master_url"].replace("master", "index"))
    assert response.status_code == 200, response.text
    return response.text.count("#EXTINF:")


def assert_answer(response: Raw, status: int) -> None:
    """Exactly `status`; an error is the JSON error every error is."""
    assert response.status == status, response
    if status >= 400:
        assert_json_error(response, status)


@settings(FUZZ, max_examples=400)
@given(route=st.sampled_from(ROUTES), value=path_values)
# The live session's own files, always tried: the model must hold for them too.
@example(route=("GET", "/hls/{live}/{}"), value="master.m3u8")
@example(route=("GET", "/hls/{live}/{}"), value="index%2Em3u8")
@example(route=("GET", "/hls/{live}/{}"), value="seg-0.ts")
@example(route=("GET", "/hls/{live}/{}"), value="seg-999999999.ts")
@example(route=("GET", "/hls/{live}/seg-{}.ts"), value="001")
@example(route=("GET", "/hls/{live}/seg-{}.ts"), value="1234567890")
def test_path_parameters_never_escape(
    hostile: Hostile, live_session: dict[str, Any], route: tuple[str, str], value: str
) -> None:
    method, template = route
    live = live_session["id"]
    target = template.replace("{live}", live).replace("{}", value)
    head_target = target.encode("latin-1", "replace")
    response = get(hostile.server.port, head_target, method.encode())
    no_foreign_file(response.body)
    assert response.status < 500, (target, response)
    decoded = unquote(value)
    if template == "/hls/{live}/{}" and _LEGIT_HLS_FILE.fullmatch(decoded):
        # A real file name of this session: its playlists always exist, a segment iff the media
        # playlist lists it (RFC 8216 6.2.1: the server makes the segments it lists available).
        index = decoded.removeprefix("seg-").removesuffix(".ts")
        listed = not index.isdigit() or int(index) < live_segments(hostile, live_session)
        assert_answer(response, 200 if listed else 404)
    elif template == "/hls/{live}/seg-{}.ts" and value.isascii() and value.isdigit():
        listed = len(value) <= 9 and int(value) < live_segments(hostile, live_session)
        assert_answer(response, 200 if listed else 404)
    elif template == "/play/{}" and response.status == 200:
        # The player page is the same static file for any id: no id reaches the disk.
        assert response.headers["content-type"].startswith("text/html")
    elif template == "/assets/{}" and response.status == 200:
        assert response.headers["content-type"] != "application/json"
        real = Path(__file__).resolve().parents[2] / "hlstrio/web/static"
        assert (real / decoded).resolve().is_relative_to(real.resolve()), target
    else:
        refusable = target_refusable(head_target)
        assert_protocol_reject_or_json_error(response, refusable, 400, 404, 405, 431)
    hostile.invariants()


# JSON values of every shape, including ones Python's json reads but JSON forbids (NaN).
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def session_bodies(draw: st.DrawFn, media_ids: list[str]) -> dict[str, Any]:
    """Mostly well-shaped bodies with one or two fields wrong, plus unknown fields."""
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:  # media_id is required: leave it out now and then
        body["media_id"] = draw(
            st.one_of(
                st.sampled_from(media_ids),
                st.sampled_from(["", "nope", "../../etc/passwd", "\x00", "a" * 5000]),
                json_value,
            )
        )
    for name, good in [
        ("start", st.floats(min_value=0, max_value=10)),
        ("mode", st.sampled_from(["auto", "remux", "transcode"])),
        ("audio", st.sampled_from([None, 0, 1, 2])),
        (
            "capabilities",
            st.fixed_dictionaries(
                {},
                optional={
                    "video_codecs": st.lists(st.sampled_from(["h264", "hevc", "avc1.64001f"])),
                    "audio_codecs": st.lists(st.sampled_from(["aac", "opus", "mp4a.40.2"])),
                    "max_height": st.integers(min_value=-5, max_value=5000),
                    "max_bitrate": st.integers(min_value=-5, max_value=10**8),
                },
            ),
        ),
    ]:
        choice = draw(st.sampled_from(["absent", "good", "junk"]))
        if choice != "absent":
            body[name] = draw(good if choice == "good" else json_value)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(min_size=1, max_size=10))] = draw(json_value)
    return body


def _created(hostile: Hostile, response: httpx.Response) -> None:
    """A 200/201 is a real, playable session."""
    session = response.json()
    master = hostile.client.get(session["master_url"])
    assert master.status_code == 200, master.text


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_session_bodies(hostile: Hostile, data: st.DataObject) -> None:
    body = data.draw(session_bodies(sorted(hostile.media.values())))
    content = json.dumps(body, allow_nan=True).encode()
    response = hostile.client.post(
        "/api/v1/sessions", content=content, headers={"content-type": "application/json"}
    )
    check_response(response)  # documented status, Error/Session schema
    if response.status_code in (200, 201):
        _created(hostile, response)
    else:
        assert_json_error(response, 400, 404, 415, 429)
    hostile.invariants()


@settings(FUZZ, max_examples=150)
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        # Valid JSON, then damaged: truncated, or a byte flipped.
        st.tuples(json_value, st.integers(min_value=0, max_value=50)).map(
            lambda t: json.dumps(t[0]).encode()[: max(1, len(json.dumps(t[0])) - t[1])]
        ),
        st.sampled_from(
            [
                b"",
                b"null",
                b"[]",
                b'"media_id"',
                b"{" * 60_000,  # deep nesting under the 64 KiB limit
                b"[" * 5_000 + b"]" * 5_000,
                b'{"media_id": "x", "start": 1' + b"0" * 5000 + b"}",  # > 4300 digits
                b'{"media_id": "x", "start": NaN}',
                b'{"media_id": "x", "start": -Infinity}',
                b'{"media_id": "x", "start": 1e999}',
                b'{"media_id": "\\ud800"}',
                b'\xef\xbb\xbf{"media_id": "x"}',
                b'{"media_id": "x", "media_id": 5}',
            ]
        ),
    ),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
    ),
)
def test_malformed_bodies(hostile: Hostile, raw: bytes, content_type: str) -> None:
    response = hostile.client.post(
        "/api/v1/sessions", content=raw, headers={"content-type": content_type}
    )
    check_response(response)
    assert_json_error(response, 400, 404)
    hostile.invariants()


@settings(FUZZ, max_examples=120)
@given(
    start=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([0, 0.0, -0.0, 5.999, 6, 6.0, 1e-300, 5e-324, 2**53 + 1]),
        st.text(max_size=10),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
    segment=st.one_of(
        st.integers(min_value=-(10**12), max_value=10**12).map(str),
        st.integers(min_value=0, max_value=5).map(str),
        st.sampled_from(["00", "01", "+1", "1.0", "1e1", "0x1", "\u0663", "\u0661", "", " 1"]),
        st.text(max_size=12).map(lambda s: quote(s, safe="")),
    ),
)
def test_start_values_and_segment_indexes(hostile: Hostile, start: Any, segment: str) -> None:
    """A precise model: a finite number in [0, duration) is accepted, anything else is a 400;
    a segment index in the playlist is served, anything else is a 404."""
    media_id = hostile.media["a%2Fb.mp4"]
    duration = hostile.durations[media_id]
    body = {"media_id": media_id, "mode": "remux"}
    if start is not None:
        body["start"] = start
    response = hostile.client.post("/api/v1/sessions", content=json.dumps(body).encode())
    check_response(response)
    number = start is None or (isinstance(start, int | float) and not isinstance(start, bool))
    valid = number and math.isfinite(float(start or 0)) and 0 <= float(start or 0) < duration
    if not valid:
        assert_json_error(response, 400)
        hostile.invariants()
        return
    assert response.status_code in (200, 201), response.text
    session = response.json()
    playlist = hostile.client.get(session["master_url"].replace("master", "index")).text
    count = playlist.count("#EXTINF")
    seg = hostile.client.get(session["master_url"].replace("master.m3u8", f"seg-{segment}.ts"))
    in_playlist = segment.isascii() and segment.isdigit() and int(segment) < count
    if in_playlist:
        assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp2t", seg.text
    else:
        assert_json_error(seg, 404)
    hostile.invariants()


# Header names: tokens as HTTP defines them, or anything at all.
header_names = st.one_of(
    st.text(
        st.sampled_from("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzXYZ"),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["Authorization", "Content-Length", "Host", "Transfer-Encoding", "Range"]),
    st.binary(min_size=1, max_size=12).map(lambda b: b.decode("latin-1")),
)
header_values = st.one_of(
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass").decode("latin-1")),
    st.sampled_from(["Bearer " + ALICE + "\x00", "Bearer \x7f", "bearer " + ALICE, "Basic x"]),
)


@settings(FUZZ, max_examples=200)
@given(
    name=header_names,
    value=header_values,
    target=st.sampled_from([b"/api/v1/media", b"/api/v1/sessions", b"/hls/x/master.m3u8"]),
)
# Always tried, whatever is generated: the auth model's edges (RFC 6750 2.1, RFC 9110 11.1:
# the scheme is case-insensitive).
@example(name="Authorization", value="bearer " + ALICE, target=b"/api/v1/media")
@example(name="Authorization", value="Bearer  " + ALICE + "\t", target=b"/api/v1/sessions")
@example(name="Authorization", value="Bearer " + ALICE[:-1], target=b"/api/v1/media")
@example(name="Authorization", value="Basic x", target=b"/api/v1/sessions")
@example(name="Authorization", value="", target=b"/api/v1/media")
@example(name="Authorization", value="Basic x", target=b"/hls/x/master.m3u8")
@example(name="X-Odd", value="\x01\x7f\xff", target=b"/api/v1/sessions")
def test_headers_with_control_characters(
    hostile: Hostile, name: str, value: str, target: bytes
) -> None:
    raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
    note(f"{target!r} with {raw_name!r}: {raw_value!r}")  # shown if the example fails
    extra = raw_name + b": " + raw_value + b"\r\n"
    if name.lower() == "authorization":
        head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra
        response = raw_request(hostile.server.port, head + b"Connection: close\r\n\r\n")
    else:
        response = get(hostile.server.port, target, extra=extra)
    if response.status == 501 and name.lower() == "transfer-encoding":
        # RFC 9112 6.1: an unknown transfer coding is answered 501 by the HTTP parser (h11).
        assert response.body == b"" and raw_value.strip().lower() != b"chunked"
        return
    assert response.status < 500, response
    if target.startswith(b"/hls/"):
        expected = 404  # no such session; HLS URLs never look at credentials
    elif name.lower() == "authorization":
        expected = 200 if bearer_is_alice(value) else 401
    else:
        expected = 200  # our valid token, plus a header the API ignores
    if header_refusable(raw_name, raw_value) and response.status != expected:
        # Framing headers and bytes h11 refuses: the parser may refuse the request instead, or
        # read it differently (a name starting with a space continues the line before it, our
        # Authorization: RFC 9112 5.2 obs-fold, hence a 401).
        assert_protocol_reject_or_json_error(response, True, 400, 401, 404, 413, 431)
    else:
        assert_answer(response, expected)
    hostile.invariants()


def bearer_is_alice(value: str) -> bool:
    """Whether an Authorization value (as sent) carries alice's token (RFC 6750 2.1: the
    scheme is case-insensitive; h11 strips the whitespace around a header value)."""
    scheme, _, credential = value.strip(" \t").partition(" ")
    return scheme.lower() == "bearer" and credential.strip() == ALICE


# --- explicit cases ------------------------------------------------------------------------------


def test_body_limit_holds_for_chunked_bodies_without_content_length(hostile: Hostile) -> None:
    port = hostile.server.port
    chunk = b"a" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    head = (
        b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ALICE.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    response = raw_request(port, head, body)
    assert_json_error(response, 413)
    # A declared length over the limit is refused before any body byte is read.
    head = head.replace(b"Transfer-Encoding: chunked", b"Content-Length: 10000000")
    assert_json_error(raw_request(port, head, b"{}"), 413)
    head = head.replace(b"Content-Length: 10000000", b"Content-Length: " + b"9" * 20)
    assert_json_error(raw_request(port, head, b"{}"), 413)
    # Over 20 digits h11 itself refuses the length (a bare 400, connection closed).
    huge = raw_request(port, head.replace(b"9" * 20, b"9" * 30), b"{}")
    assert huge.status == 400 and huge.body == b""
    # Just under the limit is read and judged as JSON.
    padded = b'{"media_id": "nope"}' + b" " * (64 * 1024 - 20)
    head = head.replace(b"Content-Length: " + b"9" * 20, b"Content-Length: %d" % len(padded))
    assert_json_error(raw_request(port, head, padded), 404)
    hostile.invariants()


def test_wrong_methods_are_405_with_allow(hostile: Hostile) -> None:
    for method, path, allowed in [
        ("PUT", "/api/v1/sessions", {"GET", "HEAD", "OPTIONS", "POST"}),
        ("TRACE", "/api/v1/media", {"GET", "HEAD", "OPTIONS"}),
        ("PATCH", "/api/v1/sessions/x", {"DELETE", "GET", "HEAD", "OPTIONS"}),
        ("POST", "/hls/x/master.m3u8", {"GET", "HEAD", "OPTIONS"}),
    ]:
        response = hostile.client.request(method, path)
        assert_json_error(response, 405)
        assert set(response.headers["allow"].split(", ")) == allowed, (method, path)


def test_deeply_nested_json_is_a_400_not_a_500(hostile: Hostile) -> None:
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000):
        response = hostile.client.post("/api/v1/sessions", content=body)
        assert_json_error(response, 400)


def test_odd_file_names_are_listed_as_they_are(hostile: Hostile) -> None:
    paths = set(hostile.media)
    for name in [*ODD_NAMES, "x\ny.mkv"]:
        assert name in paths, name
    assert "caf\ufffd.mp4" in paths  # undecodable bytes shown with U+FFFD, never a crash
    for name in [*HIDDEN_NAMES, "escape.mp4", "passwd.mp4"]:
        assert name not in paths, name
    for media_id in hostile.media.values():
        check_response(hostile.client.get(f"/api/v1/media/{media_id}"))


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("日本語 ümlaut ✓.mp4", "remux"),
        ("caf\ufffd.mp4", "remux"),
        ("caf\ufffd.mp4", "transcode"),
        ("x\ny.mkv", "auto"),
        ("%2e%2e/inside.mp4", "transcode"),
    ],
)
def test_odd_file_names_play(
    hostile: Hostile, ffmpeg: str, tmp_path: Path, name: str, mode: str
) -> None:
    response = hostile.client.post(
        "/api/v1/sessions", json={"media_id": hostile.media[name], "mode": mode}
    )
    assert response.status_code in (200, 201), response.text
    session = response.json()
    assert session["mode"] == ("transcode" if mode == "auto" else mode)
    out = tmp_path / "out.ts"
    # ffmpeg as the HLS client, reading every segment over HTTP.
    result = subprocess.run(
        hls_client_argv(ffmpeg, hostile.server.url + session["master_url"], out),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    played = decode(out)
    assert played.video_seconds == pytest.approx(session["duration"], abs=0.5)
    assert played.audio_seconds == pytest.approx(session["duration"], abs=0.5)
    deleted = hostile.client.delete(f"/api/v1/sessions/{session['id']}")
    assert deleted.status_code == 204
    hostile.invariants()


def test_server_still_serves_after_the_fuzzing(hostile: Hostile) -> None:
    assert hostile.client.get("/healthz").json() == {"status": "ok"}
    for session in hostile.client.get("/api/v1/sessions").json()["items"]:
        assert hostile.client.delete(f"/api/v1/sessions/{session['id']}").status_code == 204
    hostile.invariants()
    assert session_processes(hostile.temp_dir) == []
    # Every one of the thousand-odd requests above ended: no handler or connection task is left.
    deadline = time.monotonic() + 10
    while hostile.server.call(task_count) > hostile.baseline_tasks:
        assert time.monotonic() < deadline, "tasks left behind by hostile requests"
        time.sleep(0.05)
