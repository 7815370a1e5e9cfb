"""Fine-tuning the text encoder on (training query, item text) pairs: the ``search`` and
``multitask`` strategies.

sentence-transformers' ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``
and a no-duplicates batch sampler (an item never appears twice in a batch as its own false
negative); ``multitask`` adds an item -> item loss on items co-occurring in training
histories. Only ``train`` queries are used, minus a ``dev`` part for choosing the epoch,
checked by :func:`.queries.assert_training_only` first. Texts are truncated to
``max_tokens`` word pieces and the share cut is reported.
"""

from __future__ import annotations

import hashlib
import math
import queue
import tempfile
import threading
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..embed import resolve_model
from ..errors import ProjectError, SemidError
from ..events import CancelToken, Cancelled, Message, Metric, Progress, ProgressThrottle, TaskGenerator
from ..store import ProjectStore
from ..wording import hint
from .interactions import cooccurrence_pairs, training_interactions
from .queries import TRAIN_SPLIT, assert_training_only, split_for_selection
from .strategy_spec import StrategySpec
from .text import token_lengths


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


def _dev_recall(model, item_texts_: Sequence[str], dev: pd.DataFrame, k: int = 10, batch_size: int = 64) -> float:
    """Dense Recall@k of the dev queries over the whole catalogue with ``model``."""
    from .indexes import DenseIndex

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
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from ..embed import best_device

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
    q_len = token_lengths(model.tokenizer, q_texts)
    i_len = token_lengths(model.tokenizer, item_texts_)
    info["queries_truncated_share"] = float((q_len > max_tokens).mean()) if len(q_len) else 0.0
    info["items_truncated_share"] = float((i_len > max_tokens).mean()) if len(i_len) else 0.0
    if info["queries_truncated_share"] or info["items_truncated_share"]:
        yield Message(f"training texts are truncated to {max_tokens} word pieces: "
                      f"{info['queries_truncated_share']:.1%} of the queries and {info['items_truncated_share']:.1%} "
                      f"of the item texts are longer", level="warning")
    rng = np.random.default_rng(spec.seed)
    if strategy == "multitask":
        pair_columns, pair_info = _item_pairs(store, spec, len(train), item_texts_, rng)
        columns.update(pair_columns)
        info.update(pair_info)
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

    with tempfile.TemporaryDirectory(prefix="semid-finetune-") as tmp:
        bridge = _bridge(events, state, cancel, loss, spec, select, item_texts_, dev, dev_history)
        trainer = _trainer(model, dataset, loss, spec, tmp, steps_per_epoch, total_steps, device, bridge)
        losses, seconds = yield from _train_in_thread(trainer, events, state, strategy, total_steps)
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


def _item_pairs(store: ProjectStore, spec: StrategySpec, n: int, item_texts_: list[str],
                rng: np.random.Generator) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Multi-task: ``n`` item pairs co-occurring in training histories, as two text columns
    (``item_a``, ``item_b``), and what was drawn from what."""
    inter = training_interactions(store)
    pairs = cooccurrence_pairs(inter, spec.cooccur_window)
    if len(pairs) == 0:
        raise ProjectError(f"{store.path}: multi-task needs item pairs from user histories; the project has "
                           f"no interactions (or no history longer than one item)")
    pick = rng.choice(len(pairs), size=n, replace=len(pairs) < n)
    chosen = pairs[pick]
    flip = rng.random(len(chosen)) < 0.5  # co-occurrence is symmetric: either item may be the anchor
    chosen[flip] = chosen[flip][:, ::-1]
    columns = {"item_a": [item_texts_[a] for a in chosen[:, 0]], "item_b": [item_texts_[b] for b in chosen[:, 1]]}
    info = dict(item_pairs_available=int(len(pairs)), item_pairs_used=int(len(chosen)),
                cooccur_window=spec.cooccur_window, item_loss_weight=spec.item_loss_weight,
                training_interactions=int(len(inter)))
    return columns, info


def _bridge(events: "queue.Queue[tuple]", state: dict[str, Any], cancel: CancelToken, loss, spec: StrategySpec,
            select: bool, item_texts_: list[str], dev: pd.DataFrame, dev_history: list[dict]):
    """The trainer's callback, which runs in the training thread: it reports steps and losses
    (``events``), stops on cancel, and keeps the weights of the epoch with the best dev recall
    (model selection on dev only) in ``state``."""
    from transformers import TrainerCallback

    class Bridge(TrainerCallback):
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

    return Bridge()


def _trainer(model, dataset, loss, spec: StrategySpec, output_dir: str, steps_per_epoch: int, total_steps: int,
             device, callback):
    """sentence-transformers' trainer for the spec: no-duplicates batches, no checkpoints, no
    model card, no console output (progress goes through ``callback``)."""
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict):  # no model card: nothing is published
            return None

    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir, num_train_epochs=spec.epochs, per_device_train_batch_size=spec.batch_size,
        learning_rate=spec.lr, warmup_steps=int(spec.warmup * total_steps), seed=spec.seed,
        data_seed=spec.seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
        report_to="none", logging_steps=max(1, min(50, steps_per_epoch // 10 or 1)), disable_tqdm=True,
        use_cpu=(str(device) == "cpu"), dataloader_num_workers=0, log_level="error",
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _train_in_thread(trainer, events: "queue.Queue[tuple]", state: dict[str, Any], strategy: str,
                     total_steps: int) -> TaskGenerator[tuple[list[tuple[int, float]], float]]:
    """Run ``trainer.train()`` in a thread and relay what its callback reports (``events``) as
    progress and metrics; returns the logged losses and the seconds it took. Whoever stops
    listening stops the training too."""

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
    return losses, time.perf_counter() - started


def _encoder_arrays(model, dtype: str) -> dict[str, np.ndarray]:
    out = {}
    for name, tensor in model.state_dict().items():
        arr = tensor.detach().cpu().numpy()
        if dtype == "float16" and arr.dtype == np.float32:
            arr = arr.astype(np.float16)
        out[name] = np.ascontiguousarray(arr)
    return out
