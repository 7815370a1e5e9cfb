"""EvaluationPanel: quantiser runs with their health; evaluations of models against baselines.

Quantiser runs are listed with the code-health figures the core measured when each was fitted
(usage, unique share, collisions, purity, reconstruction error). Evaluations saved in the project
are listed one row per method (the generative model and each baseline of the same report,
Recall/NDCG@K on the stated split, mean ± spread over seeds); the selected evaluation is
plotted as grouped bars, one colour per method. "Evaluate" runs
:func:`semid_studio.core.generative.evaluate_model` on a trained model as a cancellable task
(stored in the project like the CLI's ``semid evaluate``).
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...core.events import Message, Progress
from ..context import ProjectContext
from ..models.tables import RecordsTableModel
from ..plots import code_colors
from ..search import evaluate_query_file, query_file_summary
from ..widgets import cancel_job, fill_model_combo, show_progress
from .import_wizard import choose_query_file

RUN_HEADERS = ["Run", "Name", "Method", "Levels × codes", "Unique before dedup", "Largest collision",
               "Mean usage", "Purity L1", "Purity L2", "Rel. recon. error", "Fit (s)", "Created"]


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


#: the model in a strong blue, the baselines in quieter colours (the same in every evaluation)
METHOD_COLORS = {"tiger": (52, 101, 164), "popularity": (170, 170, 170), "markov": (230, 145, 56),
                 "sasrec": (115, 170, 90), "sasrec-ss": (60, 140, 60)}


def evaluation_methods(evaluation: dict) -> list[tuple[str, dict[str, tuple[float, float | None]]]]:
    """``[(method, {metric: (mean, std or None)})]`` of one stored evaluation.

    A recommendation report (``evaluate_model``) has one entry per method with a ``summary``
    of mean / std / n over seeds; a joint model's rec report (``per_seed`` + ``summary``) is
    one method named after the evaluation; any other evaluation is read as one method (its
    name) with its top-level numbers.
    """
    metrics = evaluation.get("metrics") or {}
    if isinstance(metrics.get("summary"), dict) and "per_seed" in metrics:
        # one model's recommendation figures without baselines (a joint model's rec side)
        metrics = {str(evaluation.get("name")): {"summary": metrics["summary"]}}
    if metrics and all(isinstance(v, dict) and "summary" in v for v in metrics.values()):
        out = []
        for method, entry in metrics.items():
            values: dict[str, tuple[float, float | None]] = {}
            for name, v in (entry.get("summary") or {}).items():
                if isinstance(v, dict) and isinstance(v.get("mean"), (int, float)):
                    values[name] = (float(v["mean"]), float(v["std"]) if v.get("n", 1) > 1 and v.get("std") is not None
                                    else None)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    values[name] = (float(v), None)
            out.append((method, values))
        # the model first, then the baselines from the simplest (the store keeps JSON keys sorted);
        # a query file's report names its joint models "joint #N" and its search baselines after the method
        order = {"tiger": 0, "popularity": 1, "markov": 2, "sasrec": 3, "sasrec-ss": 4, "bm25": 5}
        return sorted(out, key=lambda mv: (0 if mv[0].startswith("joint") else order.get(mv[0], 9), mv[0]))
    flat = {k: (float(v), None) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"}
    return [(str(evaluation.get("name")), flat)]


def _color_key(method: str) -> str:
    """A joint model in a query file's report ("joint #N") gets the model's colour."""
    return "tiger" if method.startswith("joint") else method


def metric_order(name: str) -> tuple:
    """recall@5, ndcg@5, recall@10, ... then metrics without a cut-off."""
    match = re.fullmatch(r"([a-z_]+)@(\d+)", name)
    if match:
        base = {"recall": 0, "ndcg": 1, "mrr": 2}.get(match.group(1), 3)
        return 0, int(match.group(2)), base, name
    return 1, 0, 0, name


def _cell(value: tuple[float, float | None] | None):
    if value is None:
        return ""
    mean, std = value
    return f"{mean:.4f} ± {std:.4f}" if std is not None else round(mean, 4)


class EvaluationPanel(QWidget):
    """Quantiser runs; evaluations (models against baselines) in a table and a plot; run an evaluation."""

    JOB_KEY = "evaluation"

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        runs_box = self._build_runs_box()
        run_row, run_row2, action_row = self._build_run_controls()
        eval_box = self._build_eval_box(run_row, run_row2, action_row)
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(runs_box)
        splitter.addWidget(eval_box)
        splitter.setSizes([150, 600])
        splitter.setStretchFactor(1, 3)
        layout.addWidget(splitter)
        self._evals: list[dict] = []
        self.shown_evaluation: int | None = None
        self._job = None
        self.last_status = ""

        context.projectOpened.connect(self.refresh)
        context.contentChanged.connect(self.refresh)
        context.modelsChanged.connect(self._refresh_models)
        context.projectClosed.connect(self.refresh)
        self.refresh()

    def _build_runs_box(self) -> QGroupBox:
        """The quantiser runs and the health of their codes."""
        self.runs = RecordsTableModel(RUN_HEADERS, self)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs)
        self.runs_view.verticalHeader().hide()
        self.runs_view.horizontalHeader().setStretchLastSection(True)
        runs_box = QGroupBox("Quantiser runs and the health of their codes")
        rl = QVBoxLayout(runs_box)
        rl.addWidget(self.runs_view)
        return runs_box

    def _build_run_controls(self) -> tuple[QHBoxLayout, QHBoxLayout, QHBoxLayout]:
        """Run an evaluation: the model, K, the baselines; evaluate, a query file, cancel, progress."""
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.ks_edit = QLineEdit("5,10,20")
        self.ks_edit.setMaximumWidth(90)
        self.ks_edit.setToolTip("Cut-offs K for Recall@K and NDCG@K")
        self.baseline_checks = {name: QCheckBox(label) for name, label in
                                (("popularity", "popularity"), ("markov", "Markov chain"), ("sasrec", "SASRec"),
                                 ("sasrec-ss", "SASRec-SS"))}
        self.baseline_checks["popularity"].setChecked(True)
        self.baseline_checks["markov"].setChecked(True)
        self.baseline_checks["sasrec"].setToolTip("Trains SASRec (softmax over every item) on the same split "
                                                  "(minutes on a big catalogue)")
        self.baseline_checks["sasrec-ss"].setToolTip("Trains SASRec with sampled softmax (256 negatives, as in "
                                                     "gSASRec / eSASRec) on the same split")
        self.exclude_history_check = QCheckBox("Leave out history items")
        self.exclude_history_check.setToolTip(
            "The seen-item filter: each test user's own history items are left out of every method's list "
            "(model and baselines alike). Right where the next item is never a repeat, e.g. review data; "
            "the evaluation records it.")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Full-catalogue Recall/NDCG@K on the test split, with the baselines; "
                                        "saved in the project")
        self.evaluate_button.clicked.connect(self.start_evaluation)
        self.file_button = QPushButton("Evaluate on a query file…")
        self.file_button.setToolTip("Score a query log that is not in the project (a file of request text and the "
                                    "item it asks for, read as the import reads it) with the newest joint model and "
                                    "the search baselines. Its queries are never stored or trained on; only the "
                                    "figures, the file's name and its checksum are saved")
        self.file_button.clicked.connect(self.start_file_evaluation)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_evaluation)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(200)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Model"))
        run_row.addWidget(self.model_combo, 1)
        run_row.addWidget(QLabel("K"))
        run_row.addWidget(self.ks_edit)
        # On the model row, not the baselines row: that row already sets the panel's minimum width.
        run_row.addWidget(self.exclude_history_check)
        run_row2 = QHBoxLayout()
        run_row2.addWidget(QLabel("Baselines"))
        for check in self.baseline_checks.values():
            run_row2.addWidget(check)
        run_row2.addStretch(1)
        action_row = QHBoxLayout()  # a row of its own: with the baselines it would widen the window
        action_row.addWidget(self.evaluate_button)
        action_row.addWidget(self.file_button)
        action_row.addWidget(self.cancel_button)
        action_row.addWidget(self.progress, 1)
        return run_row, run_row2, action_row

    def _build_eval_box(self, run_row: QHBoxLayout, run_row2: QHBoxLayout, action_row: QHBoxLayout) -> QGroupBox:
        """The stored evaluations: their list beside the bar chart of the one chosen, under the controls."""
        self.evaluations = RecordsTableModel(["Evaluation"], self)
        self.eval_view = QTableView()
        self.eval_view.setModel(self.evaluations)
        self.eval_view.verticalHeader().hide()
        self.eval_view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.eval_view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.eval_view.horizontalHeader().setStretchLastSection(True)
        self.eval_view.selectionModel().currentRowChanged.connect(self._on_row_changed)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.showGrid(y=True, alpha=0.3)
        self._legend = self.plot.getPlotItem().addLegend(offset=(10, 5), colCount=4)
        self.plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)  # 0.05, not "50 (x0.001)"
        self.plot.getPlotItem().getAxis("left").setZValue(-100)  # its grid lines behind the bars
        self.bars: dict[str, pg.BarGraphItem] = {}
        self._error_bars: list[pg.ErrorBarItem] = []
        self.eval_note = QLabel("")
        self.eval_note.setWordWrap(True)
        eval_box = QGroupBox("Evaluations: models against baselines, on a stated split")
        el = QVBoxLayout(eval_box)
        el.addLayout(run_row)
        el.addLayout(run_row2)
        el.addLayout(action_row)
        el.addWidget(self.status)
        el.addWidget(self.eval_note)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.eval_view)
        split.addWidget(self.plot)
        split.setSizes([620, 480])
        self.eval_split = split
        el.addWidget(split, 1)
        return eval_box

    # -- lists

    @Slot()
    def refresh(self) -> None:
        store = self.context.store
        self._refresh_models()
        if store is None:
            self.runs.set_rows([])
            self._evals = []
            self.evaluations.set_rows([])
            self.eval_note.setText("")
            self.status.setText("")
            self.eval_split.setVisible(False)
            self._plot(None)
            return
        active = store.active_run_id()
        runs = store.list_quantizer_runs()
        self.runs.set_rows([run_row(r) for r in runs], [r.id for r in runs],
                           tooltips=[f"spec: {r.spec}" + ("  (active)" if r.id == active else "") for r in runs])
        self.runs_view.resizeColumnsToContents()
        self._evals = store.list_evaluations()
        table = [(e, method, values) for e in self._evals for method, values in evaluation_methods(e)]
        names = sorted({k for _e, _m, values in table for k in values}, key=metric_order)
        self.evaluations.set_headers(["Evaluation", "Method", "Split", "Test cases", *names])
        rows, keys, tips = [], [], []
        for e, method, values in table:
            settings = e.get("settings") or {}
            split = e["split"] + (", history left out" if settings.get("exclude_history")
                                  or settings.get("rec_exclude_history") else "")
            rows.append((f"#{e['id']}: {e['name']}", method, split, settings.get("n_test", ""),
                         *[_cell(values.get(k)) for k in names]))
            keys.append(e["id"])
            tips.append(self._describe(e))
        self.evaluations.set_rows(rows, keys, tooltips=tips)
        self.eval_view.resizeColumnsToContents()
        self.eval_note.setText(
            f"{len(self._evals)} evaluation{'s' if len(self._evals) != 1 else ''} saved in this project; the plot "
            "shows the selected one (bars: mean, whiskers: spread over seeds)." if self._evals else
            "No evaluations in this project yet: train a generative model (Training view), then press "
            "Evaluate.")
        self.eval_split.setVisible(bool(self._evals))
        if self._evals:
            keep = self.shown_evaluation if self.shown_evaluation in keys else self._evals[-1]["id"]
            self.select_evaluation(keep)
        else:
            self._plot(None)

    @staticmethod
    def _describe(e: dict) -> str:
        s = e.get("settings") or {}
        parts = [f"{e['name']} ({e['task']}, split {e['split']}, {e['created']})"]
        if s.get("model_ids"):
            parts.append(f"models {s['model_ids']}, seeds {s.get('seeds')}, beam {s.get('beam')}, "
                         f"{s.get('n_items')} items (full catalogue), checkpoint: {s.get('checkpoint')}")
        f = s.get("file") if s.get("method") == "query-file" else None
        if f:
            parts.append(f"query file {f.get('path')} (sha256 {str(f.get('sha256'))[:16]}…), not stored in the project: "
                         f"{f.get('rows')} rows, {f.get('requests')} requests scored, "
                         f"{f.get('n_dropped_unknown_items', 0)} left out (item not in the catalogue), "
                         f"{(s.get('leakage') or {}).get('overlap', 0)} also training queries of the project")
        if s.get("exclude_history"):
            parts.append("each user's history items left out of every method's list "
                         f"({s.get('test_repeat_share', 0.0):.1%} of test targets repeat a history item)")
        return "\n".join(parts)

    @Slot()
    def _refresh_models(self) -> None:
        fill_model_combo(self.model_combo, self.context.store, newest_entry="the newest model (and its other seeds)")
        self._update_buttons()

    def _update_buttons(self) -> None:
        can = self.context.is_open and self.model_combo.count() > 0
        self.evaluate_button.setEnabled(can and self._job is None)
        self.file_button.setEnabled(self.context.is_open and self._job is None)
        self.cancel_button.setEnabled(self._job is not None)
        if self.context.is_open and not self.model_combo.count() and self._job is None and not self.status.text():
            # (not over what the last run said: a query file can be scored without a recommender)
            self.status.setText("Train a generative model (Training) to evaluate it here.")

    def select_evaluation(self, evaluation_id: int) -> None:
        """Show one evaluation in the plot (and select its first row)."""
        for row in range(self.evaluations.rowCount()):
            if self.evaluations.key(row) == evaluation_id:
                self.eval_view.selectRow(row)
                break
        self._plot(evaluation_id)

    def _on_row_changed(self, current, _previous) -> None:
        key = self.evaluations.key(current.row()) if current.isValid() else None
        if key is not None and key != self.shown_evaluation:
            self._plot(key)

    def _plot(self, evaluation_id: int | None) -> None:
        """Grouped bars of the evaluation's ranking metrics, one colour per method."""
        plot = self.plot.getPlotItem()
        for item in [*self.bars.values(), *self._error_bars]:
            plot.removeItem(item)
        self._legend.clear()
        self.bars, self._error_bars = {}, []
        self.shown_evaluation = evaluation_id
        e = next((x for x in self._evals if x["id"] == evaluation_id), None)
        if e is None:
            plot.setTitle("")
            return
        methods = evaluation_methods(e)
        names = sorted({k for _m, v in methods for k in v if "@" in k}, key=metric_order)
        width = 0.8 / max(1, len(methods))
        extra = iter(code_colors(len(methods) + 4)[4:])
        colors = [QColor(*METHOD_COLORS[_color_key(m)]) if _color_key(m) in METHOD_COLORS else next(extra)
                  for m, _v in methods]
        xs = np.arange(len(names), dtype=float)
        for i, (method, values) in enumerate(methods):
            heights = [values.get(k, (0.0, None))[0] for k in names]
            x = xs - 0.4 + width * (i + 0.5)
            bars = pg.BarGraphItem(x=x, height=heights, width=width * 0.9, brush=pg.mkBrush(colors[i]),
                                   pen=pg.mkPen(colors[i].darker(130)))
            plot.addItem(bars)
            self._legend.addItem(bars, method)
            self.bars[method] = bars
            stds = [values.get(k, (0.0, None))[1] for k in names]
            if any(s for s in stds):
                err = pg.ErrorBarItem(x=x, y=np.asarray(heights), height=2 * np.asarray([s or 0.0 for s in stds]),
                                      beam=width * 0.4, pen=pg.mkPen("k"))
                plot.addItem(err)
                self._error_bars.append(err)
        plot.getAxis("bottom").setTicks([[(float(x), n) for x, n in zip(xs, names)]])
        plot.setTitle(f"Evaluation #{e['id']}: {e['name']} (split {e['split']})")
        from_file = (e.get("settings") or {}).get("method") == "query-file"
        plot.setLabel("left", f"value on {e['split']}" if from_file else "value on the test split")
        if names:
            plot.setXRange(-0.6, len(names) - 0.4, padding=0)
            top = max((v[0] + (v[1] or 0.0) for _m, vals in methods for k, v in vals.items() if k in names),
                      default=1.0)
            plot.setYRange(0, top * 1.25 or 1.0, padding=0)  # headroom for the legend

    # -- running an evaluation

    @Slot()
    def start_evaluation(self) -> None:
        if self._job is not None or not self.context.is_open:
            return
        try:
            ks = tuple(int(x) for x in self.ks_edit.text().replace(" ", "").split(",") if x)
            if not ks or min(ks) <= 0:
                raise ValueError
        except ValueError:
            self.context.report_error(f"K must be positive whole numbers separated by commas, e.g. 5,10,20; "
                                      f"got '{self.ks_edit.text()}'")
            return
        model_id = self.model_combo.currentData()
        baselines = tuple(name for name, check in self.baseline_checks.items() if check.isChecked())
        exclude_history = self.exclude_history_check.isChecked()

        def body(store, cancel):
            from ...core.generative import evaluate_model

            return (yield from evaluate_model(store, None if model_id is None else [model_id], ks=ks,
                                              baselines=baselines, exclude_history=exclude_history,
                                              cancel=cancel))

        self.progress.setRange(0, 0)
        self.status.setText("Evaluating on the test split…")
        self.last_status = "running"
        self._job = self.context.submit("Evaluating the generative model", body, key=self.JOB_KEY,
                                        on_event=self._on_event, on_result=self._on_result,
                                        on_error=self._on_error, on_done=self._on_done)
        self._update_buttons()

    @Slot()
    def start_file_evaluation(self) -> None:
        """Ask for a query file and score it with the newest joint model and the search baselines."""
        if self._job is not None or not self.context.is_open:
            return
        path = choose_query_file(self)
        if not path:
            return

        def body(store, cancel):
            return (yield from evaluate_query_file(store, path, cancel=cancel))

        self.progress.setRange(0, 0)
        self.status.setText(f"Evaluating on {path}…")
        self.last_status = "running"
        self._job = self.context.submit("Evaluating on a query file", body, key=self.JOB_KEY,
                                        on_event=self._on_event, on_result=self._on_file_result,
                                        on_error=self._on_error, on_done=self._on_done)
        self._update_buttons()

    def _on_file_result(self, report: dict) -> None:
        self.last_status = "done"
        self.status.setText(query_file_summary(report))
        self.shown_evaluation = report["id"]
        self.context.contentChanged.emit()

    @Slot()
    def cancel_evaluation(self) -> None:
        cancel_job(self._job, self.status)

    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            show_progress(self.progress, self.status, event)
        elif isinstance(event, Message):
            self.context.message.emit(event.level, event.text)

    def _on_result(self, report: dict) -> None:
        self.last_status = "done"
        eval_id = report.get("evaluation_id")
        s = report["settings"]
        self.status.setText(f"Saved evaluation #{eval_id}: {s['n_test']:,} test users, {s['n_items']:,} items, "
                            f"split {s['split']}, beam {s['beam']}.")
        self.shown_evaluation = eval_id
        self.context.contentChanged.emit()

    def _on_error(self, message: str) -> None:
        self.last_status = "failed"
        self.status.setText(f"Failed: {message}")
        self.context.report_error(message)

    def _on_done(self) -> None:
        if self.last_status == "running":
            self.last_status = "cancelled"
            self.status.setText("Cancelled; nothing was saved.")
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000 if self.last_status == "done" else 0)
        self._job = None
        self._update_buttons()
