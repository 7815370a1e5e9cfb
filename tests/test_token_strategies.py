"""Token strategies of the joint model (Separate, Prefix-share) on the real sample project.

One project copy gets a small rec-tuned embedding set (PPMI-SVD) beside its content set; the
content set is the search side. A Separate strategy is quantised and a tiny joint model trained
on it, then a Prefix-share strategy and a second tiny model (the first model keeps decoding
its own tables). Checked: the two tables share exactly what they should (nothing / level 1),
items are unique within each task's table, each task decodes only real items of its own table
through its own trie and the results map back to the right item ids, the CLI end to end, and
bad input.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from semid_studio.cli import main
from semid_studio.core import quantize
from semid_studio.core.search import strategies as G
from semid_studio.core.search import token_strategies as T
from semid_studio.core.errors import SemidError
from semid_studio.core.events import collect, drive
from semid_studio.core.generative import make_spec
from semid_studio.core.generative.data import Sequences, make_split
from semid_studio.core.generative.decode import beam_search
from semid_studio.core.generative.joint import (evaluate_joint, load_joint, make_joint_spec, rank_texts,
                                                text_features, train_joint)
from semid_studio.core.generative.tokens import SidVocab
from semid_studio.core.store import ProjectStore

TINY = {"max_steps": 150, "eval_every": 75, "valid_users": 300}
QSPEC = {"levels": "3", "codebook_size": "16"}  # small codebooks: collisions, so the dedup level is exercised


def _train(store):
    model_id, _ = collect(train_joint(store, make_spec("tiny", TINY), make_joint_spec({"mix": 0.5}), preset="tiny"))
    return model_id


@pytest.fixture(scope="module")
def project(sample_project_master, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens.semid"
    shutil.copyfile(sample_project_master, path)
    out = {"path": path}
    with ProjectStore.open(path) as store:
        content = store.list_embedding_sets()[0].id
        rec_set, _ = collect(G.build_embedding(store, "rec", G.make_spec(overrides={"rec_dim": 16})))
        spec = quantize.make_spec("rq-kmeans", overrides=QSPEC)
        for strategy in ("separate", "prefix-share"):
            ts = drive(T.build_token_strategy(store, strategy, spec=spec, search_set=content, rec_set=rec_set))
            out[strategy] = (ts, _train(store))
        out["sets"] = (content, rec_set)
    return out


@pytest.mark.parametrize("strategy", ["separate", "prefix-share"])
def test_tables_share_exactly_their_prefix_and_items_stay_unique(project, strategy):
    ts, model_id = project[strategy]
    with ProjectStore.open(project["path"]) as store:
        tables = T.task_tables(store, ts.runs)
        vocab = SidVocab.from_dict(store.get_model(model_id).spec["vocab"])
        assert store.get_model(model_id).spec["tokens"] == ts.to_dict()
        assert {store.load_quantizer_run(r, with_arrays=False).embedding_set_id for r in ts.runs.values()} == \
            set(project["sets"])
    rec, search = tables["rec"], tables["search"]
    n, L1 = rec.shape
    for table in (rec, search):  # every item has its own SID within each task (the dedup level did its job)
        assert len(np.unique(table, axis=0)) == n
    table = T.joint_table(rec, search, ts.shared_levels)
    vocab.check_codes(table.codes)
    tokens_r = table.task_codes("rec") + np.asarray(vocab.level_offsets)
    tokens_s = table.task_codes("search") + np.asarray(vocab.level_offsets)
    shared = 1 if strategy == "prefix-share" else 0
    assert ts.shared_levels == shared
    if shared:  # level 1: the same code, the same token, for every item
        assert (rec[:, 0] == search[:, 0]).all() and (tokens_r[:, 0] == tokens_s[:, 0]).all()
    assert (rec[:, shared:-1] != search[:, shared:-1]).any()  # the task-specific levels really differ
    for level in range(shared, L1 - 1):  # after the shared prefix: distinct vocabulary ranges
        assert not set(tokens_r[:, level]) & set(tokens_s[:, level]), level
        assert tokens_r[:, level].max() < tokens_s[:, level].min()


@pytest.mark.parametrize("strategy", ["separate", "prefix-share"])
def test_each_task_decodes_real_items_of_its_own_table(project, strategy):
    ts, model_id = project[strategy]
    with ProjectStore.open(project["path"]) as store:
        tables = T.task_tables(store, ts.runs)
        jm = load_joint(store, model_id)
        test = store.queries_frame(split="test").iloc[:300]
        feats = drive(text_features(store, jm.joint, test["text"].tolist(), encoder=jm.encoder))
        probes = make_split(Sequences.from_frame(store.interactions_frame()), "loo").test
        report = drive(evaluate_joint(store, [model_id], max_queries=50, rec=False, bootstrap=0, save=False))
    n = len(tables["rec"])
    search_view, rec_view = jm.view("search"), jm.view("rec")
    assert sorted(search_view.trie.items.tolist()) == list(range(n, 2 * n)) and search_view.shift == n
    assert sorted(rec_view.trie.items.tolist()) == list(range(n)) and rec_view.shift == 0
    # search: every result is a real item, written with that item's SID of the search table
    jm.view("search")
    items, _, codes = rank_texts(jm.model, search_view.trie, feats, k=10, beam=20, shift=search_view.shift)
    assert (items >= 0).all() and (items < n).all()
    np.testing.assert_array_equal(search_view.stored_codes(codes), tables["search"][items])
    # rec: every result is a real item, written with that item's SID of the rec table
    jm.view("rec")
    rows = np.arange(300)
    dec = beam_search(jm.model, rec_view.trie, [probes.history(int(i)) for i in rows], beam=20, k=10)
    assert (dec.items >= 0).all() and (dec.items < n).all()
    np.testing.assert_array_equal(dec.codes, tables["rec"][dec.items])
    # results map back to the right item ids: far above chance (10 / 3000) on held-out queries and users
    search_r10 = float((items == test["item_idx"].to_numpy()[:, None]).any(1).mean())
    rec_r10 = float((dec.items == probes.targets[rows][:, None]).any(1).mean())
    assert search_r10 > 0.1 and rec_r10 > 0.02, (search_r10, rec_r10)
    assert report["settings"]["models"][0]["tokens"] == strategy


def test_cli_quantize_tokens_info_train_and_search(project, tmp_path, capsys):
    # a copy of the module's project: its rec set and cached query states are reused
    sample_project = tmp_path / "cli.semid"
    shutil.copyfile(project["path"], sample_project)
    p = str(sample_project)
    search_set, rec_set = project["sets"]
    assert main(["quantize", p, "--tokens", "separate", "--search-set", str(search_set), "--rec-set", str(rec_set),
                 "--levels", "2", "--codebook-size", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens"]["strategy"] == "separate" and set(out["runs"]) == {"search", "rec"}
    assert main(["info", p]) == 0
    assert "token strategy: separate" in capsys.readouterr().out
    assert main(["info", p, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["token_strategy"]["runs"] == out["tokens"]["runs"] and info["active_run"] == out["runs"]["rec"]["run"]
    assert main(["train", p, "--task", "joint", "--preset", "tiny", "--set", "max_steps=20", "--set", "eval_every=20",
                 "--set", "valid_users=100", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)
    assert main(["search", p, "trekking poles", "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    with ProjectStore.open(sample_project) as store:
        assert store.get_model(model["model_id"]).spec["tokens"]["strategy"] == "separate"
        search_run = out["runs"]["search"]["run"]
        # the SID shown is the item's SID in the search table, as 'semid export' of that run writes it
        assert len(hits["hits"]) == 5
        assert all(h["sid"] == store.sid_of(search_run, h["idx"]) for h in hits["hits"])
    # a plain 'semid quantize' afterwards is today's behaviour: one shared table, the strategy ends
    # (sized to the catalogue: 2 x 32 on 3,000 items would be degenerate and not made active)
    assert main(["quantize", p, "--json"]) == 0
    capsys.readouterr()
    with ProjectStore.open(sample_project) as store:
        assert T.active_token_strategy(store) is None
    assert main(["info", p]) == 0
    assert "token strategy: shared" in capsys.readouterr().out


def test_bad_token_input_gets_a_clear_error(sample_project, capsys):
    p = str(sample_project)
    # the sample project has one (content) embedding set: nothing for the rec side
    assert main(["quantize", p, "--tokens", "separate"]) == 1
    err = capsys.readouterr().err
    assert "second embedding set" in err and "rec" in err
    with pytest.raises(SystemExit):  # argparse: unknown strategy
        main(["quantize", p, "--tokens", "mixed"])
    assert "invalid choice" in capsys.readouterr().err
    with ProjectStore.open(sample_project) as store:
        with pytest.raises(SemidError, match="unknown token strategy 'mixed'"):
            drive(T.build_token_strategy(store, "mixed"))
        with pytest.raises(SemidError, match="same embedding set"):
            drive(T.build_token_strategy(store, "separate", search_set=1, rec_set=1))
        with pytest.raises(SemidError, match="no embedding set #99"):
            drive(T.build_token_strategy(store, "separate", search_set=1, rec_set=99))
        with pytest.raises(SemidError, match="at least 2 semantic levels"):
            rec_set, _ = collect(G.build_embedding(store, "rec", G.make_spec(overrides={"rec_dim": 8})))
            drive(T.build_token_strategy(store, "prefix-share", spec=quantize.make_spec("rq-kmeans", overrides={
                "levels": "1", "codebook_size": "16"}), search_set=1, rec_set=rec_set))
        assert T.active_token_strategy(store) is None  # nothing half-made is in force
    assert main(["quantize", p, "--tokens", "separate", "--embedding-set", "1"]) == 1
    assert "--search-set" in capsys.readouterr().err
    assert main(["quantize", p, "--rec-set", "1"]) == 1
    assert "apply to --tokens separate" in capsys.readouterr().err
