"""Language labels from containers and file names, as HLS LANGUAGE and NAME values.

RFC 8216 4.3.4.1: LANGUAGE "MUST be one of the standard Tags for Identifying Languages
[RFC5646]"; RFC 5646 2.2.1: use the shortest ISO 639 code for a language ("fr", not "fra").
"""

from __future__ import annotations

import pytest

from hlstrio.media import language_name, language_tag
from hlstrio.media._language import language_from_word


@pytest.mark.parametrize(
    ("label", "tag"),
    [
        ("eng", "en"),
        ("en", "en"),
        ("fre", "fr"),  # ISO 639-2/B, what Matroska stores
        ("fra", "fr"),  # ISO 639-2/T, what MP4 stores
        ("ger", "de"),
        ("deu", "de"),
        ("chi", "zh"),
        ("cze", "cs"),
        ("nob", "nb"),
        ("gsw", "gsw"),  # no two-letter code: the three-letter one is the shortest
        ("pt-br", "pt-BR"),  # Matroska LanguageBCP47, any case
        ("pt_BR", "pt-BR"),
        ("zh-hans", "zh-Hans"),
        (" EN ", "en"),
        ("zxx", "zxx"),  # "no linguistic content" is an answer
        ("und", None),
        ("UND", None),
        ("", None),
        (None, None),
        ("xx", None),  # not a registered language
        ("english", None),  # a name, not a tag
        ("12", None),
    ],
)
def test_language_tag(label: str | None, tag: str | None) -> None:
    assert language_tag(label) == tag


@pytest.mark.parametrize(
    ("word", "tag"),
    [
        ("en", "en"),
        ("eng", "en"),
        ("English", "en"),
        ("Français", "fr"),
        ("Deutsch", "de"),
        ("french", "fr"),
        ("Commentary", None),
        ("sdh", "sdh"),  # Southern Kurdish: sidecar names read it as a flag first
        ("Full", None),
        ("Part2", None),
    ],
)
def test_language_from_word(word: str, tag: str | None) -> None:
    assert language_from_word(word) == tag


def test_language_name() -> None:
    # NAME is for people: in the language itself, as Apple's examples ("Deutsch"), or in one
    # given language.
    assert language_name("fr") == "Français"
    assert language_name("de") == "Deutsch"
    assert language_name("en") == "English"
    assert language_name("pt-BR") == "Português (Brasil)"
    assert language_name("ja") == "日本語"
    assert language_name("fr", "en") == "French"
    assert language_name("de", "fr") == "Allemand"
    assert language_name("fre") == "Français"  # any label language_tag accepts
    for tag in (None, "", "und", "xx"):
        assert language_name(tag) is None
