"""StrategiesPanel: search recall against rec recall, one point per joint model (the SIDs of one
embedding strategy, one seed), the baselines as reference lines.

The points and lines come from the evaluations stored in the project
(:func:`semid_studio.gui.search.strategy_points`): a joint model's search evaluation (held-out
queries) and rec evaluation (test users), both written by ``evaluate_joint``; BM25 and dense
retrieval (``evaluate_search``) as vertical lines; popularity and the Markov chain as
horizontal lines. *Evaluate* runs what is missing in a worker (progress, cancel). Selecting a
point (on the plot or in the table) shows what made it — model, SIDs, embeddings, evaluations —
and offers its SID run in the tree and the model in the playground. Two SID spaces are compared
side by side by the SID tree's *Compare runs* view, opened preselected from here.
"""

from __future__ import annotations

import html
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...core.events import Message, Progress
from ..context import ProjectContext
from ..models.tables import RecordsTableModel
from ..search import (STRATEGY_LABELS, StrategiesData, StrategyPoint, describe_point, evaluate_query_file,
                      heldout_count, list_joint_models, query_file_evaluations, query_file_summary,
                      run_strategy_evaluations, sid_spaces, strategy_points)
from ..widgets import cancel_job, show_progress
from .import_wizard import choose_query_file

#: one colour per embedding strategy (the same in every project)
STRATEGY_COLORS = {"content": (90, 90, 90), "search": (31, 119, 180), "rec": (214, 39, 40),
                   "multitask": (44, 160, 44), "fused-concat": (148, 103, 189), "fused-svd": (255, 127, 14),
                   "imported": (140, 86, 75), "separate": (227, 119, 194), "prefix-share": (188, 189, 34)}
LINE_COLORS = {"BM25": (120, 120, 120), "popularity": (120, 120, 120), "Markov chain": (60, 60, 60)}


def _short(metric: str) -> str:
    """recall@30 -> R@30, ndcg@10 -> N@10 (table headers)."""
    name, _, k = metric.partition("@")
    short = {"recall": "R", "ndcg": "N"}.get(name, name)
    return f"{short}@{k}" if k else metric


class StrategyPlot(pg.PlotWidget):
    """Search metric (x) against rec metric (y): a point per joint model, baselines as lines."""

    #: a point was clicked (its row in the panel's table)
    clickedPoint = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        plot = self.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.15)
        for axis in ("bottom", "left"):
            plot.getAxis(axis).enableAutoSIPrefix(False)  # recalls read as they are, not "x0.001"
        self._legend = plot.addLegend(offset=(10, 10))
        self._scatters: list[pg.ScatterPlotItem] = []
        self._selected = pg.ScatterPlotItem(size=20, pxMode=True, pen=pg.mkPen("k", width=2.5), brush=None)
        self._selected.setZValue(20)
        self.addItem(self._selected)
        self._lines: list[pg.InfiniteLine] = []
        self._line_names: list[str] = []
        self._xy: list[tuple[float, float] | None] = []

    def set_data(self, points: list[StrategyPoint], lines, x_metric: str, y_metric: str) -> None:
        """Draw the points that have both values, and every line of the chosen metrics."""
        plot = self.getPlotItem()
        for item in [*self._scatters, *self._lines]:
            plot.removeItem(item)
        self._legend.clear()
        self._scatters, self._lines, self._line_names = [], [], []
        self._selected.setData([], [])
        self._xy = [None] * len(points)
        groups: dict[str, list[int]] = {}
        for row, p in enumerate(points):
            x, y = p.value("search", x_metric), p.value("rec", y_metric)
            if x is not None and y is not None:
                self._xy[row] = (x, y)
                groups.setdefault(p.strategy, []).append(row)
        xs = [xy[0] for xy in self._xy if xy is not None]
        ys = [xy[1] for xy in self._xy if xy is not None]
        for strategy, rows in groups.items():
            color = QColor(*STRATEGY_COLORS.get(strategy, (23, 190, 207)))
            scatter = pg.ScatterPlotItem(size=12, pxMode=True, pen=pg.mkPen(color.darker(150), width=1),
                                         brush=pg.mkBrush(color), hoverable=True, hoverSize=15,
                                         tip=lambda x, y, data, p=points: f"{p[data].label} (#{p[data].model_id})\n"
                                                                          f"search {x:.4f}, rec {y:.4f}")
            scatter.addPoints(x=[self._xy[r][0] for r in rows], y=[self._xy[r][1] for r in rows], data=rows)
            scatter.setZValue(10)
            scatter.sigClicked.connect(self._on_clicked)
            self.addItem(scatter)
            self._legend.addItem(scatter, STRATEGY_LABELS.get(strategy, strategy))
            self._scatters.append(scatter)
        n_v = n_h = 0
        x_top = max([*xs, *(line.values.get(x_metric, 0.0) for line in lines if line.side == "search")] or [0.1])
        for line in lines:
            metric = x_metric if line.side == "search" else y_metric
            value = line.values.get(metric)
            if value is None:
                continue
            color = QColor(*LINE_COLORS.get(line.name, (110, 110, 160)))
            vertical = line.side == "search"
            index = n_v if vertical else n_h
            # a vertical line's label sits left of it in the right half of the plot (else it is cut off)
            anchor = ((1.0, 0.5) if value > 0.5 * x_top else (0.0, 0.5)) if vertical else (1.0, 1.0)
            item = pg.InfiniteLine(pos=value, angle=90 if vertical else 0, movable=False,
                                   pen=pg.mkPen(color, width=1.5, style=Qt.DashLine),
                                   label=f"{line.name} {value:.3f}",
                                   labelOpts={"position": 0.95 - 0.07 * index if vertical else 0.97 - 0.2 * index,
                                              "color": color, "fill": (255, 255, 255, 210),
                                              "anchors": [anchor, anchor]})
            if vertical:
                n_v += 1
                xs.append(value)
            else:
                n_h += 1
                ys.append(value)
            self.addItem(item)
            self._lines.append(item)
            self._line_names.append(line.name)
        plot.setLabel("bottom", f"search {x_metric} (held-out queries)")
        plot.setLabel("left", f"rec {y_metric} (test users)")
        if xs or ys:
            # from 0, so that distances read as they are; room for the labels on the right and top
            self.setRange(xRange=(0, max(xs or [0.1]) * 1.15 or 0.1), yRange=(0, max(ys or [0.1]) * 1.2 or 0.1),
                          padding=0.02)

    @property
    def line_names(self) -> list[str]:
        return list(self._line_names)

    @property
    def point_count(self) -> int:
        return sum(1 for xy in self._xy if xy is not None)

    def point_of(self, row: int) -> tuple[float, float] | None:
        return self._xy[row] if 0 <= row < len(self._xy) else None

    def widget_pos(self, row: int):
        """Where point ``row`` is drawn, in the plot widget's coordinates (for a click)."""
        xy = self.point_of(row)
        if xy is None:
            return None
        scene = self.getViewBox().mapViewToScene(QPointF(*xy))
        return self.mapFromScene(scene)

    def mark(self, row: int | None) -> None:
        xy = self.point_of(row) if row is not None else None
        self._selected.setData([] if xy is None else [xy[0]], [] if xy is None else [xy[1]])

    def _on_clicked(self, _scatter, points, *_args) -> None:
        if len(points):
            self.clickedPoint.emit(int(points[0].data()))


class StrategiesPanel(QWidget):
    """The strategies view: which embedding's SIDs serve search and rec best, with baselines."""

    #: compare the level-1 groups of two quantiser runs in the SID tree (run A, run B)
    compareRequested = Signal(int, int)
    #: inspect a quantiser run in the SID tree
    openRunRequested = Signal(int)
    #: search with this joint model in the playground
    useModelRequested = Signal(int)

    JOB_KEY = "strategies-evaluate"

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.data = StrategiesData()
        self.selected_row: int | None = None
        self._job = None
        self.last_status = ""

        self._build_plot_and_points()
        self._build_evaluation_controls()
        self.compare_a = QComboBox()
        self.compare_b = QComboBox()
        for combo in (self.compare_a, self.compare_b):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.compare_button = QPushButton("Compare in the SID tree")
        self.compare_button.setToolTip("How the level-1 groups of one SID space map onto the other's (Compare runs)")
        self._lay_out()

        # -- signals
        self.x_combo.currentIndexChanged.connect(self._redraw)
        self.source_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.y_combo.currentIndexChanged.connect(self._redraw)
        self.plot.clickedPoint.connect(self.select_point)
        self.points_view.selectionModel().currentRowChanged.connect(
            lambda current, _prev: self.select_point(current.row()) if current.isValid() else None)
        self.evaluate_button.clicked.connect(self.start_evaluation)
        self.file_button.clicked.connect(self.start_file_evaluation)
        self.cancel_button.clicked.connect(self.cancel_evaluation)
        self.compare_button.clicked.connect(self._on_compare)
        self.open_run_button.clicked.connect(self._on_open_run)
        self.use_model_button.clicked.connect(self._on_use_model)
        context.projectOpened.connect(self.refresh)
        context.projectClosed.connect(self.refresh)
        context.contentChanged.connect(self.refresh)
        context.modelsChanged.connect(self.refresh)
        self.refresh()

    def _build_plot_and_points(self) -> None:
        """The plot with its axes and source, the points table and the selected point's details."""
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.RichText)
        self.status_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.x_combo = QComboBox()
        self.y_combo = QComboBox()
        for combo in (self.x_combo, self.y_combo):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
            combo.setMinimumContentsLength(9)
        self.x_combo.setToolTip("Search metric on the held-out queries (horizontal axis)")
        self.source_combo = QComboBox()
        # a query file's long name must not set the panel's (and the window's) minimum width
        self.source_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.source_combo.setMinimumContentsLength(6)
        self.source_combo.setToolTip("Which requests give the search figures: the project's held-out queries, or a "
                                     "query file evaluated from outside the project")
        self.y_combo.setToolTip("Recommendation metric on the test users (vertical axis)")
        self.plot = StrategyPlot()
        self.plot.setMinimumHeight(260)
        self.points = RecordsTableModel(["Strategy", "Seed", "Model", "Search", "Rec"], self)
        self.points_view = QTableView()
        self.points_view.setModel(self.points)
        self.points_view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.points_view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.points_view.verticalHeader().hide()
        self.points_view.setWordWrap(False)
        header = self.points_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.open_run_button = QPushButton("Its SIDs in the tree")
        self.open_run_button.setToolTip("Inspect the SID run this model was trained on in the SID tree")
        self.use_model_button = QPushButton("Search with it")
        self.use_model_button.setToolTip("Answer the Playground's queries with this joint model")

    def _build_evaluation_controls(self) -> None:
        """Evaluate what is missing, or a query file; the sample size, progress and cancel."""
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Evaluate every joint model that has no evaluation yet (search on the "
                                        "held-out queries, rec on the test users) and the missing baselines "
                                        "(BM25, dense retrieval, popularity, Markov chain); all are stored")
        self.cancel_button = QPushButton("Cancel")
        self.file_button = QPushButton("Evaluate on a query file…")
        self.file_button.setToolTip("Score a query log that is not in the project (a file of request text and the "
                                    "item it asks for, read as the import reads it) with every joint model and the "
                                    "search baselines. Its queries are never stored or trained on; only the figures, "
                                    "the file's name and its checksum are saved")
        self.queries_spin = QSpinBox()
        self.queries_spin.setRange(0, 10_000_000)
        self.queries_spin.setSingleStep(100)
        self.queries_spin.setValue(500)
        self.queries_spin.setSpecialValueText("all")
        self.queries_spin.setToolTip("Evaluate a seeded sample of this many held-out queries (0 = all of them); "
                                     "the sample size is stored with every report")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setMaximumWidth(160)
        self.eval_label = QLabel("")
        self.eval_label.setWordWrap(True)

    def _lay_out(self) -> None:
        """The plot and the evaluation controls on the left; points and the SID comparison on the right."""
        axes = QHBoxLayout()
        axes.addWidget(QLabel("Search"))
        axes.addWidget(self.x_combo)
        axes.addWidget(QLabel("Rec"))
        axes.addWidget(self.y_combo)
        axes.addStretch(1)
        source_row = QHBoxLayout()  # its own row: beside the axes it would widen the window
        source_row.addWidget(QLabel("Search on"))
        source_row.addWidget(self.source_combo, 1)
        source_row.addWidget(self.file_button)
        evaluate_row = QHBoxLayout()
        evaluate_row.addWidget(self.evaluate_button)
        evaluate_row.addWidget(QLabel("Queries"))
        evaluate_row.addWidget(self.queries_spin)
        evaluate_row.addWidget(self.cancel_button)
        evaluate_row.addStretch(1)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.eval_label, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.status_label)
        ll.addLayout(axes)
        ll.addLayout(source_row)
        ll.addWidget(self.plot, 1)
        ll.addLayout(evaluate_row)
        ll.addLayout(progress_row)

        point_box = QGroupBox("Points (one per joint model: strategy and seed)")
        pl = QVBoxLayout(point_box)
        pl.addWidget(self.points_view, 2)
        pl.addWidget(self.details, 3)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_run_button)
        buttons.addWidget(self.use_model_button)
        pl.addLayout(buttons)
        compare_box = QGroupBox("Two SID spaces side by side")
        cl = QVBoxLayout(compare_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("A"))
        row.addWidget(self.compare_a, 1)
        row.addWidget(QLabel("B"))
        row.addWidget(self.compare_b, 1)
        cl.addLayout(row)
        cl.addWidget(self.compare_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(point_box, 1)
        rl.addWidget(compare_box)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not getattr(self, "_sized", False):
            self._sized = True  # the plot gets the larger share; the table its columns' room
            QTimer.singleShot(0, lambda: self.splitter.setSizes(
                [self.splitter.width() * 3 // 5, self.splitter.width() - self.splitter.width() * 3 // 5]))
        super().showEvent(event)

    # -- data

    @Slot()
    def refresh(self) -> None:
        """Read the stored evaluations again and redraw (quick: JSON of a few reports)."""
        store = self.context.store
        keep = self.selected_point.model_id if self.selected_point is not None else None
        self._fill_sources()
        source = self.source_combo.currentData()
        self.data = strategy_points(store, source) if store is not None else StrategiesData()
        for combo, side, default in ((self.x_combo, "search", "recall@30"), (self.y_combo, "rec", "recall@10")):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            names = self.data.metrics(side)
            combo.addItems(names)
            choice = current if current in names else default if default in names else (names[0] if names else "")
            combo.setCurrentText(choice)
            combo.blockSignals(False)
        self._fill_compare()
        self._redraw()
        rows = [p.model_id for p in self.data.points]
        self.select_point(rows.index(keep) if keep in rows else (0 if rows else None))
        self._update_status()
        self._update_buttons()

    def _fill_sources(self, select: int | None = None) -> None:
        """The held-out queries, then each stored query-file evaluation (newest last)."""
        store = self.context.store
        keep = select if select is not None else self.source_combo.currentData()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        self.source_combo.addItem("held-out queries", None)
        for e in query_file_evaluations(store) if store is not None else []:
            self.source_combo.addItem(f"{e['split']} (evaluation #{e['id']})", e["id"])
        row = self.source_combo.findData(keep) if keep is not None else 0
        self.source_combo.setCurrentIndex(max(row, 0))
        self.source_combo.blockSignals(False)

    def _fill_compare(self) -> None:
        store = self.context.store
        spaces = sid_spaces(store) if store is not None else []
        for combo in (self.compare_a, self.compare_b):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for run_id, text in spaces:
                combo.addItem(text, run_id)
            if keep is not None and combo.findData(keep) >= 0:
                combo.setCurrentIndex(combo.findData(keep))
            combo.blockSignals(False)
        if len(spaces) >= 2 and self.compare_a.currentData() == self.compare_b.currentData():
            self.compare_b.setCurrentIndex(1 if self.compare_a.currentIndex() != 1 else 0)

    @Slot()
    def _redraw(self, *_args) -> None:
        x, y = self.x_combo.currentText(), self.y_combo.currentText()
        self.plot.set_data(self.data.points, self.data.lines, x, y)
        rows, tips = [], []
        for p in self.data.points:
            sv, rv = p.value("search", x), p.value("rec", y)
            rows.append((STRATEGY_LABELS.get(p.strategy, p.strategy), p.seed,
                         f"#{p.model_id} {p.task} · {p.query_encoder}", "—" if sv is None else round(sv, 4),
                         "—" if rv is None else round(rv, 4)))
            tips.append(f"#{p.model_id} {p.name}" + ("" if rv is not None else "\nno rec evaluation: not on the plot "
                                                                               "(a search-only model)"))
        self.points.set_headers(["Strategy", "Seed", "Model", f"Search {_short(x)}", f"Rec {_short(y)}"])
        self.points.set_rows(rows, [p.model_id for p in self.data.points], tooltips=tips)
        self.plot.mark(self.selected_row)

    @property
    def selected_point(self) -> StrategyPoint | None:
        row = self.selected_row
        return self.data.points[row] if row is not None and 0 <= row < len(self.data.points) else None

    @Slot(int)
    def select_point(self, row: int | None) -> None:
        """Select a point (plot and table) and show what made it."""
        if row is None or not 0 <= row < len(self.data.points):
            self.selected_row = None
            self.plot.mark(None)
            self.details.setHtml("" if self.data.points else self._howto_html())
            self._update_buttons()
            return
        self.selected_row = row
        self.plot.mark(row)
        if self.points_view.currentIndex().row() != row:
            self.points_view.selectRow(row)
        point = self.data.points[row]
        self.details.setHtml(describe_point(self.context.store, point))
        # the selected point's SIDs against another strategy's, ready to compare
        if point.quantizer_run_id is not None and self.compare_a.findData(point.quantizer_run_id) >= 0:
            self.compare_a.setCurrentIndex(self.compare_a.findData(point.quantizer_run_id))
            other = next((p.quantizer_run_id for p in self.data.points if p.strategy != point.strategy
                          and p.quantizer_run_id is not None), None)
            if other is not None and self.compare_b.findData(other) >= 0:
                self.compare_b.setCurrentIndex(self.compare_b.findData(other))
        self._update_buttons()

    def _howto_html(self) -> str:
        return ("<p><b>How to get points here</b></p><ol>"
                "<li>Queries: Training → <i>Search queries</i> (or import a query log).</li>"
                "<li>SIDs of a strategy: Training → <i>Embedding strategy</i> (search-tuned, rec-tuned, multi-task, "
                "fused), then <i>Quantiser</i> on that set.</li>"
                "<li>A joint model on those SIDs: Training → <i>Generative model</i>, task <i>joint</i> (one per "
                "seed).</li>"
                "<li>Press <b>Evaluate</b> below the plot: search on the held-out queries, rec on the test users, and "
                "the baselines.</li></ol>")

    def _update_status(self) -> None:
        store = self.context.store
        d = self.data
        if store is None:
            text = "Open a project to compare embedding strategies."
        elif d.n_joint_models == 0:
            text = ("<b>No joint search + rec model in this project yet.</b> A point here is one joint model (the "
                    "Semantic IDs of one embedding strategy, one seed) placed by its search recall and its rec "
                    "recall; see the steps on the right. <b>Evaluate</b> measures the baselines now.")
        elif not d.points:
            n = len(d.unevaluated)
            text = (f"<b>No evaluations yet:</b> {n} joint model{'s' if n != 1 else ''} "
                    f"{'have' if n != 1 else 'has'} not been evaluated. Press <b>Evaluate</b> to measure search on the "
                    "held-out queries and rec on the test users, with the baselines (it runs in the background; "
                    "Cancel stops it).")
        else:
            on_plot = self.plot.point_count
            lines = ", ".join(sorted({line.name for line in d.lines})) or "none yet"
            text = (f"{len(d.points)} evaluated joint model{'s' if len(d.points) != 1 else ''} ({on_plot} on the plot; "
                    f"search on {d.search_split}, rec on {d.rec_split or '—'} test users). Reference lines: "
                    f"{html.escape(lines)}. Click a point to see what made it.")
            if self.source_combo.currentData() is not None:
                text += " The search figures are those of a query file from outside the project."
            elif d.unevaluated:
                text += f" {len(d.unevaluated)} more model(s) not evaluated yet: press <b>Evaluate</b>."
        self.status_label.setText(text)

    def _update_buttons(self) -> None:
        is_open = self.context.is_open
        running = self._job is not None
        self.evaluate_button.setEnabled(is_open and not running)
        self.file_button.setEnabled(is_open and not running)
        self.cancel_button.setEnabled(running)
        self.queries_spin.setEnabled(is_open and not running)
        point = self.selected_point
        self.open_run_button.setEnabled(point is not None and point.quantizer_run_id is not None)
        self.use_model_button.setEnabled(point is not None)
        self.compare_button.setEnabled(is_open and self.compare_a.count() >= 2)

    # -- actions

    @Slot()
    def start_evaluation(self) -> None:
        """Evaluate the missing joint models and baselines in a worker (stored in the project)."""
        if self._job is not None or not self.context.is_open:
            return
        split, n = heldout_count(self.context.store)
        max_queries = self.queries_spin.value() or None
        self.progress.setRange(0, 0)
        what = f"{min(n, max_queries or n):,} of {n:,} {split} queries" if split else "no held-out queries"
        self.eval_label.setText(f"Evaluating ({what})…")
        self.last_status = "running"
        self._job = self.context.submit(
            "Evaluating strategies and baselines",
            lambda store, cancel: run_strategy_evaluations(store, max_queries=max_queries, cancel=cancel),
            key=self.JOB_KEY, on_event=self._on_event, on_result=self._on_result, on_error=self._on_error,
            on_done=self._on_done)
        self._update_buttons()

    @Slot()
    def start_file_evaluation(self) -> None:
        """Ask for a query file and score it with every joint model and the search baselines."""
        if self._job is not None or not self.context.is_open:
            return
        path = choose_query_file(self)
        if not path:
            return
        model_ids = [j.id for j in list_joint_models(self.context.store) if j.has_best] or None
        self.progress.setRange(0, 0)
        self.eval_label.setText(f"Evaluating on {Path(path).name}…")
        self.last_status = "running"
        self._job = self.context.submit(
            "Evaluating on a query file",
            lambda store, cancel: evaluate_query_file(store, path, model_ids=model_ids, cancel=cancel),
            key=self.JOB_KEY, on_event=self._on_event, on_result=self._on_file_result, on_error=self._on_error,
            on_done=self._on_done)
        self._update_buttons()

    def _on_file_result(self, report: dict) -> None:
        self.last_status = "done"
        self.eval_label.setText(query_file_summary(report))
        self._fill_sources(select=report["id"])  # show the file's figures
        self.context.contentChanged.emit()

    @Slot()
    def cancel_evaluation(self) -> None:
        cancel_job(self._job, self.eval_label)

    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            show_progress(self.progress, self.eval_label, event)
        elif isinstance(event, Message):
            self.eval_label.setText(event.text.splitlines()[0])
            self.context.message.emit(event.level, event.text)

    def _on_result(self, written: int) -> None:
        self.last_status = "done"
        self.eval_label.setText(f"Done: {written} evaluation{'s' if written != 1 else ''} stored in the project."
                                if written else "Nothing was missing: every model and baseline has an evaluation.")
        self.context.contentChanged.emit()  # the Evaluation panel lists them too; refreshes this view

    def _on_error(self, message: str) -> None:
        self.last_status = "failed"
        self.eval_label.setText(f"Failed: {message}")
        self.context.report_error(message)

    def _on_done(self) -> None:
        if self.last_status == "running":
            self.last_status = "cancelled"
            self.eval_label.setText("Cancelled; evaluations already finished are stored, the one in flight is not.")
            self.refresh()
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000 if self.last_status == "done" else 0)
        self._job = None
        self._update_buttons()

    @property
    def running(self) -> bool:
        return self._job is not None

    def _on_compare(self) -> None:
        a, b = self.compare_a.currentData(), self.compare_b.currentData()
        if a is None or b is None:
            return
        if a == b:
            self.context.report_error("choose two different SID spaces to compare")
            return
        self.compareRequested.emit(int(a), int(b))

    def _on_open_run(self) -> None:
        point = self.selected_point
        if point is not None and point.quantizer_run_id is not None:
            self.openRunRequested.emit(int(point.quantizer_run_id))

    def _on_use_model(self) -> None:
        point = self.selected_point
        if point is not None:
            self.useModelRequested.emit(int(point.model_id))
