"""What the panels run in workers for the generative recommender (TIGER): list models and
decode a history, with a recommender or a joint search + rec model (model export is
:func:`semid_studio.core.export.export_model`).

Everything here runs on a worker's own :class:`~semid_studio.core.store.ProjectStore` (see
``context.store_task``) and returns plain data. The playground's
:class:`ModelCache` keeps the loaded model for its workers, so a history change costs one
beam search, not a model load.

Decoding calls :mod:`semid_studio.core.generative.decode` directly rather than
``recommend()``: the playground also offers *unconstrained* decoding (SIDs that no item has
are shown as invalid), which ``recommend()`` does not expose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import SemidError
from ..core.events import NEVER, CancelToken
from ..core.store import ProjectStore

MODEL_KIND = "tiger"  # == core.generative.MODEL_KIND (imported lazily there: torch is heavy)


@dataclass(frozen=True)
class ModelInfo:
    """A generative model as the panels list it."""

    id: int
    name: str
    status: str
    step: int
    best_step: int | None
    best_metric: float | None
    select_metric: str
    preset: str | None
    split: str
    seed: int
    has_best: bool  # a validated checkpoint exists: it can recommend, be evaluated, exported
    has_last: bool  # a training state exists: an unfinished model can be resumed
    updated: str
    kind: str = MODEL_KIND  # or "tiger-joint": a joint search + rec model (it recommends too)
    members: int = 1  # an ensemble of this many models ranked as one (the laptop-pair preset)

    @property
    def resumable(self) -> bool:
        return self.has_last and self.status != "done"

    def describe(self) -> str:
        best = "" if self.best_metric is None else f", best {self.select_metric} {self.best_metric:.4f} @ {self.best_step}"
        joint = "joint search + rec " if self.kind != MODEL_KIND else ""
        ensemble = f"ensemble of {self.members} " if self.members > 1 else ""
        return f"#{self.id} {joint}{ensemble}{self.name} ({self.status}, step {self.step:,}{best})"


def list_generative_models(store: ProjectStore) -> list[ModelInfo]:
    """Every generative model of the project, oldest first, with what can be done with it."""
    tags = store.checkpoint_tags()
    out = []
    for rec in store.list_models(MODEL_KIND):
        spec = rec.spec.get("spec", {})
        out.append(ModelInfo(rec.id, rec.name, rec.status, int(rec.step or 0), rec.best_step, rec.best_metric,
                             str(spec.get("select_metric", "ndcg@10")), rec.spec.get("preset"),
                             str(spec.get("split", "loo")), int(spec.get("seed", 0)),
                             (rec.id, "best") in tags, (rec.id, "last") in tags, rec.updated,
                             members=len(rec.spec.get("members", [])) or 1))
    return out


def list_recommenders(store: ProjectStore) -> list[ModelInfo]:
    """Every model that recommends from a history: the generative recommenders and the joint
    search + rec models trained on both tasks (oldest first)."""
    from ..core.generative.joint import selection_label
    from .search import list_joint_models

    joint = [ModelInfo(j.id, j.name, j.status, j.step, j.best_step, j.best_metric,
                       selection_label(j.select_mean, "ndcg@10"),
                       j.preset, "", j.seed, j.has_best, j.has_last, j.updated, kind="tiger-joint")
             for j in list_joint_models(store) if j.task == "joint"]
    return sorted(list_generative_models(store) + joint, key=lambda m: m.id)


# --------------------------------------------------------------------------- recommending


@dataclass(frozen=True)
class RecommendRequest:
    """The playground's inputs for one recommendation."""

    history: tuple[int, ...]  # item idx, oldest first
    model_id: int
    k: int = 10
    beam: int = 20
    temperature: float | None = None  # None: beam search; else sample K distinct items
    constrained: bool = True
    exclude_history: bool = False
    seed: int = 0


@dataclass
class Recommendation:
    """Top-K for a request: rows of (rank, item idx or -1, title, SID, score), plus context."""

    request: RecommendRequest
    model: ModelInfo
    rows: list[dict] = field(default_factory=list)
    invalid: int = 0  # returned SIDs that no item has (unconstrained decoding only)
    seconds: float = 0.0
    score_meaning: str = "SID log-probability"  # what the beam's scores add up (decode.score_meaning)

    @property
    def items(self) -> list[int]:
        return [r["idx"] for r in self.rows if r["idx"] >= 0]


def _cache_key(info: ModelInfo) -> tuple:
    # a new best checkpoint (training still running) changes the key, so the model is reloaded
    return info.id, info.best_step, info.updated if info.best_step is None else None


def recommend_history(store: ProjectStore, request: RecommendRequest, cache: "ModelCache",
                      cancel: CancelToken = NEVER) -> Recommendation:
    """Decode the next items after ``request.history`` with the model asked for.

    The model comes from ``cache`` (loaded there once per checkpoint). A cancelled request
    (a newer one replaced it) stops before decoding.
    """
    import time

    import torch

    from ..core.generative.decode import beam_search, score_meaning
    from ..core.generative.tokens import sid_string

    t0 = time.perf_counter()
    if not request.history:
        raise SemidError("the history is empty: add items to it")
    if request.k <= 0:
        raise SemidError("K must be at least 1")
    infos = {m.id: m for m in list_recommenders(store)}
    info = infos.get(request.model_id)
    if info is None:
        raise SemidError(f"model #{request.model_id} is not in this project")
    if not info.has_best:
        raise SemidError(f"model #{info.id} has not reached a validation run yet: it has no checkpoint to decode with")
    lm = cache.get(store, info)
    cancel.raise_if_cancelled()
    n_items = store.item_count()
    history = np.asarray([i for i in request.history if 0 <= i < n_items], dtype=np.int64)
    if not len(history):
        raise SemidError("none of the history's items is in the catalogue")
    k = request.k
    beam = max(request.beam, k)  # beam search needs a beam at least K wide
    users = np.asarray([0], dtype=np.int64) if lm.vocab.user_bins > 0 else None  # anonymous history
    exclude = [history] if request.exclude_history and request.constrained else None
    with torch.inference_mode():  # thread-local: set in the worker
        generator = None
        if request.temperature is not None:
            generator = torch.Generator(device=lm.model.tokens.weight.device).manual_seed(request.seed)
        dec = beam_search(lm.model, lm.trie, [history], beam=beam, k=k, constrained=request.constrained,
                          temperature=request.temperature, sample=request.temperature is not None,
                          generator=generator, exclude=exclude, users=users, partners=lm.partners)
    items, scores, codes = dec.items[0], dec.scores[0], dec.codes[0]
    keep = np.isfinite(scores)
    if request.exclude_history and not request.constrained:
        keep &= ~np.isin(items, history)  # unconstrained search cannot mask: drop them afterwards
    valid = [int(i) for i in items[keep] if i >= 0]
    records = {int(r["idx"]): r for r in store.get_items(valid)} if valid else {}
    rows = []
    for item, score, sid in zip(items[keep], scores[keep], codes[keep]):
        rec = records.get(int(item))
        rows.append({"rank": len(rows) + 1, "idx": int(item), "item_id": rec["item_id"] if rec else "",
                     "title": rec.get("title") if rec else None, "sid": sid_string(sid), "score": float(score)})
    # the item head's merge (and its prior) ranks constrained beams only
    meaning = score_meaning(lm.spec) if request.constrained else "SID log-probability"
    return Recommendation(request, info, rows, sum(1 for r in rows if r["idx"] < 0), time.perf_counter() - t0,
                          meaning)


# --------------------------------------------------------------------------- export


class ModelCache:
    """The one loaded model the playground decodes with, shared by its worker threads.

    Workers load and use the model; the GUI thread only holds this object (never the torch
    model). The lock makes a burst of requests load a checkpoint once: the others wait and
    then find it here.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._model = None

    def get(self, store: ProjectStore, info: ModelInfo):
        from ..core.generative import load_model
        from ..core.generative.joint import load_joint

        key = (str(store.path), *_cache_key(info))
        with self._lock:
            if self._key != key:
                self._model, self._key = None, None  # free the old one before loading the next
                # a joint model decodes a history exactly as the recommender does (vocab, model, trie;
                # loaded pointing at its rec view); the playground's search has its own copy
                self._model = load_model(store, info.id) if info.kind == MODEL_KIND else load_joint(store, info.id)
                self._key = key
            return self._model

    def clear(self) -> None:
        with self._lock:
            self._model, self._key = None, None
