"""Search baselines and search evaluation: BM25 (bm25s), dense retrieval (FAISS), metrics.

Known-item search: every query has exactly one relevant item; the whole catalogue is ranked.

- :func:`check_query` is the one gate every query text goes through (the CLI, the GUI and the
  evaluation): empty text, text of stop words or symbols only, and text over
  :data:`MAX_QUERY_CHARS` characters are refused with one clear line; text in a script the
  catalogue does not use passes with a warning (it usually finds nothing, and says so).
- :class:`BM25Index` wraps the maintained ``bm25s`` package (Lucene BM25, k1 = 1.5,
  b = 0.75, English stop words, no stemming). Items whose score is 0 (no query term in common)
  are not returned: a ranking may be shorter than K, or empty.
- :class:`DenseIndex` is an exact inner-product FAISS index over L2-normalised item vectors
  (cosine similarity). Query vectors come from the embedding set's own encoder
  (:func:`semid_studio.core.strategies.encode_queries`).
- :func:`search_metrics` computes Recall@K, NDCG@K and MRR (cut at the largest K), with
  head (the top 1% most popular items by training interactions) and torso breakdowns.
- :func:`evaluate_search` runs a method on a held-out split and stores the report with every
  setting (``store.save_evaluation(task="search")``).

Long requests: the dense side encodes at most the encoder's window (256 word pieces for
MiniLM) unless ``long_text="chunk"`` (mean of the embeddings of consecutive windows); the
share of queries over the window is measured and reported with every evaluation. BM25 reads
the whole text.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import ProjectError, SemidError
from .events import NEVER, CancelToken, Message, Metric, TaskGenerator, drive
from .queries import STOP_WORDS, TRAIN_SPLIT, heldout_split, tokenize
from .store import ProjectStore

#: longer query texts are refused (the longest real request in movielens_tomt has 7,571)
MAX_QUERY_CHARS = 20_000
DEFAULT_KS = (10, 30)
METHODS = ("bm25", "dense")
#: share of items counted as "head" (most popular by training interactions)
HEAD_SHARE = 0.01


# --------------------------------------------------------------------------- query validation


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


# --------------------------------------------------------------------------- indexes


class BM25Index:
    """BM25 over item texts with the ``bm25s`` package (Lucene variant).

    Parameters
    ----------
    texts
        One text per item, aligned to item idx.
    k1, b
        BM25 parameters (the usual 1.5 and 0.75).
    """

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s
        from bm25s.tokenization import Tokenizer

        self.n_items = len(texts)
        self.k1, self.b = k1, b
        self._tokenizer = Tokenizer(lower=True, stopwords=sorted(STOP_WORDS))
        ids = self._tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=False)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._bm25.index(ids, show_progress=False)

    def settings(self) -> dict:
        return {"package": "bm25s", "method": "lucene", "k1": self.k1, "b": self.b, "stopwords": "semid English list",
                "stemmer": None}

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query: ``(idx (n, k) int64, -1 = empty slot; scores (n, k))``.

        Items that share no term with the query are never returned.
        """
        n = len(queries)
        k_eff = max(1, min(k, self.n_items))
        out = np.full((n, k), -1, dtype=np.int64)
        scores = np.zeros((n, k), dtype=np.float32)
        if n == 0:
            return out, scores
        q_ids = self._tokenizer.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=False)
        docs, sc = self._bm25.retrieve(q_ids, k=k_eff, show_progress=False, n_threads=1)
        docs = np.asarray(docs, dtype=np.int64)
        sc = np.asarray(sc, dtype=np.float32)
        keep = sc > 0  # bm25s fills the list with arbitrary zero-score items
        out[:, :k_eff] = np.where(keep, docs, -1)
        scores[:, :k_eff] = np.where(keep, sc, 0.0)
        return out, scores


class DenseIndex:
    """Exact cosine search: FAISS ``IndexFlatIP`` over L2-normalised vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        import faiss

        vecs = normalize(vectors)
        self.n_items, self.dim = vecs.shape
        self._index = faiss.IndexFlatIP(self.dim)
        self._index.add(vecs)

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query vector: ``(idx (n, k) int64, scores (n, k))``."""
        q = normalize(query_vectors)
        if q.shape[1] != self.dim:
            raise SemidError(f"query vectors have {q.shape[1]} dims, the item vectors {self.dim}")
        k_eff = max(1, min(k, self.n_items))
        scores, idx = self._index.search(q, k_eff)
        out = np.full((len(q), k), -1, dtype=np.int64)
        sc = np.zeros((len(q), k), dtype=np.float32)
        out[:, :k_eff] = idx
        sc[:, :k_eff] = scores
        return out, sc


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)


# --------------------------------------------------------------------------- metrics


def hit_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target in its row, -1 when absent. ``-1`` slots are empty; an item
    repeated in a row counts at its first position only."""
    ranked = np.asarray(ranked, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if ranked.ndim != 2 or len(ranked) != len(targets):
        raise ValueError("ranked must be (n_queries, K) with one target per query")
    hits = (ranked == targets[:, None]) & (ranked >= 0)
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1), -1)


def _per_query(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-query values of every metric (so that they can be averaged or bootstrapped)."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = (ranks >= 0) & (ranks < k)
        out[f"recall@{k}"] = hit.astype(np.float64)
        gain = np.zeros(len(ranks))
        gain[hit] = 1.0 / np.log2(ranks[hit] + 2.0)
        out[f"ndcg@{k}"] = gain
    kmax = max(ks)
    rr = np.zeros(len(ranks))
    ok = (ranks >= 0) & (ranks < kmax)
    rr[ok] = 1.0 / (ranks[ok] + 1.0)
    out["mrr"] = rr
    return out


def search_metrics(
    ranked: np.ndarray,
    target_idx: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    head_items: np.ndarray | None = None,
    groups: dict[str, np.ndarray] | None = None,
) -> dict:
    """Recall@K, NDCG@K and MRR (cut at max K) of rankings against one target item each.

    Parameters
    ----------
    ranked
        ``(n_queries, K)`` item idx, best first; ``-1`` marks an empty slot.
    target_idx
        ``(n_queries,)`` the relevant item of each query.
    ks
        Cut-offs; K may exceed the row length (missing ranks simply cannot hit).
    head_items
        Optional boolean mask over items (True = head); adds ``head`` and ``torso`` entries
        computed over the queries whose target is (not) a head item.
    groups
        Optional extra breakdowns: name -> boolean mask over *queries*.

    Returns
    -------
    dict
        ``{"n": ..., "recall@10": ..., "ndcg@10": ..., ..., "mrr": ..., "head": {...},
        "torso": {...}, <group>: {...}}``; a group with no query has ``n = 0`` and no values.
    """
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise SemidError("cut-offs K must be positive integers")
    targets = np.asarray(target_idx, dtype=np.int64)
    ranks = hit_ranks(ranked, targets)
    per = _per_query(ranks, ks)

    def summary(mask: np.ndarray | None) -> dict:
        sel = np.ones(len(ranks), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        n = int(sel.sum())
        out: dict = {"n": n}
        if n:
            out.update({name: float(vals[sel].mean()) for name, vals in per.items()})
        return out

    result = summary(None)
    if head_items is not None:
        head = np.asarray(head_items, dtype=bool)
        is_head = head[targets]
        result["head"] = summary(is_head)
        result["torso"] = summary(~is_head)
    for name, mask in (groups or {}).items():
        result[name] = summary(mask)
    return result


def bootstrap_ci(ranked: np.ndarray, target_idx: np.ndarray, ks: Sequence[int] = DEFAULT_KS, *,
                 n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap intervals over queries for every metric (seeded)."""
    ranks = hit_ranks(ranked, np.asarray(target_idx, dtype=np.int64))
    per = _per_query(ranks, ks)
    n = len(ranks)
    if n == 0 or n_boot <= 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    out = {}
    for name, vals in per.items():
        means = vals[draws].mean(axis=1)
        out[name] = [float(np.quantile(means, lo_q)), float(np.quantile(means, hi_q))]
    return out


def head_items(store: ProjectStore, share: float = HEAD_SHARE, *, holdout_last: int = 2) -> np.ndarray:
    """Boolean mask over items: the top ``share`` most popular by *training* interactions.

    Training interactions are the leave-one-out training part (each user's last
    ``holdout_last`` items left out), so that popularity never uses evaluation data. Items
    tied at the cut are ranked by idx. A project without interactions has no head items.
    """
    from .strategies import training_interactions

    n_items = store.item_count()
    mask = np.zeros(n_items, dtype=bool)
    if store.interaction_count() == 0 or n_items == 0:
        return mask
    train = training_interactions(store, holdout_last=holdout_last)
    counts = np.bincount(train["item_idx"].to_numpy(np.int64), minlength=n_items)
    n_head = max(1, int(round(share * n_items)))
    order = np.lexsort((np.arange(n_items), -counts))
    mask[order[:n_head]] = True
    return mask


# --------------------------------------------------------------------------- evaluation


def item_texts(store: ProjectStore, template: str | None = None) -> tuple[list[str], str]:
    """Item texts through ``template`` (default: the project's template, else an automatic one)."""
    from .embed import default_template, render_texts

    template = template or store.get_meta("template") or default_template(store.item_fields())
    return render_texts(store.items_frame(), template), template


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


def rank_bm25(texts: Sequence[str], queries: Sequence[str], k: int, *,
              known_scripts: set[str] | None = None) -> tuple[np.ndarray, dict]:
    """BM25 rankings ``(n, k)`` for query texts (unusable queries get an empty row)."""
    started = time.perf_counter()
    scripts = known_scripts if known_scripts is not None else text_scripts(texts)
    clean, valid, reasons = _validated(list(queries), scripts)
    index = BM25Index(texts)
    ranked = np.full((len(clean), k), -1, dtype=np.int64)
    sel = np.flatnonzero(valid)
    if len(sel):
        ranked[sel], _ = index.search([clean[i] for i in sel], k)
    info = {"bm25": index.settings(), "n_rejected": int((~valid).sum()), "rejected": reasons,
            "empty_rankings": int((ranked[:, 0] < 0).sum()), "seconds": round(time.perf_counter() - started, 3)}
    return ranked, info


def rank_dense(store: ProjectStore, embedding_set_id: int, queries: Sequence[str], k: int, *,
               long_text: str = "truncate", batch_size: int = 32, known_scripts: set[str] | None = None,
               cancel: CancelToken = NEVER) -> TaskGenerator[tuple[np.ndarray, dict]]:
    """Dense rankings ``(n, k)`` over an embedding set for query texts (unusable ones: empty row)."""
    from . import strategies

    started = time.perf_counter()
    emb = store.load_embedding_set(embedding_set_id)
    if emb.n_items != store.item_count():
        raise ProjectError(f"embedding set #{emb.id} has {emb.n_items} items but the catalogue has "
                           f"{store.item_count()}; re-embed the catalogue")
    if known_scripts is None:
        known_scripts = text_scripts(item_texts(store)[0])
    clean, valid, reasons = _validated(list(queries), known_scripts)
    sel = np.flatnonzero(valid)
    ranked = np.full((len(clean), k), -1, dtype=np.int64)
    stats: dict = {}
    if len(sel):
        qvecs, stats = yield from strategies.encode_queries(store, emb.id, [clean[i] for i in sel],
                                                            long_text=long_text, batch_size=batch_size, cancel=cancel)
        ranked[sel], _ = DenseIndex(emb.vectors).search(qvecs, k)
    info = {"id": int(emb.id), "name": emb.name, "strategy": emb.strategy, "model": emb.model,
            "template": emb.template, "seed": emb.params.get("seed"), "query_encoding": stats,
            "n_rejected": int((~valid).sum()), "rejected": reasons,
            "seconds": round(time.perf_counter() - started, 3)}
    return ranked, info


def evaluate_search(
    store: ProjectStore,
    method: str = "bm25",
    *,
    embedding_set_ids: Sequence[int] | None = None,
    split: str | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    long_text: str = "truncate",
    template: str | None = None,
    head_share: float = HEAD_SHARE,
    max_queries: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    name: str | None = None,
    save: bool = True,
    batch_size: int = 32,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[dict]:
    """Rank the whole catalogue for every held-out query and report search metrics.

    Parameters
    ----------
    store
        The open project (items and held-out queries).
    method
        ``bm25`` (bm25s over the item texts) or ``dense`` (FAISS over an embedding set, queries
        encoded by the set's own encoder).
    embedding_set_ids
        dense: one or more sets; several sets (e.g. one strategy trained with 3 seeds) are
        reported one by one and as mean and standard deviation. Default: the newest set that
        has a text side.
    split
        Held-out split; default ``validation`` when the project has one, else ``test``.
    ks
        Cut-offs (default 10 and 30); MRR is cut at the largest.
    long_text
        dense: ``truncate`` (the encoder's window) or ``chunk`` (mean over windows).
    template
        bm25: item text template (default: the project's).
    head_share
        Share of items counted as head (most popular by training interactions).
    max_queries
        Evaluate a seeded random sample of at most this many queries of the split (for large
        generated splits; the sample size is stored with the report). None = all.
    bootstrap, seed
        Percentile bootstrap over queries (number of resamples, seed) for 95% intervals.
    name
        Name of the stored evaluation (default: method and set).
    save
        Store the report in the project (``store.save_evaluation(task="search")``).
    cancel
        Checked between encoding chunks and between sets.

    Returns
    -------
    dict
        ``{"id": evaluation id or None, "settings": {...}, "metrics": {...}}`` where metrics has
        the overall values, ``head`` / ``torso`` / ``asked`` / ``never_asked`` breakdowns,
        ``ci95`` and, for several sets, ``runs`` and ``summary`` (mean, std, n).
    """
    from . import strategies

    if method not in METHODS:
        raise SemidError(f"unknown search method '{method}'; choose one of {', '.join(METHODS)}")
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise SemidError("cut-offs K must be positive integers")
    split = heldout_split(store, split)
    frame = store.queries_frame(split=split)
    n_split = len(frame)
    if max_queries is not None and max_queries < n_split:
        if max_queries < 1:
            raise SemidError("max_queries must be at least 1")
        keep = np.sort(np.random.default_rng(seed).choice(n_split, size=max_queries, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
    n_items = store.item_count()
    targets = frame["item_idx"].to_numpy(np.int64)
    texts_all, template_used = item_texts(store, template)
    scripts = text_scripts(texts_all)
    _, valid, reasons = _validated(frame["text"].tolist(), scripts)
    if reasons:
        yield Message(f"{int((~valid).sum())} of {len(frame)} {split} queries are unusable "
                      f"({', '.join(f'{n} {r}' for r, n in reasons.items())}); they count as misses", level="warning")
    head = head_items(store, head_share)
    asked_items = np.zeros(n_items, dtype=bool)
    asked_items[store.queries_frame(split=TRAIN_SPLIT)["item_idx"].to_numpy(np.int64)] = True
    groups = {"asked": asked_items[targets], "never_asked": ~asked_items[targets]}
    kmax = max(ks)
    settings: dict = {
        "method": method, "split": split, "ks": list(ks), "n_queries": int(len(frame)),
        "n_split_queries": int(n_split), "max_queries": max_queries,
        "n_rejected": int((~valid).sum()), "rejected": reasons, "head_share": head_share,
        "n_head_items": int(head.sum()), "bootstrap": bootstrap, "seed": seed,
        "query_sources": sorted(frame["source"].unique().tolist()),
        "groups": {"asked": "target item has training queries", "never_asked": "target item has none"},
    }
    yield Message(f"search evaluation: {method} on {len(frame)} {split} queries over {n_items} items")

    runs: list[dict] = []
    if method == "bm25":
        ranked, info = rank_bm25(texts_all, frame["text"].tolist(), kmax, known_scripts=scripts)
        settings.update(template=template_used, bm25=info["bm25"], seconds=info["seconds"])
        metrics = search_metrics(ranked, targets, ks, head, groups)
        metrics["ci95"] = bootstrap_ci(ranked, targets, ks, n_boot=bootstrap, seed=seed)
        metrics["empty_rankings"] = info["empty_rankings"]
        runs.append(metrics)
    else:
        set_ids = list(embedding_set_ids or [strategies.default_search_set(store)])
        settings.update(embedding_set_ids=set_ids, long_text=long_text, sets=[])
        for set_id in set_ids:
            cancel.raise_if_cancelled()
            ranked, info = yield from rank_dense(store, set_id, frame["text"].tolist(), kmax, long_text=long_text,
                                                 batch_size=batch_size, known_scripts=scripts, cancel=cancel)
            metrics = search_metrics(ranked, targets, ks, head, groups)
            metrics["ci95"] = bootstrap_ci(ranked, targets, ks, n_boot=bootstrap, seed=seed)
            metrics["embedding_set_id"] = int(set_id)
            runs.append(metrics)
            settings["sets"].append({k: v for k, v in info.items() if k not in ("n_rejected", "rejected")})
            yield Metric(f"recall@{ks[0]}", metrics[f"recall@{ks[0]}"], 0, info["seconds"], split=split)
    metrics = dict(runs[0]) if len(runs) == 1 else _summarise(runs)
    if len(runs) > 1:
        metrics["runs"] = runs
    eval_name = name or (method if method == "bm25" else f"dense #{','.join(str(i) for i in settings['embedding_set_ids'])}")
    eval_id = None
    if save:
        eval_id = store.save_evaluation(name=eval_name, task="search", split=split, settings=settings, metrics=metrics)
    yield Message(format_metrics(metrics, ks, title=f"{eval_name} on {split}"))
    return {"id": eval_id, "settings": settings, "metrics": metrics}


def _summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation (ddof 1) of each metric over runs (e.g. seeds of one
    strategy), overall and per group; ``n`` (queries) is the same in every run."""

    def block(dicts: list[dict]) -> dict:
        out: dict = {"n": int(dicts[0].get("n", 0))}
        std: dict = {}
        for key, value in dicts[0].items():
            if key == "n" or not isinstance(value, (int, float)):
                continue
            vals = np.array([d[key] for d in dicts if key in d], dtype=float)
            out[key] = float(vals.mean())
            std[key] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out["std"] = std
        return out

    out = block([{k: v for k, v in r.items() if k != "embedding_set_id"} for r in runs])
    for group in ("head", "torso", "asked", "never_asked"):
        if group in runs[0]:
            out[group] = block([r[group] for r in runs])
    out["n_runs"] = len(runs)
    return out


def format_metrics(metrics: dict, ks: Sequence[int] = DEFAULT_KS, *, title: str = "") -> str:
    """A short table of the metrics (overall, head, torso, asked, never asked)."""
    cols = [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks] + ["mrr"]
    lines = [title] if title else []
    lines.append(f"{'':<12}{'n':>6}  " + "  ".join(f"{c:>9}" for c in cols))
    std = metrics.get("std", {})
    for label, m in [("all", metrics)] + [(g, metrics[g]) for g in ("head", "torso", "asked", "never_asked")
                                          if g in metrics]:
        vals = []
        for c in cols:
            v = m.get(c)
            vals.append(f"{v:9.4f}" if isinstance(v, float) else f"{'-':>9}")
        line = f"{label:<12}{int(m.get('n', 0)):>6}  " + "  ".join(vals)
        if label == "all" and std:
            line += "   (mean of %d runs; std R@%d %.4f)" % (metrics.get("n_runs", 1), ks[0], std.get(f"recall@{ks[0]}", 0.0))
        lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- one query


@dataclass
class SearchResult:
    """The answer to one interactive query."""

    query: str
    method: str
    hits: list[dict] = field(default_factory=list)  # rank, idx, item_id, title, score
    warnings: list[str] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"query": self.query, "method": self.method, "hits": self.hits, "warnings": self.warnings,
                "note": self.note, "seconds": self.seconds}


def search(
    store: ProjectStore,
    text: str,
    *,
    k: int = 10,
    method: str = "dense",
    embedding_set_id: int | None = None,
    long_text: str = "truncate",
) -> SearchResult:
    """Search the catalogue for one query text (the ``semid search`` command).

    Until the joint generative model exists, ``dense`` retrieves with an embedding set of the
    project (the newest one with a text side unless ``embedding_set_id`` is given); the result
    says so in its ``note``.

    Raises
    ------
    SemidError
        For an unusable query (see :func:`check_query`), a bad ``k`` or method.
    """
    from . import strategies

    if method not in METHODS:
        raise SemidError(f"unknown search method '{method}'; choose one of {', '.join(METHODS)}")
    if not 1 <= int(k) <= 1000:
        raise SemidError("-k must be between 1 and 1000")
    texts, _ = item_texts(store)
    checked = check_query(text, known_scripts=text_scripts(texts))
    started = time.perf_counter()
    result = SearchResult(checked.text, method, warnings=list(checked.warnings))
    if method == "bm25":
        idx, scores = BM25Index(texts).search([checked.text], k)
        result.note = "BM25 (bm25s) over the item texts"
    else:
        set_id = embedding_set_id or strategies.default_search_set(store)
        emb = store.load_embedding_set(set_id)
        qvec, _ = drive(strategies.encode_queries(store, set_id, [checked.text], long_text=long_text))
        idx, scores = DenseIndex(emb.vectors).search(qvec, k)
        result.note = (f"dense retrieval with embedding set #{set_id} ({emb.strategy}); "
                       f"the joint generative search model is not built yet")
    found = [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if i >= 0]
    if not found:
        result.warnings.append("no item shares a word with the query" if method == "bm25" else "no results")
    items = store.get_items([i for i, _ in found])
    result.hits = [{"rank": r + 1, "idx": i, "item_id": it["item_id"], "title": it.get("title"), "score": round(s, 4)}
                   for r, ((i, s), it) in enumerate(zip(found, items))]
    result.seconds = round(time.perf_counter() - started, 4)
    return result


__all__ = [
    "BM25Index", "CheckedQuery", "DEFAULT_KS", "DenseIndex", "HEAD_SHARE", "MAX_QUERY_CHARS", "METHODS",
    "SearchResult", "bootstrap_ci", "check_query", "evaluate_search", "format_metrics", "head_items", "hit_ranks",
    "item_texts", "normalize", "rank_bm25", "rank_dense", "search", "search_metrics", "text_scripts",
]
