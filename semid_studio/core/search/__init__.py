"""Joint search + recommendation: everything both tasks share below the generative model.

From the bottom up (each module imports only modules listed before it):

- :mod:`.text` — words of a query (tokenizer, stop words), item texts through the template,
  word pieces per text
- :mod:`.query_spec`, :mod:`.query_methods`, :mod:`.queries` — search queries: generation
  (known-item, category-path, template), splits, the leakage guard
- :mod:`.checks` — the one gate every query text goes through
- :mod:`.indexes` — BM25 (bm25s) and dense (FAISS) indexes
- :mod:`.interactions` — the leave-one-out training part of the interactions
- :mod:`.metrics` — Recall@K, NDCG@K, MRR, head / torso, bootstrap intervals
- :mod:`.artifacts` — arrays stored beside an embedding set
- :mod:`.strategy_spec`, :mod:`.fine_tune`, :mod:`.collaborative`, :mod:`.strategies` — the
  item-embedding strategies (content, search-/rec-tuned, multitask, fused) and their query side
- :mod:`.baselines` — BM25 and dense retrieval over a project: ranking, evaluation, one query
- :mod:`.token_strategies` — SID tables per task for the joint model (shared, separate, prefix-share)

The joint model itself is :mod:`semid_studio.core.generative.joint`. This package's own
names (the search baselines, metrics and query checks) are importable from it directly:
``from semid_studio.core import search; search.evaluate_search(...)``.
"""

from .baselines import METHODS, SearchResult, evaluate_search, rank_bm25, rank_dense, search
from .checks import MAX_QUERY_CHARS, CheckedQuery, check_query, text_scripts
from .indexes import BM25Index, DenseIndex, normalize
from .metrics import DEFAULT_KS, HEAD_SHARE, bootstrap_ci, format_metrics, head_items, hit_ranks, search_metrics
from .text import item_texts


__all__ = [
    "BM25Index", "CheckedQuery", "DEFAULT_KS", "DenseIndex", "HEAD_SHARE", "MAX_QUERY_CHARS", "METHODS", "SearchResult",
    "bootstrap_ci", "check_query", "evaluate_search", "format_metrics", "head_items", "hit_ranks", "item_texts",
    "normalize", "rank_bm25", "rank_dense", "search", "search_metrics", "text_scripts",
]
