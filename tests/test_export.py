"""SID table export: the three formats, provenance, codebooks, and clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from semid_studio.core.errors import SemidError
from semid_studio.core.export import export_codebooks, export_sid_table, read_provenance, sid_table
from semid_studio.core.store import ProjectStore


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "x.semid")
    s.add_items([{"item_id": "0012", "title": "Blue mug"}, {"item_id": "A7", "title": "Red mug"},
                 {"item_id": "B9", "title": "Tea pot"}])
    emb = s.save_embedding_set(name="e", model="all-MiniLM-L6-v2", template="Title: {title}", strategy="content",
                               cache_key="k", vectors=np.eye(3, 4, dtype=np.float32))
    codes = np.array([[12, 200, 0], [12, 200, 1], [3, 7, 0]])
    s.save_quantizer_run(name="run", embedding_set_id=emb, method="rq-kmeans", spec={"levels": 2, "codebook_size": 256},
                         seed=7, codes=codes, sid_strings=["<a_12><b_200><c_0>", "<a_12><b_200><c_1>", "<a_3><b_7><c_0>"],
                         metrics={"unique_before_dedup": 1 / 3},
                         codebooks={"level_0": np.ones((256, 4), np.float32), "level_1": np.zeros((256, 4), np.float32)})
    yield s
    s.close()


def test_table_has_ids_codes_and_sid(store):
    table = sid_table(store, with_title=True)
    assert list(table.columns) == ["item_id", "title", "code_a", "code_b", "code_c", "sid"]
    assert table["item_id"].tolist() == ["0012", "A7", "B9"]
    assert table.iloc[1].tolist() == ["A7", "Red mug", 12, 200, 1, "<a_12><b_200><c_1>"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_each_format_round_trips_with_provenance(store, tmp_path, suffix):
    out = tmp_path / f"sids{suffix}"
    written = export_sid_table(store, out)
    assert out in written and not out.with_name(out.name + ".part").exists()
    if suffix == ".csv":
        back = pd.read_csv(out, dtype={"item_id": str})
    elif suffix == ".parquet":
        back = pd.read_parquet(out)
    else:
        back = pd.DataFrame(json.loads(out.read_text())["items"])
    assert back["item_id"].tolist() == ["0012", "A7", "B9"]  # ids stay strings
    assert back["code_c"].tolist() == [0, 1, 0]  # the dedup level is never dropped
    assert back["sid"].is_unique
    prov = read_provenance(out)
    assert prov["embedding"]["model"] == "all-MiniLM-L6-v2"
    assert prov["embedding"]["template"] == "Title: {title}"
    assert prov["quantizer_run"]["seed"] == 7 and prov["quantizer_run"]["spec"]["codebook_size"] == 256
    assert prov["exported"]


def test_codebooks_export(store, tmp_path):
    npy = export_codebooks(store, tmp_path / "books.npy")
    assert np.load(npy).shape == (2, 256, 4)
    st = export_codebooks(store, tmp_path / "books.safetensors")
    tensors = load_file(st)
    assert set(tensors) == {"codebooks.level_0", "codebooks.level_1"}


def test_bad_export_paths(store, tmp_path):
    with pytest.raises(SemidError, match="unknown export format '.xlsx'"):
        export_sid_table(store, tmp_path / "out.xlsx")
    with pytest.raises(SemidError, match="does not exist"):
        export_sid_table(store, tmp_path / "nope" / "out.csv")
    with pytest.raises(SemidError, match="export as .npy or .safetensors"):
        export_codebooks(store, tmp_path / "books.txt")


def test_model_export_through_the_cli(sample_project, tmp_path, capsys):
    """`semid export --model` writes the best checkpoint's weights (exactly) and a JSON that says
    what the model is and which SIDs it writes."""
    from semid_studio.cli import main
    from semid_studio.core.events import collect
    from semid_studio.core.generative import make_spec, train_model

    with ProjectStore.open(sample_project) as s:
        spec = make_spec("tiny", {"max_steps": 40, "eval_every": 20, "valid_users": 200, "content_input": True})
        model_id, _ = collect(train_model(s, spec, preset="tiny"))
        best = s.load_checkpoint(model_id, "best")
        content = s.load_embedding_set(s.get_model(model_id).spec["content"]["embedding_set_id"])
    out = tmp_path / "sids.csv"
    assert main(["export", str(sample_project), str(out), "--model", str(model_id)]) == 0
    weights = load_file(str(tmp_path / "sids.model.safetensors"))
    assert set(weights) == set(best.weights)
    for name, value in best.weights.items():
        np.testing.assert_array_equal(weights[name], value)
    info = json.loads((tmp_path / "sids.model.json").read_text())
    assert info["model"]["id"] == model_id and info["checkpoint"]["chosen_on"] == "validation"
    assert info["spec"]["d_model"] == 32 and info["quantizer_run"]["id"] is not None
    # the model reads the items' content vectors: they ship beside it, and the sidecar says whose
    assert info["content_vectors"]["file"] == "sids.model.content.npy"
    assert info["content_vectors"]["embedding_set_id"] == content.id
    np.testing.assert_array_equal(np.load(tmp_path / "sids.model.content.npy"), content.vectors)
    assert "sids.model.safetensors" in capsys.readouterr().out

    assert main(["export", str(sample_project), str(out), "--model", "999"]) == 1
    assert "999" in capsys.readouterr().err
