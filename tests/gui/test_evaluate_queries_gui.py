""""Evaluate on a query file…" in the Evaluation and Strategies views, offscreen.

A tiny joint model (word pieces, seconds) is trained on a copy of the sample project before the
window opens; the query file is written by the test from the sample's test rows (the project's
own test queries are left where they are: the file is scored as it is, never imported). The file
dialog is replaced by a function that returns the file.
"""

import csv

import pytest
from PySide6.QtWidgets import QFileDialog

from semid_studio.core.events import drive
from semid_studio.core.store import ProjectStore

from .fixtures import OFFSCREEN_NOISE, wait_idle
from .test_user_stories import click

pytestmark = OFFSCREEN_NOISE


@pytest.fixture
def with_joint_model(gui_project):
    import torch

    from semid_studio.core.generative import make_spec
    from semid_studio.core.generative.joint import make_joint_spec, train_joint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ProjectStore.open(gui_project) as store:
            model_id = drive(train_joint(
                store, make_spec("tiny", {"max_steps": 30, "eval_every": 30, "valid_users": 100}),
                make_joint_spec({"query_encoder": "wordpiece", "dev_fraction": 0.02, "search_beam": 10}),
                preset="tiny"))
    finally:
        torch.set_num_threads(threads)
    return model_id


def _outside_file(tmp_path, n=60):
    from semid_studio.core.pipeline import sample_files

    with open(sample_files()["queries"], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"][-n:]
    path = tmp_path / "outside.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "item_id"])
        writer.writerows([r["query"], r["item_id"]] for r in rows)
        writer.writerow(["something nobody sells", "NO-SUCH-ITEM"])
    return path


def _choose(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))


def test_evaluate_on_a_query_file_in_both_views(qtbot, monkeypatch, with_joint_model, opened, tmp_path):
    win = opened
    model_id = with_joint_model
    outside = _outside_file(tmp_path)
    n_queries = win.context.store.query_count()

    # -- the Evaluation view: the button, a worker with progress and cancel, the result in the table and plot
    win.show_view("evaluation")
    panel = win.evaluation
    _choose(monkeypatch, outside)
    click(qtbot, panel.file_button)
    assert panel._job is not None and panel.cancel_button.isEnabled() and not panel.file_button.isEnabled()
    qtbot.waitUntil(lambda: panel._job is None, timeout=120000)
    assert panel.last_status == "done", (panel.status.text(), win.errors)
    assert "60 requests of outside.csv scored" in panel.status.text()
    assert "1 left out" in panel.status.text()
    (e,) = [x for x in win.context.store.list_evaluations() if x["split"] == "outside.csv"]
    methods = [f"joint #{model_id}", "bm25", "dense #1 content"]
    rows = [panel.evaluations.row_values(r) for r in range(panel.evaluations.rowCount())
            if panel.evaluations.key(r) == e["id"]]
    assert [r[1] for r in rows] == methods and {r[2] for r in rows} == {"outside.csv"} and rows[0][3] == 60
    assert panel.shown_evaluation == e["id"] and list(panel.bars) == methods
    assert "split outside.csv" in panel.plot.getPlotItem().titleLabel.text
    assert win.context.store.query_count() == n_queries  # nothing of the file was imported
    assert not any("--" in text for text in win.errors)

    # -- cancel: nothing is saved
    n_evals = len(win.context.store.list_evaluations())
    click(qtbot, panel.file_button)
    click(qtbot, panel.cancel_button)
    qtbot.waitUntil(lambda: panel._job is None, timeout=60000)
    assert panel.last_status == "cancelled" and "nothing was saved" in panel.status.text()
    assert len(win.context.store.list_evaluations()) == n_evals

    # -- a bad file: one line naming file, line and field, in the GUI's words (no command-line flags)
    bad = tmp_path / "bad.csv"
    bad.write_text("query,item_id\nwaterproof boots,P00002\n,P00004\n")
    _choose(monkeypatch, bad)
    click(qtbot, panel.file_button)
    qtbot.waitUntil(lambda: panel._job is None, timeout=60000)
    assert panel.last_status == "failed"
    assert f"{bad}:3, field 'query': empty query text" in win.errors[-1]
    nocol = tmp_path / "nocolumn.csv"
    nocol.write_text("words,item_id\nwaterproof boots,P00002\n")
    _choose(monkeypatch, nocol)
    click(qtbot, panel.file_button)
    qtbot.waitUntil(lambda: panel._job is None, timeout=60000)
    assert "no query text column" in win.errors[-1] and "--" not in win.errors[-1], win.errors[-1]
    assert "Columns box" not in win.errors[-1] and "columns such as 'query'" in win.errors[-1]  # no wizard here
    wait_idle(qtbot, win)

    # -- the Strategies view: every joint model and the baselines on the file, shown as its search side
    win.show_view("strategies")
    sv = win.strategies
    assert sv.source_combo.currentData() is None and sv.source_combo.count() == 2  # held-out + the file above
    _choose(monkeypatch, outside)
    click(qtbot, sv.file_button)
    assert sv.running and sv.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not sv.running, timeout=120000)
    assert sv.last_status == "done", (sv.eval_label.text(), win.errors)
    newest = [x for x in win.context.store.list_evaluations() if x["split"] == "outside.csv"][-1]
    assert sv.source_combo.currentData() == newest["id"] and "outside.csv" in sv.source_combo.currentText()
    assert sv.data.search_split == "outside.csv"
    (point,) = sv.data.points
    assert point.model_id == model_id and point.search_eval["id"] == newest["id"]
    assert point.search["recall@10"] == pytest.approx(newest["metrics"][f"joint #{model_id}"]["summary"]["recall@10"])
    assert {line.name for line in sv.data.lines if line.side == "search"} == {"BM25", "dense content (set #1)"}
    assert "outside.csv" in sv.status_label.text()
    # back to the held-out queries: the file's figures leave the view
    sv.source_combo.setCurrentIndex(0)
    assert sv.data.search_split != "outside.csv" and not sv.data.points
    wait_idle(qtbot, win)
