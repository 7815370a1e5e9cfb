"""CataloguePanel: every item in a table, with search, field filter, SID-prefix filter and sort.

Filtering and sorting are SQL queries run in a worker (latest request wins); the table pages
rows from the project as the user scrolls (see :mod:`..models.catalogue`).
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QItemSelectionModel, Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...core.analysis.items import filter_items, format_value
from ..context import ProjectContext
from ..models.catalogue import CatalogueTableModel
from ..widgets import debounce

ANY_FIELD = "(no field filter)"
_WIDTHS = {"item_id": 110, "title": 380, "sid": 190}


def size_item_columns(view: QTableView, model: CatalogueTableModel) -> None:
    """Readable starting widths: the title wide, SIDs whole, attributes modest."""
    for col, key in enumerate(model.columns):
        view.setColumnWidth(col, _WIDTHS.get(key, 120))


class CataloguePanel(QWidget):
    """The catalogue: search, filter, sort, and the selected item's details."""

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._sort = ("idx", False)
        self._filter_pending = False

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search item id, title or any field…")
        self.search_edit.setClearButtonEnabled(True)
        self.field_combo = QComboBox()
        self.field_combo.setToolTip("Only items whose field contains the value")
        self.value_edit = QLineEdit()
        self.value_edit.setPlaceholderText("contains…")
        self.sid_edit = QLineEdit()
        self.sid_edit.setPlaceholderText("SID starts with, e.g. <a_12><b_3>")
        self.count_label = QLabel("")

        self.model = CatalogueTableModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragOnly)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        self.view.setSortingEnabled(True)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.model.sortRequested.connect(self._on_sort_requested)
        self.view.selectionModel().currentRowChanged.connect(self._on_current_changed)

        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.tree_button = QPushButton("Show in SID tree")
        self.tree_button.clicked.connect(self._show_in_tree)
        self.history_button = QPushButton("Add to history")
        self.history_button.setToolTip("Append the selected items to the playground's history")
        self.history_button.clicked.connect(self._add_to_history)

        filters = QHBoxLayout()
        filters.addWidget(self.search_edit, 3)
        filters.addWidget(self.field_combo, 1)
        filters.addWidget(self.value_edit, 1)
        filters.addWidget(self.sid_edit, 2)
        filters.addWidget(self.count_label)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.details, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.tree_button)
        buttons.addWidget(self.history_button)
        side_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)

        self._debounce = debounce(self, 200, self.apply_filter)
        for edit in (self.search_edit, self.value_edit, self.sid_edit):
            edit.textChanged.connect(self._debounce.start)
        self.field_combo.currentIndexChanged.connect(self._debounce.start)

        context.projectOpened.connect(self._on_project_opened)
        context.projectClosed.connect(self._on_project_closed)
        context.inspectionChanged.connect(self._on_inspection_changed)
        self._update_buttons()

    # -- project

    @Slot()
    def _on_project_opened(self) -> None:
        store = self.context.store
        fields = store.item_fields()
        self.model.set_project(store, store.active_run_id(), fields[:4])
        size_item_columns(self.view, self.model)
        self.field_combo.blockSignals(True)
        self.field_combo.clear()
        self.field_combo.addItem(ANY_FIELD)
        self.field_combo.addItems(fields)
        self.field_combo.blockSignals(False)
        self._update_count()
        if self._has_filter():
            self.apply_filter()

    @Slot()
    def _on_project_closed(self) -> None:
        self.model.set_project(None, None, [])
        self.details.clear()
        self.count_label.setText("")
        self._update_buttons()

    @Slot()
    def _on_inspection_changed(self) -> None:
        inspection = self.context.inspection
        if inspection is not None:
            self.model.set_run(inspection.run.id)

    # -- filtering

    def _has_filter(self) -> bool:
        return bool(self.search_edit.text().strip() or self.sid_edit.text().strip()
                    or (self.field_combo.currentIndex() > 0 and self.value_edit.text().strip())
                    or self._sort != ("idx", False))

    @property
    def filtering(self) -> bool:
        """True while a filter query is waiting or running."""
        return self._filter_pending or self._debounce.isActive()

    @Slot()
    def apply_filter(self) -> None:
        """Run the current search / filter / sort as one SQL query in a worker."""
        self._debounce.stop()
        if not self.context.is_open:
            return
        text = self.search_edit.text().strip() or None
        field = self.field_combo.currentText() if self.field_combo.currentIndex() > 0 else None
        value = self.value_edit.text().strip()
        if field and not value:
            field = None
        sid_prefix = self.sid_edit.text().strip() or None
        run_id = self.context.store.active_run_id()
        order_by, descending = self._sort
        self._filter_pending = True
        self.context.submit(
            "Filtering the catalogue",
            lambda store, cancel: filter_items(store, text=text, field=field, value=value, sid_prefix=sid_prefix,
                                               run_id=run_id, order_by=order_by, descending=descending),
            key="catalogue-filter",
            on_result=self._on_filtered,
            on_done=self._on_filter_done,
        )

    def _on_filtered(self, order: np.ndarray) -> None:
        if self.context.is_open:
            self.model.set_order(order)
            self._update_count()

    def _on_filter_done(self) -> None:
        self._filter_pending = False

    @Slot(str, bool)
    def _on_sort_requested(self, key: str, descending: bool) -> None:
        self._sort = (key, descending)
        self.apply_filter()

    def _update_count(self) -> None:
        total = self.context.store.item_count() if self.context.store is not None else 0
        shown = self.model.rowCount()
        self.count_label.setText(f"{shown:,} items" if shown == total else f"{shown:,} of {total:,} items")

    # -- selection

    def selected_items(self) -> list[int]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        return [self.model.idx_at(r) for r in rows]

    def select_item(self, idx: int) -> bool:
        """Select an item's row if it is in the current result (True when found)."""
        row = self.model.row_of(idx)
        if row is None:
            return False
        index = self.model.index(row, 0)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.view.scrollTo(index)
        return True

    @Slot()
    def _on_current_changed(self, current, _previous) -> None:
        self._update_buttons()
        item = self.model.item_at(current.row()) if current.isValid() else None
        if item is None:
            self.details.clear()
            return
        rows = [("Item id", item.item_id), ("Title", format_value(item.title)), ("SID", item.sid or "—")]
        kinds = self.model.field_kinds
        rows += [(k.replace("_", " ").capitalize(), format_value(v, kinds.get(k, "path")))
                 for k, v in item.attrs.items() if k != "title"]
        body = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
        self.details.setHtml(f"<table cellspacing='4'>{body}</table>")

    def _update_buttons(self) -> None:
        has = self.view.selectionModel().hasSelection() or self.view.currentIndex().isValid()
        self.tree_button.setEnabled(has)
        self.history_button.setEnabled(has)

    def _current_or_selected(self) -> list[int]:
        items = self.selected_items()
        if not items and self.view.currentIndex().isValid():
            items = [self.model.idx_at(self.view.currentIndex().row())]
        return items

    @Slot()
    def _show_in_tree(self) -> None:
        items = self._current_or_selected()
        if items:
            self.context.revealItem.emit(items[0])

    @Slot()
    def _add_to_history(self) -> None:
        items = self._current_or_selected()
        if items:
            self.context.addToHistory.emit(items)
