"""SidTreePanel: browse the SID hierarchy, find an item, read a node's statistics.

Left: the lazily loaded tree (level 1 -> level 2 -> ... -> items). Right: the selected node
(statistics and its items), the collision groups, per-level code usage, the embedding map and
the comparison of two runs' level-1 groups. Everything computed comes from the core
(:mod:`semid_studio.core.analysis`, :mod:`semid_studio.core.sids`); heavy loads run in workers.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ...core.analysis.compare import compare_level1
from ...core.analysis.items import find_items, format_value
from ...core.analysis.maps import MAP_GROUPS, TSNE_MAX_POINTS, map_groups
from ...core.analysis.nodes import usage_stats
from ..context import ProjectContext
from ..models.catalogue import CatalogueTableModel
from ..models.common import percent
from ..models.sid_tree import SidTreeModel, sid_text
from ..models.tables import RecordsTableModel
from .catalogue import size_item_columns
from ..plots import CodeUsagePlot, EmbeddingMapPlot, RunComparisonPlot
from ..widgets import show_matches

_MAX_COLLISION_ROWS = 5000  # the largest groups first; more rows than this nobody reads


def _ancestors(node) -> list:
    """The prefix nodes above a node, from level 1 down (the invisible root left out)."""
    chain = []
    up = node.parent
    while up is not None and up.prefix:
        chain.append(up)
        up = up.parent
    return chain[::-1]


def _run_caption(run, active: bool) -> str:
    levels = run.n_levels
    size = run.spec.get("codebook_size") if isinstance(run.spec, dict) else None
    shape = f"{levels}×{size}" if size else f"{levels} levels"
    return f"#{run.id} {run.name} ({run.method}, {shape})" + ("  ★ active" if active else "")


class SidTreePanel(QWidget):
    """The SID inspector."""

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context

        self._build_top_bar()
        self._build_tree()
        node_tab = self._build_node_tab()
        collisions_tab = self._build_collisions_tab()
        self.usage_plot = CodeUsagePlot()
        map_tab = self._build_map_tab()
        compare_tab = self._build_compare_tab()
        self._lay_out(node_tab, collisions_tab, map_tab, compare_tab)

        self.run_combo.activated.connect(self._on_run_chosen)
        self.activate_button.clicked.connect(self._activate_run)
        self.label_edit.lineEdit().returnPressed.connect(self._on_label_field_chosen)
        self.label_edit.activated.connect(self._on_label_field_chosen)
        self.find_edit.returnPressed.connect(self.find)
        self.find_matches.itemActivated.connect(self._on_match_chosen)
        self.find_matches.itemClicked.connect(self._on_match_chosen)

        context.projectOpened.connect(self._on_project_opened)
        context.projectClosed.connect(self._on_project_closed)
        context.inspectionChanged.connect(self._on_inspection_changed)
        context.projectionChanged.connect(self._on_projection_changed)
        context.contentChanged.connect(self._refresh_runs)
        context.revealItem.connect(self.reveal_item)
        context.highlightItems.connect(self.model.set_highlighted)
        self._on_project_closed()

    def _build_top_bar(self) -> None:
        """The top bar's controls: the run, the purity label field, find an item."""
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The quantiser run whose Semantic IDs are shown")
        self.run_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.activate_button = QPushButton("Use these SIDs")
        self.activate_button.setToolTip("Make this run the project's Semantic IDs (export, training)")
        self.label_edit = QComboBox()
        self.label_edit.setEditable(True)
        self.label_edit.setToolTip("Purity is measured against this field: 'field' or 'field[i]' (e.g. categories[2])")
        self.label_edit.setMinimumWidth(140)
        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText("Find an item by id or title, then Enter…")
        self.find_edit.setClearButtonEnabled(True)
        self.find_matches = QListWidget()
        self.find_matches.setMaximumHeight(120)
        self.find_matches.hide()

    def _build_tree(self) -> None:
        """The SID tree (a lazy model over the inspected run) and its status line."""
        self.model = SidTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)  # lets the view skip measuring 100k rows
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setContextMenuPolicy(Qt.CustomContextMenu)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.Interactive)
        for col, width in enumerate((190, 60, 180, 55, 200)):
            header.resizeSection(col, width)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)
        self.tree.customContextMenuRequested.connect(self._tree_menu)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

    def _build_node_tab(self) -> QSplitter:
        """The selected node: its summary above its items."""
        self.node_info = QTextBrowser()
        self.node_info.setOpenLinks(False)
        self.node_items = CatalogueTableModel(self)
        self.node_items_view = QTableView()
        self.node_items_view.setModel(self.node_items)
        self.node_items_view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.node_items_view.setDragEnabled(True)
        self.node_items_view.setDragDropMode(QAbstractItemView.DragOnly)
        self.node_items_view.verticalHeader().hide()
        self.node_items_view.setWordWrap(False)
        self.node_items_view.verticalHeader().setDefaultSectionSize(22)
        self.node_items_view.horizontalHeader().setStretchLastSection(True)
        self.node_items_view.doubleClicked.connect(self._on_node_item_activated)
        node_tab = QSplitter(Qt.Vertical)
        node_tab.addWidget(self.node_info)
        node_tab.addWidget(self.node_items_view)
        node_tab.setSizes([220, 400])
        return node_tab

    def _build_collisions_tab(self) -> QWidget:
        """The SIDs that several items share before the dedup level."""
        self.collisions = RecordsTableModel(["SID", "Items", "Titles"], self)
        self.collisions_view = QTableView()
        self.collisions_view.setModel(self.collisions)
        self.collisions_view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.collisions_view.verticalHeader().hide()
        self.collisions_view.setWordWrap(False)
        self.collisions_view.verticalHeader().setDefaultSectionSize(22)
        self.collisions_view.horizontalHeader().setStretchLastSection(True)
        self.collisions_view.clicked.connect(self._on_collision_clicked)
        self.collisions_label = QLabel("")
        self.collisions_label.setWordWrap(True)  # a long unwrapped label would set the panel's minimum width
        collisions_tab = QWidget()
        cl = QVBoxLayout(collisions_tab)
        cl.addWidget(self.collisions_label)
        cl.addWidget(self.collisions_view, 1)
        return collisions_tab

    def _build_map_tab(self) -> QWidget:
        """The embedding map, its layout and its colouring."""
        self.map_plot = EmbeddingMapPlot()
        self.map_plot.clickedItem.connect(self.reveal_item)
        self.map_label = QLabel("")
        self.map_label.setWordWrap(True)
        self.map_layout_combo = QComboBox()
        self.map_layout_combo.addItem("PCA", "pca")
        self.map_layout_combo.addItem(f"t-SNE (a sample of {TSNE_MAX_POINTS:,})", "tsne")
        self.map_layout_combo.setToolTip("PCA: instant, the two main axes (often a small share of the variance). "
                                         "t-SNE (scikit-learn): keeps neighbourhoods; takes seconds")
        self.map_colour_combo = QComboBox()
        self.map_colour_combo.setToolTip(f"The {MAP_GROUPS} largest groups get a colour each, the rest are grey")
        map_controls = QHBoxLayout()
        map_controls.addWidget(QLabel("Layout"))
        map_controls.addWidget(self.map_layout_combo)
        map_controls.addWidget(QLabel("Colour by"))
        map_controls.addWidget(self.map_colour_combo, 1)
        map_tab = QWidget()
        ml = QVBoxLayout(map_tab)
        ml.addLayout(map_controls)
        ml.addWidget(self.map_label)
        ml.addWidget(self.map_plot, 1)
        self.map_layout_combo.currentIndexChanged.connect(
            lambda _i: self.context.project_map(self.map_layout_combo.currentData()))
        self.map_colour_combo.currentIndexChanged.connect(lambda _i: self._draw_map())
        return map_tab

    def _build_compare_tab(self) -> QWidget:
        """Two runs' level-1 groups compared."""
        self.compare_a = QComboBox()
        self.compare_b = QComboBox()
        for combo in (self.compare_a, self.compare_b):
            # long run names must not widen the whole right-hand side (and squeeze the tree)
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(18)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare_runs)
        self.compare_label = QLabel("Choose two runs of this project and compare how their level-1 groups match.")
        self.compare_label.setWordWrap(True)
        self.compare_plot = RunComparisonPlot()
        self.compare_table = RecordsTableModel(["A group", "Items", "Best B group", "Share in it"], self)
        self.compare_view = QTableView()
        self.compare_view.setModel(self.compare_table)
        self.compare_view.verticalHeader().hide()
        self.compare_view.horizontalHeader().setStretchLastSection(True)
        compare_tab = QWidget()
        cmp_layout = QVBoxLayout(compare_tab)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run A"))
        row.addWidget(self.compare_a, 1)
        row.addWidget(QLabel("Run B"))
        row.addWidget(self.compare_b, 1)
        row.addWidget(self.compare_button)
        cmp_layout.addLayout(row)
        cmp_layout.addWidget(self.compare_label)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.compare_plot)
        split.addWidget(self.compare_view)
        split.setSizes([500, 300])
        cmp_layout.addWidget(split, 1)
        return compare_tab

    def _lay_out(self, node_tab: QSplitter, collisions_tab: QWidget, map_tab: QWidget, compare_tab: QWidget) -> None:
        """The top bar over the tree (left) and the tabs (right)."""
        self.tabs = QTabWidget()
        self.tabs.addTab(node_tab, "Node")
        self.tabs.addTab(collisions_tab, "Collisions")
        self.tabs.addTab(self.usage_plot, "Code usage")
        self.tabs.addTab(map_tab, "Embedding map")
        self.tabs.addTab(compare_tab, "Compare runs")

        top = QHBoxLayout()
        top.addWidget(QLabel("Run"))
        top.addWidget(self.run_combo)
        top.addWidget(self.activate_button)
        top.addSpacing(12)
        top.addWidget(QLabel("Purity vs"))
        top.addWidget(self.label_edit)
        top.addSpacing(12)
        top.addWidget(self.find_edit, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.find_matches)
        ll.addWidget(self.tree, 1)
        ll.addWidget(self.status_label)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([700, 700])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        # the first time the panel is shown, give the tree half the width once the layout has
        # settled (sizes set on a splitter that has no size yet are not kept)
        if not getattr(self, "_sized", False):
            self._sized = True
            QTimer.singleShot(0, lambda: self.splitter.setSizes([self.splitter.width() // 2] * 2))
        super().showEvent(event)

    # -- project and run

    @Slot()
    def _on_project_opened(self) -> None:
        store = self.context.store
        self.node_items.set_project(store, store.active_run_id(), store.item_fields()[:3])
        size_item_columns(self.node_items_view, self.node_items)
        self.node_items.set_order(np.zeros(0, dtype=np.int64))
        fields = store.item_fields()
        self.label_edit.clear()
        self.label_edit.addItems([f for f in fields if f not in ("title", "price", "sales_rank")])
        self._refresh_runs()
        self.status_label.setText("Loading Semantic IDs…" if self.context.loading else
                                  "No Semantic IDs yet: fit a quantiser in the Training view.")

    @Slot()
    def _on_project_closed(self) -> None:
        self.model.set_index(None, None)
        self.node_items.set_project(None, None, [])
        self.run_combo.clear()
        self.compare_a.clear()
        self.compare_b.clear()
        self.node_info.setHtml("<p>Open a project to browse its Semantic IDs.</p>")
        self.collisions.set_rows([])
        self.usage_plot.set_codes(None)
        self.map_plot.set_projection(None)
        self.compare_plot.set_comparison(None)
        self.compare_table.set_rows([])
        self.status_label.setText("")
        for w in (self.activate_button, self.compare_button, self.find_edit):
            w.setEnabled(False)

    @Slot()
    def _refresh_runs(self) -> None:
        store = self.context.store
        if store is None:
            return
        runs = store.list_quantizer_runs()
        active = store.active_run_id()
        shown = self.context.inspection.run.id if self.context.inspection is not None else active
        for combo in (self.run_combo, self.compare_a, self.compare_b):
            combo.blockSignals(True)
            combo.clear()
            for run in reversed(runs):
                combo.addItem(_run_caption(run, run.id == active), run.id)
            combo.blockSignals(False)
        if shown is not None:
            self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(shown)))
        if len(runs) >= 2:
            self.compare_b.setCurrentIndex(1)
        self.compare_button.setEnabled(len(runs) >= 2)
        self.activate_button.setEnabled(shown is not None and shown != active)

    @Slot()
    def _on_inspection_changed(self) -> None:
        inspection = self.context.inspection
        self.map_plot.set_projection(None)
        if inspection is None:
            self.model.set_index(None, None)
            self.collisions.set_rows([])
            self.usage_plot.set_codes(None)
            self.find_edit.setEnabled(False)
            if self.context.is_open:
                self.status_label.setText("Loading Semantic IDs…" if self.context.loading else
                                          "No Semantic IDs yet: fit a quantiser in the Training view.")
            return
        run = inspection.run
        self.model.set_index(inspection.index, run.codes, titles=inspection.titles, item_ids=inspection.item_ids,
                             labels=inspection.labels, terms=inspection.terms)
        self.node_items.set_run(run.id)
        if inspection.labels is not None:
            self.label_edit.setEditText(inspection.labels.field)
        self._refresh_runs()
        self.find_edit.setEnabled(True)
        self._fill_collisions()
        self.usage_plot.set_codes(run.codes, inspection.codebook_size)
        health = run.metrics or {}
        unique = health.get("unique_share")
        self.status_label.setText(
            f"{_run_caption(run, run.id == self.context.store.active_run_id())}: {run.n_items:,} items, "
            f"{len(self.model.children_counts(QModelIndex())):,} level-1 codes"
            + (f", {unique:.1%} unique before dedup" if unique is not None else ""))
        self.show_node(QModelIndex())

    @Slot()
    def _on_projection_changed(self) -> None:
        projection, inspection = self.context.projection, self.context.inspection
        if projection is None or inspection is None:
            self.map_plot.set_projection(None)
            self.map_label.setText("The embedding map appears once the embeddings are projected…"
                                   if inspection is not None else "")
            return
        self._fill_colour_choices()
        self._draw_map()
        current = self.tree.currentIndex()
        if current.isValid():
            self.map_plot.mark_items(self.model.items_of(current))

    def _fill_colour_choices(self) -> None:
        """Level-1 code, and the label field when the inspection has one (kept if still there)."""
        inspection = self.context.inspection
        keep = self.map_colour_combo.currentData()
        self.map_colour_combo.blockSignals(True)
        self.map_colour_combo.clear()
        self.map_colour_combo.addItem(f"level-1 code ({MAP_GROUPS} largest)", "level1")
        if inspection is not None and inspection.labels is not None:
            self.map_colour_combo.addItem(f"{inspection.labels.field} ({MAP_GROUPS} most common)", "label")
        index = self.map_colour_combo.findData(keep)
        self.map_colour_combo.setCurrentIndex(max(index, 0))
        self.map_colour_combo.blockSignals(False)

    def _draw_map(self) -> None:
        projection, inspection = self.context.projection, self.context.inspection
        if projection is None or inspection is None:
            return
        level1 = inspection.run.codes[:, 0]
        labels = inspection.labels
        if self.map_colour_combo.currentData() == "label" and labels is not None:
            groups, kept = map_groups(labels.codes)
            names, what = [labels.names[c] for c in kept], f"its {labels.field}"
        else:
            groups, kept = map_groups(level1)
            names, what = [self._code_name(int(c), level1, labels) for c in kept], "level-1 code"
        self.map_plot.set_projection(projection, groups, names, inspection.titles, level1=level1)
        shown = len(projection.idx)
        sample = "" if shown == inspection.run.n_items else f" (a random {shown:,} of {inspection.run.n_items:,})"
        layout = ("t-SNE" if projection.method == "tsne" else
                  f"PCA (axes explain {projection.explained[0]:.0%} and {projection.explained[1]:.0%} of the variance)")
        self.map_label.setText(
            f"{layout} of the item embeddings{sample}, coloured by {what}: the {len(names)} largest groups, "
            "the rest grey. Hover a point to see the item; click it to find it in the tree.")
        current = self.tree.currentIndex()
        if current.isValid():
            self.map_plot.mark_items(self.model.items_of(current))

    @staticmethod
    def _code_name(code: int, level1: np.ndarray, labels) -> str:
        """``<a_12>``, with the most common label of its items when there are labels."""
        name = sid_text((code,))
        if labels is not None:
            values = labels.codes[level1 == code]
            values = values[values >= 0]
            if len(values):
                name += f" {labels.names[int(np.bincount(values).argmax())]}"
        return name

    @Slot(int)
    def _on_run_chosen(self, _row: int) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None and (self.context.inspection is None or self.context.inspection.run.id != run_id):
            self.context.load_run(int(run_id))

    @Slot()
    def _activate_run(self) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None:
            self.context.set_active_run(int(run_id))

    @Slot()
    def _on_label_field_chosen(self, *_args) -> None:
        spec = self.label_edit.currentText().strip()
        inspection = self.context.inspection
        if not spec or inspection is None:
            return
        if inspection.labels is not None and inspection.labels.field == spec:
            return
        self.context.load_run(inspection.run.id, label_field=spec)

    # -- nodes

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_node(current)

    def show_node(self, index: QModelIndex) -> None:
        """Fill the Node tab with a node's statistics and items (the root = the whole catalogue)."""
        inspection = self.context.inspection
        if inspection is None:
            return
        node = self.model.node_at(index)
        items = self.model.items_of(index)
        summary = self.model.summary(node)
        n_total = inspection.run.n_items
        if node.is_leaf:
            title = format_value(inspection.titles[node.item])
            heading = f"Item {html.escape(str(inspection.item_ids[node.item]))}: {html.escape(title)}"
        elif not node.prefix:
            heading = f"All {n_total:,} items"
        else:
            heading = f"Node {html.escape(sid_text(node.prefix))} (level {node.depth})"
        share = len(items) / max(n_total, 1)
        rows = [("SID" if node.is_leaf else "Prefix", html.escape(sid_text(node.prefix)) or "—")]
        if node.is_leaf:
            field = inspection.labels.field if inspection.labels is not None else None
            if field and summary.label is not None:
                rows.append((html.escape(field), html.escape(summary.label)))
            # what each branch on the way down is about: its two most distinctive words
            path = [", ".join(self.model.summary(n).keywords[:2]) for n in _ancestors(node)]
            if any(path):
                rows.append(("Branches", " › ".join(html.escape(p) for p in path)))
        else:
            rows.append(("Items", f"{len(items):,} ({share:.2%} of the catalogue)" if share < 0.001 else
                                  f"{len(items):,} ({share:.1%} of the catalogue)"))
        if summary.label is not None and not node.is_leaf:
            field = inspection.labels.field if inspection.labels is not None else "label"
            rows.append((f"Most common {html.escape(field)}", html.escape(summary.label)))
            rows.append(("Purity", percent(summary.purity)))
            rows.append(("Labels", "; ".join(f"{html.escape(n)} ({c:,})" for n, c in summary.top_labels)))
        if summary.keywords:
            rows.append(("Distinctive words", html.escape(", ".join(summary.keywords))))
        if not node.is_leaf:
            counts = self.model.children_counts(index)
            if node.depth < self.model.n_levels:
                stats = usage_stats(counts)
                plural = "code" if stats.n_children == 1 else "codes"
                rows.append(("Children", f"{stats.n_children:,} {plural}; entropy {stats.entropy_bits:.2f} bits "
                                         f"(evenness {stats.evenness:.2f}); largest holds {stats.largest_share:.0%}"))
            elif len(items) > 1:
                rows.append(("Collision", f"{len(items)} items share these codes; the dedup level tells them apart"))
        body = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        self.node_info.setHtml(f"<h3>{heading}</h3><table cellspacing='4'>{body}</table>")
        self.node_items.set_order(items)
        self.map_plot.mark_items(items if node.prefix else None)

    def current_node_items(self) -> np.ndarray:
        return self.model.items_of(self.tree.currentIndex())

    @Slot(int)
    def reveal_item(self, idx: int) -> bool:
        """Expand the tree down to an item and select it (True when the item is in the tree)."""
        index = self.model.reveal(int(idx))
        if not index.isValid():
            return False
        parent = index.parent()
        chain = []
        while parent.isValid():
            chain.append(parent)
            parent = parent.parent()
        for ancestor in reversed(chain):
            self.tree.expand(ancestor)
        self.tree.selectionModel().setCurrentIndex(index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.tree.scrollTo(index, QAbstractItemView.PositionAtCenter)
        return True

    def reveal_prefix(self, prefix: tuple) -> bool:
        index = self.model.index_for_prefix(tuple(prefix))
        if not index.isValid():
            return False
        parent = index.parent()
        while parent.isValid():
            self.tree.expand(parent)
            parent = parent.parent()
        self.tree.selectionModel().setCurrentIndex(index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.tree.scrollTo(index)
        return True

    @Slot(QModelIndex)
    def _on_node_item_activated(self, index: QModelIndex) -> None:
        self.reveal_item(self.node_items.idx_at(index.row()))

    def _tree_menu(self, pos) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        items = self.model.items_of(index)
        menu = QMenu(self)
        label = "Add this item to the history" if len(items) == 1 else f"Add these {len(items):,} items to the history"
        add = menu.addAction(label)
        add.setEnabled(0 < len(items) <= 50)
        chosen = menu.exec(self.tree.viewport().mapToGlobal(pos))
        if chosen is add:
            self.context.addToHistory.emit([int(i) for i in items])

    # -- find

    @Slot()
    def find(self) -> None:
        """Look the text up (id or title) in a worker; one match is revealed, several listed."""
        text = self.find_edit.text().strip()
        self.find_matches.clear()
        self.find_matches.hide()
        if not text or self.context.inspection is None:
            return
        self.context.submit("Finding items", lambda store, cancel: find_items(store, text), key="tree-find",
                            on_result=self._on_found)

    def _on_found(self, matches: list[tuple[int, str, str]]) -> None:
        if not matches:
            self.status_label.setText(f"No item matches '{self.find_edit.text().strip()}'.")
            return
        if len(matches) == 1:
            self.reveal_item(matches[0][0])
            return
        show_matches(self.find_matches, matches)
        self.status_label.setText(f"{len(matches)} items match; pick one.")

    def _on_match_chosen(self, entry: QListWidgetItem) -> None:
        self.reveal_item(int(entry.data(Qt.UserRole)))

    # -- collisions

    def _fill_collisions(self) -> None:
        inspection = self.context.inspection
        groups = inspection.index.collision_groups()
        groups.sort(key=len, reverse=True)
        shown = groups[:_MAX_COLLISION_ROWS]
        n_levels = inspection.n_levels
        rows, keys = [], []
        for group in shown:
            prefix = tuple(int(c) for c in inspection.run.codes[group[0], :n_levels])
            titles = " | ".join(format_value(inspection.titles[i]) for i in group[:3])
            rows.append((sid_text(prefix), len(group), titles + (" | …" if len(group) > 3 else "")))
            keys.append(prefix)
        self.collisions.set_rows(rows, keys)
        self.collisions_view.resizeColumnToContents(0)
        self.collisions_view.resizeColumnToContents(1)
        in_groups = sum(len(g) for g in groups)
        more = f" (the {len(shown):,} largest shown)" if len(shown) < len(groups) else ""
        if not groups:
            self.collisions_label.setText(
                f"No collision groups: every item has its own combination of the {n_levels} semantic codes "
                "(its dedup code is 0).")
            return
        self.collisions_label.setText(
            f"{len(groups):,} collision groups hold {in_groups:,} items that share all {n_levels} semantic codes"
            f"{more}; the dedup level tells them apart. Click a group to find it in the tree.")

    @Slot(QModelIndex)
    def _on_collision_clicked(self, index: QModelIndex) -> None:
        prefix = self.collisions.key(index.row())
        if prefix is not None:
            self.reveal_prefix(prefix)
            self.tree.expand(self.tree.currentIndex())

    # -- compare runs

    @Slot()
    def compare_runs(self) -> None:
        a, b = self.compare_a.currentData(), self.compare_b.currentData()
        if a is None or b is None:
            return
        if a == b:
            self.compare_label.setText("Choose two different runs.")
            return
        self.compare_label.setText("Comparing…")
        self.context.submit(
            "Comparing runs",
            lambda store, cancel: compare_level1(store.load_quantizer_run(int(a)).codes,
                                                 store.load_quantizer_run(int(b)).codes),
            key="compare-runs",
            on_result=lambda result: self._on_compared(result, a, b),
        )

    def _on_compared(self, result, a: int, b: int) -> None:
        self.compare_plot.set_comparison(result)
        rows = []
        order = np.argsort(-result.matrix.sum(axis=1), kind="stable")
        for r in order:
            rows.append((f"<a_{int(result.codes_a[r])}>", int(result.matrix[r].sum()),
                         f"<a_{int(result.codes_b[result.best_match[r]])}>", percent(float(result.best_share[r]))))
        self.compare_table.set_rows(rows)
        self.compare_label.setText(
            f"Run #{a} vs run #{b} over {result.n_items:,} items: {len(result.codes_a)} vs {len(result.codes_b)} "
            f"level-1 groups; NMI {result.nmi:.3f}, adjusted Rand {result.ari:.3f}; "
            f"{result.agreement:.0%} of items sit in their group's best-matching group.")
