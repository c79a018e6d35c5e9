"""nox sessions: tests (default), lint, typecheck, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

SOURCES = ["hlstrio", "tests", "bench", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: real server on loopback, real ffmpeg, ffmpeg as the HLS client."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy==2.4.1")
    session.run("mypy", "hlstrio")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (never part of the test suite); writes BENCHMARKS.md. `-- NAME` runs one."""
    session.install("-e", ".[test]")
    _debian_tools(session, {"nginx": "nginx-light", "wrk": "wrk"})
    session.run("python", "-m", "bench", *session.posargs)


def _debian_tools(session: nox.Session, tools: dict[str, str]) -> None:
    """Install missing command-line tools from Debian's packages (as root), else say how."""
    import os
    import shutil

    missing = [
        package
        for tool, package in tools.items()
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}"))
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        session.error(f"missing {missing}: sudo apt-get install -y {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)
