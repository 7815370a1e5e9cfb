"""TrainingPanel: fit a quantiser or train the generative recommender; progress, live curves, cancel.

The panel holds one *form* per kind of training (a quantiser, the generative model). A form
turns its widgets into a core task (``body(store, cancel)``); the panel runs it through the
task runner, shows its progress, plots the training loss and the validation metrics live (two
plots: their scales differ) and reports the saved result. The core saves results into the
project as they come, so a cancel or a crash loses at most the step in flight; an interrupted
generative model is offered for resuming in the form's Model box.
"""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...core import quantize
from ...core.embed import BUNDLED_MODEL, embed_items
from ...core.errors import SemidError
from ...core.events import Message, Metric, PartialResult, Progress
from ...core.generative import spec as gen_spec
from ...core.sids import format_health
from ..context import ProjectContext
from ..generative import ModelInfo, list_generative_models
from ..plots import LossCurvePlot

NEW_EMBEDDING = -1


def parse_overrides(text: str) -> dict[str, str]:
    """``n_iter=10, balanced=none`` -> ``{"n_iter": "10", "balanced": "none"}`` (the core converts types)."""
    out: dict[str, str] = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise SemidError(f"cannot read setting {part!r}: write field=value, e.g. n_iter=10")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


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
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.overrides_edit = QLineEdit()
        self.overrides_edit.setPlaceholderText("other settings, e.g. n_iter=10, balanced=none")
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.setToolTip("Field to measure prefix purity against: 'field' or 'field[i]'")
        self.embedding_combo = QComboBox()
        self.embedding_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.embedding_combo.setMinimumContentsLength(24)
        self.template_edit = QLineEdit()
        self.template_edit.setPlaceholderText("Title: {title}; Brand: {brand}")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("(automatic)")
        self.spec_label = QLabel("")
        self.spec_label.setWordWrap(True)
        self.spec_label.setTextFormat(Qt.RichText)

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

    def _on_preset_changed(self, *_args) -> None:
        spec = quantize.PRESETS[self.method_combo.currentText()][self.preset_combo.currentText()]
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
        base = quantize.PRESETS[method][preset]
        overrides: dict[str, Any] = parse_overrides(self.overrides_edit.text())
        for key, spin in (("levels", self.levels_spin), ("codebook_size", self.size_spin), ("seed", self.seed_spin)):
            if spin.value() != getattr(base, key) and key not in overrides:
                overrides[key] = spin.value()
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
        self.embedding_combo.addItem(f"new: embed the catalogue with {BUNDLED_MODEL}", NEW_EMBEDDING)
        self.template_edit.setText(store.get_meta("template") or "")
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
                set_id = yield from embed_items(store, template=template, cancel=cancel)
            return (yield from quantize.quantize_project(store, method=method, spec=spec, embedding_set_id=set_id,
                                                         label_field=label, name=name, cancel=cancel))

        return f"Fitting {method} ({spec.levels}×{spec.codebook_size})", body

    def outcome(self, run_id: int) -> tuple[str, float]:
        """What the stage line says when the task returned, and how full the progress bar is."""
        return "Finished.", 1.0

    def describe_result(self, run_id: int) -> str:
        run = self.context.store.load_quantizer_run(run_id, with_arrays=False)
        return f"Saved quantiser run #{run.id} “{run.name}” (now the project's SIDs)\n\n{format_health(run.metrics)}"

    def after_success(self, run_id: int) -> None:
        self.context.contentChanged.emit()
        self.context.load_run(run_id)


NEW_MODEL = -1


class GenerativeForm(QWidget):
    """Settings of a generative recommender (TIGER): preset, schedule, seed, split; or a model to resume."""

    title = "Generative recommender (TIGER)"
    cancelled_text = ("Cancelled; the model is saved at its last completed step: choose it under Model → resume "
                      "to continue.")
    changed = Signal()

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.models: list[ModelInfo] = []
        self.resume_combo = QComboBox()
        self.resume_combo.setToolTip("Start a new model, or continue one whose training was interrupted "
                                     "(it resumes exactly where its last completed step left it)")
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(gen_spec.PRESETS))
        self.preset_combo.setCurrentText("laptop")
        self.preset_combo.setToolTip("paper: TIGER's size (4 + 4 layers); laptop: a CPU-sized model; tiny: seconds")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setToolTip("Length of the learning-rate schedule in optimiser steps")
        self.eval_spin = QSpinBox()
        self.eval_spin.setRange(1, 1_000_000)
        self.eval_spin.setToolTip("Steps between validation runs; the best checkpoint on validation is kept")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.0, 100_000.0)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setSpecialValueText("no limit")
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setToolTip("Stop cleanly after this much training (the model can be resumed later)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.split_combo = QComboBox()
        self.split_combo.addItem("leave-one-out (last item test, second-last validation)", "loo")
        self.split_combo.addItem("global temporal", "temporal")
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (CUDA when present)", None)
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("CUDA", "cuda")
        self.overrides_edit = QLineEdit()
        self.overrides_edit.setPlaceholderText("other settings, e.g. dropout=0.3, lr=0.001")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("(automatic)")
        self.spec_label = QLabel("")
        self.spec_label.setWordWrap(True)
        self.spec_label.setTextFormat(Qt.RichText)

        form = QFormLayout(self)
        form.addRow("Model", self.resume_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Validate every", self.eval_spin)
        form.addRow("Time budget", self.minutes_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Split", self.split_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("More settings", self.overrides_edit)
        form.addRow("Model name", self.name_edit)
        form.addRow(self.spec_label)
        self._new_widgets = (self.preset_combo, self.steps_spin, self.eval_spin, self.seed_spin, self.split_combo,
                             self.overrides_edit, self.name_edit)

        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.resume_combo.currentIndexChanged.connect(self._update_spec)
        for spin in (self.steps_spin, self.eval_spin, self.seed_spin):
            spin.valueChanged.connect(self._update_spec)
        self.split_combo.currentIndexChanged.connect(self._update_spec)
        self.overrides_edit.textChanged.connect(self._update_spec)
        self._on_preset_changed()

    # -- widgets <-> spec

    def _on_preset_changed(self, *_args) -> None:
        base = gen_spec.make_spec(self.preset_combo.currentText())
        for spin, value in ((self.steps_spin, base.max_steps), (self.eval_spin, base.eval_every)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._update_spec()

    @property
    def resume_id(self) -> int | None:
        data = self.resume_combo.currentData()
        return None if data in (None, NEW_MODEL) else int(data)

    def spec(self):
        """The spec the widgets describe, or the stored spec of the model to resume."""
        if self.resume_id is not None:
            rec = self.context.store.get_model(self.resume_id)
            return gen_spec.spec_from_dict(rec.spec["spec"])
        preset = self.preset_combo.currentText()
        base = gen_spec.make_spec(preset)
        overrides: dict[str, Any] = parse_overrides(self.overrides_edit.text())
        for key, value in (("max_steps", self.steps_spin.value()), ("eval_every", self.eval_spin.value()),
                           ("seed", self.seed_spin.value()), ("split", self.split_combo.currentData())):
            if value != getattr(base, key) and key not in overrides:
                overrides[key] = value
        return gen_spec.make_spec(preset, overrides)

    @Slot()
    def _update_spec(self, *_args) -> None:
        resuming = self.resume_id is not None
        for w in self._new_widgets:
            w.setEnabled(not resuming)
        problem = self._problem()
        if problem:
            self.spec_label.setText(f"<span style='color:#b00020'>{html.escape(problem)}</span>")
        else:
            spec = self.spec()
            fields = ", ".join(f"{k}={v}" for k, v in spec.to_dict().items())
            lead = ""
            if resuming:
                info = next(m for m in self.models if m.id == self.resume_id)
                lead = (f"<b>Resuming model #{info.id} at step {info.step:,} of {spec.max_steps:,}</b> with its own "
                        "settings:<br>")
            self.spec_label.setText(f"{lead}<span style='color:#555'>{html.escape(fields)}</span>")
        self.changed.emit()

    def _problem(self) -> str | None:
        store = self.context.store
        if store is not None and store.active_run_id() is None:
            return "this project has no Semantic IDs yet: fit a quantiser first"
        if store is not None and store.interaction_count() == 0:
            return "this project has no interactions to learn from"
        try:
            self.spec()
        except SemidError as exc:
            return str(exc)
        return None

    def is_valid(self) -> bool:
        return self.context.store is not None and self._problem() is None

    # -- project

    def refresh(self) -> None:
        store = self.context.store
        keep = self.resume_id
        self.resume_combo.blockSignals(True)
        self.resume_combo.clear()
        self.resume_combo.addItem("a new model", NEW_MODEL)
        self.models = list_generative_models(store) if store is not None else []
        for info in reversed(self.models):
            if info.resumable:
                self.resume_combo.addItem(f"resume #{info.id} {info.name} ({info.status} at step {info.step:,})",
                                          info.id)
        if keep is not None and self.resume_combo.findData(keep) >= 0:
            self.resume_combo.setCurrentIndex(self.resume_combo.findData(keep))
        self.resume_combo.blockSignals(False)
        self._update_spec()

    def build_task(self) -> tuple[str, Callable]:
        problem = self._problem()
        if problem:
            raise SemidError(problem)
        spec = self.spec()
        resume: int | bool = self.resume_id if self.resume_id is not None else False
        preset = self.preset_combo.currentText()
        name = self.name_edit.text().strip() or None
        minutes = self.minutes_spin.value() or None
        device = self.device_combo.currentData()

        def body(store, cancel):
            from ...core.generative import train_model

            return (yield from train_model(store, spec, resume=resume, name=name, preset=preset, device=device,
                                           max_minutes=minutes, cancel=cancel))

        what = f"resuming model #{resume}" if resume else f"{preset} preset, {spec.max_steps:,} steps"
        return f"Training the generative recommender ({what})", body

    def outcome(self, model_id: int) -> tuple[str, float]:
        rec = self.context.store.get_model(model_id)
        total = max(1, int(rec.spec.get("spec", {}).get("max_steps", rec.step or 1)))
        if rec.status == "done":
            return f"Finished: {rec.step:,} steps.", 1.0
        # the time budget ran out (or patience): the model stays resumable
        return (f"Stopped at step {rec.step:,} of {total:,} ({rec.status}); choose it under Model → resume to "
                "continue."), rec.step / total

    def describe_result(self, model_id: int) -> str:
        rec = self.context.store.get_model(model_id)
        spec = rec.spec.get("spec", {})
        metric = spec.get("select_metric", "ndcg@10")
        best = "no validation yet" if rec.best_metric is None else \
            f"best validation {metric} {rec.best_metric:.4f} at step {rec.best_step:,} (the checkpoint kept)"
        lines = [f"Model #{rec.id} “{rec.name}”: {rec.status} at step {rec.step:,} of {spec.get('max_steps', 0):,};",
                 f"{best}.", ""]
        if rec.status in ("stopped", "interrupted"):
            lines += ["Choose it under Model → resume to continue training.", ""]
        lines.append(f"{'step':>8} {'min':>7} {'train loss':>11} {metric:>10} {'recall@10':>10} {'targets/s':>10}")
        for e in rec.history[-12:]:
            valid = e.get("valid", {})
            loss = e.get("train_loss")
            lines.append(f"{e['step']:>8,} {e['elapsed_s'] / 60:>7.2f} {'' if loss is None else f'{loss:.4f}':>11} "
                         f"{valid.get(metric, float('nan')):>10.4f} {valid.get('recall@10', float('nan')):>10.4f} "
                         f"{e.get('targets_per_s', 0):>10,.0f}")
        return "\n".join(lines)

    def after_success(self, model_id: int) -> None:
        self.context.modelsChanged.emit()


class TrainingPanel(QWidget):
    """Run a training job from one of the forms; progress, live curves, log, cancel."""

    JOB_KEY = "training"

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.quantizer_form = QuantizerForm(context)
        self.generative_form = GenerativeForm(context)
        self.forms: list[QWidget] = [self.quantizer_form, self.generative_form]
        self.kind_combo = QComboBox()
        self.stack = QStackedWidget()
        for form in self.forms:
            self.kind_combo.addItem(form.title)
            self.stack.addWidget(form)
            form.changed.connect(self._update_buttons)
        self.kind_combo.currentIndexChanged.connect(self.stack.setCurrentIndex)
        self.kind_combo.currentIndexChanged.connect(self._update_buttons)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        self.curves = LossCurvePlot()
        self.curves.getPlotItem().setTitle("Training loss")
        # validation metrics live on their own axes: a recall of 0.1 next to a loss of 6 is a flat line
        self.valid_curves = LossCurvePlot()
        self.valid_curves.getPlotItem().setTitle("Validation (checkpoint selection)")
        self.valid_curves.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.result_view = QTextBrowser()
        self.result_view.setLineWrapMode(QTextBrowser.NoWrap)
        font = self.result_view.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.result_view.setFont(font)

        settings = QGroupBox("What to train")
        sl = QVBoxLayout(settings)
        sl.addWidget(self.kind_combo)
        sl.addWidget(self.stack, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        sl.addLayout(buttons)
        sl.addWidget(self.progress)
        sl.addWidget(self.stage_label)

        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.curves)
        pl.addWidget(self.valid_curves)
        right = QSplitter(Qt.Vertical)
        right.addWidget(plots)
        right.addWidget(self.log)
        right.addWidget(self.result_view)
        right.setSizes([350, 150, 200])
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(settings)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self._job = None
        self._form_in_flight: QWidget | None = None
        self.last_result: Any = None
        self.last_status = ""
        context.projectOpened.connect(self._refresh)
        context.projectClosed.connect(self._refresh)
        context.contentChanged.connect(self._refresh_forms)
        context.inspectionChanged.connect(self._refresh_forms)
        context.modelsChanged.connect(self._refresh_models)
        self._refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not getattr(self, "_sized", False):
            self._sized = True  # settings get room for their combo boxes, the curves the rest
            QTimer.singleShot(0, self._initial_split)
        super().showEvent(event)

    def _initial_split(self) -> None:
        width = self.splitter.width()
        left = min(max(width * 2 // 5, 380), 560)
        self.splitter.setSizes([left, max(width - left, 100)])

    @property
    def form(self):
        return self.forms[self.kind_combo.currentIndex()]

    @property
    def running(self) -> bool:
        return self._job is not None

    @Slot()
    def _refresh(self) -> None:
        self._refresh_forms()
        self._update_buttons()

    @Slot()
    def _refresh_forms(self) -> None:
        if self.running:
            return  # keep the settings of the job in flight on screen
        for form in self.forms:
            form.refresh()

    @Slot()
    def _refresh_models(self) -> None:
        if not self.running:
            self.generative_form.refresh()

    def show_form(self, form: QWidget) -> None:
        self.kind_combo.setCurrentIndex(self.forms.index(form))

    @Slot()
    def _update_buttons(self, *_args) -> None:
        self.start_button.setEnabled(self.context.is_open and not self.running and self.form.is_valid())
        self.cancel_button.setEnabled(self.running)

    @Slot()
    def start(self) -> None:
        if self.running or not self.context.is_open:
            return
        form = self.form
        try:
            title, body = form.build_task()
        except SemidError as exc:
            self.context.report_error(str(exc))
            return
        self.curves.clear_curves()
        self.valid_curves.clear_curves()
        self.valid_curves.hide()
        self._form_in_flight = form
        self.log.clear()
        self.result_view.clear()
        self.progress.setRange(0, 0)
        self.stage_label.setText(title)
        self.last_status = "running"
        self._job = self.context.submit(
            title, body, key=self.JOB_KEY,
            on_event=self._on_event,
            on_result=lambda result: self._on_result(form, result),
            on_error=self._on_error,
            on_done=self._on_done,
        )
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.stage_label.setText(self.stage_label.text() + " (cancelling…)")

    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            if event.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * (event.fraction or 0.0)))
            text = f"{event.stage}: {event.done:,}" + (f"/{event.total:,}" if event.total else "")
            self.stage_label.setText(text + (f" — {event.message}" if event.message else ""))
        elif isinstance(event, Metric):
            if event.split == "running":  # the generative loop's running loss, ~10 times a second
                self.curves.add_point("loss (running mean)", event.step, event.value)
            elif event.split == "train":
                name = "loss (mean between validations)" if event.name == "train_loss" else event.name
                self.curves.add_point(name, event.step, event.value)
            else:
                self.valid_curves.show()
                self.valid_curves.add_point(f"{event.split} {event.name}", event.step, event.value)
        elif isinstance(event, PartialResult):
            if event.kind in ("checkpoint", "model"):
                self.context.modelsChanged.emit()  # the playground can decode with the new best checkpoint
        elif isinstance(event, Message):
            self.log.appendPlainText(event.text)

    def _on_result(self, form, result) -> None:
        self.last_result = result
        self.last_status = "done"
        self.progress.setRange(0, 1000)
        try:
            text, fraction = form.outcome(result)
            self.result_view.setPlainText(form.describe_result(result))
        except SemidError as exc:
            text, fraction = "Finished.", 1.0
            self.result_view.setPlainText(str(exc))
        self.progress.setValue(int(1000 * fraction))
        self.stage_label.setText(text)
        form.after_success(result)

    def _on_error(self, message: str) -> None:
        self.last_status = "failed"
        self.stage_label.setText(f"Failed: {message}")
        self.context.report_error(message)

    def _on_done(self) -> None:
        form = self._form_in_flight or self.form
        if self.last_status == "running":
            self.last_status = "cancelled"
            self.stage_label.setText(form.cancelled_text)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
        self._job = None
        self.curves.refresh()
        self.valid_curves.refresh()
        if form is self.generative_form:
            self.context.modelsChanged.emit()  # finished, stopped or interrupted: the Model list changes
        self._update_buttons()
