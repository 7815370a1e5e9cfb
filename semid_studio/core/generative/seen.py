"""What a user already has, as a signal for the decoder's choices (``spec.seen_bias``).

On ratings and reviews data (MovieLens, Amazon 5-core) nobody rates or reviews the same item
twice, yet a model that reads only the last ``max_history`` items fills its top 10 with items
the user already has: 3.7 of 10 on movielens_tomt, and 44 % of those are older than the
window, so the model cannot even see them. With ``seen_bias`` each candidate code in the
constrained softmax gets a learned offset ``b[level] * share``, where ``share`` is the part
of the candidate node's items that the user has had so far, over their *whole* history: 1
for an item they have, a fraction for an SID prefix. ``b`` is learned from the training
sequences like any weight, so it goes negative where people never come back to an item and
would go positive where they do (RepeatNet's repeat-or-explore choice, Ren et al. AAAI 2019,
reduced to one scalar per SID level).

Two sources of shares, one interface (``share(level, nodes, owners)``):

- :class:`SeenIndex` / :class:`TargetShares`: for training targets, "so far" means the
  user's training items up to and including the target's input position. One sorted key
  array per level answers every (user, node, position) count with two binary searches.
- :class:`HistoryShares`: for decoding, the same look-up over the histories being ranked.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import Sequences
from .trie import SidTrie


class HistoryShares:
    """Shares for the histories a decoder ranks: per level, the sorted ``user * n_nodes + node``
    keys of the nodes each history reaches and their shares (memory grows with the histories,
    not with users x catalogue)."""

    def __init__(self, trie: SidTrie, histories: list[np.ndarray], n_levels: int, device) -> None:
        path = trie.item_path.cpu().numpy()
        users, items = [], []
        for u, history in enumerate(histories):
            h = np.unique(np.asarray(history, dtype=np.int64))  # an item counts once
            h = h[(h >= 0) & (h < len(path))]
            users.append(np.full(len(h), u, dtype=np.int64)), items.append(h)
        users_a = np.concatenate(users) if users else np.zeros(0, np.int64)
        items_a = np.concatenate(items) if items else np.zeros(0, np.int64)
        self.keys, self.values, self.n_nodes = [], [], []
        for level in range(n_levels):
            n_nodes = trie.n_nodes[level]
            nodes = path[items_a, level]
            ok = nodes >= 0
            keys, counts = np.unique(users_a[ok] * n_nodes + nodes[ok], return_counts=True)
            size = trie.leaf_count[level].cpu().numpy()[keys % n_nodes]
            self.keys.append(torch.from_numpy(keys).to(device))
            self.values.append(torch.from_numpy((counts / size).astype(np.float32)).to(device))
            self.n_nodes.append(n_nodes)

    def share(self, level: int, nodes: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """``nodes`` (R, C) candidate node ids (-1 = none); ``owners`` (R,) the history of each row."""
        keys, values = self.keys[level], self.values[level]
        if len(keys) == 0:
            return torch.zeros(nodes.shape, device=nodes.device)
        query = owners[:, None] * self.n_nodes[level] + nodes.clamp_min(0)
        pos = torch.searchsorted(keys, query).clamp_max(len(keys) - 1)
        hit = (keys[pos] == query) & (nodes >= 0)
        return torch.where(hit, values[pos], torch.zeros_like(values[pos]))


class SeenIndex:
    """Every (user, node, position) at which a user's training items first reach a trie node."""

    def __init__(self, train: Sequences, trie: SidTrie, n_levels: int, device) -> None:
        lengths = train.lengths
        users = np.repeat(np.arange(train.n_users, dtype=np.int64), lengths)
        positions = np.arange(len(train.items), dtype=np.int64) - train.offsets[users]
        items = train.items
        path = trie.item_path.cpu().numpy()
        inside = (items >= 0) & (items < len(path))
        users, positions, items = users[inside], positions[inside], items[inside]
        # an item counts once: keep each user's first interaction with it
        _, first = np.unique(users * len(path) + items, return_index=True)
        users, positions, items = users[first], positions[first], items[first]
        self.span = int(lengths.max(initial=0)) + 1  # positions are < span
        self.keys, self.sizes, self.n_nodes = [], [], []
        for level in range(n_levels):
            n_nodes = trie.n_nodes[level]
            nodes = path[items, level]
            ok = nodes >= 0
            key = (users[ok] * n_nodes + nodes[ok]) * self.span + positions[ok]
            self.keys.append(torch.from_numpy(np.sort(key)).to(device))
            self.sizes.append(trie.leaf_count[level].to(device).float())
            self.n_nodes.append(n_nodes)

    def for_targets(self, users: np.ndarray, positions: np.ndarray, device) -> "TargetShares":
        """Shares for targets whose inputs are ``users``' training items ``0 .. positions``."""
        return TargetShares(self, torch.as_tensor(users, device=device), torch.as_tensor(positions, device=device))


class TargetShares:
    """Shares for a batch of training targets (see :meth:`SeenIndex.for_targets`)."""

    def __init__(self, index: SeenIndex, users: torch.Tensor, positions: torch.Tensor) -> None:
        self.index, self.users, self.positions = index, users, positions

    def share(self, level: int, nodes: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """``nodes`` (R, C) candidate node ids (-1 = none); ``owners`` (R,) the target of each row."""
        ix = self.index
        safe = nodes.clamp_min(0)
        base = (self.users[owners][:, None] * ix.n_nodes[level] + safe) * ix.span
        keys = ix.keys[level]
        upto = torch.searchsorted(keys, base + self.positions[owners][:, None], right=True)
        count = upto - torch.searchsorted(keys, base)
        share = count.float() / ix.sizes[level][safe]
        return torch.where(nodes >= 0, share, torch.zeros_like(share))
