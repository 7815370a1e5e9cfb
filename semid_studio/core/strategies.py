"""Item embeddings for joint search + recommendation SIDs: how each embedding set is made.

Six strategies (Penha et al., RecSys 2025, section 2 of ``method.md``); each stores an
embedding set in the project with everything that made it in ``params`` (and, for fine-tuned
encoders, the encoder's weights in ``embedding_artifacts``):

``content``
    The project's encoder as it is (:func:`semid_studio.core.embed.embed_items`).
``search``
    The encoder fine-tuned on (training query, item text) pairs with in-batch negatives
    (sentence-transformers' ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``
    and a no-duplicates batch sampler, so an item never appears twice in a batch as its own
    false negative).
``rec``
    Collaborative item vectors from the *training* interactions: a truncated SVD of the
    positive PMI matrix of items co-occurring within a window of user histories
    (``ppmi-svd``, the default) or matrix factorisation with the BPR loss (``bpr``, torch).
    Items with no training interaction get a vector predicted from their content embedding
    by a ridge regression fitted on the items that have one.
``multitask``
    One encoder fine-tuned on the *sum* of two contrastive losses per batch: query -> item
    and item -> item, the item pairs co-occurring within ``cooccur_window`` positions in
    training histories.
``fused-concat``
    L2-normalised search-tuned and rec-tuned vectors, concatenated.
``fused-svd``
    Both projected to the same dimension by PCA (SVD of the centred vectors), normalised and
    summed.

What counts as training data: queries of the ``train`` split only (a ``dev`` part is carved
out of it for model selection, see :func:`semid_studio.core.queries.split_for_selection`),
checked by :func:`semid_studio.core.queries.assert_training_only` before any step; and the
leave-one-out training part of the interactions (each user's last two items are the
recommender's validation and test targets, so they are left out).

Long texts: fine-tuning truncates every text to ``max_tokens`` word pieces (default: the
encoder's window) and reports the share of queries and items that were cut; encoding queries
for search truncates to the window or averages consecutive windows (``long_text="chunk"``).
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .embed import (MIN_DISTINCT_TEXT_SHARE, cache_key, catalogue_text_share, embed_items, encode_texts, load_encoder,
                    resolve_model)
from .errors import ProjectError, SemidError
from .events import NEVER, Cancelled, CancelToken, Message, Metric, Progress, ProgressThrottle, TaskGenerator
from .queries import TRAIN_SPLIT, _coerce, assert_training_only, split_for_selection
from .store import ProjectStore, encode_arrays, now_iso
from .wording import hint

STRATEGIES = ("content", "search", "rec", "multitask", "fused-concat", "fused-svd")
#: strategies whose encoder is fine-tuned (their weights are stored with the set)
FINE_TUNED = ("search", "multitask")
REC_METHODS = ("ppmi-svd", "bpr")
LONG_TEXT = ("truncate", "chunk")


# --------------------------------------------------------------------------- the spec


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


# --------------------------------------------------------------------------- artifacts


def save_artifact(store: ProjectStore, set_id: int, name: str, arrays: dict[str, np.ndarray],
                  meta: dict | None = None) -> None:
    """Store arrays (safetensors) and JSON meta beside an embedding set (replacing ``name``)."""
    with store.atomic():
        store.db.execute(
            "INSERT INTO embedding_artifacts(embedding_set_id, name, arrays, meta, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(embedding_set_id, name) DO UPDATE SET arrays = excluded.arrays, meta = excluded.meta, "
            "created = excluded.created",
            [int(set_id), name, encode_arrays(arrays), json.dumps(meta or {}, sort_keys=True), now_iso()],
        )


def load_artifact(store: ProjectStore, set_id: int, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(arrays, meta)`` stored beside an embedding set, or None."""
    row = store.db.execute(
        "SELECT rowid, meta FROM embedding_artifacts WHERE embedding_set_id = ? AND name = ?", [int(set_id), name]
    ).fetchone()
    if row is None:
        return None
    arrays = store.read_arrays("embedding_artifacts", "arrays", row[0], where=f"set #{set_id} '{name}'")
    return arrays, json.loads(row[1] or "{}")


def _set_info(store: ProjectStore, set_id: int):
    for emb in store.list_embedding_sets():
        if emb.id == int(set_id):
            return emb
    raise ProjectError(f"{store.path}: no embedding set #{set_id}")


# --------------------------------------------------------------------------- training data


def training_interactions(store: ProjectStore, *, holdout_last: int = 2) -> pd.DataFrame:
    """The leave-one-out training part of the interactions (``user_id, item_idx, ts``, in order).

    For a user with at least ``holdout_last + 1`` interactions the last ``holdout_last`` are
    left out (the recommender's validation and test targets); shorter histories are kept
    whole (they are never evaluated). Same rule as the generative model's ``loo`` split.
    """
    frame = store.interactions_frame()
    if len(frame) == 0:
        return frame
    size = frame.groupby("user_id", sort=False)["item_idx"].transform("size").to_numpy()
    from_end = size - 1 - frame.groupby("user_id", sort=False).cumcount().to_numpy()
    keep = (size < holdout_last + 1) | (from_end >= holdout_last)
    return frame[keep].reset_index(drop=True)


def _user_sequences(frame: pd.DataFrame) -> list[np.ndarray]:
    users = frame["user_id"].to_numpy()
    items = frame["item_idx"].to_numpy(np.int64)
    if len(items) == 0:
        return []
    change = np.flatnonzero(users[1:] != users[:-1]) + 1
    return np.split(items, change)


def cooccurrence_pairs(frame: pd.DataFrame, window: int) -> np.ndarray:
    """``(m, 2)`` item pairs ``(a, b)``, ``b`` at most ``window`` positions after ``a`` in a
    user's history (``a != b``); one row per occurrence, so frequent pairs weigh more."""
    out = []
    for seq in _user_sequences(frame):
        for gap in range(1, window + 1):
            if len(seq) > gap:
                pair = np.stack([seq[:-gap], seq[gap:]], axis=1)
                out.append(pair[pair[:, 0] != pair[:, 1]])
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def _pair_hash(texts: Sequence[str], items: Sequence[int]) -> np.ndarray:
    """A 64-bit fingerprint of each (query text, item) pair (case and outer spaces ignored)."""
    return np.array([int.from_bytes(hashlib.sha256(f"{str(t).strip().lower()}\t{int(i)}".encode()).digest()[:8], "big")
                     for t, i in zip(texts, items)], dtype=np.uint64)


def _training_queries(store: ProjectStore, spec: StrategySpec, who: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train part, dev part) of the train split, guarded against held-out queries."""
    frame = store.queries_frame(split=TRAIN_SPLIT, source=spec.query_source or None)
    if len(frame) == 0:
        raise ProjectError(f"{store.path}: has no training queries"
                           f"{' from source ' + spec.query_source if spec.query_source else ''}; "
                           f"{hint('generate_queries')}")
    train, dev = split_for_selection(frame, spec.dev_fraction, spec.seed)
    if spec.max_pairs and len(train) > spec.max_pairs:
        rng = np.random.default_rng(spec.seed)
        keep = np.sort(rng.choice(len(train), size=spec.max_pairs, replace=False))
        train = train.iloc[keep]
    assert_training_only(store, train, exclude_ids=dev["id"].tolist(), who=who)
    return train.reset_index(drop=True), dev.reset_index(drop=True)


def _fingerprint(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for i, t, it in zip(frame["id"].tolist(), frame["text"].tolist(), frame["item_idx"].tolist()):
        h.update(f"{i}\t{t}\t{it}\n".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- fine-tuning


def _sum_loss_class():
    """The multi-task loss: MNRL(query, item) + w * MNRL(item_a, item_b) on one batch.

    Built lazily so that importing this module does not import sentence-transformers.
    """
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    class SumOfContrastiveLosses(torch.nn.Module):
        def __init__(self, model, item_weight: float = 1.0) -> None:
            super().__init__()
            self.model = model
            self.query_item = MultipleNegativesRankingLoss(model)
            self.item_item = MultipleNegativesRankingLoss(model)
            self.item_weight = item_weight
            self.last = (0.0, 0.0)

        def forward(self, sentence_features, labels=None):
            qi = self.query_item(sentence_features[0:2], labels)
            ii = self.item_item(sentence_features[2:4], labels)
            self.last = (float(qi.detach()), float(ii.detach()))
            return qi + self.item_weight * ii

    return SumOfContrastiveLosses


def _token_lengths(tokenizer, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0, dtype=np.int64)
    out = []
    for start in range(0, len(texts), 2048):
        # verbose=False: over-long texts are expected here (that is what is being measured)
        enc = tokenizer(list(texts[start : start + 2048]), add_special_tokens=True, verbose=False)["input_ids"]
        out.extend(len(ids) for ids in enc)
    return np.asarray(out, dtype=np.int64)


def _dev_recall(model, item_texts_: Sequence[str], dev: pd.DataFrame, k: int = 10, batch_size: int = 64) -> float:
    """Dense Recall@k of the dev queries over the whole catalogue with ``model``."""
    from .search import DenseIndex

    items = model.encode(list(item_texts_), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    q = model.encode(dev["text"].tolist(), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    ranked, _ = DenseIndex(items).search(q, k)
    return float((ranked == dev["item_idx"].to_numpy(np.int64)[:, None]).any(axis=1).mean())


def _fine_tune(
    store: ProjectStore,
    strategy: str,
    spec: StrategySpec,
    item_texts_: list[str],
    cancel: CancelToken,
) -> TaskGenerator[tuple[Any, dict, pd.DataFrame, pd.DataFrame]]:
    """Fine-tune a fresh copy of the base encoder; returns (model, info, train rows, dev rows)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .embed import best_device

    train, dev = _training_queries(store, spec, who=f"{strategy} fine-tuning")
    stored_name, location = resolve_model(spec.model)
    device = spec.device or best_device()
    yield Message(f"fine-tuning {stored_name} ({strategy}) on {len(train)} training queries"
                  f"{f', {len(dev)} held back for model selection' if len(dev) else ''} (seed {spec.seed})")
    # a fresh model: the encoder that load_encoder caches for everyone else is never changed
    model = SentenceTransformer(location, device=device)
    window = int(model.max_seq_length or 512)
    max_tokens = min(spec.max_tokens or window, window)
    model.max_seq_length = max_tokens

    q_texts = train["text"].astype(str).tolist()
    pos_texts = [item_texts_[i] for i in train["item_idx"].astype(int)]
    columns: dict[str, list[str]] = {"query": q_texts, "item": pos_texts}
    info: dict[str, Any] = {"train_queries": len(train), "dev_queries": len(dev), "max_tokens": max_tokens,
                            "encoder_window": window}
    q_len = _token_lengths(model.tokenizer, q_texts)
    i_len = _token_lengths(model.tokenizer, item_texts_)
    info["queries_truncated_share"] = float((q_len > max_tokens).mean()) if len(q_len) else 0.0
    info["items_truncated_share"] = float((i_len > max_tokens).mean()) if len(i_len) else 0.0
    if info["queries_truncated_share"] or info["items_truncated_share"]:
        yield Message(f"training texts are truncated to {max_tokens} word pieces: "
                      f"{info['queries_truncated_share']:.1%} of the queries and {info['items_truncated_share']:.1%} "
                      f"of the item texts are longer", level="warning")
    rng = np.random.default_rng(spec.seed)
    if strategy == "multitask":
        inter = training_interactions(store)
        pairs = cooccurrence_pairs(inter, spec.cooccur_window)
        if len(pairs) == 0:
            raise ProjectError(f"{store.path}: multi-task needs item pairs from user histories; the project has "
                               f"no interactions (or no history longer than one item)")
        pick = rng.choice(len(pairs), size=len(train), replace=len(pairs) < len(train))
        chosen = pairs[pick]
        flip = rng.random(len(chosen)) < 0.5  # co-occurrence is symmetric: either item may be the anchor
        chosen[flip] = chosen[flip][:, ::-1]
        columns["item_a"] = [item_texts_[a] for a in chosen[:, 0]]
        columns["item_b"] = [item_texts_[b] for b in chosen[:, 1]]
        info.update(item_pairs_available=int(len(pairs)), item_pairs_used=int(len(chosen)),
                    cooccur_window=spec.cooccur_window, item_loss_weight=spec.item_loss_weight,
                    training_interactions=int(len(inter)))
        loss = _sum_loss_class()(model, spec.item_loss_weight)
        info["loss"] = "MultipleNegativesRankingLoss(query, item) + w * MultipleNegativesRankingLoss(item, item)"
    else:
        loss = MultipleNegativesRankingLoss(model)
        info["loss"] = "MultipleNegativesRankingLoss(query, item), in-batch negatives"
    dataset = Dataset.from_dict(columns)
    steps_per_epoch = math.ceil(len(dataset) / spec.batch_size)
    total_steps = steps_per_epoch * spec.epochs

    dev_history: list[dict] = []
    # dev recall needs the whole catalogue encoded: done only when there is an epoch to choose
    select = bool(len(dev)) and spec.epochs > 1
    if select:
        yield Message(f"dev recall@10 of the base encoder on {len(dev)} dev queries ...")
        base = _dev_recall(model, item_texts_, dev)
        dev_history.append({"epoch": 0, "recall@10": base})
        yield Metric("dev recall@10", base, 0, split="dev")

    events: "queue.Queue[tuple]" = queue.Queue()
    # model selection among the trained epochs: the best one's weights are kept in memory
    state: dict[str, Any] = {"error": None, "stop": False, "best": None, "best_epoch": spec.epochs,
                             "best_recall": None}

    class Bridge(TrainerCallback):
        """Runs in the training thread: reports steps and losses, stops on cancel, and keeps the
        weights of the epoch with the best dev recall (model selection on dev only)."""

        def on_step_end(self, args, st, control, **kwargs):
            events.put(("step", st.global_step, st.max_steps))
            if cancel.cancelled or state["stop"]:
                control.should_training_stop = True

        def on_log(self, args, st, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                parts = getattr(loss, "last", None)
                events.put(("loss", st.global_step, float(logs["loss"]), parts))

        def on_epoch_end(self, args, st, control, model=None, **kwargs):
            if not select or cancel.cancelled:
                return
            recall = _dev_recall(model, item_texts_, dev)
            epoch = int(round(st.epoch or 0))
            dev_history.append({"epoch": epoch, "recall@10": recall})
            events.put(("dev", st.global_step, recall))
            if state["best_recall"] is None or recall > state["best_recall"]:
                state["best_recall"], state["best_epoch"] = recall, epoch
                state["best"] = None if epoch >= spec.epochs else \
                    {k: v.detach().clone() for k, v in model.state_dict().items()}

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict):  # no model card: nothing is published
            return None

    with tempfile.TemporaryDirectory(prefix="semid-finetune-") as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=spec.epochs, per_device_train_batch_size=spec.batch_size,
            learning_rate=spec.lr, warmup_steps=int(spec.warmup * total_steps), seed=spec.seed,
            data_seed=spec.seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
            report_to="none", logging_steps=max(1, min(50, steps_per_epoch // 10 or 1)), disable_tqdm=True,
            use_cpu=(str(device) == "cpu"), dataloader_num_workers=0, log_level="error",
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[Bridge()])
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)

        def work() -> None:
            try:
                trainer.train()
            except BaseException as exc:  # noqa: BLE001 - handed to the generator's thread
                state["error"] = exc

        started = time.perf_counter()
        thread = threading.Thread(target=work, name="semid-finetune", daemon=True)
        thread.start()
        losses: list[tuple[int, float]] = []
        throttle = ProgressThrottle("fine-tuning", total_steps)
        try:
            while thread.is_alive() or not events.empty():
                try:
                    ev = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if ev[0] == "step":
                    p = throttle.update(ev[1], message=f"loss {losses[-1][1]:.3f}" if losses else "")
                    if p:
                        yield Progress("fine-tuning", ev[1], ev[2] or total_steps, p.message)
                elif ev[0] == "loss":
                    losses.append((ev[1], ev[2]))
                    yield Metric("loss", ev[2], ev[1], time.perf_counter() - started)
                    if strategy == "multitask" and ev[3]:
                        yield Metric("loss query-item", ev[3][0], ev[1], time.perf_counter() - started)
                        yield Metric("loss item-item", ev[3][1], ev[1], time.perf_counter() - started)
                elif ev[0] == "dev":
                    yield Metric("dev recall@10", ev[2], ev[1], time.perf_counter() - started, split="dev")
        finally:
            state["stop"] = True  # a consumer that stops listening also stops the training
            thread.join()
        seconds = time.perf_counter() - started
    if state["error"] is not None:
        err = state["error"]
        if isinstance(err, Cancelled):
            raise err
        raise SemidError(f"fine-tuning failed: {err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    if cancel.cancelled:
        raise Cancelled()
    if state["best"] is not None:
        model.load_state_dict(state["best"])
        yield Message(f"kept the weights of epoch {state['best_epoch']} (best dev recall@10 "
                      f"{state['best_recall']:.4f})")
    model.max_seq_length = window  # encode with the full window afterwards
    rows = len(dataset) * spec.epochs
    info.update(
        steps=int(trainer.state.global_step), epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr,
        warmup=spec.warmup, train_seconds=round(seconds, 2), pairs_per_s=round(rows / max(seconds, 1e-9), 2),
        loss_first=losses[0][1] if losses else None, loss_last=losses[-1][1] if losses else None,
        loss_curve=[[s, round(v, 5)] for s, v in losses], dev=dev_history,
        selected_epoch=state["best_epoch"] if select else spec.epochs, device=str(device),
        batch_sampler="no_duplicates", trainer="sentence_transformers.SentenceTransformerTrainer",
    )
    yield Message(f"fine-tuned {info['steps']} steps in {seconds:.1f} s ({info['pairs_per_s']:.1f} pairs/s); "
                  f"loss {info['loss_first']} -> {info['loss_last']}")
    return model, info, train, dev


def _encoder_arrays(model, dtype: str) -> dict[str, np.ndarray]:
    out = {}
    for name, tensor in model.state_dict().items():
        arr = tensor.detach().cpu().numpy()
        if dtype == "float16" and arr.dtype == np.float32:
            arr = arr.astype(np.float16)
        out[name] = np.ascontiguousarray(arr)
    return out


# --------------------------------------------------------------------------- rec-tuned vectors


def ppmi_svd(frame: pd.DataFrame, n_items: int, *, dim: int, window: int, seed: int,
             smoothing: float = 0.75) -> np.ndarray:
    """Item vectors from a truncated SVD of the positive PMI matrix of co-occurring items.

    Co-occurrence: items at most ``window`` positions apart in a user's history (both
    directions). The context distribution is smoothed (``counts ** smoothing``, Levy et al.
    2015); vectors are ``U * sqrt(S)``. Items that co-occur with nothing get zero vectors.
    """
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    pairs = cooccurrence_pairs(frame, window)
    if len(pairs) == 0:
        return np.zeros((n_items, dim), dtype=np.float32)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    counts = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n_items, n_items))
    counts.sum_duplicates()
    row_sum = np.asarray(counts.sum(axis=1)).ravel()
    ctx = row_sum ** smoothing
    coo = counts.tocoo()
    # PMI(i, j) = log P(i, j) / (P(i) P_smoothed(j))
    pmi = np.log(coo.data * ctx.sum() / (row_sum[coo.row] * ctx[coo.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n_items, n_items))
    k = max(1, min(dim, n_items - 1))
    u, s, _ = randomized_svd(ppmi, n_components=k, n_iter=5, random_state=seed)
    vecs = np.zeros((n_items, dim), dtype=np.float32)
    vecs[:, :k] = (u * np.sqrt(s)).astype(np.float32)
    return vecs


def bpr_vectors(frame: pd.DataFrame, n_items: int, *, dim: int, epochs: int, seed: int, lr: float = 0.01,
                reg: float = 1e-5, batch: int = 4096, cancel: CancelToken = NEVER) -> TaskGenerator[np.ndarray]:
    """Item factors of a matrix factorisation trained with the BPR loss (Rendle et al. 2009).

    Negatives are drawn uniformly from the catalogue; torch's generator is seeded.
    """
    import torch

    users, uidx = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    items = frame["item_idx"].to_numpy(np.int64)
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.nn.Embedding(len(users), dim)
    item_emb = torch.nn.Embedding(n_items, dim)
    torch.nn.init.normal_(user_emb.weight, std=0.1, generator=gen)
    torch.nn.init.normal_(item_emb.weight, std=0.1, generator=gen)
    opt = torch.optim.Adam([*user_emb.parameters(), *item_emb.parameters()], lr=lr)
    u_all = torch.tensor(np.asarray(uidx, dtype=np.int64))
    i_all = torch.tensor(np.array(items, dtype=np.int64))
    n = len(items)
    for epoch in range(epochs):
        cancel.raise_if_cancelled()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch):
            sel = order[start : start + batch]
            u, i = u_all[sel], i_all[sel]
            j = torch.randint(0, n_items, (len(sel),), generator=gen)
            eu, ei, ej = user_emb(u), item_emb(i), item_emb(j)
            x = (eu * (ei - ej)).sum(dim=1)
            loss = -torch.nn.functional.logsigmoid(x).mean() + reg * (eu.pow(2).sum() + ei.pow(2).sum()
                                                                       + ej.pow(2).sum()) / len(sel)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(sel)
        yield Metric("bpr loss", total / n, epoch + 1)
        yield Progress("bpr", epoch + 1, epochs)
    return item_emb.weight.detach().numpy().astype(np.float32)


def _content_vectors(store: ProjectStore, spec: StrategySpec, cancel: CancelToken) -> TaskGenerator[tuple[np.ndarray, int]]:
    """The project's content embedding (made now if missing), for cold-item fallbacks."""
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        # an imported set made by a named text encoder is content too
        if emb.n_items == n and (emb.strategy == "content" or (emb.strategy == "imported" and emb.model != "imported")):
            return store.load_embedding_set(emb.id).vectors, emb.id
    set_id = yield from embed_items(store, model=spec.model, template=spec.template, device=spec.device, cancel=cancel)
    return store.load_embedding_set(set_id).vectors, set_id


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``W`` minimising ``|xW - y|^2 + alpha |W|^2`` (x with a bias column appended by the caller)."""
    a = x.T @ x + alpha * np.eye(x.shape[1])
    return np.linalg.solve(a, x.T @ y)


def _rec_vectors(store: ProjectStore, spec: StrategySpec, cancel: CancelToken) -> TaskGenerator[tuple[np.ndarray, dict]]:
    n_items = store.item_count()
    train = training_interactions(store)
    if len(train) == 0:
        raise ProjectError(f"{store.path}: rec-tuned embeddings need interactions; import some first")
    started = time.perf_counter()
    yield Message(f"rec-tuned vectors ({spec.rec_method}, {spec.rec_dim} dims) from {len(train)} training "
                  f"interactions (each user's last 2 items left out)")
    if spec.rec_method == "ppmi-svd":
        vecs = ppmi_svd(train, n_items, dim=spec.rec_dim, window=spec.rec_window, seed=spec.seed)
    else:
        vecs = yield from bpr_vectors(train, n_items, dim=spec.rec_dim, epochs=spec.rec_epochs, seed=spec.seed,
                                      cancel=cancel)
    counts = np.bincount(train["item_idx"].to_numpy(np.int64), minlength=n_items)
    warm = (counts > 0) & (np.linalg.norm(vecs, axis=1) > 0)
    info: dict[str, Any] = {"rec_method": spec.rec_method, "rec_dim": spec.rec_dim,
                            "training_interactions": int(len(train)), "n_warm": int(warm.sum()),
                            "n_cold": int((~warm).sum()), "holdout_last": 2}
    if spec.rec_method == "ppmi-svd":
        info.update(rec_window=spec.rec_window, pmi_smoothing=0.75)
    else:
        info.update(rec_epochs=spec.rec_epochs, negatives="uniform")
    if (~warm).any() and catalogue_text_share(store, spec.template)[0] < MIN_DISTINCT_TEXT_SHARE:
        # no text to place a cold item by: a seeded random direction keeps its SID apart from
        # the others' (a shared zero vector would pile every cold item into one SID prefix)
        rng = np.random.default_rng(spec.seed)
        scale = float(np.linalg.norm(vecs[warm], axis=1).mean()) if warm.any() else 1.0
        cold = rng.standard_normal(((~warm).sum(), vecs.shape[1])).astype(np.float32)
        vecs[~warm] = scale * cold / np.linalg.norm(cold, axis=1, keepdims=True)
        info["cold_fallback"] = "random directions (the items have no text to place them by)"
        yield Message(f"{int((~warm).sum())} items have no training interaction: {info['cold_fallback']}")
    elif (~warm).any():
        content, content_id = yield from _content_vectors(store, spec, cancel)
        if warm.sum() >= 2:
            x = np.hstack([content, np.ones((n_items, 1), dtype=np.float32)]).astype(np.float64)
            w = _ridge(x[warm], vecs[warm].astype(np.float64))
            vecs[~warm] = (x[~warm] @ w).astype(np.float32)
            info["cold_fallback"] = f"ridge regression content -> rec vectors (content set #{content_id}, alpha 1)"
        else:
            info["cold_fallback"] = "none (fewer than 2 items with training interactions); zero vectors"
        yield Message(f"{int((~warm).sum())} items have no training interaction: {info['cold_fallback']}")
    info["fit_seconds"] = round(time.perf_counter() - started, 2)
    return vecs.astype(np.float32), info


# --------------------------------------------------------------------------- fused sets


def _newest_of(store: ProjectStore, strategy: str) -> int:
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        if emb.strategy == strategy and emb.n_items == n:
            return emb.id
    raise ProjectError(f"{store.path}: has no {strategy} embedding set for the current catalogue; "
                       f"{hint('make_strategy_set', strategy=strategy)}")


def _fuse(store: ProjectStore, strategy: str, spec: StrategySpec, sources: Sequence[int] | None
          ) -> tuple[np.ndarray, dict, dict[str, np.ndarray]]:
    from .search import normalize

    if sources:
        if len(sources) != 2:
            raise SemidError("fused sets take two sources: SEARCH_SET,REC_SET")
        s_id, r_id = int(sources[0]), int(sources[1])
    else:
        s_id, r_id = _newest_of(store, "search"), _newest_of(store, "rec")
    s_set, r_set = store.load_embedding_set(s_id), store.load_embedding_set(r_id)
    if s_set.strategy == "rec" or r_set.strategy in ("fused-concat", "fused-svd"):
        raise SemidError(f"fused sets combine a text set (got #{s_id}, {s_set.strategy}) and a rec set "
                         f"(got #{r_id}, {r_set.strategy})")
    if s_set.n_items != r_set.n_items:
        raise ProjectError(f"embedding sets #{s_id} and #{r_id} cover different catalogues")
    s, r = normalize(s_set.vectors), normalize(r_set.vectors)
    info: dict[str, Any] = {"sources": {"search": s_id, "rec": r_id},
                            "source_strategies": {"search": s_set.strategy, "rec": r_set.strategy},
                            "search_dim": int(s.shape[1]), "rec_dim": int(r.shape[1])}
    arrays: dict[str, np.ndarray] = {}
    if strategy == "fused-concat":
        vecs = np.hstack([s, r])
        info["how"] = "concat(l2norm(search), l2norm(rec))"
    else:
        k = int(min(spec.fused_dim, s.shape[1], r.shape[1]))
        parts = []
        for name, v in (("search", s), ("rec", r)):
            mean = v.mean(axis=0)
            _, sv, vt = np.linalg.svd(v - mean, full_matrices=False)
            comps = vt[:k].astype(np.float32)
            parts.append(normalize((v - mean) @ comps.T))
            arrays[f"{name}_mean"] = mean.astype(np.float32)
            arrays[f"{name}_components"] = comps
            info[f"{name}_explained"] = float((sv[:k] ** 2).sum() / max((sv ** 2).sum(), 1e-12))
        vecs = parts[0] + parts[1]
        info.update(how="l2norm(PCA_k(search)) + l2norm(PCA_k(rec))", fused_dim=k)
    return vecs.astype(np.float32), info, arrays


# --------------------------------------------------------------------------- building a set


def build_embedding(
    store: ProjectStore,
    strategy: str,
    spec: StrategySpec | None = None,
    *,
    sources: Sequence[int] | None = None,
    name: str | None = None,
    force: bool = False,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Make (or reuse) an embedding set with ``strategy``; return its id.

    Parameters
    ----------
    store
        The open project.
    strategy
        One of :data:`STRATEGIES`.
    spec
        Settings (:class:`StrategySpec`; default settings when None).
    sources
        Fused strategies: ``(search_set_id, rec_set_id)`` (default: the newest of each).
    name
        Name of the new set (default: model / strategy / seed).
    force
        Make a new set even when one with the same settings and training data exists.
    cancel
        Checked between steps and training steps; a cancel leaves the project unchanged.

    Returns
    -------
    int
        The embedding set id. Its ``params`` record the base model, the training data
        (query split, counts, fingerprint), epochs, seed, loss, truncation and timings.
    """
    if strategy not in STRATEGIES:
        raise SemidError(f"unknown embedding strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    spec = spec or StrategySpec()
    validate_spec(spec)
    if store.item_count() == 0:
        raise ProjectError(f"{store.path}: the catalogue is empty; import items first")
    if strategy == "content":
        return (yield from embed_items(store, model=spec.model, template=spec.template, device=spec.device,
                                       cancel=cancel))
    from .search import item_texts

    stored_name, _ = resolve_model(spec.model)
    texts, template = item_texts(store, spec.template)
    key_params: dict[str, Any] = {"spec": _key_spec(strategy, spec), "sources": list(sources or [])}
    if strategy in FINE_TUNED:
        frame = store.queries_frame(split=TRAIN_SPLIT, source=spec.query_source or None)
        key_params["queries"] = _fingerprint(frame)
    if strategy in ("rec", "multitask"):
        key_params["interactions"] = int(store.interaction_count())
    if strategy.startswith("fused"):
        key_params["sources"] = list(sources) if sources else [_newest_of(store, "search"), _newest_of(store, "rec")]
    key = cache_key(stored_name, template, strategy, key_params)
    cached = store.find_embedding_set(key)
    if cached is not None and cached.n_items == store.item_count() and not force:
        yield Message(f"an embedding set with these settings and data is already in the project (set #{cached.id})")
        return cached.id

    params: dict[str, Any] = {"strategy": strategy, "spec": asdict(spec), "base_model": stored_name,
                              "seed": spec.seed, "template": template}
    arrays: dict[str, dict[str, np.ndarray]] = {}
    metas: dict[str, dict] = {}
    if strategy in FINE_TUNED:
        model, info, train, dev = yield from _fine_tune(store, strategy, spec, texts, cancel)
        params.update(info)
        params.update(query_split=TRAIN_SPLIT, query_source=spec.query_source or "all",
                      dev_fraction=spec.dev_fraction, queries_fingerprint=key_params["queries"])
        cancel.raise_if_cancelled()
        vectors = yield from encode_texts(model, texts, batch_size=64, cancel=cancel, stage="embedding items")
        arrays["encoder"] = _encoder_arrays(model, spec.weights_dtype)
        metas["encoder"] = {"base_model": stored_name, "format": "sentence-transformers state_dict",
                            "dtype": spec.weights_dtype, "max_seq_length": int(model.max_seq_length)}
        arrays["train_queries"] = {"ids": train["id"].to_numpy(np.int64),
                                   "pair_hash": _pair_hash(train["text"].tolist(), train["item_idx"].tolist())}
        arrays["dev_queries"] = {"ids": dev["id"].to_numpy(np.int64),
                                 "pair_hash": _pair_hash(dev["text"].tolist(), dev["item_idx"].tolist())}
        params["items_over_window_share"] = float((_token_lengths(model.tokenizer, texts) > model.max_seq_length).mean())
    elif strategy == "rec":
        vectors, info = yield from _rec_vectors(store, spec, cancel)
        params.update(info)
    else:
        vectors, info, proj = _fuse(store, strategy, spec, sources)
        params.update(info)
        if proj:
            arrays["projection"] = proj
            metas["projection"] = {"how": "query -> l2norm((q - search_mean) @ search_components.T)"}
    cancel.raise_if_cancelled()
    label = {"search": "search-tuned", "rec": "rec-tuned", "multitask": "multi-task",
             "fused-concat": "fused concat", "fused-svd": "fused SVD"}[strategy]
    model_name = stored_name if strategy != "rec" else f"{spec.rec_method}({spec.rec_dim})"
    # a rec set is made from the interactions, not by the text encoder: its name says so
    made_by = Path(stored_name).name if strategy != "rec" else f"{model_name} from interactions"
    set_name = name or f"{made_by} / {label} / seed {spec.seed}"
    with store.atomic():
        set_id = store.save_embedding_set(name=set_name, model=model_name, template=template, strategy=strategy,
                                          cache_key=key, vectors=vectors, params=params)
        for art, arrs in arrays.items():
            save_artifact(store, set_id, art, arrs, metas.get(art))
    yield Message(f"saved embedding set #{set_id} ({label}): {vectors.shape[0]} items x {vectors.shape[1]} dims")
    return set_id


def _key_spec(strategy: str, spec: StrategySpec) -> dict:
    """The spec fields that change the result of ``strategy`` (so that the cache key does not
    depend on settings it ignores)."""
    common = {"model", "template", "seed"}
    tuned = {"epochs", "batch_size", "lr", "warmup", "max_pairs", "max_tokens", "dev_fraction", "query_source"}
    per = {"search": common | tuned,
           "multitask": common | tuned | {"cooccur_window", "item_loss_weight"},
           "rec": {"seed", "rec_method", "rec_dim", "rec_window", "rec_epochs", "model", "template"},
           "fused-concat": set(), "fused-svd": {"fused_dim"}}[strategy]
    return {k: v for k, v in asdict(spec).items() if k in per}


# --------------------------------------------------------------------------- the query side


_ENCODERS: "OrderedDict[tuple, Any]" = OrderedDict()


def has_text_side(strategy: str, model: str = "") -> bool:
    """Whether a set can encode a query: every strategy but ``rec`` (and imported vectors
    whose model is unknown)."""
    return strategy != "rec" and not (strategy == "imported" and model == "imported")


def default_search_set(store: ProjectStore) -> int:
    """The newest embedding set of the current catalogue that has a text side."""
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        if has_text_side(emb.strategy, emb.model) and emb.n_items == n:
            return emb.id
    raise ProjectError(f"{store.path}: has no text embeddings for dense search; {hint('embed')} first")


def load_query_encoder(store: ProjectStore, embedding_set_id: int, device: str | None = None):
    """The SentenceTransformer that encodes queries for an embedding set.

    content sets: their own (bundled or named) model; search-tuned and multi-task sets: the
    base model with the fine-tuned weights stored in the project; fused sets: the encoder of
    their text source (:func:`encode_queries` also projects into the fused space).

    Raises
    ------
    SemidError
        For a rec-tuned set (collaborative vectors have no text side) or missing weights.
    """
    emb = _set_info(store, embedding_set_id)
    if emb.strategy == "rec":
        raise SemidError(f"embedding set #{emb.id} is rec-tuned (collaborative): it has no text encoder for queries; "
                         f"use a content, search-tuned, multi-task or fused set")
    if emb.strategy in ("fused-concat", "fused-svd"):
        return load_query_encoder(store, int(emb.params["sources"]["search"]), device)
    if emb.strategy == "imported" and emb.model == "imported":
        raise SemidError(f"embedding set #{emb.id} was imported without naming its model: no query encoder is "
                         f"known for it; re-import it naming the model, or use another set")
    if emb.strategy not in FINE_TUNED:
        return load_encoder(emb.model, device)
    key = (str(Path(store.path).resolve()), emb.id, emb.created, device)
    if key in _ENCODERS:
        _ENCODERS.move_to_end(key)
        return _ENCODERS[key]
    art = load_artifact(store, emb.id, "encoder")
    if art is None:
        raise ProjectError(f"{store.path}: embedding set #{emb.id} has no stored encoder weights")
    arrays, meta = art
    import torch
    from sentence_transformers import SentenceTransformer

    from .embed import best_device

    _, location = resolve_model(meta.get("base_model"))
    model = SentenceTransformer(location, device=device or best_device())
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32) if v.dtype == np.float16 else np.array(v))
             for k, v in arrays.items()}
    model.load_state_dict(state, strict=True)
    model.max_seq_length = int(meta.get("max_seq_length") or model.max_seq_length)
    model.eval()
    _ENCODERS[key] = model
    while len(_ENCODERS) > 2:
        _ENCODERS.popitem(last=False)
    return model


def encode_long(encoder, texts: Sequence[str], *, mode: str = "truncate", batch_size: int = 32,
                cancel: CancelToken = NEVER, stage: str = "encoding queries") -> TaskGenerator[tuple[np.ndarray, dict]]:
    """Encode texts that may exceed the encoder's window, knowingly.

    ``truncate``: the first ``window`` word pieces (the share cut is reported).
    ``chunk``: a long text is cut into consecutive windows of ``window - 2`` word pieces, each
    encoded, and the L2-normalised chunk vectors are averaged (then normalised again).

    Returns ``(vectors, stats)`` with the share over the window and the number of chunks.
    """
    if mode not in LONG_TEXT:
        raise SemidError(f"long_text must be one of {', '.join(LONG_TEXT)}, got '{mode}'")
    from .search import normalize

    texts = list(texts)
    window = int(getattr(encoder, "max_seq_length", 0) or 512)
    lengths = _token_lengths(encoder.tokenizer, texts)
    over = lengths > window
    stats = {"mode": mode, "window": window, "n": len(texts), "n_over_window": int(over.sum()),
             "share_over_window": float(over.mean()) if len(texts) else 0.0,
             "max_tokens": int(lengths.max()) if len(texts) else 0,
             "median_tokens": float(np.median(lengths)) if len(texts) else 0.0}
    if mode == "truncate" or not over.any():
        vecs = yield from encode_texts(encoder, texts, batch_size=batch_size, cancel=cancel, stage=stage)
        stats["n_chunks"] = len(texts)
        return vecs, stats
    step = window - 2
    chunk_texts: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        if not over[i]:
            chunk_texts.append(text)
            owner.append(i)
            continue
        ids = encoder.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        for start in range(0, len(ids), step):
            chunk_texts.append(encoder.tokenizer.decode(ids[start : start + step]))
            owner.append(i)
    vecs = yield from encode_texts(encoder, chunk_texts, batch_size=batch_size, cancel=cancel, stage=stage)
    vecs = normalize(vecs)
    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), vecs)
    stats["n_chunks"] = len(chunk_texts)
    return normalize(out), stats


def encode_queries(
    store: ProjectStore,
    embedding_set_id: int,
    texts: Sequence[str],
    *,
    long_text: str = "truncate",
    batch_size: int = 32,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[tuple[np.ndarray, dict]]:
    """Query vectors in the space of an embedding set: ``(vectors (n, dim), stats)``.

    Fused sets: a query has only a text side, so over a fused-concat set its vector is the
    normalised text vector followed by zeros (ranking by the search half), and over a
    fused-SVD set the text vector projected by the search part's PCA.
    """
    from .search import normalize

    emb = _set_info(store, embedding_set_id)
    encoder = load_query_encoder(store, embedding_set_id)
    vecs, stats = yield from encode_long(encoder, texts, mode=long_text, batch_size=batch_size, cancel=cancel)
    stats["embedding_set_id"] = int(embedding_set_id)
    if emb.strategy == "fused-concat":
        vecs = np.hstack([normalize(vecs), np.zeros((len(vecs), int(emb.params["rec_dim"])), dtype=np.float32)])
        stats["fused_query"] = "concat(l2norm(text), 0)"
    elif emb.strategy == "fused-svd":
        art = load_artifact(store, emb.id, "projection")
        if art is None:
            raise ProjectError(f"{store.path}: fused-SVD set #{emb.id} has no stored projection")
        proj, _ = art
        vecs = normalize((vecs - proj["search_mean"]) @ proj["search_components"].T)
        stats["fused_query"] = "l2norm(PCA_k(text))"
    return vecs.astype(np.float32), stats


# --------------------------------------------------------------------------- audits and rec check


def audit_training_queries(store: ProjectStore, embedding_set_id: int, *, strict: bool = True) -> dict:
    """Check, from what the set recorded, that no held-out query reached its training.

    Compares the stored training query ids and (text, item) fingerprints with the project's
    current held-out queries (every split but ``train``) and with the set's own dev part.

    Returns
    -------
    dict
        ``n_training_queries``, ``heldout_by_id``, ``heldout_by_text``, ``dev_overlap``, ``ok``.

    Raises
    ------
    SemidError
        With ``strict``, when any overlap is found.
    """
    emb = _set_info(store, embedding_set_id)
    art = load_artifact(store, emb.id, "train_queries")
    if art is None:
        return {"n_training_queries": 0, "heldout_by_id": 0, "heldout_by_text": 0, "dev_overlap": 0, "ok": True,
                "note": f"set #{emb.id} ({emb.strategy}) was not trained on queries"}
    used, _ = art
    held = store.db.execute("SELECT id, text, item_idx FROM queries WHERE split != ?", [TRAIN_SPLIT]).fetchall()
    held_hash = _pair_hash([r[1] for r in held], [r[2] for r in held])
    by_hash = dict(zip([r[0] for r in held], held_hash.tolist()))
    used_ids = used["ids"].astype(np.int64)
    used_hash = used["pair_hash"].astype(np.uint64)
    # an id counts only if it still names the same query (ids can be reused after regeneration)
    by_id = int(sum(1 for i, h in zip(used_ids.tolist(), used_hash.tolist()) if by_hash.get(i) == h))
    by_text = int(np.isin(used_hash, held_hash).sum())
    dev = load_artifact(store, emb.id, "dev_queries")
    dev_overlap = int(np.isin(used_ids, dev[0]["ids"]).sum()) if dev is not None else 0
    report = {"n_training_queries": int(len(used_ids)), "heldout_by_id": by_id, "heldout_by_text": by_text,
              "dev_overlap": dev_overlap, "ok": by_id == 0 and by_text == 0 and dev_overlap == 0}
    if strict and not report["ok"]:
        raise SemidError(f"embedding set #{emb.id} was trained on held-out queries: {by_id} by id, {by_text} by text, "
                         f"{dev_overlap} from its own dev part")
    return report


def loo_probes(store: ProjectStore, which: str = "valid") -> tuple[list[np.ndarray], np.ndarray]:
    """Leave-one-out recommendation cases: (histories, targets) for users with >= 3 items.

    ``valid``: history = all but the last two items, target = the second last;
    ``test``: history = all but the last, target = the last.
    """
    if which not in ("valid", "test"):
        raise SemidError("rec split must be 'valid' or 'test'")
    hists, targets = [], []
    for seq in _user_sequences(store.interactions_frame()):
        if len(seq) < 3:
            continue
        cut = len(seq) - (2 if which == "valid" else 1)
        hists.append(seq[:cut])
        targets.append(int(seq[cut]))
    return hists, np.asarray(targets, dtype=np.int64)


def evaluate_rec_dense(store: ProjectStore, embedding_set_id: int, *, split: str = "valid",
                       ks: Sequence[int] = (10, 30), n_last: int = 1, exclude_seen: bool = True,
                       chunk: int = 1024) -> dict:
    """How well an embedding's geometry serves recommendation: item-kNN from the history.

    The user's query vector is the mean of the L2-normalised vectors of the last ``n_last``
    history items; the whole catalogue is ranked by cosine, history items left out when
    ``exclude_seen``. Leave-one-out split (:func:`loo_probes`), same metrics as search.
    """
    from .search import head_items, normalize, search_metrics

    emb = store.load_embedding_set(embedding_set_id)
    hists, targets = loo_probes(store, split)
    if not len(targets):
        raise ProjectError(f"{store.path}: no user has 3 or more interactions; nothing to evaluate")
    vecs = normalize(emb.vectors)
    kmax = max(ks)
    ranked = np.full((len(targets), kmax), -1, dtype=np.int64)
    for start in range(0, len(targets), chunk):
        block = hists[start : start + chunk]
        q = normalize(np.stack([vecs[h[-n_last:]].mean(axis=0) for h in block]))
        scores = q @ vecs.T
        if exclude_seen:
            for r, h in enumerate(block):
                scores[r, h] = -np.inf
        part = np.argpartition(-scores, kmax - 1, axis=1)[:, :kmax]
        vals = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ranked[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
    metrics = search_metrics(ranked, targets, ks, head_items(store))
    metrics.update(embedding_set_id=int(embedding_set_id), strategy=emb.strategy, split=split, n_last=n_last,
                   exclude_seen=exclude_seen)
    return metrics


__all__ = [
    "FINE_TUNED", "LONG_TEXT", "PRESETS", "REC_METHODS", "STRATEGIES", "StrategySpec", "audit_training_queries",
    "bpr_vectors", "build_embedding", "cooccurrence_pairs", "default_search_set", "encode_long", "encode_queries",
    "evaluate_rec_dense", "has_text_side", "load_artifact", "load_query_encoder", "loo_probes", "make_spec",
    "ppmi_svd", "save_artifact", "training_interactions", "validate_spec",
]
