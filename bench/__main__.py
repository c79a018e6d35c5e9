"""Run the benchmarks and write BENCHMARKS.md: `python -m bench [name ...]`."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from . import lookup
from ._common import Result

BENCHES = {"lookup": lookup.run}
OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main(names: list[str]) -> int:
    results: list[Result] = []
    for name in names or list(BENCHES):
        print(f"bench: {name} ...", flush=True)
        start = time.perf_counter()
        result = BENCHES[name]()
        print(
            f"  {result.figure}: {result.value:.3f} vs {result.baseline:.3f} {result.unit} "
            f"(ratio {result.ratio:.3f}) in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        results.append(result)
    write(results)
    return 0


def write(results: list[Result]) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `nox -s bench` (never by the test suite). Each figure is measured beside its",
        "baseline in the same run on the same machine; the ratio is what to compare across runs.",
        "",
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}.",
        "",
        "| figure | hlstrio | baseline | ratio | target | unit | command | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.figure} | {r.value:.3f} | {r.baseline:.3f} | {r.ratio:.3f} | {r.target} "
            f"| {r.unit} | `{r.command}` | {r.note} |"
        )
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
