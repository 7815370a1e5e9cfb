"""End-to-end CLI: the whole headless pipeline on sample_data/ (and Beauty when present),
machine-readable output, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO_ROOT, shared_dataset
from semid_studio.cli import main

SAMPLE = REPO_ROOT / "sample_data"


def semid(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_pipeline_on_sample_data(tmp_path, capsys):
    project = tmp_path / "shop.semid"
    assert semid(capsys, "new", project)[0] == 0
    code, out, _ = semid(capsys, "import", project, "--items", SAMPLE / "items.jsonl",
                         "--interactions", SAMPLE / "interactions.csv", "--queries", SAMPLE / "queries.csv")
    assert code == 0 and "3000 items" in out
    # a short template keeps this test quick; the full one is used by the sample project fixture
    assert semid(capsys, "embed", project, "--template", "{title}")[0] == 0
    code, out, _ = semid(capsys, "quantize", project, "--codebook-size", "32", "--seed", "3",
                         "--label-field", "categories[1]", "--json")
    assert code == 0
    report = json.loads(out)
    health = report["health"]
    assert report["spec"]["codebook_size"] == 32 and report["spec"]["seed"] == 3
    assert health["unique_share"] >= 0.9

    code, out, _ = semid(capsys, "info", project, "--json")
    info = json.loads(out)
    assert (info["items"], info["interactions"], info["users"], info["queries"]) == (3000, 33145, 2000, 6387)
    assert info["quantizer_runs"][0]["metrics"]["purity"]
    code, out, _ = semid(capsys, "info", project)
    assert "unique before dedup" in out and "(active)" in out

    for suffix in ("csv", "parquet", "json"):
        code, out, _ = semid(capsys, "export", project, tmp_path / f"sids.{suffix}", "--codebooks",
                             tmp_path / "books.npy")
        assert code == 0
    table = pd.read_parquet(tmp_path / "sids.parquet")
    assert len(table) == 3000 and table["sid"].is_unique
    assert table["sid"].str.fullmatch(r"(<[a-d]_\d+>){4}").all()

    first = table.iloc[0]
    code, out, _ = semid(capsys, "lookup", project, "--item", first["item_id"], "--json")
    assert json.loads(out)[0]["sid"] == first["sid"]
    prefix = f"<a_{first['code_a']}><b_{first['code_b']}>"
    code, out, _ = semid(capsys, "lookup", project, "--prefix", prefix, "--json")
    found = json.loads(out)
    assert first["item_id"] in [r["item_id"] for r in found]
    assert all(r["sid"].startswith(prefix) for r in found)


def test_console_script_runs(tmp_path):
    exe = [sys.executable, "-m", "semid_studio.cli"]
    result = subprocess.run(exe + ["--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("new", "import", "embed", "quantize", "info", "export", "lookup"):
        assert command in result.stdout


def test_bad_inputs_exit_non_zero_with_one_clear_line(tmp_path, capsys):
    project = tmp_path / "p.semid"
    code, _, err = semid(capsys, "info", tmp_path / "missing.semid")
    assert code == 1 and "no such project file" in err and len(err.strip().splitlines()) == 1
    semid(capsys, "new", project)
    code, _, err = semid(capsys, "new", project)
    assert code == 1 and "already exists" in err

    bad = tmp_path / "items.csv"
    bad.write_text("sku,name\nA1,Mug\nA1,Cup\n")
    code, _, err = semid(capsys, "import", project, "--items", bad, "--map", "item_id=sku", "--map", "title=name")
    assert code == 1 and "items.csv:3" in err and "duplicate item id 'A1'" in err
    odd = tmp_path / "odd.csv"
    odd.write_text("code,label\nA1,Mug\n")
    code, _, err = semid(capsys, "import", project, "--items", odd)
    assert code == 1 and "item_id" in err and "code" in err  # names the missing target and the columns it saw

    good = tmp_path / "good.csv"
    good.write_text("item_id,title\nA1,Mug\nA2,Cup\n")
    semid(capsys, "import", project, "--items", good)
    inter = tmp_path / "inter.csv"
    inter.write_text("user_id,item_id,timestamp\nu1,A1,1700000000\nu1,ZZ,1700000100\n")
    code, _, err = semid(capsys, "import", project, "--interactions", inter)
    assert code == 1 and "1 of 2 rows reference 1 item ids" in err and "'ZZ'" in err
    code, out, _ = semid(capsys, "import", project, "--interactions", inter, "--unknown-items", "skip")
    assert code == 0
    code, out, _ = semid(capsys, "info", project, "--json")
    assert json.loads(out)["interactions"] == 1

    code, _, err = semid(capsys, "quantize", project)
    assert code == 1 and "no embeddings yet" in err
    code, _, err = semid(capsys, "export", project, tmp_path / "x.csv")
    assert code == 1 and "no Semantic IDs yet" in err
    code, _, err = semid(capsys, "quantize", project, "--set", "levels=many")
    assert code == 1 and "levels" in err
    code, _, err = semid(capsys, "import", project, "--items", good, "--map", "oops")
    assert code == 1 and "TARGET=COLUMN" in err


@pytest.mark.shared_data
def test_beauty_through_the_generic_path(tmp_path, capsys):
    beauty = shared_dataset("amazon2014_beauty_5core")
    project = tmp_path / "beauty.semid"
    semid(capsys, "new", project)
    code, out, err = semid(capsys, "import", project, "--items", beauty / "items.jsonl.gz",
                           "--interactions", beauty / "interactions.tsv.gz", "--json")
    assert code == 0, err
    code, out, _ = semid(capsys, "info", project, "--json")
    info = json.loads(out)
    assert (info["items"], info["interactions"], info["users"]) == (12101, 198502, 22363)
    assert semid(capsys, "embed", project, "--template",
                 "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}")[0] == 0
    code, out, _ = semid(capsys, "quantize", project, "--label-field", "categories[1]", "--json")
    health = json.loads(out)["health"]
    # the targets: >= 95% unique before dedup, groups <= 3, purity >= 0.87, with the
    # quantiser sized to the catalogue (3 x 128 for 12k items) and every code in use
    assert health["unique_share"] >= 0.95
    assert health["largest_collision_group"] <= 3
    assert health["purity"]["level_1"] >= 0.87
    assert health["codebook_size"] == 128
    assert all(level["used"] == 128 for level in health["per_level"])


@pytest.mark.shared_data
def test_import_p5_interactions_only(tmp_path, capsys):
    # --format choices come from the formats registry: p5 is one of them
    import gzip

    raw = shared_dataset("amazon2014_sports_5core") / "raw"
    with gzip.open(raw / "p5_sequential_data.txt.gz", "rt") as fh:
        lines = [next(fh) for _ in range(30)]
    seq = tmp_path / "sports.txt"
    seq.write_text("".join(lines))
    project = tmp_path / "sports.semid"
    assert semid(capsys, "new", project)[0] == 0
    code, out, _ = semid(capsys, "import", project, "--interactions", seq, "--format", "p5", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["users"] == 30 and report["items_added"] == len({i for ln in lines for i in ln.split()[1:]})
    assert report["files"][0]["notes"][0].startswith("no items file: ")
    code, _, err = semid(capsys, "import", project, "--interactions", raw / "p5_datamaps.json.gz")
    assert code != 0 and "this is a P5 datamaps.json" in err and "--map" not in err
