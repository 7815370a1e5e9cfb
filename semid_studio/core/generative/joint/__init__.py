"""Joint generative search and recommendation over one SID space (method.md, section 2).

The TIGER model of :mod:`semid_studio.core.generative`, built with a text input
(:class:`~semid_studio.core.generative.model.TextInput`), answers
two requests with one encoder, one decoder and one constrained beam search:

- ``<task_rec>`` + a user's history -> the next item's SID (exactly the recommender's path);
- query text + ``<task_search>`` -> the SID of the item the query is about.

Query text reaches the model in one of two ways (``JointSpec.query_encoder``), measured against
each other in ``benchmarks/bench_joint.py``:

- ``minilm``: the project's sentence encoder (frozen all-MiniLM-L6-v2) reads the query once;
  its last hidden states are mean-pooled in groups of ``state_pool`` word pieces, with the
  whole-text mean (the sentence embedding dense retrieval uses) as the first position, and
  projected into ``d_model`` by a learned linear layer. Computed once per text and cached in
  the project (beside the encoder's embedding set).
- ``wordpiece``: MiniLM's tokenizer ids, embedded by a table learned from scratch.

Long queries are read whole up to ``max_query_tokens`` (2,048) word pieces, window by window
where they exceed the encoder's own window, and pooled into at most ``max_query_states``
positions; the share still cut is counted and reported (movielens_tomt requests are long: about
half exceed 128 pieces, the longest 1,707).

What ``semid train --task joint`` does by default (the search-tuned encoder reads the requests,
rec-tuned vectors the history items, many more rec than search targets per step, a 1,000-step
schedule fitted to the time budget) is the preset's recipe, :mod:`.recipe`.

Training (:func:`train_joint`) runs the recommender's own loop
(:class:`~semid_studio.core.generative.trainer.Trainer`,
checkpoints, resume, cancel) on mixed batches: every step has about ``mix`` of its targets
from search pairs and the rest from history positions. Search pairs are the project's
``train`` queries minus a ``dev`` part carved by :func:`~semid_studio.core.search.queries.split_for_selection`
(used to choose the checkpoint), guarded by
:func:`~semid_studio.core.search.queries.assert_training_only`; optionally (``index_share``) some
search targets are the catalogue's own item texts ("indexing" pairs, as in DSI), which teach
the model the SID of items nobody has asked about. Held-out queries never reach training.
A joint model's decoder cross-attends to the encoder's states and learns an offset for items the
user already has (:data:`.spec.JOINT_MODEL_DEFAULTS`), and its ``best`` checkpoint is chosen on the
geometric mean of rec validation and search dev NDCG.

:func:`joint_search` answers one query (the ``semid search`` command and the playground);
:func:`evaluate_joint` reports search (Recall/NDCG@K, MRR, head/torso, asked/never asked, via
:func:`~semid_studio.core.search.search_metrics`) and recommendation (as the recommender is
evaluated) and stores both reports.

Modules: :mod:`.spec` (settings), :mod:`.recipe` (the presets' recipe), :mod:`.text` (query features), :mod:`.data` (search
pairs), :mod:`.views` (per-task tries), :mod:`.train`, :mod:`.evaluate` (load, one query,
evaluation) and :mod:`.query_log` (scoring a query file from outside the project). It imports
the recommender's modules and :mod:`semid_studio.core.search`, never the other way round.
"""

from ..train import JOINT_KIND
from .data import SearchData, search_data
from .evaluate import (JointModel, evaluate_joint, has_joint_model, joint_search, load_joint, rank_joint_rec,
                       rank_joint_search)
from .recipe import JOINT_PRESETS, describe_recipe, joint_settings, resolve_recipe
from .spec import JointSpec, make_joint_model_spec, make_joint_spec, selection_label, split_overrides
from .text import ENCODER_SET_PREFIX, TextFeatures, text_features
from .train import JointTrainer, train_joint
from .views import TaskView, rank_texts, task_views, use_view


__all__ = [
    "ENCODER_SET_PREFIX", "JOINT_KIND", "JOINT_PRESETS", "JointModel", "JointSpec", "JointTrainer", "SearchData", "TaskView",
    "TextFeatures", "evaluate_joint", "rank_joint_rec", "rank_joint_search", "task_views", "use_view",
    "has_joint_model", "joint_search", "load_joint", "make_joint_model_spec", "make_joint_spec", "rank_texts",
    "describe_recipe", "joint_settings", "resolve_recipe", "search_data", "selection_label", "split_overrides", "text_features",
    "train_joint",
]
