"""What a project makes from its catalogue: embedding sets and quantiser runs (SID tables)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ProjectError
from ..wording import hint
from .encoding import _json, _loads, _payload, now_iso
from .records import EmbeddingSet, QuantizerRun


class ArtifactTables:
    """``embedding_sets`` (item vectors and what made them) and ``quantizer_runs`` +
    ``sid_assignments`` (a quantiser's spec, codebooks, metrics and every item's SID; one run is
    the project's active SID table).

    A part of :class:`~semid_studio.core.store.project.ProjectStore` (it uses the store's
    ``db``, ``atomic`` and ``read_arrays``)."""

    # -- embedding sets

    def save_embedding_set(
        self,
        *,
        name: str,
        model: str,
        template: str | None,
        strategy: str,
        cache_key: str,
        vectors: np.ndarray,
        params: dict | None = None,
    ) -> int:
        """Store an embedding set; ``vectors`` may be a ``streamed.StreamedArray`` (read block by
        block inside this transaction, never whole in memory)."""
        if hasattr(vectors, "stream_payload"):
            payload = vectors.stream_payload("vectors")
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            payload = _payload({"vectors": vectors})
        if len(vectors.shape) != 2:
            raise ValueError("vectors must be 2-D")
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO embedding_sets(name, model, template, strategy, cache_key, n_items, dim, "
                "params, vectors, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, model, template, strategy, cache_key, int(vectors.shape[0]), int(vectors.shape[1]),
                 _json(params or {}), payload.value, now_iso()],
            )
            set_id = int(cur.lastrowid)
            self._store_chunks("embedding_sets", set_id, "vectors", payload)
        return set_id

    _EMB_COLS = "id, name, model, template, strategy, cache_key, n_items, dim, params, created"

    def _embedding_from_row(self, row: tuple) -> EmbeddingSet:
        id_, name, model, template, strategy, key, n, dim, params, created = row
        return EmbeddingSet(id_, name, model, template, strategy, key, n, dim, _loads(params, {}), created)

    def list_embedding_sets(self) -> list[EmbeddingSet]:
        rows = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets ORDER BY id").fetchall()
        return [self._embedding_from_row(r) for r in rows]

    def find_embedding_set(self, cache_key: str) -> EmbeddingSet | None:
        """The newest set made with this cache key (model + template + strategy), without vectors."""
        row = self.db.execute(
            f"SELECT {self._EMB_COLS} FROM embedding_sets WHERE cache_key = ? ORDER BY id DESC LIMIT 1",
            [cache_key],
        ).fetchone()
        return None if row is None else self._embedding_from_row(row)

    def load_embedding_set(self, set_id: int | None = None) -> EmbeddingSet:
        """An embedding set with its vectors; the newest one when ``set_id`` is None."""
        if set_id is None:
            row = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise ProjectError(f"{self.path}: has no embeddings yet; {hint('embed')} first")
        else:
            row = self.db.execute(f"SELECT {self._EMB_COLS} FROM embedding_sets WHERE id = ?", [set_id]).fetchone()
            if row is None:
                raise ProjectError(f"{self.path}: no embedding set #{set_id}")
        emb = self._embedding_from_row(row)
        emb.vectors = self.read_arrays("embedding_sets", "vectors", emb.id, needs="vectors")["vectors"]
        return emb


    # -- quantiser runs and SIDs

    def save_quantizer_run(
        self,
        *,
        name: str,
        embedding_set_id: int,
        method: str,
        spec: dict,
        seed: int,
        codes: np.ndarray,
        sid_strings: Sequence[str],
        metrics: dict,
        codebooks: dict[str, np.ndarray] | None = None,
        model_state: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Store a run and the SID of every item, in one transaction."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or len(sid_strings) != codes.shape[0]:
            raise ValueError("codes must be (n_items, levels + 1) with one SID string per item")
        payloads = {"codebooks": _payload(codebooks), "model_state": _payload(model_state),
                    "codes": _payload({"codes": codes.astype(np.int32)})}
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO quantizer_runs(name, embedding_set_id, method, spec, seed, n_items, n_levels, "
                "metrics, codebooks, model_state, codes, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, int(embedding_set_id), method, _json(spec), int(seed), int(codes.shape[0]),
                 int(codes.shape[1] - 1), _json(metrics), payloads["codebooks"].value,
                 payloads["model_state"].value, payloads["codes"].value, now_iso()],
            )
            run_id = int(cur.lastrowid)
            for col, payload in payloads.items():
                self._store_chunks("quantizer_runs", run_id, col, payload)
            self.db.conn.executemany(
                "INSERT INTO sid_assignments(run_id, item_idx, sid) VALUES (?, ?, ?)",
                ((run_id, i, s) for i, s in enumerate(sid_strings)),
            )
        return run_id

    _RUN_COLS = "id, name, embedding_set_id, method, spec, seed, n_items, n_levels, metrics, created"

    def _run_from_row(self, row: tuple) -> QuantizerRun:
        id_, name, emb, method, spec, seed, n, levels, metrics, created = row
        return QuantizerRun(id_, name, emb, method, _loads(spec, {}), seed, n, levels, _loads(metrics, {}), created)

    def list_quantizer_runs(self) -> list[QuantizerRun]:
        rows = self.db.execute(f"SELECT {self._RUN_COLS} FROM quantizer_runs ORDER BY id").fetchall()
        return [self._run_from_row(r) for r in rows]

    def load_quantizer_run(self, run_id: int | None = None, *, with_arrays: bool = True) -> QuantizerRun:
        """A quantiser run with codes, codebooks and model state; the active run when None."""
        if run_id is None:
            run_id = self.active_run_id()
            if run_id is None:
                raise ProjectError(f"{self.path}: has no Semantic IDs yet; {hint('quantize')} first")
        row = self.db.execute(f"SELECT {self._RUN_COLS} FROM quantizer_runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise ProjectError(f"{self.path}: no quantiser run #{run_id}")
        run = self._run_from_row(row)
        if with_arrays:
            run.codes = self.read_arrays("quantizer_runs", "codes", run_id, needs="codes")["codes"].astype(np.int64)
            run.codebooks = self.read_arrays("quantizer_runs", "codebooks", run_id)
            run.model_state = self.read_arrays("quantizer_runs", "model_state", run_id)
        return run

    def update_run_metrics(self, run_id: int, metrics: dict) -> None:
        with self.atomic():
            self.db.execute("UPDATE quantizer_runs SET metrics = ? WHERE id = ?", [_json(metrics), run_id])

    def active_run_id(self) -> int | None:
        """The run whose SIDs the project uses (the user's choice, else the newest)."""
        chosen = self.get_meta("active_run")
        if chosen is not None and self.db.execute(
            "SELECT 1 FROM quantizer_runs WHERE id = ?", [chosen]
        ).fetchone():
            return int(chosen)
        row = self.db.execute("SELECT max(id) FROM quantizer_runs").fetchone()
        return None if row[0] is None else int(row[0])

    def set_active_run(self, run_id: int) -> None:
        self.load_quantizer_run(run_id, with_arrays=False)  # raises if unknown
        self.set_meta("active_run", int(run_id))

    def sid_of(self, run_id: int, item_idx: int) -> str | None:
        row = self.db.execute(
            "SELECT sid FROM sid_assignments WHERE run_id = ? AND item_idx = ?", [run_id, item_idx]
        ).fetchone()
        return None if row is None else row[0]

    def items_with_sid_prefix(self, run_id: int, prefix: str, limit: int | None = None) -> list[int]:
        """Item idxs whose SID string starts with ``prefix`` (e.g. ``<a_12><b_200>``)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = "SELECT item_idx FROM sid_assignments WHERE run_id = ? AND sid LIKE ? ESCAPE '\\' ORDER BY sid"
        args: list = [run_id, escaped + "%"]
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self.db.execute(sql, args).fetchall()]
