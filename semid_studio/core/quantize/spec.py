"""Quantiser settings: :class:`RQKMeansSpec` and :class:`RQVAESpec`, their presets, the sizes
that suit a catalogue (:func:`sized_spec`) and the parsing of ``--set`` values."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Union

from ..errors import InputError, SemidError


METHODS = ("rq-kmeans", "rq-vae")
BALANCED_CHOICES = ("none", "deep", "all")


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
