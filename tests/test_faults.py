"""Faults: kill -9, two writers on one project, a full disk and a read-only project.

Real processes (``python -m semid_studio.cli ...``) on copies of the real sample project, a
real SIGKILL, a real file-size limit (RLIMIT_FSIZE) and a real read-only file. The many-kill
run with its figures is ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semid_studio.core.errors import ProjectError
from semid_studio.core.events import drive
from semid_studio.core.generative import make_spec, train_model
from semid_studio.core.pipeline import sample_files
from semid_studio.core.store import ProjectStore

REPO = Path(__file__).resolve().parents[1]
#: a tiny model whose first validation is far away: only time-based checkpoints save 'last' early
TRAIN = ["--preset", "tiny", "--max-steps", "3000", "--set", "eval_every=2000", "--set", "valid_users=100"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "semid_studio.cli", *map(str, args)]


def run(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs)


def start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(cli(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def query(path: Path, sql: str, args=()) -> list:
    """A plain reader beside the running process (never holds anything between polls)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def last_step(path: Path) -> int | None:
    rows = query(path, "SELECT step FROM checkpoints WHERE tag = 'last' ORDER BY model_id DESC LIMIT 1")
    return rows[0][0] if rows else None


def wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def fingerprint(path: Path) -> str:
    """The project's content, whatever its pages and journal mode (a logical dump)."""
    conn = sqlite3.connect(path)
    try:
        digest = hashlib.sha256()
        for line in conn.iterdump():
            digest.update(line.encode())
        return digest.hexdigest()
    finally:
        conn.close()


def one_error_line(stderr: str, needle: str) -> str:
    """The command's one error line (progress messages may come before it), with no traceback."""
    lines = [ln for ln in stderr.splitlines() if ": error: " in ln]
    assert "Traceback" not in stderr and "database is locked" not in stderr, stderr
    assert len(lines) == 1 and needle in lines[0], stderr
    return lines[0]


@pytest.fixture
def project(sample_project_master, tmp_path) -> Path:
    target = tmp_path / "p.semid"
    shutil.copyfile(sample_project_master, target)
    return target


# --------------------------------------------------------------------------- checkpoints on time


def test_time_based_last_checkpoint_is_written_between_validations_and_resumed_from(project, tmp_path):
    overrides = {"max_steps": 60, "eval_every": 50, "valid_users": 100, "seed": 2}
    straight = tmp_path / "straight.semid"
    shutil.copyfile(project, straight)
    with ProjectStore.open(straight) as store:
        ref = drive(train_model(store, make_spec("tiny", overrides), preset="tiny", checkpoint_s=None))
        ref_weights = store.load_checkpoint(ref, "last").weights

    class Crash(Exception):
        pass

    crashed_at = []

    def crash_at_step_30(event):  # the process dies: no cancel handler, no save on the way out
        if getattr(event, "stage", None) == "training" and event.done >= 30:
            crashed_at.append(event.done)
            raise Crash

    with ProjectStore.open(project) as store:
        with pytest.raises(Crash):
            # a tiny interval: every step saves 'last' (60 s by default)
            drive(train_model(store, make_spec("tiny", overrides), preset="tiny", checkpoint_s=1e-6),
                  crash_at_step_30)
        (rec,) = store.list_models("tiger")
        ckpt = store.load_checkpoint(rec.id, "last")
        # the first validation (step 50) never ran, yet 'last' is one step behind the crash (the
        # crashing step's progress event comes before its checkpoint)
        assert ckpt.step == crashed_at[0] - 1 and rec.history == []
        resumed = drive(train_model(store, make_spec("tiny", overrides), preset="tiny"))
        assert resumed == rec.id and store.get_model(rec.id).step == 60
        weights = store.load_checkpoint(rec.id, "last").weights
    # step count, optimiser, RNG and data position all came back: the very same model
    for key in ref_weights:
        np.testing.assert_allclose(ref_weights[key], weights[key], rtol=0, atol=1e-6, err_msg=key)


# --------------------------------------------------------------------------- kill -9


def test_kill_9_during_training_loses_at_most_the_checkpoint_interval_and_resumes(project):
    proc = start("train", project, *TRAIN, "--checkpoint-every", "0.5")
    try:
        seen: set[int] = set()

        def two_checkpoints():
            step = last_step(project)
            if step:
                seen.add(step)
            return len(seen) >= 2

        wait_for(two_checkpoints, what="two time-based checkpoints")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    wal = project.with_name(project.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # what the kill left (any sqlite open would fold it)
    # only the .semid file, as a user copies it after the crash: every commit is in it
    alone = project.with_name("copied.semid")
    shutil.copyfile(project, alone)
    with ProjectStore.open(project) as store:
        assert store.recovered
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (rec,) = store.list_models("tiger")
        killed_at = store.load_checkpoint(rec.id, "last").step
        # the stored 'running' outlived its process: it is shown as what it is
        assert rec.status == "interrupted"
    assert not wal.exists() or wal.stat().st_size == 0
    assert killed_at >= max(seen) and last_step(alone) == killed_at
    # the same command resumes the killed model (its stale lease is taken over), not a new one
    again = run("train", project, *TRAIN, "--checkpoint-every", "0.5", "--max-minutes", "0.03")
    assert again.returncode == 0, again.stderr
    assert f"resuming model #{rec.id} at step {killed_at}" in again.stderr
    with ProjectStore.open(project) as store:
        assert [m.id for m in store.list_models("tiger")] == [rec.id]
        assert store.get_model(rec.id).step > killed_at


def test_kill_9_during_import_leaves_what_was_there_and_the_import_reruns(tmp_path):
    files = sample_files()
    path = tmp_path / "p.semid"
    assert run("new", path).returncode == 0
    assert run("import", path, "--items", files["items"]).returncode == 0
    before = fingerprint(path)
    note = path.with_name(path.name + "-writer")
    proc = start("import", path, "--interactions", files["interactions"], "--queries", files["queries"])
    try:
        wait_for(lambda: note.exists() or proc.poll() is not None, what="the import's write transaction")
        assert proc.poll() is None, "the import ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    with ProjectStore.open(path) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.item_count() == 3000 and store.interaction_count() == 0  # all or nothing
    assert fingerprint(path) == before
    again = run("import", path, "--interactions", files["interactions"], "--queries", files["queries"])
    assert again.returncode == 0, again.stderr
    with ProjectStore.open(path) as store:
        assert store.interaction_count() == 33145 and store.query_count() == 6387


# --------------------------------------------------------------------------- two writers

HOLDER = """
import sys, time
from semid_studio.core.store import project as st
st.CLIENT = "holder-test"
s = st.ProjectStore.open(sys.argv[1])
with s.atomic():
    s.set_meta("holder", 1)
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
s.close()
"""


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process in the middle of a long write (an import, say), for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_writer_waits_for_another_process_naming_it_or_refuses_cleanly(project):
    holder = hold_write_lock(project, 10)  # long enough for the CLI to start (torch imports) on a loaded machine
    try:
        with ProjectStore.open(project, lock_wait_s=0.5) as impatient:
            with pytest.raises(ProjectError, match=rf"pid {holder.pid} \(holder-test\) has been writing"):
                impatient.set_meta("impatient", 1)
        # the CLI waits, saying for whom, and then writes
        result = run("use-run", project, "1")
        assert result.returncode == 0, result.stderr
        assert f"waiting for pid {holder.pid} (holder-test)" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.wait(30)
    with ProjectStore.open(project) as store:
        assert store.get_meta("holder") == 1 and store.get_meta("active_run") == 1  # both writes are there
        assert store.get_meta("impatient") is None


def test_two_trainers_never_share_a_model_and_train_import_run_side_by_side(project, tmp_path):
    first = start("train", project, *TRAIN, "--max-steps", "400", "--checkpoint-every", "0.5")
    try:
        wait_for(lambda: last_step(project), what="the first trainer's checkpoint")
        (model_id,) = [r[0] for r in query(project, "SELECT id FROM models")]
        # resuming the model it trains is refused, naming the process
        same = run("train", project, "--resume", model_id, "--checkpoint-every", "0.5")
        line = one_error_line(same.stderr, f"model #{model_id} is in use by pid {first.pid} (semid train")
        assert same.returncode == 1, line
        # the same command as the first: a model of its own instead of the busy one
        other = run("train", project, *TRAIN, "--max-steps", "400", "--max-minutes", "0.03")
        assert other.returncode == 0 and "database is locked" not in other.stderr, other.stderr
        # an import while the trainer writes checkpoints
        queries = tmp_path / "q.csv"
        queries.write_text("".join(open(sample_files()["queries"]).readlines()[:51]))
        imported = run("import", project, "--queries", queries)
        assert imported.returncode == 0 and "Traceback" not in imported.stderr, imported.stderr
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0 and "database is locked" not in err, err
    finally:
        first.kill()
    with ProjectStore.open(project) as store:
        models = store.list_models("tiger")
        assert [m.id for m in models] == [model_id, model_id + 1]
        assert models[0].status == "done" and models[0].step == 400 and models[0].history[-1]["step"] == 400
        assert models[1].status == "stopped" and store.has_checkpoint(model_id + 1, "last")
        assert store.query_count() == 6387 + 50


def test_quantize_and_export_at_once(project, tmp_path):
    quantize = start("quantize", project, "--seed", "5", "--codebook-size", "32")
    exports = [run("export", project, tmp_path / f"sids{k}.csv") for k in range(3)]
    out, err = quantize.communicate(timeout=300)
    assert quantize.returncode == 0 and "Traceback" not in err, err
    for result in exports:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    with ProjectStore.open(project) as store:
        assert len(store.list_quantizer_runs()) == 2 and store.active_run_id() == 2
    assert len((tmp_path / "sids2.csv").read_text().splitlines()) == 3001


# --------------------------------------------------------------------------- disk full, read-only


def test_a_full_disk_gives_one_line_and_leaves_the_project_unchanged(project):
    before = fingerprint(project)

    def small_file_limit():
        # writes past 256 KiB fail with EFBIG (SIGXFSZ ignored), as on a disk that is full
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))

    result = run("quantize", project, "--seed", "5", preexec_fn=small_file_limit)
    assert result.returncode == 1
    line = one_error_line(result.stderr, "nothing was changed")
    assert str(project) in line and ("disk" in line or "size limit" in line)
    assert fingerprint(project) == before
    with ProjectStore.open(project) as store:
        assert len(store.list_quantizer_runs()) == 1


@pytest.fixture
def read_only(project):
    """The project made read-only: chmod, or for root (whom chmod does not stop) chattr +i."""
    project.chmod(0o444)
    try:
        with open(project, "r+b"):
            writable = True
    except OSError:
        writable = False
    immutable = False
    if writable:
        immutable = subprocess.run(["chattr", "+i", str(project)], capture_output=True).returncode == 0
        if not immutable:
            project.chmod(0o644)
            pytest.skip("cannot make a file read-only here (root without chattr)")
    yield project
    if immutable:
        subprocess.run(["chattr", "-i", str(project)], check=True)
    project.chmod(0o644)


def test_a_read_only_project_reads_and_refuses_writes_in_one_line(read_only):
    before = fingerprint(read_only)
    info = run("info", read_only)
    assert info.returncode == 0 and "3000" in info.stdout, info.stderr
    for args in (["quantize", read_only, "--seed", "5"], ["use-run", read_only, "1"]):
        result = run(*args)
        assert result.returncode == 1
        assert str(read_only) in one_error_line(result.stderr, "read-only")
    assert fingerprint(read_only) == before
