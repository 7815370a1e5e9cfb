"""Arrays and JSON meta stored beside an embedding set (``embedding_artifacts``).

A fine-tuned encoder's weights, the training queries it saw (ids and fingerprints, for the
leakage audits), a fused set's projection, the joint model's cached query states.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ProjectError
from ..store import ProjectStore, encode_arrays, now_iso


def save_artifact(store: ProjectStore, set_id: int, name: str, arrays: dict[str, np.ndarray],
                  meta: dict | None = None) -> None:
    """Store arrays (safetensors) and JSON meta beside an embedding set (replacing ``name``)."""
    with store.atomic():
        store.db.execute(
            "INSERT INTO embedding_artifacts(embedding_set_id, name, arrays, meta, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(embedding_set_id, name) DO UPDATE SET arrays = excluded.arrays, meta = excluded.meta, "
            "created = excluded.created",
            [int(set_id), name, encode_arrays(arrays), json.dumps(meta or {}, sort_keys=True), now_iso()],
        )


def load_artifact(store: ProjectStore, set_id: int, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(arrays, meta)`` stored beside an embedding set, or None."""
    row = store.db.execute(
        "SELECT rowid, meta FROM embedding_artifacts WHERE embedding_set_id = ? AND name = ?", [int(set_id), name]
    ).fetchone()
    if row is None:
        return None
    arrays = store.read_arrays("embedding_artifacts", "arrays", row[0], where=f"set #{set_id} '{name}'")
    return arrays, json.loads(row[1] or "{}")


def _set_info(store: ProjectStore, set_id: int):
    for emb in store.list_embedding_sets():
        if emb.id == int(set_id):
            return emb
    raise ProjectError(f"{store.path}: no embedding set #{set_id}")
