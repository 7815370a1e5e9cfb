"""ExportPanel: a run's SID table (CSV, Parquet, JSON) and codebooks, and a generative model.

SID tables and codebooks are written by :mod:`semid_studio.core.export`, a model (its best
checkpoint as safetensors + its spec JSON) by :func:`semid_studio.core.export.export_model`,
all in a worker; the panel only picks what, the format and the path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.export import CODEBOOK_FORMATS, TABLE_FORMATS, export_codebooks, export_sid_table
from ..context import ProjectContext
from ...core.export import export_model
from ..widgets import PathEdit, fill_model_combo

_TABLE_NAMES = {".csv": "CSV (+ provenance sidecar)", ".parquet": "Parquet (provenance in the schema)",
                ".json": "JSON (provenance inside)"}
_BOOK_NAMES = {".npy": "NumPy .npy (levels × codes × dim)", ".safetensors": "safetensors (+ RQ-VAE weights)"}


class ExportPanel(QWidget):
    """Export SID tables and codebooks of a quantiser run."""

    def __init__(self, context: ProjectContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.written: list[Path] = []

        self.run_combo = QComboBox()
        self.table_format = QComboBox()
        for suffix in TABLE_FORMATS:
            self.table_format.addItem(_TABLE_NAMES.get(suffix, suffix), suffix)
        self.with_titles = QCheckBox("Include item titles")
        self.table_path = PathEdit("Export SID table", "SID tables (*.csv *.parquet *.json)", save=True)
        self.table_button = QPushButton("Export SID table")
        self.table_button.clicked.connect(self.export_table)
        table_box = QGroupBox("SID table: one row per item (id, every code incl. the dedup level, SID string)")
        tf = QFormLayout(table_box)
        tf.addRow("Format", self.table_format)
        tf.addRow("", self.with_titles)
        tf.addRow("File", self.table_path)
        tf.addRow("", self.table_button)

        self.book_format = QComboBox()
        for suffix in CODEBOOK_FORMATS:
            self.book_format.addItem(_BOOK_NAMES.get(suffix, suffix), suffix)
        self.book_path = PathEdit("Export codebooks", "Codebooks (*.npy *.safetensors)", save=True)
        self.book_button = QPushButton("Export codebooks")
        self.book_button.clicked.connect(self.export_codebooks)
        book_box = QGroupBox("Codebooks of the quantiser")
        bf = QFormLayout(book_box)
        bf.addRow("Format", self.book_format)
        bf.addRow("File", self.book_path)
        bf.addRow("", self.book_button)

        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.model_path = PathEdit("Export the model", "safetensors (*.safetensors)", save=True)
        self.model_button = QPushButton("Export model")
        self.model_button.clicked.connect(self.export_model)
        model_box = QGroupBox("Generative model (safetensors weights + JSON spec)")
        model_box.setToolTip("The checkpoint chosen on validation as safetensors, and its spec, vocabulary and "
                             "provenance (quantiser run, split, validation history) as JSON beside it")
        mf = QFormLayout(model_box)
        mf.addRow("Model", self.model_combo)
        mf.addRow("File", self.model_path)
        mf.addRow("", self.model_button)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        run_form = QFormLayout()
        run_form.addRow("Quantiser run", self.run_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(run_form)
        layout.addWidget(table_box)
        layout.addWidget(book_box)
        layout.addWidget(model_box)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.table_format.currentIndexChanged.connect(lambda _i: self._fix_suffix(self.table_path, self.table_format))
        self.book_format.currentIndexChanged.connect(lambda _i: self._fix_suffix(self.book_path, self.book_format))
        context.projectOpened.connect(self._refresh)
        context.contentChanged.connect(self._refresh)
        context.modelsChanged.connect(self._refresh_models)
        context.projectClosed.connect(self._refresh)
        self._refresh()

    @Slot()
    def _refresh(self) -> None:
        store = self.context.store
        self.run_combo.clear()
        self._refresh_models()
        if store is None:
            self.table_path.setText("")
            self.book_path.setText("")
            self._set_enabled(False)
            self.status.setText("Open a project to export its Semantic IDs.")
            return
        active = store.active_run_id()
        for run in reversed(store.list_quantizer_runs()):
            self.run_combo.addItem(f"#{run.id} {run.name} ({run.method})" + ("  ★ active" if run.id == active else ""),
                                   run.id)
        if active is not None:
            self.run_combo.setCurrentIndex(self.run_combo.findData(active))
        has_runs = self.run_combo.count() > 0
        self._set_enabled(has_runs)
        stem = store.path.with_suffix("")
        if not self.table_path.text():
            self.table_path.setText(str(stem.with_name(stem.name + "_sids" + self.table_format.currentData())))
        if not self.book_path.text():
            self.book_path.setText(str(stem.with_name(stem.name + "_codebooks" + self.book_format.currentData())))
        self.status.setText("" if has_runs else "This project has no Semantic IDs yet: fit a quantiser first.")

    @Slot()
    def _refresh_models(self) -> None:
        store = self.context.store
        models = fill_model_combo(self.model_combo, store)
        for w in (self.model_combo, self.model_path, self.model_button):
            w.setEnabled(bool(models))
        self.model_button.setToolTip("" if models else "This project has no trained generative model yet")
        if store is None:
            self.model_path.setText("")
        elif not self.model_path.text():
            stem = store.path.with_suffix("")
            self.model_path.setText(str(stem.with_name(stem.name + "_model.safetensors")))

    def _set_enabled(self, enabled: bool) -> None:
        for w in (self.run_combo, self.table_button, self.book_button, self.table_path, self.book_path):
            w.setEnabled(enabled)

    @staticmethod
    def _fix_suffix(path_edit: PathEdit, combo: QComboBox) -> None:
        text = path_edit.text()
        if text:
            path_edit.setText(str(Path(text).with_suffix(combo.currentData())))

    @Slot()
    def export_table(self) -> None:
        run_id, path = self.run_combo.currentData(), self.table_path.text()
        if not path:
            self.context.report_error("choose a file to export the SID table to")
            return
        with_titles = self.with_titles.isChecked()
        self.status.setText(f"Writing {path}…")
        self.context.submit("Exporting the SID table",
                            lambda store, cancel: export_sid_table(store, path, run_id, with_title=with_titles),
                            on_result=self._on_written, on_error=self._on_failed)

    @Slot()
    def export_codebooks(self) -> None:
        run_id, path = self.run_combo.currentData(), self.book_path.text()
        if not path:
            self.context.report_error("choose a file to export the codebooks to")
            return
        self.status.setText(f"Writing {path}…")
        self.context.submit("Exporting codebooks", lambda store, cancel: [export_codebooks(store, path, run_id)],
                            on_result=self._on_written, on_error=self._on_failed)

    @Slot()
    def export_model(self) -> None:
        model_id, path = self.model_combo.currentData(), self.model_path.text()
        if model_id is None:
            self.context.report_error("this project has no trained generative model to export")
            return
        if not path:
            self.context.report_error("choose a file to export the model to")
            return
        self.status.setText(f"Writing {path}…")
        self.context.submit("Exporting the model", lambda store, cancel: export_model(store, path, model_id),
                            on_result=self._on_written, on_error=self._on_failed)

    def _on_written(self, paths: list[Path]) -> None:
        self.written.extend(Path(p) for p in paths)
        self.status.setText("Wrote " + ", ".join(str(p) for p in paths))
        self.context.message.emit("info", "exported " + ", ".join(str(p) for p in paths))

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Export failed: {message}")
        self.context.report_error(message)
