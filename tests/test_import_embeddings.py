"""Precomputed item embeddings: .npy + ids (text or CSV) and Parquet (list column or one column per
dimension), reordered to the project's idx order; every mismatch is a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semid_studio.core.errors import InputError, ProjectError
from semid_studio.core.importing import import_embeddings
from semid_studio.core.store import ProjectStore

IDS = ["0123", "B00X", "7806397051", "z9"]


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "p.semid")
    s.add_items([{"item_id": i, "title": f"Item {i}"} for i in IDS])
    yield s
    s.close()


def vectors_for(ids):
    """A distinct, recognisable vector per id (its position in IDS in every component)."""
    return np.array([[IDS.index(i) + 0.25 * d for d in range(3)] for i in ids], dtype=np.float32)


def expected():
    return vectors_for(IDS)  # idx order = IDS order


def test_npy_with_ids_file_is_reordered(store, tmp_path):
    order = ["z9", "0123", "7806397051", "B00X"]
    np.save(tmp_path / "emb.npy", vectors_for(order))
    (tmp_path / "ids.txt").write_text("item_id\n" + "\n".join(order) + "\n")
    set_id = import_embeddings(store, tmp_path / "emb.npy", ids_path=tmp_path / "ids.txt", model_name="my-model")
    emb = store.load_embedding_set(set_id)
    assert emb.strategy == "imported" and emb.model == "my-model" and emb.template is None
    assert emb.cache_key.startswith("imported-") and emb.params["ids"] == "ids.txt"
    np.testing.assert_array_equal(emb.vectors, expected())
    # the same files again: the same set, not a copy
    assert import_embeddings(store, tmp_path / "emb.npy", ids_path=tmp_path / "ids.txt") == set_id


def test_npy_with_csv_ids_found_beside_it(store, tmp_path):
    order = ["B00X", "z9", "7806397051", "0123"]
    np.save(tmp_path / "vecs.npy", vectors_for(order).astype(np.float64))
    pd.DataFrame({"row": range(4), "asin": order}).to_csv(tmp_path / "vecs_ids.csv", index=False)
    emb = store.load_embedding_set(import_embeddings(store, tmp_path / "vecs.npy"))
    np.testing.assert_array_equal(emb.vectors, expected())
    assert emb.vectors.dtype == np.float32


def test_parquet_list_column_and_numeric_columns(store, tmp_path):
    order = ["7806397051", "0123", "z9", "B00X"]
    vecs = vectors_for(order)
    pd.DataFrame({"item_id": order, "embedding": list(vecs)}).to_parquet(tmp_path / "a.parquet")
    emb = store.load_embedding_set(import_embeddings(store, tmp_path / "a.parquet", name="from parquet"))
    np.testing.assert_array_equal(emb.vectors, expected())
    assert emb.name == "from parquet"
    wide = pd.DataFrame(vecs, columns=["d0", "d1", "d2"])
    wide.insert(0, "product_id", order)
    wide.to_parquet(tmp_path / "b.parquet")
    emb = store.load_embedding_set(import_embeddings(store, tmp_path / "b.parquet"))
    np.testing.assert_array_equal(emb.vectors, expected())


def test_missing_unknown_and_duplicate_ids(store, tmp_path):
    np.save(tmp_path / "three.npy", vectors_for(IDS[:3]))
    (tmp_path / "three.txt").write_text("\n".join(IDS[:3]) + "\n")
    with pytest.raises(InputError, match=r"1 of 4 catalogue items have no vector \(e.g. 'z9'\)"):
        import_embeddings(store, tmp_path / "three.npy", ids_path=tmp_path / "three.txt")
    np.save(tmp_path / "five.npy", np.zeros((5, 3), dtype=np.float32))
    (tmp_path / "five.txt").write_text("\n".join(IDS + ["nope"]) + "\n")
    with pytest.raises(InputError, match=r"1 of 5 ids are not items of the project \(e.g. 'nope'\)") as info:
        import_embeddings(store, tmp_path / "five.npy", ids_path=tmp_path / "five.txt")
    assert info.value.file == str(tmp_path / "five.txt") and info.value.line == 5
    (tmp_path / "dup.txt").write_text("\n".join(IDS + ["0123"]) + "\n")
    with pytest.raises(InputError, match="duplicate item id '0123' \\(first at line 1\\)") as info:
        import_embeddings(store, tmp_path / "five.npy", ids_path=tmp_path / "dup.txt")
    assert info.value.line == 5
    assert store.list_embedding_sets() == []


def test_shape_content_and_file_errors(store, tmp_path):
    np.save(tmp_path / "e.npy", vectors_for(IDS))
    (tmp_path / "short.txt").write_text("\n".join(IDS[:2]) + "\n")
    with pytest.raises(InputError, match="2 ids for a matrix of 4 rows"):
        import_embeddings(store, tmp_path / "e.npy", ids_path=tmp_path / "short.txt")
    with pytest.raises(InputError, match="needs the item ids"):
        import_embeddings(store, tmp_path / "e.npy")
    bad = vectors_for(IDS)
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    (tmp_path / "ids.txt").write_text("\n".join(IDS) + "\n")
    with pytest.raises(InputError, match="row 3 has NaN"):
        import_embeddings(store, tmp_path / "nan.npy", ids_path=tmp_path / "ids.txt")
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}]] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="cannot read the matrix"):  # never unpickled
        import_embeddings(store, tmp_path / "obj.npy", ids_path=tmp_path / "ids.txt")
    np.save(tmp_path / "flat.npy", np.zeros(4, dtype=np.float32))
    with pytest.raises(InputError, match="expected a 2-D matrix"):
        import_embeddings(store, tmp_path / "flat.npy", ids_path=tmp_path / "ids.txt")
    pd.DataFrame({"item_id": IDS, "v": [[1.0, 2.0]] * 3 + [[1.0]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(InputError, match="row 4: vector has 1 values"):
        import_embeddings(store, tmp_path / "ragged.parquet")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="expected a .npy matrix"):
        import_embeddings(store, tmp_path / "x.txt")
    assert store.list_embedding_sets() == []


def test_empty_catalogue(tmp_path):
    with ProjectStore.create(tmp_path / "empty.semid") as empty:
        with pytest.raises(ProjectError, match="catalogue is empty"):
            import_embeddings(empty, tmp_path / "whatever.npy")


# --------------------------------------------------------------------------- streamed import


def big_catalogue(tmp_path, n):
    s = ProjectStore.create(tmp_path / "big.semid")
    s.add_items([{"item_id": f"it{k:05d}"} for k in range(n)])
    return s


@pytest.fixture
def small_pieces(monkeypatch):
    """Blocks of 500 rows and 1 MB chunks, so that a 20 MB matrix crosses many of both."""
    from semid_studio.core.store import encoding as store_module
    from semid_studio.core.importing import embeddings as emb_module

    monkeypatch.setattr(emb_module, "ROWS_PER_BLOCK", 500)
    monkeypatch.setattr(store_module, "BLOB_CHUNK_BYTES", 1 << 20)


def _peak_while(fn):
    """(result, peak bytes Python and numpy allocated while fn ran; Arrow's own pool is measured too)."""
    import tracemalloc

    import pyarrow as pa

    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
    return result, peak, pool.max_memory()


@pytest.mark.parametrize("shuffled", [True, False], ids=["shuffled", "in-order"])
def test_npy_is_streamed_in_blocks(tmp_path, small_pieces, shuffled):
    """A 20 MB matrix lands row for row in idx order (through the scratch file when shuffled,
    straight through when already in order) with memory well under the matrix's size."""
    n, dim = 20_000, 256
    store = big_catalogue(tmp_path, n)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)  # row k belongs to item it{k}
    order = rng.permutation(n) if shuffled else np.arange(n)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "v.npy", vectors[order])
    (data / "v_ids.txt").write_text("\n".join(f"it{k:05d}" for k in order) + "\n")
    set_id, peak, _ = _peak_while(lambda: import_embeddings(store, data / "v.npy"))
    assert peak < vectors.nbytes / 2, f"peak {peak:,} bytes for a {vectors.nbytes:,}-byte matrix"
    chunks = store.db.execute("SELECT count(*) FROM blob_chunks WHERE owner = 'embedding_sets'").fetchone()[0]
    assert chunks == 20  # 20 MB in 1 MB pieces
    np.testing.assert_array_equal(store.load_embedding_set(set_id).vectors, vectors)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".semid-vectors")] == []  # scratch removed
    store.close()


def test_parquet_is_streamed_in_batches(tmp_path, small_pieces):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, dim = 20_000, 256
    store = big_catalogue(tmp_path, n)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    order = rng.permutation(n)
    flat = pa.array(vectors[order].reshape(-1))
    table = pa.table({"item_id": [f"it{k:05d}" for k in order],
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)})
    pq.write_table(table, tmp_path / "v.parquet", row_group_size=1000)
    del table, flat
    set_id, peak, arrow_peak = _peak_while(lambda: import_embeddings(store, tmp_path / "v.parquet"))
    assert peak < vectors.nbytes / 2 and arrow_peak < vectors.nbytes / 2, (peak, arrow_peak)
    np.testing.assert_array_equal(store.load_embedding_set(set_id).vectors, vectors)
    store.close()


@pytest.mark.parametrize("shuffled", [True, False], ids=["shuffled", "in-order"])
def test_bad_rows_late_in_a_stream_store_nothing(tmp_path, small_pieces, shuffled):
    """NaN rows found blocks after the first: one line naming the first row and the count, no
    embedding set, no chunks, no scratch file; a file cut short is one line too."""
    n, dim = 3_000, 8
    store = big_catalogue(tmp_path, n)
    vectors = np.ones((n, dim), dtype=np.float32)
    vectors[2_600, 3] = np.inf
    vectors[2_900, 0] = np.nan
    order = np.arange(n)[::-1] if shuffled else np.arange(n)
    np.save(tmp_path / "v.npy", vectors[order])
    (tmp_path / "v_ids.txt").write_text("\n".join(f"it{k:05d}" for k in order) + "\n")
    first = min(int(np.flatnonzero(order == 2_600)[0]), int(np.flatnonzero(order == 2_900)[0])) + 1
    with pytest.raises(InputError, match=rf"vector of row {first} has NaN or infinite values \(2 rows like this\)"):
        import_embeddings(store, tmp_path / "v.npy")
    assert store.list_embedding_sets() == []
    assert store.db.execute("SELECT count(*) FROM blob_chunks").fetchone()[0] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".semid-vectors")]
    raw = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) - 1000])
    (tmp_path / "cut_ids.txt").write_text((tmp_path / "v_ids.txt").read_text())
    with pytest.raises(InputError, match="cut.npy") as info:
        import_embeddings(store, tmp_path / "cut.npy")
    assert "\n" not in str(info.value)
    assert store.list_embedding_sets() == []
    store.close()
