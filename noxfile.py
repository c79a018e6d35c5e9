"""nox sessions: tests (default), lint, typecheck, bench, cluster; reliability runs soak, load,
fuzz."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

SOURCES = ["hlstrio", "tests", "bench", "soak", "noxfile.py"]
# The quick cluster tests are part of the suite, so the sessions install the `cluster` extra
# (coredis, the Redis client; a single node never imports it).
PROJECT = ".[test,cluster]"
CLUSTER_TOOLS = {"redis-server": "redis-server", "haproxy": "haproxy"}


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: real server on loopback, real ffmpeg, ffmpeg as the HLS client."""
    session.install("-e", PROJECT)
    session.run("pytest", *session.posargs)


@nox.session
def cluster(session: nox.Session) -> None:
    """Three nodes behind HAProxy sharing Redis, on loopback: every cluster test, the long ones
    too (a node SIGKILLed under a transcode player, Redis stopped mid-play). `-- ARGS` go to
    pytest. Installs Debian's redis-server and haproxy when run as root and they are missing."""
    session.install("-e", PROJECT)
    _debian_tools(session, CLUSTER_TOOLS)
    env = {"HLSTRIO_CLUSTER_TESTS": "full"}
    session.run("pytest", "tests/cluster", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", PROJECT, "mypy==2.4.1")
    session.run("mypy", "hlstrio", "soak")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (never part of the test suite); writes BENCHMARKS.md. `-- NAME` runs one."""
    session.install("-e", PROJECT)
    _debian_tools(session, {"nginx": "nginx-light", "wrk": "wrk", **CLUSTER_TOOLS})
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


# Reliability runs (RELIABILITY.md): each starts a real server on a loopback port itself, stops
# it, and fails on any error or leftover. Options after `--` go to `python -m soak <run>`.


@nox.session
def soak(session: nox.Session) -> None:
    """Thousands of randomized create/play/seek/delete/idle/kill operations, then leak checks."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "soak", "soak", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """200 remux players at playback pace for 60 s: errors and segment latency percentiles."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "soak", "load", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """schemathesis against a live server, generated from the server's own /openapi.json."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "soak", "fuzz", *session.posargs)
