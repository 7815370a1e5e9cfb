"""Each panel's behaviour on a real project, with real workers (offscreen)."""

from collections import Counter

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDropEvent

from semid_studio.core.store import ProjectStore
from semid_studio.gui.models.common import items_mime

from .fixtures import OFFSCREEN_NOISE, wait_idle

pytestmark = OFFSCREEN_NOISE


def type_text(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


# --------------------------------------------------------------------------- catalogue


def test_catalogue_search_filter_and_sort(qtbot, opened):
    win = opened
    panel = win.catalogue
    store = win.context.store
    n = store.item_count()
    assert panel.model.rowCount() == n and panel.count_label.text() == f"{n:,} items"
    title = store.get_items([3])[0]["title"]
    word = max(title.split(), key=len)
    type_text(qtbot, panel.search_edit, word)
    qtbot.waitUntil(lambda: not panel.filtering, timeout=10000)
    shown = [panel.model.idx_at(r) for r in range(panel.model.rowCount())]
    assert 3 in shown and 0 < len(shown) < n
    assert all(word.lower() in str(rec).lower() for rec in store.get_items(shown))
    assert panel.count_label.text() == f"{len(shown):,} of {n:,} items"

    panel.search_edit.clear()
    sid = store.sid_of(store.active_run_id(), 3)
    prefix = sid[: sid.index(">") + 1]  # the item's level-1 token
    type_text(qtbot, panel.sid_edit, prefix)
    qtbot.waitUntil(lambda: not panel.filtering, timeout=10000)
    rows = range(panel.model.rowCount())
    assert 0 < len(rows) < n and all(panel.model.item_at(r).sid.startswith(prefix) for r in rows)

    panel.sid_edit.clear()
    panel.view.sortByColumn(panel.model.column_of("title"), Qt.DescendingOrder)
    qtbot.waitUntil(lambda: not panel.filtering and panel.model.rowCount() == n, timeout=10000)
    titles = [panel.model.item_at(r).title or "" for r in range(min(n, 50))]
    assert titles == sorted(titles, reverse=True) or titles[0] >= titles[-1]


def test_catalogue_selection_details_and_actions(qtbot, opened):
    win = opened
    panel = win.catalogue
    assert panel.select_item(5)
    details = panel.details.toPlainText()
    item = win.context.store.get_items([5])[0]
    assert item["item_id"] in details and "SID" in details
    revealed, history = [], []
    win.context.revealItem.connect(revealed.append)
    win.context.addToHistory.connect(history.append)
    qtbot.mouseClick(panel.tree_button, Qt.LeftButton)
    qtbot.mouseClick(panel.history_button, Qt.LeftButton)
    assert revealed == [5] and history == [[5]]
    assert win.current_view == "tree"  # "Show in SID tree" switches the view
    assert win.sid_tree.model.node_at(win.sid_tree.tree.currentIndex()).item == 5
    assert win.playground.history_items == [5]


# --------------------------------------------------------------------------- SID tree


def test_tree_find_reveals_the_path_and_shows_statistics(qtbot, opened):
    win = opened
    win.show_view("tree")
    panel = win.sid_tree
    store = win.context.store
    target = store.item_count() // 2
    item_id = store.get_items([target])[0]["item_id"]
    type_text(qtbot, panel.find_edit, item_id)
    qtbot.keyClick(panel.find_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: panel.model.node_at(panel.tree.currentIndex()).item == target, timeout=10000)
    current = panel.tree.currentIndex()
    codes = win.context.inspection.run.codes
    assert current.data(panel.model.PrefixRole) == tuple(int(c) for c in codes[target])
    assert panel.tree.isExpanded(current.parent())
    assert item_id in panel.node_info.toPlainText()
    # a level-1 node: statistics and the node's items
    top = current
    while top.parent().isValid():
        top = top.parent()
    panel.tree.setCurrentIndex(top)
    info = panel.node_info.toPlainText()
    assert "Purity" in info and "Children" in info and "entropy" in info
    members = np.flatnonzero(codes[:, 0] == top.data(panel.model.PrefixRole)[0])
    assert panel.node_items.rowCount() == len(members)
    assert {panel.node_items.idx_at(r) for r in range(len(members))} == set(members.tolist())
    # a title search with several matches lists them; choosing one reveals it
    word = store.get_items([target])[0]["title"].split()[0]
    type_text(qtbot, panel.find_edit, word)
    qtbot.keyClick(panel.find_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: not panel.find_matches.isHidden() or
                    panel.model.node_at(panel.tree.currentIndex()).item is not None, timeout=10000)
    if not panel.find_matches.isHidden():
        entry = panel.find_matches.item(panel.find_matches.count() - 1)
        panel.find_matches.itemClicked.emit(entry)
        assert panel.model.node_at(panel.tree.currentIndex()).item == entry.data(Qt.UserRole)


def test_tree_expands_lazily_with_labels_and_purity(qtbot, opened):
    win = opened
    view, model = win.sid_tree.tree, win.sid_tree.model
    win.show_view("tree")
    qtbot.waitExposed(view)
    wait_idle(qtbot, win)
    n_top = model.rowCount()
    assert n_top == len(np.unique(win.context.inspection.run.codes[:, 0]))
    first = model.index(0, 0)
    assert model.rowCount(first) == 0
    view.expand(first)  # as a click on the arrow does
    qtbot.waitUntil(lambda: model.rowCount(first) > 0, timeout=5000)
    assert model.index(0, 3).data().endswith("%") and model.index(0, 2).data()
    assert model.index(0, 0, first).data().startswith("<b_")


def test_collisions_code_usage_and_embedding_map(qtbot, opened):
    win = opened
    panel = win.sid_tree
    inspection = win.context.inspection
    groups = inspection.index.collision_groups()
    assert panel.collisions.rowCount() == min(len(groups), 5000)
    assert (f"{len(groups):,} collision groups" if groups else "No collision groups") in panel.collisions_label.text()
    if groups:
        panel.collisions_view.clicked.emit(panel.collisions.index(0, 0))
        node = panel.model.node_at(panel.tree.currentIndex())
        assert node.depth == inspection.n_levels and node.count >= 2
    # code usage: one plot per level and the dedup level, drawn once the tab is shown
    assert len(panel.usage_plot.summaries) == inspection.run.codes.shape[1]
    assert "codes used" in panel.usage_plot.summaries[0]
    win.show_view("tree")
    assert panel.usage_plot.drawn_levels == 0  # not drawn while hidden
    panel.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: panel.usage_plot.drawn_levels == inspection.run.codes.shape[1], timeout=5000)
    # the map: every point coloured by level 1, drawn in pieces; hovering a point names its item
    qtbot.waitUntil(lambda: panel.map_plot.point_count > 0, timeout=30000)
    panel.tabs.setCurrentIndex(3)
    qtbot.waitExposed(panel.map_plot)
    qtbot.waitUntil(lambda: panel.map_plot.drawn_count == panel.map_plot.point_count, timeout=10000)
    item = int(win.context.projection.idx[0])
    x, y = panel.map_plot.point_of(item)
    hovered = []
    panel.map_plot.hoveredItem.connect(hovered.append)
    scene_pos = panel.map_plot.getViewBox().mapViewToScene(QPointF(x, y))
    panel.map_plot.scene().sigMouseMoved.emit(scene_pos)  # what pyqtgraph emits on a real mouse move
    assert hovered and hovered[-1] >= 0
    assert str(inspection.titles[hovered[-1]]) in panel.map_plot.hover_text(hovered[-1])


def test_compare_two_runs(qtbot, opened):
    win = opened
    form = win.training.form
    form.method_combo.setCurrentText("rq-kmeans")
    form.preset_combo.setCurrentText("fast")
    form.levels_spin.setValue(2)
    form.size_spin.setValue(4)
    win.training.start()
    qtbot.waitUntil(lambda: not win.training.running, timeout=60000)
    assert win.training.last_status == "done", win.errors
    wait_idle(qtbot, win)
    panel = win.sid_tree
    assert panel.compare_a.count() == 2 and panel.compare_button.isEnabled()
    qtbot.mouseClick(panel.compare_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.compare_table.rowCount() > 0, timeout=20000)
    assert "NMI" in panel.compare_label.text()
    assert panel.compare_table.rowCount() == 4  # run A is the new run: 4 level-1 groups
    assert panel.compare_plot.matrix.shape[0] == 4
    np.testing.assert_allclose(panel.compare_plot.matrix.sum(axis=1), 1.0)


def test_label_field_change_recomputes_purity(qtbot, opened):
    win = opened
    panel = win.sid_tree
    panel.label_edit.setEditText("brand")
    panel.label_edit.lineEdit().returnPressed.emit()
    qtbot.waitUntil(lambda: win.context.inspection is not None and win.context.inspection.labels is not None
                    and win.context.inspection.labels.field == "brand", timeout=20000)
    wait_idle(qtbot, win)
    model = panel.model
    model.load_children()
    brands = Counter(rec.get("brand") for rec in win.context.store.get_items(model.items_of(model.index(0, 0))))
    brands.pop(None, None)
    shown = model.index(0, 2).data()
    assert brands[shown] == max(brands.values())  # the node's most common brand (ties either way)
    assert model.index(0, 3).data() == f"{100 * brands[shown] / sum(brands.values()):.0f}%"
    panel.label_edit.setEditText("no_such_field")
    panel.label_edit.lineEdit().returnPressed.emit()
    qtbot.waitUntil(lambda: any("no_such_field" in e for e in win.errors), timeout=20000)


# --------------------------------------------------------------------------- playground


def test_query_ranks_by_embedding_similarity_and_highlights_the_tree(qtbot, opened):
    win = opened
    pg = win.playground
    win.show_view("playground")
    assert "embedding similarity" in pg.query_note.text()
    type_text(qtbot, pg.query_edit, "red lipstick")
    qtbot.waitUntil(lambda: pg.results.rowCount() == pg.k_spin.value(), timeout=60000)
    first = pg.results.key(0)
    assert "embedding similarity" in pg.results_label.text()
    scores = [float(pg.results.row_values(r)[3]) for r in range(pg.results.rowCount())]
    assert scores == sorted(scores, reverse=True)
    # the results' paths are highlighted in the tree
    assert first in win.sid_tree.model._highlight_items
    leaf = win.sid_tree.model.reveal(first)
    assert leaf.data(Qt.FontRole).bold() and leaf.parent().data(Qt.BackgroundRole) is not None
    # typing more replaces the results (stale ones are dropped), K changes the count
    pg.k_spin.setValue(3)
    qtbot.keyClicks(pg.query_edit, " matte")
    qtbot.waitUntil(lambda: pg.results.rowCount() == 3 and pg.results_request == pg._latest_request, timeout=30000)
    assert "red lipstick matte" in pg.results_label.text()


def test_history_builder(qtbot, opened):
    win = opened
    pg = win.playground
    store = win.context.store
    assert pg.user_combo.count() > 0
    user = pg.user_combo.itemData(0)
    pg.user_combo.setCurrentIndex(0)
    qtbot.mouseClick(pg.load_user_button, Qt.LeftButton)
    assert pg.history_items == store.user_history(user)
    # add by search
    item_id = store.get_items([1])[0]["item_id"]
    pg.history.clear()
    type_text(qtbot, pg.add_edit, item_id)
    qtbot.keyClick(pg.add_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: pg.history_items == [1], timeout=10000)
    # drop items dragged from another view (the tree, the catalogue)
    mime = items_mime([4, 2])
    pos = QPointF(5, 5)
    drop = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    drop.setDropAction(Qt.CopyAction)
    pg.history.dropEvent(drop)
    assert sorted(pg.history_items) == [1, 2, 4] and len(pg.history_items) == 3
    # reorder and remove
    pg.history.setCurrentRow(2)
    before = pg.history_items
    qtbot.mouseClick(pg.up_button, Qt.LeftButton)
    assert pg.history_items == [before[0], before[2], before[1]]
    pg.history.setCurrentRow(0)
    pg.history.item(0).setSelected(True)
    qtbot.mouseClick(pg.remove_button, Qt.LeftButton)
    assert len(pg.history_items) == 2
    assert "2 items" in pg.history_box.title()
    # no generative model yet: the panel says so and the model's controls are off
    assert "generative model" in pg.recommend_label.text()
    assert not pg.beam_spin.isEnabled() and pg.k_spin.isEnabled()


def test_unknown_user_is_a_readable_error(qtbot, opened):
    win = opened
    win.playground.user_combo.setEditText("nobody-at-all")
    win.playground.load_user_history()
    assert win.errors[-1] == "user 'nobody-at-all' has no interactions in this project"


# --------------------------------------------------------------------------- evaluation and export


def test_evaluation_lists_runs_and_evaluations(qtbot, qtmodeltester, opened):
    win = opened
    panel = win.evaluation
    runs = win.context.store.list_quantizer_runs()
    assert panel.runs.rowCount() == len(runs)
    assert panel.runs.index(0, 4).data().endswith("%")  # unique before dedup
    assert "No evaluations" in panel.eval_note.text()
    assert not panel.evaluate_button.isEnabled()  # no trained model yet
    # a flat report (one method) and a recommendation report (model and baselines, mean ± spread)
    win.context.store.save_evaluation(name="markov", task="rec", split="test", settings={},
                                      metrics={"recall@10": 0.07, "ndcg@10": 0.04})
    summary = {"recall@10": {"mean": 0.09, "std": 0.01, "n": 2}, "ndcg@10": {"mean": 0.05, "std": 0.0, "n": 2}}
    win.context.store.save_evaluation(
        name="tiger #1, #2 on loo", task="recommendation", split="loo", settings={"n_test": 2000},
        metrics={"popularity": {"summary": {"recall@10": {"mean": 0.01, "std": 0.0, "n": 1}}},
                 "tiger": {"summary": summary}})
    win.context.contentChanged.emit()
    rows = [panel.evaluations.row_values(r) for r in range(panel.evaluations.rowCount())]
    assert [r[1] for r in rows] == ["markov", "tiger", "popularity"]  # the model before its baselines
    headers = [panel.evaluations.headerData(c, Qt.Horizontal) for c in range(panel.evaluations.columnCount())]
    assert headers[4:] == ["recall@10", "ndcg@10"]
    assert rows[1][4] == "0.0900 ± 0.0100" and rows[1][3] == 2000
    qtmodeltester.check(panel.evaluations)
    # the newest evaluation is plotted: one bar set per method, one bar per metric
    assert set(panel.bars) == {"tiger", "popularity"}
    assert list(panel.bars["tiger"].opts["height"]) == [0.09, 0.05]
    panel.eval_view.selectRow(0)
    assert set(panel.bars) == {"markov"} and list(panel.bars["markov"].opts["height"]) == [0.07, 0.04]


def test_export_each_format(qtbot, opened, tmp_path):
    from semid_studio.core.export import read_provenance

    win = opened
    panel = win.export
    win.show_view("export")
    for i in range(panel.table_format.count()):
        panel.table_format.setCurrentIndex(i)
        suffix = panel.table_format.currentData()
        target = tmp_path / f"sids{suffix}"
        panel.table_path.setText(str(target))
        qtbot.mouseClick(panel.table_button, Qt.LeftButton)
        qtbot.waitUntil(lambda t=target: t.exists() and not win.runner.is_busy(), timeout=20000)
        assert read_provenance(target)["quantizer_run"]["id"] == win.context.store.active_run_id()
    panel.book_format.setCurrentIndex(0)
    book = tmp_path / "books.npy"
    panel.book_path.setText(str(book))
    qtbot.mouseClick(panel.book_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: book.exists() and not win.runner.is_busy(), timeout=20000)
    assert np.load(book).ndim == 3 and "Wrote" in panel.status.text()
    panel.table_path.setText(str(tmp_path / "no_such_folder" / "x.csv"))
    qtbot.mouseClick(panel.table_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Export failed" in panel.status.text(), timeout=20000)
    assert "does not exist" in win.errors[-1]


# --------------------------------------------------------------------------- window


def test_recent_projects_and_layout_are_remembered(qtbot, gui_project, tmp_path):
    from semid_studio.gui.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    assert first.open_project(gui_project)
    first.show_view("playground")
    first.resize(720, 540)  # within the offscreen screen (800 x 600), which clamps restored sizes
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.recent_projects() == [str(gui_project.resolve())]
    assert second.last_project() == gui_project.resolve()
    assert second.current_view == "playground" and second.size().width() == 720
    assert [a.text() for a in second.recent_menu.actions()] == [str(gui_project.resolve())]
    second.start()  # no project named: the last one opens
    assert second.context.path == gui_project.resolve()
    qtbot.waitUntil(second.is_idle, timeout=60000)
    second.close()


def test_save_as_writes_a_copy_and_switches_to_it(qtbot, opened, tmp_path):
    win = opened
    target = tmp_path / "copy"
    win.save_as(target)
    qtbot.waitUntil(lambda: win.context.path == target.with_suffix(".semid"), timeout=30000)
    with ProjectStore.open(gui_copy := target.with_suffix(".semid")) as store:
        assert store.item_count() == win.context.store.item_count()
    assert gui_copy.exists()
    win.save_as(target)  # exists now: a message, not an overwrite
    assert "already exists" in win.errors[-1]


def test_opening_a_bad_file_is_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "not_a_project.semid"
    bad.write_text("hello")
    assert not window.open_project(bad)
    assert "not a SemID Studio project" in window.errors[-1]
    assert not window.open_project(tmp_path / "missing.semid")
    assert "no such project file" in window.errors[-1]
    assert not window.context.is_open and window.project_label.text() == "No project"


def test_evaluation_table_reads_a_joint_models_rec_report():
    from semid_studio.core.generative.metrics import summarise_runs
    from semid_studio.gui.panels.evaluation import evaluation_methods

    # the shape evaluate_joint stores for its rec side: per-seed figures and their summary
    runs = [{"recall@10": 0.20, "ndcg@10": 0.10}, {"recall@10": 0.24, "ndcg@10": 0.12}]
    stored = {"name": "joint #3, #4 rec", "metrics": {"per_seed": runs, "summary": summarise_runs(runs)}}
    ((method, values),) = evaluation_methods(stored)
    assert method == "joint #3, #4 rec"
    assert values["recall@10"][0] == pytest.approx(0.22) and values["recall@10"][1] > 0
