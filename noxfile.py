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
    """Benchmarks (never part of the test suite); writes BENCHMARKS.md."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "bench", *session.posargs)
