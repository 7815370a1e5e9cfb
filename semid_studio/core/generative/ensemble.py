"""An ensemble of recommenders ranked as one (``spec.members`` > 1, the ``laptop-pair`` preset).

Why: on Beauty one `laptop` model stops just short of the issue's bar, and two of them trained
with different seeds and ranked together pass it (docs/generative.md, "An ensemble of two").
Averaging the members' scores smooths what each learnt by chance from its own initialisation
and data order.

How it is stored: every member is an ordinary recommender (its own record, history and
checkpoints: inspectable, resumable, evaluable alone), trained one after another with seed
``seed x members + i``. Once all are done, the ensemble gets a record of its own whose
``best`` checkpoint holds every member's best weights under ``member<i>.`` (so evaluation,
recommendation, the app and export read one model id), and the validation figure of the
members ranked together. Ranking: :func:`.decode.merge_item_head` with several members.

Resuming is by settings, as for one model: the same command again reuses the members already
trained with exactly these settings, continues an interrupted one and trains the rest.
"""

from __future__ import annotations

import time
from dataclasses import replace

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, PartialResult, TaskGenerator
from ..store import ProjectStore
from .distributed import SINGLE, Dist
from .evaluate import load_model, rank_probes
from .metrics import ranking_metrics
from .spec import GenerativeSpec
from .train import MODEL_KIND, default_name, load_split, same_spec, train_model, user_tokens_for
from .trainer import selection_probes


def train_recommender(store: ProjectStore, spec: GenerativeSpec, *, resume: int | bool | None = None,
                      dist: Dist = SINGLE, **options) -> TaskGenerator[int]:
    """What ``semid train`` and the app's Train run: :func:`.train.train_model` (one model, or
    resuming model ``resume``), or for ``spec.members`` > 1 a new or unfinished ensemble
    (:func:`train_ensemble`; ``resume=False`` trains new members). ``options`` are
    :func:`~.train.train_model`'s."""
    if spec.members > 1 and (resume is None or resume is False):
        if dist.active:
            raise SemidError("an ensemble (members > 1) trains its members one after another in one process; "
                             "train it without --nproc / torchrun")
        return (yield from train_ensemble(store, spec, new=resume is False, **options))
    return (yield from train_model(store, spec, resume=resume, dist=dist, **options))


def member_spec(spec: GenerativeSpec, index: int) -> GenerativeSpec:
    """The settings of member ``index``: the ensemble's, one model, its own seed (distinct
    across the ensemble's seeds: seed 0 trains seeds 0 and 1, seed 1 seeds 2 and 3, ...)."""
    return replace(spec, members=1, seed=spec.seed * spec.members + index)


def finished_model(store: ProjectStore, spec: GenerativeSpec, *, run_id: int | None = None,
                   members: list[int] | None = None) -> int | None:
    """The newest finished recommender trained with exactly ``spec``: a member on SID run
    ``run_id``, or an ensemble assembled from exactly the models ``members``."""
    for rec in reversed(store.list_models(MODEL_KIND)):
        if rec.status != "done" or not same_spec(rec.spec.get("spec"), spec):
            continue
        if members is not None and [m["model_id"] for m in rec.spec.get("members", [])] == members:
            return rec.id
        if members is None and rec.quantizer_run_id == run_id and store.has_checkpoint(rec.id, "best"):
            return rec.id
    return None


def train_ensemble(
    store: ProjectStore,
    spec: GenerativeSpec,
    *,
    new: bool = False,
    name: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    max_minutes: float | None = None,
    max_call_steps: int | None = None,
    checkpoint_s: float | None = None,
    cancel: CancelToken = NEVER,
    fit_schedule: bool = False,
) -> TaskGenerator[int]:
    """Train the members of an ensemble (:func:`.train.train_model`, one after another) and
    assemble it. ``new``: train every member afresh. ``max_minutes`` is the whole ensemble's
    budget, shared out among the members still to train (each fits its schedule to its share
    with ``fit_schedule``). Returns the ensemble's model id, or, when a member stopped early
    (budget, cancel), that member's id (run the same command again to go on)."""
    run_id = store.active_run_id()
    base = name or default_name(spec, preset)
    started = time.monotonic()
    member_ids: list[int] = []
    for i in range(spec.members):
        member = member_spec(spec, i)
        label = f"member {i + 1} of {spec.members} (seed {member.seed})"
        done = None if new else finished_model(store, member, run_id=run_id)
        if done is not None:
            yield Message(f"{label}: model #{done}, already trained with these settings")
            member_ids.append(done)
            continue
        share = None
        if max_minutes is not None:
            share = (max_minutes - (time.monotonic() - started) / 60) / (spec.members - i)
            if share <= 0:
                if not member_ids:
                    raise SemidError(f"a time budget of {max_minutes:g} min leaves nothing to train")
                yield Message(f"time budget of {max_minutes:g} min used up before {label}; run the same command "
                              "again to go on")
                return member_ids[-1]
        yield Message(f"{label}: training" + (f" ({share:.1f} min of the budget)" if share is not None else ""))
        member_id = yield from train_model(
            store, member, resume=False if new else None, name=f"{base} member {i + 1}/{spec.members}",
            preset=preset, device=device, max_minutes=share, max_call_steps=max_call_steps,
            checkpoint_s=checkpoint_s, cancel=cancel, fit_schedule=fit_schedule)
        rec = store.get_model(member_id)
        if rec.status != "done":
            yield Message(f"{label} (model #{member_id}) stopped at step {rec.step}; run the same command again to "
                          f"go on (finished members are kept)")
            return member_id
        member_ids.append(member_id)
    existing = None if new else finished_model(store, spec, members=member_ids)
    if existing is not None:
        yield Message(f"ensemble #{existing} of models #{', #'.join(map(str, member_ids))} is already trained "
                      "with these settings (--new trains new members)")
        return existing
    return (yield from assemble(store, spec, member_ids, name=base, preset=preset, device=device, cancel=cancel))


def assemble(store: ProjectStore, spec: GenerativeSpec, member_ids: list[int], *, name: str,
             preset: str | None = None, device: str | None = None, cancel: CancelToken = NEVER
             ) -> TaskGenerator[int]:
    """Rank the finished members together on the validation cases, then store the ensemble
    (its record, and one ``best`` checkpoint with every member's weights) in one transaction."""
    records = [store.get_model(m) for m in member_ids]
    first = records[0]
    for rec in records[1:]:
        if rec.quantizer_run_id != first.quantizer_run_id or rec.spec.get("vocab") != first.spec.get("vocab"):
            raise ProjectError(f"models #{first.id} and #{rec.id} write different SID tables (quantiser runs "
                               f"#{first.quantizer_run_id} and #{rec.quantizer_run_id}); an ensemble's members "
                               "must share one: train again with --new")
    loaded = [load_model(store, m, device=device) for m in member_ids]
    together = replace(loaded[0], spec=spec, partners=[lm.model for lm in loaded[1:]])
    seqs, split = load_split(store, spec.split)
    probes = selection_probes(split.valid, spec)
    k = int(spec.select_metric.split("@")[1])
    yield Message(f"ranking the {len(member_ids)} members together on {len(probes):,} validation cases")
    t0 = time.monotonic()
    ranked = yield from rank_probes(together, probes, k=max(k, 10), beam=max(k, 10, spec.valid_beam),
                                    user_tokens=user_tokens_for(together.vocab, seqs), cancel=cancel,
                                    stage="validating the ensemble")
    metrics = ranking_metrics(ranked, probes.targets, sorted({k, 10}))
    value = metrics[spec.select_metric]
    alone = ", ".join(f"#{r.id} {r.best_metric:.4f}" for r in records if r.best_metric is not None)
    yield Message(f"ensemble: validation {spec.select_metric} {value:.4f} (the members alone: {alone})")
    cancel.raise_if_cancelled()

    weights = {}
    for i, member in enumerate(member_ids):
        ckpt = store.load_checkpoint(member, "best")
        weights.update({f"member{i}.{key}": value for key, value in ckpt.weights.items()})
    step = max(r.step for r in records)  # each member's schedule (the members train alike)
    record = {"spec": spec.to_dict(), "vocab": first.spec["vocab"], "preset": preset,
              "n_parameters": sum(int(r.spec.get("n_parameters") or 0) for r in records),
              "split_info": first.spec.get("split_info"),
              "members": [{"model_id": r.id, "seed": r.spec["spec"]["seed"], "best_step": r.best_step,
                           "best_metric": r.best_metric} for r in records]}
    if first.spec.get("content"):
        record["content"] = first.spec["content"]
    history = [{"step": step, "epoch": 0, "elapsed_s": 0.0, "train_loss": None, "valid": metrics,
                "valid_s": round(time.monotonic() - t0, 2)}]
    with store.atomic():
        model_id = store.create_model(name=name, kind=MODEL_KIND, quantizer_run_id=first.quantizer_run_id,
                                      spec=record)
        store.save_checkpoint(model_id, "best", step, weights, None, {"members": member_ids})
        store.update_model(model_id, status="done", step=step, best_step=step, best_metric=value, history=history)
    yield Message(f"ensemble #{model_id}: models #{', #'.join(map(str, member_ids))} ranked as one")
    yield PartialResult("model", {"model_id": model_id, "status": "done", "step": step, "best_step": step,
                                  "best_metric": value, "members": member_ids})
    return model_id
