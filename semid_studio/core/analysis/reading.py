"""Reading item columns and vectors in chunks, so that no single call holds the GIL for long
(the GUI reads them in worker threads)."""

from __future__ import annotations

import json

import numpy as np

from ..errors import SemidError
from ..store import EmbeddingSet, ProjectStore


# --------------------------------------------------------------------------- reading without long GIL holds
#
# These run in the GUI's worker threads. A single C call that copies a large result (sqlite3
# turning a 150 MB blob into bytes, pandas building a 100k-row frame) holds the GIL for a few
# hundred milliseconds, and the window cannot repaint meanwhile. Reading in small pieces keeps
# every hold short.

_CHUNK_ROWS = 2000


def _field_path(name: str) -> str:
    return '$."' + name.replace('"', '\\"') + '"'


def read_item_columns(store: ProjectStore, field: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """``(item_ids, titles, values of field)`` in idx order, read in chunks of rows.

    List and object values of ``field`` are decoded from JSON; a missing field gives None.
    """
    if field is None:
        cursor = store.db.conn.execute("SELECT item_id, title, NULL, NULL FROM items ORDER BY idx")
    else:
        path = _field_path(field)
        cursor = store.db.conn.execute(
            "SELECT item_id, title, json_extract(attrs, ?), json_type(attrs, ?) FROM items ORDER BY idx", [path, path])
    ids: list = []
    titles: list = []
    values: list = []
    while True:
        rows = cursor.fetchmany(_CHUNK_ROWS)
        if not rows:
            break
        for item_id, title, value, kind in rows:
            ids.append(item_id)
            titles.append(title)
            values.append(json.loads(value) if kind in ("array", "object") else value)
    return np.array(ids, dtype=object), np.array(titles, dtype=object), values


def read_vectors(store: ProjectStore, set_id: int | None = None) -> tuple[EmbeddingSet, np.ndarray]:
    """An embedding set (the newest by default) and its vectors, read in 2 MB pieces.

    The same as ``store.load_embedding_set``, which reads the stored bytes piece by piece too
    (:meth:`ProjectStore.read_arrays`), so no single call holds the GIL for the whole copy.
    """
    sets = store.list_embedding_sets()  # metadata only
    meta = (sets[-1] if sets else None) if set_id is None else next((e for e in sets if e.id == set_id), None)
    if meta is None:
        store.load_embedding_set(set_id)  # raises the store's own error ("no embeddings yet", "no set #n")
        raise SemidError(f"{store.path}: no embedding set #{set_id}")
    vectors = store.read_arrays("embedding_sets", "vectors", meta.id)["vectors"]
    meta.vectors = vectors
    return meta, vectors
