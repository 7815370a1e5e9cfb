"""PlaygroundPanel: type a query or build a history, and read the top-K items live.

Queries are answered by the project's joint search + rec model (generative search: the query
is decoded into a Semantic ID by constrained beam search, :func:`semid_studio.core.generative.joint.joint_search`)
when it has one; otherwise, or when the user picks it, they are ranked by embedding similarity
(:class:`semid_studio.core.analysis.items.SimilaritySearch`), and the panel says which. The history builder (add by
search, from the tree or catalogue by drag and drop, reorder, remove, or load a real user's
history) feeds the generative recommender: once the project has a trained model, its top-K
items (title, SID, score) follow every change of the history and of the decoding controls
(K, beam width, temperature sampling, constrained or not, leave out the history).

Every change of the inputs is debounced, computed in a worker and tagged with a request
number: a result that is not the latest is dropped. The result items' paths are highlighted
in the SID tree.
"""

from __future__ import annotations

import html
import itertools

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...core.analysis.items import SimilaritySearch, find_items, format_value
from ...core.errors import SemidError
from ...core.generative.evaluate import REPEAT_SHARE_TO_KEEP_HISTORY
from ...core.search import check_query
from ..context import ProjectContext, freeze_long_lived, gc_paused
from ..generative import ModelCache, ModelInfo, Recommendation, RecommendRequest, list_recommenders, \
    recommend_history
from ..models.common import items_from_mime
from ..models.sid_tree import sid_text
from ..models.tables import RecordsTableModel
from ..search import JointAnswer, JointInfo, JointModelCache, joint_query, list_joint_models
from ..widgets import debounce

SIMILARITY = -1  # the "Search with" choice that ranks by embedding similarity


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


class PlaygroundPanel(QWidget):
    """Query and history in, top-K items out."""

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._requests = itertools.count(1)
        self._latest_request = 0
        self._searcher: SimilaritySearch | None = None
        self._searcher_loading = False
        self.results_request = 0  # the request whose results are shown (tests wait on this)
        self._latest_recommend = 0
        self.recommend_request = 0  # the recommendation request whose rows are shown
        self.last_recommendation: Recommendation | None = None
        self._models: list[ModelInfo] = []
        self._model_cache = ModelCache()  # the loaded model, for the workers (the GUI never touches it)
        self._joint_models: list[JointInfo] = []
        self._joint_cache = JointModelCache()
        self._has_embeddings = False
        self.last_answer: JointAnswer | None = None  # the joint model's answer shown (None: similarity)
        self._query_items: list[int] = []
        self._recommended_items: list[int] = []

        # -- query
        self.query_edit = QLineEdit()
        self.query_edit.setPlaceholderText("Describe what you are looking for…")
        self.query_edit.setClearButtonEnabled(True)
        self.query_note = QLabel("")
        self.query_note.setWordWrap(True)
        self.query_note.setStyleSheet("color: #555")
        self.search_combo = QComboBox()
        self.search_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.search_combo.setMinimumContentsLength(12)
        self.search_combo.setToolTip("What answers the query: a joint search + rec model (generative search, "
                                     "the newest by default) or embedding similarity")
        query_box = QGroupBox("Search query")
        ql = QVBoxLayout(query_box)
        ql.addWidget(self.query_edit)
        search_row = QHBoxLayout()
        search_row.addWidget(QLabel("Search with"))
        search_row.addWidget(self.search_combo, 1)
        ql.addLayout(search_row)
        ql.addWidget(self.query_note)

        # -- history
        self.history = HistoryList(self)
        self.history.model().rowsMoved.connect(self.history_changed)
        self.add_edit = QLineEdit()
        self.add_edit.setPlaceholderText("Add an item by id or title, then Enter…")
        self.add_matches = QListWidget()
        self.add_matches.setMaximumHeight(110)
        self.add_matches.hide()
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.clear_button = QPushButton("Clear")
        self.user_combo = QComboBox()
        self.user_combo.setEditable(True)
        self.user_combo.setToolTip("A user of the project's interactions (the most active first); type any user id")
        self.user_combo.setMinimumWidth(160)
        self.load_user_button = QPushButton("Load history")
        history_box = self.history_box = QGroupBox("")
        hl = QVBoxLayout(history_box)
        hl.addWidget(self.history, 1)
        buttons = QHBoxLayout()
        for b in (self.up_button, self.down_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        hl.addLayout(buttons)
        hl.addWidget(self.add_edit)
        hl.addWidget(self.add_matches)
        user_row = QHBoxLayout()
        user_row.addWidget(QLabel("User"))
        user_row.addWidget(self.user_combo, 1)
        user_row.addWidget(self.load_user_button)
        hl.addLayout(user_row)

        # -- generation controls
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setToolTip("The generative model that recommends from the history (its best checkpoint "
                                    "on validation)")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 200)
        self.k_spin.setValue(10)
        self.beam_spin = QSpinBox()
        self.beam_spin.setRange(1, 256)
        self.beam_spin.setValue(20)
        self.beam_spin.setToolTip("Beam search keeps this many SID prefixes at each step (raised to K when smaller)")
        self.sample_check = QCheckBox("Sample with temperature")
        self.sample_check.setToolTip("Draw K distinct items at random (stochastic beam search) instead of the K most "
                                     "likely: higher temperature, more diverse lists")
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.1, 5.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setValue(1.0)
        self.constrained_check = QCheckBox("Constrained to valid SIDs")
        self.constrained_check.setChecked(True)
        self.constrained_check.setToolTip("Every decoding step may only pick codes that lead to a real item; "
                                          "unchecked, SIDs that no item has are shown as invalid")
        self.exclude_check = QCheckBox("Leave out items of the history")
        controls = QGroupBox("Recommendation settings")
        form = QFormLayout(controls)
        form.addRow("Model", self.model_combo)
        form.addRow("Top K", self.k_spin)
        form.addRow("Beam width", self.beam_spin)
        temp_row = QHBoxLayout()
        temp_row.addWidget(self.sample_check)
        temp_row.addWidget(self.temperature_spin)
        form.addRow("", temp_row)
        form.addRow("", self.constrained_check)
        form.addRow("", self.exclude_check)
        self._model_controls = (self.model_combo, self.beam_spin, self.sample_check, self.temperature_spin,
                                self.constrained_check, self.exclude_check)
        self._tooltips = {w: w.toolTip() for w in self._model_controls}  # shown again once a model exists

        # -- results
        self.results_label = QLabel("")
        self.results_label.setWordWrap(True)
        self.results_label.setTextFormat(Qt.RichText)  # warnings in colour; query text is escaped
        self.results = RecordsTableModel(["Rank", "Title", "SID", "Score"], self, drag_items=True)
        self.results_view = self._results_table(self.results)
        self.recommend_label = QLabel("")
        self.recommend_label.setWordWrap(True)
        for label in (self.results_label, self.recommend_label):
            # a wrapped label must get the height of its lines, not be squeezed by the table below
            label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.recommendations = RecordsTableModel(["Rank", "Title", "SID", "Score"], self, drag_items=True)
        self.recommend_view = self._results_table(self.recommendations)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(query_box)
        left_layout.addWidget(history_box, 1)
        left_layout.addWidget(controls)
        search_box = QGroupBox("Search results")
        sl = QVBoxLayout(search_box)
        sl.addWidget(self.results_label)
        sl.addWidget(self.results_view, 1)
        rec_box = QGroupBox("Recommendations")
        rl = QVBoxLayout(rec_box)
        rl.addWidget(self.recommend_label)
        rl.addWidget(self.recommend_view, 1)
        right = QSplitter(Qt.Vertical)
        right.addWidget(search_box)
        right.addWidget(rec_box)
        right.setSizes([300, 450])
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self._debounce = debounce(self, 250, self.update_results)
        self._rec_debounce = debounce(self, 150, self.update_recommendations)
        # (wrapped: connected directly, a signal's value would pick QTimer.start(msec) and change the delay)
        self.query_edit.textChanged.connect(lambda *_: self._debounce.start())
        self.k_spin.valueChanged.connect(lambda *_: self._debounce.start())
        self.search_combo.currentIndexChanged.connect(self._on_search_method_changed)
        for signal in (self.k_spin.valueChanged, self.beam_spin.valueChanged, self.temperature_spin.valueChanged,
                       self.constrained_check.toggled, self.exclude_check.toggled,
                       self.model_combo.currentIndexChanged):
            signal.connect(lambda *_: self._rec_debounce.start())
        self.sample_check.toggled.connect(self._on_sample_toggled)
        self.add_edit.returnPressed.connect(self._find_to_add)
        self.add_matches.itemActivated.connect(self._on_add_match)
        self.add_matches.itemClicked.connect(self._on_add_match)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear_history)
        self.up_button.clicked.connect(lambda: self._move_selected(-1))
        self.down_button.clicked.connect(lambda: self._move_selected(+1))
        self.load_user_button.clicked.connect(self.load_user_history)
        self.user_combo.lineEdit().returnPressed.connect(self.load_user_history)

        context.projectOpened.connect(self._on_project_opened)
        context.projectClosed.connect(self._on_project_closed)
        context.inspectionChanged.connect(self._refresh_result_sids)
        context.contentChanged.connect(self._update_model_state)
        context.modelsChanged.connect(self._update_model_state)
        context.addToHistory.connect(self.add_to_history)
        self._on_project_closed()

    def _results_table(self, model: RecordsTableModel) -> QTableView:
        view = QTableView()
        view.setModel(model)
        view.setSelectionBehavior(QAbstractItemView.SelectRows)
        view.setDragEnabled(True)
        view.verticalHeader().hide()
        view.setWordWrap(False)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        view.doubleClicked.connect(lambda index, m=model: self._on_result_activated(m, index))
        return view

    # -- project

    @Slot()
    def _on_project_opened(self) -> None:
        store = self.context.store
        self._searcher = None
        self.user_combo.clear()
        for user, n in store.users(limit=500):
            self.user_combo.addItem(f"{user}", user)
            self.user_combo.setItemData(self.user_combo.count() - 1, f"{n} interactions", Qt.ToolTipRole)
        self.user_combo.setEditText("")
        self.user_combo.lineEdit().setPlaceholderText(
            "Pick or type a user id…" if self.user_combo.count() else "No interactions in this project")
        # where (almost) nobody buys an item twice, a recommendation of a history item is wasted
        # a scan of every interaction (seconds at millions): measured in a worker, not here
        self.context.submit("Measuring repeat interactions", lambda store, cancel: store.repeat_share(),
                            key="playground-repeats", on_result=self._on_repeat_share)
        self._has_embeddings = bool(store.list_embedding_sets())
        for w in (self.add_edit, self.user_combo, self.load_user_button):
            w.setEnabled(True)
        self._update_model_state()
        self.update_results()

    def _on_repeat_share(self, share: float) -> None:
        leave_out = share < REPEAT_SHARE_TO_KEEP_HISTORY
        self.exclude_check.setChecked(leave_out)
        self.exclude_check.setToolTip(f"{share:.1%} of this project's interactions repeat an item the user had "
                                      "before" + ("; left out by default" if leave_out else ""))
        self._tooltips[self.exclude_check] = self.exclude_check.toolTip()

    @Slot()
    def _on_project_closed(self) -> None:
        self._searcher = None
        self._latest_request = next(self._requests)  # drop anything still on its way
        self._latest_recommend = next(self._requests)
        self._model_cache.clear()
        self._joint_cache.clear()
        self._joint_models = []
        self._has_embeddings = False
        self.last_answer = None
        self._query_items, self._recommended_items = [], []
        self.last_recommendation = None
        self.history.clear()
        self.history_changed()
        self.results.set_rows([])
        self.recommendations.set_rows([])
        self.results_label.setText("Open a project to try queries and histories.")
        self.query_note.setText("")
        for w in (self.query_edit, self.add_edit, self.user_combo, self.load_user_button, self.search_combo):
            w.setEnabled(False)
        self._update_model_state()

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

    @Slot()
    def _update_model_state(self) -> None:
        """List the trained generative models; enable their controls; recompute if the model changed."""
        self._update_search_models()
        store = self.context.store
        self._models = [m for m in list_recommenders(store) if m.has_best] if store is not None else []
        keep = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for info in reversed(self._models):  # the newest first: the default
            self.model_combo.addItem(info.describe(), info.id)
        if keep is not None and self.model_combo.findData(keep) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(keep))
        self.model_combo.blockSignals(False)
        has_model = bool(self._models)
        for w in self._model_controls:
            w.setEnabled(has_model)
            w.setToolTip(self._tooltips[w] if has_model else "Used by the generative model; this project has none "
                         "trained yet")
        self.temperature_spin.setEnabled(has_model and self.sample_check.isChecked())
        self.exclude_check.setEnabled(has_model)
        if store is None:
            self.recommend_label.setText("")
        elif not has_model:
            self.recommendations.set_rows([])
            self._recommended_items = []
            self.recommend_label.setText(
                "Recommendations from the history need a trained generative model; this project has none yet "
                "(train one in Training → Generative model, task rec or joint).")
        elif not self.history.count():
            self.update_recommendations()  # says what to do next: the model is there, the history is not
        shown = self.last_recommendation
        info = self.current_model
        if has_model and self.history.count() and (shown is None or info is None or shown.model.id != info.id
                                                   or shown.model.best_step != info.best_step):
            self._rec_debounce.start()  # a new model or a new best checkpoint: recompute

    @property
    def current_model(self) -> ModelInfo | None:
        model_id = self.model_combo.currentData()
        return next((m for m in self._models if m.id == model_id), None)

    def _on_sample_toggled(self, on: bool) -> None:
        self.temperature_spin.setEnabled(on and bool(self._models))
        self._rec_debounce.start()

    def _highlight(self) -> None:
        """Mark the paths of what the panel shows: the query's results and the recommendations."""
        items = list(dict.fromkeys([*self._query_items, *self._recommended_items]))
        self.context.highlightItems.emit(items)

    # -- recommendations

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
               else f"beam {max(req.beam, req.k)} (score: SID log-probability)")
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

    @Slot()
    def _refresh_result_sids(self) -> None:
        if self.results.rowCount() and self.context.inspection is not None and self.last_answer is None:
            self.update_results()  # similarity rows show the inspected run's SIDs (a joint model's are its own)

    @property
    def result_items(self) -> list[int]:
        return self.results.keys

    @property
    def pending(self) -> bool:
        """A debounced recomputation is waiting to start."""
        return self._debounce.isActive() or self._rec_debounce.isActive()

    @property
    def recommended_items(self) -> list[int]:
        return list(self._recommended_items)

    def _on_result_activated(self, model: RecordsTableModel, index) -> None:
        idx = model.key(index.row())
        if idx is not None and int(idx) >= 0:
            self.context.revealItem.emit(int(idx))

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
        for idx, item_id, title in matches:
            entry = QListWidgetItem(f"{item_id}  {format_value(title)}")
            entry.setData(Qt.UserRole, idx)
            self.add_matches.addItem(entry)
        self.add_matches.show()

    def _on_add_match(self, entry: QListWidgetItem) -> None:
        self.add_to_history([int(entry.data(Qt.UserRole))])
        self.add_matches.hide()
        self.add_edit.clear()
