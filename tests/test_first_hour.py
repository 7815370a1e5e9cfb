"""A newcomer's first hour: catalogues without text get real SIDs from their interactions,
degenerate SIDs are never made active, and the default quantiser fits the catalogue."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, shared_dataset
from semid_studio.cli import main
from semid_studio.core import quantize
from semid_studio.core.errors import ProjectError
from semid_studio.core.events import drive
from semid_studio.core.store import ProjectStore

SAMPLE = REPO_ROOT / "sample_data"


def semid(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def id_only_catalogue(tmp_path, interactions: pd.DataFrame) -> tuple:
    """An items file with an id column alone, plus the interactions, written as CSV."""
    items = tmp_path / "items.csv"
    pd.DataFrame({"item_id": interactions["item_id"].drop_duplicates()}).to_csv(items, index=False)
    inter = tmp_path / "interactions.csv"
    interactions.to_csv(inter, index=False)
    return items, inter


def test_a_catalogue_without_text_gets_unique_sids_from_its_interactions(tmp_path, capsys):
    """The sample's interactions with id-only items: the default path embeds the interactions
    (saying so) and the SIDs are unique, not 1/1/K codes from 3,000 copies of an empty text."""
    items, inter = id_only_catalogue(tmp_path, pd.read_csv(SAMPLE / "interactions.csv"))
    project = tmp_path / "p.semid"
    assert semid(capsys, "new", project)[0] == 0
    assert semid(capsys, "import", project, "--items", items, "--interactions", inter)[0] == 0
    code, out, err = semid(capsys, "embed", project, "--json")
    assert code == 0
    made = json.loads(out)
    assert made["strategy"] == "rec"
    assert "MiniLM" not in made["name"] and "from interactions" in made["name"]
    assert "no text" in err and "from the interactions" in err
    code, out, _ = semid(capsys, "quantize", project, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["active"] and "problems" not in report["health"]
    assert report["health"]["unique_share"] >= 0.95
    assert min(level["used"] for level in report["health"]["per_level"]) > 8


def test_the_text_encoder_refuses_a_catalogue_without_text(tmp_path, capsys):
    items, inter = id_only_catalogue(tmp_path, pd.read_csv(SAMPLE / "interactions.csv").head(2000))
    project = tmp_path / "p.semid"
    semid(capsys, "new", project)
    semid(capsys, "import", project, "--items", items, "--interactions", inter)
    code, _, err = semid(capsys, "embed", project, "--strategy", "content")
    assert code == 1
    assert err.count("\n") == 1 and "have a text of their own" in err and "rec strategy" in err
    with ProjectStore.open(project) as store:
        assert store.list_embedding_sets() == []


def test_degenerate_sids_are_saved_but_never_made_active(sample_project, tmp_path, capsys):
    """Identical vectors for every item: the run is kept for inspection, not activated, and
    the CLI says why and exits non-zero; the project's SIDs stay those it had."""
    with ProjectStore.open(sample_project) as store:
        active_before = store.active_run_id()
        item_ids = [str(v) for v in store.item_ids()]
    np.save(tmp_path / "same.npy", np.ones((len(item_ids), 8), dtype=np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(item_ids) + "\n")
    assert semid(capsys, "import", sample_project, "--embeddings", tmp_path / "same.npy",
                 "--embedding-ids", tmp_path / "ids.txt")[0] == 0
    code, out, err = semid(capsys, "quantize", sample_project)
    assert code == 1
    assert "NOT the active SID table" in err and "uses one code for all 3,000 items" in err
    assert "semid use-run" in err
    with ProjectStore.open(sample_project) as store:
        assert store.active_run_id() == active_before
        newest = store.list_quantizer_runs()[-1]
        assert newest.metrics["problems"]


@pytest.mark.parametrize("n_items, expected", [(1, 16), (200, 16), (1682, 32), (3000, 64), (9742, 128),
                                               (12101, 128), (18357, 128), (50_000, 256), (1_000_000, 256)])
def test_the_default_codebook_is_sized_to_the_catalogue(n_items, expected):
    assert quantize.default_codebook_size(n_items) == expected
    spec = quantize.sized_spec("rq-kmeans", n_items)
    assert spec.codebook_size == expected and spec.levels == (3 if n_items < 4_000_000 else 4)
    # a user's choice is kept
    assert quantize.sized_spec("rq-kmeans", n_items, overrides={"codebook_size": 256}).codebook_size == 256
    assert quantize.sized_spec("rq-kmeans", n_items, preset="fast").codebook_size == 256


def test_quantize_without_a_size_fits_the_catalogue(sample_project, capsys):
    code, out, _ = semid(capsys, "quantize", sample_project, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["spec"]["levels"], report["spec"]["codebook_size"]) == (3, 64)  # 3,000 items


def test_sports_without_text_through_the_default_commands(tmp_path, capsys):
    """Sports 5-core (interactions only, 18k items): >= 95% unique SIDs from the defaults."""
    folder = shared_dataset("amazon2014_sports_5core")
    interactions = pd.read_csv(folder / "interactions.tsv.gz", sep="\t")
    items, _ = id_only_catalogue(tmp_path, interactions)
    project = tmp_path / "sports.semid"
    semid(capsys, "new", project)
    assert semid(capsys, "import", project, "--items", items,
                 "--interactions", folder / "interactions.tsv.gz")[0] == 0
    assert semid(capsys, "embed", project)[0] == 0
    code, out, _ = semid(capsys, "quantize", project, "--json")
    assert code == 0
    health = json.loads(out)["health"]
    assert health["n_items"] == 18357 and health["unique_share"] >= 0.95


# --------------------------------------------------------------------------- point 6: budget vs schedule


def test_a_time_budget_says_what_it_reaches_validates_at_its_end_and_resumes_with_its_curve(sample_project):
    """A budget far shorter than the schedule: the plan (steps reached, validations) is said once
    the pace is measured, the progress line has an ETA, the end of the budget validates, and a
    resumed run first replays the curve so far and plans from the model's own pace."""
    from semid_studio.core.events import Message, Metric, PartialResult, Progress, collect
    from semid_studio.core.generative import make_spec, train_model

    spec = make_spec("tiny", {"max_steps": 100_000, "eval_every": 50_000, "valid_users": 200})
    with ProjectStore.open(sample_project) as store:
        model_id, events = collect(train_model(store, spec, preset="tiny", max_minutes=0.12))
        texts = [e.text for e in events if isinstance(e, Message)]
        plan = next(t for t in texts if "budget ends at about step" in t)
        assert "of 100,000" in plan and "one validation, at the end" in plan
        assert any("left (time budget)" in e.message for e in events if isinstance(e, Progress))
        valid = [e for e in events if isinstance(e, Metric) and e.split == "valid"]
        rec = store.get_model(model_id)
        assert rec.status == "stopped" and [m.step for m in valid] == [rec.step]  # validated at the budget's end

        _, again = collect(train_model(store, spec, resume=model_id, max_minutes=0.1))
        replay = next(e for e in again if isinstance(e, PartialResult) and e.kind == "history")
        assert [(m.name, m.step) for m in replay.payload["metrics"] if m.split == "valid"] == \
            [(m.name, m.step) for m in valid]
        expected = next(e.text for e in again if isinstance(e, Message) and e.text.startswith("expected:"))
        assert f"model #{model_id}" in expected and f"(resumed at step {rec.step:,})" in expected



# --------------------------------------------------------------------------- point 7: wording


def test_core_hints_speak_the_front_end_in_use(sample_project):
    """The same core error names the CLI's command in a terminal and the app's control in the
    window; no hint of the app's names a CLI option or command."""
    from semid_studio.core import wording
    from semid_studio.core.generative.evaluate import pick_model

    for key, (cli, gui) in wording.HINTS.items():
        assert "--" not in gui and "semid " not in gui, key
    with ProjectStore.open(sample_project) as store:
        with pytest.raises(ProjectError, match="train one with 'semid train'"):
            pick_model(store)
        previous = wording.set_front_end("gui")
        try:
            with pytest.raises(ProjectError, match=r"Training → Generative model") as err:
                pick_model(store)
            assert "semid " not in str(err.value) and "'semid" not in str(err.value)
        finally:
            wording.set_front_end(previous)


# --------------------------------------------------------------------------- point 8: playground defaults


def test_history_is_left_out_by_default_only_where_nobody_repeats(sample_project):
    """Catalogues where a user never takes an item twice (the sample, Amazon 5-cores,
    MovieLens) leave a history's items out of its recommendations by default; a log full of
    repeat purchases keeps them in."""
    import pandas as pd

    from semid_studio.core.generative.evaluate import leave_out_history_by_default

    with ProjectStore.open(sample_project) as store:
        assert store.repeat_share() == 0.0 and leave_out_history_by_default(store)
        before = store.interaction_count()
        users = store.users(limit=50)
        repeats = []
        for user, _n in users:  # every one of these users buys their history again
            for idx in store.user_history(user):
                repeats.append({"user_id": user, "item_idx": idx, "ts": 2e9})
        store.add_interactions(pd.DataFrame(repeats))
        assert store.repeat_share() == pytest.approx(len(repeats) / (before + len(repeats)))
        assert not leave_out_history_by_default(store)


# --------------------------------------------------------------------------- point 9: damaged arrays


def test_a_damaged_blob_is_one_line_naming_project_table_and_row(sample_project, tmp_path, capsys):
    """A stored array that is not a safetensors payload (here: a pickle that would write a file
    if anything unpickled it) gives one line naming the project, table, row and column, in
    every command that reads it; nothing is executed, nothing else is lost."""
    import os
    import pickle
    import sqlite3

    from semid_studio.cli import main

    marker = tmp_path / "executed"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with ProjectStore.open(sample_project) as store:
        run_id, set_id = store.active_run_id(), store.list_embedding_sets()[0].id
    with sqlite3.connect(sample_project) as db:
        db.execute("UPDATE quantizer_runs SET codes = ? WHERE id = ?", [pickle.dumps(Hostile()), run_id])
        db.execute("UPDATE embedding_sets SET vectors = ? WHERE id = ?", [b"\x00" * 7, set_id])

    assert main(["export", str(sample_project), str(tmp_path / "sids.csv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(sample_project) in err and f"table quantizer_runs, row #{run_id}, column codes is damaged" in err
    assert "not a safetensors payload" in err
    assert main(["quantize", str(sample_project)]) == 1
    err = capsys.readouterr().err
    assert f"table embedding_sets, row #{set_id}, column vectors is damaged" in err and "Traceback" not in err
    assert not marker.exists()  # the pickle was never loaded
    # what is not damaged still reads
    assert main(["info", str(sample_project)]) == 0
    capsys.readouterr()
    with ProjectStore.open(sample_project) as store:
        assert store.item_count() == 3000 and store.load_quantizer_run(run_id, with_arrays=False).id == run_id
        with pytest.raises(ProjectError, match="column codes is damaged"):
            store.load_quantizer_run(run_id)


# --------------------------------------------------------------------------- point 5: the map


def test_map_groups_keep_the_largest_and_grey_the_rest():
    from semid_studio.core.analysis.maps import map_groups, project_2d

    values = np.array([5, 5, 5, 2, 2, 9, -1, 7])
    groups, kept = map_groups(values, top=2)
    assert kept.tolist() == [5, 2] and groups.tolist() == [0, 0, 0, 1, 1, -1, -1, -1]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32)) * 5
    vectors = (centres[np.repeat(np.arange(4), 50)] + rng.normal(size=(200, 32))).astype(np.float32)
    tsne = project_2d(vectors, method="tsne")
    assert tsne.method == "tsne" and tsne.xy.shape == (200, 2)
    # t-SNE keeps the four clusters apart: each point's nearest neighbour is in its own cluster
    d = ((tsne.xy[:, None] - tsne.xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(1) // 50 == np.arange(200) // 50).mean() > 0.95
    with pytest.raises(ValueError, match="map method"):
        project_2d(vectors, method="umap")
