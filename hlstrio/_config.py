"""Settings: defaults < TOML file < HLSTRIO_* environment < command-line flags.

One frozen value object built once at start-up; everything else takes it as an argument, so
tests build their own without touching the process environment.

A typo must never pass silently: an unknown TOML key and an unknown `HLSTRIO_` variable are
both errors. The only `HLSTRIO_` variables that are not settings are the few in
`NOT_SETTINGS` (read by the test suite and the benchmarks, which run this server with their
environment). Tokens are secrets: no error message, and no repr, ever contains one.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit


class ConfigError(Exception):
    """A bad setting: the CLI prints it on one line and exits non-zero."""


_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,62}")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """`[cluster]`: several hlstrio nodes behind HAProxy sharing one session directory in Redis.

    Absent (the default), hlstrio is one node and needs no Redis. `redis_url` may hold a
    password: it is never in a repr, a log line or an error message (`redacted_url` is).
    """

    redis_url: str = field(repr=False)
    node: str  # unique in the cluster: leases and the directory's "who serves it" name it
    # How other nodes and operators reach this node ("http://10.0.0.11:8000"); "" = the URL
    # it listens on. Recorded in the directory (node heartbeats, the encoder owner).
    advertise: str = ""
    # Encoders this node runs at most; None = max_transcodes (which is the cluster's total).
    node_max_transcodes: int | None = None
    # Seconds between a node's batched directory updates: last access, session state, lease
    # renewals, and the check that sessions it holds were not ended elsewhere.
    sync_interval: float = 2.0
    key_prefix: str = "hlstrio"  # Redis key prefix: clusters may share one Redis

    def __post_init__(self) -> None:
        parsed = _parse_redis_url(self.redis_url)  # validates; names only the redacted form
        del parsed
        if not _NODE_NAME.fullmatch(self.node):
            raise ConfigError(
                f"cluster.node must be 1-63 letters, digits, '.', '_' or '-', got {self.node!r}"
            )
        if self.advertise and not _ADVERTISE.fullmatch(self.advertise):
            raise ConfigError(
                f"cluster.advertise must be http(s)://host:port, got {self.advertise!r}"
            )
        if self.node_max_transcodes is not None and self.node_max_transcodes < 0:
            raise ConfigError(
                f"cluster.node_max_transcodes must be >= 0, got {self.node_max_transcodes!r}"
            )
        if not 0 < self.sync_interval <= 60:
            raise ConfigError(
                f"cluster.sync_interval must be in (0, 60], got {self.sync_interval!r}"
            )
        if not _KEY_PREFIX.fullmatch(self.key_prefix):
            raise ConfigError(f"cluster.key_prefix must be a plain name, got {self.key_prefix!r}")

    @property
    def redacted_url(self) -> str:
        """`redis_url` with any password replaced by ***: what logs and errors show."""
        return redact_url(self.redis_url)


def redact_url(url: str) -> str:
    """A URL with its password (userinfo after ':', or a `password=` query) replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    if "password=" in parts.query:
        query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def _parse_redis_url(url: str) -> SplitResult:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise ConfigError(f"cluster.redis_url is not a valid URL: {shown}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"cluster.redis_url must start with redis://, rediss:// or unix://, got {shown}"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"cluster.redis_url needs a socket path: {shown}")
    elif not parts.hostname:
        raise ConfigError(f"cluster.redis_url needs a host: {shown}")
    del port
    return parts


_ADVERTISE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}/?")


@dataclass(frozen=True, slots=True)
class Settings:
    media: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    temp_dir: Path | None = None  # parent of per-session dirs; None = system temp
    cache_dir: Path | None = None  # probe cache and demo library; None = ~/.cache/hlstrio
    ffmpeg: str | None = None  # path to ffmpeg; None = system ffmpeg, else the bundled one
    segment_seconds: float = 6.0
    idle_timeout: float = 60.0
    session_ttl: float = 21600.0
    segment_wait: float = 15.0
    max_sessions: int = 100
    max_sessions_per_user: int = 4
    max_transcodes: int = 4
    # Transcode encoder governance (see streaming/_policy.py).
    seek_gap: float = 24.0  # a request this far beyond the encoder restarts it there
    throttle_ahead: float = 60.0  # pause ffmpeg this far beyond the furthest request
    keep_behind: float = 120.0  # prune segments this far behind the player
    temp_max_bytes: int = 10 * 1024**3  # all sessions' segments on disk; 0 = no limit
    encoder_retries: int = 3  # restarts of a crashed encoder before the session fails
    remux_cache_bytes: int = 256 * 1024**2  # recently cut remux segments, all sessions
    insecure_no_auth: bool = False
    # nginx front (docs/nginx.conf): transcode segments are answered with X-Accel-Redirect to
    # accel_prefix + their path under temp_dir, and nginx sends the file with sendfile.
    accel_redirect: bool = False
    accel_prefix: str = "/_hlstrio/"  # nginx `internal` location aliasing temp_dir
    # "127.0.0.1:8001": a lean HTTP endpoint (h11, no Hypercorn/Quart) for nginx's segment
    # requests only; "" = off (nginx then sends them to the main port).
    accel_listen: str = ""
    metrics: bool = True  # GET /metrics (Prometheus text) and per-request timing
    # Browser origins allowed to call the API ("https://app.example:8443"; "*" = any). HLS
    # URLs answer every origin regardless: they are capability URLs (web/_cors.py).
    cors_origins: tuple[str, ...] = ()
    # Watch the media roots and rescan on changes (POST /api/v1/library/rescan works either
    # way). A burst of changes is scanned once nothing changed for watch_debounce seconds, at
    # the latest 5 x watch_debounce after the first change.
    watch: bool = True
    watch_debounce: float = 1.0
    # user name -> bearer token; repr=False so no log line or traceback shows a token.
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    # [cluster]: None = one node, no Redis (the default).
    cluster: ClusterSettings | None = None

    def __post_init__(self) -> None:
        for name in _FLOATS - {"keep_behind"}:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.keep_behind < 0:
            raise ConfigError(f"keep_behind must be >= 0, got {self.keep_behind!r}")
        for name in (
            "max_sessions",
            "max_sessions_per_user",
            "max_transcodes",
            "temp_max_bytes",
            "encoder_retries",
            "remux_cache_bytes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if not (
            self.accel_prefix.startswith("/")
            and self.accel_prefix.endswith("/")
            and all(c.isascii() and (c.isalnum() or c in "/-._~") for c in self.accel_prefix)
        ):
            raise ConfigError(f"accel_prefix must look like /_hlstrio/, got {self.accel_prefix!r}")
        if self.accel_listen:
            self.accel_address()  # validates
        tokens = list(self.users.values())
        if len(set(tokens)) != len(tokens):
            raise ConfigError("two users share one token")
        for user, token in self.users.items():
            # The messages name the user, never the token (or any part of it).
            if len(token) < 16:
                raise ConfigError(f"token of user {user!r} is shorter than 16 characters")
            if not _B64TOKEN.fullmatch(token):
                # Anything else could never match: clients send the header as ASCII and the
                # server strips whitespace around it.
                raise ConfigError(
                    f"token of user {user!r} may only contain letters, digits and -._~+/ "
                    "(then '=' padding): RFC 6750 b64token"
                )

    def accel_address(self) -> tuple[str, int]:
        """`accel_listen` as (host, port)."""
        host, _, port = self.accel_listen.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"accel_listen must be HOST:PORT, got {self.accel_listen!r}")
        return host, int(port)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.users)

    def check_bind(self) -> None:
        """Without users, only loopback may listen unless the operator insists."""
        if self.auth_enabled or self.insecure_no_auth:
            return
        if self.host == "localhost":
            return
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"refusing to listen on {self.host} without [users] tokens; "
                "configure users or pass --insecure-no-auth"
            )


# RFC 6454 origin as browsers send it: scheme://host[:port], no path.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+/?")

# RFC 6750 2.1: the characters a Bearer credential consists of.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

ENV_PREFIX = "HLSTRIO_"
# HLSTRIO_ variables that are not settings, yet legitimately set where the server runs: the
# test suite's and the benchmarks' own knobs (servers they start inherit their environment).
NOT_SETTINGS = frozenset(
    {
        "HLSTRIO_CHROMIUM",  # tests/conftest.py: the chromium binary for the browser tests
        "HLSTRIO_SCREENSHOTS",  # tests/web/_browser.py: keep the pages' screenshots here
        "HLSTRIO_BENCH_DIR",  # bench/_common.py: the benchmarks' work directory
        "HLSTRIO_CLUSTER_TESTS",  # tests/cluster: "full" runs the long ones (nox -s cluster)
    }
)

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Field types are strings here (postponed annotations): "float", "int", ...
_FLOATS = {f.name for f in dataclasses.fields(Settings) if f.type == "float"}
_INTS = {f.name for f in dataclasses.fields(Settings) if f.type == "int"}
_PATHS = {f.name for f in dataclasses.fields(Settings) if f.type == "Path | None"}
_BOOLS = {f.name for f in dataclasses.fields(Settings) if f.type == "bool"}


def _coerce(key: str, value: Any, source: str, *, from_env: bool = False) -> Any:
    """Turn a TOML/env/flag value into the field's type, with a one-line error."""
    try:
        if key == "media":
            if isinstance(value, str):
                parts = [p for p in value.split(os.pathsep) if p] if from_env else [value]
            elif isinstance(value, list | tuple) and all(isinstance(v, str | Path) for v in value):
                parts = [str(v) for v in value]
            else:
                raise TypeError("a list of paths")
            return tuple(Path(p).expanduser() for p in parts)
        if key == "cors_origins":
            if isinstance(value, str):
                origins = [o.strip() for o in value.split(",") if o.strip()]
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                origins = [v.strip() for v in value]
            else:
                raise TypeError('a list of origins like "https://app.example"')
            for origin in origins:
                if origin != "*" and not _ORIGIN.fullmatch(origin):
                    raise ValueError(f"{origin!r} is not scheme://host[:port]")
            return tuple(origin.rstrip("/") for origin in origins)
        if key in _FLOATS:
            if isinstance(value, bool):
                raise TypeError("a number")
            return float(value)
        if key in _INTS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError("an integer")
            return int(value)
        if key in _PATHS:
            if not isinstance(value, str | Path):
                raise TypeError("a path string")
            return Path(value).expanduser()
        if key in _BOOLS:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if key == "users":
            if not isinstance(value, Mapping):
                raise TypeError("a table of [users.NAME] with token = ...")
            users: dict[str, str] = {}
            for name, entry in value.items():
                token = entry.get("token") if isinstance(entry, Mapping) else None
                if not isinstance(token, str):
                    raise TypeError(f'[users.{name}] needs token = "..."')
                unknown = sorted(set(entry) - {"token"})
                if unknown:
                    raise TypeError(f"[users.{name}] has unknown key {unknown[0]!r}")
                users[str(name)] = token
            return users
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    except (TypeError, ValueError) as exc:
        # The users table holds the tokens: name what is wrong, never show the value.
        shown = "" if key == "users" else f"{value!r} "
        raise ConfigError(f"{source}: bad value for {key}: {shown}({exc})") from None


def _unknown(name: str, known: Iterable[str], prefix: str = "") -> str:
    """The message for an unknown setting, naming the closest real one if there is one.

    Names are compared without the prefix, which every candidate shares."""
    message = f"unknown setting {name!r}"
    for close in difflib.get_close_matches(name.removeprefix(prefix).lower(), list(known), n=1):
        message += f" (did you mean {prefix + close.upper() if prefix else close!r}?)"
    return message


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers. Unknown TOML keys and unknown HLSTRIO_ variables are errors, so typos
    do not pass silently; `env` defaults to the process environment."""
    values: dict[str, Any] = {}
    cluster: dict[str, Any] = {}  # [cluster], then HLSTRIO_CLUSTER_<KEY> over it
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {config_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"cannot read config {config_file}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            # tomllib's messages give a position, never the text there (which may be a token).
            raise ConfigError(f"bad TOML in {config_file}: {exc}") from None
        for key, value in data.items():
            if key == "cluster":
                cluster.update(_cluster_table(value, str(config_file)))
                continue
            if key not in _FIELDS:
                raise ConfigError(f"{config_file}: {_unknown(key, _FIELDS)}")
            values[key] = _coerce(key, value, str(config_file))
    env_names = [name for name in _FIELDS if name not in ("users", "cluster")]
    env_names += [f"cluster_{name}" for name in _CLUSTER_FIELDS]
    # Sorted: with several bad variables, the error names the same one every time.
    for key, value in sorted((os.environ if env is None else env).items()):
        if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "users":
            raise ConfigError(f"{key}: users and their tokens can only be set in the TOML file")
        if name.startswith("cluster_") and name[len("cluster_") :] in _CLUSTER_FIELDS:
            sub = name[len("cluster_") :]
            cluster[sub] = _coerce_cluster(sub, value, f"environment {key}", from_env=True)
            continue
        if name == "cluster" or name not in _FIELDS:
            # Names only: the value of a mistyped variable may be anything, a secret included.
            raise ConfigError(f"environment: {_unknown(key, env_names, ENV_PREFIX)}")
        values[name] = _coerce(name, value, f"environment {key}", from_env=True)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, "flag")
    if cluster:
        for required, what in (("redis_url", "redis://host:6379/0"), ("node", "a unique name")):
            if required not in cluster:
                raise ConfigError(f"[cluster] needs {required} ({what})")
        values["cluster"] = ClusterSettings(**cluster)
    return Settings(**values)


_CLUSTER_FIELDS = {f.name: f for f in dataclasses.fields(ClusterSettings)}


def _cluster_table(value: Any, source: str) -> dict[str, Any]:
    """The TOML [cluster] table, each key checked and typed."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: cluster must be a table: [cluster] redis_url = ...")
    table: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _CLUSTER_FIELDS:
            raise ConfigError(f"{source}: [cluster]: {_unknown(key, _CLUSTER_FIELDS)}")
        table[key] = _coerce_cluster(key, item, source)
    return table


def _coerce_cluster(key: str, value: Any, source: str, *, from_env: bool = False) -> Any:
    """One [cluster] value in its field's type; the Redis URL (it may hold a password) is
    never shown."""
    try:
        if key == "sync_interval":
            if isinstance(value, bool):
                raise TypeError("a number")
            return float(value)
        if key == "node_max_transcodes":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError("an integer")
            return int(value)
        if not isinstance(value, str):
            raise TypeError("a string")
        return value.strip() if from_env else value
    except (TypeError, ValueError) as exc:
        shown = "" if key == "redis_url" else f"{value!r} "
        raise ConfigError(f"{source}: bad value for cluster.{key}: {shown}({exc})") from None
