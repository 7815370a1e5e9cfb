"""EvaluationPanel: the project's quantiser runs with their health, and its evaluations.

Quantiser runs are listed with the code-health figures the core measured when each was fitted
(usage, unique share, collisions, purity, reconstruction error). Evaluations saved in the project
(the generative model and its baselines, Recall/NDCG@K on a stated split) are listed in a table
and one chosen metric is plotted across them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QSplitter, QTableView, QVBoxLayout, QWidget

from ..context import ProjectContext
from ..models.tables import RecordsTableModel

RUN_HEADERS = ["Run", "Name", "Method", "Levels × codes", "Unique before dedup", "Largest collision",
               "Mean usage", "Purity L1", "Purity L2", "Rel. recon. error", "Fit (s)", "Created"]


def _flat_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Nested metric dicts as ``a/b`` keys, numbers only."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat_metrics(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def run_row(run) -> tuple:
    m = run.metrics or {}
    per_level = m.get("per_level") or []
    usage = float(np.mean([lvl.get("usage", 0.0) for lvl in per_level])) if per_level else None
    purity = m.get("purity") or {}
    size = m.get("codebook_size") or (run.spec.get("codebook_size") if isinstance(run.spec, dict) else None)

    def pct(value):
        return "" if value is None else f"{100 * value:.1f}%"

    recon = m.get("relative_reconstruction_error")
    fit = m.get("fit_seconds")
    return (run.id, run.name, run.method, f"{run.n_levels} × {size}" if size else str(run.n_levels),
            pct(m.get("unique_share")), m.get("largest_collision_group", ""), pct(usage),
            pct(purity.get("level_1")), pct(purity.get("level_2")),
            "" if recon is None else f"{recon:.4f}", "" if fit is None else f"{fit:.1f}", run.created)


class EvaluationPanel(QWidget):
    """Runs, evaluations and a plot of one metric across evaluations."""

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.runs = RecordsTableModel(RUN_HEADERS, self)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs)
        self.runs_view.verticalHeader().hide()
        self.runs_view.horizontalHeader().setStretchLastSection(True)
        runs_box = QGroupBox("Quantiser runs and the health of their codes")
        rl = QVBoxLayout(runs_box)
        rl.addWidget(self.runs_view)

        self.evaluations = RecordsTableModel(["Evaluation"], self)
        self.eval_view = QTableView()
        self.eval_view.setModel(self.evaluations)
        self.eval_view.verticalHeader().hide()
        self.eval_view.horizontalHeader().setStretchLastSection(True)
        self.metric_combo = QComboBox()
        self.metric_combo.currentIndexChanged.connect(self._plot_metric)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.showGrid(y=True, alpha=0.3)
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=pg.mkBrush(70, 110, 190))
        self.plot.addItem(self._bars)
        self.eval_note = QLabel("")
        self.eval_note.setWordWrap(True)
        eval_box = QGroupBox("Evaluations (models and baselines, on a stated split)")
        el = QVBoxLayout(eval_box)
        el.addWidget(self.eval_note)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.eval_view)
        plot_side = QWidget()
        pl = QVBoxLayout(plot_side)
        pl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Metric"))
        row.addWidget(self.metric_combo, 1)
        pl.addLayout(row)
        pl.addWidget(self.plot, 1)
        split.addWidget(plot_side)
        self.eval_split = split
        el.addWidget(split, 1)

        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(runs_box)
        splitter.addWidget(eval_box)
        layout.addWidget(splitter)
        self._evals: list[dict] = []

        context.projectOpened.connect(self.refresh)
        context.contentChanged.connect(self.refresh)
        context.projectClosed.connect(self.refresh)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        store = self.context.store
        if store is None:
            self.runs.set_rows([])
            self._evals = []
            self.evaluations.set_rows([])
            self.metric_combo.clear()
            self.eval_note.setText("")
            self.eval_split.setVisible(False)
            return
        active = store.active_run_id()
        runs = store.list_quantizer_runs()
        self.runs.set_rows([run_row(r) for r in runs], [r.id for r in runs],
                           tooltips=[f"spec: {r.spec}" + ("  (active)" if r.id == active else "") for r in runs])
        self.runs_view.resizeColumnsToContents()
        self._evals = store.list_evaluations()
        metric_names = sorted({k for e in self._evals for k in _flat_metrics(e["metrics"])})
        headers = ["Name", "Task", "Split", "Model", *metric_names]
        self.evaluations.set_headers(headers)
        rows = []
        for e in self._evals:
            flat = _flat_metrics(e["metrics"])
            rows.append((e["name"], e["task"], e["split"], e["model_id"] or "", *[flat.get(k, "") for k in metric_names]))
        self.evaluations.set_rows(rows, [e["id"] for e in self._evals])
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(metric_names)
        self.metric_combo.blockSignals(False)
        self.eval_note.setText(
            f"{len(self._evals)} evaluations saved in this project." if self._evals else
            "No evaluations in this project yet: they appear here once a generative model and its "
            "baselines have been evaluated.")
        self.eval_split.setVisible(bool(self._evals))
        self._plot_metric()

    @Slot()
    def _plot_metric(self, *_args) -> None:
        name = self.metric_combo.currentText()
        values = [_flat_metrics(e["metrics"]).get(name) for e in self._evals] if name else []
        shown = [(i, v) for i, v in enumerate(values) if v is not None]
        xs = np.arange(len(shown), dtype=float)
        self._bars.setOpts(x=xs, height=[v for _i, v in shown], width=0.6)
        axis = self.plot.getPlotItem().getAxis("bottom")
        axis.setTicks([[(float(x), self._evals[i]["name"]) for x, (i, _v) in zip(xs, shown)]])
        self.plot.getPlotItem().setLabel("left", name)
        if shown:
            self.plot.autoRange()
