"""MainWindow: menus, the seven views, the log, the job status bar, projects and their history.

The window owns the one :class:`~.tasks.TaskRunner` and the :class:`~.context.ProjectContext`
every panel shares. It remembers its layout and the recent projects in ``QSettings``, starts
on the last project (or builds and opens the bundled sample project), and on close cancels
every job, waits for its thread and closes the project file.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from .. import __version__
from ..core import wording
from ..core.errors import SemidError
from ..core.pipeline import build_sample_project
from ..core.store import SUFFIX
from .context import ProjectContext
from .panels.catalogue import CataloguePanel
from .panels.evaluation import EvaluationPanel
from .panels.export import ExportPanel
from .panels.playground.panel import PlaygroundPanel
from .panels.sid_tree import SidTreePanel
from .panels.strategies import StrategiesPanel
from .panels.training.panel import TrainingPanel
from .tasks import TaskRunner
from .widgets import JobStatusWidget, LogView

MAX_RECENT = 8
SAMPLE_NAME = "sample" + SUFFIX


def sample_project_path() -> Path:
    """Where the bundled sample project is built: the user's data folder for this app."""
    folder = Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
    return folder / SAMPLE_NAME


class MainWindow(QMainWindow):
    """The SemID Studio window."""

    VIEWS = ("catalogue", "tree", "training", "playground", "evaluation", "strategies", "export")

    def __init__(self, parent: QWidget | None = None, *, persist: bool = True) -> None:
        super().__init__(parent)
        self.persist = persist  # False for --screenshot runs: leave the user's settings alone
        # the core's hints name this window's controls, not the CLI's options, while it is open
        self._front_end_before = wording.set_front_end("gui")
        self.setObjectName("SemidStudioMainWindow")
        self.setWindowTitle("SemID Studio")
        self.runner = TaskRunner(self)
        self.context = ProjectContext(self.runner, self)
        self.errors: list[str] = []
        self._error_box: QMessageBox | None = None
        self._closing = False

        self.catalogue = CataloguePanel(self.context)
        self.sid_tree = SidTreePanel(self.context)
        self.training = TrainingPanel(self.context)
        self.playground = PlaygroundPanel(self.context)
        self.evaluation = EvaluationPanel(self.context)
        self.strategies = StrategiesPanel(self.context)
        self.export = ExportPanel(self.context)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for panel, title in ((self.catalogue, "Catalogue"), (self.sid_tree, "SID tree"),
                             (self.training, "Training"), (self.playground, "Playground"),
                             (self.evaluation, "Evaluation"), (self.strategies, "Strategies"),
                             (self.export, "Export")):
            self.tabs.addTab(panel, title)
        self.setCentralWidget(self.tabs)

        self.log = LogView()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("LogDock")
        self.log_dock.setWidget(self.log)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()

        self.project_label = QLabel("No project")
        self.jobs = JobStatusWidget(self.runner)
        self.statusBar().addWidget(self.project_label, 1)
        self.statusBar().addPermanentWidget(self.jobs)

        self.context.message.connect(self.log.add)
        self.context.error.connect(self.show_error)
        self.context.projectOpened.connect(self._on_project_opened)
        self.context.projectClosed.connect(self._on_project_closed)
        self.context.inspectionChanged.connect(self._update_project_label)
        self.context.contentChanged.connect(self._update_project_label)
        self.context.externalChange.connect(
            lambda: self.statusBar().showMessage("the project was changed by another process; reloaded", 10000))
        self.context.revealItem.connect(lambda _idx: self.show_view("tree"))
        self.runner.job_finished.connect(self._on_job_finished)
        self.strategies.compareRequested.connect(self.compare_runs)
        self.strategies.openRunRequested.connect(self._open_run)
        self.strategies.useModelRequested.connect(self._use_search_model)

        self._build_menus()
        self._restore_layout()

    # -- menus

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New project from files…", self.new_project, QKeySequence.New)
        self.open_action = self._action(file_menu, "&Open…", self.open_dialog, QKeySequence.Open)
        self._action(file_menu, "Open the &sample project", self.open_sample_project)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.save_as_action = self._action(file_menu, "Save &as…", self.save_as_dialog, QKeySequence.SaveAs)
        self.close_action = self._action(file_menu, "&Close project", self.close_project)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        view_menu = self.menuBar().addMenu("&View")
        for i, name in enumerate(self.VIEWS):
            self._action(view_menu, self.tabs.tabText(i), lambda checked=False, n=name: self.show_view(n),
                         QKeySequence(f"Ctrl+{i + 1}"))
        view_menu.addSeparator()
        view_menu.addAction(self.log_dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About SemID Studio", self._about)
        self._update_recent_menu()
        self._update_actions()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _update_actions(self) -> None:
        is_open = self.context.is_open
        self.save_as_action.setEnabled(is_open)
        self.close_action.setEnabled(is_open)

    def show_view(self, name: str) -> None:
        self.tabs.setCurrentIndex(self.VIEWS.index(name))

    @property
    def current_view(self) -> str:
        return self.VIEWS[self.tabs.currentIndex()]

    # -- settings

    def settings(self) -> QSettings:
        return QSettings()

    def _restore_layout(self) -> None:
        settings = self.settings()
        geometry = settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        view = settings.value("window/view")
        if view in self.VIEWS:
            self.show_view(view)

    def _save_layout(self) -> None:
        if not self.persist:
            return
        settings = self.settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/view", self.current_view)

    def recent_projects(self) -> list[str]:
        value = self.settings().value("recent_projects", [])
        if isinstance(value, str):  # QSettings gives a bare string for a one-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def last_project(self) -> Path | None:
        value = self.settings().value("last_project")
        return Path(value) if value else None

    def _remember(self, path: Path) -> None:
        if not self.persist:
            return
        text = str(path.resolve())
        recent = [text] + [p for p in self.recent_projects() if p != text]
        settings = self.settings()
        settings.setValue("recent_projects", recent[:MAX_RECENT])
        settings.setValue("last_project", text)
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_projects()
        for text in recent:
            action = self.recent_menu.addAction(text)
            action.triggered.connect(lambda checked=False, p=text: self.open_project(p))
        self.recent_menu.setEnabled(bool(recent))

    # -- projects

    def open_project(self, path: str | Path) -> bool:
        """Open a project file (the tree loads in the background); False with a message on error."""
        path = Path(path).expanduser()
        if self.runner.is_busy(TrainingPanel.JOB_KEY):
            self.show_error("a training job is running on the open project; cancel it before opening another")
            return False
        if not self.context.open(path):
            return False
        self._remember(path)
        return True

    def start(self, project: str | Path | None = None) -> None:
        """What the app does on launch: the named project, else the last one, else the sample."""
        if project is not None:
            self.open_project(project)
            return
        last = self.last_project()
        if last is not None and last.exists():
            self.open_project(last)
        else:
            self.open_sample_project()

    @Slot()
    def open_sample_project(self) -> None:
        """Open the bundled sample project, building it first (in the background) if needed."""
        path = sample_project_path()
        if path.exists():
            self.open_project(path)
            return
        if self.runner.is_busy("sample"):
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_error(f"cannot create {path.parent}: {exc}")
            return
        self.log.add("info", f"building the sample project in {path} (embedding the sample catalogue)")
        self.project_label.setText("Building the sample project…")
        self.runner.submit("Building the sample project", lambda cancel: build_sample_project(path, cancel=cancel),
                           key="sample", on_result=self.open_project, on_error=self.show_error,
                           on_event=self._log_event)

    def _log_event(self, event) -> None:
        from ..core.events import Message

        if isinstance(event, Message):
            self.log.add(event.level, event.text)

    @Slot()
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", "", f"SemID projects (*{SUFFIX});;All files (*)")
        if path:
            self.open_project(path)

    @Slot()
    def save_as_dialog(self) -> None:
        if not self.context.is_open:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the project as", str(self.context.path.parent),
                                              f"SemID projects (*{SUFFIX})")
        if path:
            self.save_as(path)

    def save_as(self, target: str | Path) -> None:
        """Write a compact copy of the project to ``target`` (in a worker) and switch to it."""
        target = Path(target)
        if target.suffix != SUFFIX:
            target = target.with_name(target.name + SUFFIX)
        if target.exists():
            self.show_error(f"{target}: already exists; choose another name")
            return
        self.context.submit(f"Saving as {target.name}", lambda store, cancel: store.save_as(target),
                            key="save-as", on_result=self.open_project)

    @Slot()
    def close_project(self) -> None:
        if self.runner.is_busy(TrainingPanel.JOB_KEY):
            self.show_error("a training job is running; cancel it before closing the project")
            return
        self.context.close()

    @Slot()
    def new_project(self) -> None:
        """Create a project from files with the import wizard, then open it."""
        from .panels.import_wizard import ImportWizard

        wizard = ImportWizard(self.runner, self)
        wizard.projectCreated.connect(self.open_project)
        wizard.setAttribute(Qt.WA_DeleteOnClose)
        wizard.open()
        self.wizard = wizard

    @Slot()
    def _on_project_opened(self) -> None:
        self.setWindowTitle(f"{self.context.path.name} — SemID Studio")
        self._update_project_label()
        self._update_actions()

    @Slot()
    def _on_project_closed(self) -> None:
        self.setWindowTitle("SemID Studio")
        self.project_label.setText("No project")
        self._update_actions()

    @Slot()
    def _update_project_label(self) -> None:
        store = self.context.store
        if store is None:
            return
        parts = [f"{self.context.path.name}: {store.item_count():,} items",
                 f"{store.interaction_count():,} interactions", f"{store.query_count():,} queries"]
        inspection = self.context.inspection
        if inspection is not None:
            parts.append(f"SIDs: run #{inspection.run.id} ({inspection.run.method}, {inspection.run.n_levels} levels)")
        elif self.context.loading:
            parts.append("loading SIDs…")
        self.project_label.setText(" · ".join(parts))

    # -- between views (panels never talk to each other directly)

    @Slot(int, int)
    def compare_runs(self, run_a: int, run_b: int) -> None:
        """Open the SID tree's Compare runs view on two runs and compare them."""
        tree = self.sid_tree
        for combo, run in ((tree.compare_a, run_a), (tree.compare_b, run_b)):
            if combo.findData(run) >= 0:
                combo.setCurrentIndex(combo.findData(run))
        for i in range(tree.tabs.count()):
            if tree.tabs.tabText(i) == "Compare runs":
                tree.tabs.setCurrentIndex(i)
        self.show_view("tree")
        tree.compare_runs()

    @Slot(int)
    def _open_run(self, run_id: int) -> None:
        self.context.load_run(run_id)
        self.show_view("tree")

    @Slot(int)
    def _use_search_model(self, model_id: int) -> None:
        self.playground.choose_search_model(model_id)
        self.show_view("playground")

    # -- state

    def is_idle(self) -> bool:
        """No background job and nothing waiting to start (the debounced inputs)."""
        return not self.runner.is_busy() and not self.context.loading and not self.catalogue.filtering \
            and not self.playground.pending

    @Slot(int, str)
    def _on_job_finished(self, _job_id: int, status: str) -> None:
        if status == "failed":
            self.log_dock.show()

    # -- errors

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Tell the user, in one line, without blocking the event loop."""
        self.errors.append(message)
        self.log.add("error", message)
        self.statusBar().showMessage(message, 15000)
        if self._closing:
            return
        if self._error_box is None:
            box = QMessageBox(QMessageBox.Warning, "SemID Studio", message, QMessageBox.Ok, self)
            box.setWindowModality(Qt.WindowModal)
            self._error_box = box
        self._error_box.setText(message)
        self._error_box.open()

    def _about(self) -> None:
        QMessageBox.about(self, "About SemID Studio",
                          f"SemID Studio {__version__}\nSemantic-ID generative retrieval: embed, quantise, "
                          "inspect, train, evaluate, export.")

    # -- closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Cancel every job, wait for its thread, then close the project file."""
        self._closing = True
        self._save_layout()
        if self._error_box is not None:
            self._error_box.close()
        self.runner.shutdown()
        self.context.close()
        wording.set_front_end(self._front_end_before)
        super().closeEvent(event)


def wait_until_idle(window: MainWindow, on_idle, *, poll_ms: int = 100, settle_polls: int = 3) -> QTimer:
    """Call ``on_idle()`` once the window has been idle for a few polls in a row."""
    timer = QTimer(window)
    timer.setInterval(poll_ms)
    state = {"quiet": 0}

    def poll() -> None:
        state["quiet"] = state["quiet"] + 1 if window.is_idle() else 0
        if state["quiet"] >= settle_polls:
            timer.stop()
            on_idle()

    timer.timeout.connect(poll)
    timer.start()
    return timer


def describe_error(exc: BaseException) -> str:
    """A user-facing line for an unexpected exception (the trace goes to stderr)."""
    if isinstance(exc, SemidError):
        return str(exc)
    return f"unexpected error: {exc.__class__.__name__}: {exc}"
