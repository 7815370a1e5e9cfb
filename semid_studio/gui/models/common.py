"""Helpers shared by the item models: the drag-and-drop format for items, number formatting."""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData

#: items dragged between views (catalogue, tree, playground history): a JSON list of idx
ITEMS_MIME = "application/x-semid-items"


def items_mime(idxs) -> QMimeData:
    """Mime data carrying item idxs (and their idxs as text, for dropping into editors)."""
    idxs = [int(i) for i in idxs]
    mime = QMimeData()
    mime.setData(ITEMS_MIME, json.dumps(idxs).encode())
    mime.setText(" ".join(str(i) for i in idxs))
    return mime


def items_from_mime(mime: QMimeData) -> list[int]:
    """The item idxs of a drop, or [] when the drop is not ours."""
    if not mime.hasFormat(ITEMS_MIME):
        return []
    try:
        return [int(i) for i in json.loads(bytes(mime.data(ITEMS_MIME)).decode())]
    except (ValueError, TypeError):
        return []


def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"
