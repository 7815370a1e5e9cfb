"""The one task runner: every piece of background work in the app goes through here.

Widgets never create threads. They hand :class:`TaskRunner` a *task function*: a callable that
takes a :class:`~semid_studio.core.events.CancelToken` and returns a core task generator
(or a plain value). The runner drives it in a worker ``QThread`` and reports back on the GUI
thread through Qt signals and plain-Python callbacks.

Thread rules this module enforces (see docs/architecture.md and house-style.md):

- The worker's signals are connected to ``@Slot`` methods of the runner, which lives on the
  GUI thread, so every callback runs on the GUI thread (a lambda connected to a worker signal
  would run in the worker).
- Only plain data crosses threads: the core's frozen event dataclasses and the task's result.
- Progress is throttled to at most 20 updates a second per job.
- One delete path per object: ``worker.finished -> thread.quit``, ``thread.finished ->
  worker.deleteLater / thread.deleteLater``; the runner keeps a reference to every live job
  until its thread has finished, and :meth:`shutdown` cancels and waits for all of them.
- Jobs submitted with a ``key`` replace the previous job with that key: the old one is
  cancelled and its result dropped (interactive queries: only the latest request counts).
- A task function that opens a project must open its *own* ``ProjectStore`` inside the
  generator: a SQLite connection belongs to the thread that made it.
"""

from __future__ import annotations

import itertools
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.errors import SemidError
from ..core.events import CancelToken, Cancelled, Message, Metric, PartialResult, Progress

TaskFunction = Callable[[CancelToken], Any]

_PROGRESS_MIN_GAP_S = 0.05  # <= 20 progress updates per second reach the GUI


@dataclass
class Job:
    """A submitted task, as the GUI sees it."""

    id: int
    title: str
    key: str | None
    token: CancelToken = field(default_factory=CancelToken)
    on_result: Callable[[Any], None] | None = None
    on_error: Callable[[str], None] | None = None
    on_event: Callable[[Any], None] | None = None
    on_done: Callable[[], None] | None = None
    superseded: bool = False
    started_at: float = field(default_factory=time.monotonic)

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled


class _Worker(QObject):
    """Drives one task function in a worker thread; talks back only through signals."""

    event = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str, str)
    was_cancelled = Signal(int)
    finished = Signal(int)

    def __init__(self, job_id: int, fn: TaskFunction, token: CancelToken) -> None:
        super().__init__()
        self._job_id = job_id
        self._fn = fn
        self._token = token

    @Slot()
    def run(self) -> None:
        try:
            result = self._drive(self._fn(self._token))
        except Cancelled:
            self.was_cancelled.emit(self._job_id)
        except SemidError as exc:
            self.failed.emit(self._job_id, str(exc), "")
        except MemoryError:
            self.failed.emit(self._job_id, "out of memory: try a smaller preset or batch size", traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 - a bug must reach the user as a message, not kill the app
            self.failed.emit(self._job_id, f"{exc.__class__.__name__}: {exc}", traceback.format_exc())
        else:
            self.succeeded.emit(self._job_id, result)
        finally:
            self.finished.emit(self._job_id)

    def _drive(self, value: Any) -> Any:
        if not hasattr(value, "__next__"):
            return value  # a plain function result
        last_progress = 0.0
        while True:
            try:
                event = next(value)
            except StopIteration as stop:
                return stop.value
            if isinstance(event, Progress):
                now = time.monotonic()
                final = event.total is not None and event.done >= event.total
                if not final and now - last_progress < _PROGRESS_MIN_GAP_S:
                    continue
                last_progress = now
            if isinstance(event, (Progress, Metric, Message, PartialResult)):
                self.event.emit(self._job_id, event)


class TaskRunner(QObject):
    """Runs task functions in worker threads and reports on the GUI thread.

    Signals carry the job id so that a status bar or a jobs list can follow every job.
    """

    job_started = Signal(int, str)
    job_event = Signal(int, object)
    job_finished = Signal(int, str)  # status: "done", "failed", "cancelled", "superseded"
    busy_changed = Signal(bool)

    _instances: "weakref.WeakSet[TaskRunner]" = weakref.WeakSet()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        TaskRunner._instances.add(self)
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}
        self._threads: dict[int, tuple[QThread, _Worker]] = {}
        self._by_key: dict[str, int] = {}
        self._status: dict[int, str] = {}

    # -- submitting

    def submit(
        self,
        title: str,
        fn: TaskFunction,
        *,
        key: str | None = None,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_event: Callable[[Any], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> Job:
        """Start ``fn(cancel_token)`` in a worker thread; callbacks run on the GUI thread.

        ``on_done`` runs after the job ends however it ended (result, error or cancel).
        """
        if key is not None and key in self._by_key:
            old = self._jobs.get(self._by_key[key])
            if old is not None:
                old.superseded = True
                old.cancel()
        job = Job(next(self._ids), title, key, on_result=on_result, on_error=on_error, on_event=on_event,
                  on_done=on_done)
        self._jobs[job.id] = job
        if key is not None:
            self._by_key[key] = job.id

        thread = QThread(self)
        thread.setObjectName(f"semid-task-{job.id}")
        worker = _Worker(job.id, fn, job.token)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._on_event)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        worker.was_cancelled.connect(self._on_cancelled)
        worker.finished.connect(thread.quit)
        worker.finished.connect(self._on_worker_finished)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(thread.deleteLater)
        self._threads[job.id] = (thread, worker)
        was_busy = len(self._threads) > 1
        thread.start()
        self.job_started.emit(job.id, title)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    # -- state

    @classmethod
    def live_threads(cls) -> list[QThread]:
        """Worker threads of every runner that are still running (tests check this is empty)."""
        return [t for r in list(cls._instances) for t, _w in r._threads.values() if t.isRunning()]

    def is_busy(self, key: str | None = None) -> bool:
        if key is None:
            return bool(self._threads)
        job_id = self._by_key.get(key)
        return job_id is not None and job_id in self._threads

    def running_jobs(self) -> list[Job]:
        return [self._jobs[j] for j in self._threads if j in self._jobs]

    def cancel(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel()

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every job and wait for its thread; True when all threads have stopped.

        The jobs' callbacks are dropped: a result that arrives while closing must not start
        follow-up work (a callback that submits a new job would leave a thread running).
        """
        for job in self._jobs.values():
            job.superseded = True
        self.cancel_all()
        ok = True
        for thread, _worker in list(self._threads.values()):
            thread.quit()  # thread-safe; the loop ends once the task returns (it is cancelled)
            if not thread.wait(timeout_ms):
                ok = False
        # deliver the queued finished signals so bookkeeping and deleteLater happen now
        from PySide6.QtCore import QCoreApplication

        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, 0)
        return ok

    # -- slots (GUI thread)

    def _live(self, job_id: int) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.superseded:
            return None
        return job

    @Slot(int, object)
    def _on_event(self, job_id: int, event: object) -> None:
        job = self._live(job_id)
        if job is None:
            return
        if job.on_event is not None:
            job.on_event(event)
        self.job_event.emit(job_id, event)

    @Slot(int, object)
    def _on_succeeded(self, job_id: int, result: object) -> None:
        job = self._live(job_id)
        if job is None:
            self._status[job_id] = "superseded"
            return
        self._status[job_id] = "done"
        if job.on_result is not None:
            job.on_result(result)

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, message: str, details: str) -> None:
        job = self._live(job_id)
        if job is None:
            self._status[job_id] = "superseded"
            return
        self._status[job_id] = "failed"
        if details:
            import sys

            print(f"[{job.title}] {details}", file=sys.stderr)  # the developer's trace; the user sees the message
        if job.on_error is not None:
            job.on_error(message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        self._status[job_id] = "superseded" if job is not None and job.superseded else "cancelled"

    @Slot(int)
    def _on_worker_finished(self, job_id: int) -> None:
        entry = self._threads.pop(job_id, None)
        if entry is not None:
            thread, _worker = entry
            thread.quit()
            thread.wait()  # the task has returned; this only waits for the thread's loop to end
        job = self._jobs.pop(job_id, None)
        if job is not None and job.key is not None and self._by_key.get(job.key) == job_id:
            del self._by_key[job.key]
        status = self._status.pop(job_id, "cancelled")
        if job is not None and job.on_done is not None and not job.superseded:
            job.on_done()
        self.job_finished.emit(job_id, status)
        if not self._threads:
            self.busy_changed.emit(False)
