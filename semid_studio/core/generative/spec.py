"""Settings of the generative recommender: one frozen dataclass with named presets.

``paper`` is TIGER's configuration (Rajput et al. 2023: 4 + 4 layers, 6 heads x 64,
d_model 128, MLP 1024, dropout 0.1); ``laptop`` is what we recommend on a CPU (the best
quality per minute we measured on Beauty, see docs/generative.md); ``laptop-pair`` is two of
those ranked as one (the best quality, for twice the time); ``tiny`` is for tests.
Every field can be overridden (``make_spec("laptop", {"dropout": "0.3"})``); the spec is
stored with the model as JSON so a run can be reproduced exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..errors import SemidError


@dataclass(frozen=True)
class GenerativeSpec:
    """Model, input and training settings of one generative recommender."""

    # -- input side
    max_history: int = 20  # history window: the last N items
    item_embedding: bool = True  # add a learned item-id embedding to each history position
    item_dropout: float = 0.1  # share of positions whose item-id embedding is replaced by 'unknown'
    user_bins: int = 0  # >0: a hashed user token (TIGER used 2000 bins) in front of the history
    # -- model
    d_model: int = 128
    n_heads: int = 6
    head_dim: int = 64
    d_ff: int = 1024
    encoder_layers: int = 4
    decoder_layers: int = 4
    dropout: float = 0.1
    emb_dropout: float = 0.1  # on the summed input embeddings
    activation: str = "relu"
    decoder_context: str = "cross"  # "cross": cross-attend to the history; "state": only the last state
    tie_output: bool = True  # level-code output weights shared with the decoder's input embeddings
    # "model": the dedup code is a decoder step like the others; "uniform": not generated, the
    # items of a semantic tuple share its probability; "auto": uniform when the SID table has no
    # collisions (then the step is deterministic and only costs time), else model
    dedup_token: str = "auto"
    # item-level output signal: an embedding per SID prefix of length >= 2 (a trie node, nearly
    # an item) added to the code's logit; needs the constrained loss
    node_output: bool = False
    # item content vectors (the sentence embeddings the SIDs were quantised from, frozen) beside
    # the SID tokens: projected into each history position (input), and projected into an
    # output embedding for every trie node below level 1 (output; the mean of its items'
    # vectors), so items seen rarely in training still score by what they are
    content_input: bool = False
    content_output: bool = False
    # which embedding set those vectors come from: 0 = the one the SIDs were quantised from;
    # another set's id lets the model read, say, rec-tuned vectors beside search-tuned SIDs
    content_set: int = 0
    # a learned logit offset per SID level for what the user already has: each candidate code
    # gets b[level] x (share of its node's items in the user's whole history so far), so the
    # model can learn that people do not come back to an item (or that they do); see seen.py
    seen_bias: bool = False
    # an item-level head beside the SID decoder (docs/generative.md, "Past the Beauty record"):
    # the encoder state that starts the decoder also scores every item directly, against each
    # item's own input vector (its SID codes + item id + content, the same sum the history
    # reads), trained with softmax cross-entropy at this weight beside the SID loss (0 = off).
    # Ranking then merges the two: the beam's items and the head's top items, each scored by
    # its SID log-probability + item_blend x the head's log-probability
    item_head: float = 0.0
    item_blend: float = 1.0
    # softmax over every item (0), or over the target and this many items drawn uniformly
    # (sampled softmax, for catalogues too large for a full softmax; a uniform draw needs no
    # log-Q correction)
    item_negatives: int = 0
    # a first-order transition prior in that merged ranking (needs item_head): every candidate
    # also scores transition_weight x log P(it | the history's last item), the training part's
    # counts of what followed what, smoothed towards popularity by transition_smoothing
    # pseudo-counts (0 = off). Being counted, not learned, it keeps rare pairs the network
    # smooths away: docs/generative.md, "Past the Beauty record"
    transition_weight: float = 0.0
    transition_smoothing: float = 5.0
    # an ensemble of this many models ranked as one (needs item_head): 'semid train' trains the
    # members one after another, member i with seed seed x members + i (so two seeds of an
    # ensemble never share a member), and the merged ranking scores every candidate by the
    # members' mean SID and head log-probabilities (docs/generative.md, "An ensemble of two")
    members: int = 1
    # -- training
    split: str = "loo"
    train_targets: str = "all"  # "all": every history position is a target; "last": TIGER's one per window
    batch_targets: int = 2048  # target items per batch (windows are bucketed by length)
    lr: float = 2e-3
    schedule: str = "cosine"  # "cosine", "inverse_sqrt" (the paper), "constant"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    constrained_loss: bool = True  # softmax over the valid next codes of the true prefix only
    grad_clip: float = 1.0
    # >0: validation, checkpoints and use read an exponential moving average of the weights
    # (e.g. 0.999); training itself steps the raw weights as usual
    ema_decay: float = 0.0
    max_steps: int = 20000  # the schedule's length; training may stop earlier on time
    eval_every: int = 500  # steps between validation runs (checkpoint selection)
    valid_users: int = 4000  # validation cases used for checkpoint selection (0 = all)
    valid_beam: int = 20
    select_metric: str = "ndcg@10"
    patience: int = 0  # stop after this many validations without improvement (0 = never)
    seed: int = 0
    # "fp32", or mixed precision for the training steps: "bf16" / "fp16" (CUDA; with loss
    # scaling); decoding (validation, evaluation, recommendations) always runs in fp32 so that
    # scores rank the same on every machine
    precision: str = "fp32"
    threads: int = 0  # torch CPU threads (0 = torch's default)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def inner_dim(self) -> int:
        return self.n_heads * self.head_dim


PRESETS: dict[str, dict[str, Any]] = {
    # TIGER's own architecture (encoder-decoder, 4 + 4 layers, 6 heads x 64, MLP 1024)
    "paper": {},
    # a CPU-sized model for about an hour of one CPU core on a ~12k-item catalogue; chosen on
    # Beauty validation by quality per CPU minute (docs/generative.md). Beyond pure TIGER it
    # keeps the default item-id input embedding and adds node_output (per-SID-prefix output
    # embeddings) and content_input (the items' own embedding vectors in each history
    # position: test NDCG@10 0.0381 -> 0.0439 on Beauty for 2 % of the speed);
    # decoder_context "state" drops cross-attention (faster, no worse measured). A moving
    # average of the weights on a 2,500-step cosine (validation peaks by ~2,000 steps, so the
    # learning rate is low by then and the average smooths the last steps): test R@10
    # 0.0729 -> 0.0775 and NDCG@10 0.0443 -> 0.0471 over 3 seeds (docs/generative.md,
    # "A weight average on a shorter schedule"). Since stop 30 an item-level head beside the
    # decoder (item_head; ranking merges the beam with the head's top items, item_blend 2
    # chosen on validation) on a 1,250-step schedule (validation peaks at ~1,000 steps with
    # the head): docs/generative.md, "Past the Beauty record". Since stop 31 the ranking also
    # reads a counted first-order transition prior (transition_weight 0.5, chosen on
    # validation; test N@10 0.0518 -> 0.0553 over 3 seeds, no training cost).
    "laptop": {
        "n_heads": 2,
        "head_dim": 64,
        "d_ff": 512,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "dropout": 0.2,
        "emb_dropout": 0.2,
        "decoder_context": "state",
        "node_output": True,
        "content_input": True,
        "item_head": 1.0,
        "item_blend": 2.0,
        "transition_weight": 0.5,
        # ~0.9 steps per second of one thread on Beauty (validation included): the schedule
        # ends after ~25 minutes
        "max_steps": 1250,
        "ema_decay": 0.998,
        "eval_every": 250,
    },
    # for tests: seconds on a CPU
    "tiny": {
        "d_model": 32,
        "n_heads": 2,
        "head_dim": 16,
        "d_ff": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "batch_targets": 512,
        "max_steps": 300,
        "eval_every": 100,
        "warmup_steps": 20,
        "lr": 5e-3,
        "valid_users": 0,
    },
}

# two `laptop` models ranked as one (since stop 33; docs/generative.md, "`laptop-pair`"): the
# best quality we measured on Beauty, for twice the training time
PRESETS["laptop-pair"] = {**PRESETS["laptop"], "members": 2}

_CHOICES = {
    "activation": ("relu", "gelu"),
    "decoder_context": ("cross", "state"),
    "dedup_token": ("auto", "model", "uniform"),
    "split": ("loo", "temporal"),
    "train_targets": ("all", "last"),
    "schedule": ("cosine", "inverse_sqrt", "constant"),
    "precision": ("fp32", "bf16", "fp16"),
}


def _coerce(name: str, kind: type, value: Any) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        try:
            if kind is bool:
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if kind is int:
                return int(float(text)) if text.replace(".", "", 1).isdigit() else int(text)
            if kind is float:
                return float(text)
        except ValueError:
            raise SemidError(f"spec field '{name}' expects {kind.__name__}, got '{value}'") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SemidError(f"spec field '{name}' expects {kind.__name__}, got {value!r}")
    return value


def make_spec(preset: str = "laptop", overrides: Mapping[str, Any] | None = None) -> GenerativeSpec:
    """A preset with overrides (values may be strings, as typed on a command line).

    Raises :class:`SemidError` for an unknown preset, an unknown field or a bad value.
    """
    if preset not in PRESETS:
        raise SemidError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    types = {f.name: f.type for f in fields(GenerativeSpec)}
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    values: dict[str, Any] = dict(PRESETS[preset])
    for name, value in (overrides or {}).items():
        if name not in types:
            raise SemidError(f"unknown spec field '{name}' (known: {', '.join(sorted(types))})")
        values[name] = _coerce(name, kinds[str(types[name])], value)
    spec = GenerativeSpec(**values)
    validate_spec(spec)
    return spec


def spec_from_dict(data: Mapping[str, Any]) -> GenerativeSpec:
    """Rebuild a stored spec (unknown keys from newer versions are an error, missing ones default)."""
    known = {f.name for f in fields(GenerativeSpec)}
    extra = set(data) - known
    if extra:
        raise SemidError(f"the stored model spec has fields this version does not know: {sorted(extra)}")
    return GenerativeSpec(**dict(data))


def validate_spec(spec: GenerativeSpec) -> None:
    for name, options in _CHOICES.items():
        if getattr(spec, name) not in options:
            raise SemidError(f"spec field '{name}' must be one of {', '.join(options)}, got '{getattr(spec, name)}'")
    positive = ["max_history", "d_model", "n_heads", "head_dim", "d_ff", "decoder_layers", "batch_targets",
                "max_steps", "eval_every", "valid_beam"]
    for name in positive:
        if getattr(spec, name) <= 0:
            raise SemidError(f"spec field '{name}' must be positive, got {getattr(spec, name)}")
    if spec.encoder_layers < 0:
        raise SemidError("spec field 'encoder_layers' must be >= 0")
    for name in ("dropout", "emb_dropout", "item_dropout", "label_smoothing", "ema_decay"):
        if not 0 <= getattr(spec, name) < 1:
            raise SemidError(f"spec field '{name}' must be in [0, 1), got {getattr(spec, name)}")
    if spec.node_output and not spec.constrained_loss:
        raise SemidError("spec field 'node_output' needs constrained_loss=true (node logits exist for real "
                         "prefixes only)")
    if spec.content_output and not spec.constrained_loss:
        raise SemidError("spec field 'content_output' needs constrained_loss=true (node vectors exist for real "
                         "prefixes only)")
    if spec.seen_bias and not spec.constrained_loss:
        raise SemidError("spec field 'seen_bias' needs constrained_loss=true (it offsets the codes of real "
                         "prefixes only)")
    if spec.content_set < 0:
        raise SemidError(f"spec field 'content_set' must be an embedding set id (0: the SIDs' own set), "
                         f"got {spec.content_set}")
    if spec.content_set and not (spec.content_input or spec.content_output):
        raise SemidError("spec field 'content_set' only matters with content_input or content_output")
    if spec.lr <= 0:
        raise SemidError("spec field 'lr' must be positive")
    for name in ("item_head", "item_blend", "item_negatives", "transition_weight"):
        if getattr(spec, name) < 0:
            raise SemidError(f"spec field '{name}' must be >= 0, got {getattr(spec, name)}")
    if spec.transition_smoothing <= 0:
        raise SemidError(f"spec field 'transition_smoothing' must be > 0, got {spec.transition_smoothing}")
    if spec.transition_weight > 0 and spec.item_head <= 0:
        raise SemidError("spec field 'transition_weight' needs item_head > 0 (the prior scores the merged "
                         "ranking of the beam and the item head)")
    if spec.members < 1:
        raise SemidError(f"spec field 'members' must be at least 1, got {spec.members}")
    if spec.members > 1 and spec.item_head <= 0:
        raise SemidError("spec field 'members' > 1 needs item_head > 0 (the members are combined in the merged "
                         "ranking of the beams and the item heads)")
    if not spec.select_metric.startswith(("ndcg@", "recall@")):
        raise SemidError("spec field 'select_metric' must be ndcg@K or recall@K")
