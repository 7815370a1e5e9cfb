"""The generative recommender on the real sample project: splits, trie, training, beam search
against exact scoring, resume, cold start, evaluation, CLI and bad input.

One tiny model is trained once per module (a few hundred steps, seconds) and shared by the
read-only tests; tests that change the project work on their own copy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from semid_studio.core.errors import SemidError
from semid_studio.core.events import CancelToken, Cancelled, Metric, PartialResult, collect, drive
from semid_studio.core.generative import evaluate_model, load_model, make_spec, recommend, train_model
from semid_studio.core.generative.baselines import Markov, Popularity, SASRecSpec
from semid_studio.core.generative.data import Probes, Sequences, make_split, training_windows
from semid_studio.core.generative.decode import beam_search, exact_scores, sample
from semid_studio.core.generative.metrics import ranking_metrics
from semid_studio.core.generative.model import TigerModel
from semid_studio.core.generative.tokens import SidVocab
from semid_studio.core.generative.train import load_split, make_vocab, same_spec
from semid_studio.core.generative.trainer import Trainer
from semid_studio.core.generative.trie import SidTrie
from semid_studio.core.sids import default_level_sizes
from semid_studio.core.store import ProjectStore

TINY = {"max_steps": 300, "eval_every": 100, "valid_users": 0}


@pytest.fixture(scope="module")
def project_master(sample_project_master):
    """The sample project (read-only here; copy it before changing it)."""
    return sample_project_master


@pytest.fixture(scope="module")
def trained(project_master, tmp_path_factory):
    """A copy of the sample project with one tiny model trained on it (module-wide)."""
    path = tmp_path_factory.mktemp("gen") / "trained.semid"
    shutil.copyfile(project_master, path)
    with ProjectStore.open(path) as store:
        model_id, events = collect(train_model(store, make_spec("tiny", TINY), preset="tiny"))
    return path, model_id, events


def _split(path, kind="loo"):
    with ProjectStore.open(path) as store:
        seqs = Sequences.from_frame(store.interactions_frame())
        run = store.load_quantizer_run()
    return seqs, make_split(seqs, kind), run.codes


# --------------------------------------------------------------------------- data and metrics


def test_leave_one_out_and_temporal_splits():
    seqs = Sequences.from_lists(["u1", "u2", "u3"], [np.array([1, 2, 3, 4]), np.array([5, 6]), np.array([7, 8, 9])],
                                [np.array([1.0, 2, 3, 4]), np.array([1.0, 9]), np.array([5.0, 6, 7])])
    sp = make_split(seqs, "loo")
    assert sp.valid.targets.tolist() == [3, 8] and sp.test.targets.tolist() == [4, 9]
    assert sp.test.history(0).tolist() == [1, 2, 3] and sp.valid.history(0).tolist() == [1, 2]
    assert sp.train.seq(0).tolist() == [1, 2] and sp.train.seq(1).tolist() == [5, 6]  # too short: train only
    windows = training_windows(sp.train, max_history=20)
    assert windows.n_targets == 1 + 1 + 0  # each training sequence of n items gives n - 1 targets
    # long sequences are cut from the end; every target lands in exactly one window
    long = Sequences.from_lists(["u"], [np.arange(50)])
    w = training_windows(long, max_history=20)
    assert w.n_targets == 49 and w.lengths.max() == 21
    tp = make_split(Sequences.from_lists(["a", "b"], [np.arange(10), np.arange(10, 20)],
                                         [np.arange(10.0), np.arange(10.0)]), "temporal")
    assert (tp.train.ts < tp.info["t_valid"]).all()
    for i in range(len(tp.test)):
        assert len(tp.test.history(i)) >= 1


def test_metrics_count_each_item_once():
    ranked = np.array([[3, 3, 5, 7], [1, 2, 3, 4], [9, 8, 7, 6]])
    targets = np.array([5, 4, 0])
    m = ranking_metrics(ranked, targets, ks=(2, 4))
    # row 0: the repeated 3 counts once, so 5 sits at rank 2 (0-based) -> outside top-2
    assert m["recall@2"] == 0.0
    assert m["recall@4"] == pytest.approx(2 / 3)
    assert m["ndcg@4"] == pytest.approx((1 / np.log2(4) + 1 / np.log2(5)) / 3)


def test_spec_presets_and_bad_overrides():
    paper = make_spec("paper")
    assert (paper.encoder_layers, paper.decoder_layers, paper.n_heads, paper.head_dim, paper.d_model,
            paper.d_ff, paper.dropout) == (4, 4, 6, 64, 128, 1024, 0.1)
    assert make_spec("laptop", {"dropout": "0.3", "tie_output": "false"}).tie_output is False
    with pytest.raises(SemidError, match="unknown preset"):
        make_spec("huge")
    with pytest.raises(SemidError, match="unknown spec field 'dropuot'"):
        make_spec("tiny", {"dropuot": "0.1"})
    with pytest.raises(SemidError, match="expects float"):
        make_spec("tiny", {"lr": "fast"})
    with pytest.raises(SemidError, match="must be one of"):
        make_spec("tiny", {"schedule": "linear"})
    with pytest.raises(SemidError, match="ema_decay"):
        make_spec("tiny", {"ema_decay": "1.5"})
    # a model stored before a field existed is still found for resuming with that field's default
    tiny = make_spec("tiny")
    older = {k: v for k, v in tiny.to_dict().items() if k != "ema_decay"}
    assert same_spec(older, tiny) and not same_spec(older, make_spec("tiny", {"ema_decay": "0.99"}))
    assert not same_spec({**older, "a_field_from_the_future": 1}, tiny)


# --------------------------------------------------------------------------- trie and decoding


def test_trie_constrained_decoding_only_yields_real_items(project_master):
    seqs, sp, codes = _split(project_master)
    vocab = SidVocab(tuple(default_level_sizes(codes)), len(codes))
    trie = SidTrie.build(codes, vocab.level_sizes)
    assert trie.n_items == len(codes)
    assert (trie.lookup(codes) == np.arange(len(codes))).all()
    torch.manual_seed(0)
    model = TigerModel(make_spec("tiny"), vocab)  # untrained: its guesses are as wild as they get
    model.set_catalogue(codes)
    hists = [sp.test.history(i) for i in range(64)]
    dec = beam_search(model, trie, hists, beam=20, k=20)
    assert ((dec.items >= 0) & (dec.items < len(codes))).all()
    assert dec.invalid_rate == 0.0
    for row in dec.items:
        assert len(set(row.tolist())) == len(row), "beams must be distinct items"
    assert (np.diff(dec.scores, axis=1) <= 1e-6).all(), "results come best first"
    free = beam_search(model, trie, hists, beam=20, k=20, constrained=False)
    assert 0.0 <= free.invalid_rate <= 1.0
    assert (free.items[free.items >= 0] < len(codes)).all()
    # excluding the history never returns a history item
    ex = beam_search(model, trie, hists, beam=20, k=10, exclude=hists)
    for row, h in zip(ex.items, hists):
        assert not set(row.tolist()) & set(h.tolist())
        assert (row >= 0).all()


def test_trained_model_beats_popularity(trained):
    path, model_id, events = trained
    seqs, sp, codes = _split(path)
    with ProjectStore.open(path) as store:
        lm = load_model(store, model_id)
        rec = store.get_model(model_id)
    assert rec.status == "done" and rec.step == TINY["max_steps"]
    assert [h["step"] for h in rec.history] == [100, 200, 300]
    assert rec.best_step in (100, 200, 300)
    assert any(isinstance(e, Metric) and e.split == "valid" for e in events)
    running = [e.value for e in events if isinstance(e, Metric) and e.split == "running"]
    assert running and running[-1] < running[0]  # the live loss curve the app plots falls
    hists = [sp.valid.history(i) for i in range(len(sp.valid))]
    ranked = np.concatenate([beam_search(lm.model, lm.trie, hists[i:i + 256], beam=20, k=10).items
                             for i in range(0, len(hists), 256)])
    ours = ranking_metrics(ranked, sp.valid.targets, (10,))
    pop = ranking_metrics(Popularity(len(codes)).fit(sp.train).recommend(sp.valid, 10), sp.valid.targets, (10,))
    assert ours["recall@10"] == pytest.approx(rec.best_metric if lm.spec.select_metric == "recall@10"
                                              else ours["recall@10"])
    assert ours["recall@10"] > 2 * pop["recall@10"] and ours["recall@10"] - pop["recall@10"] > 0.03, (ours, pop)


def test_beam_search_agrees_with_exact_scoring(trained):
    path, model_id, _ = trained
    seqs, sp, _ = _split(path)
    with ProjectStore.open(path) as store:
        lm = load_model(store, model_id)
    for i in range(0, 40, 8):
        h = sp.test.history(i)
        exact = exact_scores(lm.model, lm.trie, h)
        assert np.isfinite(exact).all()
        assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-3), "constrained scores are a distribution"
        dec = beam_search(lm.model, lm.trie, [h], beam=50, k=5)
        top = np.argsort(-exact, kind="stable")[:5]
        assert dec.items[0].tolist() == top.tolist()
        assert np.allclose(dec.scores[0], exact[top], atol=1e-4)


def test_sampling_gives_distinct_items_and_more_diversity_when_hotter(trained):
    path, model_id, _ = trained
    seqs, sp, codes = _split(path)
    with ProjectStore.open(path) as store:
        lm = load_model(store, model_id)
    hists = [sp.test.history(i) for i in range(100)]
    cold = sample(lm.model, lm.trie, hists, k=10, temperature=0.5, seed=1)
    again = sample(lm.model, lm.trie, hists, k=10, temperature=0.5, seed=1)
    hot = sample(lm.model, lm.trie, hists, k=10, temperature=3.0, seed=1)
    assert (cold.items == again.items).all(), "sampling is deterministic for a seed"
    for row in hot.items:
        assert len(set(row.tolist())) == 10 and (row >= 0).all()
    # hotter sampling spreads over more first-level codes
    assert len(np.unique(codes[hot.items.ravel(), 0])) > len(np.unique(codes[cold.items.ravel(), 0]))


# --------------------------------------------------------------------------- resume, cold start


@pytest.mark.parametrize("ema_decay", [0.0, 0.9], ids=["raw-weights", "weight-average"])
def test_resume_after_interrupt_gives_the_same_model(project_master, tmp_path, ema_decay):
    # also the other model variants: a generated dedup level and per-node output embeddings
    overrides = {"max_steps": 60, "eval_every": 20, "valid_users": 200, "seed": 3, "dedup_token": "model",
                 "node_output": True, "ema_decay": ema_decay}
    a, b = tmp_path / "a.semid", tmp_path / "b.semid"
    shutil.copyfile(project_master, a)
    shutil.copyfile(project_master, b)
    with ProjectStore.open(a) as store:
        straight = drive(train_model(store, make_spec("tiny", overrides), preset="tiny"))
        last_straight = store.load_checkpoint(straight, "last")
        w_straight = {**last_straight.weights, **{k: v for k, v in last_straight.train_state.items()
                                                  if k.startswith("raw/")}}
        best_straight = store.get_model(straight).best_step
    token = CancelToken()

    def stop_midway(event):
        if isinstance(event, PartialResult) and event.kind == "checkpoint" and event.payload["step"] == 40:
            token.cancel()

    with ProjectStore.open(b) as store:
        with pytest.raises(Cancelled):
            drive(train_model(store, make_spec("tiny", overrides), preset="tiny", cancel=token), stop_midway)
        (rec,) = store.list_models("tiger")
        assert rec.status == "interrupted" and store.load_checkpoint(rec.id, "last").step == 40
        resumed = drive(train_model(store, make_spec("tiny", overrides), preset="tiny"))  # resumes by default
        assert resumed == rec.id and len(store.list_models("tiger")) == 1
        last_resumed = store.load_checkpoint(resumed, "last")
        w_resumed = {**last_resumed.weights, **{k: v for k, v in last_resumed.train_state.items()
                                                if k.startswith("raw/")}}
        assert store.get_model(resumed).best_step == best_straight
    assert w_straight.keys() == w_resumed.keys()
    for key in w_straight:
        np.testing.assert_allclose(w_straight[key], w_resumed[key], rtol=0, atol=1e-6, err_msg=key)
    # beam search and exact scoring agree for this variant too
    seqs, sp, _ = _split(b)
    with ProjectStore.open(b) as store:
        lm = load_model(store, resumed)
    assert lm.model.n_steps == lm.vocab.n_levels and len(lm.model.node_emb) > 0
    for i in (0, 7):
        exact = exact_scores(lm.model, lm.trie, sp.test.history(i))
        dec = beam_search(lm.model, lm.trie, [sp.test.history(i)], beam=50, k=5)
        assert dec.items[0].tolist() == np.argsort(-exact, kind="stable")[:5].tolist()


def test_weight_average_is_what_validation_and_checkpoints_read(project_master):
    _, split, codes = _split(project_master)
    spec = make_spec("tiny", {"ema_decay": 0.5, "valid_users": 50})
    trainer = Trainer(spec, make_vocab(spec, codes), codes, split)
    params = dict(trainer.model.named_parameters())
    expected = {name: p.detach().clone() for name, p in params.items()}
    for _ in range(5):
        decay = min(0.5, (1 + trainer.state.step) / (10 + trainer.state.step))
        trainer.train_step()
        expected = {name: e * decay + params[name].detach() * (1 - decay) for name, e in expected.items()}
    raw = {name: p.detach().clone() for name, p in params.items()}
    checkpoint = trainer.weights()
    with trainer.served_weights():
        served = {name: p.detach().clone() for name, p in params.items()}
    for name, p in params.items():
        np.testing.assert_allclose(checkpoint[name], expected[name].numpy(), rtol=0, atol=1e-6, err_msg=name)
        assert torch.equal(served[name], torch.from_numpy(checkpoint[name]))
        assert torch.equal(p, raw[name])  # training goes on from the raw weights
    assert any(not torch.allclose(expected[name], raw[name]) for name in params)


def test_cold_start_items_become_recommendable(trained, tmp_path):
    path, model_id, _ = trained
    copy = tmp_path / "cold.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        n_before = store.item_count()
        base = store.load_embedding_set()
        twins = [5, 17]  # new items described like existing ones land next to them in SID space
        olds = store.get_items(twins)
        store.add_items([{"item_id": f"NEW{i}", "title": o["title"] + " (new edition)"} for i, o in enumerate(olds)])
        vectors = np.concatenate([base.vectors, base.vectors[twins]])
        store.save_embedding_set(name="grown", model=base.model, template=base.template, strategy=base.strategy,
                                 cache_key=base.cache_key + "+new", vectors=vectors)
        lm = load_model(store, model_id)
        assert lm.n_cold == 2 and lm.trie.n_items == n_before + 2
        new_idx = np.array([n_before, n_before + 1])
        assert (lm.trie.lookup(lm.codes[new_idx]) == new_idx).all()
        assert (lm.codes[new_idx, 0] == lm.codes[twins, 0]).all()  # same neighbourhood of the SID tree
        exact = exact_scores(lm.model, lm.trie, np.array([twins[0]]))
        assert np.isfinite(exact[new_idx]).all()
        # a big enough beam reaches the new items: they are real, rankable candidates now
        rows = recommend(store, ["NEW0"], k=200, beam=200, loaded=lm, exclude_history=False)
        assert any(r["item_id"] in ("NEW0", "NEW1") for r in rows)


def test_content_vectors_beside_the_sids(project_master, tmp_path):
    """A model that reads the items' content vectors (input and output side): the record says
    which set; beam search still equals exact scoring; cold-start items bring their own
    vectors; a spec asking for content without the constrained loss is refused."""
    path = tmp_path / "content.semid"
    shutil.copyfile(project_master, path)
    spec = make_spec("tiny", {**TINY, "content_input": "true", "content_output": "true", "node_output": "true"})
    with ProjectStore.open(path) as store:
        model_id = drive(train_model(store, spec, preset="tiny"))
        rec = store.get_model(model_id)
        emb = store.load_embedding_set(store.load_quantizer_run(rec.quantizer_run_id).embedding_set_id)
        assert rec.spec["content"] == {"embedding_set_id": emb.id, "dim": emb.dim}
        _, sp = load_split(store, "loo")
        lm = load_model(store, model_id)
        assert lm.model.content.shape == (store.item_count() + 1, emb.dim)
        for i in range(0, 40, 8):
            h = sp.test.history(i)
            exact = exact_scores(lm.model, lm.trie, h)
            assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-3)
            dec = beam_search(lm.model, lm.trie, [h], beam=50, k=5)
            top = np.argsort(-exact, kind="stable")[:5]
            assert dec.items[0].tolist() == top.tolist()
            assert np.allclose(dec.scores[0], exact[top], atol=1e-4)
        # the content changes the scores: with the vectors zeroed the ranking is not the same
        h = sp.test.history(0)
        before = exact_scores(lm.model, lm.trie, h)
        lm.model.set_catalogue(lm.codes, np.zeros_like(emb.vectors))
        assert not np.allclose(exact_scores(lm.model, lm.trie, h), before, atol=1e-3)
        # a new item described like an old one gets that item's vector, so it scores near it
        n_before = store.item_count()
        store.add_items([{"item_id": "NEW0", "title": store.get_items([5])[0]["title"] + " (new edition)"}])
        store.save_embedding_set(name="grown", model=emb.model, template=emb.template, strategy=emb.strategy,
                                 cache_key=emb.cache_key + "+new", vectors=np.concatenate([emb.vectors, emb.vectors[[5]]]))
        lm = load_model(store, model_id)
        assert lm.n_cold == 1
        assert np.allclose(lm.model.content[n_before].numpy(), emb.vectors[5])
        assert np.isfinite(exact_scores(lm.model, lm.trie, h)[n_before])
    with pytest.raises(SemidError, match="content_output"):
        make_spec("tiny", {"content_output": "true", "constrained_loss": "false"})
    with pytest.raises(SemidError, match="content_set"):
        make_spec("tiny", {"content_set": "3"})  # without content_input / content_output


def test_content_vectors_from_another_embedding_set(project_master, tmp_path):
    """content_set: the model reads the vectors of a set other than the SIDs' own (here rec-tuned
    item vectors learned from the training interactions, 32-d, beside SIDs from the text set);
    an unknown set is refused naming the field."""
    from semid_studio.core.search import strategies as S

    path = tmp_path / "content_set.semid"
    shutil.copyfile(project_master, path)
    with ProjectStore.open(path) as store:
        rec_set = drive(S.build_embedding(store, "rec", S.make_spec(overrides={"rec_dim": 32})))
        with pytest.raises(SemidError, match="content_set.*#99"):
            drive(train_model(store, make_spec("tiny", {**TINY, "content_input": "true", "content_set": "99"}),
                              preset="tiny"))
        spec = make_spec("tiny", {**TINY, "content_input": "true", "content_set": str(rec_set)})
        model_id = drive(train_model(store, spec, preset="tiny"))
        assert store.get_model(model_id).spec["content"] == {"embedding_set_id": rec_set, "dim": 32}
        lm = load_model(store, model_id)
        vectors = store.load_embedding_set(rec_set).vectors
        assert np.allclose(lm.model.content[:len(vectors)].numpy(), vectors)
        _, sp = load_split(store, "loo")
        dec = beam_search(lm.model, lm.trie, [sp.test.history(0)], beam=20, k=5)
        assert (dec.items[0] >= 0).all()


# --------------------------------------------------------------------------- evaluation, CLI, errors


def test_evaluate_stores_report_with_baselines(trained, tmp_path):
    path, model_id, _ = trained
    copy = tmp_path / "eval.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        report = drive(evaluate_model(store, ks=(5, 10)))
        saved = store.list_evaluations("recommendation")
    assert set(report["models"]) == {"tiger", "popularity", "markov"}
    assert saved and saved[-1]["settings"]["ks"] == [5, 10] and saved[-1]["settings"]["split"] == "loo"
    assert saved[-1]["settings"]["model_ids"] == [model_id]
    tiger = report["models"]["tiger"]["summary"]
    pop = report["models"]["popularity"]["summary"]
    assert tiger["recall@10"]["mean"] > pop["recall@10"]["mean"]
    with ProjectStore.open(copy) as store:
        with pytest.raises(SemidError, match="trained on the 'loo' split"):
            drive(evaluate_model(store, split="temporal"))


def test_seen_item_filter_leaves_history_out_of_every_method(trained, tmp_path):
    from semid_studio.core.generative.evaluate import rank_probes

    path, model_id, _ = trained
    copy = tmp_path / "eval.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        _seqs, sp = load_split(store, "loo")
        lm = load_model(store, model_id)
        both = {f: drive(rank_probes(lm, sp.test, k=10, beam=20, exclude_history=f)) for f in (False, True)}
        markov = Markov(store.item_count()).fit(sp.train)
        pop = Popularity(store.item_count()).fit(sp.train)
        lists = {"tiger": both[True], "markov": markov.recommend(sp.test, 10, exclude_history=True),
                 "popularity": pop.recommend(sp.test, 10, exclude_history=True)}
        seen = [set(sp.test.history(i).tolist()) for i in range(len(sp.test))]
        for name, ranked in lists.items():
            assert not any(set(row.tolist()) & s for row, s in zip(ranked, seen)), name
            assert all(len(set(row.tolist())) == 10 for row in ranked), name
        # without the filter the model does put history items in its lists, so the option matters
        assert any(set(row.tolist()) & s for row, s in zip(both[False], seen))
        report = drive(evaluate_model(store, ks=(10,), exclude_history=True))
    settings = report["settings"]
    assert settings["exclude_history"] is True
    assert settings["test_repeat_share"] == pytest.approx(sp.test.repeat_share())
    filtered = ranking_metrics(both[True], sp.test.targets, (10,))["recall@10"]
    assert report["models"]["tiger"]["summary"]["recall@10"]["mean"] == pytest.approx(filtered)


def test_seen_bias_learns_from_the_data_that_nobody_comes_back(trained, tmp_path):
    """``seen_bias``: on the sample data no user has an item twice, so the learned offset for an
    item the user already has goes clearly negative and the lists lose most history items
    (over the whole history, older than the window too); the ranking is still the exact one."""
    path, baseline_id, _ = trained
    copy = tmp_path / "seen.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        _seqs, sp = load_split(store, "loo")
        assert sp.test.repeat_share() == 0.0
        model_id = drive(train_model(store, make_spec("tiny", {**TINY, "seen_bias": "true"}), preset="tiny"))
        seen_lm, base_lm = load_model(store, model_id), load_model(store, baseline_id)
    assert base_lm.model.seen_bias is None
    last = seen_lm.model.n_steps - 1
    assert seen_lm.model.seen_offset(last).item() < -1.0  # an item the user has: e^-1 as likely, or less
    hists = [sp.test.history(i) for i in range(len(sp.test))]
    lists, n_seen, n_old = {}, {}, {}
    for name, lm in (("seen", seen_lm), ("base", base_lm)):
        lists[name] = np.concatenate([beam_search(lm.model, lm.trie, hists[i:i + 256], beam=20, k=10).items
                                      for i in range(0, len(hists), 256)])
        n_seen[name] = np.mean([np.isin(row, h).sum() for row, h in zip(lists[name], hists)])
        # history items the model cannot see in its input window
        n_old[name] = np.mean([np.isin(row, h[:-lm.spec.max_history]).sum() for row, h in zip(lists[name], hists)])
    assert n_seen["base"] > 1.0 and n_seen["seen"] < n_seen["base"] / 3, n_seen
    assert n_old["seen"] < n_old["base"] / 3, n_old
    recall = {name: ranking_metrics(lists[name], sp.test.targets, (10,))["recall@10"] for name in lists}
    assert recall["seen"] >= recall["base"], recall
    for i in range(0, 40, 8):
        exact = exact_scores(seen_lm.model, seen_lm.trie, hists[i])
        assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-3)
        dec = beam_search(seen_lm.model, seen_lm.trie, [hists[i]], beam=50, k=5)
        top = np.argsort(-exact, kind="stable")[:5]
        assert dec.items[0].tolist() == top.tolist()
        assert np.allclose(dec.scores[0], exact[top], atol=1e-4)
    with pytest.raises(SemidError, match="seen_bias"):
        make_spec("tiny", {"seen_bias": "true", "constrained_loss": "false"})


def test_seen_shares_of_training_targets_count_only_what_came_before(project_master):
    """The training side of ``seen_bias`` counts a user's items up to each target's input and
    no further (the target itself and later items would leak the answer): it must equal the
    shares computed from the explicit history, for every level and candidate."""
    from semid_studio.core.generative.seen import HistoryShares

    _, split, codes = _split(project_master)
    spec = make_spec("tiny", {"seen_bias": "true", "max_history": 5})
    trainer = Trainer(spec, make_vocab(spec, codes), codes, split)
    batch = trainer.next_batch()
    users, positions = batch.target_positions()
    targets = batch.targets[batch.targets >= 0]
    shares = trainer.seen_shares(batch)
    trie = trainer.trie
    rows = torch.arange(len(targets))
    histories = [split.train.seq(u)[: p + 1] for u, p in zip(users, positions)]
    # the window's input item is the history's last item, and the target came right after it
    assert all(h[-1] == i for h, i in zip(histories, batch.inputs[batch.targets >= 0]))
    assert (positions >= spec.max_history).any(), "some targets have history beyond the window"
    explicit = HistoryShares(trie, histories, trainer.model.n_steps, "cpu")
    for level in range(trainer.model.n_steps):
        parents = torch.zeros(len(targets), dtype=torch.long) if level == 0 else \
            trie.item_path[torch.from_numpy(targets), level - 1]
        nodes, _ = trie.children(level, parents)
        got, want = shares.share(level, nodes, rows), explicit.share(level, nodes, rows)
        torch.testing.assert_close(got, want)
        if level == trainer.model.n_steps - 1:
            assert (got > 0).any()  # some candidates are items the user already had


def test_recommend_and_bad_history(trained):
    path, model_id, _ = trained
    with ProjectStore.open(path) as store:
        ids = store.item_ids()
        history = list(ids[[3, 10, 42]])
        rows = recommend(store, history, k=10, beam=20)
        assert [r["rank"] for r in rows] == list(range(1, 11))
        assert all(r["sid"].startswith("<a_") for r in rows)
        assert len({r["item_id"] for r in rows}) == 10
        excl = recommend(store, history, k=10, beam=20, exclude_history=True)
        assert not {r["item_id"] for r in excl} & set(history)
        assert rows == excl  # nobody in the sample takes an item twice: the history is left out by default
        assert recommend(store, history, k=10, beam=20, exclude_history=False)  # unless asked not to
        with pytest.raises(SemidError, match="history is empty"):
            recommend(store, [])
        with pytest.raises(SemidError, match="none of the history's items is in the catalogue: 'nope'"):
            recommend(store, ["nope"])
        with pytest.raises(SemidError, match="1 history item"):
            recommend(store, [history[0], "missing-id"])
        assert recommend(store, [history[0], "missing-id"], skip_unknown=True)
        with pytest.raises(SemidError, match="beam width"):
            recommend(store, history, k=10, beam=5)


def test_cli_train_evaluate_recommend(project_master, tmp_path, capsys):
    from semid_studio.cli import main

    path = tmp_path / "cli.semid"
    shutil.copyfile(project_master, path)
    assert main(["train", str(path), "--preset", "tiny", "--max-steps", "40", "--set", "eval_every=20",
                 "--set", "valid_users=200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "done" and out["step"] == 40
    assert main(["evaluate", str(path), "--k", "5,10", "--json", "--baselines", "popularity"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "recall@10" in report["models"]["tiger"]["summary"]
    with ProjectStore.open(path) as store:
        first = store.item_ids()[0]
    assert main(["recommend", str(path), "--history", first, "-k", "5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and {"item_id", "title", "sid", "score"} <= rows[0].keys()
    assert main(["recommend", str(path), "--history", "no-such-item"]) == 1
    assert "is in the catalogue: 'no-such-item'" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--k", "ten"]) == 1
    assert "--k expects" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", str(path), "--preset", "tiny", "--device", "cuda"]) == 1
        assert "no CUDA GPU" in capsys.readouterr().err


def test_markov_baseline_follows_transitions():
    seqs = Sequences.from_lists([f"u{i}" for i in range(4)],
                                [np.array([0, 1, 2, 9, 9]), np.array([0, 1, 3, 9, 9]), np.array([0, 1, 2, 9, 9]),
                                 np.array([5, 0, 1, 9])])
    sp = make_split(seqs, "loo")
    markov = Markov(10).fit(sp.train)
    # after item 1 the training part saw 2 twice and 3 once; then popularity fills the list
    p = Probes(np.array([0]), np.array([0, 2]), np.array([0, 1]), np.array([2]))
    assert markov.recommend(p, 3)[0].tolist() == [2, 3, 0]
    # the seen-item filter drops the history (0, 1); popularity then fills in with 5
    assert markov.recommend(p, 3, exclude_history=True)[0].tolist() == [2, 3, 5]
    assert Popularity(10).fit(sp.train).recommend(p, 3, exclude_history=True)[0].tolist() == [2, 3, 5]
    # share of probes whose target is already in their history
    assert Probes(np.array([0, 1]), np.array([0, 2, 4]), np.array([0, 1, 4, 5]), np.array([1, 2])).repeat_share() == 0.5


def test_sasrec_learns_the_sample_and_keeps_the_best_validation_epoch(project_master):
    from semid_studio.core.generative.baselines import SASRec, SASRecSpec

    seqs, sp, codes = _split(project_master)
    spec = SASRecSpec(d_model=32, dropout=0.2, lr=3e-3, max_epochs=8, eval_every_epochs=2, patience=4)
    model, events = collect(SASRec(len(codes), spec).fit(sp))
    valid = [e for e in events if isinstance(e, Metric) and e.split == "valid"]
    assert len(valid) == 4 and model.best["ndcg@10"] == pytest.approx(max(e.value for e in valid))
    # the kept weights are those of the best validation epoch
    again = ranking_metrics(model.recommend(sp.valid, 10), sp.valid.targets, (10,))
    assert again["ndcg@10"] == pytest.approx(model.best["ndcg@10"])
    ours = ranking_metrics(model.recommend(sp.test, 10), sp.test.targets, (10,))
    pop = ranking_metrics(Popularity(len(codes)).fit(sp.train).recommend(sp.test, 10), sp.test.targets, (10,))
    assert ours["recall@10"] > 2 * pop["recall@10"], (ours, pop)
    filtered = model.recommend(sp.test, 10, exclude_history=True)
    assert not any(set(row.tolist()) & set(sp.test.history(i).tolist()) for i, row in enumerate(filtered))


def test_sampled_softmax_sasrec_learns_the_sample(project_master):
    """SASRec with sampled softmax (the 'sasrec-ss' baseline): 64 uniform negatives are enough
    to learn the sample well past popularity; a drawn negative equal to the target is masked."""
    from semid_studio.core.generative.baselines import SASREC_VARIANTS, SASRec, SASRecNet, sasrec_loss

    seqs, sp, codes = _split(project_master)
    assert SASREC_VARIANTS["sasrec-ss"].negatives == 256 and SASREC_VARIANTS["sasrec"].negatives == 0
    spec = SASRecSpec(d_model=32, dropout=0.2, lr=3e-3, max_epochs=8, eval_every_epochs=2, patience=4, negatives=64)
    model = drive(SASRec(len(codes), spec).fit(sp))
    ours = ranking_metrics(model.recommend(sp.test, 10), sp.test.targets, (10,))
    pop = ranking_metrics(Popularity(len(codes)).fit(sp.train).recommend(sp.test, 10), sp.test.targets, (10,))
    assert ours["recall@10"] > 2 * pop["recall@10"], (ours, pop)
    # with a one-item catalogue every draw is the target: only the target's own logit is left
    net = SASRecNet(1, spec)
    h = torch.randn(3, 32)
    assert sasrec_loss(net, h, torch.zeros(3, dtype=torch.long), 8).item() == pytest.approx(0.0, abs=1e-6)


def _follow_counts(sp, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Made here, independently of the model: how often each item followed each other in the
    training part, and add-one popularity (what the transition prior is built from)."""
    follows = np.zeros((n, n), np.float32)
    for u in range(sp.train.n_users):
        seq = sp.train.seq(u)
        np.add.at(follows, (seq[:-1], seq[1:]), 1.0)
    popularity = np.bincount(sp.train.items, minlength=n) + 1.0
    return follows, popularity / popularity.sum()


def test_item_head_merges_its_items_with_the_beam(project_master, tmp_path):
    """item_head: the encoder state also scores every item; ranking takes the beam's items and
    the top items of the item-level score and orders them by SID log-probability + item_blend x
    the head's log-probability + transition_weight x the transition prior. The merged scores are
    exactly that sum (checked against exact scoring, the head's own softmax and transition
    counts made here from the training part); the list holds distinct real items and honours
    excluded items; the model learns the sample past popularity."""
    import torch.nn.functional as F

    path = tmp_path / "head.semid"
    shutil.copyfile(project_master, path)
    spec = make_spec("tiny", {**TINY, "item_head": "1", "item_blend": "0.5", "transition_weight": "0.7",
                              "transition_smoothing": "2"})
    with ProjectStore.open(path) as store:
        model_id = drive(train_model(store, spec, preset="tiny"))
        _, sp = load_split(store, "loo")
        lm = load_model(store, model_id)  # the stored transition table is loaded with the weights
    model, trie = lm.model, lm.trie
    n = model.vocab.n_items
    follows, popularity = _follow_counts(sp, n)
    hists = [sp.test.history(i) for i in range(40)]
    dec = beam_search(model, trie, hists, beam=20, k=10)
    for row, h in enumerate(hists[:5]):
        items = dec.items[row]
        assert (items >= 0).all() and len(set(items.tolist())) == 10
        sid = exact_scores(model, trie, h)
        with torch.no_grad():
            from semid_studio.core.generative.decode import _prepare

            memory, lengths = _prepare(model, [h], None)
            head = F.log_softmax(model.item_logits(memory[0, lengths[0] - 1][None])[0], -1).numpy()
        prior = np.log((follows[h[-1]] + 2 * popularity) / (follows[h[-1]].sum() + 2))
        item_level = 0.5 * head + 0.7 * prior
        expected = sid[items] + item_level[items]
        assert np.allclose(dec.scores[row], expected, atol=1e-4)
        assert (np.diff(dec.scores[row]) <= 1e-6).all()
        # nothing outside the list scores above its last entry among the item level's top items
        outside = [i for i in np.argsort(-item_level)[:20] if i not in set(items.tolist())]
        assert all(sid[i] + item_level[i] <= dec.scores[row][-1] + 1e-4 for i in outside)
    # excluded items stay out of the merged list
    excl = [np.asarray(dec.items[r][:3]) for r in range(len(hists))]
    again = beam_search(model, trie, hists, beam=20, k=10, exclude=excl)
    assert not any(set(again.items[r].tolist()) & set(excl[r].tolist()) for r in range(len(hists)))
    probes = sp.test.subset(np.arange(min(600, len(sp.test))))
    ranked = np.concatenate([beam_search(model, trie, [probes.history(i) for i in range(s, min(len(probes), s + 300))],
                                         beam=20, k=10).items for s in range(0, len(probes), 300)])
    ours = ranking_metrics(ranked, probes.targets, (10,))
    pop = ranking_metrics(Popularity(model.n_catalogue).fit(sp.train).recommend(probes, 10), probes.targets, (10,))
    assert ours["recall@10"] > 2 * pop["recall@10"], (ours, pop)
    with pytest.raises(SemidError, match="item_head"):
        make_spec("tiny", {"item_head": "-1"})
    from semid_studio.core.generative.decode import score_meaning

    assert score_meaning(model.spec) == ("SID log-probability + 0.5 x item-head log-probability"
                                         " + 0.7 x transition log-probability")
    with pytest.raises(SemidError, match="transition_weight.*item_head"):
        make_spec("tiny", {"transition_weight": "1"})


def test_an_ensemble_trains_its_members_and_ranks_them_as_one(project_master, tmp_path):
    """members=2 (the laptop-pair preset's way): 'train' trains two ordinary models with seeds
    2 x seed + i, one after another, then stores the ensemble as one model whose checkpoint holds
    both; a budget-stopped run goes on where it stopped; the same command again reuses what is
    done; ranking scores each candidate by the members' mean SID and head log-probabilities +
    the prior, exactly; evaluate and export read the ensemble as one model id."""
    import torch.nn.functional as F

    from semid_studio.core.export import export_model
    from semid_studio.core.generative import train_recommender
    from semid_studio.core.generative.decode import _prepare, score_meaning

    path = tmp_path / "pair.semid"
    shutil.copyfile(project_master, path)
    spec = make_spec("tiny", {"max_steps": 60, "eval_every": 30, "valid_users": 300, "item_head": "1",
                              "item_blend": "2", "transition_weight": "0.5", "members": "2", "seed": "3"})
    with ProjectStore.open(path) as store:
        stopped = drive(train_recommender(store, spec, preset="tiny", max_call_steps=30))  # member 1 stops halfway
        assert store.get_model(stopped).status == "stopped" and len(store.list_models()) == 1
        pair_id, events = collect(train_recommender(store, spec, preset="tiny"))
        records = {r.id: r for r in store.list_models()}
        pair = records[pair_id]
        members = [m["model_id"] for m in pair.spec["members"]]
        assert members[0] == stopped and len(records) == 3  # the stopped member was resumed, not redone
        assert [records[m].spec["spec"]["seed"] for m in members] == [6, 7]
        assert all(records[m].status == "done" and records[m].step == 60 for m in members)
        assert pair.status == "done" and pair.spec["spec"]["members"] == 2 and pair.best_metric > 0
        assert any("ranking the 2 members together" in str(e) for e in events)
        weights = store.load_checkpoint(pair_id, "best").weights
        assert {k.split(".")[0] for k in weights} == {"member0", "member1"}
        # the same command again: nothing new is trained or stored
        assert drive(train_recommender(store, spec, preset="tiny")) == pair_id and len(store.list_models()) == 3

        lm = load_model(store, pair_id)
        alone = [load_model(store, m) for m in members]
        _, sp = load_split(store, "loo")
        report = drive(evaluate_model(store, baselines=(), save=False))
        export_model(store, tmp_path / "pair.safetensors", pair_id)
    assert len(lm.partners) == 1 and report["settings"]["model_ids"] == [pair_id]
    assert "members" in json.loads((tmp_path / "pair.json").read_text())
    assert score_meaning(lm.spec).startswith("2 models' mean SID log-probability + 2 x item-head")
    n = lm.vocab.n_items
    follows, popularity = _follow_counts(sp, n)
    hists = [sp.test.history(i) for i in range(30)]
    dec = beam_search(lm.model, lm.trie, hists, beam=20, k=10, partners=lm.partners)
    single = beam_search(alone[0].model, alone[0].trie, hists, beam=20, k=10)
    assert not np.array_equal(dec.items, single.items)  # the second member changes the ranking
    for row, h in enumerate(hists[:5]):
        items = dec.items[row]
        assert (items >= 0).all() and len(set(items.tolist())) == 10
        sid, head = 0.0, 0.0
        for member in alone:
            sid = sid + exact_scores(member.model, member.trie, h) / 2
            with torch.no_grad():
                memory, lengths = _prepare(member.model, [h], None)
                head = head + F.log_softmax(member.model.item_logits(memory[0, lengths[0] - 1][None])[0], -1).numpy() / 2
        prior = np.log((follows[h[-1]] + 5 * popularity) / (follows[h[-1]].sum() + 5))
        expected = sid[items] + 2 * head[items] + 0.5 * prior[items]
        assert np.allclose(dec.scores[row], expected, atol=1e-4)
        outside = [i for i in np.argsort(-(2 * head + 0.5 * prior))[:40] if i not in set(items.tolist())]
        assert all(sid[i] + 2 * head[i] + 0.5 * prior[i] <= dec.scores[row][-1] + 1e-4 for i in outside)


def test_ensemble_settings_that_cannot_work_are_refused(tmp_path, capsys):
    from semid_studio.cli import main
    from semid_studio.core.generative.joint import joint_settings

    # refused before torchrun starts any process (and before the project is opened)
    assert main(["train", str(tmp_path / "p.semid"), "--preset", "laptop-pair", "--nproc", "2"]) != 0
    assert "leave out --nproc" in capsys.readouterr().err

    with pytest.raises(SemidError, match="members.*item_head"):
        make_spec("tiny", {"members": "2"})
    with pytest.raises(SemidError, match="members.*at least 1"):
        make_spec("laptop", {"members": "0"})
    assert make_spec("laptop-pair").members == 2 and make_spec("laptop-pair").item_head > 0
    with pytest.raises(SemidError, match="laptop-pair.*recommender"):
        joint_settings("laptop-pair", {"task": "joint"})
    with pytest.raises(SemidError, match="train_recommender"):  # one model's trainer is not an ensemble's
        drive(train_model(None, make_spec("laptop-pair")))
