"""What the store's readers return: an embedding set, a quantiser run, a model, a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EmbeddingSet:
    id: int
    name: str
    model: str
    template: str | None
    strategy: str
    cache_key: str
    n_items: int
    dim: int
    params: dict
    created: str
    vectors: np.ndarray | None = None  # (n_items, dim) float32, aligned to items.idx

    def describe(self) -> str:
        return f"#{self.id} {self.name} ({self.model}, {self.n_items} x {self.dim})"


@dataclass
class QuantizerRun:
    id: int
    name: str
    embedding_set_id: int
    method: str
    spec: dict
    seed: int
    n_items: int
    n_levels: int  # semantic levels, without the dedup level
    metrics: dict
    created: str
    codes: np.ndarray | None = None  # (n_items, n_levels + 1) int, last column = dedup code
    codebooks: dict[str, np.ndarray] = field(default_factory=dict)
    model_state: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ModelRecord:
    id: int
    name: str
    kind: str
    quantizer_run_id: int | None
    spec: dict
    status: str
    step: int
    best_step: int | None
    best_metric: float | None
    history: list
    created: str
    updated: str


@dataclass
class Checkpoint:
    model_id: int
    tag: str
    step: int
    weights: dict[str, np.ndarray]
    train_state: dict[str, np.ndarray]
    extra: dict
