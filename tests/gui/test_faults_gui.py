"""The app beside a ``semid`` command writing to the same project: it notices and reloads;
a project a killed process left behind opens with a note that it was recovered."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from semid_studio.core.store import ProjectStore

from .fixtures import OFFSCREEN_NOISE, wait_idle

pytestmark = OFFSCREEN_NOISE

REPO = Path(__file__).resolve().parents[2]


def test_the_app_notices_another_processs_write_and_not_its_own(qtbot, opened, gui_project):
    context = opened.context
    # a write from this process (as a worker thread makes) is not "another process"
    with ProjectStore.open(gui_project) as own:
        own.set_meta("note", "from the app")
    assert not context.check_external_changes()
    result = subprocess.run([sys.executable, "-m", "semid_studio.cli", "quantize", str(gui_project), "--seed", "3",
                             "--codebook-size", "32"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with qtbot.waitSignal(context.externalChange, timeout=10000):
        pass  # the watch timer sees the new commit
    qtbot.waitUntil(lambda: context.inspection is not None and context.inspection.run.id == 2, timeout=60000)
    wait_idle(qtbot, opened)
    assert "changed by another process; reloaded" in opened.log.toPlainText()
    assert "run #2" in opened.project_label.text()


def test_a_killed_writer_leaves_a_project_the_app_opens_as_recovered(qtbot, window, gui_project):
    script = ("import os, signal, sys\n"
              "from semid_studio.core.store import ProjectStore\n"
              "s = ProjectStore.open(sys.argv[1])\n"
              "s.set_meta('last words', 1)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(gui_project)], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert window.open_project(gui_project), window.errors
    assert window.context.store.recovered and window.context.store.get_meta("last words") == 1
    assert "was not closed cleanly" in window.log.toPlainText()
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)
    wait_idle(qtbot, window)
