"""Query generation, splits and the training-data guard, on the bundled sample project."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from semid_studio.cli import main
from semid_studio.core.search import queries as Q
from semid_studio.core.errors import SemidError
from semid_studio.core.events import collect
from semid_studio.core.store import ProjectStore


def _generate(store: ProjectStore, method: str, **overrides) -> dict:
    spec = Q.make_spec(method, overrides=overrides)
    protocol, _ = collect(Q.generate_queries(store, spec))
    return protocol


def test_known_item_queries_fixed_counts_protocol_and_seed(sample_project):
    with ProjectStore.open(sample_project) as store:
        imported_before = store.queries_frame(source="imported")
        protocol = _generate(store, "known-item", per_item=2, test_per_item=1, seed=3)
        gen = store.queries_frame(source=Q.GENERATED)
        n_items = store.item_count()
        # a fixed number per item, and the protocol with its seed beside every row
        per_item = gen.groupby(["item_idx", "split"]).size().unstack(fill_value=0)
        assert len(per_item) == n_items
        assert (per_item["train"] == 2).mean() > 0.99 and (per_item["test"] == 1).mean() > 0.99
        assert protocol["n_train"] == int((gen["split"] == "train").sum())
        stored = {json.dumps(r["protocol"], sort_keys=True) for r in Q.query_protocols(store)
                  if r["source"] == Q.GENERATED}
        assert len(stored) == 1
        prot = json.loads(stored.pop())
        assert prot["method"] == "known-item" and prot["seed"] == 3 and prot["per_item"] == 2
        # imported queries are untouched
        pd.testing.assert_frame_equal(store.queries_frame(source="imported"), imported_before)
        # within an item, train and test queries differ
        for _, grp in gen.groupby("item_idx"):
            train = set(grp.loc[grp["split"] == "train", "text"])
            assert not train & set(grp.loc[grp["split"] == "test", "text"])
        # generated terms come from the item's own text
        item = store.get_items([5])[0]
        words = set(Q.tokenize(" ".join(str(v) for v in item.values() if v is not None)))
        for text in gen.loc[gen["item_idx"] == 5, "text"]:
            assert set(text.split()) <= words
        # same seed -> same queries (replacing the earlier ones); another seed -> others
        first = gen["text"].tolist()
        _generate(store, "known-item", per_item=2, test_per_item=1, seed=3)
        assert store.queries_frame(source=Q.GENERATED)["text"].tolist() == first
        _generate(store, "known-item", per_item=2, test_per_item=1, seed=4)
        assert store.queries_frame(source=Q.GENERATED)["text"].tolist() != first


def test_exclude_title_and_category_path_and_template(sample_project):
    with ProjectStore.open(sample_project) as store:
        _generate(store, "known-item", per_item=3, test_per_item=1, exclude_title=True)
        gen = store.queries_frame(source=Q.GENERATED)
        items = store.items_frame()
        for idx in range(0, 3000, 97):
            title_words = set(Q.tokenize(items.loc[idx, "title"]))
            for text in gen.loc[gen["item_idx"] == idx, "text"]:
                assert not set(text.split()) & title_words, (text, items.loc[idx, "title"])

        protocol = _generate(store, "category-path", per_item=2, test_per_item=1)
        gen = store.queries_frame(source=Q.GENERATED)
        for idx in range(0, 3000, 97):
            path = items.loc[idx, "categories"]
            leaf_terms = set(Q.content_terms(path[-1]))
            for text in gen.loc[gen["item_idx"] == idx, "text"]:
                terms = set(text.split())
                assert terms <= set(Q.content_terms(" ".join(path)))  # only path terms (Ai et al.)
                assert leaf_terms <= terms  # always the leaf category
        assert protocol["reference"].startswith("Ai et al.")

        _generate(store, "template", per_item=3, test_per_item=1)
        gen = store.queries_frame(source=Q.GENERATED)
        for idx in range(0, 3000, 97):
            item = items.loc[idx]
            anchors = [c.lower() for c in item["categories"][-2:]] + [str(item["brand"]).lower()]
            for text in gen.loc[gen["item_idx"] == idx, "text"]:
                assert any(a in text for a in anchors), text
        assert gen["text"].str.contains(r"under \$|\$\d+ to \$|over \$").any()  # price bands


def test_generation_errors_are_clear(sample_project, tmp_path):
    with pytest.raises(SemidError, match="unknown query generator"):
        Q.make_spec("llm")
    with pytest.raises(SemidError, match="per_item"):
        Q.make_spec("known-item", overrides={"per_item": "many"})
    with pytest.raises(SemidError, match="unknown query setting"):
        Q.make_spec("known-item", overrides={"colour": "red"})
    with ProjectStore.open(sample_project) as store:
        with pytest.raises(SemidError, match="no field"):
            _generate(store, "category-path", category_field="genre_tree")
    empty = ProjectStore.create(tmp_path / "empty.semid")
    with pytest.raises(SemidError, match="catalogue is empty"):
        collect(Q.generate_queries(empty, Q.QuerySpec()))
    empty.close()


def test_split_for_selection_is_deterministic_disjoint_and_train_only(sample_project):
    with ProjectStore.open(sample_project) as store:
        train = store.queries_frame(split="train")
        a_train, a_dev = Q.split_for_selection(train, 0.1, seed=1)
        b_train, b_dev = Q.split_for_selection(train.sample(frac=1.0, random_state=0), 0.1, seed=1)
        assert sorted(a_dev["id"]) == sorted(b_dev["id"])  # independent of row order
        assert not set(a_dev["id"]) & set(a_train["id"])
        assert len(a_dev) + len(a_train) == len(train)
        assert abs(len(a_dev) - 0.1 * len(train)) <= 1
        assert (a_dev["split"] == "dev").all()
        _, c_dev = Q.split_for_selection(train, 0.1, seed=2)
        assert set(c_dev["id"]) != set(a_dev["id"])
        with pytest.raises(SemidError, match="held-out"):
            Q.split_for_selection(store.queries_frame(), 0.1)


def test_guard_catches_held_out_queries_by_id_and_by_text(sample_project):
    with ProjectStore.open(sample_project) as store:
        train = store.queries_frame(split="train")
        test = store.queries_frame(split="test")
        Q.assert_training_only(store, train)  # the clean case passes
        # a test row relabelled as train in the frame is still caught (checked against the file)
        leaked = pd.concat([train, test.head(1).assign(split="train")])
        with pytest.raises(SemidError, match="held-out queries would reach training"):
            Q.assert_training_only(store, leaked)
        # the same test query re-entered under a new id is caught by its text and item
        retyped = test.head(1).assign(split="train", id=10**9, text=lambda f: f["text"].str.upper())
        with pytest.raises(SemidError, match="repeat a held-out query"):
            Q.assert_training_only(store, pd.concat([train, retyped]))
        # and dev rows must stay out of training
        tr, dev = Q.split_for_selection(train, 0.2)
        with pytest.raises(SemidError, match="dev"):
            Q.assert_training_only(store, train, exclude_ids=dev["id"])
        Q.assert_training_only(store, tr, exclude_ids=dev["id"])


def test_heldout_split_prefers_validation(tmp_path):
    with ProjectStore.create(tmp_path / "p.semid") as store:
        store.add_items([{"item_id": f"i{i}", "title": f"item {i}"} for i in range(3)])
        store.add_queries(pd.DataFrame({"text": ["a b", "c d"], "item_idx": [0, 1], "split": ["train", "test"]}))
        assert Q.heldout_split(store) == "test"
        store.add_queries(pd.DataFrame({"text": ["e f"], "item_idx": [2], "split": ["validation"]}))
        assert Q.heldout_split(store) == "validation"
        assert Q.heldout_split(store, "test") == "test"
        with pytest.raises(SemidError, match="not on 'train'"):
            Q.heldout_split(store, "train")
        with pytest.raises(SemidError, match="no queries in split 'dev'"):
            Q.heldout_split(store, "dev")


def test_cli_queries_generate_and_list(sample_project, capsys):
    assert main(["queries", str(sample_project), "--generate", "template", "--per-item", "2",
                 "--test-per-item", "1", "--seed", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "template" and out["seed"] == 5 and out["n_train"] > 0
    assert main(["queries", str(sample_project)]) == 0
    listing = capsys.readouterr().out
    assert "generated" in listing and "imported" in listing
    assert main(["queries", str(sample_project), "--generate", "known-item", "--per-item", "0"]) == 1
    assert "per-item" in capsys.readouterr().err


def test_tokenize_handles_any_script():
    assert Q.tokenize("Men's Hiking-Boots, 2-Person!") == ["men's", "hiking", "boots", "2", "person"]
    assert Q.tokenize("什么电影 Фильм") == ["什么电影", "фильм"]
    assert Q.content_terms("the best of the rest") == ["best", "rest"]
    assert np.array_equal(Q.tokenize(""), [])


@pytest.mark.parametrize("method", ["known-item", "template"])
def test_generated_queries_never_repeat_an_imported_query_for_the_same_item(sample_project, method):
    # the sample project ships imported train and test queries; generated ones that equal them
    # would put one request on both sides of a split, and training would refuse to start
    with ProjectStore.open(sample_project) as store:
        _generate(store, method)
        imported = store.queries_frame(source="imported")
        generated = store.queries_frame(source=Q.GENERATED)
        key = lambda f: set(zip(f["text"].str.strip().str.lower(), f["item_idx"]))  # noqa: E731
        assert not key(imported) & key(generated)
        train = store.queries_frame()
        Q.assert_training_only(store, train[train["split"] == Q.TRAIN_SPLIT], who="test")
