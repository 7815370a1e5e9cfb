"""The embedding strategy form: item embeddings made for search, for recommendation or both
(content, search-tuned, rec-tuned, multi-task, fused)."""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QWidget

from ....core.errors import SemidError
from ....core.search import queries as core_queries
from ....core.search import strategies as core_strategies
from ...context import ProjectContext
from ...search import STRATEGY_LABELS
from ...widgets import refill_combo
from .fields import name_edit, overrides_edit, parse_overrides, seed_spin, spec_label


class StrategyForm(QWidget):
    """Make an embedding set with a strategy (content, search-tuned, rec-tuned, multi-task, fused)."""

    title = "Embedding strategy (item embeddings for SIDs)"
    cancelled_text = "Cancelled; no embedding set was saved (the project is as it was)."
    changed = Signal()

    STRATEGY_TIPS = {
        "content": "The project's sentence encoder as it is",
        "search": "The encoder fine-tuned on (training query, item text) pairs, in-batch negatives",
        "rec": "Collaborative item vectors from the training interactions (PPMI-SVD or BPR)",
        "multitask": "One encoder fine-tuned on query→item plus item→item (co-occurring) contrastive losses",
        "fused-concat": "Search-tuned and rec-tuned vectors, normalised and concatenated",
        "fused-svd": "Search-tuned and rec-tuned vectors projected to one size by PCA and summed",
    }

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.strategy_combo = QComboBox()
        for strategy in core_strategies.STRATEGIES:
            self.strategy_combo.addItem(STRATEGY_LABELS.get(strategy, strategy), strategy)
            self.strategy_combo.setItemData(self.strategy_combo.count() - 1, self.STRATEGY_TIPS.get(strategy, ""),
                                            Qt.ToolTipRole)
        self.preset_combo = QComboBox()
        self.preset_combo.addItem("(defaults)", None)
        for name in core_strategies.PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.setToolTip("laptop: one pass over at most 5,000 pairs, texts cut at 128 word pieces; "
                                     "paper: 3 passes over every pair (a GPU is advisable)")
        self.seed_spin = seed_spin()
        self.search_source = QComboBox()
        self.rec_source = QComboBox()
        for combo in (self.search_source, self.rec_source):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(20)
        self.overrides_edit = overrides_edit("epochs=2, max_pairs=2000, rec_method=bpr")
        self.name_edit = name_edit()
        self.force_check = QCheckBox("Make a new set even if one with these settings exists")
        self.spec_label = spec_label()

        form = QFormLayout(self)
        form.addRow("Strategy", self.strategy_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Search-tuned set", self.search_source)
        form.addRow("Rec-tuned set", self.rec_source)
        form.addRow("More settings", self.overrides_edit)
        form.addRow("Set name", self.name_edit)
        form.addRow("", self.force_check)
        form.addRow(self.spec_label)

        self.strategy_combo.currentIndexChanged.connect(self._update_spec)
        self.preset_combo.currentIndexChanged.connect(self._update_spec)
        self.seed_spin.valueChanged.connect(self._update_spec)
        self.search_source.currentIndexChanged.connect(self._update_spec)
        self.rec_source.currentIndexChanged.connect(self._update_spec)
        self.overrides_edit.textChanged.connect(self._update_spec)
        self._update_spec()

    @property
    def strategy(self) -> str:
        return self.strategy_combo.currentData()

    def spec(self):
        overrides: dict[str, Any] = {"seed": self.seed_spin.value()}
        overrides.update(parse_overrides(self.overrides_edit.text()))
        return core_strategies.make_spec(preset=self.preset_combo.currentData(), overrides=overrides)

    def sources(self) -> list[int] | None:
        if not self.strategy.startswith("fused"):
            return None
        return [self.search_source.currentData(), self.rec_source.currentData()]

    def _problem(self) -> str | None:
        store = self.context.store
        strategy = self.strategy
        if store is not None:
            if strategy in core_strategies.FINE_TUNED and store.query_count(core_queries.TRAIN_SPLIT) < 2:
                return ("fine-tuning learns from the project's training queries, and it has none: generate them "
                        "(Search queries form) or import a query log")
            if strategy in ("rec", "multitask") and store.interaction_count() == 0:
                return "this strategy learns from interactions, and the project has none"
            if strategy.startswith("fused") and (self.search_source.currentData() is None
                                                 or self.rec_source.currentData() is None):
                return "a fused set needs a search-tuned set and a rec-tuned set: make them first"
        try:
            self.spec()
        except SemidError as exc:
            return str(exc)
        return None

    @Slot()
    def _update_spec(self, *_args) -> None:
        fused = self.strategy.startswith("fused")
        self.search_source.setEnabled(fused)
        self.rec_source.setEnabled(fused)
        problem = self._problem()
        if problem:
            self.spec_label.setText(f"<span style='color:#b00020'>{html.escape(problem)}</span>")
        else:
            spec = self.spec()
            keep = core_strategies._key_spec(self.strategy, spec) if self.strategy != "content" else \
                {"model": spec.model, "template": spec.template}
            fields = ", ".join(f"{k}={v}" for k, v in keep.items())
            tip = self.STRATEGY_TIPS.get(self.strategy, "")
            self.spec_label.setText(f"{html.escape(tip)}.<br><span style='color:#555'>{html.escape(fields)}</span><br>"
                                    "<span style='color:#555'>Then fit a quantiser on the new set (Quantiser form, "
                                    "Embeddings) to get its Semantic IDs.</span>")
        self.changed.emit()

    def is_valid(self) -> bool:
        return self.context.store is not None and self._problem() is None

    def refresh(self) -> None:
        store = self.context.store
        sets = list(reversed(store.list_embedding_sets())) if store is not None else []
        for combo, strategy in ((self.search_source, "search"), (self.rec_source, "rec")):
            refill_combo(combo, [(emb.describe(), emb.id) for emb in sets if emb.strategy == strategy])
        self._update_spec()

    def build_task(self) -> tuple[str, Callable]:
        problem = self._problem()
        if problem:
            raise SemidError(problem)
        strategy, spec, sources = self.strategy, self.spec(), self.sources()
        name = self.name_edit.text().strip() or None
        force = self.force_check.isChecked()

        def body(store, cancel):
            return (yield from core_strategies.build_embedding(store, strategy, spec, sources=sources, name=name,
                                                               force=force, cancel=cancel))

        return f"Making {STRATEGY_LABELS.get(strategy, strategy)} embeddings (seed {spec.seed})", body

    def outcome(self, set_id: int) -> tuple[str, float]:
        return f"Finished: embedding set #{set_id}.", 1.0

    def describe_result(self, set_id: int) -> str:
        emb = next(e for e in self.context.store.list_embedding_sets() if e.id == set_id)
        p = emb.params or {}
        lines = [f"Embedding set #{emb.id} “{emb.name}”: {emb.n_items:,} items × {emb.dim} dims, strategy "
                 f"{STRATEGY_LABELS.get(emb.strategy, emb.strategy)}."]
        for key, label in (("train_queries", "training queries"), ("steps", "steps"), ("pairs_per_s", "pairs/s"),
                           ("loss_first", "loss first"), ("loss_last", "loss last"), ("rec_method", "rec method"),
                           ("queries_truncated_share", "share of queries cut"), ("how", "how")):
            if key in p:
                lines.append(f"  {label}: {p[key]}")
        lines += ["", "Fit a quantiser on it (Quantiser form → Embeddings) to get its Semantic IDs;",
                  "the Strategies view compares SID spaces and the joint models trained on them."]
        return "\n".join(lines)

    def after_success(self, set_id: int) -> None:
        self.context.contentChanged.emit()
