"""The joint generative search + recommendation model on movielens_tomt (or any project with
queries, e.g. Beauty), next to BM25, dense retrieval, popularity and the Markov chain.

    .venv/bin/python benchmarks/bench_joint.py [--minutes 8] [--encoders minilm,wordpiece]
        [--strategies content] [--mix 0.5] [--index-share 0.0] [--seeds 0] [--set FIELD=VALUE ...]
        [--tokens shared|separate|prefix-share] [--token-sets SEARCH_SET,REC_SET]
        [--project PATH --workdir DIR]
    .venv/bin/python benchmarks/bench_joint.py --combine A.json,B.json,...   (pool runs made apart)
    .venv/bin/python benchmarks/bench_joint.py --rec-protocols --workdir DIR [--models 2,3]   (rec of
        DIR's joint models and the baselines, with and without the seen-item filter, and how many
        history items each puts in its unfiltered top 10)

What it does (CPU; every figure on the full catalogue of 9,742 movies):

1. the project: ``out/bench_joint/tomt.semid``, a copy of ``out/bench_search/tomt.semid`` (made by
   ``benchmarks/bench_search.py``, with its embedding sets) or, without it, a fresh import of
   ``../shared/data/movielens_tomt``; with ``--project`` a copy of that project instead (for
   Beauty: ``out/bench_search/beauty.semid``, which ``bench_search.py --datasets beauty`` makes with
   generated queries and every embedding set), search then reported on its held-out split
   (``validation`` when it has one, else ``test``);
2. SIDs: RQ-KMeans (default settings) on the newest embedding set of each ``--strategies``
   entry (content, search, multitask, fused-concat, ...), once;
3. baselines: BM25 and dense retrieval with each strategy's set on the held-out requests;
   popularity and first-order Markov on the leave-one-out test split (training part only);
4. joint models: one per (strategy, query encoder, seed), trained for ``--minutes`` on mixed
   batches of train requests (minus a 10% dev part used to choose the checkpoint) and training
   histories; search evaluated on the held-out split, rec on the leave-one-out test users.

With ``--tokens separate|prefix-share`` step 2 makes one SID table per task instead (search side
from the search-tuned set, rec side from the rec-tuned set, or ``--token-sets``; once, reused
later; core ``token_strategies``) and ``--strategies`` is not used.

Results are printed and written to ``out/bench_joint/results.json``. Timings are taken on a
shared 2-core machine and are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from semid_studio.core import quantize  # noqa: E402
from semid_studio.core import search as S  # noqa: E402
from semid_studio.core.events import Message, Metric, drive  # noqa: E402
from semid_studio.core.store import ProjectStore  # noqa: E402

DATA = REPO.parent / "shared" / "data"
TOMT_TEMPLATE = "{title}; {genres}; {tags}"
KS = (10, 30)
LOG: list[str] = []


def log(text: str = "") -> None:
    print(text, flush=True)
    LOG.append(text)


def on_event(event) -> None:
    if isinstance(event, Message):
        log(f"    {event.text}")
    elif isinstance(event, Metric) and event.split == "valid":
        log(f"    step {event.step} ({event.elapsed_s:.0f} s): valid {event.name} = {event.value:.4f}")


def project(workdir: Path, source: Path | None = None) -> Path:
    """The benchmark's own copy of a project (never the original: models are added to it)."""
    path = workdir / (source.name if source else "tomt.semid")
    if path.exists():
        return path
    if source is not None and not source.exists():
        raise SystemExit(f"{source}: no such project (make it with benchmarks/bench_search.py)")
    source = source or REPO / "out" / "bench_search" / "tomt.semid"
    if source.exists():
        log(f"copying {source} -> {path}")
        with ProjectStore.open(source) as store:
            store.save_as(path)
        return path
    from semid_studio.core import embed, importing

    folder = DATA / "movielens_tomt"
    log(f"importing {folder} -> {path}")
    with ProjectStore.create(path) as store:
        store.set_meta("template", TOMT_TEMPLATE)
        drive(importing.import_data(store, items=folder / "ml-latest-small" / "movies.csv",
                                    interactions=folder / "ml-latest-small" / "ratings.csv",
                                    queries=folder / "queries.jsonl.gz"), on_event)
        drive(embed.embed_items(store, template=TOMT_TEMPLATE), on_event)
    return path


def sid_run(store: ProjectStore, strategy: str) -> tuple[int, int]:
    """(quantiser run id, embedding set id) for a strategy: RQ-KMeans on its newest set, once."""
    # content vectors read from a file (bench_search's --beauty-embeddings cache) are stored as 'imported'
    kinds = ("content", "imported") if strategy == "content" else (strategy,)
    sets = [e for e in store.list_embedding_sets() if e.strategy in kinds and e.n_items == store.item_count()]
    if not sets:
        raise SystemExit(f"no '{strategy}' embedding set in the project; run benchmarks/bench_search.py first")
    set_id = sets[-1].id if strategy != "content" else sets[0].id
    for run in store.list_quantizer_runs():
        if run.embedding_set_id == set_id and run.method == "rq-kmeans":
            store.set_active_run(run.id)
            return run.id, set_id
    log(f"  quantising embedding set #{set_id} ({strategy}) with RQ-KMeans")
    # 3 x 256 as docs/joint-search.md measured it (not the size-to-catalogue default)
    spec = quantize.make_spec("rq-kmeans", overrides={"codebook_size": 256})
    run_id = drive(quantize.quantize_project(store, spec=spec, embedding_set_id=set_id), on_event)
    return run_id, set_id


def token_runs(store: ProjectStore, tokens: str, sets: str | None) -> tuple[str, int, int]:
    """(label, rec run id, search set id) of a Separate / Prefix-share token strategy on the
    default RQ-KMeans, made once: an earlier pair of runs for the same sets is reused."""
    from semid_studio.core.search import token_strategies as T

    ids: dict = {"search": None, "rec": None}
    if sets:
        ids["search"], ids["rec"] = (int(x) for x in sets.split(","))
    ts = drive(T.build_token_strategy(store, tokens, search_set=ids["search"], rec_set=ids["rec"]), on_event) \
        if not (found := _existing_strategy(store, tokens, ids)) else found
    return f"{tokens} (search set #{ts.sets['search']}, rec set #{ts.sets['rec']})", ts.runs["rec"], ts.sets["search"]


def _existing_strategy(store: ProjectStore, tokens: str, ids: dict):
    from semid_studio.core.search import token_strategies as T

    tagged = {}
    for run in store.list_quantizer_runs():
        t = run.metrics.get("tokens")
        default = quantize.spec_to_dict(quantize.PRESETS["rq-kmeans"]["default"])
        if t and t["strategy"] == tokens and run.spec == default:
            tagged[t["task"]] = run
    if set(tagged) != {"search", "rec"} or tagged["search"].metrics["tokens"]["partner_run"] != tagged["rec"].id:
        return None
    sets = {side: r.embedding_set_id for side, r in tagged.items()}
    if any(ids[side] is not None and ids[side] != sets[side] for side in sets):
        return None
    ts = T.TokenStrategy(tokens, {side: r.id for side, r in tagged.items()}, sets,
                         int(tagged["rec"].metrics["tokens"]["shared_levels"]), tagged["rec"].created)
    log(f"  reusing token strategy {ts.describe()}")
    store.set_active_run(ts.runs["rec"])
    store.set_meta(T.META_KEY, ts.to_dict())
    return ts


def baselines(store: ProjectStore, set_ids: dict[str, int]) -> dict:
    from semid_studio.core.generative.baselines import Markov, Popularity
    from semid_studio.core.generative.data import Sequences, make_split
    from semid_studio.core.generative.metrics import ranking_metrics

    out = {}
    rep = drive(S.evaluate_search(store, "bm25", ks=KS, bootstrap=0, save=False))
    out["search BM25 (bm25s)"] = rep["metrics"]
    for strategy, set_id in set_ids.items():
        t0 = time.time()
        rep = drive(S.evaluate_search(store, "dense", embedding_set_ids=[set_id], ks=KS, bootstrap=0, save=False))
        out[f"search dense, {strategy} set #{set_id}"] = rep["metrics"]
        log(f"  dense {strategy}: R@10 {rep['metrics']['recall@10']:.4f} ({time.time() - t0:.0f} s)")
    split = make_split(Sequences.from_frame(store.interactions_frame()), "loo")
    for cls in (Popularity, Markov):
        model = cls(store.item_count()).fit(split.train)
        out[f"rec {cls.name} (loo test)"] = ranking_metrics(model.recommend(split.test, 20), split.test.targets, (10, 20))
        out[f"rec {cls.name} (loo valid)"] = ranking_metrics(model.recommend(split.valid, 20), split.valid.targets,
                                                             (10, 20))
    return out


REC_KS = (5, 10, 20)


def rec_protocols(workdir: Path, model_ids: set[int] | None = None) -> int:
    """Rec test figures of every joint model in the workdir's project and of popularity and
    Markov, under both protocols: all items ranked, and each user's history items left out
    (the seen-item filter; the same filter for every method). Written to rec_protocols.json."""
    from semid_studio.core.generative.baselines import Markov, Popularity
    from semid_studio.core.generative.joint import JOINT_KIND, load_joint, rank_joint_rec
    from semid_studio.core.generative.metrics import ranking_metrics
    from semid_studio.core.generative.train import load_split

    projects = sorted(workdir.glob("*.semid"))
    if not projects:
        log(f"no project (*.semid) in {workdir}")
        return 1
    rows: dict[str, dict] = {}
    with ProjectStore.open(projects[0]) as store:
        _seqs, sp = load_split(store, "loo")
        log(f"== {projects[0].name}: {len(sp.test)} leave-one-out test users, {store.item_count()} items; "
            f"{sp.test.repeat_share():.2%} of test targets repeat an item of their history")
        history = [set(sp.test.history(i).tolist()) for i in range(len(sp.test))]

        def seen_in_top10(ranked) -> float:
            """Mean number of the user's history items in a top 10 (unfiltered lists)."""
            return float(np.mean([len(set(row[:10].tolist()) & h) for row, h in zip(ranked, history)]))

        for cls in (Popularity, Markov):
            model = cls(store.item_count()).fit(sp.train)
            for filtered in (False, True):
                ranked = model.recommend(sp.test, max(REC_KS), exclude_history=filtered)
                rows[f"{cls.name}{' (history left out)' if filtered else ''}"] = ranking_metrics(
                    ranked, sp.test.targets, REC_KS)
                if not filtered:
                    rows[cls.name]["seen_in_top10"] = seen_in_top10(ranked)
        for record in store.list_models(JOINT_KIND):
            if not store.has_checkpoint(record.id, "best") or (model_ids and record.id not in model_ids):
                continue
            jm = load_joint(store, record.id, device="cpu")
            for filtered in (False, True):
                t0 = time.time()
                ranked, _ = drive(rank_joint_rec(store, jm, k=max(REC_KS), exclude_history=filtered))
                name = f"joint #{record.id} seed {jm.spec.seed} step {jm.step}{' (history left out)' if filtered else ''}"
                rows[name] = ranking_metrics(ranked, sp.test.targets, REC_KS)
                if not filtered:
                    rows[name]["seen_in_top10"] = seen_in_top10(ranked)
                log(f"  {name}: {time.time() - t0:.0f} s")
    log(f"{'':52}" + "".join(f"{f'R@{k}':>8}{f'N@{k}':>8}" for k in REC_KS))
    for name, m in rows.items():
        log(f"{name:52}" + "".join(f"{m[f'recall@{k}']:8.4f}{m[f'ndcg@{k}']:8.4f}" for k in REC_KS))
    # where the filter matters: a model that spends its top 10 on movies the user already rated
    log("history items among the top 10, every movie ranked (mean per user): "
        + ", ".join(f"{name} {m['seen_in_top10']:.2f}" for name, m in rows.items() if "seen_in_top10" in m))
    (workdir / "rec_protocols.json").write_text(json.dumps(rows, indent=1, default=float))
    return 0


def combine(files: list[Path]) -> int:
    """One row per (strategy, budget): the joint models of several results files (e.g. seeds run
    in parallel processes) pooled into mean ± standard deviation over seeds."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for f in files:
        res = json.loads(f.read_text())
        for e in res["joint"]:
            groups.setdefault((e["strategy"], e["encoder"], res["args"]["minutes"]), []).append(e)
    cols = [("search", "recall@10", "S R@10"), ("search", "recall@30", "S R@30"), ("search", "mrr", "S MRR"),
            ("rec", "recall@10", "rec R@10"), ("rec", "ndcg@10", "rec N@10")]
    log(f"{'strategy (SIDs), query encoder, minutes, seeds':52}" + "".join(f"{c[2]:>18}" for c in cols))
    for (strategy, encoder, minutes), runs in groups.items():
        cells = []
        for side, metric, _ in cols:
            vals = [r[side][metric]["mean"] if side == "rec" else r[side][metric] for r in runs if r[side]]
            cell = f"{np.mean(vals):.4f}" + (f" ± {np.std(vals, ddof=1):.4f}" if len(vals) > 1 else "")
            cells.append(f"{cell:>18}")
        seeds = sorted(r["seed"] for r in runs)
        log(f"{f'{strategy}, {encoder}, {minutes:g} min, seeds {seeds}':52}" + "".join(cells))
    log("(search on the held-out queries, rec on the leave-one-out test users; ± is the standard deviation over seeds)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(REPO / "out" / "bench_joint"))
    ap.add_argument("--project", help="run on a copy of this project (with queries and embedding sets) "
                                      "instead of movielens_tomt")
    ap.add_argument("--minutes", type=float, default=8.0, help="training time per joint model")
    ap.add_argument("--max-steps", type=int, default=3000, help="the schedule's length (cosine)")
    ap.add_argument("--encoders", default="minilm,wordpiece")
    ap.add_argument("--strategies", default="content")
    ap.add_argument("--mix", type=float, default=0.5)
    ap.add_argument("--index-share", type=float, default=0.0)
    ap.add_argument("--task", default="joint", choices=["joint", "search"])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--preset", default="laptop")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", default="shared", choices=["shared", "separate", "prefix-share"],
                    help="token strategy: one SID table (shared) or one per task")
    ap.add_argument("--token-sets", help="SEARCH_SET,REC_SET for --tokens (default: the newest search / rec sets)")
    ap.add_argument("--combine", help="only pool earlier results.json files (comma list) into mean ± spread")
    ap.add_argument("--rec-protocols", action="store_true",
                    help="only test the rec side of the workdir's joint models and the baselines, "
                         "with and without the seen-item filter")
    ap.add_argument("--models", help="with --rec-protocols: only these joint model ids (comma list)")
    args = ap.parse_args()
    if args.combine:
        return combine([Path(f) for f in args.combine.split(",") if f.strip()])
    torch.set_num_threads(args.threads)
    if args.rec_protocols:
        ids = {int(m) for m in args.models.split(",")} if args.models else None
        return rec_protocols(Path(args.workdir), ids)

    from semid_studio.core.generative.joint import (evaluate_joint, make_joint_model_spec, make_joint_spec,
                                                    split_overrides, train_joint)

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": vars(args), "baselines": {}, "joint": []}
    path = project(workdir, Path(args.project) if args.project else None)
    name = path.stem
    with ProjectStore.open(path) as store:
        heldout = "validation" if store.query_count("validation") else "test"
        log(f"== {name}: {store.item_count()} items, {store.query_count('train')} train / "
            f"{store.query_count(heldout)} {heldout} queries")
        if args.tokens == "shared":
            strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
            runs = {s: sid_run(store, s) for s in strategies}
        else:
            label, rec_run, search_set = token_runs(store, args.tokens, args.token_sets)
            strategies, runs = [label], {label: (rec_run, search_set)}
        if not args.no_baselines:
            log("-- baselines")
            results["baselines"] = baselines(store, {s: r[1] for s, r in runs.items()})
        overrides = dict(kv.split("=", 1) for kv in args.set)
        gen_over, joint_over = split_overrides(overrides)
        for strategy in strategies:
            run_id, set_id = runs[strategy]
            store.set_active_run(run_id)
            for encoder in [e.strip() for e in args.encoders.split(",") if e.strip()]:
                for seed in [int(s) for s in args.seeds.split(",")]:
                    spec = make_joint_model_spec(args.preset, {"max_steps": args.max_steps, "eval_every": 250,
                                                               "seed": seed, **gen_over})
                    joint = make_joint_spec({"task": args.task, "mix": args.mix, "query_encoder": encoder,
                                             "index_share": args.index_share, **joint_over})
                    log(f"-- joint model: SIDs of {strategy} (run #{run_id}), query encoder {encoder}, seed {seed}, "
                        f"{args.minutes:g} min")
                    t0 = time.time()
                    model_id = drive(train_joint(store, spec, joint, resume=False, preset=args.preset,
                                                 device="cpu", max_minutes=args.minutes), on_event)
                    train_s = time.time() - t0
                    rep = drive(evaluate_joint(store, [model_id], ks=KS, rec_ks=(10, 20), bootstrap=0, save=True),
                                on_event)
                    rec_ = store.get_model(model_id)
                    hist = rec_.history
                    entry = {"strategy": strategy, "run_id": run_id, "encoder": encoder, "seed": seed,
                             "model_id": model_id, "train_s": round(train_s, 1), "steps": rec_.step,
                             "best_step": rec_.best_step, "targets_per_s": hist[-1].get("targets_per_s") if hist else None,
                             "search": rep["search"], "rec": rep["rec"]["summary"] if rep["rec"] else None,
                             "truncation": rep["settings"]["models"][0]["query_truncation"],
                             "train_queries": rec_.spec["queries"]["train_features"]}
                    results["joint"].append(entry)
                    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=float))
        log("")
        log(f"== {name}, full catalogue; search on {heldout} queries, rec on leave-one-out test users")
        log(f"{'':58}{'S R@10':>8}{'S R@30':>8}{'S MRR':>8}{'asked':>8}{'never':>8}{'rec R@10':>9}")
        for name, m in results["baselines"].items():
            if name.startswith("search"):
                log(f"{name:58}{m['recall@10']:8.4f}{m['recall@30']:8.4f}{m['mrr']:8.4f}"
                    f"{m['asked'].get('recall@30', float('nan')):8.4f}{m['never_asked'].get('recall@30', float('nan')):8.4f}")
            elif "test" in name:
                log(f"{name:58}{'':40}{m['recall@10']:9.4f}")
        for e in results["joint"]:
            m = e["search"]
            rec10 = e["rec"]["recall@10"]["mean"] if e["rec"] else float("nan")
            name = f"joint {e['strategy']} SIDs, {e['encoder']}, seed {e['seed']} (#{e['model_id']}, {e['steps']} st)"
            log(f"{name:58}{m['recall@10']:8.4f}{m['recall@30']:8.4f}{m['mrr']:8.4f}"
                f"{m['asked'].get('recall@30', float('nan')):8.4f}{m['never_asked'].get('recall@30', float('nan')):8.4f}"
                f"{rec10:9.4f}")
        log("(asked / never: search R@30 for requests whose movie has / has no training request)")
        for e in results["joint"]:
            t = e["train_queries"]
            log(f"  #{e['model_id']}: {e['steps']} steps in {e['train_s']:.0f} s, best at {e['best_step']}, "
                f"{e['targets_per_s'] or 0:.0f} targets/s; train requests cut at the word-piece limit: "
                f"{t['n_truncated']} of {t['n']} ({t['share_truncated']:.1%}); {heldout}: "
                f"{e['truncation']['n_truncated']} of {e['truncation']['n']}")
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    (workdir / "log.txt").write_text("\n".join(LOG) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
