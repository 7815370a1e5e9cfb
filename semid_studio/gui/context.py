"""ProjectContext: the open project as the panels see it (glue-style shared state).

One object on the GUI thread holds the project's path, a read connection for quick look-ups
(catalogue pages, a search), the inspected quantiser run (loaded by a worker) and the signals
panels use to talk to each other (highlight these items in the tree, add this item to the
history, ...). Panels never talk to each other directly.

Work that reads a lot or writes goes through :func:`store_task`, which opens the project's own
connection *inside* the worker thread (a SQLite connection belongs to the thread that made it).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.analysis.inspection import Inspection, load_inspection
from ..core.analysis.items import format_value
from ..core.analysis.maps import Projection, project_2d
from ..core.analysis.reading import read_vectors
from ..core.errors import SemidError
from ..core.events import CancelToken, Message
from ..core.store import ProjectStore, local_commits, local_writes_open
from .tasks import Job, TaskRunner


def freeze_long_lived() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    A full collection walks every tracked object: with torch, transformers and a loaded
    project that is over half a million objects and 200-500 ms, during which no thread runs
    Python, so the window freezes. What is alive after a big load (modules, the project's
    arrays) lives on; freezing it keeps later collections to the objects made since.
    """
    gc.freeze()


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a worker imports or loads a lot.

    Importing transformers makes ~300k objects; collections triggered meanwhile walk them all
    while holding the GIL, and the window stalls. Paused, the walk happens once (or never,
    after :func:`freeze_long_lived`). Safe to nest and to use from several threads.
    """
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                gc.enable()


def store_task(path: Path, body: Callable[[ProjectStore, CancelToken], Any]):
    """A task function that runs ``body(store, cancel)`` on its own connection to ``path``.

    ``body`` may return a value or a task generator (whose events are passed on).
    """

    def task(cancel: CancelToken):
        store = ProjectStore.open(path)
        try:
            result = body(store, cancel)
            if hasattr(result, "__next__"):
                result = yield from result
            return result
        finally:
            store.close()

    return task


def _inspect(store: ProjectStore, cancel: CancelToken, run_id: int | None, label_field: str | None):
    yield Message(f"loading the Semantic IDs of {store.path.name}")
    with gc_paused():  # hundreds of thousands of short-lived objects at 100k items
        inspection = load_inspection(store, run_id, label_field=label_field)
    cancel.raise_if_cancelled()
    return inspection


def _project(store: ProjectStore, cancel: CancelToken, embedding_set_id: int, method: str = "pca"):
    _meta, vectors = read_vectors(store, embedding_set_id)
    cancel.raise_if_cancelled()
    return project_2d(vectors, method=method)


class ProjectContext(QObject):
    """The open project, shared by every panel."""

    projectOpened = Signal()
    projectClosed = Signal()
    #: a quantiser run was loaded for inspection (or cleared: ``inspection`` is None)
    inspectionChanged = Signal()
    #: the 2-D map of the inspected run's embeddings is ready
    projectionChanged = Signal()
    #: runs, models or evaluations were added or the active run changed
    contentChanged = Signal()
    #: a generative model was added, saved a checkpoint or changed status
    modelsChanged = Signal()
    #: ask the tree to show an item (reveal its path and select it)
    revealItem = Signal(int)
    #: mark these items (and their paths) in the tree and on the map
    highlightItems = Signal(list)
    #: ask the playground to append these items to its history
    addToHistory = Signal(list)
    #: a line for the log: (level, text)
    message = Signal(str, str)
    #: a user-facing error (one line)
    error = Signal(str)
    #: another process (a ``semid`` command) changed the project; the panels have been told to reload
    externalChange = Signal()

    #: how often the open project is checked for other processes' writes (one cheap PRAGMA)
    WATCH_MS = 2000

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.store: ProjectStore | None = None
        self.path: Path | None = None
        self.inspection: Inspection | None = None
        self.projection: Projection | None = None
        #: the embedding map's layout (analysis.maps.MAP_METHODS), kept across runs and projects
        self.map_method = "pca"
        self.loading = False
        #: bumped at every open: a worker's answer about an older project is dropped by comparing it
        self.generation = 0
        self._seen = (0, 0, 0)  # (data_version, local_commits, local_writes_open) at the last look
        self.watch = QTimer(self)
        self.watch.setInterval(self.WATCH_MS)
        self.watch.timeout.connect(self.check_external_changes)

    # -- opening and closing

    @property
    def is_open(self) -> bool:
        return self.store is not None

    def open(self, path: str | Path) -> bool:
        """Open a project (the read connection now, the SID tree in a worker); False on error."""
        path = Path(path)
        try:
            store = ProjectStore.open(path)
        except SemidError as exc:
            self.error.emit(str(exc))
            return False
        self.close()
        self.store = store
        self.path = path
        self.generation += 1
        self.projectOpened.emit()
        self.message.emit("info", f"opened {path}")
        if store.recovered:
            self.message.emit("warning", f"{path.name} was not closed cleanly (a crash or kill); its last "
                                         "commits were recovered from the -wal file")
        self._seen = (store.data_version(), local_commits(), local_writes_open())
        self.watch.start()
        self.load_run()
        return True

    def check_external_changes(self) -> bool:
        """Reload what another process changed (a CLI run beside the app); True if it did.

        ``data_version`` moves on any other connection's commit, our own workers' too; those
        also move the process's own commit count, and the panels already hear of them.
        """
        if self.store is None:
            return False
        seen = (self.store.data_version(), local_commits(), local_writes_open())
        # another process's commit: the data moved while this process began no write and had
        # none open (a write of ours open at either look may be what moved it)
        changed = seen[0] != self._seen[0] and seen[1] == self._seen[1] and seen[2] == 0 and self._seen[2] == 0
        self._seen = seen
        if not changed:
            return False
        self.message.emit("info", f"{self.path.name} was changed by another process; reloaded")
        self.externalChange.emit()
        self.contentChanged.emit()
        self.modelsChanged.emit()
        shown = None if self.inspection is None else self.inspection.run.id
        if not self.loading and self.store.active_run_id() != shown:
            self.load_run()  # new Semantic IDs (a 'semid quantize' beside the app)
        return True

    def close(self) -> None:
        """Forget the project: cancel its inspection jobs and close the read connection."""
        if self.store is None:
            return
        self.watch.stop()
        for job in self.runner.running_jobs():
            if job.key in ("inspect", "projection"):
                job.cancel()
        self.store.close()
        self.store = None
        self.path = None
        self.inspection = None
        self.projection = None
        self.loading = False
        self.projectClosed.emit()

    # -- the inspected run

    def load_run(self, run_id: int | None = None, label_field: str | None = None) -> None:
        """Load a run (the active one by default) for the tree, plots and statistics.

        ``label_field`` (``field`` or ``field[i]``) is what purity is measured against; by
        default the run's own label field.
        """
        if self.store is None:
            return
        self.inspection = None
        self.projection = None
        self.inspectionChanged.emit()
        self.projectionChanged.emit()
        if self.store.active_run_id() is None:
            self.message.emit("info", "this project has no Semantic IDs yet: fit a quantiser in Training")
            return
        self.loading = True
        path = self.path
        self.runner.submit(
            f"Loading Semantic IDs of {path.name}",
            store_task(path, lambda store, cancel: _inspect(store, cancel, run_id, label_field)),
            key="inspect",
            on_result=self._on_inspection,
            on_error=self._on_load_error,
            on_event=self._on_event,
        )

    def _on_inspection(self, inspection: Inspection) -> None:
        self.loading = False
        if self.store is None:
            return
        self.inspection = inspection
        freeze_long_lived()  # the worker may have imported and loaded a lot
        self.inspectionChanged.emit()
        self.project_map()

    def project_map(self, method: str | None = None) -> None:
        """(Re)compute the embedding map of the inspected run's embeddings, in the background."""
        if method is not None:
            self.map_method = method
        if self.inspection is None or self.path is None:
            return
        self.projection = None
        self.projectionChanged.emit()
        emb_id, method = self.inspection.run.embedding_set_id, self.map_method
        self.runner.submit(
            "Projecting embeddings" + (" (t-SNE)" if method == "tsne" else ""),
            store_task(self.path, lambda store, cancel: _project(store, cancel, emb_id, method)),
            key="projection",
            on_result=self._on_projection,
            on_error=self.report_error,
        )

    def _on_projection(self, projection: Projection) -> None:
        if self.store is None:
            return
        self.projection = projection
        self.projectionChanged.emit()

    def _on_load_error(self, message: str) -> None:
        self.loading = False
        self.report_error(message)

    def _on_event(self, event) -> None:
        if isinstance(event, Message):
            self.message.emit(event.level, event.text)

    def set_active_run(self, run_id: int) -> None:
        """Make ``run_id`` the project's SIDs and inspect it."""
        if self.store is None:
            return
        try:
            self.store.set_active_run(run_id)
        except SemidError as exc:
            self.report_error(str(exc))
            return
        self.contentChanged.emit()
        self.load_run(run_id)

    # -- helpers for panels

    def submit(self, title: str, body: Callable[[ProjectStore, CancelToken], Any], **kwargs) -> Job | None:
        """Run ``body(store, cancel)`` in a worker on its own connection to the project.

        ``on_result`` is called only if the same project is still open when the result comes.
        """
        if self.path is None:
            self.report_error("open a project first")
            return None
        kwargs.setdefault("on_error", self.report_error)
        on_result = kwargs.get("on_result")
        if on_result is not None:
            generation = self.generation

            def guarded(result, on_result=on_result):
                if self.generation == generation and self.store is not None:
                    on_result(result)

            kwargs["on_result"] = guarded
        return self.runner.submit(title, store_task(self.path, body), **kwargs)

    def report_error(self, message: str) -> None:
        self.message.emit("error", message)
        self.error.emit(message)

    def item_title(self, idx: int) -> str:
        if self.inspection is not None and 0 <= idx < len(self.inspection.titles):
            return format_value(self.inspection.titles[idx])
        if self.store is not None:
            try:
                return format_value(self.store.get_items([idx])[0].get("title"))
            except SemidError:
                return ""
        return ""
