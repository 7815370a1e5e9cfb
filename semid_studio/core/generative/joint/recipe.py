"""What ``semid train --task joint`` does by default: the joint model's recipe.

A joint search + recommendation model trains best (docs/joint-search.md, movielens_tomt) when
its requests are read by a **search-tuned** text encoder, its history items by **rec-tuned**
item vectors, and each step gives the rec side many more targets than the search side. Those
inputs are embedding sets of the project. A newcomer who types the obvious command should get
that model, not one put together by hand, so the ``laptop`` and ``paper`` presets of a joint model
name the sets by strategy (``encoder_model="search"``, ``item_vectors="rec"``) and
:func:`resolve_recipe` turns the names into the project's sets before training, making a set
(and saying so, with progress) when the project has none that fits. The model stores the set
ids it was given, so it reads the same sets whatever is added to the project later.
``--set`` overrides any part (``--set encoder_model=`` for the base encoder, ``--set
item_vectors=`` for the SIDs' own vectors); ``tiny`` (tests) has no recipe.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from ...errors import SemidError
from ...events import NEVER, CancelToken, Message, TaskGenerator
from ...store import ProjectStore
from ..spec import GenerativeSpec
from .spec import JointSpec, make_joint_model_spec, make_joint_spec, split_overrides

#: encoder_model values naming a fine-tuned strategy rather than a model or a set
ENCODER_STRATEGIES = {"search": "search-tuned", "multitask": "multi-task"}

# The recipe, per model preset: (GenerativeSpec overrides, JointSpec overrides). Why each part
# (docs/joint-search.md, "The obvious commands"):
# - 512 targets per step, of which 256 search pairs, and 2,048 rec targets besides
#   (rec_targets): a history window gives 20 targets for the cost of one short sequence, a
#   request one target for up to hundreds of word pieces;
# - half of the search pairs are item texts -> their SID (indexing pairs), which teaches the
#   SIDs of items nobody asked about;
# - a 750-step schedule validated every 100 steps (about 9 minutes on 2 cores): on both
#   checkpoint signals (search dev NDCG, rec validation NDCG) a 750-step cosine ended above a
#   1,000-step one, and search R@30 on the held-out requests rose 0.220 -> 0.258 (seed 0);
#   search dev peaks by 300-400 steps and then drifts while rec still rises;
# - requests read by the search-tuned encoder (search R@30 0.175 -> 0.210 against the base
#   encoder), history items as rec-tuned vectors (rec R@10 0.048 -> 0.056).
_RECIPE = {"rec_targets": 2048, "index_share": 0.5, "encoder_model": "search", "item_vectors": "rec"}
JOINT_PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "laptop": ({"batch_targets": 512, "eval_every": 100, "max_steps": 750}, _RECIPE),
    "paper": ({"batch_targets": 512}, _RECIPE),
    "tiny": ({}, {}),
}


def joint_settings(preset: str, overrides: Mapping[str, Any] | None = None) -> tuple[GenerativeSpec, JointSpec]:
    """``(model spec, joint spec)`` of a new joint / search model: the preset, the joint model
    defaults, the preset's recipe, then the user's ``--set`` pairs (which win)."""
    if preset == "laptop-pair":
        raise SemidError("the laptop-pair preset is for the recommender (--task rec): two models ranked as one; "
                         "a search or joint model takes --preset laptop or paper")
    gen_over, joint_over = split_overrides(dict(overrides or {}))
    recipe_model, recipe_joint = JOINT_PRESETS.get(preset, ({}, {}))
    return (make_joint_model_spec(preset, {**recipe_model, **gen_over}),
            make_joint_spec({**recipe_joint, **joint_over}))


def resolve_recipe(store: ProjectStore, spec: GenerativeSpec, joint: JointSpec, *, make: bool = True,
                   cancel: CancelToken = NEVER) -> TaskGenerator[tuple[GenerativeSpec, JointSpec, dict]]:
    """Turn the recipe's strategy names into the project's embedding sets.

    ``joint.encoder_model`` ``"search"`` / ``"multitask"``: the newest such set fine-tuned on the
    project's current training queries (:func:`~semid_studio.core.search.strategies.current_set`),
    fine-tuned now when there is none, with the joint model's dev part held back (so the
    checkpoint is chosen on queries the encoder never learnt from). ``joint.item_vectors``
    ``"rec"``: a joint model's history items are read as the newest rec-tuned vectors of the
    current interactions (``spec.content_set``), made now when there are none. Returns
    ``(spec, joint, info)`` with the set ids written in and ``info`` saying what was used and
    made; ``make=False`` (a training rank other than 0, which reads the project after rank 0 made
    what was missing) only looks the sets up.
    """
    from ...search import strategies

    info: dict[str, Any] = {}

    def ensure(strategy: str, label: str, settings) -> TaskGenerator[int]:
        set_id = strategies.current_set(store, strategy)
        if set_id is None and not make:
            raise SemidError(f"{store.path}: has no {label} embedding set for its current training data")
        if set_id is None:
            yield Message(f"the project has no {label} embedding set for its current training data: making one "
                          f"now (embedding strategy '{strategy}'; once, later models reuse it)")
            set_id = yield from strategies.build_embedding(store, strategy, settings, cancel=cancel)
            info.setdefault("made", []).append(set_id)
        return set_id

    if joint.encoder_model in ENCODER_STRATEGIES:
        label = ENCODER_STRATEGIES[joint.encoder_model]
        settings = strategies.make_spec(preset="laptop", overrides={"seed": joint.dev_seed,
                                                                     "dev_fraction": joint.dev_fraction})
        set_id = yield from ensure(joint.encoder_model, label, settings)
        yield Message(f"requests are read by the {label} text encoder of embedding set #{set_id}")
        info["encoder"] = {"strategy": joint.encoder_model, "set": set_id}
        joint = replace(joint, encoder_model=f"set:{set_id}")
    if joint.item_vectors == "rec":
        if joint.task == "joint" and spec.content_input and spec.content_set == 0:
            set_id = yield from ensure("rec", "rec-tuned", strategies.make_spec())
            yield Message(f"history items are read as the rec-tuned vectors of embedding set #{set_id}")
            info["item_vectors"] = {"strategy": "rec", "set": set_id}
            spec = replace(spec, content_set=set_id)
        joint = replace(joint, item_vectors="")
    return spec, joint, info


def describe_recipe(store: ProjectStore, spec: GenerativeSpec, joint: JointSpec) -> str:
    """What :func:`resolve_recipe` will use or make, in one line, without making anything (the
    GUI's training form says it before a run)."""
    from ...search import strategies

    parts = []
    if joint.encoder_model in ENCODER_STRATEGIES:
        label = ENCODER_STRATEGIES[joint.encoder_model]
        set_id = strategies.current_set(store, joint.encoder_model)
        parts.append(f"requests read by the {label} encoder of set #{set_id}" if set_id is not None else
                     f"a {label} text encoder fine-tuned first (minutes on a CPU; once)")
    if joint.item_vectors == "rec" and joint.task == "joint" and spec.content_input and spec.content_set == 0:
        set_id = strategies.current_set(store, "rec")
        parts.append(f"history items read as the rec-tuned vectors of set #{set_id}" if set_id is not None else
                     "rec-tuned item vectors made first from the interactions (seconds)")
    return "; ".join(parts)


__all__ = ["ENCODER_STRATEGIES", "JOINT_PRESETS", "describe_recipe", "joint_settings", "resolve_recipe"]
