"""Fuzz the live server from its own /openapi.json with schemathesis (its CLI, as a user would).

The server runs with one user, so schemathesis also checks that calls without the token are
refused (ignored_auth). Afterwards the server must stop cleanly with nothing left behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ._live import encoder_pids, live_server, session_dirs

TOKEN = "fuzz-token-0123456789abcdef"
CONFIG = """\
# schemathesis settings for hlstrio (written by `python -m soak fuzz`).
[checks.positive_data_acceptance]
# Valid-looking ids that name nothing are a 404; a full session cap a 429; unplayable media 415.
expected-statuses = ["2xx", "404", "415", "429"]

[[operations]]
include-operation-id = "createSession"
# The body parser takes a start below the item's duration only; JSON Schema cannot say that,
# so schema-valid bodies may get a 400.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "415", "429"]
"""


def run_fuzz(work: Path, media: Path, max_examples: int, seed: int, extra: list[str]) -> int:
    settings = {"segment_seconds": 2.0, "segment_wait": 5.0, "max_sessions_per_user": 50}
    config = work / "schemathesis.toml"
    config.write_text(CONFIG)
    with live_server(work, [media], settings, {"fuzz": TOKEN}) as server:
        exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
        argv = [
            exe,
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--url",
            server.url,
            "--checks",
            "all",
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed),
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(work / "report"),
            *extra,
        ]
        print("fuzz:", " ".join(argv))
        result = subprocess.run(argv, check=False, cwd=work)  # its cache dir goes there
        alive = server.process.poll() is None
        exit_code = server.stop()
        left = session_dirs(server.temp_dir), list(encoder_pids(server.temp_dir))
    print(
        f"fuzz: schemathesis exit {result.returncode}; server alive after it: {alive}, exit "
        f"code {exit_code}, left behind: dirs {left[0]}, encoders {left[1]}"
    )
    return 0 if result.returncode == 0 and alive and exit_code == 0 and not any(left) else 1
