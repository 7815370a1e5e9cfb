"""Embedding strategies: fine-tuning (search, multi-task), rec-tuned, fused sets, the query
side, and the leakage audit. Runs on a 400-item slice of the bundled sample catalogue (its real
items, interactions and queries) so that a few fine-tuning steps stay within seconds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from semid_studio.cli import main
from semid_studio.core.search import strategies as G
from semid_studio.core.embed import embed_items
from semid_studio.core.errors import SemidError
from semid_studio.core.events import Metric, collect, drive
from semid_studio.core.search.queries import assert_training_only
from semid_studio.core.search import item_texts, normalize
from semid_studio.core.store import ProjectStore

N_ITEMS = 400
#: a handful of steps: enough to move the encoder, small enough for a test
TINY = {"max_pairs": 64, "batch_size": 16, "dev_fraction": 0.0, "lr": 1e-4}
#: the module's search-tuned set: 64 training queries, a fifth of the train split held back as dev
SEARCH_SPEC = {**TINY, "dev_fraction": 0.2}


@pytest.fixture(scope="module")
def small_master(sample_project_master, tmp_path_factory):
    """The first 400 sample items with their interactions and queries, content-embedded."""
    path = tmp_path_factory.mktemp("small") / "small.semid"
    with ProjectStore.open(sample_project_master) as src, ProjectStore.create(path) as dst:
        dst.set_meta("template", src.get_meta("template"))
        dst.add_items([{k: v for k, v in r.items() if k != "idx" and v is not None}
                       for r in src.get_items(range(N_ITEMS))])
        inter = src.interactions_frame()
        dst.add_interactions(inter[inter["item_idx"] < N_ITEMS])
        q = src.queries_frame()
        dst.add_queries(q[q["item_idx"] < N_ITEMS][["text", "item_idx", "split", "query_id"]])
        drive(embed_items(dst))
    return path


@pytest.fixture
def small(small_master, tmp_path):
    target = tmp_path / "small.semid"
    shutil.copyfile(small_master, target)
    return target


@pytest.fixture(scope="module")
def tuned_master(small_master, tmp_path_factory):
    """The slice plus one search-tuned set (#2), fine-tuned once for the tests of this module."""
    path = tmp_path_factory.mktemp("tuned") / "tuned.semid"
    shutil.copyfile(small_master, path)
    with ProjectStore.open(path) as store:
        set_id, events = collect(G.build_embedding(store, "search", G.make_spec(overrides=SEARCH_SPEC)))
        assert set_id == 2
        store.set_meta("test_events", [e.name for e in events if isinstance(e, Metric)])
    return path


@pytest.fixture
def tuned(tuned_master, tmp_path):
    target = tmp_path / "tuned.semid"
    shutil.copyfile(tuned_master, target)
    return target


def _test_margin(store: ProjectStore, set_id: int) -> float:
    """Mean over held-out test queries of cos(query, its item) - mean cos(query, any item)."""
    test = store.queries_frame(split="test").head(200)
    items = normalize(store.load_embedding_set(set_id).vectors)
    q, _ = drive(G.encode_queries(store, set_id, test["text"].tolist()))
    sims = normalize(q) @ items.T
    return float((sims[np.arange(len(test)), test["item_idx"]] - sims.mean(axis=1)).mean())


def test_training_interactions_leave_out_each_users_last_two(small):
    with ProjectStore.open(small) as store:
        full = store.interactions_frame()
        train = G.training_interactions(store)
        sizes = full.groupby("user_id").size()
        kept = train.groupby("user_id").size()
        for user, n in sizes.items():
            assert kept.get(user, 0) == (n - 2 if n >= 3 else n)
        for user in sizes.index[:20]:
            hist = store.user_history(user)
            if len(hist) >= 3:
                assert train.loc[train["user_id"] == user, "item_idx"].tolist() == hist[:-2]


def test_search_tuned_encoder_improves_held_out_queries_and_is_stored(tuned):
    with ProjectStore.open(tuned) as store:
        content_id, set_id = 1, 2
        emb = store.load_embedding_set(set_id)
        p = emb.params
        # provenance: base model, training data, epochs, seed, loss, truncation, timing
        assert emb.strategy == "search" and p["base_model"] == "all-MiniLM-L6-v2"
        assert p["train_queries"] == 64 and p["query_split"] == "train" and p["epochs"] == 1
        assert p["dev_queries"] > 0 and p["dev_fraction"] == 0.2
        assert p["seed"] == 0 and "MultipleNegativesRankingLoss" in p["loss"]
        assert p["pairs_per_s"] > 0 and p["max_tokens"] == 256 and "queries_truncated_share" in p
        assert "loss" in store.get_meta("test_events")
        # a real effect: held-out test queries moved closer to their own items
        assert _test_margin(store, set_id) > _test_margin(store, content_id)
        assert not np.allclose(emb.vectors, store.load_embedding_set(content_id).vectors, atol=1e-3)
        # the stored encoder reproduces the item vectors (the query side uses the same weights)
        G._ENCODERS.clear()
        encoder = G.load_query_encoder(store, set_id)
        texts, _ = item_texts(store)
        again = encoder.encode(texts[:5], convert_to_numpy=True)
        np.testing.assert_allclose(again, emb.vectors[:5], atol=1e-4)
        # the same settings and data are not trained twice
        again_id, _ = collect(G.build_embedding(store, "search", G.make_spec(overrides=SEARCH_SPEC)))
        assert again_id == set_id


def test_leak_of_a_test_query_into_training_is_caught(tuned):
    with ProjectStore.open(tuned) as store:
        set_id = 2
        report = G.audit_training_queries(store, set_id)
        assert report == {"n_training_queries": 64, "heldout_by_id": 0, "heldout_by_text": 0, "dev_overlap": 0,
                          "ok": True}
        used, _ = G.load_artifact(store, set_id, "train_queries")
        dev, _ = G.load_artifact(store, set_id, "dev_queries")
        assert len(dev["ids"]) > 0 and not np.isin(used["ids"], dev["ids"]).any()
        test_ids = set(store.queries_frame(split="test")["id"])
        assert not test_ids & set(used["ids"].tolist())
        # had one of those training queries been a test query, the audit says so
        leaked = int(used["ids"][0])
        store.db.execute("UPDATE queries SET split = 'test' WHERE id = ?", [leaked])
        with pytest.raises(SemidError, match="trained on held-out queries"):
            G.audit_training_queries(store, set_id)
        # and fine-tuning refuses to start when a held-out query would reach it
        frame = store.queries_frame(split="train")
        bad = frame.head(3).copy()
        bad.loc[bad.index[0], "id"] = leaked
        with pytest.raises(SemidError, match="held-out"):
            assert_training_only(store, bad)


def test_multitask_sums_two_contrastive_losses_on_training_histories(small):
    with ProjectStore.open(small) as store:
        spec = G.make_spec(overrides={**TINY, "max_pairs": 48, "cooccur_window": 2})
        set_id, events = collect(G.build_embedding(store, "multitask", spec))
        p = store.load_embedding_set(set_id).params
        assert p["strategy"] == "multitask" and "item, item" in p["loss"]
        assert p["item_pairs_used"] == 48 and p["cooccur_window"] == 2
        assert p["training_interactions"] == len(G.training_interactions(store))
        names = {e.name for e in events if isinstance(e, Metric)}
        assert {"loss", "loss query-item", "loss item-item"} <= names
        # the item pairs come from the training part only
        pairs = G.cooccurrence_pairs(G.training_interactions(store), 2)
        full = G.cooccurrence_pairs(store.interactions_frame(), 2)
        assert 0 < len(pairs) < len(full)


def test_rec_tuned_vectors_follow_co_occurrence_with_a_cold_fallback(small):
    with ProjectStore.open(small) as store:
        set_id, events = collect(G.build_embedding(store, "rec", G.make_spec(overrides={"rec_dim": 32})))
        emb = store.load_embedding_set(set_id)
        assert emb.dim == 32 and emb.strategy == "rec"
        p = emb.params
        assert p["rec_method"] == "ppmi-svd" and p["n_warm"] + p["n_cold"] == N_ITEMS
        vecs = normalize(emb.vectors)
        pairs = G.cooccurrence_pairs(G.training_interactions(store), 2)
        rng = np.random.default_rng(0)
        random_pairs = rng.integers(0, N_ITEMS, size=(len(pairs), 2))
        together = (vecs[pairs[:, 0]] * vecs[pairs[:, 1]]).sum(1).mean()
        apart = (vecs[random_pairs[:, 0]] * vecs[random_pairs[:, 1]]).sum(1).mean()
        assert together > apart + 0.2
        rec = G.evaluate_rec_dense(store, set_id, ks=(10,))
        assert rec["recall@10"] > 10 * 10 / N_ITEMS and rec["n"] > 0
        # no text side: dense search with it is refused clearly
        with pytest.raises(SemidError, match="no text encoder"):
            G.load_query_encoder(store, set_id)


def test_cold_items_get_a_vector_from_their_content(small):
    with ProjectStore.open(small) as store:
        store.add_items([{"item_id": "NEW-1", "title": "Trailblazer Waterproof Hiking Boots, Men's",
                          "categories": ["Outdoors", "Hiking", "Hiking Boots"]}])
        drive(embed_items(store))  # content vectors for the new item
        set_id, events = collect(G.build_embedding(store, "rec", G.make_spec(overrides={"rec_dim": 16})))
        emb = store.load_embedding_set(set_id)
        assert emb.params["n_cold"] >= 1 and "ridge" in emb.params["cold_fallback"]
        assert np.linalg.norm(emb.vectors[-1]) > 0


def test_bpr_loss_falls():
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", int(i), float(t)) for u in range(60) for t, i in enumerate(rng.choice(30, 8, replace=False)
                                                                               + (u % 2) * 30)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_idx", "ts"])
    gen = G.bpr_vectors(frame, 60, dim=8, epochs=15, seed=0)
    vecs, events = collect(gen)
    losses = [e.value for e in events if isinstance(e, Metric)]
    assert vecs.shape == (60, 8) and losses[-1] < losses[0]
    # the two halves of the catalogue (two user groups) separate
    v = normalize(vecs)
    assert (v[:30] @ v[:30].T).mean() > (v[:30] @ v[30:].T).mean()


def test_fused_sets_and_their_query_side(tuned):
    with ProjectStore.open(tuned) as store:
        search_id = 2
        rec_id, _ = collect(G.build_embedding(store, "rec", G.make_spec(overrides={"rec_dim": 32})))
        concat_id, _ = collect(G.build_embedding(store, "fused-concat"))
        svd_id, _ = collect(G.build_embedding(store, "fused-svd", G.make_spec(overrides={"fused_dim": 24})))
        concat, svd = store.load_embedding_set(concat_id), store.load_embedding_set(svd_id)
        assert concat.dim == 384 + 32 and svd.dim == 24
        assert concat.params["sources"] == {"search": search_id, "rec": rec_id}
        np.testing.assert_allclose(np.linalg.norm(concat.vectors[:, :384], axis=1), 1.0, atol=1e-5)
        for set_id, dim in ((concat_id, 416), (svd_id, 24)):
            q, stats = drive(G.encode_queries(store, set_id, ["waterproof hiking boots", "coffee grinder"]))
            assert q.shape == (2, dim) and "fused_query" in stats
        with pytest.raises(SemidError, match="two sources"):
            collect(G.build_embedding(store, "fused-concat", sources=[search_id]))


def test_joint_model_can_read_text_with_a_fine_tuned_encoder(tuned):
    from semid_studio.core.generative.joint import JointSpec, text_features
    from semid_studio.core.generative.joint.text import encoder_name

    texts = ["waterproof hiking boots", "coffee grinder"]
    with ProjectStore.open(tuned) as store:
        tuned_spec = JointSpec(encoder_model="set:2")
        assert encoder_name(store, tuned_spec) == "set:2"
        base = drive(text_features(store, JointSpec(), texts, encoder=encoder_name(store, JointSpec())))
        fine = drive(text_features(store, tuned_spec, texts, encoder="set:2"))
        assert base.values.shape == fine.values.shape and len(fine) == 2
        # the states are the fine-tuned encoder's: its pooled vector is what dense search with set #2 reads
        query_vectors, _ = drive(G.encode_queries(store, 2, texts))
        pooled = fine.values[fine.offsets[:-1]].astype(np.float32)
        cosine = (pooled * query_vectors).sum(1) / np.linalg.norm(pooled, axis=1) / np.linalg.norm(query_vectors, axis=1)
        assert (cosine > 0.99).all(), cosine
        assert not np.allclose(base.values.astype(np.float32), fine.values.astype(np.float32), atol=1e-3)
        for bad, match in (("set:x", "expected 'set:N'"), ("set:99", "no embedding set #99")):
            with pytest.raises(SemidError, match=match):
                encoder_name(store, JointSpec(encoder_model=bad))


def test_long_texts_are_truncated_or_chunked_knowingly(small):
    with ProjectStore.open(small) as store:
        encoder = G.load_query_encoder(store, 1)
        long_text = " ".join(["a tent for weekend camping trips in the rain"] * 80)  # ~720 word pieces
        texts = ["hiking boots", long_text]
        (trunc, t_stats), events = collect(G.encode_long(encoder, texts, mode="truncate"))
        (chunk, c_stats), _ = collect(G.encode_long(encoder, texts, mode="chunk"))
        assert t_stats["n_over_window"] == 1 and t_stats["share_over_window"] == 0.5
        assert any("longer than" in getattr(e, "text", "") for e in events)  # never silently cut
        assert c_stats["n_chunks"] > 2 and t_stats["n_chunks"] == 2
        np.testing.assert_allclose(trunc[0], chunk[0], atol=1e-5)  # short texts are the same
        assert not np.allclose(trunc[1], chunk[1], atol=1e-3)
        with pytest.raises(SemidError, match="long_text"):
            collect(G.encode_long(encoder, texts, mode="summarise"))


def test_spec_errors_and_cli(small, capsys):
    with pytest.raises(SemidError, match="unknown embedding setting"):
        G.make_spec(overrides={"epoch": 2})
    with pytest.raises(SemidError, match="batch_size"):
        G.make_spec(overrides={"batch_size": 1})
    with pytest.raises(SemidError, match="preset"):
        G.make_spec(preset="huge")
    assert main(["embed", str(small), "--strategy", "rec", "--set", "rec_dim=16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == "rec" and out["dim"] == 16
    assert main(["search", str(small), "hiking boots", "--embedding-set", str(out["id"])]) == 1
    assert "no text encoder" in capsys.readouterr().err
    assert main(["embed-strategy", str(small), "--strategy", "fused-svd", "--sources", "x,y"]) == 1
    assert "--sources" in capsys.readouterr().err


def test_search_evaluation_over_several_sets_reports_mean_and_spread(tuned):
    from semid_studio.core.search import evaluate_search

    with ProjectStore.open(tuned) as store:
        report, _ = collect(evaluate_search(store, "dense", embedding_set_ids=[1, 2], ks=(10,), bootstrap=50))
        m = report["metrics"]
        assert m["n_runs"] == 2 and len(m["runs"]) == 2
        runs = [r["recall@10"] for r in m["runs"]]
        assert m["recall@10"] == pytest.approx(np.mean(runs))
        assert m["std"]["recall@10"] == pytest.approx(np.std(runs, ddof=1))
        sets = report["settings"]["sets"]
        assert [s["strategy"] for s in sets] == ["content", "search"]
        assert all(s["query_encoding"]["mode"] == "truncate" for s in sets)
        assert store.list_evaluations(task="search")[-1]["settings"]["embedding_set_ids"] == [1, 2]
