"""The task runner: results on the GUI thread, progress, errors, cancel, latest-only jobs."""

import threading
import time

import pytest
from PySide6.QtCore import QThread

from semid_studio.core.errors import InputError
from semid_studio.core.events import Message, Progress
from semid_studio.gui.tasks import TaskRunner


@pytest.fixture
def runner(qtbot):
    r = TaskRunner()
    yield r
    assert r.shutdown(5000)


def counting(n, delay=0.0):
    def task(cancel):
        for i in range(n):
            cancel.raise_if_cancelled()
            time.sleep(delay)
            yield Progress("count", i + 1, n)
        yield Message("counted")
        return n

    return task


def test_result_and_events_arrive_on_gui_thread(qtbot, runner):
    gui_thread = threading.get_ident()
    seen = {}

    def on_result(value):
        seen["result"] = value
        seen["thread"] = threading.get_ident()

    events = []
    runner.submit("count", counting(200), on_result=on_result, on_event=events.append)
    qtbot.waitUntil(lambda: "result" in seen and not runner.is_busy(), timeout=5000)
    assert seen == {"result": 200, "thread": gui_thread}
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == 200  # the final step always arrives
    assert len(progress) < 200  # throttled to <= 20 per second
    assert any(isinstance(e, Message) for e in events)


def test_user_errors_become_messages(qtbot, runner):
    errors = []

    def failing(cancel):
        raise InputError("bad value", file="x.csv", line=3, field="ts")
        yield  # pragma: no cover - makes this a generator

    with qtbot.waitSignal(runner.job_finished, timeout=5000) as blocker:
        runner.submit("fail", failing, on_error=errors.append)
    assert blocker.args[1] == "failed"
    assert errors == ["x.csv:3, field 'ts': bad value"]


def test_cancel_stops_a_running_job(qtbot, runner):
    results = []
    job = runner.submit("slow", counting(10_000, delay=0.001), on_result=results.append)
    qtbot.wait(50)
    with qtbot.waitSignal(runner.job_finished, timeout=5000) as blocker:
        job.cancel()
    assert blocker.args == [job.id, "cancelled"] and results == []
    assert not runner.is_busy()


def test_keyed_jobs_keep_only_the_latest_result(qtbot, runner):
    results = []
    for n in (5000, 6000, 7):  # the first two are superseded before they can finish
        runner.submit("query", counting(n, delay=0.0005 if n > 10 else 0), key="query", on_result=results.append)
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=10000)
    assert results == [7]


def test_shutdown_waits_for_every_thread(qtbot):
    runner = TaskRunner()
    for _ in range(3):
        runner.submit("slow", counting(100_000, delay=0.001))
    assert runner.is_busy()
    assert runner.shutdown(5000)
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=2000)
    assert not [t for t in runner.findChildren(QThread) if t.isRunning()]
