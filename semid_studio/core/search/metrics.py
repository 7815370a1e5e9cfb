"""Search metrics: Recall@K, NDCG@K and MRR of rankings against one relevant item each.

Known-item search: every query has exactly one relevant item and the whole catalogue is
ranked. :func:`search_metrics` adds head (the top 1% most popular items by training
interactions, :func:`head_items`) and torso breakdowns and any group of queries;
:func:`bootstrap_ci` gives percentile intervals over queries.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SemidError
from ..store import ProjectStore


DEFAULT_KS = (10, 30)


#: share of items counted as "head" (most popular by training interactions)
HEAD_SHARE = 0.01


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
    from .interactions import training_interactions

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
