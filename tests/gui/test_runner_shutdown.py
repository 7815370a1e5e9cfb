"""Shutting the runner down drops the callbacks of jobs that end meanwhile (no follow-up jobs)."""

import time

from semid_studio.gui.tasks import TaskRunner


def test_a_result_arriving_during_shutdown_starts_nothing(qtbot):
    runner = TaskRunner()
    calls = []

    def quick(cancel):
        time.sleep(0.05)  # finishes even though it is cancelled: it never checks the token
        return 1

    def follow_up(result):
        calls.append(result)
        runner.submit("follow-up", lambda cancel: time.sleep(5))  # would outlive the window

    runner.submit("quick", quick, on_result=follow_up)
    assert runner.shutdown(5000)
    assert calls == [] and not runner.is_busy() and not TaskRunner.live_threads()
