"""P1: warm segment request latency with N sessions registered / with 1 (target <= 1.10).

Sessions belong to N distinct users (one per token), so every one is a real registry entry
with its own task, watchdog and timeline — created through the public API.
"""

from __future__ import annotations

import secrets

import httpx

from ._common import WORK, Result, media, median_ms, server, timed

ROUNDS = 3
REQUESTS = 400


def _measure(client: httpx.Client, segment_url: str, headers: dict[str, str]) -> float:
    for _ in range(20):  # warm: cut once, then cached
        assert client.get(segment_url, headers=headers).status_code == 200
    samples = [timed(lambda: client.get(segment_url, headers=headers)) for _ in range(REQUESTS)]
    return median_ms(samples)


def run(sessions: int = 10_000) -> Result:
    clip = media("p1/clip-720p.mp4", "h264_aac_mp4", 12, 1280, 720)
    tokens = {f"u{i}": secrets.token_urlsafe(18) for i in range(sessions)}
    users = "".join(f'[users.{name}]\ntoken = "{token}"\n' for name, token in tokens.items())
    config = (
        f"max_sessions = {sessions + 10}\nmax_sessions_per_user = 4\n"
        f"idle_timeout = 3600\nsegment_seconds = 6\n{users}"
    )
    with server(clip.parent, config) as url, httpx.Client(base_url=url, timeout=30) as client:
        first = {"Authorization": f"Bearer {tokens['u0']}"}
        media_id = client.get("/api/v1/media", headers=first).json()["items"][0]["id"]
        session = client.post("/api/v1/sessions", json={"media_id": media_id}, headers=first)
        segment_url = session.json()["master_url"].replace("master.m3u8", "seg-1.ts")

        one: list[float] = []
        many: list[float] = []
        created = 1
        for round_ in range(ROUNDS):
            one.append(_measure(client, segment_url, first))
            # Fill up to N sessions (first round only), then measure with all registered.
            while created < sessions:
                headers = {"Authorization": f"Bearer {tokens[f'u{created}']}"}
                r = client.post("/api/v1/sessions", json={"media_id": media_id}, headers=headers)
                assert r.status_code == 201, r.text
                created += 1
            many.append(_measure(client, segment_url, first))
            if round_ < ROUNDS - 1:
                # Back to one session for the next baseline round.
                for i in range(1, sessions):
                    headers = {"Authorization": f"Bearer {tokens[f'u{i}']}"}
                    listed = client.get("/api/v1/sessions", headers=headers).json()["items"]
                    for s in listed:
                        client.delete(f"/api/v1/sessions/{s['id']}", headers=headers)
                created = 1
    base, loaded = min(one), min(many)
    return Result(
        figure=f"P1 warm segment latency, {sessions:,} sessions / 1 session",
        value=loaded,
        baseline=base,
        unit="ms (median of 400, best of 3 rounds)",
        target="ratio <= 1.10",
        command="nox -s bench -- lookup",
        note=f"720p 6 s segment (~{_size_hint()}), sequential keep-alive client",
    )


def _size_hint() -> str:
    return "in-memory remux cache hit"


__all__ = ["WORK", "run"]
