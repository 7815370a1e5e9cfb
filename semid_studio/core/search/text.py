"""The words of a query and the text of an item: what every search method reads.

:func:`tokenize` and :data:`STOP_WORDS` are shared by query generation
(:mod:`.query_methods`), the query gate (:mod:`.checks`) and the BM25 index (its stop words);
:func:`item_texts` renders the catalogue through the project's template for BM25, the
encoders and the joint model; :func:`token_lengths` counts the word pieces an encoder sees.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..store import ProjectStore


# A compact English stop-word list (articles, pronouns, auxiliaries, prepositions, and the
# filler words of requests such as "looking for"). Used to clean generated queries and to
# reject queries that consist of nothing else.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down
    during each few for from further had hadn has hasn have haven having he her here hers herself
    him himself his how i if in into is isn it its itself just let me more most my myself no nor
    not now of off on once only or other ought our ours ourselves out over own same shan she
    should shouldn so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was wasn we were weren what when where which
    while who whom why will with won would wouldn you your yours yourself yourselves s t d ll m o
    re ve y also across along among around behind beside besides beyond etc however inside may
    might must near onto outside per shall since though toward towards upon us via within
    without yet""".split()
)

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters and digits of any script; apostrophes kept inside)."""
    return [w.replace("\u2019", "'") for w in _WORD_RE.findall(str(text).lower())]


def content_terms(text: str) -> list[str]:
    """Words of ``text`` without stop words (order kept, repeats kept)."""
    return [w for w in tokenize(text) if w not in STOP_WORDS]


def item_texts(store: ProjectStore, template: str | None = None) -> tuple[list[str], str]:
    """Item texts through ``template`` (default: the project's template, else an automatic one)."""
    from ..embed import default_template, render_texts

    template = template or store.get_meta("template") or default_template(store.item_fields())
    return render_texts(store.items_frame(), template), template


def token_lengths(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Word pieces per text (special tokens included), without truncation: what an encoder's
    window cuts is measured against these."""
    out = []
    for start in range(0, len(texts), 2048):
        # verbose=False: over-long texts are expected here (that is what is being measured)
        enc = tokenizer(list(texts[start : start + 2048]), add_special_tokens=True, verbose=False)["input_ids"]
        out.extend(len(ids) for ids in enc)
    return np.asarray(out, dtype=np.int64)
