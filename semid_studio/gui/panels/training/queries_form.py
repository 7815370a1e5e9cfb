"""The search queries form: generate training and test queries (known-item, category-path,
template) with a preset and a seed."""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from ....core.analysis.items import format_value
from ....core.errors import SemidError
from ....core.search import queries as core_queries
from ...context import ProjectContext
from .fields import overrides_edit, parse_overrides, seed_spin, spec_label


class QueriesForm(QWidget):
    """Generate search queries from the catalogue (known-item, category-path, attribute templates)."""

    title = "Search queries (generate from the catalogue)"
    cancelled_text = "Cancelled; the project's queries are as they were."
    changed = Signal()

    METHOD_TIPS = {
        "known-item": "Terms drawn from the item's own text, weighted by how discriminative they are "
                      "(Azzopardi, de Rijke and Balog, SIGIR 2007)",
        "category-path": "The leaf category plus some of its ancestors (Ai et al., SIGIR 2017)",
        "template": "The item's category with its brand, a price band or another field (\"lipstick under $10\")",
    }

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.method_combo = QComboBox()
        for method in core_queries.METHODS:
            self.method_combo.addItem(method, method)
            self.method_combo.setItemData(self.method_combo.count() - 1, self.METHOD_TIPS.get(method, ""),
                                          Qt.ToolTipRole)
        self.preset_combo = QComboBox()
        self.preset_combo.addItem("(choose to fill in)", None)
        for name in core_queries.PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.setToolTip("laptop: 4 + 2 per item; paper: 10 + 10 per item, no title words")
        self.per_item_spin = QSpinBox()
        self.per_item_spin.setRange(1, 100)
        self.per_item_spin.setToolTip("Training queries per item")
        self.test_spin = QSpinBox()
        self.test_spin.setRange(0, 100)
        self.test_spin.setToolTip("Test queries per item: held out, never trained on")
        self.seed_spin = seed_spin()
        self.exclude_title_check = QCheckBox("Leave title words out (known-item)")
        self.exclude_title_check.setToolTip("Queries never contain a word of the item's title, as people who cannot "
                                            "remember the title ask")
        self.overrides_edit = overrides_edit("fields=title,description, noise=0.1")
        self.spec_label = spec_label()
        self.counts_label = QLabel("")
        self.counts_label.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow("Generator", self.method_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Train per item", self.per_item_spin)
        form.addRow("Test per item", self.test_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("", self.exclude_title_check)
        form.addRow("More settings", self.overrides_edit)
        form.addRow(self.spec_label)
        form.addRow(self.counts_label)

        base = core_queries.QuerySpec()
        self.per_item_spin.setValue(base.per_item)
        self.test_spin.setValue(base.test_per_item)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.method_combo.currentIndexChanged.connect(self._update_spec)
        for spin in (self.per_item_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self._update_spec)
        self.exclude_title_check.toggled.connect(self._update_spec)
        self.overrides_edit.textChanged.connect(self._update_spec)
        self._update_spec()

    def _on_preset_changed(self, *_args) -> None:
        name = self.preset_combo.currentData()
        if name is None:
            return
        values = core_queries.PRESETS[name]
        self.per_item_spin.setValue(int(values.get("per_item", self.per_item_spin.value())))
        self.test_spin.setValue(int(values.get("test_per_item", self.test_spin.value())))
        self.exclude_title_check.setChecked(bool(values.get("exclude_title", False)))

    def spec(self):
        """The protocol the widgets describe (the widgets are the truth; a preset only fills them)."""
        overrides: dict[str, Any] = {"per_item": self.per_item_spin.value(), "test_per_item": self.test_spin.value(),
                                     "seed": self.seed_spin.value(),
                                     "exclude_title": self.exclude_title_check.isChecked()}
        overrides.update(parse_overrides(self.overrides_edit.text()))
        return core_queries.make_spec(self.method_combo.currentData(), overrides=overrides)

    @Slot()
    def _update_spec(self, *_args) -> None:
        self.exclude_title_check.setEnabled(self.method_combo.currentData() == "known-item")
        try:
            spec = self.spec()
        except SemidError as exc:
            self.spec_label.setText(f"<span style='color:#b00020'>{html.escape(str(exc))}</span>")
        else:
            self.spec_label.setText(f"<span style='color:#555'>{html.escape(core_queries.describe_spec(spec))}. "
                                    "Generating again replaces the earlier generated queries (imported ones are "
                                    "kept); test queries never reach a training step.</span>")
        self.changed.emit()

    def is_valid(self) -> bool:
        try:
            self.spec()
        except SemidError:
            return False
        return self.context.store is not None and self.context.store.item_count() > 0

    def refresh(self) -> None:
        store = self.context.store
        if store is None:
            self.counts_label.setText("")
            return
        rows = core_queries.query_protocols(store)
        if not rows:
            self.counts_label.setText("This project has no queries yet.")
        else:
            parts = [f"{r['n']:,} {r['source']} {r['split']}" for r in rows]
            self.counts_label.setText("The project's queries now: " + ", ".join(parts) + ".")
        self._update_spec()

    def build_task(self) -> tuple[str, Callable]:
        spec = self.spec()

        def body(store, cancel):
            return (yield from core_queries.generate_queries(store, spec, cancel=cancel))

        return f"Generating {spec.method} queries", body

    def outcome(self, protocol: dict) -> tuple[str, float]:
        return f"Finished: {protocol['n_train']:,} train and {protocol['n_test']:,} test queries.", 1.0

    def describe_result(self, protocol: dict) -> str:
        store = self.context.store
        lines = [f"Saved {protocol['n_train']:,} train and {protocol['n_test']:,} test queries "
                 f"({protocol['method']}, seed {protocol['seed']}) for {protocol['n_items']:,} items.",
                 f"Protocol: {protocol.get('reference', '')}."]
        if protocol.get("items_short"):
            lines.append(f"{protocol['items_short']:,} items could not give that many distinct queries and got fewer.")
        examples = store.queries_frame(split=core_queries.TRAIN_SPLIT, source=core_queries.GENERATED).head(6)
        if len(examples):
            titles = {int(r["idx"]): format_value(r.get("title")) for r in store.get_items(
                [int(i) for i in examples["item_idx"]])}
            lines += ["", "Examples (query → item):"]
            lines += [f"  {t}  →  {titles.get(int(i), i)}" for t, i in zip(examples["text"], examples["item_idx"])]
        lines += ["", "Next: an embedding strategy fine-tuned on them (Embedding strategy),",
                  "or a joint search + rec model (Generative model, task joint)."]
        return "\n".join(lines)

    def after_success(self, protocol: dict) -> None:
        self.context.contentChanged.emit()
