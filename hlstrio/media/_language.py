"""Language tags: what containers write, turned into what HLS wants.

Containers label tracks with ISO 639-2 codes, bibliographic ("fre", "ger": Matroska) or
terminological ("fra", "deu": MP4), sometimes with BCP-47 tags (Matroska's LanguageBCP47,
"pt-BR"). HLS wants RFC 5646 tags in LANGUAGE (RFC 8216 4.3.4.1), and RFC 5646 says to use the
shortest ISO 639 code: "fr", not "fra". The tables behind that (ISO 639-1/2/3, the IANA
subtag registry, CLDR names) are langcodes' and language-data's, not ours.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import langcodes

# langcodes is imported on first use: it costs ~0.15 s, which `hlstrio --help` need not pay.

# "und" (undetermined) and an empty label both mean "nobody said": no LANGUAGE at all is
# more honest than LANGUAGE="und". "zxx" (no linguistic content) and "mul" are real answers.
_UNKNOWN = frozenset({"", "und"})


@functools.lru_cache(maxsize=1024)
def language_tag(label: str | None) -> str | None:
    """The canonical BCP-47 tag for a container's language label, None if there is none.

    "eng"/"en" -> "en", "fre"/"fra" -> "fr", "ger"/"deu" -> "de", "pt-br" -> "pt-BR",
    "und"/"" -> None. Labels that are not a registered language ("xx", "english", junk) are
    None too: a wrong LANGUAGE attribute is worse than none.
    """
    text = (label or "").strip().replace("_", "-")
    if text.lower() in _UNKNOWN:
        return None
    import langcodes

    try:
        language = langcodes.Language.get(text)
    except (LookupError, ValueError):  # LanguageTagError is a ValueError
        return None
    if not language.is_valid() or language.language in (None, "und"):
        return None
    return language.to_tag()


@functools.lru_cache(maxsize=1024)
def language_from_word(word: str) -> str | None:
    """A language named by a code or by its name, as in sidecar file names: "en", "eng",
    "English", "Français", "Deutsch" -> "en", "en", "en", "fr", "de"; None for other words."""
    tag = language_tag(word)
    if tag is not None:
        return tag
    if len(word) < 4 or not word.isalpha():
        return None  # short words are codes or nothing; "Sdh" must not become a language
    import langcodes

    try:
        found = langcodes.find(word)
    except LookupError:
        return None
    return language_tag(found.to_tag())


@functools.lru_cache(maxsize=256)
def language_name(tag: str | None, in_language: str | None = None) -> str | None:
    """A display name for a BCP-47 tag, for rendition NAMEs (RFC 8216 4.3.4.1: NAME is
    human-readable; Apple's examples name each rendition in its own language).

    By default the language's own name, capitalised as a menu label: "fr" -> "Français",
    "de" -> "Deutsch", "pt-BR" -> "Português (Brasil)". With `in_language`, the name in that
    language: ("fr", "en") -> "French". None when the tag is None or not a known language.
    """
    if tag is None or language_tag(tag) is None:
        return None
    import langcodes

    language: langcodes.Language = langcodes.Language.get(tag)
    name = language.display_name(in_language) if in_language else language.autonym()
    return name[:1].upper() + name[1:] if name else None
