"""User stories with the generative recommender (TIGER) in the real window, offscreen.

Tiny models (the ``tiny`` preset, a few dozen steps: seconds on a CPU) are trained from the
Training panel on the sample project, then read in the Playground, evaluated in the
Evaluation panel and exported; a window closed mid-training leaves a model that resumes.
"""

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from semid_studio.core.store import ProjectStore

from .fixtures import OFFSCREEN_NOISE, wait_idle
from .test_user_stories import click, shot, type_text

pytestmark = OFFSCREEN_NOISE


def start_tiny_training(qtbot, win, *, steps: int, eval_every: int) -> None:
    """Training view -> the generative form -> tiny preset, steps, validation interval -> Start."""
    win.show_view("training")
    panel = win.training
    panel.kind_combo.setCurrentText(panel.generative_form.title)
    assert panel.form is panel.generative_form
    form = panel.generative_form
    form.preset_combo.setCurrentText("tiny")
    type_text(qtbot, form.steps_spin.lineEdit(), str(steps))
    type_text(qtbot, form.eval_spin.lineEdit(), str(eval_every))
    assert form.spec().max_steps == steps and form.spec().eval_every == eval_every
    click(qtbot, panel.start_button)
    assert panel.running and panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()


def toggle(qtbot, check) -> None:
    """Click a check box on its box (a stretched QCheckBox ignores clicks right of its text)."""
    assert check.isEnabled(), f"{check.text()} is disabled"
    before = check.isChecked()
    qtbot.mouseClick(check, Qt.LeftButton, pos=QPoint(8, check.height() // 2))
    assert check.isChecked() != before


def recommendations_settled(pg) -> bool:
    return pg.recommend_request == pg._latest_recommend and not pg._rec_debounce.isActive() \
        and not pg.context.runner.is_busy("playground-recommend")


def test_train_a_tiny_model_then_read_evaluate_and_export_it(qtbot, qtmodeltester, opened, tmp_path):
    win = opened
    pg = win.playground
    assert not pg.model_combo.isEnabled() and "none yet" in pg.recommend_label.text()

    # -- train from the Training panel: progress, live loss and validation curves, a saved model
    start_tiny_training(qtbot, win, steps=60, eval_every=20)
    panel = win.training
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    assert panel.last_status == "done", win.errors
    assert panel.progress.value() == 1000
    steps, losses = panel.curves.series("loss (running mean)")
    assert len(steps) >= 3 and steps[-1] == 60 and losses[-1] < losses[0]  # it learned
    assert panel.valid_curves.isVisible() and panel.valid_curves.series("valid ndcg@10")[0] == [20, 40, 60]
    assert "best validation ndcg@10" in panel.result_view.toPlainText()
    with ProjectStore.open(win.context.path) as store:
        (rec,) = store.list_models("tiger")
        assert rec.status == "done" and rec.step == 60 and rec.best_step in (20, 40, 60)
        assert store.load_checkpoint(rec.id, "best") is not None
    shot(win, tmp_path, "trained_tiny")

    # -- the playground: load a real user's history, read the recommendations
    win.show_view("playground")
    assert pg.model_combo.isEnabled() and pg.model_combo.currentData() == rec.id
    # a model and no history yet: the pane says what to do next, not that a model is missing
    assert f"Model #{rec.id} is ready: load a user's history" in pg.recommend_label.text(), pg.recommend_label.text()
    assert "none yet" not in pg.recommend_label.text()
    assert pg.user_combo.currentText() == "" and pg.user_combo.lineEdit().placeholderText() == "Pick or type a user id…"
    shot(win, tmp_path, "playground_model_ready")
    user, _n = win.context.store.users(limit=1)[0]
    type_text(qtbot, pg.user_combo.lineEdit(), user)
    qtbot.keyClick(pg.user_combo.lineEdit(), Qt.Key_Return)
    history = win.context.store.user_history(user)
    assert pg.history_items == history
    qtbot.waitUntil(lambda: pg.recommendations.rowCount() == 10 and recommendations_settled(pg), timeout=30000)
    rows = [pg.recommendations.row_values(r) for r in range(10)]
    assert [r[0] for r in rows] == list(range(1, 11))
    assert all(r[1] and r[2].startswith("<a_") for r in rows)
    scores = [r[3] for r in rows]
    assert scores == sorted(scores, reverse=True)
    # the same items, in the same order, as the core's recommend() (what `semid recommend` prints)
    from semid_studio.core.generative import recommend

    ids = list(win.context.store.item_ids())
    expected = recommend(win.context.store, [ids[i] for i in history], k=10, beam=20)
    assert pg.recommended_items == [r["idx"] for r in expected]
    assert [r[2] for r in rows] == [r["sid"] for r in expected]
    qtmodeltester.check(pg.recommendations)
    # their paths are highlighted in the SID tree
    assert set(pg.recommended_items) <= win.sid_tree.model._highlight_items
    assert "(score: SID log-probability)" in pg.recommend_label.text()  # a model without an item head
    shot(win, tmp_path, "recommendations")

    # K; nobody in the sample buys an item twice, so the history is left out by default
    assert pg.exclude_check.isChecked() and "0.0% of this project's interactions" in pg.exclude_check.toolTip()
    assert pg.last_recommendation.request.exclude_history and not set(pg.recommended_items) & set(history)
    pg.k_spin.setValue(5)
    qtbot.waitUntil(lambda: recommendations_settled(pg) and pg.last_recommendation.request.exclude_history
                    and pg.recommendations.rowCount() == 5, timeout=30000)
    assert not set(pg.recommended_items) & set(history)
    toggle(qtbot, pg.exclude_check)  # the user may still let history items back in
    qtbot.waitUntil(lambda: recommendations_settled(pg) and not pg.last_recommendation.request.exclude_history,
                    timeout=30000)

    # unconstrained decoding: SIDs that no item has are shown as invalid
    toggle(qtbot, pg.constrained_check)
    qtbot.waitUntil(lambda: recommendations_settled(pg) and not pg.last_recommendation.request.constrained,
                    timeout=30000)
    assert "unconstrained" in pg.recommend_label.text()
    codes = win.context.inspection.run.codes
    for r in range(pg.recommendations.rowCount()):
        idx = pg.recommendations.key(r)
        title, sid = pg.recommendations.row_values(r)[1:3]
        if idx < 0:
            assert title == "(no item has this SID)"
            assert pg.recommendations.index(r, 1).data(Qt.ForegroundRole) is not None  # shown in red
        else:
            assert sid == "".join(f"<{'abcd'[i]}_{c}>" for i, c in enumerate(codes[idx]))
    toggle(qtbot, pg.constrained_check)

    # sampling with a temperature gives K distinct real items
    toggle(qtbot, pg.sample_check)
    type_text(qtbot, pg.temperature_spin.lineEdit(), "2")
    qtbot.waitUntil(lambda: recommendations_settled(pg) and pg.last_recommendation.request.temperature == 2.0,
                    timeout=30000)
    assert len(set(pg.recommended_items)) == pg.recommendations.rowCount() == 5

    # only the latest request is shown when inputs change faster than results come
    toggle(qtbot, pg.sample_check)
    for k in (3, 7, 4):
        pg.k_spin.setValue(k)
        pg.update_recommendations()
    qtbot.waitUntil(lambda: recommendations_settled(pg), timeout=30000)
    assert pg.recommendations.rowCount() == 4 and pg.last_recommendation.request.k == 4

    # -- evaluate it against the baselines (a cancellable task), read the table and the plot
    win.show_view("evaluation")
    ev = win.evaluation
    click(qtbot, ev.evaluate_button)
    assert ev.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: ev._job is None, timeout=60000)
    assert ev.last_status == "done", win.errors
    methods = [ev.evaluations.row_values(r)[1] for r in range(ev.evaluations.rowCount())]
    assert methods == ["tiger", "popularity", "markov"]
    headers = [ev.evaluations.headerData(c, Qt.Horizontal) for c in range(ev.evaluations.columnCount())]
    assert {"recall@10", "ndcg@10"} <= set(headers)
    recall10 = {m: ev.evaluations.row_values(r)[headers.index("recall@10")] for r, m in enumerate(methods)}
    assert recall10["tiger"] > recall10["popularity"]  # the sample's tastes are learnable, even in 60 steps
    assert set(ev.bars) == {"tiger", "popularity", "markov"}
    plotted = list(ev.bars["tiger"].opts["height"])[headers.index("recall@10") - 4]  # after the 4 label columns
    assert plotted == pytest.approx(recall10["tiger"], abs=1e-4)
    qtmodeltester.check(ev.evaluations)
    shot(win, tmp_path, "evaluation")

    # -- export the model: safetensors weights + a JSON spec beside them
    win.show_view("export")
    export = win.export
    assert export.model_combo.currentData() == rec.id
    target = tmp_path / "tiger.safetensors"
    type_text(qtbot, export.model_path.edit, str(target))
    click(qtbot, export.model_button)
    qtbot.waitUntil(lambda: "Wrote" in export.status.text(), timeout=30000)
    from safetensors.numpy import load_file

    weights = load_file(str(target))
    with ProjectStore.open(win.context.path) as store:
        best = store.load_checkpoint(rec.id, "best")
    assert set(weights) == set(best.weights)
    assert all(np.array_equal(weights[k], best.weights[k]) for k in weights)
    info = json.loads(target.with_suffix(".json").read_text())
    assert info["spec"]["d_model"] == 32 and info["checkpoint"]["step"] == best.step
    assert info["vocab"] and info["quantizer_run"]["id"] == rec.quantizer_run_id


def test_closing_the_window_during_generative_training_leaves_a_resumable_model(qtbot, gui_project, tmp_path):
    from semid_studio.gui.main_window import MainWindow

    with ProjectStore.open(gui_project) as store:
        items_before = store.item_count()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert win.open_project(gui_project)
    qtbot.waitUntil(lambda: win.context.inspection is not None, timeout=60000)
    start_tiny_training(qtbot, win, steps=100000, eval_every=10)  # far more than the test will wait for
    qtbot.waitUntil(lambda: len(win.training.valid_curves.series("valid ndcg@10")[0]) >= 2, timeout=60000)
    shot(win, tmp_path, "generative_training_live")
    started = time.monotonic()
    win.close()  # cancels the job and waits for its thread
    assert time.monotonic() - started < 30
    assert not win.runner.is_busy() and not win.context.is_open

    # the project is intact and the model is saved at its last completed step
    with ProjectStore.open(gui_project) as store:
        assert store.item_count() == items_before
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (rec,) = store.list_models("tiger")
        assert rec.status == "interrupted" and rec.step >= 20
        last = store.load_checkpoint(rec.id, "last")
        assert last.step == rec.step and last.train_state
    stopped_at = rec.step

    # reopen: the model is offered for resuming, and training continues from where it stopped
    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    assert again.open_project(gui_project)
    qtbot.waitUntil(lambda: again.context.inspection is not None, timeout=60000)
    wait_idle(qtbot, again)
    again.show_view("training")
    panel = again.training
    panel.kind_combo.setCurrentText(panel.generative_form.title)
    form = panel.generative_form
    index = form.resume_combo.findData(rec.id)
    assert index > 0 and f"interrupted at step {stopped_at:,}" in form.resume_combo.itemText(index)
    form.resume_combo.setCurrentIndex(index)
    assert not form.preset_combo.isEnabled() and f"Resuming model #{rec.id}" in form.spec_label.text()
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: f"resuming model #{rec.id} at step {stopped_at}" in panel.log.toPlainText(),
                    timeout=30000)
    qtbot.waitUntil(lambda: bool(panel.curves.series("loss (running mean)")[0])
                    and panel.curves.series("loss (running mean)")[0][-1] > stopped_at + 5, timeout=30000)
    assert panel.curves.series("loss (running mean)")[0][0] > stopped_at  # continued, not restarted
    click(qtbot, panel.cancel_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    assert panel.last_status == "cancelled" and "resume" in panel.stage_label.text()
    with ProjectStore.open(gui_project) as store:
        again_rec = store.get_model(rec.id)
        assert again_rec.status == "interrupted" and again_rec.step > stopped_at
        assert len(store.list_models("tiger")) == 1  # the same model, not a new one
    again.close()


def test_train_an_ensemble_and_read_its_recommendations(qtbot, opened, tmp_path):
    """Two tiny item-head models ranked as one (members=2, what the laptop-pair preset asks
    for), trained from the Training panel: the result names the members, the playground reads the
    ensemble and lists exactly what the core's recommend() gives, with the score in words."""
    win = opened
    win.show_view("training")
    panel = win.training
    panel.kind_combo.setCurrentText(panel.generative_form.title)
    form = panel.generative_form
    form.preset_combo.setCurrentText("tiny")
    type_text(qtbot, form.steps_spin.lineEdit(), "40")
    type_text(qtbot, form.eval_spin.lineEdit(), "20")
    type_text(qtbot, form.overrides_edit, "item_head=1, transition_weight=0.5, members=2")
    assert form.spec().members == 2
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert panel.last_status == "done", win.errors
    with ProjectStore.open(win.context.path) as store:
        members = [r for r in store.list_models("tiger") if not r.spec.get("members")]
        (pair,) = [r for r in store.list_models("tiger") if r.spec.get("members")]
    assert [m.spec["spec"]["seed"] for m in members] == [0, 1] and all(m.status == "done" for m in members)
    text = panel.result_view.toPlainText()
    assert f"Model #{pair.id}" in text and "An ensemble ranked as one; its members alone: " \
        f"#{members[0].id} (seed 0)" in text, text
    assert "ranking the 2 members together" in panel.log.toPlainText()
    shot(win, tmp_path, "trained_pair")

    win.show_view("playground")
    pg = win.playground
    # the newest model is listed first, as an ensemble; the first member was chosen when it appeared
    assert pg.model_combo.itemData(0) == pair.id and "ensemble of 2" in pg.model_combo.itemText(0)
    pg.model_combo.setCurrentIndex(0)
    user, _n = win.context.store.users(limit=1)[0]
    type_text(qtbot, pg.user_combo.lineEdit(), user)
    qtbot.keyClick(pg.user_combo.lineEdit(), Qt.Key_Return)
    qtbot.waitUntil(lambda: pg.recommendations.rowCount() == 10 and recommendations_settled(pg), timeout=30000)
    from semid_studio.core.generative import recommend

    ids = list(win.context.store.item_ids())
    history = win.context.store.user_history(user)
    expected = recommend(win.context.store, [ids[i] for i in history], k=10, beam=20, model_id=pair.id)
    assert pg.recommended_items == [r["idx"] for r in expected]
    assert "2 models' mean SID log-probability" in pg.recommend_label.text(), pg.recommend_label.text()
    shot(win, tmp_path, "pair_recommendations")
