"""Search baselines, metrics, query validation and the search CLI, on the bundled sample project."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from semid_studio.cli import main
from semid_studio.core import search as S
from semid_studio.core.errors import SemidError
from semid_studio.core.events import collect, drive
from semid_studio.core.store import ProjectStore

CHANCE_AT_10 = 10 / 3000  # the sample catalogue has 3,000 items


# --------------------------------------------------------------------------- query validation


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    (None, "empty"),
    ("the of and to", "only stop words"),
    ("?! ... ---", "no words"),
    ("x" * 100_000, "100,000 characters"),
    (42, "must be text"),
])
def test_bad_queries_get_one_clear_line(text, message):
    with pytest.raises(SemidError, match=message) as info:
        S.check_query(text)
    assert "\n" not in str(info.value)


def test_unknown_script_passes_with_a_warning():
    latin = S.text_scripts(["Waterproof Hiking Boots", "Coffee Maker"])
    checked = S.check_query("  什么电影  ", known_scripts=latin)
    assert checked.text == "什么电影"
    assert checked.warnings and "CJK" in checked.warnings[0]
    assert not S.check_query("hiking boots", known_scripts=latin).warnings
    assert not S.check_query("Фильм про космос", known_scripts=latin | {"CYRILLIC"}).warnings


# --------------------------------------------------------------------------- metrics


def test_search_metrics_by_hand():
    ranked = np.array([
        [3, 1, 2],     # target 1 at rank 2
        [5, 6, 7],     # target 0 absent
        [0, -1, -1],   # target 0 at rank 1
        [2, 2, 4],     # repeated item counts once: target 4 at rank 3
    ])
    targets = np.array([1, 0, 0, 4])
    head = np.zeros(8, dtype=bool)
    head[0] = True
    m = S.search_metrics(ranked, targets, ks=(1, 3), head_items=head)
    assert m["n"] == 4
    assert m["recall@1"] == pytest.approx(1 / 4)
    assert m["recall@3"] == pytest.approx(3 / 4)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(4)) / 4)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 3) / 4)
    assert m["head"]["n"] == 2 and m["head"]["recall@3"] == pytest.approx(0.5)
    assert m["torso"]["n"] == 2 and m["torso"]["recall@3"] == pytest.approx(1.0)
    # K beyond the row length cannot hit more; an empty group reports n = 0 only
    assert S.search_metrics(ranked, targets, ks=(10,))["recall@10"] == pytest.approx(3 / 4)
    assert S.search_metrics(ranked, targets, groups={"none": np.zeros(4, bool)})["none"] == {"n": 0}
    ci = S.bootstrap_ci(ranked, targets, (3,), n_boot=200, seed=0)
    assert ci["recall@3"][0] <= 0.75 <= ci["recall@3"][1]


def test_head_items_use_training_interactions_only(tmp_path):
    with ProjectStore.create(tmp_path / "p.semid") as store:
        store.add_items([{"item_id": f"i{i}", "title": f"item {i}"} for i in range(200)])
        rows = []
        for u in range(30):  # items 9 and 7 end every history: held out, so never head
            rows += [(f"u{u}", 1, 1.0), (f"u{u}", 20 + u, 2.0), (f"u{u}", 9, 3.0), (f"u{u}", 7, 4.0)]
        rows += [("v1", 5, 1.0), ("v1", 5, 2.0), ("v2", 5, 1.0), ("v2", 5, 2.0)]  # short: kept whole
        store.add_interactions(pd.DataFrame(rows, columns=["user_id", "item_idx", "ts"]))
        head = S.head_items(store, share=0.01)
        assert head.sum() == 2
        assert head[1] and head[5] and not head[7] and not head[9]


# --------------------------------------------------------------------------- BM25 and dense


def test_bm25_and_dense_find_items_well_above_chance(sample_project):
    with ProjectStore.open(sample_project) as store:
        test = store.queries_frame(split="test").iloc[::8]  # 300 held-out queries
        texts, _ = S.item_texts(store)
        ranked, info = S.rank_bm25(texts, test["text"].tolist(), 10)
        bm25 = S.search_metrics(ranked, test["item_idx"].to_numpy(), (10,))
        assert bm25["recall@10"] > 50 * CHANCE_AT_10
        assert info["bm25"]["package"] == "bm25s"
        ranked, info = drive(S.rank_dense(store, 1, test["text"].tolist(), 10))
        dense = S.search_metrics(ranked, test["item_idx"].to_numpy(), (10,))
        assert dense["recall@10"] > 50 * CHANCE_AT_10
        assert info["strategy"] == "content" and info["query_encoding"]["n"] == len(test)
        # a query in a script the catalogue does not use: BM25 finds nothing, nothing crashes
        idx, scores = S.BM25Index(texts).search(["什么电影", "hiking boots"], 5)
        assert (idx[0] == -1).all() and (scores[0] == 0).all()
        assert (idx[1] >= 0).all()


def test_evaluate_search_stores_the_report_with_its_settings(sample_project):
    with ProjectStore.open(sample_project) as store:
        report, events = collect(S.evaluate_search(store, "bm25", ks=(10, 30), bootstrap=100))
        m = report["metrics"]
        assert report["settings"]["split"] == "test" and report["settings"]["n_queries"] == store.query_count("test")
        assert 0 < m["recall@10"] <= m["recall@30"] <= 1 and 0 < m["mrr"] <= 1
        assert m["head"]["n"] + m["torso"]["n"] == m["n"]
        assert m["asked"]["n"] + m["never_asked"]["n"] == m["n"]
        stored = store.list_evaluations(task="search")[-1]
        assert stored["id"] == report["id"] and stored["split"] == "test"
        assert stored["settings"]["bm25"]["k1"] == 1.5 and stored["settings"]["ks"] == [10, 30]
        assert any("recall@10" in getattr(e, "text", "") for e in events)
        # a seeded sample of a large split, recorded with the report
        sample, _ = collect(S.evaluate_search(store, "bm25", max_queries=200, bootstrap=0, save=False))
        assert sample["settings"]["n_queries"] == 200
        assert sample["settings"]["n_split_queries"] == store.query_count("test")
        again, _ = collect(S.evaluate_search(store, "bm25", max_queries=200, bootstrap=0, save=False))
        assert again["metrics"]["recall@10"] == sample["metrics"]["recall@10"]


def test_evaluation_counts_unusable_stored_queries_as_misses(tmp_path):
    with ProjectStore.create(tmp_path / "p.semid") as store:
        store.add_items([{"item_id": "a", "title": "red wool scarf"}, {"item_id": "b", "title": "blue denim jacket"}])
        store.add_queries(pd.DataFrame({"text": ["red scarf", "the and of", "denim", "什么"],
                                        "item_idx": [0, 1, 1, 0], "split": ["validation"] * 4}))
        report, events = collect(S.evaluate_search(store, "bm25", ks=(1,), bootstrap=0, save=False))
        assert report["settings"]["split"] == "validation"
        assert report["settings"]["n_rejected"] == 1 and report["settings"]["rejected"] == {"only stop words": 1}
        assert report["metrics"]["recall@1"] == pytest.approx(0.5)
        assert any(getattr(e, "level", "") == "warning" for e in events)


def test_interactive_search_says_what_it_used(sample_project):
    with ProjectStore.open(sample_project) as store:
        result = S.search(store, "waterproof hiking boots", k=5)
        assert len(result.hits) == 5 and "not built yet" in result.note
        assert any("hiking boots" in (h["title"] or "").lower() for h in result.hits[:3])
        bm25 = S.search(store, "waterproof hiking boots", k=5, method="bm25")
        assert "hiking" in (bm25.hits[0]["title"] or "").lower()
        foreign = S.search(store, "什么电影", method="bm25")
        assert foreign.hits == [] and any("script" in w for w in foreign.warnings)
        with pytest.raises(SemidError, match="only stop words"):
            S.search(store, "the and")
        with pytest.raises(SemidError, match="-k"):
            S.search(store, "boots", k=0)


def test_cli_search_and_search_eval(sample_project, capsys):
    assert main(["search", str(sample_project), "coffee grinder", "-k", "3", "--method", "bm25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and out["method"] == "bm25"
    assert main(["search", str(sample_project), "x" * 100_000]) == 1
    assert "characters" in capsys.readouterr().err
    assert main(["search", str(sample_project), ""]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["search-eval", str(sample_project), "--method", "bm25", "-k", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["ks"] == [10] and report["metrics"]["recall@10"] > 0.3
