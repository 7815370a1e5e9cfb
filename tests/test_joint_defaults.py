"""What the obvious joint commands do by default (issue: joint search at its best from the
obvious commands): long requests read whole, the preset's recipe turned into the project's
embedding sets (made when missing), and a time budget that fits the schedule instead of cutting
it. Real encoder, real sample data, real (tiny) training runs.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from semid_studio.core.embed import embed_items, load_encoder
from semid_studio.core.errors import SemidError
from semid_studio.core.events import Message, collect, drive
from semid_studio.core.generative import make_spec, train_model
from semid_studio.core.generative.joint import JointSpec, joint_settings, make_joint_spec, resolve_recipe
from semid_studio.core.generative.joint.recipe import describe_recipe
from semid_studio.core.generative.joint.text import state_features, text_input, text_window
from semid_studio.core.generative.schedule import BudgetFit, fitted_steps, schedule_steps
from semid_studio.core.search import strategies as G
from semid_studio.core.store import ProjectStore

LONG = " ".join(f"the {w} scene where a man in a red coat walks into the sea at night" for w in
                ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")) * 6


# --------------------------------------------------------------------------- long requests


def test_long_requests_are_read_whole_window_by_window():
    encoder = load_encoder(None)
    window = text_window(encoder)
    texts = ["a man in a red coat", LONG]
    n_long = len(encoder.tokenizer(LONG, verbose=False)["input_ids"])
    assert window == 256 and n_long > 2 * window  # the request spans three windows

    cut, _ = collect(state_features(encoder, texts, 256, 4))  # the encoder's window, as before
    whole, _ = collect(state_features(encoder, texts, 2048, 4))  # every piece, fixed groups of 4
    pooled, _ = collect(state_features(encoder, texts, 2048, 4, max_states=64))  # every piece, <= 64 positions
    assert cut.n_truncated == 1 and whole.n_truncated == 0 and pooled.n_truncated == 0
    assert whole.max_tokens_seen == n_long
    # a short text is read as before, whatever the settings (up to float rounding: it shares its
    # padded batch with the long text in one run and not in the other)
    for other in (whole, pooled):
        assert other.offsets[1] == cut.offsets[1]
        np.testing.assert_allclose(other.values[: other.offsets[1]].astype(np.float32),
                                   cut.values[: cut.offsets[1]].astype(np.float32), atol=1e-3)
    # the first window of the long text is the cut text's single pass: the same groups of 4 pieces
    # (CLS + the first 254 pieces); the windows after it are read too
    first = slice(cut.offsets[1] + 1, cut.offsets[1] + 1 + 254 // 4)
    long_whole = whole.values[whole.offsets[1] : whole.offsets[2]]
    np.testing.assert_allclose(long_whole[1 : 1 + 254 // 4].astype(np.float32),
                               cut.values[first].astype(np.float32), atol=2e-3)
    assert whole.lengths[1] == 1 + -(-n_long // 4) > cut.lengths[1] == 1 + 256 // 4
    # the pooled reading keeps a long request within max_states positions (groups grow with the text)
    assert pooled.lengths[1] <= 1 + 64 and pooled.lengths[0] == whole.lengths[0]
    assert not np.allclose(pooled.values[pooled.offsets[1]].astype(np.float32),
                           cut.values[cut.offsets[1]].astype(np.float32), atol=1e-2)  # its mean reads it all
    # the model's text positions follow the cap
    assert text_input(JointSpec(), pooled, 1).max_positions == 65
    assert text_input(JointSpec(max_query_tokens=128, max_query_states=0), cut, 1).max_positions == 33


def test_models_stored_before_the_cap_keep_their_fixed_groups():
    stored = {f: v for f, v in JointSpec(max_query_tokens=128).to_dict().items() if f != "max_query_states"}
    assert JointSpec.from_dict(stored).max_query_states == 0
    assert make_joint_spec({"query_encoder": "wordpiece"}).max_query_tokens == 128  # a learned table: short
    with pytest.raises(SemidError, match="max_query_states"):
        make_joint_spec({"max_query_states": "-1"})
    with pytest.raises(SemidError, match="item_vectors"):
        make_joint_spec({"item_vectors": "content"})


# --------------------------------------------------------------------------- the recipe


def test_the_laptop_preset_of_a_joint_model_is_the_measured_recipe():
    spec, joint = joint_settings("laptop", {"seed": "2"})
    assert (spec.batch_targets, spec.max_steps, spec.eval_every, spec.seed) == (512, 750, 100, 2)
    assert (spec.decoder_context, spec.seen_bias, spec.content_input) == ("cross", True, True)
    assert (joint.rec_targets, joint.index_share, joint.encoder_model, joint.item_vectors) == (2048, 0.5, "search", "rec")
    assert joint.max_query_tokens == 2048 and joint.max_query_states == 64
    # --set wins over the recipe; tiny (tests) has none
    _spec, plain = joint_settings("laptop", {"encoder_model": "", "item_vectors": "", "rec_targets": "0"})
    assert (plain.encoder_model, plain.item_vectors, plain.rec_targets) == ("", "", 0)
    tiny_spec, tiny = joint_settings("tiny", {})
    assert tiny.encoder_model == "" and tiny.item_vectors == "" and tiny_spec.max_steps == 300


@pytest.fixture(scope="module")
def small_master(sample_project_master, tmp_path_factory):
    """The first 300 sample items with their interactions and queries, content-embedded."""
    path = tmp_path_factory.mktemp("recipe") / "small.semid"
    with ProjectStore.open(sample_project_master) as src, ProjectStore.create(path) as dst:
        dst.set_meta("template", src.get_meta("template"))
        dst.add_items([{k: v for k, v in r.items() if k != "idx" and v is not None} for r in src.get_items(range(300))])
        inter = src.interactions_frame()
        dst.add_interactions(inter[inter["item_idx"] < 300])
        q = src.queries_frame()
        dst.add_queries(q[q["item_idx"] < 300][["text", "item_idx", "split", "query_id"]])
        drive(embed_items(dst))
    return path


def test_the_recipe_uses_the_projects_sets_and_makes_those_it_lacks(small_master, tmp_path):
    path = tmp_path / "small.semid"
    shutil.copyfile(small_master, path)
    spec, joint = joint_settings("laptop", {})
    with ProjectStore.open(path) as store:
        # a search-tuned set made by hand beforehand (a few steps: a test) is the one the recipe takes
        tuned = drive(G.build_embedding(store, "search", G.make_spec(overrides={
            "max_pairs": 48, "batch_size": 16, "dev_fraction": 0.1, "lr": 1e-4})))
        assert "rec-tuned item vectors made first" in describe_recipe(store, spec, joint)
        with pytest.raises(SemidError, match="no rec-tuned embedding set"):  # a rank > 0 never makes sets
            collect(resolve_recipe(store, spec, joint, make=False))
        (spec2, joint2, info), events = collect(resolve_recipe(store, spec, joint))
        rec_set = info["item_vectors"]["set"]
        assert joint2.encoder_model == f"set:{tuned}" and joint2.item_vectors == "" and spec2.content_set == rec_set
        assert info["made"] == [rec_set] and store.load_embedding_set(rec_set).strategy == "rec"
        assert any("making one now" in e.text for e in events if isinstance(e, Message))
        # the second time nothing is made: the same sets, so an unfinished model is found and resumed
        (spec3, joint3, info3), _ = collect(resolve_recipe(store, spec, joint))
        assert (spec3, joint3) == (spec2, joint2) and "made" not in info3
        assert describe_recipe(store, spec, joint) == (f"requests read by the search-tuned encoder of set #{tuned}; "
                                                       f"history items read as the rec-tuned vectors of set #{rec_set}")
        # a set trained on a query that is now held out is no longer taken
        qid = int(store.queries_frame(split="train")["id"].iloc[0])
        store.db.execute("UPDATE queries SET split = 'test' WHERE id = ?", [qid])
        assert G.current_set(store, "search") is None
        # a search-only model reads no history: no item vectors for it
        (spec4, _j, info4), _ = collect(resolve_recipe(store, spec, JointSpec(task="search", item_vectors="rec")))
        assert spec4.content_set == 0 and "item_vectors" not in info4


# --------------------------------------------------------------------------- the schedule and the budget


def test_fitted_steps_spend_the_budget_on_a_schedule_that_ends():
    # 2 steps/s, 600 s left, validations of 10 s every 100 steps: 0.6 s per step with its share of validation
    assert fitted_steps(0, 5000, 2.0, 600.0, 100, 10.0) == int(590 / 0.6)
    assert fitted_steps(0, 500, 2.0, 600.0, 100, 10.0) == 500  # never past the preset's schedule
    assert fitted_steps(40, 5000, 2.0, 0.0, 100, 10.0) == 41  # never before the next step
    assert BudgetFit.warmup(200, 300) == 60 and BudgetFit.warmup(200, 5000) == 200


def test_a_time_budget_fits_a_new_models_schedule(sample_project):
    spec = make_spec("tiny", {"max_steps": 100_000, "eval_every": 60, "valid_users": 200})
    with ProjectStore.open(sample_project) as store:
        model_id, events = collect(train_model(store, spec, preset="tiny", max_minutes=0.2, fit_schedule=True))
        rec = store.get_model(model_id)
    fitted = rec.spec["schedule"]
    texts = [e.text for e in events if isinstance(e, Message)]
    assert any(t.startswith("schedule fitted to the 0.2-min budget") for t in texts), texts
    assert 20 < fitted["max_steps"] < 100_000 and fitted["preset_steps"] == 100_000
    # the warm-up shrinks with the schedule, unless the fit came after it was done (a slow,
    # loaded machine measures its pace later)
    assert fitted["warmup_steps"] <= max(1, fitted["max_steps"] // 5) or fitted["warmup_steps"] == spec.warmup_steps
    assert schedule_steps(rec.spec) == fitted["max_steps"] and rec.spec["spec"]["max_steps"] == 100_000
    # the run ends its (fitted) schedule, or the budget stops it a little before when the pace drops
    assert rec.status in ("done", "stopped") and rec.history[-1]["step"] == rec.step
    if rec.status == "done":
        assert rec.step == fitted["max_steps"]


def test_the_cli_fits_only_when_no_schedule_was_given():
    from semid_studio.cli import build_parser
    from semid_studio.cli.generative_commands import _fit_schedule

    parse = build_parser().parse_args
    assert _fit_schedule(parse(["train", "p.semid", "--max-minutes", "20"]))
    assert not _fit_schedule(parse(["train", "p.semid", "--max-minutes", "20", "--max-steps", "500"]))
    assert not _fit_schedule(parse(["train", "p.semid", "--max-minutes", "20", "--set", "max_steps=500"]))
    assert not _fit_schedule(parse(["train", "p.semid"]))
