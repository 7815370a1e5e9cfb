"""RQ-KMeans: one k-means per level on the residuals (FAISS or scikit-learn, from k-means++),
with the optional balanced assignment (a sparse Sinkhorn step towards equal cluster sizes)."""

from __future__ import annotations

import time

import numpy as np

from ..events import NEVER, CancelToken, Progress, TaskGenerator
from .residual import (ROW_BLOCK, FittedQuantizer, _check_size, nearest_codes, prepare_vectors, principal_subspace,
                       project, sq_distances, unique_last_codes)
from .spec import RQKMeansSpec


#: candidates per k-means++ step (None = scikit-learn's greedy default, 2 + log K)
KMEANS_PP_TRIALS: int | None = None
#: nearest centroids an item may be balanced onto (a sparse Sinkhorn kernel)
BALANCE_CANDIDATES = 64


def _kmeans_centroids(x: np.ndarray, k: int, spec: RQKMeansSpec, seed: int) -> np.ndarray:
    """Centroids of Lloyd's k-means by the chosen library, from k-means++ or random seeds."""
    if spec.backend == "sklearn":
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, init="k-means++" if spec.init == "k-means++" else "random",
                       n_init=1, max_iter=spec.n_iter, random_state=seed)
        model.fit(x)
        return model.cluster_centers_.astype(np.float32)
    import faiss

    init = None
    if spec.init == "k-means++":
        from sklearn.cluster import kmeans_plusplus
        from threadpoolctl import threadpool_limits

        # greedy k-means++ (scikit-learn's default, ~2 + log K candidates per step): on Beauty
        # it lowers the level-3 error by 5% and the collisions by 10% against random or
        # one-candidate seeding. One BLAS thread: its many small products crawl when threaded.
        # On a sample for huge catalogues; FAISS trains on at most 256 x K points anyway.
        sample = x
        if len(x) > 256 * k:
            sample = x[np.random.default_rng(seed).choice(len(x), 256 * k, replace=False)]
        with threadpool_limits(1):
            # float64 input: scikit-learn upcasts float32 chunk by chunk, 2.7x slower, same picks
            _, picked = kmeans_plusplus(sample.astype(np.float64), k, random_state=seed,
                                        n_local_trials=KMEANS_PP_TRIALS)
        init = np.ascontiguousarray(sample[picked], dtype=np.float32)
    # faiss-gpu (when installed and it sees a GPU) trains on the GPUs; the CPU build otherwise
    km = faiss.Kmeans(x.shape[1], k, niter=spec.n_iter, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=256, gpu=faiss_gpus() > 0)
    km.train(np.ascontiguousarray(x, dtype=np.float32), init_centroids=init)
    return np.array(km.centroids, dtype=np.float32)


_BALANCE_BLOCK = 8192


def faiss_gpus() -> int:
    """GPUs FAISS can use: 0 with the CPU-only build (it has no get_num_gpus)."""
    import faiss

    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


def balanced_assign(x: np.ndarray, centroids: np.ndarray, eps_rel: float = 0.05, n_iter: int = 100,
                    candidates: int | None = None) -> np.ndarray:
    """Assignment with (close to) equal cluster sizes, by Sinkhorn's entropic transport.

    The transport plan between the items (mass 1/n each) and the clusters (mass 1/K each)
    under squared distances is found with Sinkhorn-Knopp scaling; each item then takes the
    cluster of its largest plan entry. ``eps_rel`` scales the entropy term to the mean
    distance gap: small keeps items near their nearest centroid, large forces balance.
    Each item only considers its ``candidates`` nearest centroids (a sparse kernel): farther
    entries are negligible, and it keeps the step fast and memory-light for big catalogues.
    """
    from scipy import sparse

    n, k = len(x), len(centroids)
    m = min(k, candidates or BALANCE_CANDIDATES)
    cand = np.empty((n, m), dtype=np.int32 if k < 2**31 and n * m < 2**31 else np.int64)
    gap = np.empty((n, m), dtype=np.float32)
    # in row blocks: bounds memory, and keeps each GIL-holding numpy call short so a GUI
    # thread beside this one stays responsive on big catalogues
    for start in range(0, n, _BALANCE_BLOCK):
        d = sq_distances(x[start : start + _BALANCE_BLOCK], centroids)
        c = np.argpartition(d, m - 1, axis=1)[:, :m] if m < k else np.tile(np.arange(k), (len(d), 1))
        g = np.take_along_axis(d, c, axis=1)
        g -= g.min(axis=1, keepdims=True)  # per-row shift: the plan is unchanged, exp() stays in range
        cand[start : start + len(d)] = c
        gap[start : start + len(d)] = g
    eps = eps_rel * max(float(gap.mean()), 1e-12)
    weights = gap.astype(np.float64)  # the only float64 (n, m) array: exp() in place
    del gap
    weights *= -1.0 / eps
    np.exp(weights, out=weights)
    kernel = sparse.csr_matrix((weights.ravel(), cand.ravel(), np.arange(0, n * m + 1, m, dtype=cand.dtype)),
                               shape=(n, k))
    kernel_t = kernel.T  # a CSC view of the same arrays (a CSR copy would double the kernel)
    u = np.ones(n)
    v = np.ones(k)
    for step in range(n_iter):
        v = (n / k) / np.maximum(kernel_t @ u, 1e-300)
        u = 1.0 / np.maximum(kernel @ v, 1e-300)
        if step % 10 == 9 and np.abs(v * (kernel_t @ u) * (k / n) - 1.0).max() < 1e-3:
            break  # cluster masses within 0.1% of equal: the plan has converged
    # the row scale u does not change which cluster a row prefers
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        best = np.argmax(weights[rows] * v[cand[rows]], axis=1)
        out[rows] = cand[rows][np.arange(len(best)), best]
    return out


def _cluster_means(x: np.ndarray, labels: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Mean of each cluster's members (empty clusters keep their previous centroid)."""
    from scipy import sparse

    k = len(previous)
    counts = np.bincount(labels, minlength=k)
    # sums per cluster as (one-hot clusters x items) @ x: no sorted copy of x (1.5 GB at 1M items)
    onehot = sparse.csr_matrix((np.ones(len(labels), dtype=x.dtype), labels, np.arange(len(labels) + 1)),
                               shape=(len(labels), k))
    sums = np.asarray(onehot.T @ x)
    means = previous.copy()
    used = counts > 0
    means[used] = sums[used] / counts[used, None]
    return means


def fit_rq_kmeans(vectors: np.ndarray, spec: RQKMeansSpec, cancel: CancelToken = NEVER,
                  inplace: bool = False) -> TaskGenerator[FittedQuantizer]:
    """Fit residual k-means; yields Progress per level, returns a :class:`FittedQuantizer`.

    ``inplace``: the caller hands ``vectors`` (float32) over, and they are normalised in place
    and become the result's ``inputs`` instead of being copied.
    """
    started = time.perf_counter()
    x = prepare_vectors(vectors, spec.normalize, copy=not inplace)
    _check_size(len(x), spec)
    residual = x.copy()
    codes = np.empty((len(x), spec.levels), dtype=np.int64)
    books: list[np.ndarray] = []
    stage = "RQ-KMeans"
    yield Progress(stage, 0, spec.levels, "level 1")
    info: dict = {}
    model_state: dict[str, np.ndarray] = {}
    for level in range(spec.levels):
        cancel.raise_if_cancelled()
        seed = spec.seed + level
        space = residual
        if level == 0 and 0 < spec.coarse_dims < x.shape[1]:
            state = principal_subspace(x, spec.coarse_dims)
            space = project(x, state)
        centroids = _kmeans_centroids(space, spec.codebook_size, spec, seed)
        if spec.is_balanced(level):
            for _ in range(spec.balance_iter):
                cancel.raise_if_cancelled()
                labels = balanced_assign(space, centroids, spec.balance_eps)
                centroids = _cluster_means(space, labels, centroids)
            labels = balanced_assign(space, centroids, spec.balance_eps)
        else:
            labels = nearest_codes(space, centroids)
        if space is not residual:
            # level 1 was chosen in the principal subspace; its codewords are the full-space
            # means, and the subspace centroids are kept to assign new items the same way
            state["coarse_centroids"] = centroids.astype(np.float32)
            model_state.update(state)
            fallback = state["coarse_mean"] + centroids @ state["coarse_axes"].T  # for an empty cluster
            centroids = _cluster_means(residual, labels, fallback.astype(np.float32))
        if level == spec.levels - 1 and spec.unique_last_level:
            nearest = labels
            labels, moved = unique_last_codes(codes[:, :level], residual, centroids, labels)
            info.update(_unmatched_collisions(np.concatenate([codes[:, :level], nearest[:, None]], axis=1)))
            info["last_level_reassigned"] = moved
        codes[:, level] = labels
        books.append(centroids.astype(np.float32))
        for start in range(0, len(x), ROW_BLOCK):  # no (n, dim) temporary of codewords
            residual[start : start + ROW_BLOCK] -= centroids[labels[start : start + ROW_BLOCK]]
        yield Progress(stage, level + 1, spec.levels, f"level {level + 1} done")
    info["fit_seconds"] = round(time.perf_counter() - started, 3)
    reconstructions = np.subtract(x, residual, out=residual)  # the residuals are not needed any more
    return FittedQuantizer("rq-kmeans", spec, codes, books, x, reconstructions, model_state, info)


def _unmatched_collisions(codes: np.ndarray) -> dict:
    """Uniqueness of the tuples as they were before the last-level matching (reported for honesty)."""
    _, counts = np.unique(codes, axis=0, return_counts=True)
    return {"unmatched_unique_share": float((counts == 1).sum() / len(codes)),
            "unmatched_largest_group": int(counts.max())}
