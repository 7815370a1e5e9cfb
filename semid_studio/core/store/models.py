"""The generative side of a project: models, their checkpoints and evaluation reports."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ProjectError
from .encoding import _Payload, _json, _loads, _payload, encode_arrays, now_iso
from .records import Checkpoint, ModelRecord


def model_lease(model_id: int) -> str:
    """The lease a trainer holds on its model (two processes never train one model at once)."""
    return f"model:{int(model_id)}"


class ModelTables:
    """``models`` (settings, status, history), ``checkpoints`` (weights and training state by
    tag) and ``evaluations`` (every stored report, of any task).

    A part of :class:`~semid_studio.core.store.project.ProjectStore` (it uses the store's
    ``db``, ``atomic``, ``read_arrays`` and ``live_lease``)."""

    # -- generative models and checkpoints

    _MODEL_COLS = "id, name, kind, quantizer_run_id, spec, status, step, best_step, best_metric, history, created, updated"

    def create_model(self, *, name: str, kind: str, quantizer_run_id: int | None, spec: dict) -> int:
        stamp = now_iso()
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO models(name, kind, quantizer_run_id, spec, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
                [name, kind, quantizer_run_id, _json(spec), stamp, stamp],
            )
        return int(cur.lastrowid)

    def _model_from_row(self, row: tuple) -> ModelRecord:
        (id_, name, kind, run, spec, status, step, best_step, best_metric, history, created, updated) = row
        if status == "running" and self.live_lease(model_lease(id_)) is None:
            # a trainer killed without a word (kill -9, a power cut) leaves 'running' behind
            status = "interrupted"
        return ModelRecord(id_, name, kind, run, _loads(spec, {}), status, step, best_step, best_metric,
                           _loads(history, []), created, updated)

    def list_models(self, kind: str | None = None) -> list[ModelRecord]:
        sql = f"SELECT {self._MODEL_COLS} FROM models"
        args = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        return [self._model_from_row(r) for r in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def get_model(self, model_id: int) -> ModelRecord:
        row = self.db.execute(f"SELECT {self._MODEL_COLS} FROM models WHERE id = ?", [model_id]).fetchone()
        if row is None:
            raise ProjectError(f"{self.path}: no model #{model_id}")
        return self._model_from_row(row)

    def update_model(self, model_id: int, **fields: Any) -> None:
        allowed = {"name", "status", "step", "best_step", "best_metric", "history", "spec"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update model fields {sorted(bad)}")
        sets, args = [], []
        for key, value in fields.items():
            sets.append(f"{key} = ?")
            args.append(_json(value) if key in ("history", "spec") else value)
        sets.append("updated = ?")
        args.append(now_iso())
        with self.atomic():
            self.db.execute(f"UPDATE models SET {', '.join(sets)} WHERE id = ?", [*args, model_id])

    def save_checkpoint(
        self,
        model_id: int,
        tag: str,
        step: int,
        weights: dict[str, np.ndarray],
        train_state: dict[str, np.ndarray] | None = None,
        extra: dict | None = None,
    ) -> None:
        """Replace the model's checkpoint with this tag (``best``, ``last``)."""
        payloads = {"weights": _payload(weights), "train_state": _payload(train_state)}
        if payloads["weights"].value is None:  # NOT NULL: a model without weights is still a checkpoint
            payloads["weights"] = _Payload(encode_arrays({}))
        with self.atomic():
            self.db.execute(
                "INSERT INTO checkpoints(model_id, tag, step, weights, train_state, extra, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_id, tag) DO UPDATE SET step = excluded.step, "
                "weights = excluded.weights, train_state = excluded.train_state, extra = excluded.extra, "
                "created = excluded.created",
                [model_id, tag, int(step), payloads["weights"].value, payloads["train_state"].value,
                 _json(extra or {}), now_iso()],
            )
            row_id = self.db.execute("SELECT id FROM checkpoints WHERE model_id = ? AND tag = ?",
                                     [model_id, tag]).fetchone()[0]
            for col, payload in payloads.items():
                self._store_chunks("checkpoints", row_id, col, payload)

    def checkpoint_tags(self) -> set[tuple[int, str]]:
        """Every ``(model_id, tag)`` that has a checkpoint, without reading any weights."""
        return {(int(m), str(t)) for m, t in self.db.execute("SELECT model_id, tag FROM checkpoints")}

    def has_checkpoint(self, model_id: int, tag: str = "best") -> bool:
        return self.db.execute("SELECT 1 FROM checkpoints WHERE model_id = ? AND tag = ?",
                               [model_id, tag]).fetchone() is not None

    def load_checkpoint(self, model_id: int, tag: str = "best") -> Checkpoint | None:
        row = self.db.execute(
            "SELECT id, step, extra FROM checkpoints WHERE model_id = ? AND tag = ?", [model_id, tag],
        ).fetchone()
        if row is None:
            return None
        row_id, step, extra = row
        where = f"model #{model_id}, '{tag}' checkpoint"
        return Checkpoint(model_id, tag, step, self.read_arrays("checkpoints", "weights", row_id, where=where),
                          self.read_arrays("checkpoints", "train_state", row_id, where=where), _loads(extra, {}))


    # -- evaluations

    def save_evaluation(
        self, *, name: str, task: str, split: str, settings: dict, metrics: dict, model_id: int | None = None
    ) -> int:
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO evaluations(name, model_id, task, split, settings, metrics, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [name, model_id, task, split, _json(settings), _json(metrics), now_iso()],
            )
        return int(cur.lastrowid)

    def list_evaluations(self, task: str | None = None) -> list[dict]:
        sql = "SELECT id, name, model_id, task, split, settings, metrics, created FROM evaluations"
        args = []
        if task:
            sql += " WHERE task = ?"
            args.append(task)
        out = []
        for id_, name, model_id, task_, split, settings, metrics, created in self.db.execute(sql + " ORDER BY id", args):
            out.append({"id": id_, "name": name, "model_id": model_id, "task": task_, "split": split,
                        "settings": _loads(settings, {}), "metrics": _loads(metrics, {}), "created": created})
        return out
