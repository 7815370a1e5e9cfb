"""How two quantiser runs' level-1 groups map onto each other: contingency matrix, NMI,
ARI and the best match of every group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemidError


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
