"""User stories: the real window driven as a person would (type, click, wait), offscreen.

Each story saves screenshots of what it saw to its tmp_path (``widget.grab()``).
"""

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QWizard

from semid_studio.core.store import ProjectStore

from .fixtures import OFFSCREEN_NOISE, wait_idle

pytestmark = OFFSCREEN_NOISE


def shot(widget, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    assert widget.grab().save(str(path))
    return path


def click(qtbot, button):
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.LeftButton)


def type_text(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


def open_wizard(qtbot, window):
    window.new_project()
    wizard = window.wizard
    qtbot.waitExposed(wizard)
    return wizard


def fill_files(qtbot, wizard, files):
    page = wizard.files_page
    for kind, path in files.items():
        type_text(qtbot, page.paths[kind].edit, str(path))
    click(qtbot, wizard.button(QWizard.NextButton))


# --------------------------------------------------------------------------- import wizard


def test_create_a_project_from_the_sample_files_through_the_wizard(qtbot, window, source_files, tmp_path):
    wizard = open_wizard(qtbot, window)
    assert not wizard.button(QWizard.NextButton).isEnabled()  # the catalogue is required
    fill_files(qtbot, wizard, source_files)
    preview = wizard.preview_page
    assert wizard.currentPage() is preview
    qtbot.waitUntil(lambda: not preview.checking and preview.isComplete(), timeout=60000)
    # the columns were detected and the first rows are shown, for every file
    assert set(preview.previews) == {"items", "interactions", "queries"}
    items = preview.previews["items"]
    assert items.combos["item_id"].currentText() == "item_id" and items.combos["title"].currentText() == "title"
    assert items.rows.rowCount() > 0
    assert preview.previews["interactions"].combos["timestamp"].currentData() is not None
    assert preview.problems.rowCount() == 0 and "no problems" in preview.status.text()
    shot(wizard, tmp_path, "wizard_preview")
    click(qtbot, wizard.button(QWizard.NextButton))

    settings = wizard.settings_page
    assert "{title}" in settings.template_edit.text()
    target = tmp_path / "shop.semid"
    type_text(qtbot, settings.project_path.edit, str(target))
    settings.preset_combo.setCurrentText("fast")
    settings.levels_spin.setValue(2)
    settings.size_spin.setValue(8)
    settings.label_combo.setEditText("categories")
    shot(wizard, tmp_path, "wizard_settings")
    click(qtbot, wizard.button(QWizard.NextButton))

    run = wizard.run_page
    qtbot.waitUntil(lambda: run.created is not None or run.error is not None, timeout=120000)
    assert run.error is None and run.created == target
    qtbot.waitUntil(lambda: run.isComplete() and wizard.button(QWizard.FinishButton).isEnabled(), timeout=5000)
    assert "Press Finish" in run.stage.text()  # said only once the button is on
    shot(wizard, tmp_path, "wizard_done")
    click(qtbot, wizard.button(QWizard.FinishButton))
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)
    assert window.context.path == target
    n_items = sum(1 for line in open(source_files["items"]) if line.strip())
    assert window.context.store.item_count() == n_items
    assert window.context.store.interaction_count() > 0 and window.context.store.query_count() > 0
    assert window.context.inspection.run.n_levels == 2
    assert window.recent_projects()[0] == str(target.resolve())
    wait_idle(qtbot, window)
    shot(window, tmp_path, "after_wizard")


def test_a_bad_file_shows_the_problem_and_writes_nothing(qtbot, window, source_files, tmp_path):
    lines = source_files["interactions"].read_text().splitlines()
    lines[4] = ",".join(lines[4].split(",")[:2] + ["next tuesday"])  # line 5 of the file: a bad timestamp
    bad = tmp_path / "bad_interactions.csv"
    bad.write_text("\n".join(lines) + "\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    wizard = open_wizard(qtbot, window)
    fill_files(qtbot, wizard, {"items": source_files["items"], "interactions": bad})
    preview = wizard.preview_page
    qtbot.waitUntil(lambda: not preview.checking and preview.problems.rowCount() > 0, timeout=60000)
    rows = [preview.problems.row_values(r) for r in range(preview.problems.rowCount())]
    assert any(r[0] == "bad_interactions.csv" and r[1] == 5 and r[2] == "timestamp" and "next tuesday" in r[3]
               for r in rows), rows
    assert "problem" in preview.status.text()
    assert not preview.isComplete() and not wizard.button(QWizard.NextButton).isEnabled()
    shot(wizard, tmp_path, "wizard_bad_file")
    wizard.reject()
    qtbot.waitUntil(lambda: not window.runner.is_busy(), timeout=10000)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before + ["wizard_bad_file.png"]  # nothing written
    assert not any(p.suffix == ".semid" for p in tmp_path.rglob("*"))


def test_unknown_items_can_be_skipped(qtbot, window, source_files, tmp_path):
    text = source_files["interactions"].read_text().splitlines()
    text.append("ghost_user,NOT-AN-ITEM,1600000000")
    inter = tmp_path / "with_unknown.csv"
    inter.write_text("\n".join(text) + "\n")
    wizard = open_wizard(qtbot, window)
    fill_files(qtbot, wizard, {"items": source_files["items"], "interactions": inter})
    preview = wizard.preview_page
    qtbot.waitUntil(lambda: not preview.checking and preview.skip_unknown.isVisible(), timeout=60000)
    assert not preview.isComplete() and "1 of" in preview.status.text()
    preview.skip_unknown.setChecked(True)
    assert preview.isComplete() and preview.on_unknown() == "skip"


# --------------------------------------------------------------------------- fit, browse, query, export


def test_fit_a_quantiser_browse_to_an_item_type_a_query_and_export(qtbot, opened, tmp_path):
    win = opened
    runs_before = len(win.context.store.list_quantizer_runs())

    # fit a quantiser with a preset, watching the progress
    win.show_view("training")
    panel = win.training
    form = panel.form
    form.method_combo.setCurrentText("rq-kmeans")
    form.preset_combo.setCurrentText("fast")
    form.levels_spin.setValue(2)
    form.size_spin.setValue(6)
    type_text(qtbot, form.name_edit, "my first fit")
    click(qtbot, panel.start_button)
    assert panel.running and panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert panel.last_status == "done", win.errors
    assert "my first fit" in panel.result_view.toPlainText() and panel.progress.value() == 1000
    qtbot.waitUntil(lambda: win.context.inspection is not None and win.context.inspection.run.name == "my first fit",
                    timeout=60000)
    assert len(win.context.store.list_quantizer_runs()) == runs_before + 1
    shot(win, tmp_path, "trained")

    # browse the tree: level 1 -> level 2 -> an item
    win.show_view("tree")
    tree = win.sid_tree
    qtbot.waitExposed(tree.tree)
    wait_idle(qtbot, win)
    model = tree.model
    assert model.rowCount() == len(np.unique(win.context.inspection.run.codes[:, 0]))
    index = QModelIndex()
    for _level in range(model.n_levels + 1):
        parent = index
        if parent.isValid():
            tree.tree.expand(parent)
        qtbot.waitUntil(lambda p=parent: model.rowCount(p) > 0, timeout=5000)
        index = model.index(0, 0, parent)
        tree.tree.setCurrentIndex(index)
    node = model.node_at(index)
    assert node.is_leaf
    title = str(win.context.inspection.titles[node.item])
    assert title[:20] in tree.node_info.toPlainText()
    assert tree.node_items.rowCount() == 1 and tree.node_items.idx_at(0) == node.item
    shot(win, tmp_path, "browsed")

    # type a query and read the results
    win.show_view("playground")
    pg = win.playground
    type_text(qtbot, pg.query_edit, "something for dry skin")
    qtbot.waitUntil(lambda: pg.results.rowCount() > 0, timeout=60000)
    assert pg.results.rowCount() == pg.k_spin.value()
    assert pg.results.row_values(0)[2].startswith("<a_")  # the result's SID in the new run
    shot(win, tmp_path, "query")

    # export the SID table
    win.show_view("export")
    export = win.export
    export.table_format.setCurrentIndex(export.table_format.findData(".csv"))
    target = tmp_path / "sids.csv"
    type_text(qtbot, export.table_path.edit, str(target))
    click(qtbot, export.table_button)
    qtbot.waitUntil(lambda: target.exists() and "Wrote" in export.status.text(), timeout=30000)
    lines = target.read_text().splitlines()
    assert lines[0].startswith("item_id,") and len(lines) == win.context.store.item_count() + 1
    assert (tmp_path / "sids.csv.provenance.json").exists()


# --------------------------------------------------------------------------- closing mid-training


def test_closing_the_window_during_training_is_clean_and_the_project_reopens(qtbot, gui_project, tmp_path):
    from semid_studio.gui.main_window import MainWindow

    with ProjectStore.open(gui_project) as store:
        runs_before = [r.id for r in store.list_quantizer_runs()]
        items_before = store.item_count()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert win.open_project(gui_project)
    qtbot.waitUntil(lambda: win.context.inspection is not None, timeout=60000)
    form = win.training.form
    form.method_combo.setCurrentText("rq-vae")
    form.preset_combo.setCurrentText("laptop")  # minutes of training: it will be interrupted
    click(qtbot, win.training.start_button)
    qtbot.waitUntil(lambda: bool(win.training.curves.names), timeout=60000)  # a loss has been plotted
    shot(win, tmp_path, "training_live")
    started = time.monotonic()
    win.close()  # cancels the job and waits for its thread
    assert time.monotonic() - started < 30
    assert not win.runner.is_busy() and not win.context.is_open
    # the project is intact: same items, no half-saved run, and it opens again
    with ProjectStore.open(gui_project) as store:
        assert store.item_count() == items_before
        assert [r.id for r in store.list_quantizer_runs()] == runs_before
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.open_project(gui_project)
    qtbot.waitUntil(lambda: again.context.inspection is not None, timeout=60000)
    again.close()


# --------------------------------------------------------------------------- starting the app


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """The user's data folder (where the sample project is built), inside tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    from semid_studio.gui.main_window import sample_project_path

    return sample_project_path()


def test_the_app_starts_on_the_sample_project(qtbot, window, gui_project, user_data):
    import shutil

    user_data.parent.mkdir(parents=True)
    shutil.copyfile(gui_project, user_data)  # as a previous start left it
    window.start()  # no project named, none remembered
    assert window.context.path == user_data
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)


def test_the_first_start_builds_the_sample_project_with_progress_and_cancel(qtbot, window, user_data):
    window.start()
    assert window.runner.is_busy("sample")
    jobs = window.jobs
    assert jobs.cancel_button.isVisible() and "sample project" in jobs.label.text()
    qtbot.waitUntil(lambda: jobs.bar.maximum() > 0 and jobs.bar.value() > 0, timeout=60000)  # real progress
    shot(window, user_data.parent, "building_sample")
    click(qtbot, jobs.cancel_button)
    qtbot.waitUntil(lambda: not window.runner.is_busy(), timeout=60000)
    assert not user_data.exists() and not window.context.is_open  # a cancelled build leaves nothing


def test_screenshot_command_saves_a_png_and_exits(qtbot, gui_project, tmp_path, capsys):
    import torch

    from semid_studio.gui.app import main

    threads = torch.get_num_threads()
    png = tmp_path / "tree.png"
    assert main([str(gui_project), "--screenshot", str(png), "--view", "tree", "--size", "1200x800",
                 "--timeout", "2"]) == 0
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert (image.width(), image.height()) == (1200, 800)
    assert torch.get_num_threads() == threads  # the app's thread setting ends with its run
    # the give-up timer dies with the run: it must not fire later, in whatever runs next
    qtbot.wait(2500)
    assert "still busy" not in capsys.readouterr().err
    assert main([str(tmp_path / "missing.semid"), "--screenshot", str(tmp_path / "x.png")]) == 2


def test_every_tab_of_the_window_can_be_named_on_the_command_line():
    # app.VIEWS is a copy (so that --help does not import Qt): a new tab must be added to both
    from semid_studio.gui.app import VIEWS
    from semid_studio.gui.main_window import MainWindow

    assert VIEWS == MainWindow.VIEWS


def test_an_unexpected_exception_becomes_a_message(qtbot, window):
    import sys

    from semid_studio.gui.app import install_excepthook

    previous = sys.excepthook
    try:
        install_excepthook(lambda: window)
        try:
            raise ValueError("boom")
        except ValueError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        sys.excepthook = previous
    assert window.errors[-1] == "unexpected error: ValueError: boom"
    assert "Traceback" not in window.errors[-1]
