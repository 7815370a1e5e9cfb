"""Per-task views of one joint model: each task's trie and vocabulary range, and ranking
query texts through the search view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..decode import beam_search
from ..model import TigerModel
from ..trie import SidTrie
from .text import TextFeatures


@dataclass
class TaskView:
    """What one task decodes: its trie, how the trie's nodes map onto the model's per-node
    output embeddings (None: the trie is the model's own), and where its rows sit in the model's
    code table (row = item idx + ``shift``; ``offsets`` are added to the task's stored codes).
    Under the shared token strategy both tasks have the same view."""

    trie: SidTrie
    node_maps: list | None = None
    shift: int = 0
    offsets: np.ndarray | None = None

    def stored_codes(self, codes: np.ndarray) -> np.ndarray:
        """Decoded codes -> the codes of the task's own SID table (as ``semid export`` shows them)."""
        return codes if self.offsets is None else codes - self.offsets


def use_view(model: TigerModel, view: TaskView) -> SidTrie:
    """Point the model's per-node output embeddings at ``view``'s trie; returns the trie."""
    model.set_node_maps(view.node_maps if view.node_maps is not None else [None] * model.vocab.n_levels)
    return view.trie


def task_views(table, train_trie: SidTrie, device) -> dict[str, TaskView]:
    """One trie per task over its own rows of a :class:`~semid_studio.core.search.token_strategies.JointTable`,
    with node maps onto the model's training trie (built over all rows)."""
    views = {}
    for task in ("rec", "search"):
        shift = table.shift(task)
        trie = SidTrie.build(table.task_codes(task), table.level_sizes,
                             items=np.arange(shift, shift + table.n_items))
        maps = [m.to(device) for m in trie.node_map(train_trie)]
        views[task] = TaskView(trie.to(device), maps, shift, table.offsets[task])
    return views


@torch.no_grad()
def rank_texts(model: TigerModel, trie: SidTrie, feats: TextFeatures, *, k: int, beam: int,
               rows: np.ndarray | None = None, batch_size: int = 128, shift: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constrained beam-search top-``k`` items for texts: ``(items, scores, codes)``.

    ``shift``: the trie's rows are item idx + shift (the search rows of a Separate /
    Prefix-share model); items are returned as item idx."""
    model.eval()
    rows = np.arange(len(feats)) if rows is None else np.asarray(rows)
    device = model.tokens.weight.device
    items, scores, codes = [], [], []
    for start in range(0, len(rows), batch_size):
        f, n = feats.batch(rows[start : start + batch_size], device)
        dec = beam_search(model, trie, [], beam=beam, k=k, encoded=model.encode_text(f, n))
        items.append(dec.items), scores.append(dec.scores), codes.append(dec.codes)
    if not items:
        return np.zeros((0, k), np.int64), np.zeros((0, k)), np.zeros((0, k, trie.n_levels), np.int64)
    found = np.concatenate(items)
    if shift:
        found = np.where(found >= 0, found - shift, -1)
    return found, np.concatenate(scores), np.concatenate(codes)
