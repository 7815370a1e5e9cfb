"""SASRec baselines on a project's leave-one-out split: tune on validation, then test over seeds.

    .venv/bin/python benchmarks/bench_sasrec.py --project out/tiger/beauty_base.semid \
        [--variant sasrec-ss] [--grid '[{}, {"dropout": 0.3}]'] [--minutes 12] [--seeds 0,1,2] \
        [--threads 1] [--json out/sasrec_ss.json]

``--variant``: ``sasrec`` (full softmax) or ``sasrec-ss`` (sampled softmax, 256 uniform
negatives); the grid's entries override its spec. Every trial is chosen and compared on
validation NDCG@10 only; the best trial's spec is then trained once per seed and tested
(every item ranked, Recall / NDCG @ 5, 10, 20). Budgets are minutes of one process (with
``--threads 1`` one core). Figures: docs/generative.md, "Past the Beauty record".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True)
    ap.add_argument("--variant", default="sasrec-ss", choices=["sasrec", "sasrec-ss"])
    ap.add_argument("--grid", default="[{}]", help="JSON list of spec overrides to try on validation")
    ap.add_argument("--minutes", type=float, default=12.0, help="budget per fit")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from semid_studio.core.events import drive
    from semid_studio.core.generative.baselines import SASREC_VARIANTS, SASRec, tune_sasrec
    from semid_studio.core.generative.metrics import ranking_metrics, summarise_runs
    from semid_studio.core.generative.train import load_split
    from semid_studio.core.store import ProjectStore

    store = ProjectStore(args.project)
    _, split = load_split(store, "loo")
    n_items = store.item_count()
    grid = json.loads(args.grid)
    base = SASREC_VARIANTS[args.variant]
    log(f"{args.project}: {split.describe()}; {args.variant}, {len(grid)} trial(s) of {args.minutes} min")
    t0 = time.monotonic()
    best, trials = drive(tune_sasrec(split, n_items, grid, base=base, max_minutes_each=args.minutes,
                                     device=args.device), lambda e: None)
    for trial in trials:
        log(f"  valid {trial['overrides']}: R@10 {trial['recall@10']:.4f} N@10 {trial['ndcg@10']:.4f} "
            f"(epoch {trial['epoch']}, {trial['elapsed_s'] / 60:.1f} min)")
    spec = best.spec
    log(f"chosen on validation: {asdict(spec)}")
    runs = []
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        model = best if seed == spec.seed else drive(
            SASRec(n_items, replace(spec, seed=seed), args.device).fit(split, max_minutes=args.minutes), lambda e: None)
        m = ranking_metrics(model.recommend(split.test, 20), split.test.targets, (5, 10, 20))
        runs.append(m)
        log(f"  test seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    summary = summarise_runs(runs)
    log("test over seeds: " + ", ".join(f"{k} {v['mean']:.4f} ± {v['std']:.4f}" for k, v in summary.items()
                                      if k in ("recall@10", "ndcg@10")))
    log(f"total {(time.monotonic() - t0) / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(json.dumps({"variant": args.variant, "trials": trials, "spec": asdict(spec),
                                               "per_seed": runs, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
