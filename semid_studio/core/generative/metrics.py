"""Ranking metrics for next-item prediction (one target per case, full catalogue).

A ranked list is an int array ``(n_cases, K)`` of item idx, ``-1`` where a slot is empty
(fewer candidates than K, or an invalid SID in unconstrained decoding). Each item counts
once: a repeated item in a list is treated as empty after its first occurrence, so a
ranker cannot score twice with the same item.
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (5, 10, 20)


def dedupe_rows(ranked: np.ndarray) -> np.ndarray:
    """Replace repeats of an item within a row by -1 (first occurrence kept)."""
    ranked = np.asarray(ranked, dtype=np.int64).copy()
    if ranked.size == 0:
        return ranked
    order = np.argsort(ranked, axis=1, kind="stable")
    sorted_vals = np.take_along_axis(ranked, order, axis=1)
    dup_sorted = np.zeros_like(sorted_vals, dtype=bool)
    dup_sorted[:, 1:] = (sorted_vals[:, 1:] == sorted_vals[:, :-1]) & (sorted_vals[:, 1:] >= 0)
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    ranked[dup] = -1
    return ranked


def hit_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of the target in each row, or -1 when it is absent."""
    ranked = dedupe_rows(ranked)
    hits = ranked == np.asarray(targets, dtype=np.int64)[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1), -1)


def ranking_metrics(ranked: np.ndarray, targets: np.ndarray, ks=DEFAULT_KS) -> dict[str, float]:
    """Recall@K and NDCG@K (one relevant item per case) for every K in ``ks``.

    Rows shorter than max(ks) simply cannot hit at the missing ranks.
    """
    ranks = hit_ranks(ranked, targets)
    out: dict[str, float] = {}
    n = max(1, len(targets))
    for k in ks:
        hit = (ranks >= 0) & (ranks < k)
        out[f"recall@{k}"] = float(hit.sum() / n)
        gains = np.zeros(len(ranks))
        gains[hit] = 1.0 / np.log2(ranks[hit] + 2.0)
        out[f"ndcg@{k}"] = float(gains.sum() / n)
    return out


def summarise_runs(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation (ddof 1 when possible) and count over several seeds' metrics."""
    keys = sorted({k for r in runs for k in r})
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in runs if k in r], dtype=float)
        std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out[k] = {"mean": float(vals.mean()), "std": std, "n": int(len(vals))}
    return out


def category_entropy(ranked: np.ndarray, labels: np.ndarray) -> float:
    """Mean entropy (nats) of the label distribution within each top-K list (TIGER's
    Entropy@K for diversity); empty slots are ignored."""
    ents = []
    for row in np.asarray(ranked):
        row = row[row >= 0]
        if len(row) == 0:
            continue
        _, counts = np.unique(labels[row], return_counts=True)
        p = counts / counts.sum()
        ents.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(ents)) if ents else 0.0
