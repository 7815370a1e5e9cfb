"""TrainingPanel: fit a quantiser, train the generative model (recommender, joint search + rec or
search only), generate search queries or make item embeddings with a strategy; progress, live
curves, cancel.

The panel holds one *form* per kind of training (a quantiser, the generative model, search
queries, an embedding strategy). A form
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
    QCheckBox,
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
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...core.search import queries as core_queries
from ...core import quantize
from ...core.search import strategies as core_strategies
from ...core.embed import BUNDLED_MODEL
from ...core.pipeline import embed_catalogue
from ...core.errors import SemidError
from ...core.events import Message, Metric, PartialResult, Progress
from ...core.generative import joint as gen_joint
from ...core.generative import spec as gen_spec
from ...core.analysis.items import format_value
from ...core.sids import format_health
from ..context import ProjectContext
from ..generative import ModelInfo, list_generative_models
from ..search import STRATEGY_LABELS, JointInfo, list_joint_models
from ..plots import LossCurvePlot
from ..widgets import refill_combo

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


# widgets every form has (seed, free-form settings, name, the spec read-back)
def seed_spin() -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, 2**31 - 1)
    return spin


def overrides_edit(example: str) -> QLineEdit:
    """The 'More settings' line: FIELD=VALUE pairs read by :func:`parse_overrides`."""
    edit = QLineEdit()
    edit.setPlaceholderText(f"other settings, e.g. {example}")
    return edit


def name_edit() -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText("(automatic)")
    return edit


def spec_label() -> QLabel:
    """Rich-text read-back of the settings the form will run with."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    return label


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


NEW_MODEL = -1


class GenerativeForm(QWidget):
    """Settings of a generative model (TIGER): the task (recommendation, joint search + rec, or
    search), preset, schedule, seed, split; or a model to resume."""

    title = "Generative model (TIGER: rec, search, joint)"
    cancelled_text = ("Cancelled; the model is saved at its last completed step: choose it under Model → resume "
                      "to continue.")
    changed = Signal()

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.models: list[ModelInfo] = []
        self.joint_models: list[JointInfo] = []
        self.resume_combo = QComboBox()
        self.resume_combo.setToolTip("Start a new model, or continue one whose training was interrupted "
                                     "(it resumes exactly where its last completed step left it)")
        self.task_combo = QComboBox()
        self.task_combo.addItem("rec: history → next item (the recommender)", "rec")
        self.task_combo.addItem("joint: search and rec, one model", "joint")
        self.task_combo.addItem("search: query → item", "search")
        self.task_combo.setToolTip("joint and search read query text too ([SEARCH] + query → SID) and need the "
                                   "project's training queries (Search queries form, or an imported log)")
        self.mix_spin = QDoubleSpinBox()
        self.mix_spin.setRange(0.05, 0.95)
        self.mix_spin.setSingleStep(0.05)
        self.mix_spin.setValue(0.5)
        self.mix_spin.setToolTip("Share of search targets in every training batch (the rest are history positions)")
        self.encoder_combo = QComboBox()
        self.encoder_combo.addItem("MiniLM token states (frozen sentence encoder)", "minilm")
        self.encoder_combo.addItem("word pieces learned from scratch", "wordpiece")
        self.encoder_combo.setToolTip("How the query text reaches the model: the project's sentence encoder reads "
                                      "it (a head start; the default) or a table of word pieces learned from scratch")
        self.reader_combo = QComboBox()
        self.reader_combo.setToolTip("Which sentence encoder reads the text: the project's own, or the fine-tuned "
                                     "encoder of a search-tuned / multi-task embedding set, which reads a request "
                                     "and the text of the item it asks for into nearby states")
        self.vectors_combo = QComboBox()
        # set names can be long: size the box to 24 characters, not to its longest entry
        self.vectors_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.vectors_combo.setMinimumContentsLength(24)
        self.vectors_combo.setToolTip("The items' own embedding vectors read beside their SID codes in each history "
                                      "position (content_input): the set the SIDs came from, another set (say "
                                      "rec-tuned vectors beside text SIDs), none, or what the preset says")
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
        self.seed_spin = seed_spin()
        self.split_combo = QComboBox()
        self.split_combo.addItem("leave-one-out (last item test, second-last validation)", "loo")
        self.split_combo.addItem("global temporal", "temporal")
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (CUDA when present)", None)
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("CUDA", "cuda")
        self.overrides_edit = overrides_edit("dropout=0.3, lr=0.001, index_share=0.25")
        self.name_edit = name_edit()
        self.spec_label = spec_label()
        # what the time budget buys, from the pace of earlier models of this shape
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setStyleSheet("color:#555")

        form = QFormLayout(self)
        form.addRow("Model", self.resume_combo)
        form.addRow("Task", self.task_combo)
        form.addRow("Search share", self.mix_spin)
        form.addRow("Query encoder", self.encoder_combo)
        form.addRow("Text read by", self.reader_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Item vectors", self.vectors_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Validate every", self.eval_spin)
        form.addRow("Time budget", self.minutes_spin)
        form.addRow("", self.plan_label)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Split", self.split_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("More settings", self.overrides_edit)
        form.addRow("Model name", self.name_edit)
        form.addRow(self.spec_label)
        self._new_widgets = (self.task_combo, self.mix_spin, self.encoder_combo, self.reader_combo,
                             self.preset_combo, self.vectors_combo, self.steps_spin,
                             self.eval_spin, self.seed_spin, self.split_combo, self.overrides_edit, self.name_edit)

        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.resume_combo.currentIndexChanged.connect(self._update_spec)
        self.task_combo.currentIndexChanged.connect(self._update_spec)
        self.encoder_combo.currentIndexChanged.connect(self._update_spec)
        self.reader_combo.currentIndexChanged.connect(self._update_spec)
        self.vectors_combo.currentIndexChanged.connect(self._update_spec)
        self.mix_spin.valueChanged.connect(self._update_spec)
        for spin in (self.steps_spin, self.eval_spin, self.seed_spin, self.minutes_spin):
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

    @property
    def resume_joint(self) -> JointInfo | None:
        """The joint model to resume, when the Model box names one."""
        return next((m for m in self.joint_models if m.id == self.resume_id), None)

    @property
    def task(self) -> str:
        """rec, joint or search (a resumed model keeps its own)."""
        if self.resume_id is not None:
            joint = self.resume_joint
            return "rec" if joint is None else joint.task
        return self.task_combo.currentData()

    def _overrides(self) -> tuple[dict, dict]:
        """(GenerativeSpec overrides, JointSpec overrides) from the More settings box."""
        return gen_joint.split_overrides(parse_overrides(self.overrides_edit.text()))

    def spec(self):
        """The spec the widgets describe, or the stored spec of the model to resume."""
        if self.resume_id is not None:
            rec = self.context.store.get_model(self.resume_id)
            return gen_spec.spec_from_dict(rec.spec["spec"])
        preset = self.preset_combo.currentText()
        base = gen_spec.make_spec(preset)
        overrides, joint = self._overrides()
        if joint and self.task == "rec":
            raise SemidError(f"{', '.join(sorted(joint))}: joint-model settings; choose task joint or search")
        for key, value in (("max_steps", self.steps_spin.value()), ("eval_every", self.eval_spin.value()),
                           ("seed", self.seed_spin.value()), ("split", self.split_combo.currentData())):
            if value != getattr(base, key) and key not in overrides:
                overrides[key] = value
        vectors = self.vectors_combo.currentData()  # None: the preset's; 0: none; -1: the SIDs' set; else a set id
        if vectors is not None and "content_input" not in overrides and "content_set" not in overrides:
            overrides["content_input"] = vectors != 0
            if vectors > 0:
                overrides["content_set"] = vectors
        if self.task != "rec":
            return gen_joint.make_joint_model_spec(preset, overrides)
        return gen_spec.make_spec(preset, overrides)

    def joint_spec(self):
        """The joint settings (task, mix, query encoder, ...) of a new search / joint model."""
        if self.resume_id is not None:
            rec = self.context.store.get_model(self.resume_id)
            return gen_joint.JointSpec.from_dict(rec.spec["joint"])
        _gen, joint = self._overrides()
        values: dict[str, Any] = {"task": self.task, "query_encoder": self.encoder_combo.currentData()}
        if self.reader_combo.currentData():
            values["encoder_model"] = self.reader_combo.currentData()
        if self.task == "joint":
            values["mix"] = round(self.mix_spin.value(), 4)
        values.update(joint)
        return gen_joint.make_joint_spec(values)

    @Slot()
    def _update_spec(self, *_args) -> None:
        resuming = self.resume_id is not None
        for w in self._new_widgets:
            w.setEnabled(not resuming)
        self.mix_spin.setEnabled(not resuming and self.task == "joint")
        self.encoder_combo.setEnabled(not resuming and self.task != "rec")
        self.reader_combo.setEnabled(not resuming and self.task != "rec")
        problem = self._problem()
        if problem:
            self.spec_label.setText(f"<span style='color:#b00020'>{html.escape(problem)}</span>")
        else:
            spec = self.spec()
            fields = ", ".join(f"{k}={v}" for k, v in spec.to_dict().items())
            if self.task != "rec":
                fields = ", ".join(f"{k}={v}" for k, v in self.joint_spec().to_dict().items()) + "; " + fields
            lead = ""
            if resuming:
                info = next(m for m in [*self.models, *self.joint_models] if m.id == self.resume_id)
                lead = (f"<b>Resuming model #{info.id} at step {info.step:,} of {spec.max_steps:,}</b> with its own "
                        "settings:<br>")
            self.spec_label.setText(f"{lead}<span style='color:#555'>{html.escape(fields)}</span>")
        self.plan_label.setText("" if problem else self._plan())
        self.changed.emit()

    def _plan(self) -> str:
        """'At 2.1 steps/s (model #3), the 2-min budget ends at about step 250 of 2,500; ...'"""
        from ...core.generative import schedule, train

        if self.context.store is None:
            return ""
        spec = self.spec()
        joint = self.joint_spec().to_dict() if self.task != "rec" else None
        kind = train.JOINT_KIND if joint is not None else train.MODEL_KIND
        pace = schedule.past_pace(self.context.store, kind, spec.to_dict(), joint)
        if pace is None:
            return ("The training pace is measured in its first seconds; the log then says which step the time "
                    "budget reaches and how many validations run before it.")
        start = 0 if self.resume_id is None else self.context.store.get_model(self.resume_id).step
        minutes = self.minutes_spin.value() or None
        text = schedule.plan_text(start, spec.max_steps, spec.eval_every, pace,
                                  None if minutes is None else minutes * 60, resumed_from=start or None)
        return text[0].upper() + text[1:] + "."

    def _problem(self) -> str | None:
        store = self.context.store
        if store is not None and store.active_run_id() is None:
            return "this project has no Semantic IDs yet: fit a quantiser first"
        if store is not None and store.interaction_count() == 0:
            return "this project has no interactions to learn from"
        if store is not None and self.task != "rec" and store.query_count(core_queries.TRAIN_SPLIT) < 2:
            return ("a search or joint model learns from the project's training queries, and it has none: "
                    "generate them (Search queries form) or import a query log")
        try:
            self.spec()
            if self.task != "rec":
                self.joint_spec()
        except SemidError as exc:
            return str(exc)
        return None

    def is_valid(self) -> bool:
        return self.context.store is not None and self._problem() is None

    # -- project

    def refresh(self) -> None:
        store = self.context.store
        self.models = list_generative_models(store) if store is not None else []
        self.joint_models = list_joint_models(store) if store is not None else []
        resumable = [(m.id, f"{m.name} (rec, {m.status} at step {m.step:,})") for m in self.models if m.resumable]
        resumable += [(m.id, f"{m.name} ({m.task}, {m.status} at step {m.step:,})") for m in self.joint_models
                      if m.resumable]
        refill_combo(self.resume_combo, [("a new model", NEW_MODEL)] + [
            (f"resume #{model_id} {text}", model_id) for model_id, text in sorted(resumable, reverse=True)])
        self._fill_readers(store)
        self._fill_vectors(store)
        self._update_spec()

    def _fill_readers(self, store) -> None:
        """The project's encoder, then every embedding set with a fine-tuned text encoder."""
        names = {"search": "search-tuned", "multitask": "multi-task"}
        sets = store.list_embedding_sets() if store is not None else []
        refill_combo(self.reader_combo, [("the project's sentence encoder (frozen)", "")] + [
            (f"the fine-tuned encoder of set #{emb.id} ({names[emb.strategy]})",
             f"{gen_joint.ENCODER_SET_PREFIX}{emb.id}") for emb in sets if emb.strategy in names])

    def _fill_vectors(self, store) -> None:
        """What the 'Item vectors' box offers: the preset's choice, none, the SIDs' own set, every set."""
        sets = store.list_embedding_sets() if store is not None else []
        refill_combo(self.vectors_combo, [("as the preset says", None), ("none (SID codes and item ids only)", 0),
                                          ("the set the SIDs were quantised from", -1)] + [
            (f"set #{emb.id} {emb.name} ({emb.strategy}, {emb.dim}-d)", emb.id) for emb in sets])

    def build_task(self) -> tuple[str, Callable]:
        problem = self._problem()
        if problem:
            raise SemidError(problem)
        spec = self.spec()
        task = self.task
        joint = self.joint_spec() if task != "rec" else None
        resume: int | bool = self.resume_id if self.resume_id is not None else False
        preset = self.preset_combo.currentText()
        name = self.name_edit.text().strip() or None
        minutes = self.minutes_spin.value() or None
        device = self.device_combo.currentData()

        def body(store, cancel):
            if joint is not None:
                return (yield from gen_joint.train_joint(store, spec, joint, resume=resume, name=name, preset=preset,
                                                         device=device, max_minutes=minutes, cancel=cancel))
            from ...core.generative import train_model

            return (yield from train_model(store, spec, resume=resume, name=name, preset=preset, device=device,
                                           max_minutes=minutes, cancel=cancel))

        what = f"resuming model #{resume}" if resume else f"{preset} preset, {spec.max_steps:,} steps"
        kind = {"rec": "the generative recommender", "joint": "a joint search + rec model",
                "search": "a generative search model"}[task]
        return f"Training {kind} ({what})", body

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
        joint = rec.spec.get("joint")
        metric = spec.get("select_metric", "ndcg@10")
        what = gen_joint.selection_label(gen_joint.JointSpec.from_dict(joint).select_mean, metric) \
            if joint and joint.get("task") == "joint" else \
            "search " + metric if joint else metric
        best = "no validation yet" if rec.best_metric is None else \
            f"best validation {what} {rec.best_metric:.4f} at step {rec.best_step:,} (the checkpoint kept)"
        lines = [f"Model #{rec.id} “{rec.name}”: {rec.status} at step {rec.step:,} of {spec.get('max_steps', 0):,};",
                 f"{best}.", ""]
        if rec.status in ("stopped", "interrupted"):
            lines += ["Choose it under Model → resume to continue training.", ""]
        # (name in the table, key in the validation dict)
        cols = [(metric, metric), ("recall@10", "recall@10")]
        if joint:
            search_cols = [(f"search {metric}", f"search_{metric}"), ("search R@10", "search_recall@10")]
            cols = search_cols if joint.get("task") == "search" else cols + search_cols
        lines.append(f"{'step':>8} {'min':>7} {'train loss':>11} " + " ".join(f"{c:>17}" for c, _k in cols)
                     + f" {'targets/s':>10}")
        for e in rec.history[-12:]:
            valid = e.get("valid", {})
            loss = e.get("train_loss")
            lines.append(f"{e['step']:>8,} {e['elapsed_s'] / 60:>7.2f} {'' if loss is None else f'{loss:.4f}':>11} "
                         + " ".join(f"{valid.get(k, float('nan')):>17.4f}" for _c, k in cols)
                         + f" {e.get('targets_per_s', 0):>10,.0f}")
        if joint:
            lines += ["", "Search with it in the Playground; evaluate it against the baselines in Strategies."]
        return "\n".join(lines)

    def after_success(self, model_id: int) -> None:
        self.context.modelsChanged.emit()


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


class TrainingPanel(QWidget):
    """Run a training job from one of the forms; progress, live curves, log, cancel."""

    JOB_KEY = "training"

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.quantizer_form = QuantizerForm(context)
        self.generative_form = GenerativeForm(context)
        self.queries_form = QueriesForm(context)
        self.strategy_form = StrategyForm(context)
        self.forms: list[QWidget] = [self.quantizer_form, self.generative_form, self.queries_form, self.strategy_form]
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
        # the forms scroll when the window is short (the generative form has many rows)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.stack)
        sl.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        sl.addLayout(buttons)
        sl.addWidget(self.progress)
        sl.addWidget(self.stage_label)

        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.curves, 1)
        pl.addWidget(self.valid_curves, 1)  # equal widths: a long metric name needs room too
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
            self._add_metric(event)
        elif isinstance(event, PartialResult):
            if event.kind == "history":  # a resumed run: the curve so far, then the new steps
                for metric in event.payload["metrics"]:
                    self._add_metric(metric)
            if event.kind in ("checkpoint", "model"):
                self.context.modelsChanged.emit()  # the playground can decode with the new best checkpoint
        elif isinstance(event, Message):
            self.log.appendPlainText(event.text)

    def _add_metric(self, event: Metric) -> None:
        if event.split == "running":  # the generative loop's running loss, ~10 times a second
            self.curves.add_point("loss (running mean)", event.step, event.value)
        elif event.split == "train":
            name = "loss (mean between validations)" if event.name == "train_loss" else event.name
            self.curves.add_point(name, event.step, event.value)
        else:
            self.valid_curves.show()
            self.valid_curves.add_point(f"{event.split} {event.name}", event.step, event.value)

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
        if form in (self.queries_form, self.strategy_form) and self.last_status == "done":
            self._refresh_forms()  # new queries or a new embedding set: every form's choices change
        self._update_buttons()
