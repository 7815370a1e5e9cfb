"""The training part of the interactions, as search + rec embeddings and metrics read it.

Leave-one-out, as the generative model's ``loo`` split: each user's last two items are the
recommender's validation and test targets, so :func:`training_interactions` leaves them out,
and :func:`loo_probes` gives them back as evaluation cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SemidError
from ..store import ProjectStore


def training_interactions(store: ProjectStore, *, holdout_last: int = 2) -> pd.DataFrame:
    """The leave-one-out training part of the interactions (``user_id, item_idx, ts``, in order).

    For a user with at least ``holdout_last + 1`` interactions the last ``holdout_last`` are
    left out (the recommender's validation and test targets); shorter histories are kept
    whole (they are never evaluated). Same rule as the generative model's ``loo`` split.
    """
    frame = store.interactions_frame()
    if len(frame) == 0:
        return frame
    size = frame.groupby("user_id", sort=False)["item_idx"].transform("size").to_numpy()
    from_end = size - 1 - frame.groupby("user_id", sort=False).cumcount().to_numpy()
    keep = (size < holdout_last + 1) | (from_end >= holdout_last)
    return frame[keep].reset_index(drop=True)


def _user_sequences(frame: pd.DataFrame) -> list[np.ndarray]:
    users = frame["user_id"].to_numpy()
    items = frame["item_idx"].to_numpy(np.int64)
    if len(items) == 0:
        return []
    change = np.flatnonzero(users[1:] != users[:-1]) + 1
    return np.split(items, change)


def cooccurrence_pairs(frame: pd.DataFrame, window: int) -> np.ndarray:
    """``(m, 2)`` item pairs ``(a, b)``, ``b`` at most ``window`` positions after ``a`` in a
    user's history (``a != b``); one row per occurrence, so frequent pairs weigh more."""
    out = []
    for seq in _user_sequences(frame):
        for gap in range(1, window + 1):
            if len(seq) > gap:
                pair = np.stack([seq[:-gap], seq[gap:]], axis=1)
                out.append(pair[pair[:, 0] != pair[:, 1]])
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def loo_probes(store: ProjectStore, which: str = "valid") -> tuple[list[np.ndarray], np.ndarray]:
    """Leave-one-out recommendation cases: (histories, targets) for users with >= 3 items.

    ``valid``: history = all but the last two items, target = the second last;
    ``test``: history = all but the last, target = the last.
    """
    if which not in ("valid", "test"):
        raise SemidError("rec split must be 'valid' or 'test'")
    hists, targets = [], []
    for seq in _user_sequences(store.interactions_frame()):
        if len(seq) < 3:
            continue
        cut = len(seq) - (2 if which == "valid" else 1)
        hists.append(seq[:cut])
        targets.append(int(seq[cut]))
    return hists, np.asarray(targets, dtype=np.int64)
