"""The one gate every query text goes through (the CLI, the GUI and every evaluation).

:func:`check_query` refuses empty text, text of stop words or symbols only, and text over
:data:`MAX_QUERY_CHARS` characters with one clear line; text in a script the catalogue does
not use passes with a warning (it usually finds nothing, and says so). :func:`_validated`
runs the gate over a whole query set, as the evaluations do.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import SemidError
from .text import STOP_WORDS, tokenize


#: longer query texts are refused (the longest real request in movielens_tomt has 7,571)
MAX_QUERY_CHARS = 20_000


@dataclass(frozen=True)
class CheckedQuery:
    """A query text that passed :func:`check_query`, with any warnings about it."""

    text: str
    warnings: tuple[str, ...] = ()


def _script_of(ch: str) -> str | None:
    """The Unicode script family of a letter, from its name ("LATIN", "CJK", "CYRILLIC", ...)."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return "UNKNOWN"
    first = name.split(" ")[0]
    return "CJK" if first in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL") else first


def text_scripts(texts: Iterable[str], limit_chars: int = 200_000) -> set[str]:
    """Script families used by a sample of texts (for the unknown-script warning)."""
    seen: set[str] = set()
    used = 0
    for text in texts:
        for ch in str(text):
            s = _script_of(ch)
            if s:
                seen.add(s)
        used += len(str(text))
        if used > limit_chars:
            break
    return seen


def check_query(text: object, *, max_chars: int = MAX_QUERY_CHARS,
                known_scripts: set[str] | None = None) -> CheckedQuery:
    """Validate one query text; raise :class:`SemidError` with one clear line if it is unusable.

    Parameters
    ----------
    text
        The query as typed or stored.
    max_chars
        Longer texts are refused (not silently cut): the user is told the length and the cap.
    known_scripts
        Script families of the catalogue's text (:func:`text_scripts`); when most letters of
        the query are in other scripts, a warning says that matches are unlikely.

    Returns
    -------
    CheckedQuery
        The text with surrounding whitespace removed, and warnings.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        raise SemidError("the query is empty; type some words to search for")
    if not isinstance(text, str):
        raise SemidError(f"the query must be text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise SemidError("the query is empty; type some words to search for")
    if len(stripped) > max_chars:
        raise SemidError(f"the query has {len(stripped):,} characters, more than the {max_chars:,} allowed; "
                         f"shorten it to the part that describes the item")
    words = tokenize(stripped)
    if not words:
        raise SemidError(f"the query {_short(stripped)} has no words (only punctuation or symbols)")
    if all(w in STOP_WORDS for w in words):
        raise SemidError(f"the query {_short(stripped)} has only stop words; add a word that describes the item")
    warnings: list[str] = []
    if known_scripts:
        letters = [s for s in (_script_of(ch) for ch in stripped) if s]
        foreign = [s for s in letters if s not in known_scripts]
        if letters and len(foreign) > 0.5 * len(letters):
            scripts = ", ".join(sorted(set(foreign)))
            warnings.append(f"the query is mostly in a script ({scripts}) that the catalogue's text does not use; "
                            f"expect no or poor matches")
    return CheckedQuery(stripped, tuple(warnings))


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _validated(texts: Sequence[str], known_scripts: set[str]) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Texts that pass :func:`check_query` (others replaced by "") and the reasons counted."""
    ok = np.ones(len(texts), dtype=bool)
    reasons: dict[str, int] = {}
    clean = []
    for i, t in enumerate(texts):
        try:
            clean.append(check_query(t, known_scripts=known_scripts).text)
        except SemidError as exc:
            ok[i] = False
            clean.append("")
            key = str(exc).split(";")[0]
            key = "too long" if "characters" in key else "only stop words" if "stop words" in key else \
                "no words" if "no words" in key else "empty"
            reasons[key] = reasons.get(key, 0) + 1
    return clean, ok, reasons
