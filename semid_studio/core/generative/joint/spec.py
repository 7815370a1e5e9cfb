"""Settings of a joint search + rec model: :class:`JointSpec` beside the model's own
:class:`~semid_studio.core.generative.spec.GenerativeSpec`, and how ``--set`` pairs split
between the two."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from ...errors import SemidError
from ..spec import GenerativeSpec, _coerce, make_spec


TASKS = ("rec", "search", "joint")
QUERY_ENCODERS = ("minilm", "wordpiece")
SELECT_MEANS = ("geometric", "arithmetic")


@dataclass(frozen=True)
class JointSpec:
    """Settings of the text side and the task mix (stored with the model beside its
    :class:`~.spec.GenerativeSpec`)."""

    task: str = "joint"  # "joint": both tasks; "search": query -> SID only
    mix: float = 0.5  # search's share of the training loss (and of the batch's targets, by default)
    # rec targets per step; 0: the rest of the batch (batch_targets x (1 - mix)). Why: a history
    # window gives a target per position for the cost of one short sequence, a query one target
    # for up to max_query_tokens, so more rec targets per step cost little and let the rec side
    # see more epochs before the few training queries are learnt by heart
    rec_targets: int = 0
    query_encoder: str = "minilm"  # "minilm" (frozen sentence-encoder states) or "wordpiece" (learned)
    # word pieces read per query, longer ones cut (and counted); a query longer than the sentence
    # encoder's window (256 for MiniLM) is read window by window (text.state_features). Why so
    # many: real requests run to hundreds of words (movielens_tomt: 49 % over 128 pieces, 9.5 %
    # over 256, the longest 1,707)
    max_query_tokens: int = 2048
    state_pool: int = 4  # minilm: token states mean-pooled in groups of at least this many word pieces
    # minilm: at most this many pooled positions per query (groups grow with the text:
    # max(state_pool, ceil(pieces / max_query_states))), so a long request costs the model no
    # more positions than a 256-piece one; 0 = groups of state_pool whatever the length
    max_query_states: int = 64
    index_share: float = 0.0  # share of search targets that are item texts -> their SID (indexing pairs)
    dev_fraction: float = 0.1  # share of train queries held back for checkpoint selection
    dev_seed: int = 0
    # sentence encoder / tokenizer: a model name or path, or "set:N" for the fine-tuned text encoder
    # of embedding set #N (search-tuned or multi-task); default: the project's content encoder.
    # "search" / "multitask": the project's newest such set, fine-tuned first when it has none
    # (recipe.resolve_recipe; what the laptop preset of a joint model asks for)
    encoder_model: str = ""
    # "rec": history items are read as the project's rec-tuned vectors (the model spec's
    # content_set), made first when it has none; "": as the model spec says (recipe.resolve_recipe)
    item_vectors: str = ""
    search_beam: int = 30  # beam width for search validation (>= the largest K)
    # how the checkpoint weighs the two tasks' validation figures: "geometric" counts a 10 % gain
    # on either task the same; the arithmetic mean followed search alone on movielens_tomt,
    # whose search NDCG runs about 4x rec's (docs/joint-search.md, stop 16)
    select_mean: str = "geometric"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JointSpec":
        """A stored spec; models saved before ``select_mean`` existed chose on the arithmetic mean,
        and those saved before ``max_query_states`` pooled every text in fixed groups."""
        return cls(**{"select_mean": "arithmetic", "max_query_states": 0, **data})


# A joint model's decoder cross-attends to the encoder's states (the request's word pieces, or
# the history) unless told otherwise: on movielens_tomt search R@30 0.213 -> 0.261 (5 seeds) for
# ~7 % more time per step. The rec-only `laptop` preset keeps "state" (no worse on Beauty).
# It also learns how much to offset what the user already has (seen_bias, see seen.py): on
# movielens_tomt the movies already rated in the top 10 fall from 3.6-3.9 to 0.1 and rec R@10
# (every movie ranked) rises from 0.073 to 0.11; a search-only model never reads a history, so
# there it changes nothing. The rec-only presets were not re-measured with it and stay as they are.
# The rec-only `laptop` preset's item-level head (item_head) and transition prior are not part
# of a joint model (yet): the joint recipe was measured without them.
JOINT_MODEL_DEFAULTS = {"decoder_context": "cross", "seen_bias": True, "item_head": 0.0, "transition_weight": 0.0}


def make_joint_model_spec(preset: str, overrides: Mapping[str, Any] | None = None) -> GenerativeSpec:
    """The model spec of a new search / joint model: the preset, then the joint defaults, then
    the user's overrides."""
    return make_spec(preset, {**JOINT_MODEL_DEFAULTS, **(overrides or {})})


def make_joint_spec(overrides: Mapping[str, Any] | None = None) -> JointSpec:
    """A :class:`JointSpec` from overrides (values may be strings, as typed on a command line)."""
    types = {f.name: f.type for f in fields(JointSpec)}
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    values: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in types:
            raise SemidError(f"unknown joint-model setting '{name}' (known: {', '.join(sorted(types))})")
        values[name] = _coerce(name, kinds[str(types[name])], value)
    if values.get("query_encoder") == "wordpiece" and "max_query_tokens" not in values:
        values["max_query_tokens"] = 128  # a learned table reads every piece itself: long texts cost too much
    spec = JointSpec(**values)
    if spec.task not in ("search", "joint"):
        raise SemidError(f"joint-model task must be 'search' or 'joint' ('rec' trains the recommender), "
                         f"got '{spec.task}'")
    if spec.query_encoder not in QUERY_ENCODERS:
        raise SemidError(f"query_encoder must be one of {', '.join(QUERY_ENCODERS)}, got '{spec.query_encoder}'")
    if not 0.0 < spec.mix <= 1.0 or (spec.task == "joint" and spec.mix >= 1.0):
        raise SemidError(f"--mix (share of search targets) must be in (0, 1) for a joint model, got {spec.mix}")
    if spec.rec_targets < 0:
        raise SemidError(f"rec_targets must be >= 0 (0: the batch's share), got {spec.rec_targets}")
    if not 0.0 <= spec.index_share < 1.0:
        raise SemidError(f"index_share must be in [0, 1), got {spec.index_share}")
    if not 0.0 < spec.dev_fraction < 1.0:
        raise SemidError(f"dev_fraction must be in (0, 1): the joint model chooses its checkpoint on a dev part "
                         f"of the train queries, got {spec.dev_fraction}")
    if spec.select_mean not in SELECT_MEANS:
        raise SemidError(f"select_mean must be one of {', '.join(SELECT_MEANS)}, got '{spec.select_mean}'")
    if spec.max_query_tokens < 4 or spec.state_pool < 1 or spec.search_beam < 1 or spec.max_query_states < 0:
        raise SemidError("max_query_tokens must be >= 4, state_pool and search_beam >= 1, max_query_states >= 0")
    if spec.item_vectors not in ("", "rec"):
        raise SemidError(f"item_vectors must be empty or 'rec', got '{spec.item_vectors}'")
    return spec


def selection_label(select_mean: str, metric: str) -> str:
    """What a joint (both tasks) model's checkpoint is chosen on, in words."""
    return f"{select_mean} mean of rec and search {metric}"


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict, dict]:
    """``--set`` pairs -> (GenerativeSpec overrides, JointSpec overrides)."""
    joint_names = {f.name for f in fields(JointSpec)}
    gen = {k: v for k, v in overrides.items() if k not in joint_names}
    joint = {k: v for k, v in overrides.items() if k in joint_names}
    return gen, joint
