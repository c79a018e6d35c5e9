"""Settings layering: defaults < TOML < HLSTRIO_* env < flags, and their validation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hlstrio._config import NOT_SETTINGS, ConfigError, Settings, load_settings

ALICE = "alice-secret-token-0123"
BOB = "bob-secret-token-456789"


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hlstrio.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------------


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.media == ()
    assert s.host == "127.0.0.1"
    assert s.port == 8000
    assert s.temp_dir is None
    assert s.cache_dir is None
    assert s.ffmpeg is None
    assert s.segment_seconds == 6.0
    assert s.idle_timeout == 60.0
    assert s.session_ttl == 21600.0
    assert s.segment_wait == 15.0
    assert s.max_sessions == 100
    assert s.max_sessions_per_user == 4
    assert s.max_transcodes == 4
    assert s.insecure_no_auth is False
    assert dict(s.users) == {}
    assert s.auth_enabled is False


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_machine_environment_is_ignored_when_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLSTRIO_PORT", "1234")
    assert load_settings(env={}).port == 8000
    # ... and used when it is not.
    assert load_settings().port == 1234


# --- TOML --------------------------------------------------------------------------------------


def test_toml_values(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        f"""
media = ["/srv/movies", "/srv/shows"]
host = "0.0.0.0"
port = 8080
temp_dir = "/var/tmp/hlstrio"
cache_dir = "/var/cache/hlstrio"
ffmpeg = "/usr/bin/ffmpeg"
segment_seconds = 4
idle_timeout = 30.5
session_ttl = 3600
segment_wait = 10
max_sessions = 20
max_sessions_per_user = 2
max_transcodes = 1
remux_cache_bytes = 3000000

[users.alice]
token = "{ALICE}"

[users.bob]
token = "{BOB}"
""",
    )
    s = load_settings(path, env={})
    assert s.media == (Path("/srv/movies"), Path("/srv/shows"))
    assert s.host == "0.0.0.0"
    assert s.port == 8080
    assert s.temp_dir == Path("/var/tmp/hlstrio")
    assert s.cache_dir == Path("/var/cache/hlstrio")
    assert s.ffmpeg == "/usr/bin/ffmpeg"
    assert s.segment_seconds == 4.0
    assert isinstance(s.segment_seconds, float)
    assert s.idle_timeout == 30.5
    assert s.session_ttl == 3600.0
    assert s.segment_wait == 10.0
    assert s.max_sessions == 20
    assert s.max_sessions_per_user == 2
    assert s.max_transcodes == 1
    assert s.remux_cache_bytes == 3_000_000
    assert dict(s.users) == {"alice": ALICE, "bob": BOB}
    assert s.auth_enabled
    s.check_bind()  # users configured: any host is fine


def test_toml_single_media_string(tmp_path: Path) -> None:
    s = load_settings(toml(tmp_path, 'media = "/srv/a:b"\n'), env={})
    # In TOML a string is one path, even with a path separator in it.
    assert s.media == (Path("/srv/a:b"),)


def test_toml_media_expands_user(tmp_path: Path) -> None:
    s = load_settings(toml(tmp_path, 'media = ["~/Videos"]\n'), env={})
    assert s.media == (Path(os.path.expanduser("~/Videos")),)
    assert "~" not in str(s.media[0])


def test_empty_toml_is_defaults(tmp_path: Path) -> None:
    assert load_settings(toml(tmp_path, ""), env={}) == Settings()


@pytest.mark.parametrize(
    "text",
    ["prot = 8000\n", "segment_second = 6\n", "[user.alice]\ntoken = 'x'\n", "PORT = 1\n"],
)
def test_unknown_toml_key(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(toml(tmp_path, text), env={})


@pytest.mark.parametrize("text", ["port = \n", "port = 80 80\n", "[users.alice\n", 'host = "x\n'])
def test_bad_toml(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="bad TOML"):
        load_settings(toml(tmp_path, text), env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    "text",
    [
        'port = "eighty"\n',
        "port = true\n",
        "port = 80.5\n",
        "port = [80]\n",
        'segment_seconds = "six"\n',
        "segment_seconds = false\n",
        "max_sessions = 1.5\n",
        "max_transcodes = true\n",
        "media = 5\n",
        "media = [1, 2]\n",
        'users = "alice"\n',
        "[users.alice]\nname = 'no token'\n",
        "[users.alice]\ntoken = 12345678901234567890\n",
        "[users]\nalice = 'flat-string-token-123'\n",
    ],
)
def test_bad_types(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(toml(tmp_path, text), env={})


@pytest.mark.parametrize(
    "text",
    ["host = 8000\n", 'host = ["a", "b"]\n', "ffmpeg = true\n", "host = {}\n", "temp_dir = true\n"],
)
def test_non_string_for_string_settings(tmp_path: Path, text: str) -> None:
    # str() of any TOML value must not pass as a host name, an ffmpeg path or a directory.
    with pytest.raises(ConfigError):
        load_settings(toml(tmp_path, text), env={})


def test_integral_float_for_int_is_accepted(tmp_path: Path) -> None:
    assert load_settings(toml(tmp_path, "port = 8080.0\n"), env={}).port == 8080


@pytest.mark.parametrize(
    "text",
    [
        "segment_seconds = -6\n",
        "segment_seconds = 0\n",
        "idle_timeout = 0\n",
        "session_ttl = -1\n",
        "segment_wait = -0.5\n",
        "segment_seconds = nan\n",
        "max_sessions = -1\n",
        "max_sessions_per_user = -1\n",
        "max_transcodes = -1\n",
        "port = -1\n",
        "port = 65536\n",
    ],
)
def test_out_of_range_values(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be"):
        load_settings(toml(tmp_path, text), env={})


def test_zero_caps_are_allowed(tmp_path: Path) -> None:
    s = load_settings(toml(tmp_path, "max_sessions = 0\nmax_transcodes = 0\nport = 0\n"), env={})
    assert (s.max_sessions, s.max_transcodes, s.port) == (0, 0, 0)


def test_short_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_settings(toml(tmp_path, '[users.alice]\ntoken = "short"\n'), env={})
    with pytest.raises(ConfigError, match="shorter than 16"):
        Settings(users={"alice": "x" * 15})
    assert Settings(users={"alice": "x" * 16}).users == {"alice": "x" * 16}


def test_shared_token(tmp_path: Path) -> None:
    text = f'[users.alice]\ntoken = "{ALICE}"\n[users.bob]\ntoken = "{ALICE}"\n'
    with pytest.raises(ConfigError, match="share"):
        load_settings(toml(tmp_path, text), env={})


def test_error_message_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(toml(tmp_path, 'port = "eighty"\n'), env={})
    assert "port" in str(info.value)
    assert "\n" not in str(info.value)


# --- env ---------------------------------------------------------------------------------------


def test_env_overrides_toml(tmp_path: Path) -> None:
    path = toml(tmp_path, 'port = 8080\nmedia = ["/from/toml"]\nhost = "127.0.0.2"\n')
    env = {"HLSTRIO_PORT": "9000", "HLSTRIO_MEDIA": os.pathsep.join(["/a", "/b"])}
    s = load_settings(path, env=env)
    assert s.port == 9000
    assert s.media == (Path("/a"), Path("/b"))
    assert s.host == "127.0.0.2"  # not in env: TOML value stays


def test_env_values_are_coerced() -> None:
    env = {
        "HLSTRIO_SEGMENT_SECONDS": "2.5",
        "HLSTRIO_MAX_TRANSCODES": "0",
        "HLSTRIO_TEMP_DIR": "/tmp/x",
        "HLSTRIO_INSECURE_NO_AUTH": "yes",
        "HLSTRIO_HOST": "::1",
    }
    s = load_settings(env=env)
    assert s.segment_seconds == 2.5
    assert s.max_transcodes == 0
    assert s.temp_dir == Path("/tmp/x")
    assert s.insecure_no_auth is True
    assert s.host == "::1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("ON", True), ("0", False), ("false", False), ("", False)],
)
def test_env_booleans(value: str, expected: bool) -> None:
    assert load_settings(env={"HLSTRIO_INSECURE_NO_AUTH": value}).insecure_no_auth is expected


def test_env_media_skips_empty_parts() -> None:
    env = {"HLSTRIO_MEDIA": os.pathsep.join(["", "/a", "", "/b", ""])}
    assert load_settings(env=env).media == (Path("/a"), Path("/b"))


@pytest.mark.parametrize(
    "env",
    [
        {"HLSTRIO_PORT": "eighty"},
        {"HLSTRIO_PORT": "80.5"},
        {"HLSTRIO_SEGMENT_SECONDS": "x"},
        {"HLSTRIO_MAX_SESSIONS": "-3"},
        {"HLSTRIO_SEGMENT_SECONDS": "-1"},
    ],
)
def test_bad_env_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(env=env)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("HLSTRIO_SEGMENT_SECNDS", "HLSTRIO_SEGMENT_SECONDS"),
        ("HLSTRIO_PROT", "HLSTRIO_PORT"),
        ("HLSTRIO_NOPE", None),
        ("HLSTRIO_", None),
    ],
)
def test_unknown_env_variable_is_an_error(name: str, suggestion: str | None) -> None:
    # The same typo in TOML is an error (test_unknown_toml_key): the environment is no laxer.
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: "4", "HLSTRIO_PORT": "9000"})
    message = str(info.value)
    assert f"unknown setting {name!r}" in message and "\n" not in message
    if suggestion is None:
        assert "did you mean" not in message
    else:
        assert f"did you mean {suggestion!r}" in message


def test_unknown_toml_key_suggests_the_real_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'segment_secnds' \(did you mean "):
        load_settings(toml(tmp_path, "segment_secnds = 4\n"), env={})


def test_env_cannot_set_users() -> None:
    with pytest.raises(ConfigError, match=r"HLSTRIO_USERS: users .* only be set in the TOML file"):
        load_settings(env={"HLSTRIO_USERS": "alice"})


@pytest.mark.parametrize("name", sorted(NOT_SETTINGS))
def test_known_non_setting_variables_are_allowed(name: str) -> None:
    # Read by the tests and benchmarks, whose servers inherit their environment.
    assert load_settings(env={name: "/somewhere"}) == Settings()


def test_other_variables_are_ignored() -> None:
    env = {"PORT": "1", "hlstrio_port": "2", "XHLSTRIO_PORT": "3", "HLSTRIOPORT": "4"}
    assert load_settings(env=env) == Settings()


# --- flags -------------------------------------------------------------------------------------


def test_flags_override_env_and_toml(tmp_path: Path) -> None:
    path = toml(tmp_path, 'port = 8080\nhost = "127.0.0.2"\nmedia = ["/t"]\n')
    env = {"HLSTRIO_PORT": "9000", "HLSTRIO_HOST": "127.0.0.3", "HLSTRIO_MEDIA": "/e"}
    overrides: dict[str, Any] = {"port": 9100, "host": None, "media": ["/f1", "/f2"]}
    s = load_settings(path, env=env, overrides=overrides)
    assert s.port == 9100
    assert s.host == "127.0.0.3"  # a None flag means "not given"
    assert s.media == (Path("/f1"), Path("/f2"))


def test_flag_bool_and_bad_flag_value() -> None:
    assert load_settings(env={}, overrides={"insecure_no_auth": True}).insecure_no_auth is True
    with pytest.raises(ConfigError):
        load_settings(env={}, overrides={"port": "http"})


# --- check_bind --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_check_bind_refuses_public_host_without_users(host: str) -> None:
    with pytest.raises(ConfigError, match="insecure-no-auth"):
        Settings(host=host).check_bind()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_check_bind_allows_public_host_with_users(host: str) -> None:
    Settings(host=host, users={"alice": ALICE}).check_bind()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_check_bind_allows_public_host_when_insecure(host: str) -> None:
    Settings(host=host, insecure_no_auth=True).check_bind()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_check_bind_allows_loopback(host: str) -> None:
    Settings(host=host).check_bind()


def test_check_bind_through_load_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(env={"HLSTRIO_HOST": "0.0.0.0"}).check_bind()
    path = toml(tmp_path, f'host = "0.0.0.0"\n[users.alice]\ntoken = "{ALICE}"\n')
    load_settings(path, env={}).check_bind()
    load_settings(
        env={"HLSTRIO_HOST": "0.0.0.0"}, overrides={"insecure_no_auth": True}
    ).check_bind()


# --- secrets -----------------------------------------------------------------------------------

SECRET = "Zq9-secret-token-do-not-print"


@pytest.mark.parametrize(
    "text",
    [
        f'[users]\nalice = "{SECRET}"\n',  # a flat string instead of a table
        f'users = "{SECRET}"\n',
        f'users = ["{SECRET}"]\n',
        f'[users.alice]\ntoken = ["{SECRET}"]\n',
        f'[users.alice]\ntoken = "{SECRET}"\ntokne = "{SECRET}"\n',  # a stray key
        f'[users.alice]\ntoken = "{SECRET}"\n[users.bob]\ntoken = "{SECRET}"\n',  # shared
        f'[users.alice]\ntoken = "{SECRET[:10]}"\n',  # too short
        f'[users.alice]\ntoken = "{SECRET} x"\n',  # not a b64token
        f'[users.alice]\ntoken = "{SECRET}\u00e9"\n',
        f'[users.alice]\ntoken = "{SECRET}',  # bad TOML right after the secret
        f"[users.alice]\ntoken = {SECRET}\n",
        f'[users.alice]\ntoken = "{SECRET}"\ntoken = "{SECRET}"\n',
        f'[users.alice]\ntoken = "{SECRET}"\nport = "eighty"\n',
        f'token = "{SECRET}"\n',  # at the top level: an unknown setting
    ],
)
def test_no_error_shows_a_token(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(toml(tmp_path, text), env={})
    shown = f"{info.value} {info.value!r}"
    # Not the token, nor a recognisable piece of it.
    assert SECRET[:10] not in shown and SECRET[-10:] not in shown, shown
    assert info.value.__suppress_context__ or info.value.__context__ is None  # no traceback
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["HLSTRIO_TOKEN", "HLSTRIO_USERS", "HLSTRIO_USERS_ALICE"])
def test_no_error_shows_an_env_value(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: SECRET})
    assert SECRET[:10] not in f"{info.value} {info.value!r}"


def test_settings_repr_hides_tokens() -> None:
    settings = Settings(users={"alice": SECRET})
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert settings.users["alice"] == SECRET


@pytest.mark.parametrize("token", ["a" * 15 + " ", "tab\tinside-0123456", "ünïcode-token-0123"])
def test_token_must_be_a_bearer_credential(token: str) -> None:
    # RFC 6750 2.1 b64token: anything else cannot come back intact in an Authorization header.
    with pytest.raises(ConfigError, match="RFC 6750"):
        Settings(users={"alice": token})
    Settings(users={"alice": "Az09-._~+/" + "x" * 6 + "=="})


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'host = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path, env={})
