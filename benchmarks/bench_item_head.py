"""What an item-head model's ranking is made of: the beam alone, the head alone, their merge at
several blends, and the merge with the transition prior at several weights, on validation (to
choose) and test (to report), every item ranked.

    .venv/bin/python benchmarks/bench_item_head.py --project out/tiger/beauty_A.semid --model 1 \
        [--blends 0.5,1,2] [--transitions 0.25,0.5,1] [--smoothing 5] [--parts valid,test] \
        [--valid-users 8000] [--threads 1] [--json out/head_A.json]

``beam``: constrained beam search over the SIDs alone (width 20); ``head``: the item head's own
top 10; ``blend B``: the beam's items and the head's top 20, ordered by SID log-probability + B x
the head's log-probability (what ``spec.item_blend`` sets); ``prior G``: the model's own blend
plus G x log P(item | last item) from the training part's counts (``spec.transition_weight``;
counted here for models trained without it: the prior does not change training). Figures:
docs/generative.md, "Past the Beauty record".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True)
    ap.add_argument("--model", type=int, action="append", required=True)
    ap.add_argument("--blends", default="0.5,1,2")
    ap.add_argument("--transitions", default="", help="transition-prior weights to try (comma-separated)")
    ap.add_argument("--smoothing", type=float, default=None, help="the prior's pseudo-counts (default: the spec's)")
    ap.add_argument("--valid-users", type=int, default=0, help="a fixed random subset of validation (0 = all)")
    ap.add_argument("--parts", default="valid,test")
    ap.add_argument("--beam", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from semid_studio.core.generative import load_model
    from semid_studio.core.generative.decode import _prepare, beam_search
    from semid_studio.core.generative.metrics import ranking_metrics
    from semid_studio.core.generative.train import load_split
    from semid_studio.core.store import ProjectStore

    store = ProjectStore(args.project)
    _, split = load_split(store, "loo")
    blends = [float(b) for b in args.blends.split(",") if b.strip()]
    out: dict = {}
    for model_id in args.model:
        lm = load_model(store, model_id)
        model, trie, spec = lm.model, lm.trie, lm.model.spec
        if spec.item_head <= 0:
            raise SystemExit(f"model #{model_id} has no item head")
        base = replace(spec, transition_weight=0.0)
        arms = {"beam": replace(base, item_head=0.0)}
        arms.update({f"blend {b:g}": replace(base, item_blend=b) for b in blends})
        smoothing = args.smoothing or spec.transition_smoothing
        weights = [float(g) for g in args.transitions.split(",") if g.strip()]
        arms.update({f"prior {g:g}": replace(spec, transition_weight=g, transition_smoothing=smoothing)
                     for g in weights})
        if weights:
            model.set_transitions(split.train)
        for part in args.parts.split(","):
            probes = getattr(split, part)
            if part == "valid" and args.valid_users and args.valid_users < len(probes):
                rows = np.random.default_rng(0).choice(len(probes), args.valid_users, replace=False)
                probes = probes.subset(np.sort(rows))
            hists = [probes.history(i) for i in range(len(probes))]
            t0 = time.monotonic()
            for name, arm in arms.items():
                model.spec = arm
                ranked = np.concatenate([beam_search(model, trie, hists[s:s + 256], beam=args.beam, k=20).items
                                         for s in range(0, len(hists), 256)])
                m = ranking_metrics(ranked, probes.targets, (5, 10, 20))
                out.setdefault(str(model_id), {}).setdefault(part, {})[name] = m
                log(f"model #{model_id} {part} {name:10s} R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f} "
                    f"R@20 {m['recall@20']:.4f} ({time.monotonic() - t0:.0f} s)")
            model.spec = spec
            with torch.no_grad():
                heads = []
                for s in range(0, len(hists), 512):
                    memory, lengths = _prepare(model, hists[s:s + 512], None)
                    states = memory[torch.arange(memory.shape[0]), lengths - 1]
                    heads.append(torch.topk(model.item_logits(states), 20, dim=1).indices.numpy())
            m = ranking_metrics(np.concatenate(heads), probes.targets, (5, 10, 20))
            out[str(model_id)][part]["head"] = m
            log(f"model #{model_id} {part} {'head':10s} R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f} "
                f"R@20 {m['recall@20']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
