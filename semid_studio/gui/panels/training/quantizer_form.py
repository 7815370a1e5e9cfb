"""The quantiser form: fit RQ-KMeans or RQ-VAE on an embedding set (made first when the
project has none)."""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from ....core import quantize
from ....core.embed import BUNDLED_MODEL
from ....core.errors import SemidError
from ....core.pipeline import embed_catalogue
from ....core.sids import format_health
from ...context import ProjectContext
from .fields import name_edit, overrides_edit, parse_overrides, seed_spin, spec_label


NEW_EMBEDDING = -1


class QuantizerForm(QWidget):
    """Settings of a quantiser fit: method, preset, the main sizes and any other spec field."""

    title = "Quantiser (Semantic IDs)"
    cancelled_text = "Cancelled; the step in flight was not saved (finished steps are in the project)."
    #: the resolved settings changed (valid or not)
    changed = Signal()

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(quantize.METHODS))
        self.preset_combo = QComboBox()
        self.levels_spin = QSpinBox()
        self.levels_spin.setRange(1, 25)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(2, 65536)
        self.seed_spin = seed_spin()
        self.overrides_edit = overrides_edit("n_iter=10, balanced=none")
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.setToolTip("Field to measure prefix purity against: 'field' or 'field[i]'")
        self.embedding_combo = QComboBox()
        self.embedding_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.embedding_combo.setMinimumContentsLength(24)
        self.template_edit = QLineEdit()
        self.template_edit.setPlaceholderText("Title: {title}; Brand: {brand}")
        self.name_edit = name_edit()
        self.spec_label = spec_label()

        form = QFormLayout(self)
        form.addRow("Method", self.method_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Levels", self.levels_spin)
        form.addRow("Codes per level", self.size_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("More settings", self.overrides_edit)
        form.addRow("Purity against", self.label_combo)
        form.addRow("Embeddings", self.embedding_combo)
        form.addRow("Template (new)", self.template_edit)
        form.addRow("Run name", self.name_edit)
        form.addRow(self.spec_label)

        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        for spin in (self.levels_spin, self.size_spin, self.seed_spin):
            spin.valueChanged.connect(self._update_spec)
        self.overrides_edit.textChanged.connect(self._update_spec)
        self.embedding_combo.currentIndexChanged.connect(self._on_embedding_changed)
        self._on_method_changed()

    # -- widgets <-> spec

    def _on_method_changed(self, *_args) -> None:
        method = self.method_combo.currentText()
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems(list(quantize.PRESETS[method]))
        self.preset_combo.blockSignals(False)
        self._on_preset_changed()

    def _preset_spec(self):
        """The chosen preset; the default one sized to the open project's catalogue."""
        method, preset = self.method_combo.currentText(), self.preset_combo.currentText()
        store = self.context.store
        if store is None:
            return quantize.PRESETS[method][preset]
        return quantize.sized_spec(method, store.item_count(), preset)

    def _on_preset_changed(self, *_args) -> None:
        spec = self._preset_spec()
        for spin, value in ((self.levels_spin, spec.levels), (self.size_spin, spec.codebook_size),
                            (self.seed_spin, spec.seed)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._update_spec()

    def _on_embedding_changed(self, *_args) -> None:
        self.template_edit.setEnabled(self.embedding_combo.currentData() == NEW_EMBEDDING)

    def spec(self):
        """The spec the widgets describe (raises SemidError / InputError when a value is bad)."""
        method, preset = self.method_combo.currentText(), self.preset_combo.currentText()
        base = self._preset_spec()
        overrides: dict[str, Any] = parse_overrides(self.overrides_edit.text())
        for key, spin in (("levels", self.levels_spin), ("codebook_size", self.size_spin), ("seed", self.seed_spin)):
            if spin.value() != getattr(base, key) and key not in overrides:
                overrides[key] = spin.value()
        for key in ("levels", "codebook_size"):  # the catalogue-sized values of the default preset
            overrides.setdefault(key, getattr(base, key))
        return quantize.make_spec(method, preset, overrides)

    @Slot()
    def _update_spec(self, *_args) -> None:
        try:
            spec = self.spec()
        except SemidError as exc:
            self.spec_label.setText(f"<span style='color:#b00020'>{html.escape(str(exc))}</span>")
        else:
            fields = ", ".join(f"{k}={v}" for k, v in quantize.spec_to_dict(spec).items())
            self.spec_label.setText(f"<span style='color:#555'>{html.escape(fields)}</span>")
        self.changed.emit()

    def is_valid(self) -> bool:
        try:
            self.spec()
        except SemidError:
            return False
        return True

    # -- project

    def refresh(self) -> None:
        store = self.context.store
        self.embedding_combo.clear()
        self.label_combo.clear()
        if store is None:
            return
        for emb in reversed(store.list_embedding_sets()):
            self.embedding_combo.addItem(emb.describe(), emb.id)
        self.embedding_combo.addItem(f"new: embed the catalogue ({BUNDLED_MODEL} on its text, or its interactions "
                                     "when it has no text)", NEW_EMBEDDING)
        self.template_edit.setText(store.get_meta("template") or "")
        self._on_preset_changed()  # the default preset's size follows the catalogue
        fields = store.item_fields()
        self.label_combo.addItem("")
        self.label_combo.addItems([f for f in fields if f not in ("title", "price", "sales_rank")])
        inspection = self.context.inspection
        if inspection is not None and inspection.labels is not None:
            self.label_combo.setEditText(inspection.labels.field)
        self._on_embedding_changed()

    def build_task(self) -> tuple[str, Callable]:
        """``(job title, body(store, cancel))`` for the runner; raises SemidError for bad settings."""
        spec = self.spec()
        method = quantize.method_of(spec)
        label = self.label_combo.currentText().strip() or None
        name = self.name_edit.text().strip() or None
        emb_id = self.embedding_combo.currentData()
        template = self.template_edit.text().strip() or None

        def body(store, cancel):
            set_id = emb_id
            if set_id in (None, NEW_EMBEDDING):
                set_id = yield from embed_catalogue(store, template=template, cancel=cancel)
            return (yield from quantize.quantize_project(store, method=method, spec=spec, embedding_set_id=set_id,
                                                         label_field=label, name=name, cancel=cancel))

        return f"Fitting {method} ({spec.levels}×{spec.codebook_size})", body

    def outcome(self, run_id: int) -> tuple[str, float]:
        """What the stage line says when the task returned, and how full the progress bar is."""
        return "Finished.", 1.0

    def describe_result(self, run_id: int) -> str:
        run = self.context.store.load_quantizer_run(run_id, with_arrays=False)
        problems = run.metrics.get("problems")
        if problems:
            return (f"Saved quantiser run #{run.id} “{run.name}”, but it is NOT the project's SIDs: "
                    f"{'; '.join(problems)}. Compare it in the Evaluation view; a better embedding "
                    f"(another template, or embeddings from the interactions) gives usable SIDs."
                    f"\n\n{format_health(run.metrics)}")
        return f"Saved quantiser run #{run.id} “{run.name}” (now the project's SIDs)\n\n{format_health(run.metrics)}"

    def after_success(self, run_id: int) -> None:
        self.context.contentChanged.emit()
        self.context.load_run(run_id)
