"""Training the generative recommender over a project: one task for the CLI, the GUI, the
tests and the benchmarks.

:func:`train_model` is the task generator over a project file: it creates (or resumes) a
model record, runs a :class:`~.trainer.Trainer`, yields progress and validation metrics, keeps
the checkpoint that is best on the *validation* split (``best``) and the latest state
(``last``), and stops cleanly on cancel, on a time budget or at the end of the schedule.
``last`` is also written every ``checkpoint_s`` seconds of training (default
:data:`CHECKPOINT_S`), so a crash or ``kill -9`` loses at most about that much work; a model
being trained is leased to its process so that a second trainer never writes the same model.
Under ``torchrun`` the same task trains one model with several processes (DDP, see
:mod:`.distributed`): rank 0 writes.
"""

from __future__ import annotations

import math
import time
from contextlib import suppress
from dataclasses import replace

import numpy as np

from ..devices import resolve_device
from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Cancelled, Message, Metric, PartialResult, ProgressThrottle, TaskGenerator
from ..sids import default_level_sizes
from ..store import ProjectStore
from ..store.models import model_lease
from ..wording import hint
from .data import Sequences, Split, make_split
from .distributed import SINGLE, Dist
from .schedule import BudgetFit, RunClock, clock, fitted_steps, past_pace, plan_text
from .spec import GenerativeSpec, spec_from_dict
from .tokens import SidVocab
from .trainer import Trainer
from .trie import SidTrie


MODEL_KIND = "tiger"
#: seconds of training between time-based ``last`` checkpoints (what a crash can lose at most)
CHECKPOINT_S = 60.0
JOINT_KIND = "tiger-joint"  # a joint search + rec model (joint/), stored beside the recommenders


# --------------------------------------------------------------------------- the project task


def make_vocab(spec: GenerativeSpec, codes: np.ndarray) -> SidVocab:
    """The vocabulary for a new model on this SID table (resolves ``dedup_token='auto'``)."""
    codes = np.asarray(codes)
    model_dedup = spec.dedup_token == "model" or (spec.dedup_token == "auto" and int(codes[:, -1].max()) > 0)
    sizes = tuple(default_level_sizes(codes))
    nodes: tuple[int, ...] = ()
    if spec.node_output:
        nodes = tuple(SidTrie.build(codes, sizes).n_nodes)
    return SidVocab(sizes, len(codes), spec.user_bins, model_dedup, nodes)


def training_content(store: ProjectStore, spec: GenerativeSpec, run, n_items: int
                     ) -> tuple[np.ndarray | None, dict | None]:
    """The content vectors a ``content_input`` / ``content_output`` model reads: the embedding
    set the SIDs were quantised from (or ``spec.content_set``), first ``n_items`` rows. Returns
    ``(vectors, record)``, ``(None, None)`` for a model that reads none."""
    if not (spec.content_input or spec.content_output):
        return None, None
    try:
        emb = store.load_embedding_set(spec.content_set or run.embedding_set_id)
    except ProjectError as exc:
        if not spec.content_set:
            raise
        raise ProjectError(f"spec field 'content_set': {exc}") from None
    if emb.n_items < n_items:
        raise ProjectError(f"embedding set #{emb.id} covers {emb.n_items} of the model's {n_items} items")
    vectors = np.asarray(emb.vectors[:n_items], dtype=np.float32)
    return vectors, {"embedding_set_id": emb.id, "dim": int(vectors.shape[1])}


def load_split(store: ProjectStore, kind: str) -> tuple[Sequences, Split]:
    seqs = Sequences.from_frame(store.interactions_frame())
    return seqs, make_split(seqs, kind)


def user_tokens_for(vocab: SidVocab, seqs: Sequences) -> np.ndarray | None:
    if vocab.user_bins <= 0:
        return None
    return np.asarray([vocab.user_token(u) for u in seqs.user_ids], dtype=np.int64)


def default_name(spec: GenerativeSpec, preset: str | None) -> str:
    """A new model's name when the user gives none (an ensemble's members add "member i/n")."""
    return f"tiger-{preset or 'custom'}-{spec.split}-seed{spec.seed}"


def _resumable(store: ProjectStore, spec: GenerativeSpec) -> int | None:
    """The newest unfinished model trained with exactly this spec that no other process is
    training now, if any."""
    for rec in reversed(store.list_models(MODEL_KIND)):
        if rec.status in ("done",):
            continue
        if same_spec(rec.spec.get("spec"), spec) and store.has_checkpoint(rec.id, "last") \
                and store.lease_holder(model_lease(rec.id)) is None:
            return rec.id
    return None


def same_spec(stored: dict | None, spec: GenerativeSpec) -> bool:
    """Whether a stored spec is ``spec`` (fields added since it was stored take their defaults)."""
    try:
        return stored is not None and spec_from_dict(stored) == spec
    except (SemidError, TypeError):
        return False


def train_model(
    store: ProjectStore,
    spec: GenerativeSpec,
    *,
    resume: int | bool | None = None,
    name: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    max_minutes: float | None = None,
    max_call_steps: int | None = None,
    checkpoint_s: float | None = CHECKPOINT_S,
    cancel: CancelToken = NEVER,
    dist: Dist = SINGLE,
    fit_schedule: bool = False,
) -> TaskGenerator[int]:
    """Train (or resume) a generative recommender on the project's active SID table.

    Parameters
    ----------
    store
        The project (interactions and an active quantiser run are needed).
    spec
        Settings (:func:`.spec.make_spec`). The split (``spec.split``) is part of the spec.
    resume
        ``None`` (default): resume the newest unfinished model with exactly this spec if
        there is one, else start a new model. ``False``: always start a new model. An int:
        resume that model (its own stored spec is used). An ensemble (``members`` > 1) is
        trained by :func:`.ensemble.train_recommender`, which calls this for each member.
    max_minutes
        Stop cleanly after this much training time in this call (the model can be resumed).
    max_call_steps
        Stop cleanly after this many steps in this call (resumable; a budget in steps).
    checkpoint_s
        Also save the ``last`` checkpoint after every this many seconds of training (``None``
        or 0: only at validations), so that a crash loses at most about this much.
    cancel
        Cancelling (or Ctrl+C) saves the state of the last completed step as the ``last``
        checkpoint and marks the model 'interrupted'; resuming continues from there exactly.
    dist
        This process's rank in a data-parallel run (:func:`.distributed.start`); rank 0
        decides which model to train and alone writes to ``store`` (the others may open it
        read-only). ``device`` is then ``dist.device``.
    fit_schedule
        With ``max_minutes``, a new model's schedule (``spec.max_steps`` at most) is fitted to
        the budget once its pace is known (:class:`.schedule.BudgetFit`), so that the run ends
        its schedule rather than being cut in the middle of it; the front ends pass it when no
        schedule (``--max-steps``) was given.

    Returns
    -------
    int
        The model id.
    """
    if spec.members > 1 and (resume is None or resume is False):
        raise SemidError("an ensemble (members > 1) is several models: train it with "
                         "generative.train_recommender, which trains its members with this function")
    model_id: int | None = None
    if isinstance(resume, bool) and resume is False:
        model_id = None
    elif isinstance(resume, int) and not isinstance(resume, bool):
        rec = store.get_model(resume)
        if rec.kind != MODEL_KIND:
            raise ProjectError(f"model #{resume} is a '{rec.kind}' model, not a generative recommender")
        if rec.status == "done":
            raise SemidError(f"model #{resume} has finished its schedule ({rec.step} steps); "
                             f"{hint('new_model')}")
        model_id = resume
    elif dist.is_main:
        model_id = _resumable(store, spec)
    if dist.is_main and model_id is not None:
        store.claim(model_lease(model_id), f"model #{model_id}")  # before reading its checkpoint
    # the other ranks follow rank 0's choice (a resumed model, or a new one on this SID run)
    run_id = 0 if model_id is not None else (store.active_run_id() or 0)
    resumed, run_id = dist.from_main(model_id or 0, run_id)
    model_id = int(resumed) or None

    if model_id is not None:
        rec = store.get_model(model_id)
        spec = spec_from_dict(rec.spec["spec"])
        run = store.load_quantizer_run(rec.quantizer_run_id)
        vocab = SidVocab.from_dict(rec.spec["vocab"])
        codes = run.codes[: vocab.n_items]
    else:
        run = store.load_quantizer_run(int(run_id) or None)
        codes = run.codes
        if len(codes) != store.item_count():
            raise ProjectError(f"the active SID table covers {len(codes)} of {store.item_count()} items; "
                               f"{hint('quantize')} again so every item has a Semantic ID")
        vocab = make_vocab(spec, codes)

    seqs, split = load_split(store, spec.split)
    dev = dist.device if dist.active else resolve_device(device)
    yield Message(f"{split.describe()}; SIDs from quantiser run #{run.id} ({vocab.n_levels} levels); device {dev}"
                  + (f"; {dist.world} processes (DDP), {spec.batch_targets} targets per global batch"
                     if dist.active else ""))
    content, content_info = training_content(store, spec, run, vocab.n_items)
    trainer = Trainer(spec, vocab, codes, split, dev, user_tokens_for(vocab, seqs), content=content, dist=dist)

    if model_id is None:
        if dist.is_main:
            record = {"spec": spec.to_dict(), "vocab": vocab.to_dict(), "preset": preset,
                      "n_parameters": trainer.model.n_parameters(), "split_info": split.info}
            if content_info is not None:
                record["content"] = content_info
            model_id = store.create_model(
                name=name or default_name(spec, preset),
                kind=MODEL_KIND,
                quantizer_run_id=run.id,
                spec=record,
            )
            store.claim(model_lease(model_id), f"model #{model_id}")
        model_id = int(dist.from_main(model_id or 0)[0])
        history: list[dict] = []
        yield Message(f"model #{model_id}: {trainer.model.n_parameters():,} parameters, "
                      f"{trainer.targets_per_epoch:,} training targets per epoch")
    else:
        history = resume_trainer(store, model_id, trainer)
        yield Message(f"resuming model #{model_id} at step {trainer.state.step} "
                      f"({trainer.state.elapsed_s / 60:.1f} min trained so far)")

    yield from leased_loop(store, model_id, trainer, history, max_minutes, checkpoint_s, cancel, max_call_steps,
                           fit_schedule)
    return model_id


def leased_loop(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
                max_minutes: float | None, checkpoint_s: float | None, cancel: CancelToken,
                max_call_steps: int | None = None, fit_schedule: bool = False) -> TaskGenerator[None]:
    """:func:`_loop` on a model this process has claimed; the lease is given back at the end
    (a killed process leaves a stale lease, which the next trainer takes over)."""
    try:
        yield from _loop(store, model_id, trainer, history, max_minutes, cancel, checkpoint_s, max_call_steps,
                         fit_schedule)
    finally:
        # giving the lease back must not hide the error that ended the run (a full disk, say)
        if trainer.dist.is_main:
            with suppress(SemidError):
                store.release(model_lease(model_id))


def _save(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict], status: str,
          *, best: bool) -> None:
    if not trainer.dist.is_main:
        return  # rank 0 writes for all (the ranks hold the same weights)
    s = trainer.state
    extra = {"elapsed_s": s.elapsed_s, "epoch": s.epoch, "processes": trainer.dist.world}
    with store.atomic():
        if best:
            store.save_checkpoint(model_id, "best", s.step, trainer.weights(), None, extra)
        store.save_checkpoint(model_id, "last", s.step, trainer.weights(), trainer.train_state(), extra)
        store.update_model(model_id, status=status, step=s.step, best_step=s.best_step, best_metric=s.best_metric,
                           history=history)


def _set_status(store: ProjectStore, trainer: Trainer, model_id: int, status: str) -> None:
    if trainer.dist.is_main:
        store.update_model(model_id, status=status)


def resume_trainer(store: ProjectStore, model_id: int, trainer: Trainer) -> list[dict]:
    """Load model ``model_id``'s last checkpoint (weights, optimiser, data order, best so far)
    into ``trainer``; returns its validation history."""
    ckpt = store.load_checkpoint(model_id, "last")
    if ckpt is None:
        raise ProjectError(f"model #{model_id} has no saved checkpoint to resume from; start a new one with --new")
    trainer.load_weights(ckpt.weights)
    trainer.load_train_state(ckpt.train_state)
    rec = store.get_model(model_id)
    fitted = (rec.spec or {}).get("schedule")
    if fitted:  # a schedule fitted to the first run's budget is the model's schedule from then on
        trainer.spec = replace(trainer.spec, max_steps=int(fitted["max_steps"]),
                               warmup_steps=int(fitted["warmup_steps"]))
    trainer.state.best_metric, trainer.state.best_step = rec.best_metric, rec.best_step
    return list(rec.history)


def _fit_schedule(store: ProjectStore, model_id: int, trainer: Trainer, fit: BudgetFit, remaining_s: float,
                  history: list[dict]) -> TaskGenerator[GenerativeSpec]:
    """Fit a new run's schedule to what is left of its budget (:class:`.schedule.BudgetFit`);
    every rank takes rank 0's figure. Returns the trainer's (new) spec."""
    spec, step = trainer.spec, trainer.state.step
    pace = fit.pace(step, trainer.state.elapsed_s)
    valid_s = float(np.mean([h.get("valid_s") or 0.0 for h in history])) if history else 0.0
    steps = int(trainer.dist.from_main(fitted_steps(step, fit.cap, pace, remaining_s, spec.eval_every, valid_s))[0])
    if steps == spec.max_steps:
        return spec
    warmup = fit.warmup(spec.warmup_steps, steps) if step < spec.warmup_steps else spec.warmup_steps
    trainer.spec = replace(spec, max_steps=steps, warmup_steps=warmup)
    if trainer.dist.is_main:  # the stored spec stays the one asked for (resume finds the model by it)
        rec = store.get_model(model_id)
        store.update_model(model_id, spec={**rec.spec, "schedule": {
            "max_steps": steps, "warmup_steps": warmup, "budget_min": round(fit.budget_s / 60, 2),
            "preset_steps": fit.cap}})
    if spec.max_steps == fit.cap or abs(steps - spec.max_steps) >= 0.05 * spec.max_steps:
        yield Message(f"schedule fitted to the {fit.budget_s / 60:g}-min budget: {steps:,} steps"
                      + (f" of the preset's {fit.cap:,}" if steps < fit.cap else "")
                      + f" (training {pace:.2f} steps/s" + (f", {valid_s:.0f} s per validation" if valid_s else "")
                      + f"; {clock(remaining_s)} left)")
    return trainer.spec


def _loop(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
          max_minutes: float | None, cancel: CancelToken, checkpoint_s: float | None = None,
          max_call_steps: int | None = None, fit_schedule: bool = False) -> TaskGenerator[None]:
    spec, s, dist = trainer.spec, trainer.state, trainer.dist
    throttle = ProgressThrottle("training", spec.max_steps)
    budget_s = None if max_minutes is None else max_minutes * 60.0
    call_start = time.monotonic()
    first_step = s.step
    losses: list[float] = []
    n_targets = 0
    bad_evals = 0
    _set_status(store, trainer, model_id, "running")
    status = "running"
    # several processes: a cancel is one of rank 0's decisions, taken between steps for all
    # ranks at once (a rank that stopped alone would leave the others waiting)
    trainer.cancel = NEVER if dist.active else cancel
    saved_at = time.monotonic()  # when 'last' was last written (time-based checkpoints)
    run_clock = RunClock(s.step, spec.max_steps, budget_s, call_start)
    # a new run with a budget and no schedule of its own: the schedule is fitted to the budget
    fit = BudgetFit(spec.max_steps, budget_s) if fit_schedule and budget_s is not None and s.step == 0 else None
    yield from _announce_plan(store, model_id, trainer, history, budget_s, fitted=fit is not None)
    try:
        while s.step < spec.max_steps:
            if not dist.active:
                cancel.raise_if_cancelled()
            t0 = time.monotonic()
            loss, n = trainer.train_step()
            s.elapsed_s += time.monotonic() - t0
            losses.append(loss)
            n_targets += n
            if not math.isfinite(loss):
                raise SemidError(f"training diverged (loss {loss}) at step {s.step}; {hint('lower_lr')}")
            out_of_time = budget_s is not None and time.monotonic() - call_start >= budget_s
            out_of_steps = max_call_steps is not None and s.step - first_step >= max_call_steps
            if dist.active:
                cancelled, out_of_time = (bool(v) for v in dist.from_main(cancel.cancelled, out_of_time))
                if cancelled:
                    raise Cancelled()
            if fit is not None and fit.due(s.step, s.elapsed_s):
                left_s = fit.budget_s - (time.monotonic() - call_start)
                spec = yield from _fit_schedule(store, model_id, trainer, fit, left_s, history)
                throttle.total = run_clock.max_steps = spec.max_steps
            running = float(np.mean(losses[-50:]))
            ev = throttle.update(s.step, f"loss {running:.3f}{run_clock.eta_text(s.step, time.monotonic())}")
            if fit is None and not run_clock.planned and (pace := run_clock.pace(s.step, time.monotonic())) is not None:
                run_clock.planned = True  # once the run has measured its own pace
                left_s = None if budget_s is None else budget_s - (time.monotonic() - call_start)
                yield Message(plan_text(s.step, spec.max_steps, spec.eval_every, pace, budget_s, left_s))
            if ev:
                yield ev
                # the loss curve between validations (split "running": the mean of the last 50 steps)
                yield Metric("loss", running, s.step, s.elapsed_s, "running")
            budget_over = out_of_time or out_of_steps
            if s.step % spec.eval_every == 0 or s.step >= spec.max_steps or budget_over:
                entry = yield from _evaluate(store, model_id, trainer, history, losses, n_targets)
                losses, n_targets = [], 0
                if fit is not None and not budget_over and s.step < spec.max_steps \
                        and fit.due(s.step, s.elapsed_s, validated=True):  # now the validations' cost is known
                    spec = yield from _fit_schedule(store, model_id, trainer, fit,
                                                    fit.budget_s - (time.monotonic() - call_start), history)
                    throttle.total = run_clock.max_steps = spec.max_steps
                if entry["improved"]:
                    bad_evals = 0
                else:
                    bad_evals += 1
                stop = bool(dist.from_main(bool(spec.patience and bad_evals >= spec.patience))[0])
                if stop:
                    yield Message(f"no validation improvement in {bad_evals} evaluations: stopping early")
                    status = "done"
                    break
                if budget_over:
                    budget = f"time budget of {max_minutes:g} min" if out_of_time else f"budget of {max_call_steps} steps"
                    yield Message(f"{budget} reached at step {s.step}; {hint('continue_training')}")
                    status = "stopped"
                    break
                saved_at = time.monotonic()
            elif checkpoint_s and time.monotonic() - saved_at >= checkpoint_s:
                # a resumable 'last' between validations: one write a minute, not per step
                _save(store, model_id, trainer, history, "running", best=False)
                saved_at = time.monotonic()
        else:
            status = "done"
        _set_status(store, trainer, model_id, status)
    except (Cancelled, KeyboardInterrupt):
        # the weights are those of the last completed step (see Trainer.train_step)
        _save(store, model_id, trainer, history, "interrupted", best=False)
        raise
    except RuntimeError as exc:
        if not dist.active:
            raise
        # another rank has gone (killed, out of memory): this rank's weights are still those
        # of its last completed step, so rank 0 keeps them before saying so in one line
        _save(store, model_id, trainer, history, "interrupted", best=False)
        raise SemidError(f"rank {dist.rank}: another training process stopped ({str(exc).splitlines()[0][:200]}); "
                         f"the last completed step ({s.step}) is saved - run the same command to resume") from None
    yield PartialResult("model", {"model_id": model_id, "status": status, "step": s.step,
                                  "best_step": s.best_step, "best_metric": s.best_metric})
    return None


def _announce_plan(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
                   budget_s: float | None, fitted: bool = False) -> TaskGenerator[None]:
    """Before the first step: the curve so far (a resumed run's history, for plots) and what the
    budget will reach at the pace of this model's earlier runs or of a model of its shape."""
    if history:
        yield PartialResult("history", {"model_id": model_id, "metrics": _history_metrics(trainer, history)})
    rec = store.get_model(model_id)
    pace = past_pace(store, rec.kind, rec.spec.get("spec") or {}, rec.spec.get("joint"))
    if pace is not None:
        spec = trainer.spec
        step = trainer.state.step
        yield Message("expected: " + plan_text(step, spec.max_steps, spec.eval_every, pace, budget_s,
                                               resumed_from=step or None, fitted=fitted))


def _history_metrics(trainer: Trainer, history: list[dict]) -> list[Metric]:
    """The stored history as the Metric events the loop yielded when it validated."""
    out = []
    for h in history:
        if h.get("train_loss") is not None:
            out.append(Metric("train_loss", h["train_loss"], h["step"], h["elapsed_s"], "train"))
        out.append(Metric(trainer.selection_name, trainer.selection_value(h["valid"]), h["step"], h["elapsed_s"],
                          "valid"))
        out += [Metric(name, part, h["step"], h["elapsed_s"], "valid")
                for name, part in trainer.part_metrics(h["valid"]).items()]
    return out


def _evaluate(store, model_id, trainer: Trainer, history, losses, n_targets) -> TaskGenerator[dict]:
    spec, s = trainer.spec, trainer.state
    t0 = time.monotonic()
    k = int(spec.select_metric.split("@")[1])
    with trainer.served_weights():
        metrics = trainer.validate(ks=sorted({k, 10}))
    value = trainer.selection_value(metrics)
    improved = s.best_metric is None or value > s.best_metric
    if improved:
        s.best_metric, s.best_step = value, s.step
    entry = {"step": s.step, "epoch": s.epoch, "elapsed_s": round(s.elapsed_s, 2),
             "train_loss": float(np.mean(losses)) if losses else None,
             "targets_per_s": n_targets / max(1e-9, s.elapsed_s - (history[-1]["elapsed_s"] if history else 0.0)),
             "valid": metrics, "valid_s": round(time.monotonic() - t0, 2)}
    history.append(entry)
    _save(store, model_id, trainer, history, "running", best=improved)
    for metric in _history_metrics(trainer, [entry]):
        yield metric
    yield PartialResult("checkpoint", {"model_id": model_id, "step": s.step, "best": improved, **metrics})
    return {**entry, "improved": improved}
