"""What a training budget buys: the pace of a run, its ETA, and the steps and validations it
will reach before the budget ends.

A time budget (``--max-minutes``) usually ends a run long before its schedule
(``max_steps``): a 2-minute run of the ``laptop`` preset on a laptop CPU reaches a few hundred
of its steps. Users should know that before they wait, so the plan is said up front (from the
pace of earlier models of the same shape in the project, when there are any) and again once
the run has measured its own pace; the progress line carries the ETA. A new run given a budget
but no schedule of its own fits its schedule to the budget (:class:`BudgetFit`), so that it ends
its schedule rather than being cut in the middle of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import ProjectStore

#: spec fields that decide the cost of one step: models that agree on them run at one pace
SHAPE_KEYS = ("d_model", "n_heads", "head_dim", "d_ff", "encoder_layers", "decoder_layers", "max_history",
              "batch_targets", "item_embedding", "node_output", "content_input", "content_output",
              "decoder_context", "user_bins")
#: and, for joint models, the search side's
JOINT_SHAPE_KEYS = ("task", "mix", "rec_targets", "query_encoder", "max_query_tokens", "state_pool", "max_query_states",
                    "encoder_model")
#: measure this long (and this many steps) before trusting a run's own pace
WARMUP_S, WARMUP_STEPS = 5.0, 10


@dataclass(frozen=True)
class Pace:
    """Steps per second of wall time (validations included), and where the figure came from."""

    steps_per_s: float
    source: str  # "model #3" or "measured"


def clock(seconds: float) -> str:
    """1:05, 12:00, 1:02:03."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _shape(kind: str, spec: dict, joint: dict | None) -> tuple:
    joint = dict(joint or {})
    if str(joint.get("encoder_model", "")).startswith("set:") or joint.get("encoder_model") in ("search", "multitask"):
        # which fine-tuned set reads the text does not change the cost of a step (nor does a
        # recipe's strategy name, before it is resolved into a set)
        joint["encoder_model"] = "fine-tuned"
    return (kind, *(spec.get(k) for k in SHAPE_KEYS), *(joint.get(k) for k in JOINT_SHAPE_KEYS))


def past_pace(store: ProjectStore, kind: str, spec: dict, joint: dict | None = None) -> Pace | None:
    """The pace of the newest stored model of this kind and shape (a resumed model's own runs
    included) that has trained a while. ``spec`` / ``joint``: the specs' ``to_dict()``."""
    shape = _shape(kind, spec, joint)
    for rec in sorted(store.list_models(), key=lambda r: r.id, reverse=True):
        stored = rec.spec or {}
        if _shape(rec.kind, stored.get("spec") or {}, stored.get("joint")) != shape:
            continue
        history = [h for h in (rec.history or []) if h.get("step") and h.get("elapsed_s")]
        if not history:
            continue
        last = history[-1]
        wall = float(last["elapsed_s"]) + sum(float(h.get("valid_s") or 0.0) for h in history)
        if last["step"] >= WARMUP_STEPS and wall > 0:
            return Pace(last["step"] / wall, f"model #{rec.id}")
    return None


def plan_text(step: int, max_steps: int, eval_every: int, pace: Pace, budget_s: float | None,
              remaining_s: float | None = None, resumed_from: int | None = None, fitted: bool = False) -> str:
    """One line: the step the budget (``budget_s`` in all, ``remaining_s`` of it left from
    ``step`` on; default all of it) reaches, and the validations on the way. ``fitted``: the
    schedule will be fitted to the budget (:class:`BudgetFit`) rather than cut by it."""
    if remaining_s is None:
        remaining_s = budget_s
    end = max_steps if remaining_s is None else min(max_steps, step + int(pace.steps_per_s * max(0.0, remaining_s)))
    first = ((step // eval_every) + 1) * eval_every
    scheduled = list(range(first, end + 1, eval_every))
    at_end = not scheduled or scheduled[-1] != end  # the end of a budget or schedule validates too
    n_valid = len(scheduled) + (1 if at_end else 0)
    if budget_s is not None and end < max_steps and fitted:
        reach = (f"the schedule will be fitted to the {budget_s / 60:g}-min budget: about {end:,} steps "
                 f"of the preset's {max_steps:,}")
    elif budget_s is not None and end < max_steps:
        reach = (f"the {budget_s / 60:g}-min budget ends at about step {end:,} of {max_steps:,}"
                 + (f" (resumed at step {resumed_from:,})" if resumed_from else ""))
    else:
        reach = (f"the schedule's {max_steps:,} steps end in about "
                 f"{clock((max_steps - step) / max(pace.steps_per_s, 1e-9))}")
    if scheduled:
        valid = (f"validation every {eval_every:,} steps: {n_valid} validation{'s' if n_valid != 1 else ''}"
                 + (", the last at the end" if at_end else ""))
    else:
        valid = f"the first scheduled validation (step {first:,}) is beyond it: one validation, at the end"
    return f"at {pace.steps_per_s:.2f} steps/s ({pace.source}) {reach}; {valid}"


class RunClock:
    """A run's own pace and ETA, measured as it goes (wall time, validations included). The
    first few steps (allocation, warm caches) are slower than the rest: the pace is measured
    from step ``from_step + SKIP_STEPS`` on."""

    SKIP_STEPS = 3

    def __init__(self, from_step: int, max_steps: int, budget_s: float | None, started: float) -> None:
        self.from_step, self.max_steps, self.budget_s, self.started = from_step, max_steps, budget_s, started
        self.base: tuple[int, float] | None = None  # (step, time) the pace is measured from
        self.planned = False

    def pace(self, step: int, now: float) -> Pace | None:
        if self.base is None:
            if step >= self.from_step + self.SKIP_STEPS:
                self.base = (step, now)
            return None
        steps, wall = step - self.base[0], now - self.base[1]
        if steps < WARMUP_STEPS or wall < WARMUP_S:
            return None
        return Pace(steps / wall, "measured")

    def eta_text(self, step: int, now: float) -> str:
        """', 2.1 steps/s, 1:45 left' (the budget's end or the schedule's, whichever is first)."""
        pace = self.pace(step, now)
        if pace is None:
            return ""
        left = (self.max_steps - step) / max(pace.steps_per_s, 1e-9)
        why = ""
        if self.budget_s is not None and self.budget_s - (now - self.started) < left:
            left, why = self.budget_s - (now - self.started), " (time budget)"
        return f", {pace.steps_per_s:.1f} steps/s, {clock(left)} left{why}"


def fitted_steps(step: int, cap: int, steps_per_s: float, remaining_s: float, eval_every: int,
                 valid_s: float) -> int:
    """The schedule length (``max_steps``) a run at ``step`` can finish in ``remaining_s``:
    training at ``steps_per_s`` plus a validation of ``valid_s`` every ``eval_every`` steps and
    one at the end; never beyond ``cap`` (the preset's schedule) nor before the next step."""
    per_step = 1.0 / max(steps_per_s, 1e-9) + valid_s / max(1, eval_every)
    reach = step + int(max(0.0, remaining_s - valid_s) / per_step)
    return max(step + 1, min(cap, reach))


class BudgetFit:
    """Fits a new run's schedule (``max_steps``, and the warm-up while still in it) to its time
    budget: once the run has trained ``FIT_AFTER_STEPS`` steps and again after every validation
    (whose cost is then known), from the pace of its training steps alone.

    Why: a cosine schedule cut by the budget ends at a high learning rate with weights that
    never settled; the same minutes spent on a shorter schedule that ends are worth more (and
    the weight average, where there is one, then averages settled weights).
    """

    FIT_AFTER_STEPS = 20

    def __init__(self, cap: int, budget_s: float) -> None:
        self.cap, self.budget_s = cap, budget_s
        self.mark: tuple[int, float] | None = None  # (step, training seconds) the pace counts from

    def due(self, step: int, train_s: float, validated: bool = False) -> bool:
        """Whether to fit now (the first few steps, slower than the rest, are not counted)."""
        if step == RunClock.SKIP_STEPS and self.mark is None:
            self.mark = (step, train_s)
        return self.mark is not None and step > self.mark[0] and (validated or step == self.FIT_AFTER_STEPS)

    def pace(self, step: int, train_s: float) -> float:
        """Training steps per second since the mark."""
        assert self.mark is not None
        return (step - self.mark[0]) / max(1e-9, train_s - self.mark[1])

    @staticmethod
    def warmup(warmup_steps: int, max_steps: int) -> int:
        """Warm-up no longer than a fifth of a (short) schedule."""
        return max(1, min(warmup_steps, max_steps // 5))


def schedule_steps(record_spec: dict) -> int:
    """A stored model's schedule length: the one fitted to its first run's budget, else its spec's."""
    fitted = (record_spec or {}).get("schedule")
    return int(fitted["max_steps"]) if fitted else int((record_spec or {}).get("spec", {}).get("max_steps", 0))
