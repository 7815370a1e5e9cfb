"""A newcomer's first hour in the window: what a training budget reaches, a one-point
validation curve, a resumed run's whole curve."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semid_studio.gui.plots import LossCurvePlot

from .fixtures import OFFSCREEN_NOISE
from .test_generative import start_tiny_training
from .test_user_stories import click, shot

pytestmark = OFFSCREEN_NOISE
#: set SEMID_SHOTS=/some/folder to keep the screenshots these tests take
SHOTS = os.environ.get("SEMID_SHOTS")


def keep(widget, tmp_path: Path, name: str) -> None:
    shot(widget, Path(SHOTS) if SHOTS else tmp_path, name)


def test_a_single_validation_point_is_drawn(qtbot):
    """One validation (a short budget) must be visible: validation curves carry markers."""
    plot = LossCurvePlot()
    qtbot.addWidget(plot)
    plot.add_point("valid ndcg@10", 180, 0.05)
    plot.add_point("loss (running mean)", 10, 3.0)
    plot.refresh()
    valid = plot._curves["valid ndcg@10"]
    assert valid.opts["symbol"] == "o" and len(valid.scatter.data) == 1
    assert plot._curves["loss (running mean)"].opts["symbol"] is None


def test_the_form_says_what_the_budget_buys_and_a_resumed_run_shows_its_whole_curve(qtbot, opened, tmp_path):
    win, panel = opened, opened.training
    form = panel.generative_form
    win.show_view("training")
    panel.kind_combo.setCurrentText(form.title)
    form.preset_combo.setCurrentText("tiny")
    assert "measured in its first seconds" in form.plan_label.text()  # no model of this shape yet

    # a long schedule, cancelled after its first validations
    start_tiny_training(qtbot, win, steps=100_000, eval_every=20)
    qtbot.waitUntil(lambda: len(panel.valid_curves.series("valid ndcg@10")[0]) >= 2, timeout=60000)
    click(qtbot, panel.cancel_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    before = panel.valid_curves.series("valid ndcg@10")[0][:]
    model_id = win.context.store.list_models("tiger")[-1].id

    # the plan from that model's pace, for a new model of the same shape and for resuming it
    form.minutes_spin.setValue(1.0)
    assert "the 1-min budget ends at about step" in form.plan_label.text()
    assert f"(model #{model_id})" in form.plan_label.text()
    form.resume_combo.setCurrentIndex(form.resume_combo.findData(model_id))
    assert "(resumed at step" in form.plan_label.text()
    keep(panel, tmp_path, "training_plan")

    form.minutes_spin.setValue(0.1)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    after = panel.valid_curves.series("valid ndcg@10")[0]
    assert after[: len(before)] == before and len(after) > len(before)  # the old curve, then the new points
    log = panel.log.toPlainText()  # the budget's end, in the window's words
    assert "time budget of 0.1 min reached" in log and "choose it under Model → resume" in log
    assert "semid train" not in log
    keep(panel, tmp_path, "training_resumed_curve")


# --------------------------------------------------------------------------- point 7: the GUI's own words


def test_the_wizard_names_its_own_controls_not_the_cli_options(qtbot, window, source_files, tmp_path):
    """A column it cannot find and a file in another encoding: the hints name the Columns box and
    the Encoding box, never --map / --encoding."""
    from .test_user_stories import fill_files, open_wizard

    lines = source_files["interactions"].read_text().splitlines()
    renamed = tmp_path / "renamed.csv"  # the item column under a name nothing detects
    renamed.write_text("\n".join([lines[0].replace("item_id", "thing_code")] + lines[1:]) + "\n")
    wizard = open_wizard(qtbot, window)
    fill_files(qtbot, wizard, {"items": source_files["items"], "interactions": renamed})
    preview = wizard.preview_page
    qtbot.waitUntil(lambda: not preview.checking and preview.problems.rowCount() > 0, timeout=60000)
    text = " ".join(str(v) for r in range(preview.problems.rowCount()) for v in preview.problems.row_values(r))
    assert "Columns box" in text and "--map" not in text
    keep(wizard, tmp_path, "wizard_gui_words")


def test_the_wizard_says_that_tags_are_merged_and_refuses_them_as_queries(qtbot, window, tmp_path):
    """MovieLens movies.csv with tags.csv beside it: the preview says the tags went into the
    items, and tags.csv picked as the query log is a problem, before anything is written."""
    from conftest import shared_dataset

    from .test_user_stories import fill_files, open_wizard

    folder = shared_dataset("movielens_tomt") / "ml-latest-small"
    wizard = open_wizard(qtbot, window)
    fill_files(qtbot, wizard, {"items": folder / "movies.csv", "queries": folder / "tags.csv"})
    preview = wizard.preview_page
    qtbot.waitUntil(lambda: not preview.checking and preview.problems.rowCount() > 0, timeout=120000)
    assert "merged into the items as their 'tags' field" in preview.previews["items"].notes.text()
    rows = [preview.problems.row_values(r) for r in range(preview.problems.rowCount())]
    assert any("tags.csv" in r[0] + r[3] and "already read into the items" in r[3] for r in rows), rows
    assert not preview.isComplete()
    items = preview.previews["items"]  # genres are a set: shown as one, not as a path
    genres = items.rows.row_values(0)[[str(c) for c in items.preview.rows.columns].index("genres")]
    assert genres.startswith("Adventure, Animation, Children") and "›" not in genres
    keep(wizard, tmp_path, "wizard_tags_merged")


# --------------------------------------------------------------------------- point 10: scripted use


def test_a_script_drives_the_window_with_the_scripting_waits(qtbot, window, gui_project):
    """The documented way to drive the window from a script: open the sample project, type a
    query and read the results with ``scripting`` waits only (no qtbot), and background work
    runs at full speed while such a wait runs — unlike under ``QTest.qWait``, which keeps
    Python's GIL while it sleeps (PySide6)."""
    import threading

    import pytest
    from PySide6.QtTest import QTest

    from semid_studio.gui import scripting

    assert window.open_project(gui_project), window.errors
    scripting.wait_idle(window, 60_000)
    assert window.context.inspection is not None and window.catalogue.model.rowCount() > 0
    window.show_view("playground")
    window.playground.query_edit.setText("lipstick")
    scripting.wait_until(lambda: window.playground.results.rowCount() > 0, 30_000, what="query results")
    scripting.wait_idle(window, 30_000)
    assert window.playground.results.rowCount() == window.playground.k_spin.value()

    with pytest.raises(TimeoutError, match="never did not hold within 0.1 s"):
        scripting.wait_until(lambda: False, 100, what="never")

    # a pure-Python worker (the part of real jobs that needs the GIL) under both waits
    count, stop = [0], threading.Event()

    def spin(cancel):
        while not (stop.is_set() or cancel.cancelled):
            sum(range(1000))
            count[0] += 1

    window.runner.submit("spin", spin)
    try:
        def progress(wait) -> int:
            before = count[0]
            wait(600)
            return count[0] - before

        under_qwait, under_scripting = progress(QTest.qWait), progress(scripting.wait)
    finally:
        stop.set()
    scripting.wait_until(lambda: not window.runner.is_busy(), 10_000)
    # measured: ~160x on an idle machine (benchmarks/bench_scripted_wait.py); 5x leaves room for a busy one
    assert under_scripting > 5 * under_qwait, (under_scripting, under_qwait)


# --------------------------------------------------------------------------- point 9: damaged arrays


def test_a_damaged_sid_table_is_one_line_in_the_window(qtbot, window, gui_project, tmp_path):
    import sqlite3

    with sqlite3.connect(gui_project) as db:
        db.execute("UPDATE quantizer_runs SET codes = ? WHERE id = 1", [b"not safetensors at all"])
    window.open_project(gui_project)
    qtbot.waitUntil(lambda: any("quantizer_runs" in e for e in window.errors), timeout=60000)
    (error,) = [e for e in window.errors if "quantizer_runs" in e]
    assert "table quantizer_runs, row #1, column codes is damaged" in error and "Traceback" not in error
    assert "\n" not in error.strip()
    assert window.context.is_open and window.catalogue.model.rowCount() > 0  # the rest of it is there
    keep(window, tmp_path, "damaged_sid_table")


# --------------------------------------------------------------------------- points 2 and 3 in the wizard


@pytest.mark.shared_data
def test_a_p5_release_without_text_through_the_wizard_gets_unique_sids(qtbot, window, tmp_path):
    """Amazon Sports as P5 ships it (sequential_data.txt + datamaps.json, no item text), picked
    as the interactions file alone: the wizard reads the layout, embeds the items from the
    interactions (it says so) and the quantiser sized to 18k items gives >= 95% unique SIDs."""
    from PySide6.QtWidgets import QWizard

    from semid_studio.core.store import ProjectStore

    from conftest import shared_dataset
    from .test_user_stories import fill_files, open_wizard, type_text

    sequential = shared_dataset("amazon2014_sports_5core") / "raw" / "p5_sequential_data.txt.gz"
    wizard = open_wizard(qtbot, window)
    fill_files(qtbot, wizard, {"interactions": sequential})
    preview = wizard.preview_page
    qtbot.waitUntil(lambda: not preview.checking and preview.isComplete(), timeout=120000)
    assert preview.problems.rowCount() == 0, preview.status.text()
    keep(wizard, tmp_path, "wizard_p5_preview")
    click(qtbot, wizard.button(QWizard.NextButton))
    settings = wizard.settings_page
    target = tmp_path / "sports.semid"
    type_text(qtbot, settings.project_path.edit, str(target))
    click(qtbot, wizard.button(QWizard.NextButton))
    run = wizard.run_page
    qtbot.waitUntil(lambda: run.created is not None or run.error is not None, timeout=300000)
    assert run.error is None and run.created == target
    assert "from the interactions" in run.log.toPlainText(), run.log.toPlainText()
    # Finish turns on once the creating task has ended (an event after 'created')
    qtbot.waitUntil(lambda: wizard.button(QWizard.FinishButton).isEnabled(), timeout=10000)
    keep(wizard, tmp_path, "wizard_p5_done")
    click(qtbot, wizard.button(QWizard.FinishButton))
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)
    with ProjectStore.open(target) as store:
        assert store.item_count() == 18357
        (emb,) = store.list_embedding_sets()
        assert emb.strategy == "rec" and "interactions" in emb.name
        run_rec = store.load_quantizer_run(with_arrays=False)
        assert run_rec.metrics["unique_share"] >= 0.95 and run_rec.spec["codebook_size"] == 128


# --------------------------------------------------------------------------- point 5: a readable map


def test_the_embedding_map_colours_the_largest_groups_and_lays_out_with_tsne(qtbot, opened, tmp_path):
    """64 level-1 codes are not 64 colours a person can tell apart: the 12 largest get one
    each (named in the legend, with their branch's most common category), the rest are grey;
    colour by the label field instead; t-SNE (scikit-learn) instead of two PCA axes."""
    win = opened
    panel = win.sid_tree
    win.show_view("tree")
    panel.tabs.setCurrentIndex(3)
    qtbot.waitUntil(lambda: panel.map_plot.point_count == 3000, timeout=30000)
    legend = [label.text for _sample, label in panel.map_plot._legend.items]
    assert len(legend) == 13 and legend[-1] == "other" and legend[0].startswith("<a_")
    assert "12 largest groups" in panel.map_label.text() and "PCA (axes explain" in panel.map_label.text()
    keep(win, tmp_path, "map_level1_top12")

    panel.map_colour_combo.setCurrentIndex(panel.map_colour_combo.findData("label"))
    legend = [label.text for _sample, label in panel.map_plot._legend.items]
    labels = win.context.inspection.labels
    assert legend[:3] == labels.names[:3] and "coloured by its categories" in panel.map_label.text()

    panel.map_layout_combo.setCurrentIndex(panel.map_layout_combo.findData("tsne"))
    qtbot.waitUntil(lambda: win.context.projection is not None and win.context.projection.method == "tsne",
                    timeout=120000)
    qtbot.waitUntil(lambda: panel.map_plot.drawn_count == panel.map_plot.point_count == 3000, timeout=10000)
    assert panel.map_label.text().startswith("t-SNE of the item embeddings")
    assert panel.map_colour_combo.currentData() == "label"  # the colouring is kept
    keep(win, tmp_path, "map_tsne_by_category")
