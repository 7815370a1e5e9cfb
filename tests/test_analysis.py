"""Inspector figures: labels and purity, distinctive words, PCA map, run comparison, similarity."""

import numpy as np
import pytest

from semid_studio.core.analysis.compare import compare_level1
from semid_studio.core.analysis.inspection import load_inspection
from semid_studio.core.analysis.items import SimilaritySearch, filter_items, format_value, item_rows, similar_items
from semid_studio.core.analysis.maps import project_2d
from semid_studio.core.analysis.nodes import (LabelCodes, TermIndex, code_usage, default_label_field, encode_labels,
                                              summarize_node, tokenize, usage_stats)
from semid_studio.core.analysis.reading import read_item_columns, read_vectors
from semid_studio.core.errors import SemidError
from semid_studio.core.store import ProjectStore

TITLES = [
    "Maybelline Great Lash Mascara, Blackest Black",
    "L'Oreal Voluminous Mascara, Carbon Black",
    "CoverGirl LashBlast Volume Mascara",
    "Neutrogena Hydro Boost Water Gel Moisturizer",
    "Olay Regenerist Micro-Sculpting Cream Moisturizer",
    "CeraVe Moisturizing Cream for Normal to Dry Skin",
    "OPI Nail Lacquer, Big Apple Red",
    "Essie Nail Polish, Ballet Slippers",
    "Sally Hansen Hard as Nails Nail Polish",
    "Burt's Bees Beeswax Lip Balm",
]
CATEGORIES = ["Eyes"] * 3 + ["Skin"] * 3 + ["Nails"] * 3 + [None]


def test_labels_are_coded_by_frequency_and_missing_is_minus_one():
    labels = encode_labels(["b", "a", "b", None, float("nan"), " "], field="cat")
    assert labels.names == ["b", "a"]
    assert labels.codes.tolist() == [0, 1, 0, -1, -1, -1]
    assert labels.name(1) == "a" and labels.name(-1) is None


def test_node_summary_gives_label_purity_and_words():
    labels = encode_labels(CATEGORIES, field="category")
    terms = TermIndex(TITLES)
    mascaras = summarize_node(np.array([0, 1, 2]), labels, terms)
    assert (mascaras.n_items, mascaras.label, mascaras.purity) == (3, "Eyes", 1.0)
    assert mascaras.keywords[0] == "mascara"
    mixed = summarize_node(np.array([0, 1, 3, 9]), labels, terms)
    assert mixed.label == "Eyes" and mixed.purity == pytest.approx(2 / 3)  # the unlabelled item does not count
    assert mixed.top_labels == [("Eyes", 2), ("Skin", 1)]
    nails = summarize_node(np.array([6, 7, 8]), None, terms)
    assert nails.label is None and nails.purity is None and "nail" in nails.keywords
    assert nails.readable() == ", ".join(nails.keywords)


def test_tokenize_drops_noise():
    assert tokenize("Tom &amp; Jerry 2 Pack of 12 oz SHAMPOO") == ["tom", "jerry", "shampoo"]
    assert tokenize(None) == [] and tokenize(float("nan")) == []  # missing titles


def test_usage_stats():
    even = usage_stats([5, 5, 5, 5])
    assert even.n_children == 4 and even.entropy_bits == pytest.approx(2.0) and even.evenness == pytest.approx(1.0)
    skewed = usage_stats([97, 1, 1, 1, 0])
    assert skewed.n_children == 4 and skewed.evenness < 0.2 and skewed.largest_share == pytest.approx(0.97)
    assert usage_stats([]).n_children == 0


def test_code_usage_counts_every_code():
    codes = np.array([[0, 1, 0], [2, 1, 0], [2, 0, 1]])
    assert code_usage(codes, 0, 4).tolist() == [1, 0, 2, 0]
    assert code_usage(codes, 1).tolist() == [1, 2]


def test_default_label_field():
    assert default_label_field(["title", "brand", "categories"]) == "categories"
    assert default_label_field(["title"]) is None


def test_projection_is_pca_and_samples_large_sets():
    rng = np.random.default_rng(0)
    # points spread mostly along one direction: the first axis must carry most variance
    base = rng.normal(size=(500, 1)) * 10
    vectors = np.hstack([base, rng.normal(size=(500, 5))]).astype(np.float32)
    proj = project_2d(vectors)
    assert proj.xy.shape == (500, 2) and proj.idx.tolist() == list(range(500))
    assert proj.explained[0] > 0.8
    assert abs(np.corrcoef(proj.xy[:, 0], base[:, 0])[0, 1]) > 0.99
    sampled = project_2d(vectors, max_points=100, seed=3)
    assert len(sampled.idx) == 100 and np.all(np.diff(sampled.idx) > 0)
    assert np.array_equal(sampled.idx, project_2d(vectors, max_points=100, seed=3).idx)  # seeded


def test_run_comparison_matches_scikit_learn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(1)
    a = rng.integers(0, 8, size=400)
    b = np.where(rng.random(400) < 0.8, (a * 3) % 11, rng.integers(0, 11, size=400))  # mostly a relabelling
    cmp = compare_level1(np.column_stack([a, a]), np.column_stack([b, b]))
    assert cmp.matrix.sum() == 400 and cmp.matrix.shape == (len(np.unique(a)), len(np.unique(b)))
    assert cmp.nmi == pytest.approx(normalized_mutual_info_score(a, b))
    assert cmp.ari == pytest.approx(adjusted_rand_score(a, b))
    # each A group's best match is its relabelled code
    assert [int(cmp.codes_b[m]) for m in cmp.best_match] == [(int(c) * 3) % 11 for c in cmp.codes_a]
    assert np.all(cmp.best_share > 0.6) and 0.8 < cmp.agreement <= 1
    assert sorted(cmp.column_order.tolist()) == list(range(len(cmp.codes_b)))


def test_identical_runs_agree_completely():
    codes = np.array([[0, 0], [0, 1], [1, 0], [2, 0]])
    cmp = compare_level1(codes, codes)
    assert cmp.nmi == pytest.approx(1.0) and cmp.ari == pytest.approx(1.0) and cmp.agreement == 1.0
    with pytest.raises(SemidError):
        compare_level1(codes[:0], codes)


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "a.semid")
    s.add_items([{"item_id": f"I{i:02d}", "title": t, "category": c, "price": 3.5 + i}
                 for i, (t, c) in enumerate(zip(TITLES, CATEGORIES))])
    yield s
    s.close()


def _add_run(store, vectors):
    emb = store.save_embedding_set(name="e", model="all-MiniLM-L6-v2", template="Title: {title}", strategy="content",
                                   cache_key="k", vectors=vectors)
    codes = np.array([[i // 3, i % 3, 0] for i in range(len(TITLES))])
    sids = [f"<a_{a}><b_{b}><c_{c}>" for a, b, c in codes]
    return store.save_quantizer_run(name="r", embedding_set_id=emb, method="rq-kmeans", spec={}, seed=0,
                                    codes=codes, sid_strings=sids, metrics={})


def test_filter_and_rows_in_sql(store):
    run = _add_run(store, np.eye(len(TITLES), 4, dtype=np.float32))
    assert filter_items(store).tolist() == list(range(10))
    assert filter_items(store, text="mascara").tolist() == [0, 1, 2]
    assert filter_items(store, text="i09").tolist() == [9]  # ids match too
    assert filter_items(store, field="category", value="nai").tolist() == [6, 7, 8]
    assert filter_items(store, sid_prefix="<a_1>", run_id=run).tolist() == [3, 4, 5]
    assert filter_items(store, order_by="title").tolist()[:2] == [9, 5]  # Burt's, CeraVe
    assert filter_items(store, order_by="price", descending=True).tolist()[0] == 9
    assert filter_items(store, order_by="sid", run_id=run, descending=True).tolist()[0] == 9
    with pytest.raises(SemidError):
        filter_items(store, sid_prefix="<a_1>")
    rows = item_rows(store, [4, 0], run_id=run)
    assert [r.idx for r in rows] == [4, 0] and rows[0].sid == "<a_1><b_1><c_0>"
    assert rows[1].attrs["category"] == "Eyes" and rows[1].title == TITLES[0]
    assert item_rows(store, [3])[0].sid is None


def test_format_value():
    assert format_value(["Beauty", "Makeup", None]) == "Beauty › Makeup"
    assert format_value(5.0) == "5" and format_value(None) == "" and format_value("A &amp; B") == "A & B"


@pytest.mark.slow
def test_similar_items_ranks_by_meaning(store):
    from semid_studio.core.embed import load_encoder

    vectors = load_encoder(None).encode(TITLES, convert_to_numpy=True)
    _add_run(store, vectors)
    top = similar_items(store, "something to make my eyelashes look longer", k=3)
    assert {i for i, _ in top} == {0, 1, 2}
    assert all(-1.0 <= s <= 1.0 for _, s in top) and top[0][1] >= top[1][1] >= top[2][1]
    search = SimilaritySearch.from_store(store)
    assert search.query("   ") == []
    assert search.query("dry skin cream", k=2)[0][0] in (4, 5)


def test_labels_dataclass_is_plain_data():
    labels = LabelCodes("f", np.array([0, -1], np.int32), ["x"])
    assert labels.name(0) == "x"


def test_chunked_readers_match_the_store(store):
    vectors = np.random.default_rng(0).normal(size=(len(TITLES), 7)).astype(np.float32)
    _add_run(store, vectors)
    store.save_embedding_set(name="second", model="m", template=None, strategy="content", cache_key="k2",
                             vectors=vectors[:, :3] * 2)
    for set_id in (1, 2, None):
        meta, got = read_vectors(store, set_id)
        expected = store.load_embedding_set(set_id)
        assert meta.id == expected.id and np.array_equal(got, expected.vectors) and got.dtype == np.float32
    with pytest.raises(SemidError):
        read_vectors(store, 99)
    ids, titles, values = read_item_columns(store, "category")
    frame = store.items_frame()
    assert ids.tolist() == frame["item_id"].tolist() and titles.tolist() == TITLES
    assert values == CATEGORIES
    _ids, _titles, prices = read_item_columns(store, "price")
    assert prices[0] == 3.5 and read_item_columns(store, "nope")[2] == [None] * len(TITLES)


def test_inspection_of_a_run(store):
    _add_run(store, np.eye(len(TITLES), 4, dtype=np.float32))
    inspection = load_inspection(store)
    assert inspection.n_levels == 2 and inspection.labels.field == "category"  # found by name
    assert inspection.titles.tolist() == TITLES and inspection.item_ids[0] == "I00"
    assert inspection.index.children(()) == [(0, 3), (1, 3), (2, 3), (3, 1)]
    assert summarize_node(inspection.index.items((0,)), inspection.labels, inspection.terms).label == "Eyes"
    with pytest.raises(SemidError, match="unknown label field"):
        load_inspection(store, label_field="colour")
    with pytest.raises(SemidError, match="needs a list field"):
        load_inspection(store, label_field="category[0]")  # a chosen field's problem is reported


# --------------------------------------------------------------------------- set fields (genres, tags)


def test_set_labels_count_every_value():
    labels = encode_labels([("Comedy", "Drama"), ("Drama",), None, ("Action", "Drama"), "Comedy"], field="genres")
    assert labels.is_set and labels.names == ["Drama", "Comedy", "Action"]
    node = summarize_node(np.array([0, 1, 2, 3]), labels)
    assert node.label == "Drama" and node.purity == 1.0  # all three labelled items carry Drama
    assert node.top_labels == [("Drama", 3), ("Comedy", 1), ("Action", 1)]
    tie = summarize_node(np.array([0, 4]), labels)
    assert tie.label == "Comedy" and tie.purity == 1.0
    assert summarize_node(np.array([1, 3]), labels).label == "Drama"


@pytest.mark.shared_data
def test_movielens_branch_label_is_its_most_common_genre(tmp_path):
    """ml-100k genres are sets listed alphabetically: a branch is labelled with the genre most of
    its films carry, not with the alphabetically first genre of each film."""
    from collections import Counter

    from conftest import shared_dataset
    from semid_studio.core.events import collect
    from semid_studio.core.importing import import_data
    from semid_studio.core.quantize import make_spec, quantize_project

    folder = shared_dataset("movielens_100k") / "grouplens_raw"
    with ProjectStore.create(tmp_path / "ml.semid") as store:
        report, _ = collect(import_data(store, items=folder / "u.item"))
        assert store.get_meta("field_kinds") == {"genres": "set"}  # detected, stored with the field
        assert any("'genres' is read as a set" in n for n in report.files[0].notes)
        genres = store.items_frame()["genres"].tolist()
        # vectors from the genres themselves, so the branches are genre groups; a real quantiser
        names = sorted({g for gs in genres for g in gs})
        vectors = np.array([[float(n in gs) for n in names] for gs in genres], dtype=np.float32)
        vectors += np.random.default_rng(0).normal(0, 0.05, vectors.shape).astype(np.float32)
        np.save(tmp_path / "v.npy", vectors)
        (tmp_path / "ids.txt").write_text("\n".join(store.item_ids()) + "\n")
        from semid_studio.core.importing import import_embeddings

        import_embeddings(store, tmp_path / "v.npy", ids_path=tmp_path / "ids.txt")
        spec = make_spec("rq-kmeans", overrides={"levels": "2", "codebook_size": "8", "seed": "0"})
        run_id, _ = collect(quantize_project(store, spec=spec, label_field="genres"))
        inspection = load_inspection(store, run_id)
        run = store.load_quantizer_run(run_id, with_arrays=False)
    assert inspection.labels.is_set
    old_style_differs = 0
    share_sum = 0
    for code, _n in inspection.index.children(()):
        idxs = inspection.index.items((code,))
        counts = Counter(g for i in idxs for g in genres[i])
        best = max(counts.values())
        node = summarize_node(idxs, inspection.labels)
        assert node.label.split(" / ")[0] in {g for g, n in counts.items() if n == best}
        labelled = sum(1 for i in idxs if genres[i])
        assert node.purity == pytest.approx(best / labelled)
        share_sum += best
        first = Counter(genres[i][0] for i in idxs if genres[i]).most_common(1)[0][0]
        old_style_differs += first not in {g for g, n in counts.items() if n == best}
    assert old_style_differs > 0  # the old path reading (first genre) labels some branch wrongly
    n_labelled = sum(1 for gs in genres if gs)
    assert run.metrics["purity"]["level_1"] == pytest.approx(share_sum / n_labelled, abs=1e-4)
    assert run.metrics["purity"]["field_kind"] == "set"
