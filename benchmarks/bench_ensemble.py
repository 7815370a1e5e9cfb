"""An ensemble of item-head models, ranked offline: does averaging two `laptop` models pass
where one stops? (docs/generative.md, "An ensemble of two models"). This is how the ensemble
was first measured; the product's own is the `laptop-pair` preset (core/generative/ensemble.py),
whose candidates are the members' beams and the ensemble's item-level top instead.

Every member must be trained on the same project data (the same items, interactions and SIDs;
e.g. copies of one project trained with different seeds). For each user the candidates are
every member's top ``--top`` items of its own head and the transition prior's top 20 (the
training part's counts, as the shipped ranking reads them); each candidate scores

    mean over members of SID log-probability + blend x mean of head log-probabilities
        + weight x log P(item | last item)   (the members' transition prior, smoothing a)

and the list is the top 20 of that. With one member this is the shipped ranking on a slightly
wider candidate pool (on Beauty it gives the seed-0 model's `semid evaluate` figure exactly).

    .venv/bin/python benchmarks/bench_ensemble.py --models out/tiger/beauty_E.semid:1 \\
        out/tiger/beauty_B1.semid:1 --part test [--users 0] [--json out/pair.json]
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
import torch.nn.functional as F


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="PROJECT:MODEL_ID, one per member")
    ap.add_argument("--part", default="valid", choices=("valid", "test"))
    ap.add_argument("--users", type=int, default=0, help="a fixed random subset of the part (0 = all)")
    ap.add_argument("--top", type=int, default=40, help="candidates from each member's head")
    ap.add_argument("--blend", type=float, default=2.0)
    ap.add_argument("--weights", default="0,0.25,0.5", help="transition-prior weights (comma-separated)")
    ap.add_argument("--smoothing", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from semid_studio.core.generative import load_model
    from semid_studio.core.generative.decode import _prepare, sid_log_probs
    from semid_studio.core.generative.metrics import ranking_metrics
    from semid_studio.core.generative.train import load_split
    from semid_studio.core.store import ProjectStore

    members = []
    for spec in args.models:
        path, _, model_id = spec.rpartition(":")
        members.append(load_model(ProjectStore(path), int(model_id)))
    _, split = load_split(ProjectStore(args.models[0].rpartition(":")[0]), "loo")
    probes = getattr(split, args.part)
    rows = np.arange(len(probes))
    if args.users and args.users < len(probes):
        rows = np.sort(np.random.default_rng(0).choice(len(probes), args.users, replace=False))
    hists = [probes.history(int(i)) for i in rows]
    targets = probes.targets[rows]
    t0 = time.monotonic()

    # the transition prior as the shipped ranking reads it (counted here for a model trained
    # before the prior existed), at this run's smoothing
    first = members[0].model
    if not hasattr(first, "transition_count"):
        first.set_transitions(split.train)
    first.spec = replace(first.spec, transition_smoothing=args.smoothing)
    last = torch.tensor([int(h[-1]) for h in hists])

    def head_log_probs(lm, memory, lengths):
        in_trie = torch.full((lm.model.n_catalogue,), float("-inf"))
        in_trie[torch.from_numpy(lm.trie.items)] = 0.0
        states = memory[torch.arange(memory.shape[0]), lengths - 1]
        return F.log_softmax(lm.model.item_logits(states).float() + in_trie, -1)

    # candidates: each member's top head items and the prior's top 20
    tops = []
    with torch.no_grad():
        for s in range(0, len(hists), 512):
            chunk = [torch.topk(first.transition_log_probs(last[s:s + 512]), 20, 1).indices]
            for lm in members:
                memory, lengths = _prepare(lm.model, hists[s:s + 512], None)
                chunk.append(torch.topk(head_log_probs(lm, memory, lengths), args.top, 1).indices)
            tops.append(torch.cat(chunk, 1))
    cand = torch.sort(torch.cat(tops), 1).values
    duplicate = torch.zeros_like(cand, dtype=torch.bool)
    duplicate[:, 1:] = cand[:, 1:] == cand[:, :-1]
    log(f"candidates: {cand.shape[1]} per user, the target among them for "
        f"{np.mean([t in c for t, c in zip(targets, cand.numpy())]):.1%} ({time.monotonic() - t0:.0f} s)")

    # each member's SID and head log-probabilities of the candidates, and the prior's
    sids, head_at = [], []
    with torch.no_grad():
        prior = torch.cat([first.transition_log_probs(last[s:s + 512]).gather(1, cand[s:s + 512])
                           for s in range(0, len(hists), 512)])
        for lm in members:
            sid_parts, head_parts = [], []
            for s in range(0, len(hists), 128):
                memory, lengths = _prepare(lm.model, hists[s:s + 128], None)
                sid_parts.append(sid_log_probs(lm.model, lm.trie, memory, lengths, cand[s:s + 128]))
                head_parts.append(head_log_probs(lm, memory, lengths).gather(1, cand[s:s + 128]))
            sids.append(torch.cat(sid_parts))
            head_at.append(torch.cat(head_parts))
            log(f"member scored ({time.monotonic() - t0:.0f} s)")
    results = {}
    for n in range(1, len(members) + 1):
        base = sum(sids[:n]) / n + args.blend * sum(head_at[:n]) / n
        for weight in [float(w) for w in args.weights.split(",") if w.strip()]:
            total = (base + weight * prior).masked_fill(duplicate, float("-inf"))
            ranked = cand.gather(1, torch.topk(total, 20, 1).indices).numpy()
            m = ranking_metrics(ranked, targets, (5, 10, 20))
            name = f"{n} member(s), prior {weight:g}"
            results[name] = m
            print(f"{name:26s} R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f} R@20 {m['recall@20']:.4f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
