"""The generative model form: a recommender, a joint search + rec model or a search-only
model, new or resumed, with its presets and settings."""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

from ....core.errors import SemidError
from ....core.generative import joint as gen_joint
from ....core.generative import spec as gen_spec
from ....core.generative.schedule import schedule_steps
from ....core.search import queries as core_queries
from ...context import ProjectContext
from ...generative import ModelInfo, list_generative_models
from ...search import JointInfo, list_joint_models
from ...widgets import refill_combo
from .fields import name_edit, overrides_edit, parse_overrides, seed_spin, spec_label


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
        self._ensemble = False  # the last Train started a new ensemble (members > 1)
        self._build_task_widgets()
        self._build_schedule_widgets()
        self._lay_out()

        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.resume_combo.currentIndexChanged.connect(self._update_spec)
        self.task_combo.currentIndexChanged.connect(self._on_preset_changed)  # a joint model's recipe has its own schedule
        self.encoder_combo.currentIndexChanged.connect(self._update_spec)
        self.reader_combo.currentIndexChanged.connect(self._update_spec)
        self.vectors_combo.currentIndexChanged.connect(self._update_spec)
        self.mix_spin.valueChanged.connect(self._update_spec)
        for spin in (self.steps_spin, self.eval_spin, self.seed_spin, self.minutes_spin):
            spin.valueChanged.connect(self._update_spec)
        self.split_combo.currentIndexChanged.connect(self._update_spec)
        self.overrides_edit.textChanged.connect(self._update_spec)
        self._on_preset_changed()

    def _build_task_widgets(self) -> None:
        """The model to resume (or a new one), its task, and how query text reaches it."""
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

    def _build_schedule_widgets(self) -> None:
        """Preset, schedule, time budget, seed, split, device, other settings, name and read-back."""
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

    def _lay_out(self) -> None:
        """One form row per setting; the widgets a resumed model does not use are remembered."""
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

    # -- widgets <-> spec

    def _base(self) -> tuple[Any, Any]:
        """(model spec, joint spec or None) of the preset alone, for the current task: a joint or
        search model gets the preset's recipe (gen_joint.recipe)."""
        preset = self.preset_combo.currentText()
        if self.task_combo.currentData() == "rec":
            return gen_spec.make_spec(preset), None
        return gen_joint.joint_settings(preset, {"task": self.task_combo.currentData()})

    def _on_preset_changed(self, *_args) -> None:
        base, _joint = self._base()
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
        base, _joint = self._base()
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
            return gen_joint.joint_settings(preset, overrides)[0]
        return gen_spec.make_spec(preset, overrides)

    def joint_spec(self):
        """The joint settings (task, mix, query encoder, ...) of a new search / joint model."""
        if self.resume_id is not None:
            rec = self.context.store.get_model(self.resume_id)
            return gen_joint.JointSpec.from_dict(rec.spec["joint"])
        _gen, joint = self._overrides()
        values: dict[str, Any] = {"task": self.task, "query_encoder": self.encoder_combo.currentData()}
        if self.reader_combo.currentData() is not None:  # None: the preset's (its recipe's) reader
            values["encoder_model"] = self.reader_combo.currentData()
        if self.vectors_combo.currentData() is not None:  # item vectors chosen here, not by the recipe
            values["item_vectors"] = ""
        if self.task == "joint":
            values["mix"] = round(self.mix_spin.value(), 4)
        values.update(joint)
        return gen_joint.joint_settings(self.preset_combo.currentText(), values)[1]

    def fits_schedule(self) -> bool:
        """A time budget and the preset's own schedule: the run fits the schedule to the budget."""
        base, _joint = self._base()
        return bool(self.minutes_spin.value()) and self.resume_id is None \
            and self.steps_spin.value() == base.max_steps and "max_steps" not in self._overrides()[0]

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
                steps = schedule_steps(self.context.store.get_model(info.id).spec)
                lead = (f"<b>Resuming model #{info.id} at step {info.step:,} of {steps:,}</b> with its own "
                        "settings:<br>")
            self.spec_label.setText(f"{lead}<span style='color:#555'>{html.escape(fields)}</span>")
        self.plan_label.setText("" if problem else self._plan())
        self.changed.emit()

    def _plan(self) -> str:
        """'At 2.1 steps/s (model #3), the 2-min budget ends at about step 250 of 2,500; ...'"""
        from ....core.generative import schedule, train

        if self.context.store is None:
            return ""
        spec = self.spec()
        joint = self.joint_spec().to_dict() if self.task != "rec" else None
        kind = train.JOINT_KIND if joint is not None else train.MODEL_KIND
        pace = schedule.past_pace(self.context.store, kind, spec.to_dict(), joint)
        recipe = ""
        if joint is not None and self.resume_id is None:
            recipe = gen_joint.describe_recipe(self.context.store, spec, self.joint_spec())
            recipe = f"Recipe: {recipe}. " if recipe else ""
        if pace is None:
            return recipe + ("The training pace is measured in its first seconds; the log then says which step the "
                             "time budget reaches and how many validations run before it.")
        start = 0 if self.resume_id is None else self.context.store.get_model(self.resume_id).step
        minutes = self.minutes_spin.value() or None
        text = schedule.plan_text(start, spec.max_steps, spec.eval_every, pace,
                                  None if minutes is None else minutes * 60, resumed_from=start or None,
                                  fitted=self.fits_schedule())
        return recipe + text[0].upper() + text[1:] + "."

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
        refill_combo(self.reader_combo, [("as the preset says (laptop: search-tuned, made first when missing)", None),
                                         ("the project's sentence encoder (frozen)", "")] + [
            (f"the fine-tuned encoder of set #{emb.id} ({names[emb.strategy]})",
             f"{gen_joint.ENCODER_SET_PREFIX}{emb.id}") for emb in sets if emb.strategy in names])

    def _fill_vectors(self, store) -> None:
        """What the 'Item vectors' box offers: the preset's choice, none, the SIDs' own set, every set."""
        sets = store.list_embedding_sets() if store is not None else []
        refill_combo(self.vectors_combo, [("as the preset says (joint, laptop: rec-tuned, made first when missing)",
                                           None), ("none (SID codes and item ids only)", 0),
                                          ("the set the SIDs were quantised from", -1)] + [
            (f"set #{emb.id} {emb.name} ({emb.strategy}, {emb.dim}-d)", emb.id) for emb in sets])

    def build_task(self) -> tuple[str, Callable]:
        problem = self._problem()
        if problem:
            raise SemidError(problem)
        spec = self.spec()
        task = self.task
        joint = self.joint_spec() if task != "rec" else None
        # a new ensemble (members > 1) goes on from members already trained with these settings
        resume: int | bool | None = self.resume_id if self.resume_id is not None else (
            None if spec.members > 1 else False)
        self._ensemble = spec.members > 1 and self.resume_id is None
        preset = self.preset_combo.currentText()
        name = self.name_edit.text().strip() or None
        minutes = self.minutes_spin.value() or None
        device = self.device_combo.currentData()
        fit = self.fits_schedule()

        def body(store, cancel):
            if joint is not None:
                return (yield from gen_joint.train_joint(store, spec, joint, resume=resume, name=name, preset=preset,
                                                         device=device, max_minutes=minutes, cancel=cancel,
                                                         fit_schedule=fit))
            from ....core.generative import train_recommender

            return (yield from train_recommender(store, spec, resume=resume, name=name, preset=preset, device=device,
                                           max_minutes=minutes, cancel=cancel, fit_schedule=fit))

        what = f"resuming model #{resume}" if resume else f"{preset} preset, {spec.max_steps:,} steps"
        kind = {"rec": "the generative recommender", "joint": "a joint search + rec model",
                "search": "a generative search model"}[task]
        return f"Training {kind} ({what})", body

    def outcome(self, model_id: int) -> tuple[str, float]:
        rec = self.context.store.get_model(model_id)
        total = max(1, schedule_steps(rec.spec) or rec.step or 1)
        if rec.status == "done":
            return f"Finished: {rec.step:,} steps.", 1.0
        if self._ensemble:  # a member stopped: the same settings again go on
            return (f"Stopped: model #{rec.id} ({rec.name}) at step {rec.step:,} of {total:,}; press Train again "
                    "with the same settings to go on (finished members are kept)."), rec.step / total
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
        lines = [f"Model #{rec.id} “{rec.name}”: {rec.status} at step {rec.step:,} of {schedule_steps(rec.spec):,};",
                 f"{best}.", ""]
        if rec.spec.get("members"):
            alone = ", ".join(f"#{m['model_id']} (seed {m['seed']}) {m['best_metric']:.4f}" for m in rec.spec["members"])
            lines[1:1] = [f"An ensemble ranked as one; its members alone: {alone}."]
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
