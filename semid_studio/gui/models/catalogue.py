"""CatalogueTableModel: the item table, paged from SQLite on demand.

The model holds only the *order* of the matching rows (an int array of idx, from a SQL query
run in a worker) and a small cache of pages of rows. A row is read from the project the first
time the view asks for it, 256 rows at a time, so a 100k-item catalogue opens instantly and
scrolls without loading 100k Python objects.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, Signal

from ...core.analysis.items import ItemRow, format_value, item_rows
from ...core.field_kinds import stored_field_kinds
from ...core.store import ProjectStore
from .common import items_mime

_USER = int(Qt.UserRole)
_ROLES = frozenset({int(Qt.DisplayRole), int(Qt.ToolTipRole), _USER})
_FLAGS = Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled
_NO_FLAGS = Qt.NoItemFlags
_PAGE = 256
_MAX_PAGES = 64  # ~16k rows cached: a few screens either way of where the user scrolls


class CatalogueTableModel(QAbstractTableModel):
    """Items in ``order`` (an array of idx), with id, title, SID and a few attribute columns."""

    #: the view asked to sort by (key, descending); the panel re-runs the SQL query
    sortRequested = Signal(str, bool)

    FIXED = ("item_id", "title", "sid")
    HEADERS = {"item_id": "Item id", "title": "Title", "sid": "SID"}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._store: ProjectStore | None = None
        self._run_id: int | None = None
        self._fields: list[str] = []
        self.field_kinds: dict[str, str] = {}  # list field -> path / set (sets show as "a, b")
        self._order = np.zeros(0, dtype=np.int64)
        self._pages: OrderedDict[int, list[ItemRow]] = OrderedDict()

    # -- set-up

    def set_project(self, store: ProjectStore | None, run_id: int | None, fields: list[str]) -> None:
        """Show every item of ``store`` in idx order (or nothing when ``store`` is None)."""
        self.beginResetModel()
        self._store = store
        self._run_id = run_id
        self._fields = [f for f in fields if f not in ("title", "item_id", "idx")]
        self.field_kinds = stored_field_kinds(store) if store is not None else {}
        self._order = np.arange(store.item_count() if store is not None else 0, dtype=np.int64)
        self._pages.clear()
        self.endResetModel()

    def set_run(self, run_id: int | None) -> None:
        """Show SIDs of another run (the rows stay, their SID column changes)."""
        self._run_id = run_id
        self._pages.clear()
        if self.rowCount():
            col = self.column_of("sid")
            self.dataChanged.emit(self.index(0, col), self.index(self.rowCount() - 1, col))

    def set_order(self, order: np.ndarray) -> None:
        """Show these items, in this order (the result of a filter / sort query)."""
        self.beginResetModel()
        self._order = np.asarray(order, dtype=np.int64)
        self._pages.clear()
        self.endResetModel()

    # -- lookup

    @property
    def columns(self) -> list[str]:
        return [*self.FIXED, *self._fields]

    def column_of(self, key: str) -> int:
        return self.columns.index(key)

    def idx_at(self, row: int) -> int:
        return int(self._order[row])

    def row_of(self, idx: int) -> int | None:
        hits = np.flatnonzero(self._order == idx)
        return int(hits[0]) if len(hits) else None

    def item_at(self, row: int) -> ItemRow | None:
        if not 0 <= row < len(self._order) or self._store is None:
            return None
        page_no = row // _PAGE
        page = self._pages.get(page_no)
        if page is None:
            start = page_no * _PAGE
            page = item_rows(self._store, self._order[start : start + _PAGE], run_id=self._run_id)
            self._pages[page_no] = page
            while len(self._pages) > _MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        offset = row - page_no * _PAGE
        return page[offset] if offset < len(page) else None

    # -- Qt model API

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole):
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal:
            if 0 <= section < len(self.columns):
                key = self.columns[section]
                return self.HEADERS.get(key, key.replace("_", " ").capitalize())
            return None
        return str(section + 1)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.DisplayRole):
        # int roles: this runs for every cell and role at every paint
        if role not in _ROLES or not index.isValid():
            return None
        if role == _USER:
            return self.idx_at(index.row())
        item = self.item_at(index.row())
        if item is None:
            return None
        key = self.columns[index.column()]
        if key == "item_id":
            return item.item_id
        if key == "title":
            return format_value(item.title)
        if key == "sid":
            return item.sid or ""
        return format_value(item.attrs.get(key), self.field_kinds.get(key, "path"))

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else _NO_FLAGS

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        # sorting happens in SQL (in a worker); the panel listens and sets the new order
        if 0 <= column < len(self.columns):
            self.sortRequested.emit(self.columns[column], order == Qt.DescendingOrder)

    def mimeTypes(self) -> list[str]:
        from .common import ITEMS_MIME

        return [ITEMS_MIME]

    def mimeData(self, indexes) -> QMimeData:
        rows = sorted({i.row() for i in indexes if i.isValid()})
        return items_mime(self.idx_at(r) for r in rows)
