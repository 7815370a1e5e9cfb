"""Items for the catalogue table and the playground: similarity search by text, and the
table's filter, sort and paging in SQL (a 100k-item catalogue is never loaded into Python
objects to be filtered)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import SemidError
from ..store import ProjectStore
from .nodes import _is_missing
from .reading import _field_path, read_vectors


# --------------------------------------------------------------------------- similarity search


class SimilaritySearch:
    """Rank items by cosine similarity of a text to the item embeddings.

    Holds the normalised vectors and the encoder that made them, so a query costs one encode
    and one matrix-vector product. Safe to query from a worker thread.
    """

    def __init__(self, vectors: np.ndarray, model: str | None, embedding_set_id: int | None = None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = vectors / np.maximum(norms, 1e-12)
        self.model = model
        self.embedding_set_id = embedding_set_id

    @classmethod
    def from_store(cls, store: ProjectStore, embedding_set_id: int | None = None) -> "SimilaritySearch":
        """The project's embedding set (the newest by default) and its model."""
        emb, _vectors = read_vectors(store, embedding_set_id)
        if not emb.model or emb.model == "imported":
            raise SemidError(
                f"embedding set #{emb.id} ({emb.strategy}) does not name the text encoder that made it; "
                "a text query cannot be put into its space"
            )
        return cls(emb.vectors, emb.model, emb.id)

    def encode(self, text: str) -> np.ndarray:
        from ..embed import load_encoder  # loads torch: only when a query is actually made

        vec = load_encoder(self.model).encode([text], convert_to_numpy=True, show_progress_bar=False)[0]
        if len(vec) != self.vectors.shape[1]:
            raise SemidError(f"the model '{self.model}' gives {len(vec)}-dimensional vectors but the items' "
                             f"embeddings have {self.vectors.shape[1]}")
        return np.asarray(vec, dtype=np.float32) / max(float(np.linalg.norm(vec)), 1e-12)

    def rank_vector(self, query: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` items closest to an already encoded, normalised query vector."""
        scores = self.vectors @ np.asarray(query, dtype=np.float32)
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]

    def query(self, text: str, k: int = 10) -> list[tuple[int, float]]:
        """``(idx, cosine)`` of the ``k`` items most similar to ``text``, best first."""
        if not text or not text.strip():
            return []
        return self.rank_vector(self.encode(text.strip()), k)


def similar_items(
    store: ProjectStore, text: str, k: int = 10, *, embedding_set_id: int | None = None
) -> list[tuple[int, float]]:
    """``(idx, cosine)`` of the ``k`` items whose embedding is closest to the encoded ``text``.

    Uses the project's embedding model, so the query lands in the same space as the items.
    For repeated queries keep a :class:`SimilaritySearch` instead (this reloads the vectors).
    """
    return SimilaritySearch.from_store(store, embedding_set_id).query(text, k)


# --------------------------------------------------------------------------- catalogue queries

_ORDER_COLUMNS = {"idx": "i.idx", "item_id": "i.item_id", "title": "i.title", "sid": "s.sid"}


def filter_items(
    store: ProjectStore,
    *,
    text: str | None = None,
    field: str | None = None,
    value: str | None = None,
    sid_prefix: str | None = None,
    run_id: int | None = None,
    order_by: str = "idx",
    descending: bool = False,
) -> np.ndarray:
    """Item idxs that match a search, in display order, computed in SQL.

    Parameters
    ----------
    text : str, optional
        Case-insensitive substring of the item id, the title or any attribute value.
    field, value : str, optional
        Only items whose attribute ``field`` contains ``value`` (case-insensitive).
    sid_prefix : str, optional
        Only items whose SID (in ``run_id``) starts with this, e.g. ``<a_12><b_3>``.
    run_id : int, optional
        The quantiser run for ``sid_prefix`` and for ordering by ``sid``.
    order_by : str
        ``idx``, ``item_id``, ``title``, ``sid`` or an attribute name.
    descending : bool
        Reverse the order.
    """
    join = ""
    args: list = []
    if run_id is not None:
        join = " LEFT JOIN sid_assignments s ON s.item_idx = i.idx AND s.run_id = ?"
        args.append(int(run_id))
    where: list[str] = []
    if text:
        pattern = f"%{text}%"
        where.append("(i.item_id LIKE ? OR i.title LIKE ? OR i.attrs LIKE ?)")
        args += [pattern, pattern, pattern]
    if field:
        where.append("CAST(json_extract(i.attrs, ?) AS TEXT) LIKE ?")
        args += [_field_path(field), f"%{value or ''}%"]
    if sid_prefix:
        if run_id is None:
            raise SemidError("filtering by SID prefix needs a quantiser run")
        escaped = sid_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("s.sid LIKE ? ESCAPE '\\'")
        args.append(escaped + "%")
    if order_by in _ORDER_COLUMNS:
        if order_by == "sid" and run_id is None:
            order_sql = "i.idx"
        else:
            order_sql = _ORDER_COLUMNS[order_by]
        order_args: list = []
    else:
        order_sql = "json_extract(i.attrs, ?)"
        order_args = [_field_path(order_by)]
    direction = "DESC" if descending else "ASC"
    sql = f"SELECT i.idx FROM items i{join}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    # idx breaks ties so that the order is stable between calls
    sql += f" ORDER BY {order_sql} {direction}, i.idx {direction}"
    rows = store.db.execute(sql, args + order_args).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def find_items(store: ProjectStore, text: str, limit: int = 50) -> list[tuple[int, str, str]]:
    """``(idx, item_id, title)`` of the item with exactly this id, else of items whose id or
    title contains ``text`` (case-insensitive), at most ``limit``."""
    text = text.strip()
    if not text:
        return []
    exact = store.db.execute("SELECT idx, item_id, title FROM items WHERE item_id = ?", [text]).fetchall()
    if exact:
        return [(int(i), str(d), t or "") for i, d, t in exact]
    pattern = f"%{text}%"
    rows = store.db.execute(
        "SELECT idx, item_id, title FROM items WHERE title LIKE ? OR item_id LIKE ? ORDER BY idx LIMIT ?",
        [pattern, pattern, int(limit)],
    ).fetchall()
    return [(int(i), str(d), t or "") for i, d, t in rows]


@dataclass(frozen=True)
class ItemRow:
    """One catalogue row, as the table shows it."""

    idx: int
    item_id: str
    title: str | None
    sid: str | None
    attrs: dict


def item_rows(store: ProjectStore, idxs: Sequence[int], *, run_id: int | None = None) -> list[ItemRow]:
    """The rows of these items (in the order given), with their SID in ``run_id``."""
    idxs = [int(i) for i in idxs]
    if not idxs:
        return []
    found: dict[int, ItemRow] = {}
    for start in range(0, len(idxs), 900):
        chunk = idxs[start : start + 900]
        marks = ",".join("?" * len(chunk))
        if run_id is None:
            sql = f"SELECT idx, item_id, title, attrs, NULL FROM items WHERE idx IN ({marks})"
            args = chunk
        else:
            sql = (
                "SELECT i.idx, i.item_id, i.title, i.attrs, s.sid FROM items i LEFT JOIN sid_assignments s "
                f"ON s.item_idx = i.idx AND s.run_id = ? WHERE i.idx IN ({marks})"
            )
            args = [int(run_id), *chunk]
        for idx, item_id, title, attrs, sid in store.db.execute(sql, args).fetchall():
            found[idx] = ItemRow(idx, item_id, title, sid, json.loads(attrs))
    return [found[i] for i in idxs if i in found]


def format_value(value, kind: str = "path") -> str:
    """An attribute value as one line of text: a list as a path ``a › b``, or, for a list field
    of ``kind`` "set" (genres, tags), as ``a, b``."""
    if _is_missing(value):
        return ""
    if isinstance(value, (list, tuple)):
        return (", " if kind == "set" else " › ").join(format_value(v) for v in value if not _is_missing(v))
    if isinstance(value, float):
        return f"{value:g}"
    return html.unescape(str(value))
