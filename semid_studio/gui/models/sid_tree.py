"""SidTreeModel: level 1 -> level 2 -> ... -> items, loaded lazily.

A hand-written ``QAbstractItemModel`` over :class:`semid_studio.core.sids.SidIndex`: a node's
children are created only when the view expands it (``canFetchMore`` / ``fetchMore``), at most
``BATCH`` at a time, so a 100k-item tree costs nothing until it is opened. Node objects (not
ints) are passed to ``createIndex``.

``fetchMore`` only *queues* the node; the rows are inserted on the next turn of the event loop
(as ``QFileSystemModel`` does). Views call ``fetchMore`` from inside their own handling of
model signals, and inserting rows there would nest one change inside another (Qt's model
tester reports exactly that). :meth:`SidTreeModel.load_children` loads at once, for code that
needs the rows now (revealing an item). A node's label, purity and distinctive words come from
:func:`semid_studio.core.analysis.nodes.summarize_node`, computed the first time the node is shown.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont

from ...core.analysis.items import format_value
from ...core.analysis.nodes import LabelCodes, NodeSummary, TermIndex, summarize_node
from .common import ITEMS_MIME, count, items_mime, percent


def token(level: int, code: int) -> str:
    """``<b_17>``: the SID token of ``code`` at 0-based ``level``."""
    return f"<{chr(ord('a') + level)}_{int(code)}>"


def sid_text(prefix: Iterable[int]) -> str:
    return "".join(token(level, code) for level, code in enumerate(prefix))


_DISPLAY = int(Qt.DisplayRole)
_TOOLTIP = int(Qt.ToolTipRole)
_FONT = int(Qt.FontRole)
_BACKGROUND = int(Qt.BackgroundRole)
_ALIGN = int(Qt.TextAlignmentRole)
_PREFIX = int(Qt.UserRole) + 1
_ITEM = int(Qt.UserRole) + 2
_ROLES_WE_ANSWER = frozenset({_DISPLAY, _TOOLTIP, _FONT, _BACKGROUND, _ALIGN, _PREFIX, _ITEM})
_RIGHT = int(Qt.AlignRight | Qt.AlignVCenter)
_NO_FLAGS = Qt.NoItemFlags
_NODE_FLAGS = Qt.ItemIsEnabled | Qt.ItemIsSelectable
_LEAF_FLAGS = _NODE_FLAGS | Qt.ItemIsDragEnabled
_STYLE: dict[str, object] = {}  # the bold font and highlight brush, made once a QApplication exists


def _style(key: str):
    if not _STYLE:
        bold = QFont()
        bold.setBold(True)
        _STYLE.update(bold=bold, highlight=QBrush(QColor(255, 236, 150)))
    return _STYLE[key]


class _Node:
    """One row of the tree: a SID prefix (``item`` is None) or an item leaf."""

    __slots__ = ("parent", "row", "prefix", "count", "item", "children", "by_key", "pending", "summary",
                 "queued")

    def __init__(self, parent: "_Node | None", row: int, prefix: tuple, count: int, item: int | None = None):
        self.parent = parent
        self.row = row
        self.prefix = prefix  # codes from level 1 down to this node (leaves: the full SID)
        self.count = count
        self.item = item
        self.children: list[_Node] = []
        self.by_key: dict[int, _Node] = {}  # child code (or item idx for leaves) -> node
        self.pending: list | None = None  # (key, count) of the children not created yet
        self.summary: NodeSummary | None = None
        self.queued = False  # a fetchMore is waiting for the event loop

    @property
    def depth(self) -> int:
        return len(self.prefix)

    @property
    def is_leaf(self) -> bool:
        return self.item is not None


def _dismantle(root: "_Node") -> None:
    """Break the parent <-> child cycles of a dropped tree so that it is freed at once.

    Left to the cyclic collector, a large tree would cost a long collection pass (or, once
    ``gc.freeze`` has seen it, never be freed at all).
    """
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        node.children = []
        node.by_key = {}
        node.parent = None


class SidTreeModel(QAbstractItemModel):
    """The SID hierarchy of one quantiser run."""

    #: children inserted per fetch: a screenful and a half. The view lays out every inserted row
    #: (a few Python calls each), so a level-1 node's 256 children at once cost an expansion
    #: 40 ms at a million items against 27 ms for 64; scrolling fetches the rest
    BATCH = 64
    COLUMNS = ("Node", "Items", "Label", "Purity", "Distinctive words")
    #: QModelIndex.data(PrefixRole) -> the node's code tuple; ItemRole -> item idx or None
    PrefixRole = _PREFIX
    ItemRole = _ITEM

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._root = _Node(None, 0, (), 0)
        self._index = None
        self._codes: np.ndarray | None = None
        self._n_levels = 0
        self._titles = None
        self._item_ids = None
        self._labels: LabelCodes | None = None
        self._terms: TermIndex | None = None
        self._highlight_prefixes: set[tuple] = set()
        self._highlight_items: set[int] = set()
        self._fetch_queue: list[_Node] = []
        self._fetch_timer = QTimer(self)
        self._fetch_timer.setSingleShot(True)
        self._fetch_timer.setInterval(0)
        self._fetch_timer.timeout.connect(self._run_queued_fetches)

    # -- set-up

    def set_index(
        self,
        index,
        codes: np.ndarray | None,
        *,
        titles=None,
        item_ids=None,
        labels: LabelCodes | None = None,
        terms: TermIndex | None = None,
    ) -> None:
        """Show the tree of a run (``index`` is a ``SidIndex`` over ``codes``; None clears it)."""
        self.beginResetModel()
        for node in self._fetch_queue:
            node.queued = False
        self._fetch_queue.clear()  # those nodes belong to the old tree
        _dismantle(self._root)
        self._index = index
        self._codes = None if codes is None else np.asarray(codes)
        self._n_levels = 0 if codes is None else self._codes.shape[1] - 1
        self._titles = titles
        self._item_ids = item_ids
        self._labels = labels
        self._terms = terms
        self._root = _Node(None, 0, (), 0 if codes is None else len(self._codes))
        self._highlight_prefixes.clear()
        self._highlight_items.clear()
        self.endResetModel()

    @property
    def n_levels(self) -> int:
        return self._n_levels

    # -- nodes

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    def node_at(self, index: QModelIndex | QPersistentModelIndex) -> _Node:
        return self._node(index)

    def _pending(self, node: _Node) -> list:
        """The (key, count) list of a node's children, asked of the index once."""
        if node.pending is None:
            if self._index is None or node.is_leaf:
                node.pending = []
            elif node.depth < self._n_levels:
                node.pending = [(int(c), int(n)) for c, n in self._index.children(node.prefix)]
            else:
                # the last semantic level: its children are the items, ordered by dedup code
                idxs = np.asarray(self._index.items(node.prefix), dtype=np.int64)
                dedup = self._codes[idxs, -1]
                node.pending = [(int(i), 1) for i in idxs[np.argsort(dedup, kind="stable")]]
        return node.pending

    def _total_children(self, node: _Node) -> int:
        return len(self._pending(node))

    def _load(self, node: _Node, parent: QModelIndex, n: int) -> None:
        pending = self._pending(node)
        start = len(node.children)
        stop = min(start + n, len(pending))
        if stop <= start:
            return
        self.beginInsertRows(parent, start, stop - 1)
        leaves = node.depth >= self._n_levels
        for row in range(start, stop):
            key, size = pending[row]
            if leaves:
                child = _Node(node, row, tuple(int(c) for c in self._codes[key]), 1, item=key)
            else:
                child = _Node(node, row, node.prefix + (key,), size)
            node.children.append(child)
            node.by_key[key] = child
        self.endInsertRows()

    def summary(self, node: _Node) -> NodeSummary:
        """Label, purity and words of a node (computed once, when first needed)."""
        if node.summary is None:
            if node.is_leaf:
                idxs = np.array([node.item])
            elif node is self._root:
                idxs = np.arange(node.count)
            else:
                idxs = np.asarray(self._index.items(node.prefix), dtype=np.int64)
            node.summary = summarize_node(idxs, self._labels, self._terms)
        return node.summary

    def items_of(self, index: QModelIndex | QPersistentModelIndex) -> np.ndarray:
        """Item idxs under a node (all items for the invisible root)."""
        node = self._node(index)
        if self._index is None:
            return np.zeros(0, dtype=np.int64)
        if node.is_leaf:
            return np.array([node.item], dtype=np.int64)
        if node is self._root:
            return np.arange(node.count, dtype=np.int64)
        return np.asarray(self._index.items(node.prefix), dtype=np.int64)

    def children_counts(self, index: QModelIndex | QPersistentModelIndex) -> list[int]:
        return [n for _k, n in self._pending(self._node(index))]

    def index_of_node(self, node: _Node) -> QModelIndex:
        if node is self._root:
            return QModelIndex()
        return self.createIndex(node.row, 0, node)

    def reveal(self, item: int) -> QModelIndex:
        """Load the path of an item (fetching as needed) and return the index of its leaf."""
        if self._index is None or not 0 <= item < self._root.count:
            return QModelIndex()
        path = tuple(int(c) for c in self._codes[item])
        node, parent = self._root, QModelIndex()
        keys = list(path[: self._n_levels]) + [item]
        for key in keys:
            while key not in node.by_key and len(node.children) < self._total_children(node):
                node.queued = False
                self._load(node, parent, self.BATCH)
            child = node.by_key.get(key)
            if child is None:
                return QModelIndex()
            node, parent = child, self.createIndex(child.row, 0, child)
        return parent

    def index_for_prefix(self, prefix: tuple) -> QModelIndex:
        """The index of a prefix node (loading its path), invalid if there is none."""
        node, parent = self._root, QModelIndex()
        for key in prefix[: self._n_levels]:
            while key not in node.by_key and len(node.children) < self._total_children(node):
                node.queued = False
                self._load(node, parent, self.BATCH)
            child = node.by_key.get(int(key))
            if child is None:
                return QModelIndex()
            node, parent = child, self.createIndex(child.row, 0, child)
        return parent

    def set_highlighted(self, items: Iterable[int]) -> None:
        """Mark these items and every prefix on their paths (playground results)."""
        self._highlight_items = {int(i) for i in items}
        prefixes: set[tuple] = set()
        if self._codes is not None:
            for i in self._highlight_items:
                if 0 <= i < len(self._codes):
                    path = tuple(int(c) for c in self._codes[i, : self._n_levels])
                    prefixes.update(path[:d] for d in range(1, self._n_levels + 1))
        self._highlight_prefixes = prefixes
        self._emit_all_changed(self._root, QModelIndex())

    def _emit_all_changed(self, node: _Node, parent: QModelIndex) -> None:
        if not node.children:
            return
        last = len(self.COLUMNS) - 1
        self.dataChanged.emit(self.index(0, 0, parent), self.index(len(node.children) - 1, last, parent),
                              [Qt.FontRole, Qt.BackgroundRole])
        for child in node.children:
            if child.children:
                self._emit_all_changed(child, self.createIndex(child.row, 0, child))

    def is_highlighted(self, node: _Node) -> bool:
        if node.is_leaf:
            return node.item in self._highlight_items
        return node.prefix in self._highlight_prefixes

    # -- Qt model API

    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:
        # bounds checked here rather than with hasIndex(), which calls back into Python twice
        if parent.isValid():
            if parent.column() != 0:
                return QModelIndex()
            node = parent.internalPointer()
        else:
            node = self._root
        if 0 <= row < len(node.children) and 0 <= column < len(self.COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node: _Node = index.internalPointer()
        up = node.parent
        if up is None or up is self._root:
            return QModelIndex()
        return self.createIndex(up.row, 0, up)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return len(self.COLUMNS)

    def hasChildren(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:
        if parent.isValid() and parent.column() != 0:
            return False
        node = self._node(parent)
        if node.children:
            return True
        if self._index is None or node.is_leaf:
            return False
        return node is not self._root or node.count > 0

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:
        if parent.isValid() and parent.column() != 0:
            return False
        node = self._node(parent)
        if self._index is None or node.is_leaf:
            return False
        return len(node.children) < self._total_children(node)

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:
        if parent.isValid() and parent.column() != 0:
            return
        node = self._node(parent)
        if self._index is None or node.is_leaf or node.queued:
            return
        node.queued = True
        self._fetch_queue.append(node)
        self._fetch_timer.start()

    def _run_queued_fetches(self) -> None:
        queue, self._fetch_queue = self._fetch_queue, []
        for node in queue:
            if node.queued:  # not loaded in the meantime (or dropped by a reset)
                node.queued = False
                self._load(node, self.index_of_node(node), self.BATCH)

    @property
    def fetch_pending(self) -> bool:
        """True while queued fetches wait for the event loop."""
        return bool(self._fetch_queue)

    def load_children(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex(), *, all: bool = False) -> int:
        """Load the next batch of a node's children now (every child with ``all``); the row count."""
        node = self._node(parent)
        if self._index is None or node.is_leaf:
            return len(node.children)
        node.queued = False
        index = self.index_of_node(node)
        while len(node.children) < self._total_children(node):
            self._load(node, index, self.BATCH)
            if not all:
                break
        return len(node.children)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        return _LEAF_FLAGS if index.internalPointer().item is not None else _NODE_FLAGS

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.DisplayRole):
        # called tens of thousands of times while a view paints: plain int roles, no Qt objects
        # made per call, and the common "nothing for this role" answered first
        if role not in _ROLES_WE_ANSWER or not index.isValid():
            return None
        node: _Node = index.internalPointer()
        if role == _DISPLAY:
            return self._display(node, index.column())
        if role == _FONT:
            return _style("bold") if self._highlight_items and self.is_highlighted(node) else None
        if role == _BACKGROUND:
            return _style("highlight") if self._highlight_items and self.is_highlighted(node) else None
        if role == _ALIGN:
            return _RIGHT if index.column() in (1, 3) else None
        if role == _TOOLTIP:
            return self._tooltip(node)
        if role == _PREFIX:
            return node.prefix
        return node.item  # ItemRole

    def _display(self, node: _Node, col: int) -> str | None:
        if node.is_leaf:
            if col == 0:
                item_id = self._item_ids[node.item] if self._item_ids is not None else node.item
                return f"{token(self._n_levels, node.prefix[-1])} {item_id}"
            if col == 2:
                return format_value(self._titles[node.item]) if self._titles is not None else ""
            if col == 4:
                summary = self.summary(node)
                return summary.label or ""
            return ""
        if col == 0:
            return token(node.depth - 1, node.prefix[-1])
        if col == 1:
            return count(node.count)
        summary = self.summary(node)
        if col == 2:
            return summary.label if summary.label is not None else ", ".join(summary.keywords)
        if col == 3:
            return percent(summary.purity)
        if col == 4:
            return ", ".join(summary.keywords)
        return None

    def _tooltip(self, node: _Node) -> str:
        if node.is_leaf:
            title = format_value(self._titles[node.item]) if self._titles is not None else ""
            return f"{sid_text(node.prefix)}\n{title}"
        summary = self.summary(node)
        lines = [f"{sid_text(node.prefix)}: {node.count:,} items"]
        if summary.top_labels:
            lines.append("; ".join(f"{name} ({n})" for name, n in summary.top_labels[:3]))
        if summary.keywords:
            lines.append("words: " + ", ".join(summary.keywords))
        return "\n".join(lines)

    def mimeTypes(self) -> list[str]:
        return [ITEMS_MIME]

    def mimeData(self, indexes) -> QMimeData:
        items = []
        for index in indexes:
            if index.isValid() and index.column() == 0:
                node: _Node = index.internalPointer()
                if node.is_leaf:
                    items.append(node.item)
        return items_mime(items)
