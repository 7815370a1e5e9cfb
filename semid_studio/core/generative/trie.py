"""The prefix trie of valid Semantic IDs, as flat tensors.

Level ``l`` of the trie has one node per distinct SID prefix of length ``l + 1``. Node ids
are assigned in sorted (parent, code) order, so the children of a node are a *contiguous*
range of the next level's ids: the trie is a CSR structure per level —
``first[l][p] .. first[l][p + 1]`` are the children of parent ``p`` (the root is the only
parent of level 0) and ``code[l][n]`` is the code that node ``n`` adds.

Constrained decoding asks, for every beam of every user at once, for the children of the
beam's node: one gather of ``(n_beams, max_children)`` node ids — no Python loop per beam,
no dense ``n_parents x codebook`` tables (memory stays linear in the catalogue), and the
softmax of a step runs over the real children only. The same lists give the constrained
training loss.

Cold start: :meth:`SidTrie.build` on the extended code table (new items appended) makes the
new items reachable at once, without retraining; :meth:`SidTrie.node_map` maps the new
trie's nodes onto a training trie's (for models with per-node output embeddings).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SemidError
from ..wording import hint


class SidTrie:
    """Valid SIDs of a catalogue. Build with :meth:`build`."""

    def __init__(self) -> None:
        self.level_sizes: list[int] = []
        self.first: list[torch.Tensor] = []  # per level: (n_parents + 1,) CSR offsets into the level's nodes
        self.code: list[torch.Tensor] = []  # per level: (n_nodes,) code of each node
        self.max_children: list[int] = []
        self.keys: list[np.ndarray] = []  # per level: sorted packed prefixes (node id = position)
        self.leaf_count: list[torch.Tensor] = []  # items below each node, per level
        self.item_path = torch.zeros(0, dtype=torch.long)  # (n_items, L + 1) node of each item's prefixes
        self.leaf_item = torch.zeros(0, dtype=torch.long)  # (n_leaves,) item idx of each leaf node
        self.code_keys = np.zeros(0, np.int64)  # sorted packed full SIDs (unconstrained look-ups)
        self.code_key_item = np.zeros(0, np.int64)
        self.codes = np.zeros((0, 0), np.int64)
        self.items = np.zeros(0, np.int64)  # item idx of each row of ``codes``

    @classmethod
    def build(cls, codes: np.ndarray, level_sizes, items: np.ndarray | None = None) -> "SidTrie":
        """Trie over ``codes`` (``(n, L + 1)``); row i is item ``items[i]`` (default: i).

        Raises :class:`SemidError` when two rows share a full SID or a code is out of range.
        """
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) == 0:
            raise SemidError("an SID table needs at least one item")
        if len(level_sizes) != codes.shape[1]:
            raise SemidError(f"SID table has {codes.shape[1]} levels, the model {len(level_sizes)}")
        sizes = np.asarray(level_sizes, dtype=np.int64)
        if (codes < 0).any() or (codes >= sizes[None, :]).any():
            raise SemidError("an SID code is outside the model's vocabulary; retrain on the current SID table")
        self = cls()
        self.codes = codes
        self.items = np.arange(len(codes)) if items is None else np.asarray(items, dtype=np.int64)
        self.level_sizes = [int(s) for s in sizes]
        n = len(codes)
        parent = np.zeros(n, dtype=np.int64)  # every item hangs under the root
        n_parents = 1
        prefix = np.zeros(n, dtype=np.int64)
        paths = []
        for level, size in enumerate(self.level_sizes):
            key = parent * size + codes[:, level]
            uniq, node = np.unique(key, return_inverse=True)  # sorted by (parent, code)
            node = node.ravel()
            paths.append(node)
            node_parent = uniq // size
            counts = np.bincount(node_parent, minlength=n_parents)
            self.first.append(torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)))
            self.code.append(torch.from_numpy(uniq % size))
            self.max_children.append(int(counts.max()))
            self.leaf_count.append(torch.from_numpy(np.bincount(node, minlength=len(uniq)).astype(np.int64)))
            prefix = prefix * size + codes[:, level]
            node_key = np.zeros(len(uniq), dtype=np.int64)
            node_key[node] = prefix
            self.keys.append(node_key)
            parent, n_parents = node, len(uniq)
        if len(self.keys[-1]) != n:
            raise SemidError(f"{n - len(self.keys[-1])} items share their full SID with another item; the SID "
                             f"table needs a dedup level ({hint('quantize')} again)")
        self.item_path = torch.full((int(self.items.max()) + 1, len(sizes)), -1, dtype=torch.long)
        self.item_path[torch.from_numpy(self.items)] = torch.from_numpy(np.stack(paths, axis=1))
        leaf_item = np.empty(n, dtype=np.int64)
        leaf_item[paths[-1]] = self.items
        self.leaf_item = torch.from_numpy(leaf_item)
        order = np.argsort(self.keys[-1])
        self.code_keys, self.code_key_item = self.keys[-1][order], leaf_item[order]
        return self

    @property
    def n_levels(self) -> int:
        return len(self.level_sizes)

    @property
    def n_items(self) -> int:
        return len(self.leaf_item)

    @property
    def n_nodes(self) -> list[int]:
        return [len(c) for c in self.code]

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """Full SIDs -> one int64 each (mixed radix over the level sizes)."""
        codes = np.asarray(codes, dtype=np.int64)
        key = np.zeros(codes.shape[:-1], dtype=np.int64)
        for level, size in enumerate(self.level_sizes[: codes.shape[-1]]):
            key = key * size + codes[..., level]
        return key

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Item idx of each full SID in ``codes`` (``(..., L + 1)``), -1 when no item has it."""
        key = self.pack(codes)
        pos = np.clip(np.searchsorted(self.code_keys, key), 0, max(0, len(self.code_keys) - 1))
        return np.where(self.code_keys[pos] == key, self.code_key_item[pos], -1)

    def n_children(self, level: int, parents: torch.Tensor) -> torch.Tensor:
        """Number of children of each parent node (nodes of level ``level - 1``)."""
        first = self.first[level].to(parents.device)
        safe = parents.clamp_min(0)
        return torch.where(parents >= 0, first[safe + 1] - first[safe], torch.zeros_like(safe))

    def children(self, level: int, parents: torch.Tensor, width: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Children of parent nodes: ``(nodes, codes)``, each ``(..., width)`` (default: the
        level's largest family), -1 where a parent has fewer children (or is -1, a dead beam).
        ``parents`` are nodes of level ``level - 1``; pass zeros for the root at level 0."""
        first = self.first[level].to(parents.device)
        safe = parents.clamp_min(0)
        start, end = first[safe], first[safe + 1]
        slot = torch.arange(self.max_children[level] if width is None else max(1, width), device=parents.device)
        nodes = start[..., None] + slot
        ok = (nodes < end[..., None]) & (parents[..., None] >= 0)
        nodes = torch.where(ok, nodes, torch.full_like(nodes, -1))
        codes = torch.where(ok, self.code[level].to(parents.device)[nodes.clamp_min(0)], torch.full_like(nodes, -1))
        return nodes, codes

    def node_map(self, other: "SidTrie") -> list[torch.Tensor]:
        """Per level, the id of each of this trie's nodes in ``other`` (-1 when ``other`` has no
        such prefix) — e.g. the training trie of a model, for a catalogue that has grown."""
        out = []
        for mine, theirs in zip(self.keys, other.keys):
            order = np.argsort(theirs)
            pos = np.clip(np.searchsorted(theirs[order], mine), 0, max(0, len(theirs) - 1))
            found = theirs[order][pos] == mine
            out.append(torch.from_numpy(np.where(found, order[pos], -1)))
        return out

    def to(self, device: torch.device | str) -> "SidTrie":
        """Move the tables to a device (returns self)."""
        self.first = [t.to(device) for t in self.first]
        self.code = [t.to(device) for t in self.code]
        self.leaf_count = [t.to(device) for t in self.leaf_count]
        self.item_path = self.item_path.to(device)
        self.leaf_item = self.leaf_item.to(device)
        return self

    def blocked_nodes(self, excluded: list[np.ndarray], device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """Per level, ``(n_users, H)`` node ids all of whose items are excluded for that user
        (-2 = padding). A beam entering such a node could only end on an excluded item."""
        out = []
        path = self.item_path.cpu().numpy()
        for level in range(self.n_levels):
            counts_all = self.leaf_count[level].cpu().numpy()
            rows = []
            for items in excluded:
                items = np.unique(np.asarray(items, dtype=np.int64))
                items = items[(items >= 0) & (items < len(path))]
                nodes = path[items, level]
                nodes = nodes[nodes >= 0]
                if len(nodes) == 0:
                    rows.append(np.zeros(0, np.int64))
                    continue
                uniq, counts = np.unique(nodes, return_counts=True)
                rows.append(uniq[counts == counts_all[uniq]])
            width = max(1, max((len(r) for r in rows), default=1))
            table = np.full((len(rows), width), -2, dtype=np.int64)
            for i, r in enumerate(rows):
                table[i, : len(r)] = r
            out.append(torch.from_numpy(table).to(device))
        return out
