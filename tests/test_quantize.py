"""Quantisers on real MiniLM embeddings of a few hundred real catalogue texts.

The texts come from the project's sample catalogue (sample_data/) or, when that is absent,
from the shared Amazon Beauty data; they are embedded once per module with the bundled
all-MiniLM-L6-v2.
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from semid_studio.core import quantize as q
from semid_studio.core.quantize import rq_kmeans, rq_vae
from semid_studio.core import sids
from semid_studio.core.errors import InputError, ProjectError, SemidError
from semid_studio.core.events import CancelToken, Cancelled, Message, Progress, collect, drive
from semid_studio.core.store import ProjectStore

REPO = Path(__file__).resolve().parents[1]
N_ITEMS = 400
TEMPLATE = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"


def _records() -> list[dict]:
    sample = REPO / "sample_data" / "items.jsonl"
    beauty = REPO / ".." / "shared" / "data" / "amazon2014_beauty_5core" / "items.jsonl.gz"
    if sample.exists():
        lines = sample.read_text(encoding="utf-8").splitlines()
    elif beauty.exists():
        with gzip.open(beauty, "rt", encoding="utf-8") as fh:
            lines = list(itertools.islice(fh, 3000))
    else:
        pytest.skip("neither sample_data/items.jsonl nor ../shared/data Beauty is available")
    records = [json.loads(line) for line in lines if line.strip()]
    step = max(1, len(records) // N_ITEMS)  # spread over the catalogue, not only its first category
    return records[::step][:N_ITEMS]


@pytest.fixture(scope="module")
def catalogue():
    """``(records, items frame, vectors)`` for a few hundred real items."""
    from semid_studio.core.embed import encode_texts, load_encoder, render_texts

    records = _records()
    frame = pd.DataFrame(records).set_index(pd.RangeIndex(len(records), name="idx"))
    texts = render_texts(frame, TEMPLATE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few hundred short texts: threads only spin on a shared machine
    try:
        vectors = drive(encode_texts(load_encoder(None, "cpu"), texts))
    finally:
        torch.set_num_threads(threads)
    return records, frame, vectors


@pytest.fixture
def project(tmp_path, catalogue):
    records, _, vectors = catalogue
    store = ProjectStore.create(tmp_path / "q.semid")
    store.add_items(records)
    store.save_embedding_set(name="minilm", model="all-MiniLM-L6-v2", template=TEMPLATE, strategy="content",
                             cache_key="k", vectors=vectors)
    yield store
    store.close()


def small(method: str = "rq-kmeans", preset: str | None = None, **overrides) -> q.Spec:
    base = {"levels": 3, "codebook_size": 16}
    return q.make_spec(method, preset, {**base, **overrides})


# --------------------------------------------------------------------------- specs


def test_make_spec_converts_cli_strings_and_rejects_bad_settings():
    spec = q.make_spec("rq-kmeans", None, {"levels": "4", "codebook_size": "64", "unique_last_level": "false",
                                           "balance_eps": "0.1", "balanced": "all"})
    assert (spec.levels, spec.codebook_size, spec.unique_last_level, spec.balance_eps, spec.balanced) == \
        (4, 64, False, 0.1, "all")
    vae = q.make_spec("rq-vae", "paper", {"hidden": "256,64"})
    assert vae.hidden == (256, 64) and vae.latent_dim == 32 and vae.beta == 0.25
    assert q.spec_from_dict("rq-vae", q.spec_to_dict(vae)) == vae
    assert q.spec_from_dict("rq-kmeans", json.loads(json.dumps(q.spec_to_dict(spec)))) == spec
    with pytest.raises(InputError, match=r"field 'levelz': unknown rq-kmeans setting\(s\) \['levelz'\]"):
        q.make_spec("rq-kmeans", None, {"levelz": "3"})
    with pytest.raises(InputError, match="field 'levels': expected a whole number, got 'three'"):
        q.make_spec("rq-kmeans", None, {"levels": "three"})
    with pytest.raises(InputError, match="field 'balanced': must be one of none, deep, all"):
        q.make_spec("rq-kmeans", None, {"balanced": "some"})
    with pytest.raises(InputError, match="field 'codebook_size': must be at least 2"):
        q.make_spec("rq-vae", None, {"codebook_size": 1})
    with pytest.raises(SemidError, match="unknown rq-vae preset 'huge'"):
        q.make_spec("rq-vae", "huge")
    with pytest.raises(SemidError, match="unknown quantiser method 'pq'"):
        q.make_spec("pq")
    assert "rq-kmeans:" in q.describe_presets() and "  tiny: " in q.describe_presets("rq-vae")


# --------------------------------------------------------------------------- RQ-KMeans


def test_rq_kmeans_is_reproducible_from_the_seed_and_codes_are_in_range(catalogue):
    _, _, vectors = catalogue
    spec = small()
    first, events = collect(q.fit_quantizer(vectors, spec))
    second = drive(q.fit_quantizer(vectors, spec))
    np.testing.assert_array_equal(first.codes, second.codes)
    assert first.codes.shape == (len(vectors), 3)
    assert first.codes.min() >= 0 and first.codes.max() < 16
    assert [b.shape for b in first.codebooks] == [(16, 384)] * 3
    assert [e.done for e in events if isinstance(e, Progress)] == [0, 1, 2, 3]
    other = drive(q.fit_quantizer(vectors, small(seed=5)))
    assert not np.array_equal(other.codes, first.codes)
    assert set(first.model_state) == {"coarse_mean", "coarse_axes", "coarse_centroids"}
    # reconstructions are the sums of the chosen codewords
    rebuilt = sum(first.codebooks[j][first.codes[:, j]] for j in range(3))
    np.testing.assert_allclose(rebuilt, first.reconstructions, atol=1e-5)
    sk = small(backend="sklearn", balanced="none")
    np.testing.assert_array_equal(drive(q.fit_quantizer(vectors, sk)).codes, drive(q.fit_quantizer(vectors, sk)).codes)


def test_balanced_assignment_evens_out_cluster_sizes(catalogue):
    _, _, vectors = catalogue
    x = q.prepare_vectors(vectors, True)
    centroids = rq_kmeans._kmeans_centroids(x, 16, q.RQKMeansSpec(codebook_size=16), seed=0)
    nearest = np.bincount(q.nearest_codes(x, centroids), minlength=16)
    balanced = np.bincount(q.balanced_assign(x, centroids, eps_rel=0.02), minlength=16)
    assert balanced.sum() == len(x)
    assert balanced.max() < nearest.max() and balanced.std() < nearest.std()


def test_unique_last_codes_is_a_minimum_cost_matching():
    codebook = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    residual = np.array([[0.1, 0.0], [0.0, 0.1], [0.05, 0.05], [0.9, 0.0], [4.0, 4.0]], dtype=np.float32)
    prefix = np.array([[0], [0], [0], [1], [0]])
    nearest = q.nearest_codes(residual, codebook)
    assert nearest.tolist() == [0, 0, 0, 1, 3]
    codes, moved = q.unique_last_codes(prefix, residual, codebook, nearest)
    group = [0, 1, 2, 4]
    assert len({int(codes[i]) for i in group}) == 4  # distinct inside prefix 0
    assert codes[3] == 1  # alone in its prefix: untouched
    cost = lambda assign: sum(float(((residual[i] - codebook[c]) ** 2).sum()) for i, c in zip(group, assign))
    best = min(itertools.permutations(range(4)), key=cost)
    assert cost([codes[i] for i in group]) == pytest.approx(cost(best))
    assert moved == int((codes != nearest).sum()) == 2


def test_unique_last_level_removes_collisions_when_groups_fit(catalogue):
    _, _, vectors = catalogue
    plain = drive(q.fit_quantizer(vectors, small(preset="plain")))
    matched = drive(q.fit_quantizer(vectors, small(preset="plain", unique_last_level=True)))
    np.testing.assert_array_equal(plain.codes[:, :2], matched.codes[:, :2])  # only the last level moves
    _, plain_sizes = np.unique(plain.codes, axis=0, return_counts=True)
    assert plain_sizes.max() > 1  # near-duplicate products collide without the matching
    _, prefix_sizes = np.unique(matched.codes[:, :2], axis=0, return_counts=True)
    assert prefix_sizes.max() <= 16  # every group fits in the codebook ...
    assert len(np.unique(matched.codes, axis=0)) == len(vectors)  # ... so every tuple is unique
    assert matched.info["unmatched_largest_group"] == plain_sizes.max()
    assert matched.info["last_level_reassigned"] > 0
    codes = sids.add_dedup_level(matched.codes)
    assert codes[:, -1].max() == 0


def test_codebook_larger_than_the_catalogue_is_a_clear_error(catalogue):
    _, _, vectors = catalogue
    with pytest.raises(SemidError, match="a codebook of 256 codes needs at least 256 items, but there are 100"):
        drive(q.fit_quantizer(vectors[:100], q.make_spec("rq-kmeans")))
    bad = vectors[:300].copy()
    bad[7, 3] = np.nan
    with pytest.raises(SemidError, match="item idx 7 contains NaN"):
        drive(q.fit_quantizer(bad, small()))


# --------------------------------------------------------------------------- RQ-VAE


def test_rq_vae_trains_without_collapse_and_encodes_stored_codes_again(project, catalogue):
    _, _, vectors = catalogue
    spec = q.make_spec("rq-vae", "tiny", {"codebook_size": 32, "epochs": 12, "unique_last_level": False})
    run_id, events = collect(q.quantize_project(project, spec=spec, label_field="categories"))
    run = project.load_quantizer_run(run_id)
    assert run.method == "rq-vae" and run.spec["hidden"] == [128, 64]
    levels = run.metrics["per_level"]
    # k-means initialised codebooks + dead-code restarts: far more than a handful of codes in use
    assert levels[0]["used"] >= 24 and all(lvl["used"] >= 16 for lvl in levels)
    assert run.metrics["training"]["epoch"] == 12
    assert any(isinstance(e, Progress) and e.stage == "RQ-VAE" and "codes used" in e.message for e in events)
    # the module is rebuilt from the stored spec + weights and gives the stored codes back
    again = q.encode_with_run(run, vectors)
    np.testing.assert_array_equal(again, run.codes[:, :3])
    assert set(run.codebooks) == {"level_1", "level_2", "level_3"}
    assert run.codebooks["level_1"].shape == (32, 16)


def test_dead_codes_are_restarted_onto_item_residuals(catalogue):
    import torch

    _, _, vectors = catalogue
    spec = q.make_spec("rq-vae", "tiny", {"codebook_size": 16, "levels": 2})
    model = rq_vae._build_rqvae(vectors.shape[1], spec)
    z = rq_vae._latents(model, torch.from_numpy(q.prepare_vectors(vectors, True)))
    with torch.no_grad():
        model.codebooks.data[:] = 1e3  # every codeword far away: only one code per level can win
        model.codebooks.data[:, 0] = 0.0
    restarted = rq_vae._restart_dead_codes(model, z, torch.Generator().manual_seed(0))
    assert restarted == 2 * 15
    books = [b.detach().numpy() for b in model.codebooks]
    codes, _ = q.residual_encode(z.numpy(), books)
    assert len(np.unique(codes[:, 0])) > 8 and len(np.unique(codes[:, 1])) > 8


# --------------------------------------------------------------------------- the project step


def test_quantize_project_stores_an_active_run_whose_sids_load_back(project, catalogue):
    _, frame, vectors = catalogue
    spec = small()
    run_id, events = collect(q.quantize_project(project, spec=spec, label_field="categories", name="mine"))
    assert project.active_run_id() == run_id
    run = project.load_quantizer_run()
    assert run.id == run_id and run.name == "mine" and run.n_levels == 3 and run.seed == 0
    assert q.spec_from_dict(run.method, run.spec) == spec
    codes = run.codes
    assert codes.shape == (len(vectors), 4)
    assert len(np.unique(codes, axis=0)) == len(codes)
    texts = sids.sid_strings(codes)
    assert project.sid_of(run_id, 5) == texts[5]
    prefix = tuple(codes[5, :2])
    index = sids.SidIndex(codes)
    assert sorted(project.items_with_sid_prefix(run_id, sids.sid_string(prefix))) == sorted(index.items(prefix))
    m = run.metrics
    assert m["dedup_level_size"] == m["largest_collision_group"] == codes[:, -1].max() + 1
    assert m["purity"]["label_field"] == "categories" and 0 < m["purity"]["level_1"] <= m["purity"]["level_2"] <= 1
    assert 0 < m["relative_reconstruction_error"] < 1
    assert m["per_level"][0]["used"] == 16 and m["fit_seconds"] > 0
    summary = next(e.text for e in events if isinstance(e, Message) and e.text.startswith("saved quantiser run"))
    assert "unique before dedup" in summary and "level-1 purity" in summary
    # new vectors get codes from the stored run: level 1 (chosen in the stored principal
    # subspace, not balanced) is exactly reproduced
    assert spec.coarse_dims == 32 and run.model_state["coarse_axes"].shape == (384, 32)
    encoded = q.encode_with_run(run, vectors)
    np.testing.assert_array_equal(encoded[:, 0], codes[:, 0])
    # (3 x 32: at 3 x 16 the plain preset leaves under half the items unique, which is not made active)
    plain_id = drive(q.quantize_project(project, spec=small(preset="plain", codebook_size=32)))
    plain = project.load_quantizer_run(plain_id)
    np.testing.assert_array_equal(q.encode_with_run(plain, vectors), plain.codes[:, :3])
    assert project.active_run_id() == plain_id


def test_cancelled_or_failing_quantize_project_leaves_the_project_untouched(project):
    token = CancelToken()

    def cancel_after_first_level(event):
        if isinstance(event, Progress) and event.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        drive(q.quantize_project(project, spec=small(), cancel=token), cancel_after_first_level)
    assert project.list_quantizer_runs() == [] and project.active_run_id() is None
    with pytest.raises(InputError, match="field 'colour': unknown label field"):
        drive(q.quantize_project(project, spec=small(), label_field="colour"))
    project.add_items([{"item_id": "late", "title": "added after embedding"}])
    with pytest.raises(ProjectError, match="covers 400 items but the catalogue has 401"):
        drive(q.quantize_project(project, spec=small()))
    assert project.list_quantizer_runs() == []
