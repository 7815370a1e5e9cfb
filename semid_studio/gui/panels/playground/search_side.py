"""The playground's search side: which model answers a query (a joint model, or embedding
similarity), the query's debounced answer in a worker, and its results table."""

from __future__ import annotations

import html

from PySide6.QtCore import Slot

from ....core.analysis.items import SimilaritySearch, format_value
from ....core.errors import SemidError
from ....core.search import check_query
from ...context import freeze_long_lived, gc_paused
from ...models.sid_tree import sid_text
from ...search import JointAnswer, JointInfo, joint_query, list_joint_models


SIMILARITY = -1  # the "Search with" choice that ranks by embedding similarity


class SearchSide:
    """The query box and the search results of :class:`~.panel.PlaygroundPanel` (a part of it:
    it uses the panel's widgets, context and request counter)."""

    # -- which model answers

    def _update_search_models(self) -> None:
        """List the joint search models (newest first, the default) and say what answers queries."""
        store = self.context.store
        shown = self.current_search_model
        before = {m.id for m in self._joint_models}
        self._joint_models = [m for m in list_joint_models(store) if m.has_best] if store is not None else []
        keep = self.search_combo.currentData()
        if {m.id for m in self._joint_models} - before:
            keep = None  # a joint model just got its first checkpoint: the newest answers from now on
        self.search_combo.blockSignals(True)
        self.search_combo.clear()
        for info in reversed(self._joint_models):
            self.search_combo.addItem(f"joint model {info.describe()}", info.id)
        if self._has_embeddings:
            self.search_combo.addItem("embedding similarity (no model)", SIMILARITY)
        if keep is not None and self.search_combo.findData(keep) >= 0:
            self.search_combo.setCurrentIndex(self.search_combo.findData(keep))
        self.search_combo.blockSignals(False)
        usable = store is not None and self.search_combo.count() > 0
        self.query_edit.setEnabled(usable)
        self.search_combo.setEnabled(usable)
        self._update_query_note()
        now = self.current_search_model
        if store is not None and self.query_edit.text().strip() and (
                (shown is None) != (now is None) or (now is not None and (shown.id, shown.best_step)
                                                     != (now.id, now.best_step))):
            self._debounce.start()  # a new joint model or a new best checkpoint: answer again

    def _update_query_note(self) -> None:
        if self.context.store is None:
            self.query_note.setText("")
            return
        info = self.current_search_model
        if info is not None:
            self.query_note.setText(
                f"Generative search with joint model #{info.id} ({info.task}, query encoder {info.query_encoder}): "
                "the query is decoded into a Semantic ID by constrained beam search, so every result is a real item.")
        elif self._joint_models:
            self.query_note.setText("Ranked by embedding similarity (cosine between the encoded query and the item "
                                    "embeddings); choose a joint model above for generative search.")
        elif self._has_embeddings:
            self.query_note.setText(
                "No joint search model in this project yet: the query is ranked by embedding similarity "
                "(cosine between the encoded query and the item embeddings). Train one in Training → Generative "
                "model, task joint or search.")
        else:
            self.query_note.setText("This project has no item embeddings and no joint search model yet, so queries "
                                    "cannot be ranked.")

    @property
    def current_search_model(self) -> JointInfo | None:
        """The joint model that answers queries (None: embedding similarity)."""
        model_id = self.search_combo.currentData()
        return next((m for m in self._joint_models if m.id == model_id), None)

    def choose_search_model(self, model_id: int) -> None:
        """Answer queries with this joint model (if it has a checkpoint)."""
        index = self.search_combo.findData(model_id)
        if index >= 0:
            self.search_combo.setCurrentIndex(index)

    def _on_search_method_changed(self, *_args) -> None:
        self._update_query_note()
        self._debounce.start()


    # -- query results

    @Slot()
    def update_results(self) -> None:
        """Recompute the results from the current inputs (debounced caller; latest wins)."""
        self._debounce.stop()
        request = next(self._requests)
        self._latest_request = request
        text = self.query_edit.text().strip()
        if not self.context.is_open:
            return
        if not text:
            self.results.set_rows([])
            self.results_request = request
            self.results_label.setText("Type a query to rank the catalogue; build a history on the left.")
            self._query_items = []
            self._highlight()
            return
        k = self.k_spin.value()
        try:
            check_query(text)  # the core's one gate: empty, stop words only, too long
        except SemidError as exc:
            self._on_query_error(request, str(exc))
            return
        info = self.current_search_model
        if info is not None:
            cache = self._joint_cache
            self.results_label.setText(f"Searching with joint model #{info.id}…")
            self.context.submit(
                "Searching", lambda store, cancel: joint_query(store, text, info, cache, k=k, cancel=cancel),
                key="playground-query",
                on_result=lambda answer: self._on_joint_results(request, answer),
                on_error=lambda message: self._on_query_error(request, message))
            return
        if self._searcher is None:
            self._load_searcher()
            self.results_label.setText("Loading the embedding model…")
            return
        searcher = self._searcher
        self.results_label.setText(f"Ranking by embedding similarity to “{html.escape(text)}”…")
        self.context.runner.submit(
            "Ranking items", lambda cancel: searcher.query(text, k), key="playground-query",
            on_result=lambda result: self._on_results(request, text, result),
            on_error=self.context.report_error,
        )

    def _load_searcher(self) -> None:
        if self._searcher_loading:
            return
        self._searcher_loading = True

        def load(store, cancel):
            with gc_paused():  # importing transformers: see context.gc_paused
                searcher = SimilaritySearch.from_store(store)
                searcher.encode("warm up")  # loads the encoder here, not in the first query
            return searcher

        self.context.submit("Loading the embedding model", load, key="playground-searcher",
                            on_result=self._on_searcher, on_done=self._on_searcher_done)

    def _on_searcher(self, searcher: SimilaritySearch) -> None:
        freeze_long_lived()  # loading the encoder imported transformers: keep GC passes short
        if self.context.is_open:
            self._searcher = searcher
            self.update_results()

    def _on_searcher_done(self) -> None:
        self._searcher_loading = False

    def _on_query_error(self, request: int, message: str) -> None:
        """An unusable query (or a failed search): say why under the box, clear the results."""
        if request != self._latest_request:
            return
        self.results_request = request
        self.last_answer = None
        self.results.set_rows([])
        self.results_label.setText(f"<span style='color:#b00020'>{html.escape(message)}</span>")
        self._query_items = []
        self._highlight()

    def _on_joint_results(self, request: int, answer: JointAnswer) -> None:
        if request != self._latest_request or not self.context.is_open:
            return  # the inputs changed since this was asked
        self.results_request = request
        self.last_answer = answer
        result = answer.result
        rows, keys, tips = [], [], []
        for h in result.hits:
            title = format_value(h["title"])
            rows.append((h["rank"], title, h["sid"], h["score"]))
            keys.append(h["idx"])
            tips.append(f"{h['item_id']}: {title}")
        self.results.set_rows(rows, keys, tooltips=tips)
        parts = [f"Top {len(rows)} for “{html.escape(answer.text)}” from joint model #{answer.model.id} "
                 f"(step {answer.model.best_step:,}), constrained beam {answer.beam}: every result is a real item "
                 f"(score: SID log-probability); {1000 * result.seconds:.0f} ms. Their paths are highlighted in the "
                 "SID tree."]
        inspection = self.context.inspection
        if inspection is not None and answer.model.quantizer_run_id not in (None, inspection.run.id):
            parts.append(f"The SID column is the model's run #{answer.model.quantizer_run_id}; the tree shows run "
                         f"#{inspection.run.id}.")
        for warning in result.warnings:
            parts.append(f"<span style='color:#a15c00'>Note: {html.escape(warning)}.</span>")
        self.results_label.setText(" ".join(parts))
        self._query_items = keys
        self._highlight()

    def _on_results(self, request: int, text: str, result: list[tuple[int, float]]) -> None:
        if request != self._latest_request or not self.context.is_open:
            return  # the inputs changed since this was asked: a newer result is coming
        self.results_request = request
        self.last_answer = None
        inspection = self.context.inspection
        rows, keys = [], []
        for rank, (idx, score) in enumerate(result, start=1):
            sid = sid_text(inspection.run.codes[idx]) if inspection is not None and idx < inspection.run.n_items else ""
            rows.append((rank, format_value(self.context.item_title(idx)), sid, round(score, 4)))
            keys.append(idx)
        self.results.set_rows(rows, keys)
        how = "chosen above" if self._joint_models else "no joint search model yet"
        self.results_label.setText(
            f"Top {len(rows)} items for “{html.escape(text)}”, ranked by embedding similarity (cosine) — {how}. "
            "Their paths are highlighted in the SID tree.")
        self._query_items = keys
        self._highlight()
