"""ImportWizard: files -> preview and column mapping (problems inline) -> settings -> build.

Nothing is written until the last page: the preview reads the head of each file
(:func:`semid_studio.core.importing.preview`) and the check reads every row
(:func:`semid_studio.core.importing.validate`), both in workers, and list every problem with its
file, line and field. The last page creates the project file, imports, embeds and quantises
(one background job, with progress and cancel); if anything fails or is cancelled the new file
is removed again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from ...core import importing, quantize
from ...core.analysis.items import format_value
from ...core.embed import BUNDLED_MODEL, default_template
from ...core.errors import InputError, SemidError, UnknownItemsError
from ...core.events import Message
from ...core.pipeline import build_project
from ...core.store import SUFFIX
from ..models.tables import RecordsTableModel
from ..tasks import TaskRunner
from ..widgets import PathEdit, show_progress

KINDS = ("items", "interactions", "queries")
NOT_MAPPED = "(not in this file)"
FILE_FILTER = "Data files (*.csv *.tsv *.txt *.jsonl *.json *.parquet *.gz *.bz2 *.xz *.dat *.inter *.item);;All files (*)"


def choose_query_file(parent: QWidget) -> str:
    """Ask for a query file to evaluate on ("" when the user cancels)."""
    path, _ = QFileDialog.getOpenFileName(parent, "Evaluate on a query file", "", FILE_FILTER)
    return path


def _cell(value, kind: str = "path") -> str:
    """A raw value as the preview shows it (lists as ``a › b``, sets as ``a, b``, missing as empty)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    return format_value(value, kind)


def problem_row(problem: InputError) -> tuple:
    return (Path(problem.file).name if problem.file else "", problem.line or "", problem.field or "",
            problem.message + (f" ({problem.hint})" if problem.hint else ""))


class FilesPage(QWizardPage):
    """Pick the files (the catalogue is required) and how to read them."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setTitle("Choose your files")
        self.setSubTitle("A catalogue (items with text), or interactions (user, item, time) alone: then the "
                         "catalogue is their item ids, without text. Search queries (query text, item) are "
                         "optional. Nothing is written until the last page.")
        self.paths = {kind: PathEdit(f"Choose the {kind} file", FILE_FILTER) for kind in KINDS}
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(importing.FORMATS))
        self.encoding_edit = QLineEdit()
        self.encoding_edit.setPlaceholderText("utf-8 (default)")
        form = QFormLayout(self)
        form.addRow("Items (catalogue)", self.paths["items"])
        form.addRow("Interactions", self.paths["interactions"])
        form.addRow("Search queries", self.paths["queries"])
        form.addRow("Format", self.format_combo)
        form.addRow("Encoding", self.encoding_edit)
        self.paths["items"].changed.connect(self.completeChanged)
        self.paths["interactions"].changed.connect(self.completeChanged)

    def files(self) -> dict[str, str | None]:
        return {kind: (edit.text() or None) for kind, edit in self.paths.items()}

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        # interactions alone are enough: the import builds the catalogue from their item ids
        return bool(self.paths["items"].text() or self.paths["interactions"].text())

    def validatePage(self) -> bool:  # noqa: N802
        missing = [p for p in self.files().values() if p and not Path(p).expanduser().exists()]
        if missing:
            self.setSubTitle(f"<span style='color:#b00020'>No such file: {missing[0]}</span>")
            return False
        return True


class FilePreview(QWidget):
    """One file's head rows, its column mapping (editable) and the problems in those rows."""

    mappingChanged = Signal(str)

    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.preview: importing.Preview | None = None
        self.combos: dict[str, QComboBox] = {}
        self.kind_combos: dict[str, QComboBox] = {}
        self.mapping_box = QGroupBox("Columns (detected; change them if they are wrong)")
        self.mapping_form = QFormLayout(self.mapping_box)
        # list fields: a path (category path) is read level by level, a set (genres) value by value
        self.kinds_box = QGroupBox("List fields: path (coarse to fine) or set of values (genres, tags)?")
        self.kinds_form = QFormLayout(self.kinds_box)
        self.kinds_box.hide()
        self.rows = RecordsTableModel([], self)
        self.rows_view = QTableView()
        self.rows_view.setModel(self.rows)
        self.rows_view.setWordWrap(False)
        self.rows_view.verticalHeader().setDefaultSectionSize(22)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.mapping_box)
        layout.addWidget(self.kinds_box)
        layout.addWidget(QLabel("First rows of the file:"))
        layout.addWidget(self.rows_view, 1)
        layout.addWidget(self.notes)

    def set_preview(self, preview: importing.Preview) -> None:
        self.preview = preview
        while self.mapping_form.rowCount():
            self.mapping_form.removeRow(0)
        self.combos.clear()
        for target in preview.targets:
            combo = QComboBox()
            combo.addItem(NOT_MAPPED, None)
            for column in preview.columns:
                combo.addItem(str(column), column)
            chosen = preview.mapping.get(target.name)
            combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen is not None else 0)
            combo.currentIndexChanged.connect(lambda _i, k=self.kind: self.mappingChanged.emit(k))
            label = target.label + (" *" if target.required else "")
            self.mapping_form.addRow(label, combo)
            self.combos[target.name] = combo
        self._set_kinds(preview.field_kinds)
        frame = preview.rows
        self.rows.set_headers([str(c) for c in frame.columns])
        kinds = [preview.field_kinds.get(str(c), "path") for c in frame.columns]
        self.rows.set_rows([tuple(_cell(v, k) for v, k in zip(row, kinds)) for row in frame.itertuples(index=False)])
        self.rows_view.resizeColumnsToContents()
        for col in range(self.rows.columnCount()):
            self.rows_view.setColumnWidth(col, min(self.rows_view.columnWidth(col), 260))
        text = f"Read as {preview.reader}." if preview.reader else ""
        if preview.ignored:
            text += f" Not used: {', '.join(map(str, preview.ignored))}."
        if preview.notes:
            text += " " + " ".join(preview.notes)
        self.notes.setText(text)

    def mapping(self) -> dict[str, str]:
        """The chosen target -> column mapping (only what differs from nothing)."""
        return {target: combo.currentData() for target, combo in self.combos.items() if combo.currentData() is not None}

    def _set_kinds(self, detected: dict[str, str]) -> None:
        chosen = self.field_kinds()  # keep the user's choices across previews
        while self.kinds_form.rowCount():
            self.kinds_form.removeRow(0)
        self.kind_combos.clear()
        for name, kind in detected.items():
            combo = QComboBox()
            combo.addItem(f"detect on import (these rows look like a {kind})", None)
            combo.addItem("path: read level by level (e.g. a category path)", "path")
            combo.addItem("set: every value counts (e.g. genres, tags)", "set")
            if name in chosen:
                combo.setCurrentIndex(combo.findData(chosen[name]))
            self.kinds_form.addRow(name, combo)
            self.kind_combos[name] = combo
        self.kinds_box.setVisible(bool(detected))

    def field_kinds(self) -> dict[str, str]:
        """List field -> path / set where the user chose one (the rest is detected on import)."""
        return {name: combo.currentData() for name, combo in self.kind_combos.items()
                if combo.currentData() is not None}


class PreviewPage(QWizardPage):
    """Preview every file, adjust the columns, and check every row before anything is written."""

    def __init__(self, runner: TaskRunner, files_page: FilesPage, parent=None) -> None:
        super().__init__(parent)
        self.setTitle("Check the columns and the rows")
        self.setSubTitle("The first rows of each file with the columns found in them. Every row is then "
                         "checked; problems are listed with their file, line and field.")
        self.runner = runner
        self.files_page = files_page
        self.tabs = QTabWidget()
        self.previews: dict[str, FilePreview] = {}
        self.problems = RecordsTableModel(["File", "Line", "Field", "Problem"], self)
        self.problems_view = QTableView()
        self.problems_view.setModel(self.problems)
        self.problems_view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.problems_view.horizontalHeader().setStretchLastSection(True)
        self.problems_view.verticalHeader().hide()
        self.problems_view.setMaximumHeight(160)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.skip_unknown = QCheckBox("Skip the rows whose item is not in the catalogue (import the rest)")
        self.skip_unknown.hide()
        self.skip_unknown.toggled.connect(self._on_skip_toggled)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.problems_view)
        layout.addWidget(self.skip_unknown)
        self._checked = False  # the whole files were read and checked with the current mapping
        self._hard_problems: list[InputError] = []
        self._unknown: UnknownItemsError | None = None
        self._awaiting: set[str] = set()  # files whose preview has not come back yet
        self._check_running = False

    # -- state

    @property
    def checking(self) -> bool:
        """True while a preview or the full check is running."""
        return bool(self._awaiting) or self._check_running

    def mapping(self) -> dict[str, dict[str, str]]:
        return {kind: p.mapping() for kind, p in self.previews.items()}

    def field_kinds(self) -> dict[str, str]:
        widget = self.previews.get("items")
        return widget.field_kinds() if widget is not None else {}

    def on_unknown(self) -> str:
        return "skip" if self.skip_unknown.isChecked() else "abort"

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        if not self._checked or self.checking or self._hard_problems:
            return False
        return self._unknown is None or self.skip_unknown.isChecked()

    # -- preview

    def initializePage(self) -> None:  # noqa: N802
        self.tabs.clear()
        self.previews.clear()
        self._awaiting.clear()
        self.problems.set_rows([])
        self.problems_view.hide()
        self._checked = False
        self._hard_problems = []
        self._unknown = None
        self.skip_unknown.hide()
        self.skip_unknown.setChecked(False)
        for kind, path in self.files_page.files().items():
            if not path:
                continue
            widget = FilePreview(kind)
            widget.mappingChanged.connect(self._on_mapping_changed)
            self.previews[kind] = widget
            self.tabs.addTab(widget, f"{kind.capitalize()}: {Path(path).name}")
            self._run_preview(kind, None)
        self.completeChanged.emit()

    def _run_preview(self, kind: str, mapping: dict | None) -> None:
        path = self.files_page.files()[kind]
        fmt, encoding = self.files_page.format_combo.currentText(), self.files_page.encoding_edit.text() or None
        self._awaiting.add(kind)
        self.status.setText("Reading the files…")
        # keyed per file: a newer preview of the same file replaces (and drops) the older one
        self.runner.submit(f"Previewing {Path(path).name}",
                           lambda cancel: importing.preview(path, kind, format=fmt, mapping=mapping,
                                                            encoding=encoding, n=20),
                           key=f"wizard-preview-{kind}",
                           on_result=lambda p, k=kind: self._on_preview(k, p),
                           on_error=lambda message, k=kind: self._on_error(message, k))

    def _on_preview(self, kind: str, preview: importing.Preview) -> None:
        widget = self.previews.get(kind)
        if widget is None:
            return
        widget.blockSignals(True)
        widget.set_preview(preview)
        widget.blockSignals(False)
        self._awaiting.discard(kind)
        if not self._awaiting:
            self._run_check()

    @Slot(str)
    def _on_mapping_changed(self, kind: str) -> None:
        self._checked = False
        self.completeChanged.emit()
        self._run_preview(kind, {kind: self.previews[kind].mapping()})

    # -- the full check

    def _run_check(self) -> None:
        files = self.files_page.files()
        fmt, encoding = self.files_page.format_combo.currentText(), self.files_page.encoding_edit.text() or None
        mapping = self.mapping()
        self._check_running = True
        self.status.setText("Checking every row…")
        self.runner.submit("Checking the files",
                           lambda cancel: importing.validate(None, **files, format=fmt, mapping=mapping,
                                                             encoding=encoding, cancel=cancel),
                           key="wizard-check", on_result=self._on_checked, on_error=self._on_error,
                           on_done=self._check_done)

    def _on_checked(self, problems: list[InputError]) -> None:
        self._unknown = next((p for p in problems if isinstance(p, UnknownItemsError)), None)
        self._hard_problems = [p for p in problems if not isinstance(p, UnknownItemsError)]
        head_problems = [p for w in self.previews.values() if w.preview is not None for p in w.preview.problems]
        shown = self._hard_problems or head_problems
        rows = [problem_row(p) for p in shown]
        if self._unknown is not None:
            rows.append(problem_row(self._unknown))
        self.problems.set_rows(rows, marked=range(len(rows)))
        self.problems_view.setVisible(bool(rows))
        self.problems_view.resizeColumnsToContents()
        self._checked = True
        if self._hard_problems:
            self.status.setText(f"<b style='color:#b00020'>{len(self._hard_problems)} problem"
                                f"{'s' if len(self._hard_problems) != 1 else ''} to fix in the files</b> "
                                "(or map the columns differently); nothing has been written.")
        elif self._unknown is not None:
            self.status.setText(f"{self._unknown.n_unknown_rows} of {self._unknown.n_rows} rows name items that "
                                "are not in the catalogue.")
            self.skip_unknown.setText(f"Skip those {self._unknown.n_unknown_rows} rows and import the rest")
            self.skip_unknown.show()
        else:
            self.status.setText("Every row was read and checked: no problems.")
        self.completeChanged.emit()

    def _on_error(self, message: str, kind: str | None = None) -> None:
        self._awaiting.discard(kind)
        self._checked = True
        self._hard_problems = [InputError(message)]
        self.problems.set_rows([("", "", "", message)], marked=[0])
        self.problems_view.show()
        self.status.setText(f"<b style='color:#b00020'>Cannot read the files:</b> {message}")
        self.completeChanged.emit()

    def _check_done(self) -> None:
        self._check_running = False
        self.completeChanged.emit()

    def _on_skip_toggled(self, _checked: bool) -> None:
        self.completeChanged.emit()

    def item_columns(self) -> list[str]:
        widget = self.previews.get("items")
        if widget is None or widget.preview is None:
            return []
        mapping = widget.mapping()
        renamed = {column: target for target, column in mapping.items()}
        return [renamed.get(c, c) for c in widget.preview.columns]


class SettingsPage(QWizardPage):
    """Where to save the project and how to embed and quantise it."""

    def __init__(self, preview_page: PreviewPage, parent=None) -> None:
        super().__init__(parent)
        self.setTitle("Project settings")
        self.setSubTitle("The project file, the text each item is embedded from, and the quantiser that turns "
                         "the embeddings into Semantic IDs.")
        self.preview_page = preview_page
        self.project_path = PathEdit("Save the new project as", f"SemID projects (*{SUFFIX})", save=True)
        self.project_path.changed.connect(self.completeChanged)
        self.template_edit = QLineEdit()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText(f"{BUNDLED_MODEL} (bundled; or a local model folder)")
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(quantize.METHODS))
        self.preset_combo = QComboBox()
        # the lowest value of each box means "fitted to the catalogue" (quantize.sized_spec)
        self.levels_spin = QSpinBox()
        self.levels_spin.setRange(0, 25)
        self.levels_spin.setSpecialValueText("auto (3; more for millions of items)")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 65536)
        self.size_spin.setSpecialValueText("auto (the power of two nearest √items, 16–256)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.setToolTip("Field to measure prefix purity against: 'field' or 'field[i]'")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020")
        form = QFormLayout(self)
        form.addRow("Project file", self.project_path)
        form.addRow("Text template", self.template_edit)
        form.addRow("Embedding model", self.model_edit)
        form.addRow("Quantiser", self.method_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Levels", self.levels_spin)
        form.addRow("Codes per level", self.size_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Purity against", self.label_combo)
        form.addRow(self.error_label)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.preset_combo.currentIndexChanged.connect(self._on_preset)
        self._on_method()

    def _on_method(self, *_args) -> None:
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems(list(quantize.PRESETS[self.method_combo.currentText()]))
        self.preset_combo.blockSignals(False)
        self._on_preset()

    def _on_preset(self, *_args) -> None:
        spec = quantize.PRESETS[self.method_combo.currentText()][self.preset_combo.currentText()]
        auto = self.preset_combo.currentText() == "default"
        self.levels_spin.setValue(self.levels_spin.minimum() if auto else spec.levels)
        self.size_spin.setValue(self.size_spin.minimum() if auto else spec.codebook_size)
        self.seed_spin.setValue(spec.seed)

    def initializePage(self) -> None:  # noqa: N802
        columns = [c for c in self.preview_page.item_columns() if c not in ("item_id",)]
        if not self.template_edit.text():
            self.template_edit.setText(default_template(columns))
        self.label_combo.clear()
        self.label_combo.addItem("")
        self.label_combo.addItems([c for c in columns if c not in ("title", "price")])
        if not self.project_path.text():
            files = self.preview_page.files_page.files()
            source = files["items"] or files["interactions"]
            stem = Path(source).expanduser().resolve().parent / (Path(source).name.split(".")[0] + SUFFIX)
            self.project_path.setText(str(stem))

    def quantizer_settings(self) -> tuple[str, str, dict]:
        """``(method, preset, overrides)``; a box left on "auto" is not overridden, so the
        project is sized to its catalogue when it is built (quantize.sized_spec)."""
        method, preset = self.method_combo.currentText(), self.preset_combo.currentText()
        overrides = {k: w.value() for k, w in (("levels", self.levels_spin), ("codebook_size", self.size_spin))
                     if w.value() != w.minimum()}
        overrides["seed"] = self.seed_spin.value()
        return method, preset, overrides

    def spec(self):
        """The spec of the settings (sized to a catalogue of 0 items where a box says auto):
        for checking the values; the build sizes it to the real catalogue."""
        method, preset, overrides = self.quantizer_settings()
        return quantize.sized_spec(method, 0, preset, overrides)

    def target(self) -> Path:
        path = Path(self.project_path.text()).expanduser()
        return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)

    def isComplete(self) -> bool:  # noqa: N802
        return bool(self.project_path.text())

    def validatePage(self) -> bool:  # noqa: N802
        target = self.target()
        problem = None
        if target.exists():
            problem = f"{target} already exists; choose another name"
        elif not target.parent.exists():
            problem = f"folder {target.parent} does not exist"
        else:
            try:
                self.spec()
            except SemidError as exc:
                problem = str(exc)
        self.error_label.setText(problem or "")
        return problem is None


class RunPage(QWizardPage):
    """Create the project: import, embed, quantise — with progress and cancel."""

    def __init__(self, runner: TaskRunner, wizard: "ImportWizard", parent=None) -> None:
        super().__init__(parent)
        self.setTitle("Create the project")
        self.setSubTitle("Importing, embedding the items and fitting the quantiser. You can cancel; the new file "
                         "is then removed.")
        self.runner = runner
        self._wizard = wizard
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.stage = QLabel("")
        self.stage.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.cancel_button = QPushButton("Cancel the import")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stage)
        layout.addWidget(self.progress)
        layout.addWidget(self.log, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.job = None
        self.created: Path | None = None
        self.error: str | None = None

    def initializePage(self) -> None:  # noqa: N802
        self.created = None
        self.error = None
        self.log.clear()
        self.progress.setValue(0)
        w = self._wizard
        files = w.files_page.files()
        settings = w.settings_page
        target = settings.target()
        kwargs = dict(**files, format=w.files_page.format_combo.currentText(), mapping=w.preview_page.mapping(),
                      encoding=w.files_page.encoding_edit.text() or None, on_unknown=w.preview_page.on_unknown(),
                      field_kinds=w.preview_page.field_kinds() or None,
                      template=settings.template_edit.text().strip() or None,
                      model=settings.model_edit.text().strip() or None, quantizer=settings.quantizer_settings(),
                      label_field=settings.label_combo.currentText().strip() or None)
        self.stage.setText(f"Creating {target}…")
        self.cancel_button.setEnabled(True)
        self.job = self.runner.submit(f"Creating {target.name}",
                                      lambda cancel: build_project(target, cancel=cancel, **kwargs),
                                      key="wizard-create", on_event=self._on_event, on_result=self._on_created,
                                      on_error=self._on_error, on_done=self._on_done)
        # no going back while the file is being built (QWizard enables Back after this returns)
        QTimer.singleShot(0, self._update_back)

    def _update_back(self) -> None:
        back = self.wizard().button(QWizard.BackButton) if self.wizard() is not None else None
        if back is not None:
            back.setEnabled(self.job is None)

    @property
    def running(self) -> bool:
        return self.job is not None

    def _on_event(self, event) -> None:
        from ...core.events import Progress

        if isinstance(event, Progress):
            if not event.total:
                self.progress.setRange(0, 0)
            show_progress(self.progress, self.stage, event)
        elif isinstance(event, Message):
            self.log.appendPlainText(event.text)

    def _on_created(self, path: Path) -> None:
        self.created = Path(path)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.stage.setText(f"Created {path}; finishing…")

    def _on_error(self, message: str) -> None:
        self.error = message
        self.stage.setText(f"<b style='color:#b00020'>Failed:</b> {message} — nothing was kept; go back to change "
                           "the settings.")
        self.log.appendPlainText(f"error: {message}")

    def _on_done(self) -> None:
        if self.created is not None:  # Finish turns on now (completeChanged below), not before
            self.stage.setText(f"Created {self.created}. Press Finish to open it.")
        elif self.error is None:
            self.stage.setText("Cancelled; the new project file was removed.")
        self.job = None
        self.cancel_button.setEnabled(False)
        self.completeChanged.emit()
        self._update_back()

    @Slot()
    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def isComplete(self) -> bool:  # noqa: N802
        return self.created is not None


class ImportWizard(QWizard):
    """New project from files: choose, preview and map, check, set up, create."""

    projectCreated = Signal(str)

    def __init__(self, runner: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project from files")
        self.setWizardStyle(QWizard.ClassicStyle)
        self.resize(960, 720)
        self.runner = runner
        self.files_page = FilesPage()
        self.preview_page = PreviewPage(runner, self.files_page)
        self.settings_page = SettingsPage(self.preview_page)
        self.run_page = RunPage(runner, self)
        for page in (self.files_page, self.preview_page, self.settings_page, self.run_page):
            self.addPage(page)
        self.setOption(QWizard.NoBackButtonOnLastPage, False)

    def accept(self) -> None:
        created = self.run_page.created
        super().accept()
        if created is not None:
            self.projectCreated.emit(str(created))

    def reject(self) -> None:
        # closing the wizard cancels its jobs; a half-built project removes itself
        for job in self.runner.running_jobs():
            if job.key and job.key.startswith("wizard-"):
                job.cancel()
        super().reject()
