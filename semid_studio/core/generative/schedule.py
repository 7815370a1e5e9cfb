"""What a training budget buys: the pace of a run, its ETA, and the steps and validations it
will reach before the budget ends.

A time budget (``--max-minutes``) usually ends a run long before its schedule
(``max_steps``): a 2-minute run of the ``laptop`` preset on a laptop CPU reaches a few hundred
of its steps. Users should know that before they wait, so the plan is said up front (from the
pace of earlier models of the same shape in the project, when there are any) and again once
the run has measured its own pace; the progress line carries the ETA.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import ProjectStore

#: spec fields that decide the cost of one step: models that agree on them run at one pace
SHAPE_KEYS = ("d_model", "n_heads", "head_dim", "d_ff", "encoder_layers", "decoder_layers", "max_history",
              "batch_targets", "item_embedding", "node_output", "content_input", "content_output",
              "decoder_context", "user_bins")
#: and, for joint models, the search side's
JOINT_SHAPE_KEYS = ("task", "mix", "rec_targets", "query_encoder", "max_query_tokens", "state_pool", "encoder_model")
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
    joint = joint or {}
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
              remaining_s: float | None = None, resumed_from: int | None = None) -> str:
    """One line: the step the budget (``budget_s`` in all, ``remaining_s`` of it left from
    ``step`` on; default all of it) reaches, and the validations on the way."""
    if remaining_s is None:
        remaining_s = budget_s
    end = max_steps if remaining_s is None else min(max_steps, step + int(pace.steps_per_s * max(0.0, remaining_s)))
    first = ((step // eval_every) + 1) * eval_every
    scheduled = list(range(first, end + 1, eval_every))
    at_end = not scheduled or scheduled[-1] != end  # the end of a budget or schedule validates too
    n_valid = len(scheduled) + (1 if at_end else 0)
    if budget_s is not None and end < max_steps:
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
