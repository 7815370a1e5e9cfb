"""The search side of the joint model's training data: query -> item pairs.

The project's ``train`` queries minus a ``dev`` part (:func:`~semid_studio.core.search.queries.split_for_selection`)
that chooses the checkpoint, guarded by :func:`~semid_studio.core.search.queries.assert_training_only`;
optionally (``index_share``) item texts as extra "indexing" pairs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ...errors import ProjectError
from ...events import NEVER, CancelToken, Message, TaskGenerator
from ...store import ProjectStore
from ...wording import hint
from .spec import JointSpec
from .text import TextFeatures, text_features


@dataclass
class SearchData:
    """Search training pairs (train queries minus dev), dev pairs, optional item texts."""

    train: TextFeatures
    train_targets: np.ndarray
    dev: TextFeatures
    dev_targets: np.ndarray
    items: TextFeatures | None  # item texts -> their own SID (indexing pairs), row = item idx
    info: dict


def search_data(store: ProjectStore, joint: JointSpec, n_items: int, *, encoder: str,
                cancel: CancelToken = NEVER) -> TaskGenerator[SearchData]:
    """Train queries (guarded: never a held-out one), the dev part, and their features."""
    from ...search.queries import TRAIN_SPLIT, assert_training_only, split_for_selection

    frame = store.queries_frame(split=TRAIN_SPLIT)
    frame = frame[frame["item_idx"] < n_items]
    if len(frame) < 2:
        raise ProjectError(f"{store.path}: the joint model needs training queries (split 'train'); "
                           f"{hint('generate_queries')}")
    train, dev = split_for_selection(frame, joint.dev_fraction, joint.dev_seed)
    # the leakage guard: goes back to the project file, refuses held-out rows by id and by text
    assert_training_only(store, train, exclude_ids=dev["id"].tolist(), who="joint model training")
    yield Message(f"search pairs: {len(train)} train queries, {len(dev)} dev queries (checkpoint selection, "
                  f"{joint.dev_fraction:.0%} of train, seed {joint.dev_seed}); held-out queries are never read")
    tr = yield from text_features(store, joint, train["text"].tolist(), encoder=encoder, cancel=cancel)
    dv = yield from text_features(store, joint, dev["text"].tolist(), encoder=encoder, cancel=cancel)
    items = None
    if joint.index_share > 0:
        from ...search import item_texts

        texts, _ = item_texts(store)
        items = yield from text_features(store, joint, texts[:n_items], encoder=encoder, cancel=cancel)
    over = tr.n_truncated + dv.n_truncated
    yield Message(f"queries over {joint.max_query_tokens} word pieces are cut there: {over} of {len(tr) + len(dv)} "
                  f"({over / max(1, len(tr) + len(dv)):.1%}); longest {max(tr.max_tokens_seen, dv.max_tokens_seen)}",
                  level="warning" if over else "info")
    ids = sorted(int(i) for i in train["id"])
    info = {"n_train_queries": len(train), "n_dev_queries": len(dev), "dev_fraction": joint.dev_fraction,
            "dev_seed": joint.dev_seed, "train_fingerprint": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16],
            "dev_ids": sorted(int(i) for i in dev["id"]), "train_features": tr.info(), "dev_features": dv.info(),
            "item_features": items.info() if items is not None else None, "encoder": encoder}
    return SearchData(tr, train["item_idx"].to_numpy(np.int64), dv, dev["item_idx"].to_numpy(np.int64), items, info)
