"""Fixtures for the GUI tests: a ready project, its source files, and a window on it.

``gui_project`` is a private copy of the bundled sample project (``sample_project_master``
from the root conftest: import -> MiniLM embeddings -> RQ-KMeans through the real pipeline).

``source_files`` are item / interaction / query files for the import wizard: the first items
of the sample files (and the interactions and queries that name them), small enough that the
wizard's embed step takes seconds.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

#: the offscreen platform plugin says this when a window's size limits change or a tooltip is
#: raised; it is the test platform talking, not the app
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def gui_project_master(sample_project_master) -> Path:
    """The ready project the GUI tests copy: the bundled sample project."""
    return sample_project_master


@pytest.fixture
def gui_project(gui_project_master, tmp_path) -> Path:
    """A private copy of the ready project that a test may change."""
    target = tmp_path / "project.semid"
    shutil.copyfile(gui_project_master, target)
    return target


@pytest.fixture
def source_files(tmp_path) -> dict[str, Path]:
    """Small item / interaction / query files for the import wizard (a subset of the sample files)."""
    from semid_studio.core.pipeline import sample_files

    folder = tmp_path / "files"

    return subset_of_sample(sample_files(), folder, n_items=120)


def subset_of_sample(files: dict[str, Path], folder: Path, n_items: int) -> dict[str, Path]:
    """The first ``n_items`` items of the sample files, with the interactions and queries naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    with open(files["items"]) as src, open(folder / files["items"].name, "w") as dst:
        for line in src:
            if len(ids) >= n_items:
                break
            if line.strip():
                ids.add(str(json.loads(line)["item_id"]))
                dst.write(line)
    out = {"items": folder / files["items"].name}
    for kind in ("interactions", "queries"):
        with open(files[kind], newline="") as src, open(folder / files[kind].name, "w", newline="") as dst:
            reader = csv.reader(src)
            writer = csv.writer(dst)
            header = next(reader)
            col = header.index("item_id")
            writer.writerow(header)
            writer.writerows(row for row in reader if row and row[col] in ids)
        out[kind] = folder / files[kind].name
    return out


@pytest.fixture
def window(qtbot):
    """The real main window (not shown on screen: QT_QPA_PLATFORM=offscreen)."""
    from semid_studio.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.close()  # cancels and waits for every job, closes the project


def wait_idle(qtbot, win, timeout: int = 60000) -> None:
    """Until no job runs and nothing is queued (debounced inputs, the tree's fetches)."""
    qtbot.waitUntil(lambda: win.is_idle() and not win.sid_tree.model.fetch_pending
                    and not win.playground._debounce.isActive(), timeout=timeout)


@pytest.fixture
def opened(qtbot, window, gui_project):
    """The window with ``gui_project`` open and its SID tree loaded."""
    assert window.open_project(gui_project), window.errors
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)
    wait_idle(qtbot, window)
    return window
