"""Residual quantisers that turn item embeddings into Semantic IDs: RQ-KMeans and RQ-VAE.

Both quantise coarse to fine: level 1 picks the codeword nearest to the vector, level 2 the
codeword nearest to what is left (the residual), and so on (method.md, section 1).

- **RQ-KMeans** (the default; the joint-search paper found it far better than RQ-VAE for its
  use): one k-means per level on the residuals, run by FAISS (or scikit-learn), started from
  k-means++. Plain residual k-means leaves 73-77% of Beauty's items with a unique tuple
  (collision groups of up to 12-22 items); three options, all on by default, do better
  (figures in benchmarks/README.md):

  * ``coarse_dims``: level 1 clusters the items on their leading principal components
    (32 by default) and keeps the clusters' full-space means as codewords. The leading
    components carry the broad topics: Beauty's level-1 category purity goes from 0.864 to
    0.886 (mean of 3 seeds), for ~5% more reconstruction error.
  * ``balanced``: after the library's k-means, a few rounds of *balanced* assignment (an
    entropic optimal-transport / Sinkhorn step towards equal cluster sizes, then the centroid
    update), which evens out code usage. ``deep`` balances levels 2..L only, so level 1
    stays a semantic clustering (balancing level 1 costs category purity).
  * ``unique_last_level``: within every group of items that share the first L-1 codes, the
    last codes are chosen by a minimum-cost matching (``scipy.optimize.linear_sum_assignment``
    on residual distances) so that they are distinct whenever the group has at most K
    items: an exact version of LC-Rec's uniform last-level mapping. It moves only items of
    colliding groups, each to the nearest codeword still free in its group.

- **RQ-VAE** (TIGER): PyTorch MLP encoder to a 32-d latent, residual quantisation with
  3 x 256 codebooks, mirrored decoder, ``beta = 0.25``. The pitfalls of section 3 are handled:
  reconstruction summed over dimensions (a per-dimension mean is drowned by the quantisation
  loss), codebook loss on the non-detached codeword, codebooks initialised by residual
  k-means over the latents of many items (after a short autoencoder warm-up, not over one
  batch), dead codes restarted after every epoch.

Every fit is a generator of events (``Progress`` per level / epoch) that checks a cancel
token, and is reproducible from ``spec.seed``. :func:`quantize_project` runs a fit on a
project's embeddings, adds the dedup level, measures the run's health and stores everything
in one transaction; :func:`encode_with_run` gives new vectors codes from a stored run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import numpy as np

from . import sids
from .errors import InputError, ProjectError, SemidError
from .events import NEVER, CancelToken, Message, Metric, Progress, TaskGenerator
from .store import ProjectStore, QuantizerRun
from .wording import hint

METHODS = ("rq-kmeans", "rq-vae")
BALANCED_CHOICES = ("none", "deep", "all")
#: candidates per k-means++ step (None = scikit-learn's greedy default, 2 + log K)
KMEANS_PP_TRIALS: int | None = None
#: nearest centroids an item may be balanced onto (a sparse Sinkhorn kernel)
BALANCE_CANDIDATES = 64
#: rows per block of the passes over all items (bounds their temporaries: 1M x 384 float32 is 1.5 GB)
ROW_BLOCK = 32768


# --------------------------------------------------------------------------- specs


def _check_common(spec: Any) -> None:
    _check_positive("levels", spec.levels)
    if spec.levels > 25:
        raise InputError(f"at most 25 semantic levels (one letter each, plus dedup), got {spec.levels}",
                         field="levels")
    if spec.codebook_size < 2:
        raise InputError(f"must be at least 2, got {spec.codebook_size}", field="codebook_size")


def _check_positive(name: str, value: int, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"must be {'>= 0' if allow_zero else '> 0'}, got {value}", field=name)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"must be one of {', '.join(choices)}; got {value!r}", field=name)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise SemidError(f"unknown quantiser method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class RQKMeansSpec:
    """Settings of residual k-means (stored with the run as JSON).

    Attributes
    ----------
    levels, codebook_size : int
        Semantic levels L and codes per level K.
    backend : str
        ``faiss`` (fast) or ``sklearn``; both run Lloyd's k-means.
    init : str
        ``k-means++`` (scikit-learn's greedy k-means++ seeding) or ``random``.
    n_iter : int
        Lloyd iterations per level.
    normalize : bool
        L2-normalise the vectors first (sentence embeddings are compared by cosine).
    coarse_dims : int
        When > 0, level 1 clusters the items on their first ``coarse_dims`` principal
        components (its codewords are still the clusters' full-dimensional means, so the
        residual levels are unchanged). The leading components carry the broad topics, the
        tail mostly detail: on Beauty this raises level-1 category purity. 0 = all dims.
    balanced : str
        ``none``, ``deep`` (levels 2..L) or ``all``: which levels get balanced assignment.
    balance_iter : int
        Rounds of balanced assignment + centroid update after k-means.
    balance_eps : float
        Entropic regularisation of the Sinkhorn step, relative to the mean distance gap
        (smaller = closer to hard nearest assignment).
    unique_last_level : bool
        Choose distinct last codes inside each shared (L-1)-prefix by minimum-cost matching.
    seed : int
        Level l uses ``seed + l``.
    threads : int
        CPU threads for FAISS (0 = its default, all cores).
    """

    levels: int = 3
    codebook_size: int = 256
    backend: str = "faiss"
    init: str = "k-means++"
    n_iter: int = 25
    normalize: bool = True
    coarse_dims: int = 32
    balanced: str = "deep"
    balance_iter: int = 5
    balance_eps: float = 0.02
    unique_last_level: bool = True
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        _check_common(self)
        _check_positive("threads", self.threads, allow_zero=True)
        _check_choice("backend", self.backend, ("faiss", "sklearn"))
        _check_choice("init", self.init, ("k-means++", "random"))
        _check_choice("balanced", self.balanced, BALANCED_CHOICES)
        _check_positive("n_iter", self.n_iter)
        _check_positive("coarse_dims", self.coarse_dims, allow_zero=True)
        _check_positive("balance_iter", self.balance_iter, allow_zero=True)
        if not self.balance_eps > 0:
            raise InputError(f"must be > 0, got {self.balance_eps}", field="balance_eps")

    def is_balanced(self, level: int) -> bool:
        """Whether 0-based ``level`` gets balanced assignment."""
        return self.balanced == "all" or (self.balanced == "deep" and level > 0)


@dataclass(frozen=True)
class RQVAESpec:
    """Settings of the RQ-VAE (defaults: the TIGER paper's architecture).

    Attributes
    ----------
    levels, codebook_size, latent_dim : int
        3 x 256 codebooks over a 32-d latent in the paper.
    hidden : tuple of int
        Encoder widths (the decoder mirrors them); the paper's 512-256-128.
    beta : float
        Commitment weight (0.25).
    epochs, warmup_epochs : int
        Training epochs; the first ``warmup_epochs`` train the plain autoencoder so that the
        k-means initialisation of the codebooks sees meaningful latents.
    batch_size : int
    lr, weight_decay : float
        AdamW settings.
    kmeans_init_items : int
        Items whose latents initialise the codebooks by residual k-means (many, not a batch).
    dead_code_restart : bool
        After every epoch, codes no item uses are moved onto residuals of random items.
    normalize : bool
        L2-normalise the input vectors first.
    unique_last_level : bool
        As in :class:`RQKMeansSpec`, on the latent residuals of the last level.
    seed : int
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    threads : int
        CPU threads for torch and FAISS while fitting (0 = their defaults). One is the
        default: this small MLP gains little from more, and on a busy machine threaded
        steps spin-wait (measured 16x slower on 2 shared cores).
    """

    levels: int = 3
    codebook_size: int = 256
    latent_dim: int = 32
    hidden: tuple[int, ...] = (512, 256, 128)
    beta: float = 0.25
    epochs: int = 200
    warmup_epochs: int = 10
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    kmeans_init_items: int = 50_000
    dead_code_restart: bool = True
    normalize: bool = True
    unique_last_level: bool = True
    seed: int = 0
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        _check_common(self)
        _check_positive("threads", self.threads, allow_zero=True)
        for name in ("latent_dim", "epochs", "batch_size", "kmeans_init_items"):
            _check_positive(name, getattr(self, name))
        _check_positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        if self.warmup_epochs >= self.epochs:
            raise InputError(f"must be smaller than epochs ({self.epochs}), got {self.warmup_epochs}",
                             field="warmup_epochs")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise InputError(f"must be positive layer widths like 512,256,128, got {self.hidden}", field="hidden")
        if self.beta < 0 or self.lr <= 0 or self.weight_decay < 0:
            raise InputError("beta and weight_decay must be >= 0 and lr > 0", field="beta/lr/weight_decay")
        _check_choice("device", self.device, ("cpu", "cuda", "auto"))


Spec = Union[RQKMeansSpec, RQVAESpec]
_SPEC_CLASSES: dict[str, type] = {"rq-kmeans": RQKMeansSpec, "rq-vae": RQVAESpec}

#: named presets per method; every field can still be overridden
PRESETS: dict[str, dict[str, Spec]] = {
    "rq-kmeans": {
        # chosen from benchmarks/bench_quantize.py on Beauty (see benchmarks/README.md)
        "default": RQKMeansSpec(),
        # classic residual k-means: nearest codes everywhere, collisions left to the dedup level
        "plain": RQKMeansSpec(coarse_dims=0, balanced="none", unique_last_level=False),
        # quickest: random init, fewer iterations, no balancing (still collision-aware)
        "fast": RQKMeansSpec(init="random", n_iter=10, balanced="none"),
    },
    "rq-vae": {
        # the paper's architecture and loss; 200 epochs (~5 min here; the paper trains far longer)
        "default": RQVAESpec(),
        "paper": RQVAESpec(),
        # a few minutes on a 2-core laptop for a ~12k-item catalogue
        "laptop": RQVAESpec(epochs=60, warmup_epochs=5),
        # seconds; for tests and smoke runs
        "tiny": RQVAESpec(hidden=(128, 64), latent_dim=16, epochs=15, warmup_epochs=3, batch_size=128),
    },
}


#: the default codebook size stays within these bounds (powers of two)
MIN_DEFAULT_CODEBOOK, MAX_DEFAULT_CODEBOOK = 16, 256


def default_codebook_size(n_items: int) -> int:
    """The codebook size the defaults use for a catalogue of ``n_items``.

    The rule: the power of two nearest sqrt(n_items), within 16..256. A top level of about
    sqrt(n) codes gives branches of about sqrt(n) items each, which a person can read, and
    on this repo's catalogues (benchmarks/bench_quantiser_size.py; figures in
    benchmarks/README.md) it keeps 100% of the items unique before the dedup level, while the
    paper's fixed 256 leaves 3,000-10,000-item catalogues with mostly single-item chains
    below level 2.
    """
    if n_items <= 1:
        return MIN_DEFAULT_CODEBOOK
    k = 2 ** round(math.log2(math.sqrt(n_items)))
    return int(min(MAX_DEFAULT_CODEBOOK, max(MIN_DEFAULT_CODEBOOK, k)))


def default_levels(n_items: int, codebook_size: int) -> int:
    """Semantic levels for ``n_items``: 3 (the papers'), more once K^3 < 4n (past ~4M items
    at K=256), so the code space stays at least 4x the catalogue."""
    levels = 3
    while codebook_size ** levels < 4 * n_items:
        levels += 1
    return levels


def sized_spec(method: str, n_items: int, preset: str | None = None,
               overrides: dict[str, Any] | None = None) -> Spec:
    """:func:`make_spec` with the codebook size and levels fitted to the catalogue where
    neither a preset nor an override names them (see :func:`default_codebook_size`)."""
    overrides = dict(overrides or {})
    if preset in (None, "default"):
        if "codebook_size" not in overrides:
            overrides["codebook_size"] = default_codebook_size(n_items)
        if "levels" not in overrides:
            overrides["levels"] = default_levels(n_items, int(overrides["codebook_size"]))
    return make_spec(method, preset, overrides)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn an override (often a string from the CLI) into the type of the field's default."""
    if not isinstance(value, str):
        if isinstance(default, tuple):
            return tuple(int(v) for v in value)
        if isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, bool):
            if float(value) != int(value):
                raise InputError(f"expected a whole number, got {value!r}", field=name)
            return int(value)
        if isinstance(default, float) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", float: "a number",
                tuple: "whole numbers separated by commas"}[type(default)]
        raise InputError(f"expected {kind}, got {value!r}", field=name) from None
    return text


def make_spec(method: str, preset: str | None = None, overrides: dict[str, Any] | None = None) -> Spec:
    """A spec from a preset (``default`` when None) with fields overridden.

    Parameters
    ----------
    method : str
        ``rq-kmeans`` or ``rq-vae``.
    preset : str, optional
        A name from :data:`PRESETS` for the method.
    overrides : dict, optional
        Field name -> value; strings (from the CLI) are converted to the field's type.

    Raises
    ------
    SemidError / InputError
        Unknown method, preset or field, or a value of the wrong type or range.
    """
    _check_method(method)
    presets = PRESETS[method]
    name = preset or "default"
    if name not in presets:
        raise SemidError(f"unknown {method} preset {name!r}; choose one of {', '.join(presets)}")
    base = presets[name]
    overrides = dict(overrides or {})
    known = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"unknown {method} setting(s) {unknown}; settings are {', '.join(known)}",
                         field=unknown[0])
    values = {k: _coerce(k, v, known[k]) for k, v in overrides.items()}
    return dataclasses.replace(base, **values)


def spec_to_dict(spec: Spec) -> dict:
    """JSON-able dict of a spec (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}


def spec_from_dict(method: str, data: dict) -> Spec:
    """Rebuild a spec stored with a run (unknown keys from other versions are ignored)."""
    _check_method(method)
    cls = _SPEC_CLASSES[method]
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if "hidden" in values:
        values["hidden"] = tuple(int(h) for h in values["hidden"])
    return cls(**values)


def describe_presets(method: str | None = None) -> str:
    """Human-readable list of presets and their settings (for ``--help-presets``)."""
    lines = []
    for m in ([method] if method else METHODS):
        _check_method(m)
        lines.append(f"{m}:")
        for name, spec in PRESETS[m].items():
            settings = ", ".join(f"{k}={v}" for k, v in spec_to_dict(spec).items())
            lines.append(f"  {name}: {settings}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- shared pieces


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


# --------------------------------------------------------------------------- k-means


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


# --------------------------------------------------------------------------- RQ-VAE


def _build_rqvae(input_dim: int, spec: RQVAESpec):
    """The RQ-VAE module (torch is imported lazily: RQ-KMeans users never pay for it)."""
    import torch
    from torch import nn

    def mlp(widths: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class RQVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [input_dim, *spec.hidden, spec.latent_dim]
            self.encoder = mlp(widths)
            self.decoder = mlp(widths[::-1])
            self.codebooks = nn.Parameter(torch.randn(spec.levels, spec.codebook_size, spec.latent_dim) * 0.01)

        def quantize(self, z: "torch.Tensor", beta: float):
            """Greedy residual quantisation with the VQ losses of every level."""
            residual = z
            quantized = torch.zeros_like(z)
            codes = []
            vq_loss = z.new_zeros(())
            for level in range(spec.levels):
                book = self.codebooks[level]
                dist = (residual.detach() ** 2).sum(1, keepdim=True) - 2 * residual.detach() @ book.T \
                    + (book**2).sum(1)[None, :]
                idx = dist.argmin(1)
                chosen = book[idx]
                # codebook loss on the non-detached codeword; commitment pulls the encoder
                vq_loss = vq_loss + ((residual.detach() - chosen) ** 2).sum(1).mean() \
                    + beta * ((residual - chosen.detach()) ** 2).sum(1).mean()
                quantized = quantized + chosen
                residual = residual - chosen.detach()
                codes.append(idx)
            return torch.stack(codes, 1), quantized, vq_loss

        def forward(self, x: "torch.Tensor", beta: float, quantize: bool = True):
            z = self.encoder(x)
            if not quantize:  # autoencoder warm-up
                return self.decoder(z), z.new_zeros(()), None
            codes, quantized, vq_loss = self.quantize(z, beta)
            z_q = z + (quantized - z).detach()  # straight-through estimator
            return self.decoder(z_q), vq_loss, codes

    return RQVAE()


def _torch_device(spec: RQVAESpec) -> str:
    import torch

    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SemidError("device 'cuda' was asked for, but no CUDA GPU is available; use device=cpu")
    return spec.device


def _latents(model, x, batch: int = 4096):
    import torch

    with torch.no_grad():
        return torch.cat([model.encoder(x[s : s + batch]) for s in range(0, len(x), batch)])


def _restart_dead_codes(model, z_all, generator) -> int:
    """Move every unused codeword onto the residual of a random item, level by level.

    Items are drawn in proportion to their residual's squared norm, so restarted codes go
    where the quantisation error is. Returns the number of codes restarted.
    """
    import torch

    restarted = 0
    with torch.no_grad():
        residual = z_all.clone()
        for level in range(model.codebooks.shape[0]):
            book = model.codebooks.data[level]
            idx = torch.cdist(residual, book).argmin(1)
            counts = torch.bincount(idx, minlength=book.shape[0])
            dead = torch.nonzero(counts == 0).flatten()
            if len(dead):
                weights = (residual**2).sum(1) + 1e-12
                picks = torch.multinomial(weights.cpu(), len(dead), replacement=len(dead) > len(weights),
                                          generator=generator).to(residual.device)
                book[dead] = residual[picks]
                restarted += len(dead)
                idx = torch.cdist(residual, book).argmin(1)
            residual = residual - book[idx]
    return restarted


def _rqvae_encode(model, x_t, codebooks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Latents of the inputs and their greedy residual codes (numpy)."""
    z = _latents(model, x_t).cpu().numpy().astype(np.float32)
    codes, _ = residual_encode(z, codebooks)
    return z, codes


def fit_rq_vae(vectors: np.ndarray, spec: RQVAESpec, cancel: CancelToken = NEVER,
               inplace: bool = False) -> TaskGenerator[FittedQuantizer]:
    """Train an RQ-VAE; yields Progress and loss Metrics per epoch, returns a :class:`FittedQuantizer`
    (``inplace`` as for :func:`fit_rq_kmeans`)."""
    import torch

    started = time.perf_counter()
    x = prepare_vectors(vectors, spec.normalize, copy=not inplace)
    _check_size(len(x), spec)
    device = _torch_device(spec)
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    model = _build_rqvae(x.shape[1], spec).to(device)
    x_t = torch.from_numpy(x).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    n = len(x)
    stage = "RQ-VAE"
    log: list[dict] = []
    restarted_total = 0
    yield Progress(stage, 0, spec.epochs, "autoencoder warm-up")
    for epoch in range(spec.epochs):
        cancel.raise_if_cancelled()
        quantizing = epoch >= spec.warmup_epochs
        if epoch == spec.warmup_epochs:
            yield Message(f"initialising the codebooks by residual k-means over {min(n, spec.kmeans_init_items):,} "
                          "items' latents")
            _kmeans_init(model, x_t, spec, generator)
        model.train()
        perm = torch.randperm(n, generator=generator).to(device)
        totals = np.zeros(2)
        usage = [torch.zeros(spec.codebook_size, dtype=torch.long, device=device) for _ in range(spec.levels)]
        for start in range(0, n, spec.batch_size):
            batch = x_t[perm[start : start + spec.batch_size]]
            x_hat, vq_loss, codes = model(batch, spec.beta, quantize=quantizing)
            # summed over dimensions, like the VQ terms: a per-dimension mean would be ~1/dim
            # of them and the decoder would stop learning (method.md, section 3)
            recon = ((batch - x_hat) ** 2).sum(1).mean()
            loss = recon + vq_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += np.array([recon.item(), vq_loss.item()]) * len(batch)
            if codes is not None:
                for level in range(spec.levels):
                    usage[level] += torch.bincount(codes[:, level], minlength=spec.codebook_size)
        recon_avg, vq_avg = totals / n
        restarted = 0
        if quantizing and spec.dead_code_restart and epoch < spec.epochs - 1:
            model.eval()
            restarted = _restart_dead_codes(model, _latents(model, x_t), generator)
            restarted_total += restarted
        used = [int((u > 0).sum()) for u in usage] if quantizing else []
        log.append({"epoch": epoch + 1, "recon": round(float(recon_avg), 6), "vq": round(float(vq_avg), 6),
                    "used": used, "restarted": restarted})
        elapsed = time.perf_counter() - started
        yield Metric("reconstruction loss", float(recon_avg), epoch + 1, elapsed)
        if quantizing:
            yield Metric("quantisation loss", float(vq_avg), epoch + 1, elapsed)
        message = f"recon {recon_avg:.4f}" + (f", vq {vq_avg:.4f}, codes used {'/'.join(map(str, used))}"
                                              if quantizing else " (warm-up)")
        yield Progress(stage, epoch + 1, spec.epochs, message)

    cancel.raise_if_cancelled()
    model.eval()
    books = [b.detach().cpu().numpy().astype(np.float32).copy() for b in model.codebooks]
    z, codes = _rqvae_encode(model, x_t, books)
    info: dict = {}
    if spec.unique_last_level:
        info.update(_unmatched_collisions(codes))
        last = spec.levels - 1
        residual_before_last = z - sum(books[j][codes[:, j]] for j in range(last)) if last else z
        codes[:, last], info["last_level_reassigned"] = unique_last_codes(
            codes[:, :last], residual_before_last, books[last], codes[:, last])
    quantized = sum(books[j][codes[:, j]] for j in range(spec.levels))
    with torch.no_grad():
        recon = model.decoder(torch.from_numpy(np.ascontiguousarray(quantized, dtype=np.float32)).to(device))
    state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    info["fit_seconds"] = round(time.perf_counter() - started, 3)
    info["restarted_codes"] = restarted_total
    info["final_epoch"] = log[-1] if log else {}
    return FittedQuantizer("rq-vae", spec, codes, books, x, recon.cpu().numpy().astype(np.float32), state, info)


def _kmeans_init(model, x_t, spec: RQVAESpec, generator) -> None:
    """Set the codebooks to residual k-means centroids of many items' latents."""
    import torch

    n = len(x_t)
    if n > spec.kmeans_init_items:
        pick = torch.randperm(n, generator=generator)[: spec.kmeans_init_items].to(x_t.device)
        sample = x_t[pick]
    else:
        sample = x_t
    model.eval()
    z = _latents(model, sample).cpu().numpy().astype(np.float32)
    km_spec = RQKMeansSpec(levels=spec.levels, codebook_size=spec.codebook_size, normalize=False,
                           balanced="none", unique_last_level=False, seed=spec.seed)
    residual = z
    with torch.no_grad():
        for level in range(spec.levels):
            centroids = _kmeans_centroids(residual, spec.codebook_size, km_spec, spec.seed + level)
            model.codebooks.data[level] = torch.from_numpy(centroids).to(model.codebooks.device)
            residual = residual - centroids[nearest_codes(residual, centroids)]


# --------------------------------------------------------------------------- entry points


def fit_quantizer(vectors: np.ndarray, spec: Spec, cancel: CancelToken = NEVER,
                  inplace: bool = False) -> TaskGenerator[FittedQuantizer]:
    """Fit the quantiser the spec's type names (RQ-KMeans or RQ-VAE) on ``vectors``
    (``inplace``: normalise the caller's float32 array instead of a copy; see :func:`fit_rq_kmeans`)."""
    if not isinstance(spec, (RQKMeansSpec, RQVAESpec)):
        raise TypeError(f"not a quantiser spec: {type(spec).__name__}")
    is_vae = isinstance(spec, RQVAESpec)
    with thread_limit(spec.threads, torch_too=is_vae):
        if is_vae:
            return (yield from fit_rq_vae(vectors, spec, cancel, inplace))
        return (yield from fit_rq_kmeans(vectors, spec, cancel, inplace))


def method_of(spec: Spec) -> str:
    return "rq-vae" if isinstance(spec, RQVAESpec) else "rq-kmeans"


def encode_with_run(run: QuantizerRun, vectors: np.ndarray) -> np.ndarray:
    """Semantic codes ``(n, L)`` for (new) vectors from a stored run, without refitting.

    Every level takes the nearest codeword of the residual (an RQ-VAE's encoder is rebuilt
    from the stored spec and weights first). For the run's own items this reproduces the
    stored codes except where the fit deliberately moved items off their nearest codeword
    (balanced levels, the collision-aware last level). The dedup level is not assigned here:
    it depends on the other items sharing the tuple.
    """
    if not run.codebooks:
        raise ProjectError(f"quantiser run #{run.id} has no codebooks stored; it cannot encode new items")
    spec = spec_from_dict(run.method, run.spec)
    books = [np.asarray(run.codebooks[k], dtype=np.float32)
             for k in sorted(run.codebooks, key=lambda name: int(name.split("_")[-1]))]
    x = prepare_vectors(vectors, spec.normalize)
    if run.method == "rq-kmeans":
        if x.shape[1] != books[0].shape[1]:
            raise SemidError(f"vectors have {x.shape[1]} dims but run #{run.id} was fitted on {books[0].shape[1]}")
        coarse = {k: np.asarray(v, dtype=np.float32) for k, v in run.model_state.items() if k.startswith("coarse_")}
        return residual_encode(x, books, coarse or None)[0]
    import torch

    weight = run.model_state.get("encoder.0.weight")
    if weight is None:
        raise ProjectError(f"quantiser run #{run.id} has no RQ-VAE weights stored")
    if x.shape[1] != weight.shape[1]:
        raise SemidError(f"vectors have {x.shape[1]} dims but run #{run.id} was trained on {weight.shape[1]}")
    model = _build_rqvae(int(weight.shape[1]), spec)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in run.model_state.items()})
    model.eval()
    return _rqvae_encode(model, torch.from_numpy(x), books)[1]


def quantize_project(
    store: ProjectStore,
    *,
    method: str = "rq-kmeans",
    spec: Spec | None = None,
    embedding_set_id: int | None = None,
    label_field: str | None = None,
    name: str | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Fit a quantiser on a project's embeddings and store the run as the active SID table.

    Parameters
    ----------
    store : ProjectStore
    method : str
        ``rq-kmeans`` (default) or ``rq-vae``; ignored when ``spec`` says otherwise.
    spec : RQKMeansSpec | RQVAESpec, optional
        Defaults to the method's ``default`` preset sized to the catalogue (:func:`sized_spec`).
    embedding_set_id : int, optional
        The embedding set to quantise (the newest by default).
    label_field : str, optional
        Item field for prefix purity, e.g. ``categories[1]`` (see :func:`sids.label_values`).
    name : str, optional
        Run name (default: method, levels x codebook size, seed).
    cancel : CancelToken

    Returns
    -------
    int
        The new run's id. A failure or cancel leaves the project as it was.
    """
    _check_method(method)
    if spec is None:
        spec = sized_spec(method, store.item_count())
    method = method_of(spec)
    emb = store.load_embedding_set(embedding_set_id)
    n_items = store.item_count()
    if emb.n_items != n_items:
        raise ProjectError(
            f"embedding set #{emb.id} covers {emb.n_items} items but the catalogue has {n_items}; "
            f"{hint('embed')} again to embed the new items"
        )
    labels = None
    if label_field:  # checked before the slow fit, so a typo fails at once
        labels = sids.store_label_values(store, label_field)
    yield Message(f"fitting {method} ({spec.levels} x {spec.codebook_size}, seed {spec.seed}) on embedding set "
                  f"{emb.describe()}")
    vectors, emb.vectors = emb.vectors, None  # read for this fit alone: normalised in place, not copied
    fitted = yield from fit_quantizer(vectors, spec, cancel, inplace=True)
    del vectors
    cancel.raise_if_cancelled()
    codes = sids.add_dedup_level(fitted.codes)
    metrics = sids.code_health(codes, spec.levels, spec.codebook_size, fitted.inputs, fitted.reconstructions,
                               labels, label_field)
    metrics.update({k: v for k, v in fitted.info.items() if k != "final_epoch"})
    if "final_epoch" in fitted.info:
        metrics["training"] = fitted.info["final_epoch"]
    metrics["method"] = method
    problems = sids.degenerate_problems(metrics)
    if problems:
        metrics["problems"] = problems
    run_name = name or f"{method} {spec.levels}x{spec.codebook_size} seed {spec.seed}"
    with store.atomic():
        run_id = store.save_quantizer_run(
            name=run_name, embedding_set_id=emb.id, method=method, spec=spec_to_dict(spec), seed=spec.seed,
            codes=codes, sid_strings=sids.sid_strings(codes), metrics=metrics,
            codebooks=fitted.codebook_arrays(), model_state=fitted.model_state or None,
        )
        if not problems:  # degenerate SIDs are kept for inspection, never made the project's SIDs
            store.set_active_run(run_id)
    yield Message(f"saved quantiser run #{run_id} '{run_name}': {sids.health_summary(metrics)}")
    if problems:
        yield Message(f"quantiser run #{run_id} is degenerate and was NOT made the active SID table: "
                      f"{'; '.join(problems)} (embedding set {emb.describe()})", level="warning")
    return run_id
