"""Embeddings with the real bundled MiniLM: templates, cache, growth, long texts, bad templates."""

import numpy as np
import pytest

from semid_studio.core.embed import BUNDLED_MODEL, default_template, embed_items, render_texts
from semid_studio.core.errors import InputError, SemidError
from semid_studio.core.events import Message, collect
from semid_studio.core.store import ProjectStore

ITEMS = [
    {"item_id": "t1", "title": "Waterproof hiking boots", "brand": "Trailmark", "categories": ["Outdoors", "Footwear"], "price": 89.0},
    {"item_id": "t2", "title": "Lightweight trail running shoes", "brand": "Trailmark", "categories": ["Outdoors", "Footwear"], "price": 75.5},
    {"item_id": "t3", "title": "Moisturising face cream &amp; serum", "brand": "Glow", "categories": ["Beauty", "Skin Care"], "price": None},
]


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "e.semid")
    s.add_items(ITEMS)
    yield s
    s.close()


def test_template_rendering_and_default():
    import pandas as pd

    frame = pd.DataFrame(ITEMS).set_index(pd.RangeIndex(3))
    tpl = default_template(list(frame.columns))
    assert tpl == "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"
    texts = render_texts(frame, tpl)
    assert texts[0] == "Title: Waterproof hiking boots; Brand: Trailmark; Categories: Outdoors, Footwear; Price: 89"
    assert texts[2].startswith("Title: Moisturising face cream & serum;")  # HTML entity decoded
    assert texts[2].endswith("Price:")  # missing value renders empty, not "None"
    with pytest.raises(InputError, match="template names unknown field.*'colour'"):
        render_texts(frame, "{title} {colour}")


def test_embed_is_cached_and_extended_for_new_items(store):
    set_id, events = collect(embed_items(store))
    emb = store.load_embedding_set(set_id)
    assert emb.model == BUNDLED_MODEL and emb.vectors.shape == (3, 384)
    assert emb.params["normalized"]
    # the two footwear items are closer to each other than to the face cream
    v = emb.vectors
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    again, events = collect(embed_items(store))
    assert again == set_id and any("already in the project" in e.text for e in events if isinstance(e, Message))
    store.add_items([{"item_id": "t4", "title": "Insulated camping tent", "brand": "Trailmark",
                      "categories": ["Outdoors", "Camping"], "price": 199.0}])
    grown, events = collect(embed_items(store))
    assert grown != set_id
    assert any("reusing 3 cached embeddings; encoding 1 new" in e.text for e in events if isinstance(e, Message))
    grown_vectors = store.load_embedding_set(grown).vectors
    np.testing.assert_allclose(grown_vectors[:3], v)
    assert grown_vectors.shape == (4, 384)


def test_long_texts_are_reported_not_silently_cut(store):
    long_title = " ".join(["extraordinarily"] * 400)
    store.add_items([{"item_id": "long", "title": long_title}])
    _, events = collect(embed_items(store, template="{title}"))
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert any("1 of 4 texts are longer than the model's 256-token window" in w for w in warnings)


def test_bad_inputs_get_clear_errors(tmp_path, store):
    with pytest.raises(InputError, match="unknown field"):
        collect(embed_items(store, template="{nope}"))
    assert store.list_embedding_sets() == []
    with pytest.raises(SemidError, match="cannot load embedding model 'no-such/model-xyz'"):
        collect(embed_items(store, model="no-such/model-xyz"))
    empty = ProjectStore.create(tmp_path / "empty.semid")
    with pytest.raises(SemidError, match="catalogue is empty"):
        collect(embed_items(empty))
    empty.close()


def test_multi_process_pool_gives_the_one_process_vectors(tmp_path):
    """Two CPU workers of sentence-transformers' pool encode the catalogue as one process does
    (the same cache key: the set is the same embedding), and bad counts are one line."""
    from semid_studio.core.embed import pool_devices

    items = [{"item_id": f"p{k}", "title": f"{word} {k}"} for k, word in
             enumerate(["hiking boots", "face cream", "camping tent", "trail shoes", "lip balm"] * 8)]
    one = ProjectStore.create(tmp_path / "one.semid")
    two = ProjectStore.create(tmp_path / "two.semid")
    for s in (one, two):
        s.add_items(items)
    single = one.load_embedding_set(collect(embed_items(one, template="{title}"))[0])
    set_id, events = collect(embed_items(two, template="{title}", processes=2, batch_size=4))
    pooled = two.load_embedding_set(set_id)
    assert any("encoding with 2 processes (cpu, cpu)" in e.text for e in events if isinstance(e, Message))
    assert pooled.params["device"] == "cpu,cpu" and pooled.cache_key == single.cache_key
    np.testing.assert_allclose(pooled.vectors, single.vectors, atol=1e-5)
    one.close()
    two.close()
    with pytest.raises(SemidError, match="more processes than cores"):
        pool_devices("cpu", 10_000)
    with pytest.raises(SemidError, match="at least 1"):
        pool_devices(None, 0)
    assert pool_devices("cpu", 1) is None
