"""POST /api/v1/sessions body validation: parse_session_params, without a server."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hlstrio.streaming import Capabilities, SessionParams
from hlstrio.web._api import parse_session_params
from hlstrio.web._errors import ApiError


def bad(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_session_params(body)
    assert info.value.status == 400
    assert info.value.code == "bad_request"
    assert info.value.message
    return info.value


def with_caps(**caps: Any) -> dict[str, Any]:
    return {"media_id": "m1", "capabilities": caps}


# --- valid bodies ------------------------------------------------------------------------------


def test_minimal_body_gets_defaults() -> None:
    params = parse_session_params({"media_id": "m1"})
    assert params == SessionParams("m1", 0.0, "auto", None, Capabilities())
    assert isinstance(params.start, float)
    assert params.capabilities.video_codecs == frozenset({"h264"})
    assert params.capabilities.audio_codecs == frozenset({"aac"})


def test_full_body() -> None:
    params = parse_session_params(
        {
            "media_id": "abc123",
            "start": 12.5,
            "mode": "remux",
            "audio": 2,
            "capabilities": {
                "video_codecs": ["avc1.64001f", "hvc1.1.6.L93.B0"],
                "audio_codecs": ["mp4a.40.2", "ec-3"],
                "max_height": 720,
                "max_bitrate": 4_000_000,
            },
        }
    )
    assert params == SessionParams(
        "abc123",
        12.5,
        "remux",
        2,
        Capabilities(frozenset({"h264", "hevc"}), frozenset({"aac", "eac3"}), 720, 4_000_000),
    )


@pytest.mark.parametrize("mode", ["auto", "remux", "transcode"])
def test_every_mode(mode: str) -> None:
    assert parse_session_params({"media_id": "m", "mode": mode}).mode == mode


@pytest.mark.parametrize("start", [0, 0.0, 1, 59.999, 10**6])
def test_valid_start(start: float) -> None:
    params = parse_session_params({"media_id": "m", "start": start})
    assert params.start == start
    assert isinstance(params.start, float)


@pytest.mark.parametrize("audio", [0, 1, 65535, None])
def test_valid_audio(audio: int | None) -> None:
    assert parse_session_params({"media_id": "m", "audio": audio}).audio == audio


def test_null_capabilities_and_null_fields_mean_defaults() -> None:
    base = parse_session_params({"media_id": "m"})
    assert parse_session_params({"media_id": "m", "capabilities": None}) == base
    assert parse_session_params({"media_id": "m", "capabilities": {}}) == base
    nulls = with_caps(video_codecs=None, audio_codecs=None, max_height=None, max_bitrate=None)
    nulls["media_id"] = "m"
    assert parse_session_params(nulls) == base


def test_empty_codec_lists_are_kept_empty() -> None:
    params = parse_session_params(with_caps(video_codecs=[], audio_codecs=[]))
    assert params.capabilities.video_codecs == frozenset()
    assert params.capabilities.audio_codecs == frozenset()


@pytest.mark.parametrize("value", [1, 720, 2**31 - 1])
def test_valid_max_height_and_bitrate(value: int) -> None:
    params = parse_session_params(with_caps(max_height=value, max_bitrate=value))
    assert params.capabilities.max_height == value
    assert params.capabilities.max_bitrate == value


# --- equal bodies, equal params (session reuse depends on it) ----------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"media_id": "m"}, {"media_id": "m"}),
        ({"media_id": "m"}, {"media_id": "m", "start": 0}),
        ({"media_id": "m", "start": 0}, {"media_id": "m", "start": 0.0}),
        ({"media_id": "m"}, {"media_id": "m", "mode": "auto"}),
        ({"media_id": "m"}, {"media_id": "m", "audio": None}),
        ({"media_id": "m"}, {"media_id": "m", "capabilities": {}}),
        ({"media_id": "m"}, {"media_id": "m", "capabilities": {"video_codecs": ["h264"]}}),
        ({"media_id": "m"}, {"media_id": "m", "capabilities": {"audio_codecs": ["mp4a.40.2"]}}),
        (
            {"media_id": "m", "capabilities": {"video_codecs": ["hevc", "h264"]}},
            {"media_id": "m", "capabilities": {"video_codecs": ["avc1.640028", "hvc1", "h264"]}},
        ),
        (
            {"start": 3, "media_id": "m", "audio": 1, "mode": "transcode"},
            {"mode": "transcode", "audio": 1, "media_id": "m", "start": 3.0},
        ),
    ],
)
def test_equal_bodies_give_equal_params(a: dict[str, Any], b: dict[str, Any]) -> None:
    pa, pb = parse_session_params(a), parse_session_params(b)
    assert pa == pb
    assert hash(pa) == hash(pb)


@pytest.mark.parametrize(
    "other",
    [
        {"media_id": "m2"},
        {"media_id": "m", "start": 1},
        {"media_id": "m", "mode": "transcode"},
        {"media_id": "m", "audio": 1},
        {"media_id": "m", "capabilities": {"video_codecs": ["h264", "hevc"]}},
        {"media_id": "m", "capabilities": {"audio_codecs": ["aac", "ac3"]}},
        {"media_id": "m", "capabilities": {"max_height": 720}},
        {"media_id": "m", "capabilities": {"max_bitrate": 1_000_000}},
        {"media_id": "m", "capabilities": {"video_codecs": []}},
    ],
)
def test_different_bodies_give_different_params(other: dict[str, Any]) -> None:
    assert parse_session_params({"media_id": "m"}) != parse_session_params(other)


def test_parsing_does_not_modify_the_body() -> None:
    body = {"media_id": "m", "capabilities": {"video_codecs": ["HEVC"]}}
    parse_session_params(body)
    assert body == {"media_id": "m", "capabilities": {"video_codecs": ["HEVC"]}}


# --- invalid bodies ----------------------------------------------------------------------------


def test_missing_media_id() -> None:
    err = bad({})
    assert "media_id" in err.message
    bad({"start": 0})


@pytest.mark.parametrize("media_id", [None, "", 5, 1.5, True, ["m"], {"id": "m"}])
def test_bad_media_id(media_id: Any) -> None:
    assert "media_id" in bad({"media_id": media_id}).message


@pytest.mark.parametrize(
    "start", [-1, -0.001, math.nan, math.inf, -math.inf, True, False, "5", None, [0], {}]
)
def test_bad_start(start: Any) -> None:
    assert "start" in bad({"media_id": "m", "start": start}).message


def test_start_too_large_for_a_float() -> None:
    # json.loads turns a 400-digit literal into an int that float() cannot hold.
    bad({"media_id": "m", "start": 10**400})


@pytest.mark.parametrize("mode", ["AUTO", "copy", "", None, 1, True, ["auto"]])
def test_bad_mode(mode: Any) -> None:
    assert "mode" in bad({"media_id": "m", "mode": mode}).message


@pytest.mark.parametrize("audio", [True, False, -1, 1.0, 1.5, "1", 2**16, [1], {}])
def test_bad_audio(audio: Any) -> None:
    assert "audio" in bad({"media_id": "m", "audio": audio}).message


@pytest.mark.parametrize(
    "body",
    [
        {"media_id": "m", "Start": 1},
        {"media_id": "m", "user": "bob"},
        {"media_id": "m", "capabilities": {}, "video_codecs": ["h264"]},
        {"media_id": "m", "mediaId": "m"},
    ],
)
def test_unknown_fields(body: dict[str, Any]) -> None:
    assert "unknown field" in bad(body).message


def test_unknown_field_message_is_bounded() -> None:
    body: dict[str, Any] = {"media_id": "m"}
    body.update({f"field{i:04d}" * 10: 1 for i in range(500)})
    assert len(bad(body).message) < 300


@pytest.mark.parametrize("caps", ["h264", 5, 1.5, True, ["h264"], [{"video_codecs": []}]])
def test_capabilities_not_an_object(caps: Any) -> None:
    assert "capabilities" in bad({"media_id": "m", "capabilities": caps}).message


@pytest.mark.parametrize("caps", [[], "", 0, False])
def test_falsy_capabilities_that_are_not_objects(caps: Any) -> None:
    # Only an object (or null) is a capabilities value; an empty list or 0 is a client bug.
    bad({"media_id": "m", "capabilities": caps})


@pytest.mark.parametrize("field", ["videoCodecs", "max_width", "codecs", "HDR"])
def test_unknown_capability_field(field: str) -> None:
    assert "capability" in bad(with_caps(**{field: 1})).message


@pytest.mark.parametrize(
    ("field", "value"),
    [("hdr", 1), ("hdr", "yes"), ("max_video_bit_depth", 9), ("max_video_bit_depth", 0),
     ("max_audio_channels", 33), ("containers", ["ts", "mkv"]), ("containers", [])],
)  # fmt: skip
def test_bad_capability_values(field: str, value: Any) -> None:
    bad(with_caps(**{field: value}))


def test_capabilities_for_hdr_10_bit_multichannel_fmp4() -> None:
    caps = parse_session_params(
        with_caps(hdr=True, max_video_bit_depth=10, max_audio_channels=6, containers=["fmp4", "ts"])
    ).capabilities
    assert (caps.hdr, caps.max_video_bit_depth, caps.max_audio_channels) == (True, 10, 6)
    assert caps.containers == ("fmp4", "ts")  # the client's order: its preference


@pytest.mark.parametrize("key", ["video_codecs", "audio_codecs"])
@pytest.mark.parametrize(
    "value",
    [
        "h264",
        ["h264", 5],
        [None],
        [["h264"]],
        [""],
        ["x" * 65],
        ["h264"] * 65,
        {"h264": True},
        5,
        True,
    ],
)
def test_bad_codec_lists(key: str, value: Any) -> None:
    assert key in bad(with_caps(**{key: value})).message


def test_codec_name_length_limit_is_inclusive() -> None:
    params = parse_session_params(with_caps(video_codecs=["x" * 64], audio_codecs=["a"] * 64))
    assert params.capabilities.video_codecs == frozenset({"x" * 64})


@pytest.mark.parametrize("key", ["max_height", "max_bitrate"])
@pytest.mark.parametrize("value", [0, -1, -720, 0.0, 720.5, True, False, "720", 2**31, [720]])
def test_bad_max_height_and_bitrate(key: str, value: Any) -> None:
    assert key in bad(with_caps(**{key: value})).message


@pytest.mark.parametrize("key", ["max_height", "max_bitrate"])
def test_whole_number_floats_are_integers(key: str) -> None:
    params = parse_session_params(with_caps(**{key: 720.0}))
    assert getattr(params.capabilities, key) == 720
    assert isinstance(getattr(params.capabilities, key), int)
