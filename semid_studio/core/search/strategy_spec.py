"""Settings of the item-embedding strategies: :class:`StrategySpec`, presets and checks."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..errors import SemidError
from .query_spec import _coerce


STRATEGIES = ("content", "search", "rec", "multitask", "fused-concat", "fused-svd")
#: strategies whose encoder is fine-tuned (their weights are stored with the set)
FINE_TUNED = ("search", "multitask")
REC_METHODS = ("ppmi-svd", "bpr")
LONG_TEXT = ("truncate", "chunk")


@dataclass(frozen=True)
class StrategySpec:
    """Settings of an embedding strategy (stored with the set it makes).

    Attributes
    ----------
    model
        Base encoder (None: the bundled all-MiniLM-L6-v2).
    template
        Item text template (None: the project's).
    epochs, batch_size, lr, warmup
        Fine-tuning: passes over the training pairs, pairs per batch (in-batch negatives),
        learning rate, share of steps with a linear warm-up.
    max_pairs
        Fine-tuning: use at most this many training queries (a seeded sample; 0 = all).
    max_tokens
        Fine-tuning: texts are truncated to this many word pieces (0 = the encoder's window).
    dev_fraction
        Share of the training queries held back for model selection: never trained on; with
        several epochs, dev recall is measured after each and the best epoch's weights are
        kept. 0 = no dev part.
    query_source
        Train on queries of this source only (``generated`` / ``imported``; empty = all).
    seed
        Seeds sampling, the trainer and every random step.
    cooccur_window
        Multi-task: item pairs are items at most this many positions apart in a history.
    item_loss_weight
        Multi-task: weight of the item-item loss in the sum.
    rec_method, rec_dim, rec_window, rec_epochs
        Rec-tuned: ``ppmi-svd`` or ``bpr``, vector size, co-occurrence window (ppmi-svd),
        epochs (bpr).
    fused_dim
        Fused-SVD: common dimension of the two projections.
    weights_dtype
        How a fine-tuned encoder is stored: ``float32`` (exact) or ``float16`` (half the size).
    device
        ``cpu`` / ``cuda`` (None: cuda when available).
    """

    model: str | None = None
    template: str | None = None
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    warmup: float = 0.1
    max_pairs: int = 0
    max_tokens: int = 0
    dev_fraction: float = 0.1
    query_source: str = ""
    seed: int = 0
    cooccur_window: int = 3
    item_loss_weight: float = 1.0
    rec_method: str = "ppmi-svd"
    rec_dim: int = 64
    rec_window: int = 5
    rec_epochs: int = 30
    fused_dim: int = 64
    weights_dtype: str = "float32"
    device: str | None = None


PRESETS: dict[str, dict[str, Any]] = {
    # one pass over at most 5,000 pairs, short texts: minutes on a laptop CPU
    "laptop": {"epochs": 1, "batch_size": 32, "max_pairs": 5000, "max_tokens": 128},
    # several passes over every training pair with larger batches (a GPU is advisable)
    "paper": {"epochs": 3, "batch_size": 64, "max_pairs": 0, "max_tokens": 0},
}


def make_spec(*, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> StrategySpec:
    """A :class:`StrategySpec` from a preset plus overrides (strings are parsed, as from a CLI)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise SemidError(f"unknown embedding preset '{preset}'; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    types = {f.name: f.type for f in fields(StrategySpec)}
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in types:
            raise SemidError(f"unknown embedding setting '{key}'; known: {', '.join(sorted(types))}")
        if value in (None, "") and "None" in str(types[key]):
            values[key] = None
        else:
            values[key] = _coerce(key, str(types[key]).replace(" | None", ""), value)
    spec = StrategySpec(**values)
    validate_spec(spec)
    return spec


def validate_spec(spec: StrategySpec) -> None:
    """Raise :class:`SemidError` for settings out of range."""
    if spec.epochs < 1 or spec.batch_size < 2:
        raise SemidError("fine-tuning needs epochs >= 1 and batch_size >= 2 (in-batch negatives)")
    if spec.lr <= 0 or not 0 <= spec.warmup < 1:
        raise SemidError("fine-tuning needs lr > 0 and 0 <= warmup < 1")
    if spec.max_pairs < 0 or spec.max_tokens < 0:
        raise SemidError("max_pairs and max_tokens must be >= 0 (0 = no limit)")
    if not 0 <= spec.dev_fraction < 0.5:
        raise SemidError("dev_fraction must be in [0, 0.5)")
    if spec.rec_method not in REC_METHODS:
        raise SemidError(f"unknown rec_method '{spec.rec_method}'; choose one of {', '.join(REC_METHODS)}")
    if spec.rec_dim < 2 or spec.fused_dim < 2 or spec.rec_window < 1 or spec.cooccur_window < 1:
        raise SemidError("rec_dim and fused_dim must be >= 2, rec_window and cooccur_window >= 1")
    if spec.weights_dtype not in ("float32", "float16"):
        raise SemidError("weights_dtype must be float32 or float16")
    if spec.query_source not in ("", "generated", "imported"):
        raise SemidError("query_source must be empty, 'generated' or 'imported'")
