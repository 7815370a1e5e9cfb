"""Data-parallel training (DDP under torchrun) on the CPU with gloo: two processes train the
same model one process trains on the same global batch, rank 0 alone writes, the stored
checkpoint opens and decodes, and a run resumes with another number of processes.

Every dropout is off so that the two runs differ only by how the gradient sums are ordered (the
ranks' dropout masks are their own otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from semid_studio.core.events import drive
from semid_studio.core.generative import make_spec, train_model
from semid_studio.core.generative.evaluate import load_model, recommend
from semid_studio.core.store import ProjectStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = {"max_steps": 6, "eval_every": 3, "valid_users": 40, "dropout": 0.0, "emb_dropout": 0.0, "item_dropout": 0.0}
SETS = [arg for key, value in OVERRIDES.items() for arg in ("--set", f"{key}={value}")]


def _semid(*args: str, torchrun: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter (torchrun's launcher in front when asked)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    head = ["-m", "torch.distributed.run", "--nproc-per-node", "2"] if torchrun else []
    proc = subprocess.run([sys.executable, *head, "-m", "semid_studio.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _losses(path) -> list[float]:
    with ProjectStore.open(path) as store:
        (rec,) = store.list_models("tiger")
        return [h["train_loss"] for h in rec.history]


def test_two_processes_train_the_one_process_model(sample_project, tmp_path):
    two = tmp_path / "two.semid"
    shutil.copyfile(sample_project, two)
    with ProjectStore.open(sample_project) as store:
        drive(train_model(store, make_spec("tiny", OVERRIDES), preset="tiny", device="cpu"))
    one_losses = _losses(sample_project)

    out = _semid("train", str(two), "--preset", "tiny", *SETS, "--device", "cpu", "--json", torchrun=True)
    report = json.loads(out.stdout)  # rank 0 alone printed
    assert report["status"] == "done" and report["step"] == OVERRIDES["max_steps"]
    two_losses = _losses(two)
    assert len(two_losses) == len(one_losses) == 2
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4)

    with ProjectStore.open(two) as store:
        (rec,) = store.list_models("tiger")  # one model: the other rank wrote nothing
        assert store.load_checkpoint(rec.id, "last").step == OVERRIDES["max_steps"]
        lm = load_model(store, rec.id, device="cpu")
        history = [r["item_id"] for r in store.get_items(np.arange(5))]
        rows = recommend(store, history, model_id=rec.id, k=5, loaded=lm)
    assert len(rows) == 5 and all(r["sid"] for r in rows)


def test_resume_with_another_number_of_processes(sample_project, tmp_path):
    straight = tmp_path / "straight.semid"
    shutil.copyfile(sample_project, straight)
    with ProjectStore.open(straight) as store:
        drive(train_model(store, make_spec("tiny", OVERRIDES), preset="tiny", device="cpu"))

    # three steps on two processes (semid train --nproc starts torchrun), the rest on one
    _semid("train", str(sample_project), "--preset", "tiny", *SETS, "--device", "cpu", "--stop-after", "3",
           "--nproc", "2")
    with ProjectStore.open(sample_project) as store:
        (rec,) = store.list_models("tiger")
        assert rec.status == "stopped" and rec.step == 3
    out = _semid("train", str(sample_project), "--preset", "tiny", *SETS, "--device", "cpu", "--json")
    assert json.loads(out.stdout)["model_id"] == rec.id  # the same model, resumed
    np.testing.assert_allclose(_losses(sample_project), _losses(straight), rtol=1e-4)


def test_bad_process_counts_and_devices_say_so(sample_project, capsys):
    from semid_studio.cli import main

    assert main(["train", str(sample_project), "--nproc", "0"]) != 0
    assert "--nproc must be at least 1" in capsys.readouterr().err
    assert main(["train", str(sample_project), "--nproc", "4096", "--device", "cpu"]) != 0
    assert "--nproc 4096" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main(["train", str(sample_project), "--nproc", "2", "--device", "cuda"]) != 0
        assert "no CUDA GPU" in capsys.readouterr().err
    assert main(["train", str(sample_project), "--nproc", "2", "--device", "cuda:0"]) != 0
    assert "pins one GPU" in capsys.readouterr().err


def test_joint_model_under_two_processes(sample_project, tmp_path, capsys):
    """The joint search + rec model (search pairs and rec targets split between the ranks) trains
    under DDP as one process trains it, and rank 0's checkpoint answers a search."""
    from semid_studio.cli import main

    two = tmp_path / "two.semid"
    shutil.copyfile(sample_project, two)
    args = ["--task", "joint", "--preset", "tiny", "--query-encoder", "wordpiece", *SETS, "--device", "cpu", "--json"]
    assert main(["train", str(sample_project), *args]) == 0
    one = json.loads(capsys.readouterr().out)
    report = json.loads(_semid("train", str(two), *args, torchrun=True).stdout)
    assert report["status"] == "done" and report["step"] == OVERRIDES["max_steps"] == one["step"]
    one_losses = [h["train_loss"] for h in one["history"]]
    two_losses = [h["train_loss"] for h in report["history"]]
    assert len(two_losses) == len(one_losses) == 2
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4)
    with ProjectStore.open(two) as store:
        assert [m.id for m in store.list_models()] == [report["model_id"]]  # the other rank wrote nothing
    assert main(["search", str(two), "trekking poles", "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits["method"] == "joint" and len(hits["hits"]) == 5
