"""Numbers the inspector shows: node labels and purity, 2-D maps, run comparison, similarity.

Everything here is headless (numpy + the project store) so that the GUI stays a thin layer and
the same figures can be checked in tests or printed by a script:

- :class:`LabelCodes` / :func:`encode_labels`: one integer per item for a label field
  (``categories[1]``, ``genre``, ...), so a node's most common label and its *purity* are one
  ``bincount`` over the node's items (:func:`summarize_node`).
- :class:`TermIndex`: the titles as a sparse item x word matrix; a node's *distinctive words*
  are the words that are much more frequent in the node than in the catalogue (tf-idf style).
- :func:`usage_stats`: how evenly a node's items spread over its children (entropy).
- :func:`project_2d`: a PCA map of the item embeddings, for the embedding scatter plot.
- :func:`compare_level1`: how two quantiser runs' level-1 groups map onto each other
  (contingency matrix, NMI, ARI, best match of every group).
- :class:`SimilaritySearch` / :func:`similar_items`: rank items by cosine similarity of a text
  query to the item embeddings — what the playground offers before a joint search model exists.
- :func:`filter_items` / :func:`item_rows`: the catalogue table's filter, sort and paging in SQL,
  so a 100k-item catalogue is never loaded into Python objects to be filtered.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import SemidError
from .store import EmbeddingSet, ProjectStore, QuantizerRun

#: fields tried, in order, when a run does not say which field to measure purity against
LABEL_FIELD_CANDIDATES = ("categories", "category", "genres", "genre", "tags", "brand")

# Words that say nothing about a group of items; kept short on purpose (titles are short).
_STOPWORDS = frozenset(
    """a an and are as at be by for from has have in into is it its of on or the to with without
    your you our new pack set pcs piece pieces size one two three inch oz ml fl count ct lb lbs
    ounce ounces fluid gram grams each
    de la le et des du en""".split()
)
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


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


# --------------------------------------------------------------------------- embedding map


@dataclass(frozen=True)
class Projection:
    """2-D coordinates for (a sample of) the items."""

    idx: np.ndarray  # (m,) item idx of each point, ascending
    xy: np.ndarray  # (m, 2) float32
    explained: tuple[float, float]  # share of variance on each axis (PCA; zeros for t-SNE)
    method: str = "pca"


#: map layouts: PCA (instant, global structure) or t-SNE (scikit-learn; local neighbourhoods)
MAP_METHODS = ("pca", "tsne")
#: t-SNE is O(n log n) per iteration with a large constant: a sample this size takes seconds
TSNE_MAX_POINTS = 5000
#: colours a person can tell apart on a map; the other groups are drawn grey
MAP_GROUPS = 12


def map_groups(values: np.ndarray, top: int = MAP_GROUPS) -> tuple[np.ndarray, np.ndarray]:
    """Colour groups for a map: the ``top`` most common values of ``values`` (one int per item,
    -1 for none) get groups 0..top-1, largest first; every other item gets -1 ("other").
    Returns ``(group per item, the value of each group)``."""
    values = np.asarray(values, dtype=np.int64)
    known = values[values >= 0]
    if not len(known):
        return np.full(len(values), -1, np.int64), np.zeros(0, np.int64)
    counts = np.bincount(known)
    order = np.argsort(-counts, kind="stable")
    kept = order[:top][counts[order[:top]] > 0]
    lookup = np.full(len(counts), -1, np.int64)
    lookup[kept] = np.arange(len(kept))
    groups = np.where(values >= 0, lookup[np.clip(values, 0, None)], -1)
    return groups, kept


def project_2d(vectors: np.ndarray, *, max_points: int = 20000, seed: int = 0, method: str = "pca") -> Projection:
    """The embeddings on a 2-D map: PCA onto their two main axes, or t-SNE (scikit-learn, on
    a sample of at most TSNE_MAX_POINTS, from their 50 main PCA axes) for ``method="tsne"``,
    which keeps neighbourhoods that two PCA axes (often < 10% of the variance) flatten.

    At most ``max_points`` items (a seeded random sample) are projected: a scatter plot of more
    points is unreadable and slow to draw, and the axes are stable long before that.

    Parameters
    ----------
    vectors : ndarray
        ``(n_items, dim)`` item embeddings, rows aligned to ``idx``.
    max_points : int
        Largest number of points returned.
    seed : int
        Seed of the sample.
    """
    if method not in MAP_METHODS:
        raise ValueError(f"map method must be one of {', '.join(MAP_METHODS)}, not {method!r}")
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if method == "tsne":
        max_points = min(max_points, TSNE_MAX_POINTS)
    if n == 0:
        return Projection(np.zeros(0, np.int64), np.zeros((0, 2), np.float32), (0.0, 0.0), method)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    else:
        idx = np.arange(n)
    if method == "tsne" and len(idx) > 3:
        return _tsne(vectors[idx], idx, seed)
    x = vectors[idx].astype(np.float64)
    x -= x.mean(axis=0)
    cov = x.T @ x / max(len(x) - 1, 1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # a small dim x dim problem: threaded LAPACK only spin-waits (seconds)
        eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1][:2]
    axes = eigvecs[:, order]
    # fix the sign of each axis so that the picture does not flip between runs
    cols = np.arange(axes.shape[1])
    axes = axes * np.where(axes[np.abs(axes).argmax(axis=0), cols] < 0, -1.0, 1.0)
    xy = (x @ axes).astype(np.float32)
    if xy.shape[1] < 2:  # one-dimensional embeddings
        xy = np.column_stack([xy, np.zeros(len(xy), np.float32)])
    total = float(eigvals.sum()) or 1.0
    explained = tuple(float(eigvals[o]) / total for o in order) + (0.0,) * (2 - len(order))
    return Projection(idx.astype(np.int64), xy, explained[:2])  # type: ignore[arg-type]


def _tsne(x: np.ndarray, idx: np.ndarray, seed: int) -> Projection:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = x.astype(np.float32)
    if x.shape[1] > 50:  # the usual first step: t-SNE's distances on the main axes, not the noise
        x = PCA(50, random_state=seed).fit_transform(x)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    xy = TSNE(2, init="pca", random_state=seed, perplexity=perplexity, max_iter=500).fit_transform(x)
    return Projection(idx.astype(np.int64), xy.astype(np.float32), (0.0, 0.0), "tsne")


# --------------------------------------------------------------------------- comparing runs


@dataclass(frozen=True)
class RunComparison:
    """How the level-1 groups of run A map onto those of run B (over the same items)."""

    codes_a: np.ndarray  # the level-1 codes of A that are used (row labels)
    codes_b: np.ndarray  # the level-1 codes of B that are used (column labels)
    matrix: np.ndarray  # (len(codes_a), len(codes_b)) items in both groups
    best_match: np.ndarray  # for each row: the column holding most of its items
    best_share: np.ndarray  # for each row: the share of its items in that column
    column_order: np.ndarray  # a column order that puts large overlaps near the diagonal
    nmi: float  # normalised mutual information (0 = unrelated, 1 = the same grouping)
    ari: float  # adjusted Rand index
    n_items: int

    @property
    def agreement(self) -> float:
        """Share of items that sit in their group's best-matching group of the other run."""
        return float(self.matrix.max(axis=1).sum() / self.n_items) if self.n_items else 0.0


def compare_level1(codes_a: np.ndarray, codes_b: np.ndarray) -> RunComparison:
    """Compare two runs' level-1 groupings of the same items.

    Parameters
    ----------
    codes_a, codes_b : ndarray
        ``(n_items, levels + 1)`` codes of the two runs (only column 0 is used). When one run
        covers fewer items (the catalogue grew), the items both cover are compared.
    """
    n = min(len(codes_a), len(codes_b))
    if n == 0:
        raise SemidError("cannot compare runs that cover no items")
    a = np.asarray(codes_a)[:n, 0].astype(np.int64)
    b = np.asarray(codes_b)[:n, 0].astype(np.int64)
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    matrix = np.bincount(ia * len(ub) + ib, minlength=len(ua) * len(ub)).reshape(len(ua), len(ub))
    row_tot = matrix.sum(axis=1)
    best_match = matrix.argmax(axis=1)
    best_share = matrix[np.arange(len(ua)), best_match] / np.maximum(row_tot, 1)
    # columns sorted by the row they match best (then by size): a near-diagonal heat map
    col_best_row = matrix.argmax(axis=0)
    column_order = np.lexsort((-matrix.sum(axis=0), col_best_row))
    return RunComparison(ua, ub, matrix, best_match, best_share.astype(np.float64), column_order,
                         _nmi(matrix), _ari(matrix), int(n))


def _nmi(matrix: np.ndarray) -> float:
    n = matrix.sum()
    if n == 0:
        return 0.0
    p = matrix / n
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    denom = (ha + hb) / 2  # arithmetic normalisation, as scikit-learn's default
    return max(0.0, min(1.0, mi / denom)) if denom > 0 else 0.0


def _ari(matrix: np.ndarray) -> float:
    def pairs(x):
        x = np.asarray(x, dtype=np.float64)
        return float((x * (x - 1) / 2).sum())

    n = matrix.sum()
    total = n * (n - 1) / 2
    if total == 0:
        return 1.0
    index = pairs(matrix)
    sum_a, sum_b = pairs(matrix.sum(axis=1)), pairs(matrix.sum(axis=0))
    expected = sum_a * sum_b / total
    max_index = (sum_a + sum_b) / 2
    if max_index == expected:
        return 1.0
    return float((index - expected) / (max_index - expected))


# --------------------------------------------------------------------------- similarity search


class SimilaritySearch:
    """Rank items by cosine similarity of a text to the item embeddings.

    Holds the normalised vectors and the encoder that made them, so a query costs one encode
    and one matrix-vector product. Safe to query from a worker thread.
    """

    def __init__(self, vectors: np.ndarray, model: str | None, embedding_set_id: int | None = None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = vectors / np.maximum(norms, 1e-12)
        self.model = model
        self.embedding_set_id = embedding_set_id

    @classmethod
    def from_store(cls, store: ProjectStore, embedding_set_id: int | None = None) -> "SimilaritySearch":
        """The project's embedding set (the newest by default) and its model."""
        emb, _vectors = read_vectors(store, embedding_set_id)
        if not emb.model or emb.model == "imported":
            raise SemidError(
                f"embedding set #{emb.id} ({emb.strategy}) does not name the text encoder that made it; "
                "a text query cannot be put into its space"
            )
        return cls(emb.vectors, emb.model, emb.id)

    def encode(self, text: str) -> np.ndarray:
        from .embed import load_encoder  # loads torch: only when a query is actually made

        vec = load_encoder(self.model).encode([text], convert_to_numpy=True, show_progress_bar=False)[0]
        if len(vec) != self.vectors.shape[1]:
            raise SemidError(f"the model '{self.model}' gives {len(vec)}-dimensional vectors but the items' "
                             f"embeddings have {self.vectors.shape[1]}")
        return np.asarray(vec, dtype=np.float32) / max(float(np.linalg.norm(vec)), 1e-12)

    def rank_vector(self, query: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` items closest to an already encoded, normalised query vector."""
        scores = self.vectors @ np.asarray(query, dtype=np.float32)
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]

    def query(self, text: str, k: int = 10) -> list[tuple[int, float]]:
        """``(idx, cosine)`` of the ``k`` items most similar to ``text``, best first."""
        if not text or not text.strip():
            return []
        return self.rank_vector(self.encode(text.strip()), k)


def similar_items(
    store: ProjectStore, text: str, k: int = 10, *, embedding_set_id: int | None = None
) -> list[tuple[int, float]]:
    """``(idx, cosine)`` of the ``k`` items whose embedding is closest to the encoded ``text``.

    Uses the project's embedding model, so the query lands in the same space as the items.
    For repeated queries keep a :class:`SimilaritySearch` instead (this reloads the vectors).
    """
    return SimilaritySearch.from_store(store, embedding_set_id).query(text, k)


# --------------------------------------------------------------------------- catalogue queries

_ORDER_COLUMNS = {"idx": "i.idx", "item_id": "i.item_id", "title": "i.title", "sid": "s.sid"}


def _field_path(name: str) -> str:
    return '$."' + name.replace('"', '\\"') + '"'


def filter_items(
    store: ProjectStore,
    *,
    text: str | None = None,
    field: str | None = None,
    value: str | None = None,
    sid_prefix: str | None = None,
    run_id: int | None = None,
    order_by: str = "idx",
    descending: bool = False,
) -> np.ndarray:
    """Item idxs that match a search, in display order, computed in SQL.

    Parameters
    ----------
    text : str, optional
        Case-insensitive substring of the item id, the title or any attribute value.
    field, value : str, optional
        Only items whose attribute ``field`` contains ``value`` (case-insensitive).
    sid_prefix : str, optional
        Only items whose SID (in ``run_id``) starts with this, e.g. ``<a_12><b_3>``.
    run_id : int, optional
        The quantiser run for ``sid_prefix`` and for ordering by ``sid``.
    order_by : str
        ``idx``, ``item_id``, ``title``, ``sid`` or an attribute name.
    descending : bool
        Reverse the order.
    """
    join = ""
    args: list = []
    if run_id is not None:
        join = " LEFT JOIN sid_assignments s ON s.item_idx = i.idx AND s.run_id = ?"
        args.append(int(run_id))
    where: list[str] = []
    if text:
        pattern = f"%{text}%"
        where.append("(i.item_id LIKE ? OR i.title LIKE ? OR i.attrs LIKE ?)")
        args += [pattern, pattern, pattern]
    if field:
        where.append("CAST(json_extract(i.attrs, ?) AS TEXT) LIKE ?")
        args += [_field_path(field), f"%{value or ''}%"]
    if sid_prefix:
        if run_id is None:
            raise SemidError("filtering by SID prefix needs a quantiser run")
        escaped = sid_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("s.sid LIKE ? ESCAPE '\\'")
        args.append(escaped + "%")
    if order_by in _ORDER_COLUMNS:
        if order_by == "sid" and run_id is None:
            order_sql = "i.idx"
        else:
            order_sql = _ORDER_COLUMNS[order_by]
        order_args: list = []
    else:
        order_sql = "json_extract(i.attrs, ?)"
        order_args = [_field_path(order_by)]
    direction = "DESC" if descending else "ASC"
    sql = f"SELECT i.idx FROM items i{join}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    # idx breaks ties so that the order is stable between calls
    sql += f" ORDER BY {order_sql} {direction}, i.idx {direction}"
    rows = store.db.execute(sql, args + order_args).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def find_items(store: ProjectStore, text: str, limit: int = 50) -> list[tuple[int, str, str]]:
    """``(idx, item_id, title)`` of the item with exactly this id, else of items whose id or
    title contains ``text`` (case-insensitive), at most ``limit``."""
    text = text.strip()
    if not text:
        return []
    exact = store.db.execute("SELECT idx, item_id, title FROM items WHERE item_id = ?", [text]).fetchall()
    if exact:
        return [(int(i), str(d), t or "") for i, d, t in exact]
    pattern = f"%{text}%"
    rows = store.db.execute(
        "SELECT idx, item_id, title FROM items WHERE title LIKE ? OR item_id LIKE ? ORDER BY idx LIMIT ?",
        [pattern, pattern, int(limit)],
    ).fetchall()
    return [(int(i), str(d), t or "") for i, d, t in rows]


@dataclass(frozen=True)
class ItemRow:
    """One catalogue row, as the table shows it."""

    idx: int
    item_id: str
    title: str | None
    sid: str | None
    attrs: dict


def item_rows(store: ProjectStore, idxs: Sequence[int], *, run_id: int | None = None) -> list[ItemRow]:
    """The rows of these items (in the order given), with their SID in ``run_id``."""
    idxs = [int(i) for i in idxs]
    if not idxs:
        return []
    found: dict[int, ItemRow] = {}
    for start in range(0, len(idxs), 900):
        chunk = idxs[start : start + 900]
        marks = ",".join("?" * len(chunk))
        if run_id is None:
            sql = f"SELECT idx, item_id, title, attrs, NULL FROM items WHERE idx IN ({marks})"
            args = chunk
        else:
            sql = (
                "SELECT i.idx, i.item_id, i.title, i.attrs, s.sid FROM items i LEFT JOIN sid_assignments s "
                f"ON s.item_idx = i.idx AND s.run_id = ? WHERE i.idx IN ({marks})"
            )
            args = [int(run_id), *chunk]
        for idx, item_id, title, attrs, sid in store.db.execute(sql, args).fetchall():
            found[idx] = ItemRow(idx, item_id, title, sid, json.loads(attrs))
    return [found[i] for i in idxs if i in found]


def format_value(value, kind: str = "path") -> str:
    """An attribute value as one line of text: a list as a path ``a › b``, or, for a list field
    of ``kind`` "set" (genres, tags), as ``a, b``."""
    if _is_missing(value):
        return ""
    if isinstance(value, (list, tuple)):
        return (", " if kind == "set" else " › ").join(format_value(v) for v in value if not _is_missing(v))
    if isinstance(value, float):
        return f"{value:g}"
    return html.unescape(str(value))


# --------------------------------------------------------------------------- one run, ready to inspect


@dataclass
class Inspection:
    """Everything the SID inspector shows about one quantiser run, loaded in one go.

    Built off the GUI thread (:func:`load_inspection`) and handed over as plain data.
    """

    run: "QuantizerRun"  # noqa: F821 - with its codes
    index: object  # core.sids.SidIndex over run.codes
    item_ids: np.ndarray
    titles: np.ndarray
    labels: LabelCodes | None
    terms: TermIndex
    codebook_size: int | None

    @property
    def n_levels(self) -> int:
        return self.run.n_levels


def run_label_field(store: ProjectStore, run) -> str | None:
    """The label field a run was measured against (its spec or metrics), else the project's."""
    purity = run.metrics.get("purity") if isinstance(run.metrics, dict) else None
    for source in (run.spec, run.metrics, purity):
        if isinstance(source, dict) and source.get("label_field"):
            return str(source["label_field"])
    chosen = store.get_meta("label_field")
    if chosen:
        return str(chosen)
    return default_label_field(store.item_fields())


def run_codebook_size(run) -> int | None:
    """Codes per level from the run's spec (``codebook_size``), if it says."""
    size = run.spec.get("codebook_size") if isinstance(run.spec, dict) else None
    if isinstance(size, (list, tuple)):
        size = max(size) if size else None
    return int(size) if size else None


def load_inspection(store: ProjectStore, run_id: int | None = None, *, label_field: str | None = None) -> Inspection:
    """Load a run (the active one by default) with its SID index, labels and title words.

    Parameters
    ----------
    store : ProjectStore
        An open project (in the calling thread).
    run_id : int, optional
        The quantiser run; the project's active run when None.
    label_field : str, optional
        ``field`` or ``field[i]`` to measure purity against; by default the run's own label
        field, else ``categories`` / ``genres`` / ... when the catalogue has one.
    """
    import pandas as pd

    from .errors import InputError
    from .field_kinds import stored_field_kinds
    from .sids import SidIndex, label_values

    run = store.load_quantizer_run(run_id)
    field_spec = label_field or run_label_field(store, run)
    base = None if field_spec is None else field_spec.split("[", 1)[0].strip()
    item_ids, titles, values = read_item_columns(store, base)
    labels = None
    if base is not None:
        try:
            if all(v is None for v in values):
                raise InputError(f"unknown label field; the catalogue has {sorted(store.item_fields())}", field=base)
            frame = pd.DataFrame({base: pd.Series(values, dtype=object)})
            labels = encode_labels(list(label_values(frame, field_spec, stored_field_kinds(store))), field=field_spec)
        except SemidError:
            if label_field is not None:
                raise  # the user asked for this field: say what is wrong with it
            labels = None  # a guessed field this catalogue lacks: no purity, still a tree
    n = run.n_items
    titles = titles[:n]
    return Inspection(
        run=run,
        index=SidIndex(run.codes),
        item_ids=item_ids[:n],
        titles=titles,
        labels=labels,
        terms=TermIndex(list(titles)),
        codebook_size=run_codebook_size(run),
    )


# --------------------------------------------------------------------------- reading without long GIL holds
#
# These run in the GUI's worker threads. A single C call that copies a large result (sqlite3
# turning a 150 MB blob into bytes, pandas building a 100k-row frame) holds the GIL for a few
# hundred milliseconds, and the window cannot repaint meanwhile. Reading in small pieces keeps
# every hold short.

_CHUNK_ROWS = 2000


def read_item_columns(store: ProjectStore, field: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """``(item_ids, titles, values of field)`` in idx order, read in chunks of rows.

    List and object values of ``field`` are decoded from JSON; a missing field gives None.
    """
    if field is None:
        cursor = store.db.conn.execute("SELECT item_id, title, NULL, NULL FROM items ORDER BY idx")
    else:
        path = _field_path(field)
        cursor = store.db.conn.execute(
            "SELECT item_id, title, json_extract(attrs, ?), json_type(attrs, ?) FROM items ORDER BY idx", [path, path])
    ids: list = []
    titles: list = []
    values: list = []
    while True:
        rows = cursor.fetchmany(_CHUNK_ROWS)
        if not rows:
            break
        for item_id, title, value, kind in rows:
            ids.append(item_id)
            titles.append(title)
            values.append(json.loads(value) if kind in ("array", "object") else value)
    return np.array(ids, dtype=object), np.array(titles, dtype=object), values


def read_vectors(store: ProjectStore, set_id: int | None = None) -> tuple[EmbeddingSet, np.ndarray]:
    """An embedding set (the newest by default) and its vectors, read in 2 MB pieces.

    The same as ``store.load_embedding_set``, which reads the stored bytes piece by piece too
    (:meth:`ProjectStore.read_arrays`), so no single call holds the GIL for the whole copy.
    """
    sets = store.list_embedding_sets()  # metadata only
    meta = (sets[-1] if sets else None) if set_id is None else next((e for e in sets if e.id == set_id), None)
    if meta is None:
        store.load_embedding_set(set_id)  # raises the store's own error ("no embeddings yet", "no set #n")
        raise SemidError(f"{store.path}: no embedding set #{set_id}")
    vectors = store.read_arrays("embedding_sets", "vectors", meta.id)["vectors"]
    meta.vectors = vectors
    return meta, vectors
