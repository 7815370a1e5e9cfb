"""What both quantisers share: the fitted result (:class:`FittedQuantizer`), the input
vectors' preparation, nearest codewords, residual encoding level by level (with the optional
principal-subspace first level) and the collision-aware last level (:func:`unique_last_codes`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .. import sids
from ..errors import SemidError
from .spec import Spec


#: rows per block of the passes over all items (bounds their temporaries: 1M x 384 float32 is 1.5 GB)
ROW_BLOCK = 32768


@dataclass
class FittedQuantizer:
    """What a fit produces.

    Attributes
    ----------
    method : str
    spec : RQKMeansSpec | RQVAESpec
    codes : np.ndarray
        ``(n_items, L)`` int64 semantic codes (no dedup level yet).
    codebooks : list of np.ndarray
        One ``(K, dim)`` float32 array per level (latent dim for RQ-VAE).
    inputs : np.ndarray
        The vectors the quantiser saw (after normalisation), ``(n_items, dim)``.
    reconstructions : np.ndarray
        Their reconstructions from the codes, same shape.
    model_state : dict of np.ndarray
        RQ-VAE weights (``state_dict`` as numpy); empty for RQ-KMeans.
    info : dict
        JSON-able facts about the fit (time, nearest-code collisions, training log).
    """

    method: str
    spec: Spec
    codes: np.ndarray
    codebooks: list[np.ndarray]
    inputs: np.ndarray
    reconstructions: np.ndarray
    model_state: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def codebook_arrays(self) -> dict[str, np.ndarray]:
        """Codebooks keyed ``level_1, level_2, ...`` as the project stores them."""
        return {f"level_{j + 1}": np.ascontiguousarray(b, dtype=np.float32) for j, b in enumerate(self.codebooks)}


def prepare_vectors(vectors: np.ndarray, normalize: bool, copy: bool = True) -> np.ndarray:
    """Float32 copy of the vectors, L2-normalised when asked (zero vectors stay zero).

    ``copy=False``: normalise the caller's float32 array in place (it hands the array over; a
    million 384-d vectors are 1.5 GB). Checked and normalised in row blocks, so no temporary
    is the size of the whole array.
    """
    x = np.array(vectors, dtype=np.float32, copy=True) if copy else np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise SemidError(f"embeddings must be a 2-D array (items x dims), got shape {x.shape}")
    for start in range(0, len(x), ROW_BLOCK):
        block = x[start : start + ROW_BLOCK]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = start + int(np.flatnonzero(~finite)[0])
            raise SemidError(f"embedding of item idx {bad} contains NaN or infinite values; re-embed the catalogue")
        if normalize:
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
            np.divide(block, norms, out=block, where=norms > 0)
    return x


def _check_size(n_items: int, spec: Spec) -> None:
    if n_items < spec.codebook_size:
        raise SemidError(
            f"a codebook of {spec.codebook_size} codes needs at least {spec.codebook_size} items, "
            f"but there are {n_items}; choose a smaller codebook size (e.g. "
            f"{max(2, 2 ** int(np.log2(max(n_items // 4, 2))))})"
        )


@contextlib.contextmanager
def thread_limit(threads: int, torch_too: bool = False) -> Iterator[None]:
    """Run FAISS (and torch) with ``threads`` CPU threads, restoring the settings after; 0 = as is."""
    if threads <= 0:
        yield
        return
    import faiss

    before_faiss = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    before_torch = None
    if torch_too:
        import torch

        before_torch = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before_faiss)
        if before_torch is not None:
            import torch

            torch.set_num_threads(before_torch)


def sq_distances(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, K)`` (float32, clipped at 0)."""
    d = (x * x).sum(1, keepdims=True) - 2.0 * (x @ codebook.T) + (codebook * codebook).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


def nearest_codes(x: np.ndarray, codebook: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest codeword for every row (chunked to bound memory)."""
    c_sq = (codebook * codebook).sum(1)[None, :]
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        # ||x||^2 is the same for every codeword of a row, so it does not change the argmin
        out[start : start + chunk] = np.argmin(c_sq - 2.0 * (block @ codebook.T), axis=1)
    return out


def principal_subspace(x: np.ndarray, dims: int) -> dict[str, np.ndarray]:
    """Mean and leading ``dims`` principal axes of ``x`` (eigenvectors of the covariance).

    Axis signs are made deterministic (largest coordinate positive) so a seed reproduces.
    """
    from threadpoolctl import threadpool_limits

    mean = x.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(x), ROW_BLOCK):  # in row blocks: never a float64 copy of all of x
        centred = x[start : start + ROW_BLOCK].astype(np.float64) - mean
        scatter += centred.T @ centred
    with threadpool_limits(1):  # a dim x dim problem: threaded LAPACK only spin-waits (4 s vs 0.05 s)
        values, vectors = np.linalg.eigh(scatter)
    axes = vectors[:, np.argsort(values)[::-1][:dims]]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return {"coarse_mean": mean.astype(np.float32), "coarse_axes": (axes * signs).astype(np.float32)}


def project(x: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    """Coordinates of ``x`` on the stored principal axes (in row blocks: no centred copy of ``x``)."""
    axes = state["coarse_axes"]
    out = np.empty((len(x), axes.shape[1]), dtype=np.float32)
    for start in range(0, len(x), ROW_BLOCK):
        out[start : start + ROW_BLOCK] = (x[start : start + ROW_BLOCK] - state["coarse_mean"]) @ axes
    return out


def residual_encode(x: np.ndarray, codebooks: list[np.ndarray],
                    coarse: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy residual quantisation: ``(codes (n, L), final residuals (n, dim))``.

    With ``coarse`` (``coarse_mean``, ``coarse_axes``, ``coarse_centroids``), level 1 is
    assigned in the principal subspace, as the fit did.
    """
    residual = np.array(x, dtype=np.float32, copy=True)
    codes = np.empty((len(x), len(codebooks)), dtype=np.int64)
    for j, book in enumerate(codebooks):
        if j == 0 and coarse:
            codes[:, j] = nearest_codes(project(x, coarse), coarse["coarse_centroids"])
        else:
            codes[:, j] = nearest_codes(residual, book)
        residual -= book[codes[:, j]]
    return codes, residual


def unique_last_codes(prefix: np.ndarray, residual: np.ndarray, codebook: np.ndarray,
                      codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Make last-level codes distinct within each group sharing ``prefix``.

    Only groups whose nearest codes collide are touched. In such a group of m items, a
    minimum-cost matching (Hungarian algorithm, scipy) over the squared distances between
    the items' residuals and all K codewords gives every item a distinct codeword at the
    least total extra distortion; groups larger than K are matched in rounds of K (their
    remaining collisions go to the dedup level).

    Returns
    -------
    (np.ndarray, int)
        New last-level codes and the number of items whose code changed.
    """
    from scipy.optimize import linear_sum_assignment

    codes = np.asarray(codes, dtype=np.int64).copy()
    n = len(codes)
    if n < 2:
        return codes, 0
    full = np.concatenate([prefix, codes[:, None]], axis=1) if prefix.size else codes[:, None]
    order = sids._lexsort_rows(full)
    sorted_full = full[order]
    same_prefix = np.ones(n - 1, dtype=bool) if prefix.shape[1] == 0 else \
        np.all(sorted_full[1:, :-1] == sorted_full[:-1, :-1], axis=1)
    same_tuple = same_prefix & (sorted_full[1:, -1] == sorted_full[:-1, -1])
    if not same_tuple.any():
        return codes, 0
    # prefix groups in sorted order; keep those that contain a repeated last code
    group_id = np.concatenate([[0], np.cumsum(~same_prefix)])
    bad_groups = np.unique(group_id[1:][same_tuple])
    starts = np.searchsorted(group_id, bad_groups, "left")
    ends = np.searchsorted(group_id, bad_groups, "right")
    k = len(codebook)
    before = codes.copy()
    # one distance product per batch of colliding groups (about ROW_BLOCK items), sliced per
    # group below: at a million items the colliding groups hold hundreds of thousands of items
    offsets = np.concatenate([[0], np.cumsum(ends - starts)])
    batch_end, all_costs, base = 0, np.zeros((0, k)), 0
    for g, (s, e) in enumerate(zip(starts, ends)):
        if g >= batch_end:
            batch_end = max(g + 1, int(np.searchsorted(offsets, offsets[g] + ROW_BLOCK, "right")) - 1)
            touched = np.concatenate([order[s2:e2] for s2, e2 in zip(starts[g:batch_end], ends[g:batch_end])])
            all_costs, base = sq_distances(residual[touched], codebook).astype(np.float64), offsets[g]
        members = order[s:e]
        cost = all_costs[offsets[g] - base : offsets[g + 1] - base]
        pending = np.arange(len(members))
        while len(pending):
            rows, cols = linear_sum_assignment(cost[pending])
            codes[members[pending[rows]]] = cols
            pending = np.delete(pending, rows) if len(pending) > k else pending[:0]
    return codes, int((codes != before).sum())
