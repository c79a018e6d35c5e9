"""P7's load: N HLS players at real playback pace, in their own process (trio + httpx).

    python -m bench._players BASE_URL TOKENS_FILE N SECONDS          # hlstrio players
    python -m bench._players --static SEGMENT_URL - N SECONDS        # client control (nginx)

A player creates its session (its own user), fetches the master and media playlists, then one
segment per segment duration, as a player at 1x does once its buffer is full. Players start
spread over one segment duration. Prints one JSON line: requests, errors, segment latency
percentiles (request sent -> last byte received).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trio

SEGMENT_SECONDS = 6.0


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.requests = 0
        self.errors: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _get(client: httpx.AsyncClient, url: str, tally: Tally, what: str) -> bytes | None:
    tally.requests += 1
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        tally.error(f"{what}: {type(exc).__name__}")
        return None
    if response.status_code != 200:
        tally.error(f"{what}: {response.status_code}")
        return None
    return response.content


async def player(
    client: httpx.AsyncClient, token: str, delay: float, end: float, tally: Tally
) -> None:
    await trio.sleep(delay)
    auth = {"Authorization": f"Bearer {token}"}
    tally.requests += 1
    try:
        items = (await client.get("/api/v1/media", headers=auth)).json()["items"]
        created = await client.post(
            "/api/v1/sessions", json={"media_id": items[0]["id"]}, headers=auth
        )
    except httpx.HTTPError as exc:
        tally.error(f"create: {type(exc).__name__}")
        return
    if created.status_code != 201:
        tally.error(f"create: {created.status_code}")
        return
    session: dict[str, Any] = created.json()
    master = session["master_url"]
    index = master.replace("master.m3u8", "index.m3u8")
    try:
        if await _get(client, master, tally, "master") is None:
            return
        playlist = await _get(client, index, tally, "index")
        if playlist is None:
            return
        count = playlist.count(b"\nseg-")
        start = trio.current_time()
        for k in range(count):
            due = start + k * SEGMENT_SECONDS
            if due >= end:
                break
            await trio.sleep_until(due)
            sent = time.perf_counter()
            if await _get(client, index.replace("index.m3u8", f"seg-{k}.ts"), tally, "segment"):
                tally.latencies.append(time.perf_counter() - sent)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            await client.delete(f"/api/v1/sessions/{session['id']}", headers=auth)


async def static_player(
    client: httpx.AsyncClient, url: str, delay: float, end: float, tally: Tally
) -> None:
    await trio.sleep(delay)
    due = trio.current_time()
    while due < end:
        await trio.sleep_until(due)
        sent = time.perf_counter()
        if await _get(client, url, tally, "segment"):
            tally.latencies.append(time.perf_counter() - sent)
        due += SEGMENT_SECONDS


async def main(argv: list[str]) -> dict[str, Any]:
    static = argv[0] == "--static"
    if static:
        argv = argv[1:]
    base, tokens_file, n, seconds = argv[0], argv[1], int(argv[2]), float(argv[3])
    tokens = [] if static else json.loads(Path(tokens_file).read_text())[:n]
    tally = Tally()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(30.0)
    rng = random.Random(7)
    async with httpx.AsyncClient(
        base_url="" if static else base, limits=limits, timeout=timeout
    ) as client:
        end = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            for i in range(n):
                delay = rng.uniform(0, SEGMENT_SECONDS)
                if static:
                    nursery.start_soon(static_player, client, base, delay, end, tally)
                else:
                    nursery.start_soon(player, client, tokens[i], delay, end, tally)
    latencies = sorted(tally.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {
        "players": n,
        "requests": tally.requests,
        "segments": len(latencies),
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] if latencies else 0.0,
    }


if __name__ == "__main__":
    print(json.dumps(trio.run(main, sys.argv[1:])), flush=True)
