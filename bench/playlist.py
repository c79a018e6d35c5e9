"""P3: media playlist requests/s through hlstrio's whole path ÷ a bare Quart-Trio route on the
same server stack (target >= 0.80), with /metrics on and off.

hlstrio runs with [users] configured (auth on); a playlist request looks the session up by its
capability id, touches it and renders its text. The baseline (bench/_bare.py) is one Quart-Trio
route returning the same bytes with the same headers, under the same Hypercorn config.
"""

from __future__ import annotations

import secrets
import sys

import httpx

from ._common import WORK, Result, Wrk, listening, media, server, wrk

ROUNDS = 4
SECONDS = 6
CONNECTIONS = 20


def _playlist_url(base: str, token: str) -> tuple[str, bytes]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth) as client:
        media_id = client.get("/api/v1/media").json()["items"][0]["id"]
        created = client.post("/api/v1/sessions", json={"media_id": media_id})
        assert created.status_code == 201, created.text
        url = created.json()["master_url"].replace("master.m3u8", "index.m3u8")
        body = client.get(url).content
    return url, body


def run() -> list[Result]:
    clip = media("p1/clip-720p.mp4", "h264_aac_mp4", 12, 1280, 720)
    token = secrets.token_urlsafe(18)
    users = f'[users.bench]\ntoken = "{token}"\n'
    body_file = WORK / "p3-playlist.m3u8"
    with (
        server(clip.parent, "metrics = true\n" + users) as on,
        server(clip.parent, "metrics = false\n" + users) as off,
    ):
        on_url, body = _playlist_url(on, token)
        off_url, _ = _playlist_url(off, token)
        body_file.write_bytes(body)
        argv = [sys.executable, "-m", "bench._bare", str(body_file)]
        with listening(argv, WORK / "p3-bare.log") as bare:
            bare_url = bare + on_url  # same path shape and length
            assert httpx.get(bare_url).content == body
            runs: dict[str, list[Wrk]] = {"bare": [], "on": [], "off": []}
            for _ in range(ROUNDS):
                runs["bare"].append(wrk(bare_url, SECONDS, CONNECTIONS))
                runs["on"].append(wrk(on + on_url, SECONDS, CONNECTIONS))
                runs["off"].append(wrk(off + off_url, SECONDS, CONNECTIONS))

    def rps(key: str) -> float:
        # Best round: the machine is shared, and noise only ever lowers a throughput.
        return max(r.requests_per_s for r in runs[key])

    errors = sum(r.errors for rs in runs.values() for r in rs)
    note = (
        f"{len(body)} B playlist; wrk -t2 -c{CONNECTIONS} {SECONDS} s, best of {ROUNDS} "
        f"alternating rounds; {errors} errors"
    )
    return [
        Result(
            figure="P3 playlist req/s, whole path with /metrics on ÷ bare Quart-Trio route",
            value=rps("on"),
            baseline=rps("bare"),
            unit="requests/s",
            target="ratio >= 0.80",
            command="nox -s bench -- playlist",
            note=note,
        ),
        Result(
            figure="P3 playlist req/s, whole path with /metrics off ÷ bare Quart-Trio route",
            value=rps("off"),
            baseline=rps("bare"),
            unit="requests/s",
            target="(metrics cost: compare with the row above)",
            command="nox -s bench -- playlist",
            note=note,
        ),
    ]
