"""A SID node as the inspector shows it: its most common label and purity, how evenly its
items spread over its children, and its distinctive title words."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np


#: fields tried, in order, when a run does not say which field to measure purity against
LABEL_FIELD_CANDIDATES = ("categories", "category", "genres", "genre", "tags", "brand")


# --------------------------------------------------------------------------- labels and purity


@dataclass(frozen=True)
class LabelCodes:
    """One label per item as an integer (``-1`` = no label), with the label names.

    ``names`` are ordered by frequency (code 0 = the most common label). For a *set* field
    (genres, tags: :mod:`.field_kinds`) an item has several values: ``members[indptr[i]:indptr[i+1]]``
    are the codes of item ``i``'s values, and ``codes[i]`` is the most common of them (for
    colouring), ``-1`` when it has none.
    """

    field: str
    codes: np.ndarray  # (n_items,) int32
    names: list[str]
    indptr: np.ndarray | None = None  # set fields: (n_items + 1,) offsets into members
    members: np.ndarray | None = None  # set fields: every item's value codes, item after item

    @property
    def is_set(self) -> bool:
        return self.members is not None

    def name(self, code: int) -> str | None:
        return None if code < 0 else self.names[code]


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def encode_labels(values: Sequence, field: str = "label") -> LabelCodes:
    """Turn per-item label values (strings, numbers or None) into :class:`LabelCodes`.

    Parameters
    ----------
    values : sequence
        One value per item, in idx order; None, NaN and blank strings mean "no label".
    field : str
        The label field's name, kept for display.
    """
    if any(isinstance(v, (tuple, list)) for v in values):
        return _encode_sets(values, field)
    keys = [None if _is_missing(v) else str(v) for v in values]
    counts: dict[str, int] = {}
    for k in keys:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    names = sorted(counts, key=lambda k: (-counts[k], k))
    lookup = {k: i for i, k in enumerate(names)}
    codes = np.fromiter((-1 if k is None else lookup[k] for k in keys), dtype=np.int32, count=len(keys))
    return LabelCodes(field, codes, names)


def _encode_sets(values: Sequence, field: str) -> LabelCodes:
    """Per-item sets of values (tuples or lists; a scalar is a set of one) -> :class:`LabelCodes`."""
    sets = []
    for v in values:
        parts = v if isinstance(v, (tuple, list)) else [v]
        sets.append(list(dict.fromkeys(str(p) for p in parts if not _is_missing(p))))
    counts: dict[str, int] = {}
    for parts in sets:
        for k in parts:
            counts[k] = counts.get(k, 0) + 1
    names = sorted(counts, key=lambda k: (-counts[k], k))
    lookup = {k: i for i, k in enumerate(names)}
    member_lists = [sorted(lookup[k] for k in parts) for parts in sets]
    indptr = np.zeros(len(sets) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(m) for m in member_lists])
    members = np.fromiter((c for m in member_lists for c in m), dtype=np.int32, count=int(indptr[-1]))
    codes = np.array([m[0] if m else -1 for m in member_lists], dtype=np.int32)  # sorted: most common first
    return LabelCodes(field, codes, names, indptr, members)


def default_label_field(fields: Iterable[str]) -> str | None:
    """The field to measure purity against when none was chosen (``categories``, ``genres``, ...)."""
    present = set(fields)
    return next((f for f in LABEL_FIELD_CANDIDATES if f in present), None)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, largest first, ties by index: what
    ``np.argsort(-scores, kind="stable")[:k]`` gives, without sorting every score. A node
    summary asks this of every label and title word of the catalogue (tens of thousands of
    words in a real catalogue, for each row the tree paints), and nearly all of them are 0
    for one node, which also sends ``np.partition`` down its slow path (5 ms at 50k words)."""
    n = len(scores)
    if n <= 4 * k + 64:
        return np.argsort(-scores, kind="stable")[:k]
    positive = np.flatnonzero(scores > 0)  # in index order, so ties stay in index order
    if len(positive) < k:
        return np.argsort(-scores, kind="stable")[:k]
    candidates = positive
    if len(candidates) > 4 * k + 64:
        values = scores[candidates]
        kth = np.partition(values, len(values) - k)[len(values) - k]  # the k-th largest value
        candidates = candidates[values >= kth]  # every tie of it too
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k]


@dataclass(frozen=True)
class NodeSummary:
    """What the SID tree shows for one node (a SID prefix)."""

    n_items: int
    label: str | None  # the most common label among the node's items (set fields: ties joined by " / ")
    purity: float | None  # share of the node's labelled items that carry ``label`` (its first value)
    top_labels: list[tuple[str, int]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)  # distinctive title words

    def readable(self) -> str:
        """One short line: the label, else the distinctive words."""
        if self.label is not None:
            return self.label
        return ", ".join(self.keywords)


def summarize_node(
    idxs: np.ndarray,
    labels: LabelCodes | None = None,
    terms: "TermIndex | None" = None,
    *,
    top: int = 5,
    n_keywords: int = 3,
) -> NodeSummary:
    """Label, purity, label distribution and distinctive words of a set of items.

    Parameters
    ----------
    idxs : ndarray
        Item idxs of the node.
    labels : LabelCodes, optional
        Per-item labels; without them ``label`` and ``purity`` are None.
    terms : TermIndex, optional
        Title words; without them ``keywords`` is empty.
    """
    idxs = np.asarray(idxs, dtype=np.int64)
    label = purity = None
    top_labels: list[tuple[str, int]] = []
    if labels is not None and labels.is_set and len(idxs):
        # a set field: an item counts for each of its values; purity is the share of the node's
        # labelled items that carry its most common value
        starts, ends = labels.indptr[idxs], labels.indptr[idxs + 1]
        n_labelled = int((ends > starts).sum())
        if n_labelled:
            sizes = ends - starts
            offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
            counts = np.bincount(labels.members[offsets], minlength=len(labels.names))
            order = top_k(counts, top)
            top_labels = [(labels.names[c], int(counts[c])) for c in order if counts[c] > 0]
            best = top_labels[0][1]
            label = " / ".join(name for name, n in top_labels[:3] if n == best)
            purity = best / n_labelled
    elif labels is not None and len(idxs):
        node_codes = labels.codes[idxs]
        node_codes = node_codes[node_codes >= 0]
        if len(node_codes):
            counts = np.bincount(node_codes, minlength=len(labels.names))
            order = top_k(counts, top)
            top_labels = [(labels.names[c], int(counts[c])) for c in order if counts[c] > 0]
            label = top_labels[0][0]
            purity = top_labels[0][1] / len(node_codes)
    keywords = terms.distinctive(idxs, n_keywords) if terms is not None else []
    return NodeSummary(int(len(idxs)), label, purity, top_labels, keywords)


@dataclass(frozen=True)
class UsageStats:
    """How a node's items spread over its children (or a level's items over its codes)."""

    n_children: int
    entropy_bits: float
    evenness: float  # entropy / log2(n_children); 1 = perfectly even
    largest_share: float


def usage_stats(counts: Sequence[int]) -> UsageStats:
    """Entropy and evenness of a list of child counts."""
    c = np.asarray([x for x in counts if x > 0], dtype=np.float64)
    if len(c) == 0:
        return UsageStats(0, 0.0, 0.0, 0.0)
    p = c / c.sum()
    entropy = max(0.0, float(-(p * np.log2(p)).sum()))  # max(): no "-0.00 bits" for one child
    evenness = entropy / math.log2(len(c)) if len(c) > 1 else 1.0
    return UsageStats(int(len(c)), entropy, evenness, float(p.max()))


def code_usage(codes: np.ndarray, level: int, codebook_size: int | None = None) -> np.ndarray:
    """Items per code at one level (length ``codebook_size`` or the largest code + 1)."""
    column = np.asarray(codes)[:, level].astype(np.int64)
    size = codebook_size or (int(column.max()) + 1 if len(column) else 0)
    return np.bincount(column, minlength=size)


# --------------------------------------------------------------------------- distinctive words


# Words that say nothing about a group of items; kept short on purpose (titles are short).
_STOPWORDS = frozenset(
    """a an and are as at be by for from has have in into is it its of on or the to with without
    your you our new pack set pcs piece pieces size one two three inch oz ml fl count ct lb lbs
    ounce ounces fluid gram grams each
    de la le et des du en""".split()
)
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str | None) -> list[str]:
    """Lower-case words of a title, HTML entities decoded, stop words and numbers dropped."""
    if not isinstance(text, str) or not text:  # a missing title may come as None or NaN
        return []
    words = _WORD_RE.findall(html.unescape(text).lower())
    return [w for w in words if len(w) > 2 and not w.isdigit() and w not in _STOPWORDS]


class TermIndex:
    """Titles as a sparse item x word matrix (CSR arrays), for distinctive-word labels.

    Built once per project (off the GUI thread: ~0.5 s for 100k titles); a query over the
    items of a node is then a ``bincount`` over their word ids.
    """

    def __init__(self, titles: Sequence[str | None]) -> None:
        vocab: dict[str, int] = {}
        indptr = np.zeros(len(titles) + 1, dtype=np.int64)
        ids: list[int] = []
        for i, title in enumerate(titles):
            # a word counts once per title: document frequency, not term frequency
            for word in dict.fromkeys(tokenize(title)):
                ids.append(vocab.setdefault(word, len(vocab)))
            indptr[i + 1] = len(ids)
        self.words = np.array(list(vocab), dtype=object)
        self.indptr = indptr
        self.indices = np.asarray(ids, dtype=np.int32)
        self.n_docs = len(titles)
        self.doc_freq = np.bincount(self.indices, minlength=len(vocab)).astype(np.float64)
        self._idf = np.log((self.n_docs + 1) / (self.doc_freq + 1))

    def _word_ids(self, idxs: np.ndarray) -> np.ndarray:
        starts = self.indptr[idxs]
        lengths = self.indptr[idxs + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int32)
        # positions of every word of every chosen row, without a Python loop
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return self.indices[offsets + np.arange(total)]

    def distinctive(self, idxs: np.ndarray, k: int = 3) -> list[str]:
        """The ``k`` words most characteristic of these items compared with the catalogue.

        A word must occur in at least two of the items (one for a single item) and scores by
        its share of the items times its inverse document frequency.
        """
        idxs = np.asarray(idxs, dtype=np.int64)
        if len(idxs) == 0 or len(self.words) == 0:
            return []
        counts = np.bincount(self._word_ids(idxs), minlength=len(self.words)).astype(np.float64)
        min_count = 1 if len(idxs) == 1 else 2
        score = np.where(counts >= min_count, counts / len(idxs) * self._idf, 0.0)
        if len(idxs) == self.n_docs:  # the whole catalogue has no "distinctive" words, only common ones
            score = counts
        best = top_k(score, k)
        return [str(self.words[w]) for w in best if score[w] > 0]
