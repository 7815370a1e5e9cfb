"""GUI test settings: offscreen Qt, QSettings in a temp folder, and no thread left running."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path, qapp):
    """Each GUI test gets its own settings (recent projects, window layout) in tmp_path."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    qapp.setOrganizationName("SemIDStudioTests")
    qapp.setApplicationName("SemID Studio Tests")
    yield


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp):
    """Fail a test that leaves a worker thread alive (a crash waiting to happen at exit)."""
    yield
    from PySide6.QtCore import QCoreApplication

    from semid_studio.gui.tasks import TaskRunner

    QCoreApplication.sendPostedEvents(None, 0)
    running = TaskRunner.live_threads()
    assert not running, f"worker threads still running after the test: {[t.objectName() for t in running]}"


# Shared GUI fixtures (projects, source files, the main window) live in fixtures.py.
from .fixtures import gui_project, gui_project_master, opened, source_files, window  # noqa: E402,F401
