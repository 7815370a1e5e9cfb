"""Item models: the lazy SID tree, the paged catalogue and the small record tables.

Every model is checked by pytest-qt's ``qtmodeltester`` (Qt's QAbstractItemModelTester, which
keeps checking while the test fetches, resets and changes the model, plus the Python tester).
"""

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt

from semid_studio.core.analysis.nodes import TermIndex, encode_labels
from semid_studio.core.sids import SidIndex, add_dedup_level
from semid_studio.core.store import ProjectStore
from semid_studio.gui.models.catalogue import CatalogueTableModel
from semid_studio.gui.models.common import ITEMS_MIME, items_from_mime
from semid_studio.gui.models.sid_tree import SidTreeModel
from semid_studio.gui.models.tables import RecordsTableModel

WORDS = ["mascara", "lipstick", "shampoo", "lotion", "serum", "polish", "brush", "perfume"]


def synthetic_run(n=700, levels=3, k=6, seed=0, collision=40):
    """Codes with clusters and some collisions, labels and titles that follow level 1."""
    rng = np.random.default_rng(seed)
    semantic = rng.integers(0, k, size=(n, levels))
    semantic[:collision] = semantic[0]  # a collision group bigger than one fetch batch of leaves
    codes = add_dedup_level(semantic)
    labels = encode_labels([f"cat{c % 4}" for c in semantic[:, 0]], field="category")
    titles = np.array([f"{WORDS[c % len(WORDS)]} item {i}" for i, c in enumerate(semantic[:, 0])], dtype=object)
    ids = np.array([f"I{i:04d}" for i in range(n)], dtype=object)
    return codes, labels, titles, ids


@pytest.fixture
def tree_model():
    """A tree over 700 items (with a 40-item collision group), fetched in batches of 16."""
    codes, labels, titles, ids = synthetic_run()
    model = SidTreeModel()
    model.BATCH = 16  # small batches so that fetchMore runs many times
    model.set_index(SidIndex(codes), codes, titles=titles, item_ids=ids, labels=labels, terms=TermIndex(list(titles)))
    return model, codes


def fetch_all(qtbot, model, parent=QModelIndex()):
    """Expand a node the way a view does: fetchMore until done, rows arriving from the event loop."""
    while model.canFetchMore(parent):
        model.fetchMore(parent)
        qtbot.waitUntil(lambda: not model.fetch_pending, timeout=2000)


def test_tree_passes_the_model_testers(qtbot, qtmodeltester):
    # Both testers walk the whole tree after every change (fetching everything), so the tree
    # here is small; the lazy behaviour is checked on the bigger tree below.
    codes, labels, titles, ids = synthetic_run(n=60, levels=2, k=3, collision=12)
    model = SidTreeModel()
    model.BATCH = 8
    qtmodeltester.check(model)  # Qt's C++ tester, attached through everything below
    model.set_index(SidIndex(codes), codes, titles=titles, item_ids=ids, labels=labels, terms=TermIndex(list(titles)))
    qtbot.waitUntil(lambda: not model.fetch_pending, timeout=20000)  # the tester fetched it all
    assert model.rowCount() == len(np.unique(codes[:, 0]))
    group = model.reveal(3).parent()
    assert model.rowCount(group) == len(model.items_of(group)) >= 12  # two batches of leaves
    model.set_highlighted([3, 100])
    qtmodeltester.check(model, force_py=True)  # and pytest-qt's Python tester
    model.set_index(None, None)
    model.set_index(SidIndex(codes), codes)  # no titles, labels or words: still a valid tree
    qtbot.waitUntil(lambda: not model.fetch_pending, timeout=20000)
    assert model.index(0, 2).data() == "" and model.index(0, 3).data() == ""


def test_tree_is_lazy_and_counts_add_up(qtbot, tree_model):
    model, codes = tree_model
    root = QModelIndex()
    assert model.rowCount(root) == 0 and model.hasChildren(root) and model.canFetchMore(root)
    model.fetchMore(root)
    assert model.rowCount(root) == 0  # fetchMore queues; the rows come with the event loop
    fetch_all(qtbot, model)
    assert model.rowCount(root) == len(np.unique(codes[:, 0]))
    first = model.index(0, 0)
    assert model.hasChildren(first) and model.rowCount(first) == 0  # children not created yet
    counts = [int(model.index(r, 1).data().replace(",", "")) for r in range(model.rowCount(root))]
    assert sum(counts) == len(codes)
    fetch_all(qtbot, model, first)
    assert model.rowCount(first) == len(model.children_counts(first))
    assert model.load_children(model.index(1, 0), all=True) == len(model.children_counts(model.index(1, 0)))


def test_node_columns_show_label_purity_and_words(qtbot, tree_model):
    model, codes = tree_model
    fetch_all(qtbot, model)
    index = model.index(0, 0)
    code = index.data(SidTreeModel.PrefixRole)[0]
    assert index.data() == f"<a_{code}>"
    members = np.flatnonzero(codes[:, 0] == code)
    assert model.index(0, 2).data() == f"cat{code % 4}"  # titles and labels follow level 1
    assert model.index(0, 3).data() == "100%"
    assert WORDS[code % len(WORDS)] in model.index(0, 4).data()
    assert set(model.items_of(index).tolist()) == set(members.tolist())
    assert f"{len(members)} items" in index.data(Qt.ToolTipRole)


def test_leaves_are_items_in_batches(qtbot, tree_model):
    model, codes = tree_model
    leaf_index = model.reveal(5)  # item 5 is in the 40-item collision group
    assert leaf_index.isValid() and leaf_index.data(SidTreeModel.ItemRole) == 5
    parent = leaf_index.parent()
    assert model.index_of_node(model.node_at(parent)) == parent
    group = model.items_of(parent)
    assert len(group) >= 40 and 5 in group
    assert model.rowCount(parent) == model.BATCH  # only the batch holding item 5 is loaded
    fetch_all(qtbot, model, parent)
    assert model.rowCount(parent) == len(group) and not model.canFetchMore(parent)
    leaf = model.index(3, 0, parent)
    assert not model.hasChildren(leaf) and not model.canFetchMore(leaf)
    item = leaf.data(SidTreeModel.ItemRole)
    assert leaf.data().startswith(f"<d_{codes[item, -1]}> I{item:04d}")
    assert model.index(3, 2, parent).data().endswith(f"item {item}")
    assert model.flags(leaf) & Qt.ItemIsDragEnabled
    assert items_from_mime(model.mimeData([leaf])) == [item]


def test_reveal_every_item_and_highlight_paths(tree_model):
    model, codes = tree_model
    for item in (0, 123, 699):
        index = model.reveal(item)
        assert index.data(SidTreeModel.ItemRole) == item
        assert index.data(SidTreeModel.PrefixRole) == tuple(codes[item])
    assert not model.reveal(10_000).isValid()
    model.set_highlighted([123])
    path = model.reveal(123)
    assert path.data(Qt.FontRole).bold()
    ancestor = path.parent().parent()
    assert ancestor.data(Qt.BackgroundRole) is not None
    other = next(model.index(r, 0) for r in range(model.rowCount()) if model.index(r, 0).data(SidTreeModel.PrefixRole)[0] != codes[123, 0])
    assert other.data(Qt.FontRole) is None
    assert model.index_for_prefix(tuple(codes[123, :2])) == ancestor


def test_reset_clears_the_tree(qtbot, tree_model):
    model, _codes = tree_model
    model.fetchMore(QModelIndex())  # a queued fetch of the old tree must not touch the new one
    model.set_index(None, None)
    qtbot.wait(20)  # let the queued fetch run: it must find nothing to do
    assert model.rowCount() == 0 and not model.hasChildren() and not model.canFetchMore(QModelIndex())


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "c.semid")
    s.add_items([{"item_id": f"I{i:05d}", "title": f"{WORDS[i % 8]} number {i}", "brand": f"B{i % 7}",
                  "categories": ["Beauty", WORDS[i % 8]]} for i in range(1000)])
    emb = s.save_embedding_set(name="e", model="m", template="t", strategy="content", cache_key="k",
                               vectors=np.zeros((1000, 2), np.float32))
    codes = add_dedup_level(np.column_stack([np.arange(1000) % 8, np.arange(1000) % 5]))
    from semid_studio.core.sids import sid_strings

    run = s.save_quantizer_run(name="r", embedding_set_id=emb, method="rq-kmeans", spec={}, seed=0, codes=codes,
                               sid_strings=sid_strings(codes), metrics={})
    yield s, run
    s.close()


def test_catalogue_pages_rows_on_demand(qtmodeltester, store):
    s, run = store
    model = CatalogueTableModel()
    model.set_project(s, run, ["brand", "categories"])
    assert model.rowCount() == 1000 and model.columns == ["item_id", "title", "sid", "brand", "categories"]
    assert not model._pages  # nothing read until a cell is asked for
    assert model.index(700, 0).data() == "I00700"
    assert list(model._pages) == [700 // 256]  # one page of rows read
    qtmodeltester.check(model)  # Qt's tester, attached through the changes below
    assert model.index(700, 2).data() == "<a_4><b_0><c_17>"  # 700 is the 18th item with tuple (4, 0)
    assert model.index(700, 4).data() == "Beauty › serum"  # WORDS[700 % 8]
    assert model.headerData(1, Qt.Horizontal) == "Title"
    model.set_order(np.array([999, 3, 500]))
    assert model.rowCount() == 3 and model.index(0, 0).data() == "I00999" and model.row_of(500) == 2
    model.set_run(None)
    assert model.index(1, 2).data() == ""
    sorts = []
    model.sortRequested.connect(lambda key, desc: sorts.append((key, desc)))
    model.sort(1, Qt.DescendingOrder)
    assert sorts == [("title", True)]
    mime = model.mimeData([model.index(0, 0), model.index(2, 1)])
    assert mime.hasFormat(ITEMS_MIME) and items_from_mime(mime) == [999, 500]
    qtmodeltester.check(model, force_py=True)
    model.set_project(None, None, [])
    assert model.rowCount() == 0


def test_records_table(qtmodeltester):
    model = RecordsTableModel(["Rank", "Title", "Score"], drag_items=True)
    qtmodeltester.check(model)
    model.set_rows([(1, "a", 0.91234), (2, "b", 0.5)], keys=[40, 7], marked=[1])
    assert model.index(0, 2).data() == "0.9123" and model.key(1) == 7
    assert model.index(1, 0).data(Qt.ForegroundRole) is not None
    assert items_from_mime(model.mimeData([model.index(1, 0)])) == [7]
    qtmodeltester.check(model, force_py=True)
    model.set_headers(["x"])
    assert model.columnCount() == 1 and model.rowCount() == 0
