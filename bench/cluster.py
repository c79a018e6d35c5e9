"""Issue 12: hlstrio nodes behind HAProxy (docs/cluster/haproxy.cfg) sharing Redis.

Three figures, each against its baseline in the same run:

1. Remux players at 1x pace with 0 errors and p99 < 1 s (P7's players and search, through
   HAProxy): two nodes vs one node, each behind its own HAProxy with its own Redis, both up
   for the whole search and stepped in turn so machine noise falls on both alike. The player
   process, HAProxy and the nodes all share this machine's cores: the note gives each side's
   node CPU per player.
2. The Redis cost of the miss path: a request for an id no node knows (registry miss, then
   one directory round trip, then 404) on a cluster node vs on a single node without Redis
   (registry miss, 404); and the first request of a session on a node that does not hold it
   (the directory round trips plus the adoption: media re-verified, plan, registered) vs the
   same request once it is held. Medians of alternating samples.
3. A remux segment through HAProxy vs straight from the node that holds it (wrk, the same
   settings, best of alternating rounds).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cluster._procs import Haproxy, Node, Redis

from ._common import WORK, Result, media, server, tree_cpu_seconds, wrk
from .capacity import (
    LIMIT,
    SECONDS,
    START,
    Step,
    interleaved,
    players,
    search_steps,
    summary,
    users_config,
)

COMMAND = "nox -s bench -- cluster"
SAMPLES = 40  # per side, alternating
BISECTIONS = 2  # after the doubling: the answer within a quarter of the last doubling step
WRK_SECONDS, WRK_CONNECTIONS, WRK_ROUNDS = 6, 20, 3


@dataclass
class Cluster:
    redis: Redis
    nodes: list[Node]
    haproxy: Haproxy

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(n.process.pid) for n in self.nodes if n.process)


@contextmanager
def cluster(name: str, size: int, library: Path, config: str) -> Iterator[Cluster]:
    root = WORK / "cluster" / name
    with ExitStack() as stack:
        redis = Redis(root / "redis").start()
        stack.callback(redis.stop)
        nodes = [
            Node(f"{name}{i}", root / f"node{i}", library, redis.url, config)
            for i in range(1, size + 1)
        ]
        for node in nodes:
            node.launch()
            stack.callback(node.stop)
        for node in nodes:
            node.wait()
        proxy = Haproxy(root / "haproxy", nodes).start()
        stack.callback(proxy.stop)
        _wait_up(proxy, {n.name for n in nodes})
        yield Cluster(redis, nodes, proxy)


def _wait_up(proxy: Haproxy, names: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while proxy.up() != names or proxy.up("hlstrio_api") != names:
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy sees {proxy.up()} up, not {names}")
        time.sleep(0.05)  # polling HAProxy's runtime API, with a deadline


def _step(side: Cluster, tokens_file: Path, n: int) -> Step:
    """One P7 step through the side's HAProxy, with where the machine's cores went over it:
    the nodes, HAProxy, and the player process itself (all on the same 2 cores)."""
    assert side.haproxy.process is not None
    proxy_pid = side.haproxy.process.pid
    nodes_before, proxy_before = side.cpu_seconds(), tree_cpu_seconds(proxy_pid)
    start = time.perf_counter()
    result = players("hlstrio", side.haproxy.url, str(tokens_file), str(n), str(SECONDS))
    wall = time.perf_counter() - start
    result["server_cpu"] = side.cpu_seconds() - nodes_before
    result["cores"] = {
        "nodes": result["server_cpu"] / wall,
        "haproxy": (tree_cpu_seconds(proxy_pid) - proxy_before) / wall,
        "players": result["cpu_self"] / wall,
    }
    return result


def _summary(result: Step) -> str:
    cores = ", ".join(f"{k} {v:.2f}" for k, v in result["cores"].items())
    return f"{summary(result)}, cores used: {cores}"


def _session(url: str, token: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        item = client.get("/api/v1/media").json()["items"][0]
        created = client.post("/api/v1/sessions", json={"media_id": item["id"]})
        created.raise_for_status()
        session: dict[str, Any] = created.json()
        return session


def _seconds(client: httpx.Client, url: str, expect: int) -> float:
    """One request on a kept-alive connection (a new client per request would measure
    httpx's own set-up, ~30 ms, not the server)."""
    start = time.perf_counter()
    response = client.get(url, timeout=60)
    took = time.perf_counter() - start
    if response.status_code != expect:
        raise RuntimeError(f"GET {url}: {response.status_code}, wanted {expect}")
    return took


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run() -> list[Result]:
    clip = media("p7/clip-720p-60s.mp4", "h264_aac_mp4", 60, 1280, 720)
    tokens, tokens_file, config = users_config(LIMIT)
    with (
        cluster("one", 1, clip.parent, config) as one,
        cluster("two", 2, clip.parent, config) as two,
        server(clip.parent, config) as single,
    ):
        sides = {"one": one, "two": two}

        def stepper(name: str) -> Any:
            def step(n: int) -> Step:
                result = _step(sides[name], tokens_file, n)
                print(f"  {name} node(s), {n} players: {_summary(result)}", flush=True)
                return result

            return step

        answers, memo = interleaved(
            {"one": stepper("one"), "two": stepper("two")},
            {name: search_steps(START, LIMIT, bisections=BISECTIONS) for name in sides},
        )

        # 2. The miss path. Sessions made through node 1's API, first asked for on node 2.
        first, held, unknown_cluster, unknown_single = [], [], [], []
        a, b = two.nodes
        with httpx.Client(base_url=b.url) as to_b, httpx.Client(base_url=single) as to_single:
            for client in (to_b, to_single):  # connections open before the first sample
                client.get("/healthz").raise_for_status()
            for k in range(SAMPLES):
                session = _session(a.url, tokens[k])
                path = session["master_url"]
                first.append(_seconds(to_b, path, 200))
                held.append(_seconds(to_b, path, 200))
                nobody = f"/hls/{'0' * 31}{k % 10}/master.m3u8"
                unknown_cluster.append(_seconds(to_b, nobody, 404))
                unknown_single.append(_seconds(to_single, nobody, 404))
                httpx.delete(
                    f"{a.url}/api/v1/sessions/{session['id']}",
                    headers={"Authorization": f"Bearer {tokens[k]}"},
                    timeout=60,
                ).raise_for_status()

        # 3. One segment, through HAProxy vs from the node holding it.
        session = _session(two.haproxy.url, tokens[SAMPLES])
        master = httpx.get(two.haproxy.url + session["master_url"], timeout=60).text
        video = next(line for line in master.splitlines() if line and not line.startswith("#"))
        segment = (
            session["master_url"].rsplit("/", 1)[0] + "/" + video.replace("index.m3u8", "seg-1.ts")
        )
        httpx.get(two.haproxy.url + segment, timeout=60).raise_for_status()  # adopted, warm
        holder = _holder(two, session["id"])  # the node HAProxy hashes the session to
        runs: dict[str, list[Any]] = {"proxy": [], "direct": []}
        for _ in range(WRK_ROUNDS):
            runs["proxy"].append(wrk(two.haproxy.url + segment, WRK_SECONDS, WRK_CONNECTIONS))
            runs["direct"].append(wrk(holder.url + segment, WRK_SECONDS, WRK_CONNECTIONS))

    tried = {
        name: "; ".join(f"{k}: {_summary(v)}" for k, v in sorted(memo[name].items()))
        for name in sides
    }
    proxy = max(runs["proxy"], key=lambda w: w.requests_per_s)
    direct = max(runs["direct"], key=lambda w: w.requests_per_s)
    errors = sum(w.errors for w in runs["proxy"] + runs["direct"])
    wrk_note = f"wrk -t2 -c{WRK_CONNECTIONS} {WRK_SECONDS} s, best of {WRK_ROUNDS} rounds each"
    return [
        Result(
            figure="Cluster: remux players at 1x pace through HAProxy, 0 errors and p99 < 1 s, "
            "two nodes (baseline: one node)",
            value=float(answers["two"]),
            baseline=float(answers["one"]),
            unit="players",
            target="two nodes well over 1.5x one node",
            command=COMMAND,
            note=f"P7's players (video + audio rendition, 720p, 6 s segments), each side its own "
            f"Redis and HAProxy, stepped in turn; the player process, HAProxy and the nodes "
            f"share this machine's 2 cores; two nodes: {tried['two']}; one node: {tried['one']}",
        ),
        Result(
            figure="Cluster: request for an unknown session id on a cluster node (registry miss "
            "+ Redis round trip) vs a single node without Redis",
            value=_ms(unknown_cluster),
            baseline=_ms(unknown_single),
            unit="ms (median)",
            target="the miss path costs one Redis round trip",
            command=COMMAND,
            note=f"{SAMPLES} alternating samples each, straight to the node (no HAProxy); the "
            f"difference is the directory's cost of a miss",
        ),
        Result(
            figure="Cluster: first request of a session on a node that does not hold it "
            "(adoption from Redis) vs the same request once held",
            value=_ms(first),
            baseline=_ms(held),
            unit="ms (median)",
            target="one slow request per session and node",
            command=COMMAND,
            note=f"master playlist, {SAMPLES} sessions made through node 1's API and first "
            f"asked for on node 2: directory lookup + lease script + media re-verified + plan "
            f"+ register; max first {max(first) * 1000:.0f} ms",
        ),
        Result(
            figure="Cluster: remux segment latency through HAProxy vs straight from its node",
            value=proxy.latency_ms,
            baseline=direct.latency_ms,
            unit="ms (wrk mean)",
            target="HAProxy adds little",
            command=COMMAND,
            note=f"{wrk_note}; {proxy.requests_per_s:.0f} vs {direct.requests_per_s:.0f} req/s; "
            f"{errors} errors",
        ),
    ]


def _holder(side: Cluster, session_id: str) -> Node:
    """The node holding the session: the one whose log says it adopted it (made through the
    API, a session is only a record until its first HLS request reaches a node)."""
    short = session_id[:8]
    for node in side.nodes:
        if f"session {short}: adopted" in node.log():
            return node
    raise RuntimeError(f"no node of {[n.name for n in side.nodes]} adopted session {short}")
