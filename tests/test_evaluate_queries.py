"""Scoring a query log that is not in the project (``semid evaluate --task search --queries FILE``).

The project imports only part of the sample's queries (train rows); a tiny joint model is trained
on it (seconds). The outside file is written by the test from test rows the project never imported,
plus a request for an item not in the catalogue and a copy of a training query. The figures must
be those the in-project evaluation gives for the same requests (checked on a copy that imports the
file), the project must be unchanged but for one evaluation row, and a bad file must give one line
naming the file, line and field, as the import does.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest

from semid_studio.cli import main
from semid_studio.core import importing
from semid_studio.core import search as S
from semid_studio.core.errors import InputError, UnknownItemsError
from semid_studio.core.events import collect, drive
from semid_studio.core.generative import make_spec
from semid_studio.core.generative.joint import evaluate_joint, make_joint_spec, train_joint
from semid_studio.core.generative.joint.query_log import evaluate_query_log, training_overlap
from semid_studio.core.store import ProjectStore

from conftest import shared_dataset

TINY = {"max_steps": 150, "eval_every": 75, "valid_users": 300}
N_TRAIN, N_OUTSIDE = 1500, 300
METRICS = ("recall@10", "recall@30", "ndcg@10", "ndcg@30", "mrr")


def _rows(split: str) -> list[dict]:
    from semid_studio.core.pipeline import sample_files

    with open(sample_files()["queries"], newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def _write_csv(path: Path, rows: list[dict], fields=("query", "item_id", "split")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _tables(path: Path) -> dict[str, list]:
    """Every table of the project file, row by row (BLOBs included)."""
    with ProjectStore.open(path) as store:
        names = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {n: store.db.execute(f"SELECT * FROM [{n}] ORDER BY rowid").fetchall() for n in names}


@pytest.fixture(scope="module")
def project(sample_project_master, tmp_path_factory):
    """The sample project with only part of the train queries imported, a tiny joint model, and an
    outside query file of test rows it never imported."""
    folder = tmp_path_factory.mktemp("evalq")
    path = folder / "part.semid"
    shutil.copyfile(sample_project_master, path)
    train_rows = _rows("train")[:N_TRAIN]
    outside_rows = _rows("test")[:N_OUTSIDE]
    with ProjectStore.open(path) as store:
        store.delete_queries()  # the master imported every query: keep only the part this project imports
        drive(importing.import_data(store, queries=_write_csv(folder / "train_part.csv", train_rows)))
        model_id, _ = collect(train_joint(store, make_spec("tiny", TINY), make_joint_spec({"mix": 0.5}),
                                          preset="tiny"))
    # the outside log: held-out rows, one request for an unknown item, one copy of a training query
    extra = [{"query": "a thing nobody sells", "item_id": "NO-SUCH-ITEM", "split": "test"},
             {**train_rows[0], "split": "test"}]
    outside = _write_csv(folder / "outside.csv", outside_rows + extra)
    return path, model_id, outside


@pytest.fixture(scope="module")
def scored(project, tmp_path_factory):
    """The outside file scored on a copy of the project, with the tables before and after."""
    path, model_id, outside = project
    copy = tmp_path_factory.mktemp("evalq_scored") / "scored.semid"
    shutil.copyfile(path, copy)
    before = _tables(copy)
    with ProjectStore.open(copy) as store:
        report, events = collect(evaluate_query_log(store, outside, bootstrap=0))
    return copy, report, events, before, _tables(copy)


def test_all_methods_scored_with_the_search_report(project, scored):
    _path, model_id, outside = project
    _copy, report, events, _before, _after = scored
    assert list(report["methods"]) == [f"joint #{model_id}", "bm25", "dense #1 content"]
    for name, m in report["methods"].items():
        assert m["n"] == N_OUTSIDE + 1  # the unknown item's request is dropped
        for key in METRICS:
            assert 0.0 <= m[key] <= 1.0, (name, key, m[key])
        assert m["recall@30"] >= m["recall@10"]
        assert m["head"]["n"] + m["torso"]["n"] == m["n"] and m["asked"]["n"] + m["never_asked"]["n"] == m["n"]
    joint = report["methods"][f"joint #{model_id}"]
    assert joint["recall@30"] > 0.3  # the tiny model has learnt something
    # the share of requests cut by the encoder, as the stored-split evaluation reports it
    cut = joint["query_truncation"]
    assert cut["n"] == N_OUTSIDE + 1 and 0 <= cut["n_truncated"] <= cut["n"] and cut["max_query_tokens"] > 0
    assert cut["share_truncated"] == pytest.approx(cut["n_truncated"] / cut["n"], abs=1e-4)
    assert "query_truncation" not in report["methods"]["bm25"]
    f = report["file"]
    assert (f["name"], f["rows"], f["requests"], f["n_dropped_unknown_items"]) == \
        ("outside.csv", N_OUTSIDE + 2, N_OUTSIDE + 1, 1)
    assert f["unknown_item_examples"] == ["NO-SUCH-ITEM"] and f["file_splits"] == {"test": N_OUTSIDE + 1}
    import hashlib

    assert f["sha256"] == hashlib.sha256(Path(outside).read_bytes()).hexdigest()
    assert any("dropped 1 of" in n and "NO-SUCH-ITEM" in n for n in report["notes"])
    texts = [e.text for e in events if hasattr(e, "text")]
    assert any("not stored in the project" in t for t in texts)


def test_the_guard_counts_requests_that_are_training_queries(project, scored):
    path, _model_id, outside = project
    _copy, report, _events, _before, _after = scored
    with ProjectStore.open(path) as store:
        train = {t.strip().lower() for t in store.queries_frame(split="train")["text"]}
    with open(outside, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["item_id"] != "NO-SUCH-ITEM"]
    expected = sum(r["query"].strip().lower() in train for r in rows)
    leak = report["leakage"]
    assert expected >= 1 and leak["same_text_as_training"] == expected and leak["overlap"] == expected
    assert leak["n_training_queries"] == N_TRAIN
    assert any(f"{expected} of {N_OUTSIDE + 1} requests are also training queries" in n for n in report["notes"])
    with ProjectStore.open(path) as store:  # the function on its own
        assert training_overlap(store, ["nothing like it", rows[-1]["query"]], [0, 1])["same_text_as_training"] == 1


def test_the_project_is_unchanged_but_for_one_evaluation_row(project, scored):
    _path, _model_id, outside = project
    _copy, report, _events, before, after = scored
    assert set(before) == set(after)
    for table in before:
        if table != "evaluations":
            assert before[table] == after[table], f"table {table} changed"
    assert after["evaluations"][:-1] == before["evaluations"] and len(after["evaluations"]) == len(before["evaluations"]) + 1
    with ProjectStore.open(_copy) as store:
        (row,) = [e for e in store.list_evaluations() if e["id"] == report["id"]]
        assert store.query_count() == N_TRAIN
    assert (row["task"], row["split"], row["settings"]["method"]) == ("search", "outside.csv", "query-file")
    assert row["settings"]["file"]["sha256"] == report["file"]["sha256"]
    stored = json.dumps(row)
    with open(outside, newline="") as f:
        for r in csv.DictReader(f):
            assert json.dumps(r["query"])[1:-1] not in stored, f"a query of the file was stored: {r['query']!r}"
    # the Evaluation panel's reading of it: one row per method
    from semid_studio.gui.panels.evaluation import evaluation_methods

    assert [m for m, _v in evaluation_methods(row)] == list(report["methods"])


def test_figures_match_the_in_project_evaluation_of_the_same_requests(project, scored, tmp_path):
    """The same requests imported as the test split of a copy and scored by the in-project code."""
    path, model_id, outside = project
    _copy, report, _events, _before, _after = scored
    copy = tmp_path / "imported.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        drive(importing.import_data(store, queries=outside, on_unknown="skip"))
        assert store.query_count("test") == N_OUTSIDE + 1
        joint = drive(evaluate_joint(store, [model_id], rec=False, bootstrap=0, save=False))["search"]
        bm25 = drive(S.evaluate_search(store, "bm25", bootstrap=0, save=False))["metrics"]
        dense = drive(S.evaluate_search(store, "dense", embedding_set_ids=[1], bootstrap=0, save=False))["metrics"]
    for name, expected in ((f"joint #{model_id}", joint), ("bm25", bm25), ("dense #1 content", dense)):
        got = report["methods"][name]
        assert got["n"] == expected["n"]
        for group in (None, "head", "torso", "asked", "never_asked"):
            g, e = (got, expected) if group is None else (got[group], expected[group])
            for key in METRICS:
                assert g.get(key) == pytest.approx(e.get(key), abs=1e-12), (name, group, key)


def test_bad_files_one_line_naming_file_line_and_field(project, tmp_path):
    path, _model_id, _outside = project
    bad = tmp_path / "bad.csv"
    bad.write_text("query,item_id\nwaterproof boots,P00002\n,P00004\n")
    copy = tmp_path / "p.semid"
    shutil.copyfile(path, copy)
    with ProjectStore.open(copy) as store:
        with pytest.raises(InputError) as err:
            drive(evaluate_query_log(store, bad))
        message = str(err.value)
        assert "\n" not in message and f"{bad}:3" in message and "field 'query'" in message, message
        unknown = tmp_path / "unknown.csv"
        unknown.write_text("query,item_id\nwaterproof boots,P00002\nsomething,NOPE\n")
        with pytest.raises(UnknownItemsError, match=r"unknown.csv:3, field 'item_id'.*--unknown-items skip"):
            drive(evaluate_query_log(store, unknown, on_unknown="abort"))
        # a column the import cannot find: the hint names the option of this command that fixes it
        nocol = tmp_path / "nocolumn.csv"
        nocol.write_text("words,item_id\nwaterproof boots,P00002\n")
        with pytest.raises(InputError, match=r"nocolumn.csv:1, field 'text': no query text column.*--map text=words"):
            drive(evaluate_query_log(store, nocol))
        n_before = len(store.list_evaluations())
    # the CLI says the same in one line, exit status 1, and nothing is stored
    assert main(["evaluate", str(copy), "--task", "search", "--queries", str(bad)]) == 1
    with ProjectStore.open(copy) as store:
        assert len(store.list_evaluations()) == n_before


def test_cli_json_keys_and_options(project, tmp_path, capsys):
    path, model_id, _outside = project
    copy = tmp_path / "cli.semid"
    shutil.copyfile(path, copy)
    # another format and column names, read through --map and --format as 'semid import' reads them
    log = tmp_path / "log.jsonl.gz"
    with gzip.open(log, "wt", encoding="utf-8") as f:
        for r in _rows("test")[:40]:
            f.write(json.dumps({"request": r["query"], "sku": r["item_id"]}) + "\n")
    code = main(["evaluate", str(copy), "--task", "search", "--queries", str(log), "--format", "jsonl",
                 "--map", "text=request", "--map", "item_id=sku", "--model", str(model_id), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) >= {"id", "file", "leakage", "methods", "notes", "settings"}
    assert set(out["methods"]) == {f"joint #{model_id}", "bm25", "dense #1 content"}
    for m in out["methods"].values():
        assert {"n", "recall@10", "recall@30", "mrr", "ndcg@10"} <= set(m) and m["n"] == 40
    assert out["file"]["requests"] == 40 and out["file"]["n_dropped_unknown_items"] == 0
    assert out["file"]["mapping"] == {"text": "request", "item_id": "sku"}
    assert "rows" not in out["leakage"]
    assert out["methods"][f"joint #{model_id}"]["query_truncation"]["n"] == 40
    # the table: one line per method and the share cut by the encoder
    assert main(["evaluate", str(copy), "--task", "search", "--queries", str(log), "--format", "jsonl",
                 "--map", "text=request", "--map", "item_id=sku"]) == 0
    table = capsys.readouterr().out
    assert "log.jsonl.gz" in table and "bm25" in table and f"joint #{model_id}: " in table and "word pieces" in table
    # --queries needs the search task
    assert main(["evaluate", str(copy), "--task", "rec", "--queries", str(log)]) == 1
    assert "--task search" in capsys.readouterr().err


def test_baselines_only_without_a_joint_model(sample_project, tmp_path):
    rows = _rows("test")[:30]
    log = _write_csv(tmp_path / "log.csv", rows)
    with ProjectStore.open(sample_project) as store:
        report = drive(evaluate_query_log(store, log, bootstrap=0, save=False))
    assert list(report["methods"]) == ["bm25", "dense #1 content"] and report["id"] is None
    assert any("no joint model" in n and "baselines only" in n for n in report["notes"])


def test_real_movielens_tomt_validation_requests(tmp_path):
    """The real requests of movielens_tomt (BM25 only: no embeddings, no joint model, seconds)."""
    folder = shared_dataset("movielens_tomt")
    path = tmp_path / "tomt.semid"
    with gzip.open(folder / "queries.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] == "train"))
    with ProjectStore.create(path) as store:
        store.set_meta("template", "{title}; {genres}; {tags}")  # benchmarks/bench_search.py's
        drive(importing.import_data(store, items=folder / "ml-latest-small" / "movies.csv", queries=train))
    before = _tables(path)
    with ProjectStore.open(path) as store:
        # the whole file: its validation requests, and its train requests, which the guard catches
        report = drive(evaluate_query_log(store, folder / "queries.jsonl.gz", bootstrap=0, save=False))
    assert _tables(path) == before
    n_train = sum(r["split"] == "train" for r in rows)
    assert report["file"]["requests"] == len(rows) == 3212
    assert report["file"]["file_splits"] == {"train": n_train, "validation": len(rows) - n_train}
    assert report["leakage"]["same_text_as_training"] >= n_train
    assert list(report["methods"]) == ["bm25"]
    assert any("no embedding set" in n for n in report["notes"])
    # the validation requests alone, as a file of their own: BM25 as in docs/joint-search.md (R@10 0.0323)
    valid = tmp_path / "validation.jsonl"
    valid.write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] == "validation"))
    with ProjectStore.open(path) as store:
        report = drive(evaluate_query_log(store, valid, bootstrap=0, save=False))
    bm25 = report["methods"]["bm25"]
    assert bm25["n"] == 372 and report["leakage"]["overlap"] == 0
    assert 0.0 < bm25["recall@10"] <= bm25["recall@30"] <= 1.0
    assert bm25["recall@10"] == pytest.approx(0.0323, abs=0.0015), bm25
