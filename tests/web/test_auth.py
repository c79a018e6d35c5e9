"""Bearer-token authentication, without a server."""

from __future__ import annotations

import pytest

from hlstrio.web._auth import LOCAL_USER, Authenticator
from hlstrio.web._errors import ApiError

ALICE = "alice-secret-token-0123"
BOB = "bob-secret-token-456789"


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator({"alice": ALICE, "bob": BOB})


def unauthorized(auth: Authenticator, header: str | None) -> ApiError:
    with pytest.raises(ApiError) as info:
        auth.user_for(header)
    assert info.value.status == 401
    assert info.value.code == "unauthorized"
    assert info.value.headers["WWW-Authenticate"].startswith('Bearer realm="hlstrio"')
    return info.value


@pytest.mark.parametrize("header", [None, "", "Bearer x", f"Bearer {ALICE}", "Basic abc"])
def test_without_users_everyone_is_the_local_user(header: str | None) -> None:
    auth = Authenticator({})
    assert auth.enabled is False
    assert auth.user_for(header) == LOCAL_USER == "local"


def test_enabled_with_users(auth: Authenticator) -> None:
    assert auth.enabled is True


def test_each_token_maps_to_its_user(auth: Authenticator) -> None:
    assert auth.user_for(f"Bearer {ALICE}") == "alice"
    assert auth.user_for(f"Bearer {BOB}") == "bob"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(auth: Authenticator, scheme: str) -> None:
    assert auth.user_for(f"{scheme} {ALICE}") == "alice"


def test_surrounding_whitespace_in_token_is_ignored(auth: Authenticator) -> None:
    assert auth.user_for(f"Bearer  {ALICE}  ") == "alice"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(auth: Authenticator, header: str | None) -> None:
    err = unauthorized(auth, header)
    assert err.headers == {"WWW-Authenticate": 'Bearer realm="hlstrio"'}
    assert "missing" in err.message


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token-wrong-token",
        "Bearer",
        "Bearer ",
        ALICE,  # no scheme
        f"Basic {ALICE}",
        f"Token {ALICE}",
        f"Bearer {ALICE.upper()}",  # tokens are case-sensitive
        f"Bearer {ALICE[:-1]}",  # a prefix is not the token
        f"Bearer {ALICE}x",
        f"Bearer {ALICE} {BOB}",
        f"Bearer {ALICE}{BOB}",
        "Bearer \udcff\udcfe",  # undecodable bytes must not crash the digest
        "Bearer \u00e9\u00e8" * 10,
        "local",
        "Bearer local",
    ],
)
def test_invalid_token(auth: Authenticator, header: str) -> None:
    err = unauthorized(auth, header)
    assert err.headers == {"WWW-Authenticate": 'Bearer realm="hlstrio", error="invalid_token"'}
    assert err.message == "invalid token"


def test_error_does_not_echo_the_token(auth: Authenticator) -> None:
    err = unauthorized(auth, "Bearer guessed-secret-value-1")
    assert "guessed-secret-value-1" not in str(err)
    assert "guessed-secret-value-1" not in err.message


def test_configured_tokens_are_not_kept_in_clear(auth: Authenticator) -> None:
    assert ALICE not in repr(vars(auth))
    assert BOB not in repr(vars(auth))


def test_non_ascii_token_round_trip() -> None:
    token = "s\u00e9cr\u00e8t-\u00fcnic\u00f6de-token"
    auth = Authenticator({"carol": token})
    assert auth.user_for(f"Bearer {token}") == "carol"


def test_user_names_are_returned_verbatim() -> None:
    auth = Authenticator({"Alice Smith": ALICE})
    assert auth.user_for(f"Bearer {ALICE}") == "Alice Smith"
