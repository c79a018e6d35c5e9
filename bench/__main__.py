"""Run the benchmarks and write BENCHMARKS.md: `python -m bench [name ...]`.

Running a subset replaces only that subset's rows; the other rows keep their own date.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import (
    ac3,
    audio,
    capacity,
    cluster,
    continuity,
    fmp4,
    lookup,
    playlist,
    seek,
    segments,
    startup,
    subtitles,
    thumbnails,
    transcodes,
)
from ._common import Result

BenchFn = Callable[[], Result | list[Result]]
BENCHES: dict[str, BenchFn] = {
    "lookup": lookup.run,  # P1
    "segments": segments.run,  # P2, direct and through the nginx front
    "playlist": playlist.run,  # P3
    "startup": startup.run,  # P4
    "capacity": capacity.run,  # P7, players fetching video + audio renditions
    "ac3": ac3.run,  # players on an AC-3 5.1 source: in-process audio vs ffmpeg per session
    "transcodes": transcodes.run,  # sessions the old rules transcoded that are copies now
    "seek": seek.run,  # issue 3: far seeks, throttled CPU, keyframe index
    "subtitles": subtitles.run,  # WebVTT segment of an embedded track, cold, vs whole extraction
    "fmp4": fmp4.run,  # fMP4 vs MPEG-TS cut of one 6 s 720p segment
    "audio": audio.run,  # audio renditions: COPY vs ENCODE (5.1 AC-3) vs the video remux cut
    "continuity": continuity.run,  # make_continuous vs a byte copy; bytes added per segment
    "thumbnails": thumbnails.run,  # issue 6: scrub thumbnails on demand vs an ffmpeg process
    "cluster": cluster.run,  # issue 12: nodes behind HAProxy sharing Redis
}
OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
_HEADER = "| figure | hlstrio | baseline | ratio | target | unit | command | note | measured |"


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench(es) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    chosen = names or list(BENCHES)
    rows: dict[str, list[str]] = {}
    begun = time.perf_counter()
    for name in chosen:
        print(f"bench: {name} ...", flush=True)
        start = time.perf_counter()
        load_before = os.getloadavg()[0]
        outcome = BENCHES[name]()
        results = outcome if isinstance(outcome, list) else [outcome]
        # The 1-min load average before and after: other work on the shared machine.
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        stamp += f", load {load_before:.1f}-{os.getloadavg()[0]:.1f}"
        for result in results:
            print(
                f"  {result.figure}: {result.value:.3f} vs {result.baseline:.3f} {result.unit} "
                f"(ratio {result.ratio:.3f})",
                flush=True,
            )
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
        rows[name] = [_row(r, stamp) for r in results]
    write(rows, full=not names, seconds=time.perf_counter() - begun)
    return 0


def _row(r: Result, stamp: str) -> str:
    return (
        f"| {r.figure} | {r.value:.3f} | {r.baseline:.3f} | {r.ratio:.3f} | {r.target} "
        f"| {r.unit} | `{r.command}` | {r.note} | {stamp} |"
    )


def _previous_rows() -> dict[str, list[str]]:
    """Rows of the current file, by bench name (from their `nox -s bench -- NAME` command)."""
    rows: dict[str, list[str]] = {}
    if not OUT.exists():
        return rows
    for line in OUT.read_text().splitlines():
        match = re.search(r"`nox -s bench -- (\w+)`", line)
        if line.startswith("| ") and match and match.group(1) in BENCHES:
            if line.count(" | ") < _HEADER.count(" | "):
                line += " (earlier format) |"
            rows.setdefault(match.group(1), []).append(line)
    return rows


def write(fresh: dict[str, list[str]], *, full: bool, seconds: float) -> None:
    rows = {**_previous_rows(), **fresh}
    run = "full run" if full else f"partial run ({', '.join(fresh)})"
    lines = [
        "# Benchmarks",
        "",
        "Written by `nox -s bench` (never by the test suite). Each figure is measured beside its",
        "baseline in the same run on the same machine, in alternating rounds (throughput: the",
        "best round of each side, since noise from other work on the machine only ever lowers",
        "it); the ratio is what to compare across runs. `nox -s bench -- NAME` reruns one bench",
        "and keeps the other rows (with their own date). Where the time goes: PERFORMANCE.md.",
        "",
        f"Last {run}: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.machine()}, {_cpus()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, {seconds / 60:.1f} min.",
        "",
        _HEADER,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in BENCHES:
        lines.extend(rows.get(name, []))
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
