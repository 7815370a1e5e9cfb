"""TrainingPanel: the form chooser, the run / cancel buttons, progress, the live loss and
validation curves and the log of a training job."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer, Qt, Slot
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSplitter, QStackedWidget, QTextBrowser, QVBoxLayout, QWidget)

from ....core.errors import SemidError
from ....core.events import Message, Metric, PartialResult, Progress
from ...context import ProjectContext
from ...plots import LossCurvePlot
from ...widgets import cancel_job, show_progress
from .generative_form import GenerativeForm
from .quantizer_form import QuantizerForm
from .queries_form import QueriesForm
from .strategy_form import StrategyForm


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

        self._build_job_widgets()
        self._lay_out()

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

    def _build_job_widgets(self) -> None:
        """Start, cancel, progress, the live curves, the log and the result of the job."""
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

    def _lay_out(self) -> None:
        """The form chooser and the job controls on the left; curves, log and result on the right."""
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
        cancel_job(self._job, self.stage_label)

    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            show_progress(self.progress, self.stage_label, event, with_message=True)
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
