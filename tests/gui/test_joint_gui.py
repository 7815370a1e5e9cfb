"""User stories with joint generative search + recommendation in the real window, offscreen.

Queries are generated and a tiny joint model is trained from the Training panel on the sample
project (seconds), then the Playground answers a typed query with it — the same items and SIDs
as the core's ``joint_search`` — and the Strategies view evaluates it against the baselines and
places it as a point. A second story covers the Strategies view's empty state, the embedding
strategy form (with a cancel) and two SID spaces compared side by side.
"""

import pytest
from PySide6.QtCore import Qt

from semid_studio.core.store import ProjectStore

from .fixtures import OFFSCREEN_NOISE, wait_idle
from .test_user_stories import click, shot, type_text

pytestmark = OFFSCREEN_NOISE


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: these are tiny models, and on a shared 2-core machine a second thread
    only spins (training ran ~5x slower with two under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_form(qtbot, win, form, timeout: int = 120000) -> None:
    """Training view -> this form -> Start, and wait for it to end successfully."""
    win.show_view("training")
    panel = win.training
    panel.show_form(form)
    assert panel.form is form
    click(qtbot, panel.start_button)
    assert panel.running and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)
    assert panel.last_status == "done", (panel.stage_label.text(), win.errors)


def query_settled(pg) -> bool:
    return pg.results_request == pg._latest_request and not pg._debounce.isActive() \
        and not pg.context.runner.is_busy("playground-query")


def search_for(qtbot, pg, text: str) -> None:
    type_text(qtbot, pg.query_edit, text)
    qtbot.waitUntil(lambda: query_settled(pg), timeout=30000)


def test_generate_queries_train_a_joint_model_search_with_it_and_place_it(qtbot, qtmodeltester, opened, tmp_path):
    win = opened
    panel = win.training

    # -- generate known-item queries from the Training panel (title words left out: the sample's
    # imported test queries are built from titles, and training must never see a held-out text)
    qform = panel.queries_form
    qform.method_combo.setCurrentText("known-item")
    type_text(qtbot, qform.per_item_spin.lineEdit(), "1")
    type_text(qtbot, qform.test_spin.lineEdit(), "1")
    qform.exclude_title_check.setChecked(True)
    assert qform.spec().per_item == 1 and qform.spec().exclude_title
    run_form(qtbot, win, qform)
    assert "3,000 train and 3,000 test queries" in panel.stage_label.text()
    assert "Examples (query → item)" in panel.result_view.toPlainText()
    with ProjectStore.open(win.context.path) as store:
        generated = store.queries_frame(source="generated")
    assert len(generated) == 6000 and set(generated["split"]) == {"train", "test"}
    assert "generated train" in qform.counts_label.text()

    # -- train a tiny joint model (task joint) from the generative form. Word pieces, a small dev part
    # and a narrow validation beam keep it to seconds on a loaded CPU (the default MiniLM query states
    # cost ~40 s for these 7,000 queries there; tests/test_joint.py trains with them)
    gform = panel.generative_form
    panel.show_form(gform)
    gform.task_combo.setCurrentIndex(gform.task_combo.findData("joint"))
    assert gform.mix_spin.isEnabled() and gform.encoder_combo.isEnabled()
    gform.encoder_combo.setCurrentIndex(gform.encoder_combo.findData("wordpiece"))
    gform.preset_combo.setCurrentText("tiny")
    type_text(qtbot, gform.steps_spin.lineEdit(), "40")
    type_text(qtbot, gform.eval_spin.lineEdit(), "20")
    type_text(qtbot, gform.overrides_edit, "valid_users=100, dev_fraction=0.02, search_beam=10")
    joint = gform.joint_spec()
    assert (joint.task, joint.mix, joint.query_encoder, joint.dev_fraction) == ("joint", 0.5, "wordpiece", 0.02)
    assert gform.spec().valid_users == 100
    run_form(qtbot, win, gform)
    with ProjectStore.open(win.context.path) as store:
        (rec,) = store.list_models("tiger-joint")
        assert rec.status == "done" and rec.step == 40 and store.load_checkpoint(rec.id, "best") is not None
    assert "search search_" not in panel.result_view.toPlainText()
    assert "search ndcg@10" in panel.result_view.toPlainText()
    steps, _losses = panel.curves.series("loss (running mean)")
    assert steps and steps[-1] == 40
    assert panel.valid_curves.series("valid geometric mean of rec and search ndcg@10")[0] == [20, 40]
    # each task's own validation curve beside the selection figure
    rec_steps, rec_values = panel.valid_curves.series("valid rec ndcg@10")
    search_steps, search_values = panel.valid_curves.series("valid search ndcg@10")
    assert rec_steps == search_steps == [20, 40]
    mean_values = panel.valid_curves.series("valid geometric mean of rec and search ndcg@10")[1]
    assert mean_values[-1] == pytest.approx((rec_values[-1] * search_values[-1]) ** 0.5)

    # -- the playground answers a query with the joint model: the core's items and SIDs
    win.show_view("playground")
    pg = win.playground
    assert pg.search_combo.currentData() == rec.id
    assert "joint model" in pg.query_note.text()
    text = "waterproof hiking boots"
    search_for(qtbot, pg, text)
    assert pg.last_answer is not None and pg.last_answer.model.id == rec.id, pg.results_label.text()
    rows = [pg.results.row_values(r) for r in range(pg.results.rowCount())]
    from semid_studio.core.generative.joint import joint_search

    with ProjectStore.open(win.context.path) as store:
        expected = joint_search(store, text, k=10, model_id=rec.id)
    assert len(rows) == 10
    assert [r[1] for r in rows] == [h["title"] for h in expected.hits]
    assert [r[2] for r in rows] == [h["sid"] for h in expected.hits]
    assert pg.result_items == [h["idx"] for h in expected.hits]
    assert "from joint model" in pg.results_label.text()
    assert set(pg.result_items) <= win.sid_tree.model._highlight_items  # their paths are highlighted
    qtmodeltester.check(pg.results)
    shot(win, tmp_path, "joint_search")

    # -- bad queries: a readable line under the box, no rows, no crash, no error dialog
    errors_before = len(win.errors)
    for bad, says in [("the and of", "only stop words"), ("x" * 100_000, "characters"), ("!!! ???", "no words")]:
        pg.query_edit.setText(bad)
        qtbot.waitUntil(lambda: query_settled(pg), timeout=30000)
        assert pg.results.rowCount() == 0 and says in pg.results_label.text(), pg.results_label.text()
    pg.query_edit.setText("")
    qtbot.waitUntil(lambda: query_settled(pg), timeout=30000)
    assert "Type a query" in pg.results_label.text()
    assert len(win.errors) == errors_before

    # the joint model also recommends from a history (the same model, task token [REC])
    assert pg.model_combo.currentData() == rec.id and "joint search + rec" in pg.model_combo.currentText()
    user, _n = win.context.store.users(limit=1)[0]
    type_text(qtbot, pg.user_combo.lineEdit(), user)
    qtbot.keyClick(pg.user_combo.lineEdit(), Qt.Key_Return)
    qtbot.waitUntil(lambda: pg.recommendations.rowCount() == 10 and pg.recommend_request == pg._latest_recommend
                    and not pg.context.runner.is_busy("playground-recommend"), timeout=30000)
    assert f"model #{rec.id}" in pg.recommend_label.text()
    assert all(pg.recommendations.row_values(r)[2].startswith("<a_") for r in range(10))
    assert set(pg.recommended_items) <= win.sid_tree.model._highlight_items

    # embedding similarity is still one choice away, and says so
    pg.search_combo.setCurrentIndex(pg.search_combo.findData(-1))
    search_for(qtbot, pg, text)
    qtbot.waitUntil(lambda: pg.results.rowCount() == 10 and query_settled(pg), timeout=60000)
    assert pg.last_answer is None and "embedding similarity" in pg.results_label.text()

    # -- the strategies view: no evaluation yet, then Evaluate places the model among the baselines
    win.show_view("strategies")
    sv = win.strategies
    assert "No evaluations yet" in sv.status_label.text() and sv.plot.point_count == 0
    sv.queries_spin.setValue(100)
    click(qtbot, sv.evaluate_button)
    assert sv.running and sv.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not sv.running, timeout=120000)
    assert sv.last_status == "done", (sv.eval_label.text(), win.errors)
    assert len(sv.data.points) == 1 and sv.plot.point_count == 1
    point = sv.data.points[0]
    assert point.model_id == rec.id and point.strategy == "content" and point.rec is not None
    assert point.search_eval["settings"]["n_queries"] == 100
    names = sv.plot.line_names
    assert "BM25" in names and "popularity" in names and "Markov chain" in names
    assert any(n.startswith("dense content") for n in names)
    qtmodeltester.check(sv.points)
    # click the point on the plot: it is selected and its run is described
    sv.select_point(None)
    assert sv.selected_row is None
    qtbot.waitExposed(sv.plot)
    pos = sv.plot.widget_pos(0)
    qtbot.mouseClick(sv.plot.viewport(), Qt.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: sv.selected_row == 0, timeout=5000)
    assert f"Joint model #{rec.id}" in sv.details.toPlainText()
    assert "strategy content" in sv.details.toPlainText()
    shot(win, tmp_path, "strategies")
    # the point's model in the playground
    click(qtbot, sv.use_model_button)
    assert win.current_view == "playground" and pg.search_combo.currentData() == rec.id
    wait_idle(qtbot, win)


def test_strategies_view_empty_state_embedding_strategy_and_two_sid_spaces(qtbot, qtmodeltester, opened):
    win = opened
    win.show_view("strategies")
    sv = win.strategies
    assert "No joint search + rec model" in sv.status_label.text()
    assert "How to get points here" in sv.details.toPlainText()
    assert sv.evaluate_button.isEnabled() and not sv.compare_button.isEnabled()  # one SID space so far
    qtmodeltester.check(sv.points)

    # -- a fine-tuned strategy started and cancelled: nothing saved
    panel = win.training
    sform = panel.strategy_form
    win.show_view("training")
    panel.show_form(sform)
    sform.strategy_combo.setCurrentIndex(sform.strategy_combo.findData("search"))
    assert sform.is_valid(), sform.spec_label.text()
    click(qtbot, panel.start_button)
    click(qtbot, panel.cancel_button)
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    assert panel.last_status == "cancelled" and "no embedding set was saved" in panel.stage_label.text()
    assert len(win.context.store.list_embedding_sets()) == 1

    # -- rec-tuned embeddings (collaborative, seconds), then its SIDs with the quantiser form
    sform.strategy_combo.setCurrentIndex(sform.strategy_combo.findData("rec"))
    run_form(qtbot, win, sform)
    sets = win.context.store.list_embedding_sets()
    assert [s.strategy for s in sets] == ["content", "rec"]

    # -- the generative form offers fine-tuned text encoders for the joint model's text side: none yet
    # (collaborative vectors have no text encoder); a search-tuned set's appears once there is one
    gform = panel.generative_form
    assert [gform.reader_combo.itemData(i) for i in range(gform.reader_combo.count())] == [None, ""]
    with ProjectStore.open(win.context.path) as store:
        content = store.load_embedding_set(sets[0].id)
        tuned_id = store.save_embedding_set(name="search-tuned (test)", model=content.model, template=content.template,
                                            strategy="search", cache_key="test-search-tuned", vectors=content.vectors)
    win.context.contentChanged.emit()
    panel.show_form(gform)
    gform.task_combo.setCurrentIndex(gform.task_combo.findData("joint"))
    # -- by default a joint model of the laptop preset is the measured recipe, and the form says what it
    # will use and make: this search-tuned set was not fine-tuned on the project's queries, so a new one is
    gform.preset_combo.setCurrentText("laptop")
    assert gform.steps_spin.value() == 750 and gform.eval_spin.value() == 100
    joint = gform.joint_spec()
    assert (joint.encoder_model, joint.item_vectors, joint.rec_targets) == ("search", "rec", 2048)
    assert "a search-tuned text encoder fine-tuned first" in gform.plan_label.text()
    assert f"history items read as the rec-tuned vectors of set #{sets[1].id}" in gform.plan_label.text()
    reader = gform.reader_combo.findData(f"set:{tuned_id}")
    assert reader > 0 and "search-tuned" in gform.reader_combo.itemText(reader)
    gform.reader_combo.setCurrentIndex(reader)
    assert gform.joint_spec().encoder_model == f"set:{tuned_id}"
    assert f"encoder_model=set:{tuned_id}" in gform.spec_label.text()
    gform.task_combo.setCurrentIndex(gform.task_combo.findData("rec"))
    assert not gform.reader_combo.isEnabled()
    # -- the items' own vectors beside their SIDs: the preset's choice, none, or any set (rec-tuned here)
    assert gform.spec().content_input  # laptop reads the SIDs' own set
    gform.vectors_combo.setCurrentIndex(gform.vectors_combo.findData(0))
    assert not gform.spec().content_input and "content_input=False" in gform.spec_label.text()
    rec_row = gform.vectors_combo.findData(sets[1].id)
    assert "rec" in gform.vectors_combo.itemText(rec_row)
    gform.vectors_combo.setCurrentIndex(rec_row)
    assert gform.spec().content_input and gform.spec().content_set == sets[1].id
    assert f"content_set={sets[1].id}" in gform.spec_label.text()
    gform.vectors_combo.setCurrentIndex(0)
    qform = panel.quantizer_form
    qform.embedding_combo.setCurrentIndex(qform.embedding_combo.findData(sets[-1].id))
    qform.preset_combo.setCurrentIndex(0)
    qform.size_spin.setValue(32)
    run_form(qtbot, win, qform)
    wait_idle(qtbot, win)

    # -- two SID spaces side by side: the tree's Compare runs view, opened preselected
    win.show_view("strategies")
    runs = [r.id for r in win.context.store.list_quantizer_runs()]
    assert sv.compare_button.isEnabled()
    assert "rec-tuned SIDs" in sv.compare_a.itemText(0)
    sv.compare_a.setCurrentIndex(sv.compare_a.findData(runs[-1]))
    sv.compare_b.setCurrentIndex(sv.compare_b.findData(runs[0]))
    click(qtbot, sv.compare_button)
    assert win.current_view == "tree"
    tree = win.sid_tree
    qtbot.waitUntil(lambda: "level-1 groups" in tree.compare_label.text() and "vs run" in tree.compare_label.text(),
                    timeout=30000)
    assert f"Run #{runs[-1]} vs run #{runs[0]}" in tree.compare_label.text()
    assert tree.tabs.tabText(tree.tabs.currentIndex()) == "Compare runs"
    wait_idle(qtbot, win)
