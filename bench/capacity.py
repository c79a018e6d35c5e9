"""P7: how many concurrent remux players at real playback pace hlstrio holds with 0 errors and
p99 segment latency < 1 s (target >= 200).

Players (bench/_players.py, a separate process: trio + httpx) each create their own session on
a 60 s 720p H.264/AAC clip (~2 MB per 6 s segment), then fetch one segment per 6 s. Steps double
from 200 until one fails, then the midpoint between the last pass and the first failure is
tried. Control, same run: the largest step's player count against nginx serving one of those
segments statically, to show whether the client machine or hlstrio is the limit.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from typing import Any

import httpx

from ._common import WORK, Result, free_port, media, server
from ._nginx import nginx, static_config

SECONDS = 36  # six segments per player after its start
START = 200
LIMIT = 1600


def _players(base: str, tokens_file: str, n: int, static: bool = False) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench._players"]
    argv += ["--static", base, "-"] if static else [base, tokens_file]
    argv += [str(n), str(SECONDS)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=SECONDS + 180)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _passes(result: dict[str, Any]) -> bool:
    return bool(result["errors"] == 0 and result["segments"] > 0 and result["p99"] < 1.0)


def run() -> Result:
    clip = media("p7/clip-720p-60s.mp4", "h264_aac_mp4", 60, 1280, 720)
    tokens = [secrets.token_urlsafe(18) for _ in range(LIMIT)]
    tokens_file = WORK / "p7-tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    users = "".join(f'[users.p{i}]\ntoken = "{t}"\n' for i, t in enumerate(tokens))
    config = (
        f"max_sessions = {LIMIT + 10}\nmax_sessions_per_user = 4\nidle_timeout = 60\n"
        f"segment_seconds = 6\n{users}"
    )
    steps: dict[int, dict[str, Any]] = {}
    with server(clip.parent, config) as url:
        n, passed, failed = START, 0, 0
        while n <= LIMIT:
            steps[n] = _players(url, str(tokens_file), n)
            print(f"  {n} players: {_summary(steps[n])}", flush=True)
            if not _passes(steps[n]):
                failed = n
                break
            passed, n = n, n * 2
        if failed and passed:
            mid = (passed + failed) // 2
            steps[mid] = _players(url, str(tokens_file), mid)
            print(f"  {mid} players: {_summary(steps[mid])}", flush=True)
            if _passes(steps[mid]):
                passed = mid
        # The control: the same pace and count against nginx serving one such segment.
        top = max(steps)
        media_id = httpx.get(url + "/api/v1/media", headers=_auth(tokens[0])).json()["items"][0]
        auth = _auth(tokens[0])
        created = httpx.post(
            url + "/api/v1/sessions", json={"media_id": media_id["id"]}, headers=auth
        ).json()
        segment = httpx.get(url + created["master_url"].replace("master.m3u8", "seg-1.ts"))
        httpx.delete(url + f"/api/v1/sessions/{created['id']}", headers=auth)
    www = WORK / "p7-www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "seg.ts").write_bytes(segment.content)
    port = free_port()
    with nginx(WORK / "p7-nginx", static_config(port, www), [port]):
        control = _players(f"http://127.0.0.1:{port}/seg.ts", "-", top, static=True)
    print(f"  control, nginx, {top} players: {_summary(control)}", flush=True)
    tried = ", ".join(f"{k}: {_summary(v)}" for k, v in sorted(steps.items()))
    return Result(
        figure="P7 concurrent remux players at 1x pace, 0 errors and p99 < 1 s",
        value=float(passed),
        baseline=float(START),
        unit="players",
        target=">= 200 (baseline column = the target)",
        command="nox -s bench -- capacity",
        note=f"720p ~{len(segment.content) / 1e6:.1f} MB/6 s segments; steps {tried}; "
        f"client control vs nginx at {top}: {_summary(control)}",
    )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _summary(r: dict[str, Any]) -> str:
    kinds = f" {r['error_kinds']}" if r["errors"] else ""
    return f"p99 {r['p99']:.2f} s, {r['errors']} errors{kinds}"
