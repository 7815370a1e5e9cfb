"""PlaygroundPanel: its widgets and layout, the project's models, and what both sides share
(the highlighted items, the result tables)."""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QPushButton, QSizePolicy,
                               QSpinBox, QSplitter, QTableView, QVBoxLayout, QWidget)

from ....core.analysis.items import SimilaritySearch
from ....core.generative.evaluate import REPEAT_SHARE_TO_KEEP_HISTORY
from ...context import ProjectContext
from ...generative import ModelCache, ModelInfo, Recommendation, list_recommenders
from ...models.tables import RecordsTableModel
from ...search import JointAnswer, JointInfo, JointModelCache
from ...widgets import debounce
from .history_side import HistoryList, HistorySide
from .search_side import SearchSide


class PlaygroundPanel(SearchSide, HistorySide, QWidget):
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

        query_box = self._build_query_box()
        history_box = self._build_history_box()
        controls = self._build_controls()
        self._build_results()
        self._lay_out(query_box, history_box, controls)

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

    def _build_query_box(self) -> QGroupBox:
        """The search query: its text, the model that answers it and what that means."""
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
        return query_box

    def _build_history_box(self) -> QGroupBox:
        """The history: the list, its buttons, add by search, a real user's history."""
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
        return history_box

    def _build_controls(self) -> QGroupBox:
        """The recommendation settings: model, K, beam, sampling, constraints."""
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
        return controls

    def _build_results(self) -> None:
        """The two result tables (search results, recommendations) and their notes."""
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

    def _lay_out(self, query_box: QGroupBox, history_box: QGroupBox, controls: QGroupBox) -> None:
        """Inputs on the left; search results above recommendations on the right."""
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

    def _highlight(self) -> None:
        """Mark the paths of what the panel shows: the query's results and the recommendations."""
        items = list(dict.fromkeys([*self._query_items, *self._recommended_items]))
        self.context.highlightItems.emit(items)

    # -- the result tables

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

    def _on_result_activated(self, model: RecordsTableModel, index) -> None:
        idx = model.key(index.row())
        if idx is not None and int(idx) >= 0:
            self.context.revealItem.emit(int(idx))
