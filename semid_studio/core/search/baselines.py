"""The search baselines over a project: BM25 and dense retrieval.

:func:`rank_bm25` / :func:`rank_dense` rank the catalogue for a set of query texts (query
vectors from the embedding set's own encoder, :func:`.strategies.encode_queries`);
:func:`evaluate_search` runs a method on a held-out split and stores the report with every
setting (``store.save_evaluation(task="search")``); :func:`search` answers one query.

Long requests: the dense side encodes at most the encoder's window (256 word pieces for
MiniLM) unless ``long_text="chunk"`` (mean of the embeddings of consecutive windows); the
share of queries over the window is measured and reported with every evaluation. BM25 reads
the whole text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, Metric, TaskGenerator, drive
from ..store import ProjectStore
from .checks import _validated, check_query, text_scripts
from .indexes import BM25Index, DenseIndex
from .metrics import DEFAULT_KS, HEAD_SHARE, _summarise, bootstrap_ci, format_metrics, head_items, search_metrics
from .queries import TRAIN_SPLIT, heldout_split
from .text import item_texts


METHODS = ("bm25", "dense")


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


# --------------------------------------------------------------------------- evaluation


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
