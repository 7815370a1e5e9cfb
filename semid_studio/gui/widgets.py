"""Small widgets shared by the window and the panels: job status, log, path picker."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from ..core.analysis.items import format_value
from ..core.events import Message, Progress
from .generative import list_generative_models
from .tasks import TaskRunner


def refill_combo(combo: QComboBox, entries) -> None:
    """Replace a combo box's ``(text, data)`` entries, keeping the chosen data when it is still
    offered (else the first entry), without emitting change signals on the way."""
    keep = combo.currentData()
    combo.blockSignals(True)
    combo.clear()
    for text, data in entries:
        combo.addItem(text, data)
    combo.setCurrentIndex(max(0, combo.findData(keep)))
    combo.blockSignals(False)


def fill_model_combo(combo: QComboBox, store, *, newest_entry: str | None = None) -> list:
    """List the generative models that have a best checkpoint (newest first) in ``combo``, keeping
    the one chosen; ``newest_entry``: a first entry (data None) meaning "the newest". Returns the
    models (none without a store)."""
    keep = combo.currentData()
    combo.clear()
    models = [m for m in list_generative_models(store) if m.has_best] if store is not None else []
    if models and newest_entry:
        combo.addItem(newest_entry, None)
    for info in reversed(models):
        combo.addItem(info.describe(), info.id)
    if keep is not None and combo.findData(keep) >= 0:
        combo.setCurrentIndex(combo.findData(keep))
    return models


def show_progress(bar: QProgressBar, label: QLabel, event: Progress, *, with_message: bool = False) -> None:
    """A task's Progress event on a panel: the bar at its fraction (an event without a total
    leaves the bar as it is) and ``stage: done/total`` on the status line."""
    if event.total:
        bar.setRange(0, 1000)
        bar.setValue(int(1000 * (event.fraction or 0.0)))
    text = f"{event.stage}: {event.done:,}" + (f"/{event.total:,}" if event.total else "")
    label.setText(text + (f" — {event.message}" if with_message and event.message else ""))


def cancel_job(job, label: QLabel) -> None:
    """Ask a panel's running job to stop and say so on its status line (no job: nothing)."""
    if job is not None:
        job.cancel()
        label.setText(label.text() + " (cancelling…)")


def show_matches(matches_list: QListWidget, matches: list[tuple[int, str, str]]) -> None:
    """List ``(idx, item_id, title)`` matches of an item search to pick from (idx as user data)."""
    for idx, item_id, title in matches:
        entry = QListWidgetItem(f"{item_id}  {format_value(title)}")
        entry.setData(Qt.UserRole, idx)
        matches_list.addItem(entry)
    matches_list.show()


def debounce(parent: QWidget, ms: int, slot) -> QTimer:
    """A single-shot timer: call ``start()`` on every keystroke, ``slot`` runs once it goes quiet."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer


class JobStatusWidget(QWidget):
    """The status bar's view of background jobs: what runs, how far, and a Cancel button."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._titles: dict[int, str] = {}
        self._current: int | None = None
        self.label = QLabel("")
        self.label.setTextFormat(Qt.PlainText)
        self.label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (what it has saved so far stays in the project)")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        runner.job_started.connect(self._on_started)
        runner.job_event.connect(self._on_event)
        runner.job_finished.connect(self._on_finished)
        self._show_idle()

    @property
    def current_job(self) -> int | None:
        return self._current

    def _show_idle(self) -> None:
        self.label.setText("")
        self.bar.hide()
        self.cancel_button.hide()

    @Slot(int, str)
    def _on_started(self, job_id: int, title: str) -> None:
        self._titles[job_id] = title
        self._current = job_id
        self.label.setText(title)
        self.bar.setRange(0, 0)  # busy until the first progress event says how far
        self.bar.show()
        self.cancel_button.show()

    @Slot(int, object)
    def _on_event(self, job_id: int, event: object) -> None:
        if job_id != self._current:
            return
        title = self._titles.get(job_id, "")
        if isinstance(event, Progress):
            if event.total:
                self.bar.setRange(0, 1000)
                self.bar.setValue(int(1000 * (event.fraction or 0.0)))
                text = f"{title}: {event.stage} {event.done:,}/{event.total:,}"
            else:
                self.bar.setRange(0, 0)
                text = f"{title}: {event.stage} {event.done:,}"
            if event.message:
                text += f" - {event.message}"
            self.label.setText(text)
        elif isinstance(event, Message):
            self.label.setText(f"{title}: {event.text}")

    @Slot(int, str)
    def _on_finished(self, job_id: int, status: str) -> None:
        self._titles.pop(job_id, None)
        if job_id != self._current:
            return
        running = self._runner.running_jobs()
        if running:
            self._current = running[-1].id
            self.label.setText(self._titles.get(self._current, running[-1].title))
            self.bar.setRange(0, 0)
        else:
            self._current = None
            self._show_idle()

    def _cancel(self) -> None:
        if self._current is not None:
            self._runner.cancel(self._current)
            self.label.setText(self.label.text() + " (cancelling...)")


class LogView(QPlainTextEdit):
    """Messages from jobs and the app, newest at the bottom, errors in red."""

    MAX_LINES = 2000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(self.MAX_LINES)
        self.lines: list[tuple[str, str]] = []

    @Slot(str, str)
    def add(self, level: str, text: str) -> None:
        self.lines.append((level, text))
        del self.lines[: -self.MAX_LINES]
        stamp = time.strftime("%H:%M:%S")
        color = {"error": "#b00020", "warning": "#a05a00"}.get(level, "#333333")
        self.appendHtml(f'<span style="color:{color}">{stamp} {html.escape(text)}</span>')


class PathEdit(QWidget):
    """A path field with a Browse button (typing a path works as well as browsing)."""

    changed = Signal(str)

    def __init__(self, caption: str, filters: str = "", *, save: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self._caption = caption
        self._filters = filters
        self._save = save
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("type a path or browse")
        self.edit.textChanged.connect(self.changed)
        self.button = QPushButton("Browse…")
        self.button.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - mirrors QLineEdit
        self.edit.setText(text)

    def _browse(self) -> None:
        if self._save:
            path, _ = QFileDialog.getSaveFileName(self, self._caption, self.text(), self._filters)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self._caption, self.text(), self._filters)
        if path:
            self.edit.setText(path)
