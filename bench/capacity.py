"""P7: how many concurrent remux players at real playback pace hlstrio holds with 0 errors and
p99 segment latency < 1 s (target >= 200).

Players (bench/_players.py, a separate process: trio + httpx) each create their own session on
a 60 s 720p H.264/AAC clip and play it as a player does since audio became its own rendition:
every 6 s the next video segment (~2 MB, no audio in it) and the next segment of the default
audio rendition (`a1`, the AAC copied, ~100 KB), concurrently; both count, in the request
total and in the p99. Steps double from 200 until one fails (or halve until one passes), then
the midpoint between the last pass and the first failure is tried. Control, same run: the
largest step's player count against nginx serving one such video and one audio segment
statically, to show whether the client machine or hlstrio is the limit. hlstrio's CPU per
player (the server process and its children, over the step) is in the note.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx

from ._common import WORK, Result, free_port, media, server, server_pid, tree_cpu_seconds
from ._nginx import nginx, static_config
from ._players import master_renditions

SECONDS = 36  # six segments per player after its start
START = 200
LIMIT = 1600
COMMAND = "nox -s bench -- capacity"

Step = dict[str, Any]


def players(kind: str, *args: str, seconds: float = SECONDS) -> Step:
    """Run bench._players (its own process) and return its JSON summary."""
    argv = [sys.executable, "-m", "bench._players", kind, *args]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 300
    ).stdout
    result: Step = json.loads(out.strip().splitlines()[-1])
    return result


def passes_within(seconds: float) -> Callable[[Step], bool]:
    """A pass: 0 errors, some segments, p99 under `seconds`."""

    def check(result: Step) -> bool:
        return bool(result["errors"] == 0 and result["segments"] > 0 and result["p99"] < seconds)

    return check


passes = passes_within(1.0)

Search = Generator[int, Step, int]


def search_steps(
    start: int, limit: int, ok: Callable[[Step], bool] = passes, bisections: int = 1
) -> Search:
    """Largest passing player count, as a coroutine: yields each count to try, is sent its
    result, returns the answer. Doubles from `start` until a step fails (or halves until one
    passes), then bisects between the last pass and the first failure `bisections` times."""
    n, passed, failed = start, 0, 0
    while 1 <= n <= limit:
        result = yield n
        if ok(result):
            passed = n
            if failed:
                break
            n *= 2
        else:
            failed = n
            if passed:
                break
            n //= 2
    for _ in range(bisections):
        if not (passed and failed and failed - passed > 1):
            break
        mid = (passed + failed) // 2
        if ok((yield mid)):
            passed = mid
        else:
            failed = mid
    return passed


def search(step: Callable[[int], Step], start: int, limit: int) -> tuple[int, dict[int, Step]]:
    """`search_steps` run against one side."""
    answers, memo = interleaved({"only": step}, {"only": search_steps(start, limit)})
    return answers["only"], memo["only"]


def interleaved(
    steps: dict[str, Callable[[int], Step]], searches: dict[str, Search]
) -> tuple[dict[str, int], dict[str, dict[int, Step]]]:
    """Run several searches, one step each in turn, so machine noise falls on every side
    alike. A search's key starts with the key of the side it runs on (`steps`); a count a side
    has already run is answered from memory."""
    memo: dict[str, dict[int, Step]] = {side: {} for side in steps}
    answers: dict[str, int] = {}
    wanted: dict[str, int] = {}
    for name, coroutine in searches.items():
        wanted[name] = next(coroutine)
    while wanted:
        for name in list(wanted):
            side = next(s for s in steps if name.startswith(s))
            n = wanted[name]
            if n not in memo[side]:
                memo[side][n] = steps[side](n)
            try:
                wanted[name] = searches[name].send(memo[side][n])
            except StopIteration as done:
                answers[name] = done.value
                del wanted[name]
    return answers, memo


def hlstrio_step(url: str, tokens_file: Path, n: int, body: dict[str, Any] | None = None) -> Step:
    """One step against a running hlstrio, with the server's CPU over it (tree: the process
    and any ffmpeg it runs)."""
    pid = server_pid(url)
    before = tree_cpu_seconds(pid)
    args = [url, str(tokens_file), str(n), str(SECONDS)]
    if body:
        args.append(json.dumps(body))
    result = players("hlstrio", *args)
    result["server_cpu"] = tree_cpu_seconds(pid) - before
    return result


def users_config(count: int, extra: str = "") -> tuple[list[str], Path, str]:
    """Tokens, the file the players read them from, and a config with one user per token."""
    tokens = [secrets.token_urlsafe(18) for _ in range(count)]
    tokens_file = WORK / "players-tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    users = "".join(f'[users.p{i}]\ntoken = "{t}"\n' for i, t in enumerate(tokens))
    config = (
        f"max_sessions = {count + 10}\nmax_sessions_per_user = 4\nidle_timeout = 60\n"
        f"segment_seconds = 6\n{extra}{users}"
    )
    return tokens, tokens_file, config


def fetch_segments(url: str, token: str, body: dict[str, Any] | None = None) -> list[bytes]:
    """Segment 1 of the video rendition and of the default audio rendition, as served."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        item = client.get("/api/v1/media").json()["items"][0]
        created = client.post("/api/v1/sessions", json={"media_id": item["id"], **(body or {})})
        session = created.json()
        master_url = session["master_url"]
        video, audio = master_renditions(master_url, client.get(master_url).text)
        out = []
        for playlist in (video, audio):
            if playlist is not None:
                out.append(client.get(playlist.replace("index.m3u8", "seg-1.ts")).content)
        client.delete(f"/api/v1/sessions/{session['id']}")
    return out


def control(segments: list[bytes], n: int, tag: str) -> Step:
    """n static players against nginx serving these bytes (one URL per segment)."""
    www = WORK / f"{tag}-www"
    www.mkdir(parents=True, exist_ok=True)
    for k, body in enumerate(segments):
        (www / f"seg{k}.ts").write_bytes(body)
    port = free_port()
    urls = ",".join(f"http://127.0.0.1:{port}/seg{k}.ts" for k in range(len(segments)))
    with nginx(WORK / f"{tag}-nginx", static_config(port, www), [port]):
        return players("static", urls, str(n), str(SECONDS))


def summary(r: Step) -> str:
    kinds = f" {r['error_kinds']}" if r["errors"] else ""
    cpu = ""
    if "server_cpu" in r and r["players"]:
        cpu = f", {100 * r['server_cpu'] / (r['players'] * SECONDS):.2f}% of a core/player"
    return f"p99 {r['p99']:.2f} s, {r['errors']} errors{kinds}{cpu}"


def run() -> Result:
    clip = media("p7/clip-720p-60s.mp4", "h264_aac_mp4", 60, 1280, 720)
    tokens, tokens_file, config = users_config(LIMIT)
    with server(clip.parent, config) as url:

        def step(n: int) -> Step:
            result = hlstrio_step(url, tokens_file, n)
            print(f"  {n} players: {summary(result)}", flush=True)
            return result

        passed, steps = search(step, START, LIMIT)
        segments = fetch_segments(url, tokens[0])
    top = max(steps)
    control_result = control(segments, top, "p7")
    print(f"  control, nginx, {top} players: {summary(control_result)}", flush=True)
    tried = ", ".join(f"{k}: {summary(v)}" for k, v in sorted(steps.items()))
    sizes = " + ".join(f"{len(s) / 1e6:.2f}" for s in segments)
    return Result(
        figure="P7 concurrent remux players at 1x pace (video + audio rendition), "
        "0 errors and p99 < 1 s",
        value=float(passed),
        baseline=float(START),
        unit="players",
        target=">= 200 (baseline column = the target)",
        command=COMMAND,
        note=f"720p; per 6 s a video and an audio segment ({sizes} MB), both counted; "
        f"steps {tried}; client control vs nginx at {top}: {summary(control_result)}",
    )
