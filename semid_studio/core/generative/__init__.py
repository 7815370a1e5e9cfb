"""TIGER-style generative recommendation on Semantic IDs (method.md, section 1).

Public entry points (all work on a :class:`~semid_studio.core.store.ProjectStore`):

- :func:`make_spec` / :data:`PRESETS` — settings (``paper``, ``laptop``, ``tiny``).
- :func:`train_model` — training task generator (progress, validation, checkpoints, resume).
- :func:`train_recommender` — what the front ends run: ``train_model``, or for ``members`` > 1
  (the ``laptop-pair`` preset) an ensemble of models ranked as one (:mod:`.ensemble`).
- :func:`evaluate_model` — full-catalogue Recall@K / NDCG@K with baselines, stored in the project.
- :func:`recommend` — ranked items for a history of item ids (beam search or sampling).
- :func:`load_model` — a trained model plus the trie of the current catalogue (cold start).

Array-level building blocks live in the sub-modules: :mod:`.data` (sequences, splits,
batches), :mod:`.tokens` (vocabulary), :mod:`.model`, :mod:`.trie`, :mod:`.decode`
(beam search, sampling, exact scoring), :mod:`.train` (:class:`Trainer`), :mod:`.metrics`
and :mod:`.baselines` (popularity, Markov, SASRec).
"""

from .ensemble import train_recommender
from .evaluate import LoadedModel, evaluate_model, load_model, recommend
from .spec import PRESETS, GenerativeSpec, make_spec
from .train import MODEL_KIND, train_model
from .trainer import Trainer

__all__ = [
    "PRESETS",
    "GenerativeSpec",
    "make_spec",
    "train_model",
    "train_recommender",
    "Trainer",
    "MODEL_KIND",
    "evaluate_model",
    "recommend",
    "load_model",
    "LoadedModel",
]
