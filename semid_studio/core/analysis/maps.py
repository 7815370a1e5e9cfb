"""The embedding map: a 2-D PCA (or t-SNE) projection of the item vectors, and the label
groups its points are coloured by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
