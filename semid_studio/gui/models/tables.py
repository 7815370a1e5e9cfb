"""RecordsTableModel: a small read-only table of plain rows (results, runs, previews, problems).

For tables of at most a few thousand rows that are computed in one go (top-K results,
collision groups, a file preview); the catalogue has its own paged model.
"""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from .common import ITEMS_MIME, items_mime


class RecordsTableModel(QAbstractTableModel):
    """Rows of display values; an optional key per row (``Qt.UserRole``), e.g. an item idx.

    With ``drag_items=True`` the keys are item idxs and rows can be dragged to the playground.
    """

    KeyRole = Qt.UserRole

    def __init__(self, headers: Sequence[str], parent=None, *, drag_items: bool = False) -> None:
        super().__init__(parent)
        self._headers = list(headers)
        self._rows: list[tuple] = []
        self._keys: list[Any] = []
        self._tooltips: list[str | None] = []
        self._marked: set[int] = set()
        self._drag_items = drag_items

    def set_rows(self, rows: Sequence[Sequence[Any]], keys: Sequence[Any] | None = None,
                 tooltips: Sequence[str | None] | None = None, marked: Sequence[int] = ()) -> None:
        """Replace every row. ``marked`` rows are shown in red (e.g. invalid results)."""
        self.beginResetModel()
        self._rows = [tuple(r) for r in rows]
        self._keys = list(keys) if keys is not None else list(range(len(self._rows)))
        self._tooltips = list(tooltips) if tooltips is not None else [None] * len(self._rows)
        self._marked = set(marked)
        self.endResetModel()

    def set_headers(self, headers: Sequence[str]) -> None:
        self.beginResetModel()
        self._headers = list(headers)
        self._rows = []
        self._keys = []
        self._tooltips = []
        self._marked = set()
        self.endResetModel()

    def key(self, row: int) -> Any:
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def row_values(self, row: int) -> tuple:
        return self._rows[row]

    @property
    def keys(self) -> list:
        return list(self._keys)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole):
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal:
            return self._headers[section] if 0 <= section < len(self._headers) else None
        return str(section + 1)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, col = index.row(), index.column()
        if col >= len(self._headers):
            return None
        if role == Qt.DisplayRole:
            value = self._rows[row][col] if col < len(self._rows[row]) else ""
            if isinstance(value, float):
                return f"{value:.4g}"
            return "" if value is None else str(value)
        if role == self.KeyRole:
            return self._keys[row]
        if role == Qt.ToolTipRole:
            return self._tooltips[row]
        if role == Qt.ForegroundRole and row in self._marked:
            return QBrush(QColor(176, 0, 32))
        if role == Qt.TextAlignmentRole:
            value = self._rows[row][col] if col < len(self._rows[row]) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.NoItemFlags
        flags = Qt.ItemIsEnabled | Qt.ItemIsSelectable
        return flags | Qt.ItemIsDragEnabled if self._drag_items else flags

    def mimeTypes(self) -> list[str]:
        return [ITEMS_MIME] if self._drag_items else []

    def mimeData(self, indexes):
        if not self._drag_items:
            return super().mimeData(indexes)
        rows = sorted({i.row() for i in indexes if i.isValid()})
        # a row without an item (an invalid SID from unconstrained decoding) has key -1 or None
        return items_mime(self._keys[r] for r in rows if self._keys[r] is not None and int(self._keys[r]) >= 0)
