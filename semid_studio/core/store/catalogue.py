"""The catalogue tables of a project: items, interactions and search queries."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ProjectError
from .encoding import _json, now_iso


class CatalogueTables:
    """``items`` (every array in the project is aligned to their dense ``idx``), ``interactions``
    (sorted by user, time, file order) and ``queries`` (text -> item, split, source).

    A part of :class:`~semid_studio.core.store.project.ProjectStore` (it uses the store's
    ``db`` and ``atomic``)."""

    # -- items

    def item_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM items").fetchone()[0]

    def item_ids(self) -> np.ndarray:
        """All item ids, in ``idx`` order (position i = item idx i)."""
        rows = self.db.execute("SELECT item_id FROM items ORDER BY idx").fetchall()
        return np.array([r[0] for r in rows], dtype=object)

    def item_index(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT item_id, idx FROM items").fetchall())

    def add_items(self, records: Sequence[dict]) -> int:
        """Append items: dicts with ``item_id``, optional ``title`` and any other fields.

        Returns the idx of the first new item. Ids must be new (the importer checks and
        reports duplicates with line numbers before calling this).
        """
        start = self.item_count()
        added = now_iso()
        rows = []
        for offset, rec in enumerate(records):
            attrs = {k: v for k, v in rec.items() if k not in ("item_id", "idx")}
            title = attrs.get("title")
            rows.append((start + offset, str(rec["item_id"]), None if title is None else str(title),
                         _json(attrs), added))
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO items(idx, item_id, title, attrs, added_at) VALUES (?, ?, ?, ?, ?)", rows
            )
        return start

    def get_items(self, idxs: Iterable[int]) -> list[dict]:
        """Items as dicts (``idx``, ``item_id``, ``title`` and every attribute), in the order asked."""
        idxs = [int(i) for i in idxs]
        if not idxs:
            return []
        found: dict[int, dict] = {}
        for chunk_start in range(0, len(idxs), 900):
            chunk = idxs[chunk_start : chunk_start + 900]
            marks = ",".join("?" * len(chunk))
            for idx, item_id, title, attrs in self.db.execute(
                f"SELECT idx, item_id, title, attrs FROM items WHERE idx IN ({marks})", chunk
            ):
                rec = {"idx": idx, "item_id": item_id, **json.loads(attrs)}
                rec["title"] = title
                found[idx] = rec
        missing = [i for i in idxs if i not in found]
        if missing:
            raise ProjectError(f"item idx {missing[0]} is not in the catalogue")
        return [found[i] for i in idxs]

    def items_frame(self, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """The catalogue as a DataFrame indexed by ``idx`` with item_id, title and attributes.

        ``fields`` limits the attribute columns (all attributes when None).
        """
        rows = self.db.execute("SELECT idx, item_id, title, attrs FROM items ORDER BY idx").fetchall()
        records = []
        for idx, item_id, title, attrs in rows:
            a = json.loads(attrs)
            if fields is not None:
                a = {k: a.get(k) for k in fields}
            a.pop("title", None)
            records.append({"idx": idx, "item_id": item_id, "title": title, **a})
        frame = pd.DataFrame.from_records(records, columns=None if records else ["idx", "item_id", "title"])
        return frame.set_index("idx")

    def item_fields(self) -> list[str]:
        """Attribute names present in the catalogue (from a sample of items)."""
        names: dict[str, None] = {}
        for (attrs,) in self.db.execute("SELECT attrs FROM items ORDER BY idx LIMIT 500"):
            for k in json.loads(attrs):
                names[k] = None
        return list(names)

    def search_items(self, text: str, limit: int = 50) -> list[dict]:
        """Items whose id or title contains ``text`` (case-insensitive)."""
        pattern = f"%{text}%"
        rows = self.db.execute(
            "SELECT idx FROM items WHERE title LIKE ? OR item_id LIKE ? ORDER BY idx LIMIT ?",
            [pattern, pattern, limit],
        ).fetchall()
        return self.get_items(r[0] for r in rows)


    # -- interactions

    def interaction_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM interactions").fetchone()[0]

    def add_interactions(self, frame: pd.DataFrame) -> int:
        """Append interactions: columns ``user_id``, ``item_idx``, ``ts`` and optional ``rating``."""
        rating = frame["rating"] if "rating" in frame else pd.Series([None] * len(frame))
        rows = zip(
            frame["user_id"].astype(str).tolist(),
            frame["item_idx"].astype(int).tolist(),
            frame["ts"].astype(float).tolist(),
            [None if pd.isna(r) else float(r) for r in rating.tolist()],
        )
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO interactions(user_id, item_idx, ts, rating) VALUES (?, ?, ?, ?)", rows
            )
        return len(frame)

    def interactions_frame(self) -> pd.DataFrame:
        """All interactions sorted by user, time and file order (``user_id, item_idx, ts``)."""
        return pd.read_sql_query(
            "SELECT user_id, item_idx, ts FROM interactions ORDER BY user_id, ts, id", self.db.conn
        )

    def user_history(self, user_id: str) -> list[int]:
        rows = self.db.execute(
            "SELECT item_idx FROM interactions WHERE user_id = ? ORDER BY ts, id", [user_id]
        ).fetchall()
        return [r[0] for r in rows]

    def users(self, limit: int | None = None, like: str | None = None) -> list[tuple[str, int]]:
        """(user_id, number of interactions), most active first."""
        sql = "SELECT user_id, count(*) AS n FROM interactions"
        args: list = []
        if like:
            sql += " WHERE user_id LIKE ?"
            args.append(f"%{like}%")
        sql += " GROUP BY user_id ORDER BY n DESC, user_id"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [(u, n) for u, n in self.db.execute(sql, args).fetchall()]

    def repeat_share(self) -> float:
        """Share of interactions that repeat an item the same user had before (0.0: nobody
        repeats, so a recommender should leave a user's history out of its list)."""
        total, distinct = self.db.execute(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT user_id, item_idx FROM interactions)) "
            "FROM interactions").fetchone()
        return (total - distinct) / total if total else 0.0


    # -- queries

    def query_count(self, split: str | None = None) -> int:
        if split is None:
            return self.db.execute("SELECT count(*) FROM queries").fetchone()[0]
        return self.db.execute("SELECT count(*) FROM queries WHERE split = ?", [split]).fetchone()[0]

    def add_queries(self, frame: pd.DataFrame, *, source: str = "imported", protocol: dict | None = None) -> int:
        """Append queries: columns ``text``, ``item_idx`` and optional ``query_id``, ``split``,
        ``user_id``, ``ts``. ``protocol`` records how generated queries were made."""
        n = len(frame)

        def col(name: str, default: Any = None) -> list:
            if name not in frame:
                return [default] * n
            return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in frame[name].tolist()]

        rows = zip(
            [None if q is None else str(q) for q in col("query_id")],
            frame["text"].astype(str).tolist(),
            frame["item_idx"].astype(int).tolist(),
            [s or "train" for s in col("split", "train")],
            [None if u is None else str(u) for u in col("user_id")],
            [None if t is None else float(t) for t in col("ts")],
            [source] * n,
            [None if protocol is None else _json(protocol)] * n,
        )
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO queries(query_id, text, item_idx, split, user_id, ts, source, protocol) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return n

    def queries_frame(self, split: str | None = None, source: str | None = None) -> pd.DataFrame:
        sql = "SELECT id, query_id, text, item_idx, split, user_id, ts, source FROM queries"
        where, args = [], []
        if split is not None:
            where.append("split = ?")
            args.append(split)
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return pd.read_sql_query(sql + " ORDER BY id", self.db.conn, params=args)

    def delete_queries(self, source: str | None = None) -> int:
        with self.atomic():
            if source is None:
                cur = self.db.execute("DELETE FROM queries")
            else:
                cur = self.db.execute("DELETE FROM queries WHERE source = ?", [source])
        return cur.rowcount
