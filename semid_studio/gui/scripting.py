"""Waiting for the window from a Python script (demos, screenshots, smoke tests).

Background work (embedding, quantising, training, decoding) runs in worker threads that need
Python's GIL. PySide6's ``QTest.qWait`` keeps the GIL while it sleeps between event batches,
so while a script waits with it the workers crawl (~160x slower, measured by
``benchmarks/bench_scripted_wait.py``). These helpers wait by running Qt's own event loop,
which gives the GIL up while it idles, the way the project's tests wait with
``qtbot.waitUntil``::

    from semid_studio.gui import scripting
    win = MainWindow(); win.show()
    win.open_project("sample.semid")
    scripting.wait_idle(win)              # the project is open, its SID tree loaded
    win.show_view("playground")
    win.playground.query_edit.setText("lipstick")
    scripting.wait(500)                   # the debounced query runs
    scripting.wait_idle(win)
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QEventLoop, QTimer


def wait(ms: int) -> None:
    """Let the window run for ``ms`` milliseconds (events handled, workers at full speed)."""
    loop = QEventLoop()
    QTimer.singleShot(max(0, int(ms)), loop.quit)
    loop.exec()


def wait_until(condition: Callable[[], bool], timeout_ms: int = 60_000, *, poll_ms: int = 20,
               what: str | None = None) -> None:
    """Run the window until ``condition()`` is true; TimeoutError after ``timeout_ms``."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            name = what or getattr(condition, "__name__", "the condition")
            raise TimeoutError(f"{name} did not hold within {timeout_ms / 1000:g} s")
        wait(poll_ms)


def wait_idle(window, timeout_ms: int = 600_000) -> None:
    """Until the window has no background job running or queued (MainWindow.is_idle) and the
    SID tree has fetched the rows its view asked for."""
    wait_until(lambda: window.is_idle() and not window.sid_tree.model.fetch_pending, timeout_ms,
               what="the window's background jobs finishing")
