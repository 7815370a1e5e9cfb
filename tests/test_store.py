"""The project file: creation, identity checks, migrations, atomic writes, arrays without pickle."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from semid_studio.core.errors import ProjectError
from semid_studio.core.store import APPLICATION_ID, ProjectStore, decode_arrays, encode_arrays, migrations


def make_store(tmp_path, n_items=3):
    store = ProjectStore.create(tmp_path / "p.semid")
    store.add_items([{"item_id": f"i{k}", "title": f"Item {k}", "categories": ["A", f"B{k % 2}"]}
                     for k in range(n_items)])
    return store


def test_create_marks_file_and_reopens(tmp_path):
    store = make_store(tmp_path)
    store.close()
    assert not (tmp_path / "p.semid-wal").exists(), "closing must fold the WAL back into one file"
    conn = sqlite3.connect(tmp_path / "p.semid")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()
    with ProjectStore.open(tmp_path / "p.semid") as again:
        assert list(again.item_ids()) == ["i0", "i1", "i2"]
        assert again.get_items([2])[0]["categories"] == ["A", "B0"]
        assert again.schema_version == len(migrations._migrations)


def test_create_refuses_to_overwrite_and_open_needs_a_project(tmp_path):
    make_store(tmp_path).close()
    with pytest.raises(ProjectError, match="already exists"):
        ProjectStore.create(tmp_path / "p.semid")
    with pytest.raises(ProjectError, match="no such project file"):
        ProjectStore.open(tmp_path / "missing.semid")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="not a SemID Studio project"):
        ProjectStore.open(other)
    junk = tmp_path / "junk.semid"
    junk.write_bytes(b"this is not sqlite at all" * 50)
    with pytest.raises(ProjectError, match="not a SemID Studio project"):
        ProjectStore.open(junk)


def test_file_from_a_newer_version_is_refused(tmp_path):
    make_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "p.semid")
    conn.execute("INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
                 "VALUES ('semid_studio', 'm999_from_the_future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="newer SemID Studio"):
        ProjectStore.open(tmp_path / "p.semid")


def test_atomic_block_rolls_back_everything(tmp_path):
    store = make_store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.add_items([{"item_id": "new", "title": "New"}])
            store.set_meta("template", "{title}")
            raise RuntimeError("boom")
    assert store.item_count() == 3
    assert store.get_meta("template") is None
    # a duplicate id inside add_items fails as a whole, too
    with pytest.raises(sqlite3.IntegrityError):
        store.add_items([{"item_id": "x1"}, {"item_id": "i0"}])
    assert store.item_count() == 3
    store.close()


def test_arrays_round_trip_without_pickle(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.int32).reshape(3, 4), "b": np.random.default_rng(0).random((2, 5))}
    blob = encode_arrays(arrays)
    assert b"pickle" not in blob and not blob.startswith(b"\x80")  # safetensors header, not a pickle
    back = decode_arrays(blob)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], back[k])
        assert arrays[k].dtype == back[k].dtype


def test_embeddings_runs_sids_models_round_trip(tmp_path):
    store = make_store(tmp_path)
    vectors = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    emb = store.save_embedding_set(name="e", model="m", template="{title}", strategy="content",
                                   cache_key="k1", vectors=vectors)
    assert store.find_embedding_set("k1").id == emb
    np.testing.assert_array_equal(store.load_embedding_set().vectors, vectors)
    codes = np.array([[1, 2, 0], [1, 2, 1], [3, 0, 0]])
    sids = ["<a_1><b_2><c_0>", "<a_1><b_2><c_1>", "<a_3><b_0><c_0>"]
    run = store.save_quantizer_run(name="r", embedding_set_id=emb, method="rq-kmeans", spec={"levels": 2},
                                   seed=0, codes=codes, sid_strings=sids, metrics={"unique": np.float64(0.5)},
                                   codebooks={"level_0": np.ones((4, 8), np.float32)})
    loaded = store.load_quantizer_run()
    assert loaded.id == run and loaded.n_levels == 2 and loaded.metrics == {"unique": 0.5}
    np.testing.assert_array_equal(loaded.codes, codes)
    assert store.items_with_sid_prefix(run, "<a_1>") == [0, 1]
    assert store.items_with_sid_prefix(run, "<a_1><b_2><c_1>") == [1]
    assert store.sid_of(run, 2) == "<a_3><b_0><c_0>"
    model = store.create_model(name="t", kind="tiger", quantizer_run_id=run, spec={"d": 8})
    store.save_checkpoint(model, "best", 10, {"w": np.ones(3, np.float32)}, {"opt": np.zeros(2)}, {"loss": 1.0})
    store.save_checkpoint(model, "best", 20, {"w": np.full(3, 2, np.float32)})
    ckpt = store.load_checkpoint(model, "best")
    assert ckpt.step == 20 and ckpt.weights["w"][0] == 2 and ckpt.train_state == {}
    store.update_model(model, status="done", best_step=20, best_metric=0.5, history=[{"step": 20}])
    assert store.get_model(model).history == [{"step": 20}]
    store.close()


def test_large_arrays_are_stored_in_chunks(tmp_path, monkeypatch):
    """Payloads over BLOB_CHUNK_BYTES (SQLite refuses values over 1 GB) go to blob_chunks and
    come back identical; replacing or deleting their row deletes the chunks."""
    from semid_studio.core.store import encoding as store_module
    from safetensors.numpy import load as st_load

    monkeypatch.setattr(store_module, "BLOB_CHUNK_BYTES", 1000)
    store = make_store(tmp_path)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 100)).astype(np.float32)  # 1,200 bytes: two chunks
    emb = store.save_embedding_set(name="e", model="m", template=None, strategy="content", cache_key="k",
                                   vectors=vectors)
    marker = store.db.execute("SELECT vectors FROM embedding_sets WHERE id = ?", [emb]).fetchone()[0]
    assert store_module.is_chunked(marker) and len(marker) < 100
    chunks = store.db.execute("SELECT data FROM blob_chunks WHERE owner = 'embedding_sets' ORDER BY seq").fetchall()
    assert len(chunks) == 2 and all(len(c[0]) <= 1000 for c in chunks)
    # the chunks, in order, are plain safetensors bytes
    np.testing.assert_array_equal(st_load(b"".join(c[0] for c in chunks))["vectors"], vectors)
    np.testing.assert_array_equal(store.load_embedding_set(emb).vectors, vectors)
    from semid_studio.core.analysis.reading import read_vectors

    np.testing.assert_array_equal(read_vectors(store, emb)[1], vectors)

    codes = np.stack([np.arange(300) % 7, np.arange(300) // 7, np.zeros(300, int)], axis=1)
    books = {"level_1": rng.normal(size=(7, 100)).astype(np.float32), "level_2": np.eye(43, dtype=np.float64)}
    store.add_items([{"item_id": f"x{k}"} for k in range(297)])
    run = store.save_quantizer_run(name="r", embedding_set_id=emb, method="rq-kmeans", spec={}, seed=0, codes=codes,
                                   sid_strings=[f"<a_{a}><b_{b}><c_0>" for a, b, _ in codes], metrics={},
                                   codebooks=books)
    loaded = store.load_quantizer_run(run)
    np.testing.assert_array_equal(loaded.codes, codes)
    for name, book in books.items():
        np.testing.assert_array_equal(loaded.codebooks[name], book)
        assert loaded.codebooks[name].dtype == book.dtype
    model = store.create_model(name="t", kind="tiger", quantizer_run_id=run, spec={})
    weights = {f"w{k}": rng.normal(size=(k + 1, 20)).astype(np.float32) for k in range(6)}
    store.save_checkpoint(model, "best", 1, weights, {"opt": rng.normal(size=300)})
    ckpt = store.load_checkpoint(model, "best")
    assert set(ckpt.weights) == set(weights) and ckpt.train_state["opt"].shape == (300,)
    for name, w in weights.items():
        np.testing.assert_array_equal(ckpt.weights[name], w)

    def n_chunks(owner):
        return store.db.execute("SELECT count(*) FROM blob_chunks WHERE owner = ?", [owner]).fetchone()[0]

    before = n_chunks("checkpoints")
    store.save_checkpoint(model, "best", 2, {"w": np.ones(3, np.float32)})  # small now: chunks go
    assert n_chunks("checkpoints") == 0 < before and store.load_checkpoint(model, "best").weights["w"][0] == 1
    store.save_checkpoint(model, "last", 3, weights)
    with store.atomic():
        store.db.execute("DELETE FROM models WHERE id = ?", [model])  # cascades to its checkpoints
    assert n_chunks("checkpoints") == 0
    copy = store.save_as(tmp_path / "copy.semid")
    store.close()
    with ProjectStore.open(copy) as again:
        np.testing.assert_array_equal(again.load_embedding_set(emb).vectors, vectors)


def test_a_missing_chunk_is_one_damage_line(tmp_path, monkeypatch):
    """A chunked payload with a piece gone reads as main's damaged-payload ProjectError."""
    from semid_studio.core.store import encoding as store_module

    monkeypatch.setattr(store_module, "BLOB_CHUNK_BYTES", 1000)
    store = make_store(tmp_path)
    vectors = np.ones((3, 100), dtype=np.float32)
    emb = store.save_embedding_set(name="e", model="m", template=None, strategy="content", cache_key="k",
                                   vectors=vectors)
    with store.atomic():
        store.db.execute("DELETE FROM blob_chunks WHERE seq = 1")
    with pytest.raises(ProjectError, match="embedding_sets, row #1, column vectors is damaged: incomplete"):
        store.load_embedding_set(emb)
    store.close()


def test_save_as_writes_a_compact_copy(tmp_path):
    store = make_store(tmp_path)
    store.add_interactions(pd.DataFrame({"user_id": ["u", "u"], "item_idx": [0, 2], "ts": [1.0, 2.0]}))
    copy = store.save_as(tmp_path / "copy.semid")
    store.close()
    with ProjectStore.open(copy) as again:
        assert again.interaction_count() == 2 and again.user_history("u") == [0, 2]


def test_interactions_keep_file_order_for_equal_times(tmp_path):
    store = make_store(tmp_path)
    store.add_interactions(pd.DataFrame({"user_id": ["u"] * 3, "item_idx": [2, 0, 1], "ts": [5.0, 5.0, 1.0]}))
    assert store.user_history("u") == [1, 2, 0]
    assert store.interactions_frame()["item_idx"].tolist() == [1, 2, 0]
    store.close()


def test_this_process_writes_and_closes_are_told_from_another_process_s(tmp_path):
    """The app reloads when ``data_version`` moves and this process began no write: a worker's
    write and a worker store's closing checkpoint (both move the app's data_version) count as ours."""
    from semid_studio.core.store import local_commits, local_writes_open

    path = tmp_path / "p.semid"
    ProjectStore.create(path).close()
    with ProjectStore.open(path) as app:
        seen = (app.data_version(), local_commits())
        worker = ProjectStore.open(path)
        with worker.atomic():
            worker.set_meta("k", 1)
            assert local_writes_open() == 1 and local_commits() == seen[1] + 1  # counted when the lock is taken
        assert local_writes_open() == 0 and app.data_version() != seen[0]
        seen = (app.data_version(), local_commits())
        worker.close()
        assert app.data_version() != seen[0] and local_commits() != seen[1]  # the checkpoint is ours too
        # another process's commit moves data_version alone
        seen = (app.data_version(), local_commits())
        conn = sqlite3.connect(path)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('x', '1')")
        conn.commit()
        conn.close()
        assert app.data_version() != seen[0] and local_commits() == seen[1]
