"""The playground's history side: the history list (drop, add by search, reorder, a real
user's history) and the generative recommender's top-K that follows every change of it."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from ....core.analysis.items import find_items, format_value
from ...generative import ModelInfo, RecommendRequest, Recommendation, recommend_history
from ...models.common import items_from_mime
from ...widgets import show_matches

if TYPE_CHECKING:  # the panel imports this module
    from .panel import PlaygroundPanel


class HistoryList(QListWidget):
    """The history being built: accepts items dropped from other views, reorders by dragging."""

    def __init__(self, panel: "PlaygroundPanel") -> None:
        super().__init__()
        self._panel = panel
        self.setDragDropMode(QAbstractItemView.DragDrop)
        self.setDefaultDropAction(Qt.MoveAction)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setAcceptDrops(True)

    def _external(self, event) -> list[int]:
        if event.source() is self:
            return []
        return items_from_mime(event.mimeData())

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._external(event):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if self._external(event):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        items = self._external(event)
        if not items:
            super().dropEvent(event)  # a reorder inside the list
            self._panel.history_changed()
            return
        row = self.indexAt(event.position().toPoint()).row()
        self._panel.add_to_history(items, at=None if row < 0 else row)
        event.acceptProposedAction()


class HistorySide:
    """The history and the recommendations of :class:`~.panel.PlaygroundPanel` (a part of it:
    it uses the panel's widgets, context and request counter)."""

    # -- recommendations

    @property
    def current_model(self) -> ModelInfo | None:
        model_id = self.model_combo.currentData()
        return next((m for m in self._models if m.id == model_id), None)

    def _on_sample_toggled(self, on: bool) -> None:
        self.temperature_spin.setEnabled(on and bool(self._models))
        self._rec_debounce.start()

    def recommend_settings(self) -> RecommendRequest | None:
        info = self.current_model
        if info is None:
            return None
        return RecommendRequest(
            history=tuple(self.history_items), model_id=info.id, k=self.k_spin.value(), beam=self.beam_spin.value(),
            temperature=self.temperature_spin.value() if self.sample_check.isChecked() else None,
            constrained=self.constrained_check.isChecked(), exclude_history=self.exclude_check.isChecked())

    @Slot()
    def update_recommendations(self) -> None:
        """Recompute the recommendations for the history (debounced caller; latest wins)."""
        self._rec_debounce.stop()
        request_id = next(self._requests)
        self._latest_recommend = request_id
        if not self.context.is_open:
            return
        request = self.recommend_settings()
        if request is None:
            return  # no model: _update_model_state says so
        if not request.history:
            self.recommendations.set_rows([])
            self.recommend_request = request_id
            self.last_recommendation = None
            self._recommended_items = []
            self.recommend_label.setText(f"Model #{request.model_id} is ready: load a user's history or add items "
                                         "on the left (search, or drag them from the tree or the catalogue) to see "
                                         "what it recommends next.")
            self._highlight()
            return
        cache = self._model_cache
        self.recommend_label.setText(f"Decoding with model #{request.model_id}…")
        self.context.submit(
            "Recommending", lambda store, cancel: recommend_history(store, request, cache, cancel),
            key="playground-recommend",
            on_result=lambda result: self._on_recommendation(request_id, result),
            on_error=lambda message: self._on_recommend_error(request_id, message))

    def _on_recommendation(self, request_id: int, rec: Recommendation) -> None:
        if request_id != self._latest_recommend or not self.context.is_open:
            return  # the inputs changed since this was asked
        self.recommend_request = request_id
        self.last_recommendation = rec
        rows, keys, tips, marked = [], [], [], []
        for r in rec.rows:
            valid = r["idx"] >= 0
            title = format_value(r["title"]) if valid else "(no item has this SID)"
            rows.append((r["rank"], title, r["sid"], round(r["score"], 4)))
            keys.append(r["idx"])
            tips.append(f"{r['item_id']}: {title}" if valid else "an SID the model wrote that is not in the catalogue")
            if not valid:
                marked.append(len(rows) - 1)
        self.recommendations.set_rows(rows, keys, tooltips=tips, marked=marked)
        req = rec.request
        how = (f"sampled at temperature {req.temperature:g} (score: sampling key)" if req.temperature is not None
               else f"beam {max(req.beam, req.k)} (score: {rec.score_meaning})")
        parts = [f"Top {len(rows)} from model #{rec.model.id} (step {rec.model.best_step:,}), {how}",
                 "constrained to real items" if req.constrained else
                 f"unconstrained: {rec.invalid} of {len(rows)} SIDs are no item (red)"]
        if req.exclude_history:
            parts.append("history left out")
        self.recommend_label.setText("; ".join(parts) + f"; {1000 * rec.seconds:.0f} ms.")
        self.recommend_label.setToolTip(f"Model #{rec.model.id} “{rec.model.name}”, its best checkpoint on validation "
                                        f"(step {rec.model.best_step:,}). The items' paths are highlighted in the "
                                        "SID tree; double-click a row to show it there.")
        self._recommended_items = rec.items
        self._highlight()

    def _on_recommend_error(self, request_id: int, message: str) -> None:
        if request_id != self._latest_recommend:
            return
        self.recommend_request = request_id
        self.recommendations.set_rows([])
        self._recommended_items = []
        self.recommend_label.setText(f"<span style='color:#b00020'>{html.escape(message)}</span>")
        self._highlight()

    @property
    def recommended_items(self) -> list[int]:
        return list(self._recommended_items)


    # -- history

    @property
    def history_items(self) -> list[int]:
        return [int(self.history.item(r).data(Qt.UserRole)) for r in range(self.history.count())]

    @Slot(list)
    def add_to_history(self, items: list[int], at: int | None = None) -> None:
        if not self.context.is_open:
            return
        records = self.context.store.get_items(items)
        row = self.history.count() if at is None else at
        for rec in records:
            entry = QListWidgetItem(f"{rec['item_id']}  {format_value(rec.get('title'))}")
            entry.setData(Qt.UserRole, int(rec["idx"]))
            self.history.insertItem(row, entry)
            row += 1
        self.history_changed()

    def remove_selected(self) -> None:
        for entry in self.history.selectedItems():
            self.history.takeItem(self.history.row(entry))
        self.history_changed()

    def clear_history(self) -> None:
        self.history.clear()
        self.history_changed()

    def _move_selected(self, step: int) -> None:
        row = self.history.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.history.count():
            return
        entry = self.history.takeItem(row)
        self.history.insertItem(target, entry)
        self.history.setCurrentRow(target)
        self.history_changed()

    @Slot()
    def load_user_history(self) -> None:
        """Replace the history with a real user's interactions (oldest first)."""
        if not self.context.is_open:
            return
        user = self.user_combo.currentData()
        text = self.user_combo.currentText().strip()
        if user is None or self.user_combo.itemText(self.user_combo.currentIndex()) != text:
            user = text
        if not user:
            return
        items = self.context.store.user_history(str(user))
        if not items:
            self.context.report_error(f"user '{user}' has no interactions in this project")
            return
        self.history.clear()
        self.add_to_history(items)
        self.history.scrollToBottom()  # the latest items are the ones the model reads most

    def history_changed(self) -> None:
        """The history changed: say how long it is (a generative model's recommendations follow it)."""
        n = self.history.count()
        self.history_box.setTitle(f"History: {n} item{'s' if n != 1 else ''}, oldest first "
                                  "(drop items here from the tree or the catalogue)")
        if self.context.is_open and self._models:
            self._rec_debounce.start()


    # -- add by search

    @Slot()
    def _find_to_add(self) -> None:
        text = self.add_edit.text().strip()
        self.add_matches.clear()
        self.add_matches.hide()
        if not text or not self.context.is_open:
            return
        self.context.submit("Finding items", lambda store, cancel: find_items(store, text, limit=30),
                            key="history-find", on_result=self._on_add_found)

    def _on_add_found(self, matches: list[tuple[int, str, str]]) -> None:
        if len(matches) == 1:
            self.add_to_history([matches[0][0]])
            self.add_edit.clear()
            return
        if not matches:
            self.results_label.setText(f"No item matches “{html.escape(self.add_edit.text().strip())}”.")
            return
        show_matches(self.add_matches, matches)

    def _on_add_match(self, entry: QListWidgetItem) -> None:
        self.add_to_history([int(entry.data(Qt.UserRole))])
        self.add_matches.hide()
        self.add_edit.clear()
