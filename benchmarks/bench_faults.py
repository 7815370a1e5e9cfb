"""kill -9 at random moments of import, embed, quantize, train and export; prints the outcomes.

A small project (the first ``--items`` items of the bundled sample data) is built with the
real ``semid`` commands. Each step is then run and killed with SIGKILL at a random moment
(uniform over the step's own unkilled duration; for training over ``--train-window``
seconds), after which the script checks that

- the project opens (``PRAGMA integrity_check`` ok) and says whether it recovered a -wal file,
- every row that existed before the step is still there, unchanged (all or nothing),
- the step re-runs to completion (training: resumes the killed model from its last checkpoint).

For training it also prints what each kill lost: the seconds since the last ``last``
checkpoint the script saw (polled every 50 ms) and the steps that is at the run's step rate.

    python benchmarks/bench_faults.py                 # 20+ kills, ~5 min on 2 cores
    python benchmarks/bench_faults.py --kills 2 --checkpoint-every 60
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from gui.fixtures import subset_of_sample  # noqa: E402  (the GUI tests' sample subset helper)

from semid_studio.core.pipeline import sample_files  # noqa: E402
from semid_studio.core.store import ProjectStore  # noqa: E402

#: rows that a step may legitimately change in place (everything else must survive unchanged)
MUTABLE = {"meta", "models", "checkpoints", "leases"}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "semid_studio.cli", *map(str, args)]


def run(*args) -> subprocess.CompletedProcess:
    result = subprocess.run(cli(*args), cwd=REPO, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def rows(path: Path) -> dict[str, set]:
    """Every row of every table (mutable tables by primary key only)."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"):
            sql = f"SELECT rowid FROM [{table}]" if table in MUTABLE else f"SELECT * FROM [{table}]"
            try:
                out[table] = set(conn.execute(sql).fetchall())
            except sqlite3.OperationalError:  # WITHOUT ROWID / no rowid: whole rows
                out[table] = set(conn.execute(f"SELECT * FROM [{table}]").fetchall())
        return out
    finally:
        conn.close()


def last_checkpoint(path: Path) -> tuple[int, float] | None:
    """(step, training seconds) of the newest 'last' checkpoint."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT step, json_extract(extra, '$.elapsed_s') FROM checkpoints WHERE tag = 'last' "
                           "ORDER BY model_id DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), float(row[1] or 0.0))
    finally:
        conn.close()


def check_after_kill(path: Path, before: dict[str, set]) -> tuple[bool, str]:
    """(recovered, 'as before' | 'advanced'); raises if anything that existed is gone."""
    with ProjectStore.open(path) as store:
        ok = store.db.execute("PRAGMA integrity_check").fetchone()[0]
        recovered = store.recovered
    if ok != "ok":
        raise SystemExit(f"integrity_check: {ok}")
    after = rows(path)
    for table, old in before.items():
        missing = old - after.get(table, set())
        if missing:
            raise SystemExit(f"LOST: {len(missing)} rows of {table}")
    same = all(after.get(t, set()) == r for t, r in before.items()) and set(after) == set(before)
    return recovered, "as before" if same else "advanced"


def kill_after(cmd: list, delay: float, on_poll=None) -> bool:
    """Start ``cmd``, SIGKILL it after ``delay`` s; False if it ended first."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < delay:
        if proc.poll() is not None:
            return False
        if on_poll is not None:
            on_poll()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--kills", type=int, default=4, help="kills per step (5 steps; training gets 2 more)")
    ap.add_argument("--checkpoint-every", type=float, default=5.0, help="semid train --checkpoint-every")
    ap.add_argument("--train-window", type=float, default=25.0, help="kill training within this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="semid-faults-"))
    files = subset_of_sample(sample_files(), work / "files", args.items)
    proj = work / "p.semid"
    quantize_args = {
        "rq-kmeans": ["--codebook-size", "16"],
        "rq-vae": ["--method", "rq-vae", "--preset", "tiny", "--codebook-size", "16"],
    }
    train_args = ["--preset", "tiny", "--max-steps", "100000", "--set", "eval_every=5000", "--set", "valid_users=100",
                  "--checkpoint-every", args.checkpoint_every]
    steps = {
        "import": [["import", proj, "--items", files["items"], "--interactions", files["interactions"],
                    "--queries", files["queries"]]],
        "embed": [["embed", proj]],
        "quantize": [["quantize", proj, *quantize_args["rq-kmeans"]], ["quantize", proj, *quantize_args["rq-vae"]]],
        "export": [["export", proj, work / "sids.csv"]],
    }
    print(f"project: {args.items} sample items in {work}; checkpoint every {args.checkpoint_every:g} s")
    outcomes: list[dict] = []

    # each step: time one clean run on a copy of the state before it, then kill it at random moments
    run("new", proj)
    for name in ("import", "embed", "quantize", "export"):
        state = work / f"before-{name}.semid"
        shutil.copyfile(proj, state)
        t0 = time.monotonic()
        for cmd in steps[name]:
            run(*cmd)
        duration = time.monotonic() - t0
        done = work / f"after-{name}.semid"
        shutil.copyfile(proj, done)
        for k in range(args.kills):
            cmd = steps[name][k % len(steps[name])]
            shutil.copyfile(state, proj)
            before = rows(proj)
            delay = rnd.uniform(0.2, max(0.3, duration / len(steps[name])))
            killed = kill_after(cli(*cmd), delay)
            recovered, status = check_after_kill(proj, before)
            rerun = "ok"
            if status == "as before" or name != "import":  # a finished import has nothing left to do
                run(*cmd)  # the step re-runs to completion
            else:
                rerun = "not needed"
            label = "quantize rq-vae" if "rq-vae" in cmd else name
            outcomes.append({"step": name, "at_s": delay,
                             "killed": killed, "recovered": recovered, "state": status, "rerun": rerun})
            print(f"  {label:<15} kill at {delay:5.2f} s: {'killed' if killed else 'had ended'}, "
                  f"project {status}{', -wal recovered' if recovered else ''}; re-run {rerun}", flush=True)
        shutil.copyfile(done, proj)

    # training: one model, killed and resumed again and again
    train_lost = []
    for k in range(args.kills + 2):
        before = rows(proj)
        seen: list[tuple[float, int]] = []  # (when the script saw it, step) of each new checkpoint

        def poll():
            found = last_checkpoint(proj)
            if found is not None and (not seen or seen[-1][1] != found[0]):
                seen.append((time.monotonic(), found[0]))

        delay = rnd.uniform(args.checkpoint_every, args.train_window)
        start = time.monotonic()
        kill_after(cli("train", proj, *train_args), delay, poll)
        t_kill = time.monotonic()
        recovered, status = check_after_kill(proj, before)  # first to open it: sees the -wal
        found = last_checkpoint(proj)
        ckpt = None if found is None else found[0]
        mine = [t for t, st in seen if t >= start]
        if seen and ckpt != seen[-1][1]:
            mine.append(t_kill)  # saved in the last poll interval before the kill
        lost_s = t_kill - (mine[-1] if mine else start)  # no save in this run: all of it (startup too)
        rate = None if not found or found[1] <= 0 else found[0] / found[1]  # steps per training second
        lost_steps = None if rate is None else lost_s * rate
        resumed = run("train", proj, *train_args, "--max-minutes", "0.02")
        line = next((ln for ln in resumed.stderr.splitlines() if "resuming model" in ln), "")
        if ckpt is None:
            rerun = "started anew (killed before its first checkpoint)"
        else:
            rerun = "resumed" if f"at step {ckpt} (" in line else f"NOT RESUMED from step {ckpt}: {line}"
        train_lost.append((lost_s, lost_steps))
        outcomes.append({"step": "train", "at_s": delay, "killed": True, "recovered": recovered, "state": status,
                         "rerun": rerun})
        steps_text = "?" if lost_steps is None else f"{lost_steps:.0f}"
        print(f"  train           kill at {delay:5.2f} s: last checkpoint step {ckpt}, lost {lost_s:.1f} s (~{steps_text} "
              f"steps at {0 if rate is None else rate:.1f} steps/s); {'-wal recovered; ' if recovered else ''}"
              f"{rerun}", flush=True)

    n = len(outcomes)
    print(f"\n{n} kills; every time the project opened with integrity_check ok and lost nothing that existed")
    for name in ("import", "embed", "quantize", "export", "train"):
        mine = [o for o in outcomes if o["step"] == name]
        states = {s: sum(o["state"] == s for o in mine) for s in ("as before", "advanced")}
        print(f"  {name:<9} {len(mine)} kills: project as before {states['as before']}, advanced (step had "
              f"committed) {states['advanced']}, -wal recovered {sum(o['recovered'] for o in mine)}, "
              f"re-run/resumed ok {sum(o['rerun'] in ('ok', 'resumed') for o in mine)}"
              + (f", nothing left to re-run {sum(o['rerun'] == 'not needed' for o in mine)}"
                 if any(o['rerun'] == 'not needed' for o in mine) else ""))
    worst_s = max(s for s, _ in train_lost)
    worst_steps = max((st for _, st in train_lost if st is not None), default=float("nan"))
    print(f"training lost at most {worst_s:.1f} s and ~{worst_steps:.0f} steps per kill "
          f"(checkpoint every {args.checkpoint_every:g} s)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
