#!/usr/bin/env python3
"""Search baselines and embedding strategies on real data: figures, printed (and saved as JSON).

movielens_tomt (ml-latest-small + 3,212 real "what is this movie?" requests; report on
``validation``, select on a dev part of ``train``; item text "{title}; {genres}; {tags}"):

1. BM25 (bm25s) and dense MiniLM retrieval, Recall@10/30 on validation, split into movies
   asked about in training and movies never asked about; compared with the reference table.
2. Long requests: truncation vs chunking for the dense baseline, on the dev split (the choice
   is made there), with the share of requests over the 256-token window.
3. Rec reference points (leave-one-out): popularity and the first-order Markov chain.
4. Every embedding strategy (content, search-tuned, rec-tuned, multi-task, fused-concat,
   fused-SVD), several seeds: dense search on validation and item-kNN recommendation on the
   leave-one-out validation / test targets; fine-tuning pairs per second.
5. Latency of one query (dense: encode + FAISS top-10; BM25 top-10).

amazon2014_beauty_5core with generated known-item queries (4 train + 2 test per item): the
same table on the generated test queries.

Projects are kept in ``--workdir`` (default ``out/bench_search``) and embedding sets are cached
there by their settings, so a second run (or one with more seeds) only computes what is new.

Usage::

    python benchmarks/bench_search.py [--datasets tomt beauty] [--seeds 0 1 2]
        [--strategies content search rec multitask fused-concat fused-svd]
        [--preset laptop] [--set max_pairs=2000 ...] [--beauty-embeddings out/cache/beauty_minilm.npy
        --beauty-ids out/cache/beauty_minilm_ids.csv] [--json out/bench_search/results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from semid_studio.core.search import queries as Q  # noqa: E402
from semid_studio.core import search as S  # noqa: E402
from semid_studio.core.search import strategies as G  # noqa: E402
from semid_studio.core.events import Message, Metric, drive  # noqa: E402
from semid_studio.core.store import ProjectStore  # noqa: E402

DATA = REPO.parent / "shared" / "data"
TOMT_TEMPLATE = "{title}; {genres}; {tags}"
BEAUTY_TEMPLATE = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"
REFERENCE = {  # measured on this machine (the table), full catalogue, validation requests
    "search, BM25 (bm25s)": (0.024, 0.048),
    "search, all-MiniLM-L6-v2 dense, not tuned": (0.065, 0.100),
    "rec (leave-one-out by time), popularity": (0.039, 0.089),
    "rec, first-order Markov on training part": (0.071, 0.113),
}
KS = (10, 30)


def log(text: str = "") -> None:
    print(text, flush=True)


def on_event(event) -> None:
    if isinstance(event, Message) and event.level in ("warning", "info"):
        log(f"    {event.text.splitlines()[0]}")
    elif isinstance(event, Metric) and event.split == "dev":
        log(f"    dev {event.name} = {event.value:.4f}")


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


# --------------------------------------------------------------------------- projects


def tomt_project(workdir: Path) -> Path:
    from semid_studio.core import importing

    path = workdir / "tomt.semid"
    if path.exists():
        return path
    folder = DATA / "movielens_tomt"
    log(f"importing {folder} -> {path}")
    with ProjectStore.create(path) as store:
        store.set_meta("template", TOMT_TEMPLATE)
        drive(importing.import_data(store, items=folder / "ml-latest-small" / "movies.csv",
                                    interactions=folder / "ml-latest-small" / "ratings.csv",
                                    queries=folder / "queries.jsonl.gz"), on_event)
    return path


def beauty_project(workdir: Path, args) -> Path:
    from semid_studio.core import importing

    path = workdir / "beauty.semid"
    if path.exists():
        return path
    folder = DATA / "amazon2014_beauty_5core"
    log(f"importing {folder} -> {path}")
    with ProjectStore.create(path) as store:
        store.set_meta("template", BEAUTY_TEMPLATE)
        drive(importing.import_data(store, items=folder / "items.jsonl.gz",
                                    interactions=folder / "interactions.tsv.gz"), on_event)
        spec = Q.make_spec("known-item", overrides={"per_item": 4, "test_per_item": 2, "seed": 0})
        drive(Q.generate_queries(store, spec), on_event)
        if args.beauty_embeddings:
            importing.import_embeddings(store, args.beauty_embeddings, ids_path=args.beauty_ids,
                                        model_name="all-MiniLM-L6-v2", name="all-MiniLM-L6-v2 / content (cache)")
    return path


# --------------------------------------------------------------------------- pieces


def rec_references(store: ProjectStore) -> dict:
    """Popularity and first-order Markov on the leave-one-out split (the TIGER engineer's code)."""
    try:
        from semid_studio.core.generative.baselines import Markov, Popularity
        from semid_studio.core.generative.data import Sequences, make_split
    except ImportError as exc:  # the generative package is another area; skip if it moved
        log(f"  (rec references skipped: {exc})")
        return {}
    seqs = Sequences.from_frame(store.interactions_frame())
    split = make_split(seqs, "loo")
    head = S.head_items(store)
    out = {}
    for cls in (Popularity, Markov):
        model = cls(store.item_count()).fit(split.train)
        for name, probes in (("valid", split.valid), ("test", split.test)):
            ranked = model.recommend(probes, max(KS))
            out[f"{cls.name}/{name}"] = S.search_metrics(ranked, probes.targets, KS, head)
    return out


def dense_dev(store: ProjectStore, set_id: int, dev, mode: str) -> tuple[dict, dict]:
    ranked, info = drive(S.rank_dense(store, set_id, dev["text"].tolist(), max(KS), long_text=mode))
    return S.search_metrics(ranked, dev["item_idx"].to_numpy(np.int64), KS), info


def latency(store: ProjectStore, set_id: int, texts: list[str], n: int = 30) -> dict:
    emb = store.load_embedding_set(set_id)
    index = S.DenseIndex(emb.vectors)
    drive(G.encode_queries(store, set_id, texts[:1]))  # load the encoder once
    dense, bm = [], []
    item_texts, _ = S.item_texts(store)
    bm25 = S.BM25Index(item_texts)
    for text in texts[:n]:
        t = time.perf_counter()
        q, _ = drive(G.encode_queries(store, set_id, [text]))
        index.search(q, 10)
        dense.append(time.perf_counter() - t)
        t = time.perf_counter()
        bm25.search([text], 10)
        bm.append(time.perf_counter() - t)
    return {"dense_top10_ms_median": 1000 * float(np.median(dense)), "bm25_top10_ms_median": 1000 * float(np.median(bm)),
            "n_queries": len(dense), "median_query_chars": float(np.median([len(t) for t in texts[:n]]))}


def build(store: ProjectStore, strategy: str, spec: G.StrategySpec, sources=None) -> int:
    log(f"  - {strategy} (seed {spec.seed})")
    started = time.perf_counter()
    set_id = drive(G.build_embedding(store, strategy, spec, sources=sources), on_event)
    log(f"    set #{set_id} in {time.perf_counter() - started:.0f} s")
    return set_id


def strategy_table(store: ProjectStore, args, split: str, overrides: dict) -> dict:
    """Build every strategy for every seed; evaluate search (dense) and rec (item-kNN)."""
    results: dict[str, list[dict]] = {}
    content_id = None
    for emb in store.list_embedding_sets():
        if emb.strategy in ("content", "imported") and emb.n_items == store.item_count():
            content_id = emb.id
    if content_id is None:
        content_id = build(store, "content", G.make_spec(preset=args.preset, overrides=overrides))
    rec_ids: dict[int, int] = {}
    for seed in args.seeds:
        spec = G.make_spec(preset=args.preset, overrides={**overrides, "seed": seed})
        ids: dict[str, int] = {"content": content_id}
        if "rec" in args.strategies or any(s.startswith("fused") for s in args.strategies):
            ids["rec"] = rec_ids.setdefault(seed, build(store, "rec", spec))
        for strategy in ("search", "multitask"):
            if strategy in args.strategies or (strategy == "search" and any(s.startswith("fused")
                                                                           for s in args.strategies)):
                ids[strategy] = build(store, strategy, spec)
        for strategy in ("fused-concat", "fused-svd"):
            if strategy in args.strategies:
                ids[strategy] = build(store, strategy, spec, sources=[ids["search"], ids["rec"]])
        for strategy, set_id in ids.items():
            if strategy not in args.strategies:
                continue
            if strategy == "content" and seed != args.seeds[0]:
                continue  # not trained: one run is the run
            row: dict = {"set": set_id, "seed": seed}
            if G.has_text_side(strategy):
                rep = drive(S.evaluate_search(store, "dense", embedding_set_ids=[set_id], split=split, ks=KS,
                                              long_text=args.long_text, bootstrap=200, name=f"bench {strategy}",
                                              max_queries=args.max_queries))
                row["search"] = rep["metrics"]
                row["query_encoding"] = rep["settings"]["sets"][0]["query_encoding"]
            for rec_split in ("valid", "test"):
                row[f"rec_{rec_split}"] = G.evaluate_rec_dense(store, set_id, split=rec_split, ks=KS)
            params = store.load_embedding_set(set_id).params
            for key in ("pairs_per_s", "train_seconds", "steps", "train_queries", "queries_truncated_share",
                        "loss_first", "loss_last", "n_cold", "cold_fallback"):
                if key in params:
                    row[key] = params[key]
            results.setdefault(strategy, []).append(row)
            s = row.get("search", {})
            log(f"    {strategy:<13} seed {seed}: search R@10 {s.get('recall@10', float('nan')):.4f} "
                f"R@30 {s.get('recall@30', float('nan')):.4f} | rec(valid) R@10 {row['rec_valid']['recall@10']:.4f} "
                f"R@30 {row['rec_valid']['recall@30']:.4f}")
    return results


def print_strategy_table(results: dict, split: str) -> None:
    log(f"\n  {'strategy':<14}{'search R@10':>20}{'search R@30':>20}{'rec valid R@10':>20}{'rec valid R@30':>20}"
        f"{'rec test R@30':>20}{'pairs/s':>10}")
    for strategy, rows in results.items():
        s10 = [r["search"]["recall@10"] for r in rows if "search" in r]
        s30 = [r["search"]["recall@30"] for r in rows if "search" in r]
        r10 = [r["rec_valid"]["recall@10"] for r in rows]
        r30 = [r["rec_valid"]["recall@30"] for r in rows]
        t30 = [r["rec_test"]["recall@30"] for r in rows]
        pps = [r["pairs_per_s"] for r in rows if "pairs_per_s" in r]
        log(f"  {strategy:<14}{fmt(s10):>20}{fmt(s30):>20}{fmt(r10):>20}{fmt(r30):>20}{fmt(t30):>20}"
            f"{(f'{np.mean(pps):.1f}' if pps else '-'):>10}")
    log(f"  (search on {split}, dense over each set; rec = item-kNN from the last history item, "
        f"leave-one-out; mean ± std over seeds)")


# --------------------------------------------------------------------------- datasets


def run_tomt(args, overrides: dict) -> dict:
    out: dict = {}
    path = tomt_project(args.workdir)
    with ProjectStore.open(path) as store:
        log(f"\n== movielens_tomt: {store.item_count()} movies, {store.interaction_count()} ratings, "
            f"{store.query_count('train')} train / {store.query_count('validation')} validation requests")
        val = store.queries_frame(split="validation")
        train = store.queries_frame(split="train")
        asked = np.isin(val["item_idx"], train["item_idx"]).mean()
        log(f"  {asked:.0%} of validation answers also have training requests")
        out["validation_answers_asked_share"] = float(asked)

        log("\n-- BM25 (bm25s) on validation")
        bm = drive(S.evaluate_search(store, "bm25", split="validation", ks=KS, name="bench bm25"))["metrics"]
        out["bm25"] = bm

        log("\n-- dense MiniLM (content), truncation vs chunking on the dev split (10% of train, seed 0)")
        content_id = None
        for emb in store.list_embedding_sets():
            if emb.strategy == "content":
                content_id = emb.id
        if content_id is None:
            content_id = build(store, "content", G.make_spec(overrides={k: v for k, v in overrides.items()
                                                                         if k in ("model", "template")}))
        _, dev = Q.split_for_selection(train, 0.1, seed=0)
        out["long_text_dev"] = {}
        for mode in G.LONG_TEXT:
            m, info = dense_dev(store, content_id, dev, mode)
            out["long_text_dev"][mode] = {"metrics": m, "query_encoding": info["query_encoding"]}
            enc = info["query_encoding"]
            log(f"  {mode:<9} dev R@10 {m['recall@10']:.4f} R@30 {m['recall@30']:.4f} MRR {m['mrr']:.4f} "
                f"({enc['n_over_window']} of {enc['n']} requests = {enc['share_over_window']:.1%} over the "
                f"{enc['window']}-token window; {enc['n_chunks']} chunks)")
        best = max(G.LONG_TEXT, key=lambda m: (out["long_text_dev"][m]["metrics"]["recall@30"],
                                               out["long_text_dev"][m]["metrics"]["mrr"]))
        if args.long_text == "auto":
            args.long_text = best
        log(f"  chosen on dev: {best}; used below: {args.long_text}")
        dense = drive(S.evaluate_search(store, "dense", embedding_set_ids=[content_id], split="validation", ks=KS,
                                        long_text=args.long_text, name="bench dense content"))
        out["dense_content"] = dense["metrics"]
        log(f"  validation share over the window: {dense['settings']['sets'][0]['query_encoding']['share_over_window']:.1%}")

        log("\n-- reference table (issue) vs here")
        refs = rec_references(store)
        out["rec_references"] = refs
        here = {"search, BM25 (bm25s)": (bm["recall@10"], bm["recall@30"]),
                "search, all-MiniLM-L6-v2 dense, not tuned": (out["dense_content"]["recall@10"],
                                                              out["dense_content"]["recall@30"])}
        for name, key in (("rec (leave-one-out by time), popularity", "popularity"),
                          ("rec, first-order Markov on training part", "markov")):
            for sp in ("valid", "test"):
                if f"{key}/{sp}" in refs:
                    here[f"{name} [{sp}]"] = (refs[f"{key}/{sp}"]["recall@10"], refs[f"{key}/{sp}"]["recall@30"])
        log(f"  {'':<52}{'ref R@10':>9}{'ref R@30':>9}{'R@10':>9}{'R@30':>9}")
        for name, (r10, r30) in here.items():
            ref = REFERENCE.get(name.split(" [")[0], (float("nan"), float("nan")))
            log(f"  {name:<52}{ref[0]:>9.3f}{ref[1]:>9.3f}{r10:>9.4f}{r30:>9.4f}")
        for label, m in (("BM25", bm), ("dense", out["dense_content"])):
            log(f"  {label}: asked R@10 {m['asked'].get('recall@10', 0):.4f} (n={m['asked']['n']}), "
                f"never asked R@10 {m['never_asked'].get('recall@10', 0):.4f} (n={m['never_asked']['n']}); "
                f"head n={m['head']['n']}, torso n={m['torso']['n']}")

        log("\n-- rec-tuned vectors: method and window chosen on the leave-one-out *validation* targets")
        sweep = {}
        for ov in ({"rec_method": "ppmi-svd", "rec_window": w} for w in (2, 5, 10)):
            set_id = drive(G.build_embedding(store, "rec", G.make_spec(overrides=ov)))
            m = G.evaluate_rec_dense(store, set_id, split="valid", ks=KS)
            sweep[json.dumps(ov)] = m
            log(f"  {ov}: valid R@10 {m['recall@10']:.4f} R@30 {m['recall@30']:.4f}")
        if "bpr" in args.rec_methods:
            ov = {"rec_method": "bpr"}
            set_id = drive(G.build_embedding(store, "rec", G.make_spec(overrides=ov)))
            m = G.evaluate_rec_dense(store, set_id, split="valid", ks=KS)
            sweep[json.dumps(ov)] = m
            log(f"  {ov}: valid R@10 {m['recall@10']:.4f} R@30 {m['recall@30']:.4f}")
        out["rec_sweep"] = sweep
        chosen = json.loads(max(sweep, key=lambda k: sweep[k]["recall@10"]))
        log(f"  chosen: {chosen}")
        overrides = {**chosen, **overrides}

        log(f"\n-- embedding strategies (seeds {args.seeds}; preset {args.preset}; overrides {overrides})")
        results = strategy_table(store, args, "validation", overrides)
        out["strategies"] = results
        print_strategy_table(results, "validation")

        log("\n-- latency of one query (median)")
        set_for_latency = results.get("search", results.get("content"))[0]["set"]
        out["latency"] = latency(store, set_for_latency, val["text"].tolist())
        log(f"  {out['latency']}")
    return out


def run_beauty(args, overrides: dict) -> dict:
    out: dict = {}
    path = beauty_project(args.workdir, args)
    with ProjectStore.open(path) as store:
        prot = [r for r in Q.query_protocols(store) if r["source"] == Q.GENERATED][0]["protocol"]
        log(f"\n== amazon2014_beauty_5core: {store.item_count()} items, {store.interaction_count()} interactions; "
            f"generated queries: {Q.describe_spec(Q.QuerySpec(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in prot.items() if k in Q.QuerySpec.__dataclass_fields__}))}")
        log(f"  examples: {store.queries_frame(split='test').head(3)['text'].tolist()}")
        bm = drive(S.evaluate_search(store, "bm25", split="test", ks=KS, name="bench bm25",
                                     max_queries=args.max_queries))["metrics"]
        out["bm25"] = bm
        log(f"  BM25 test R@10 {bm['recall@10']:.4f} R@30 {bm['recall@30']:.4f} "
            f"(head {bm['head'].get('recall@10', 0):.4f}, torso {bm['torso'].get('recall@10', 0):.4f})")
        out["rec_references"] = rec_references(store)
        for key, m in out["rec_references"].items():
            log(f"  rec {key}: R@10 {m['recall@10']:.4f} R@30 {m['recall@30']:.4f}")
        log(f"\n-- embedding strategies (seeds {args.beauty_seeds})")
        b_args = argparse.Namespace(**{**vars(args), "seeds": args.beauty_seeds})
        results = strategy_table(store, b_args, "test", overrides)
        out["strategies"] = results
        print_strategy_table(results, "test (generated)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["tomt", "beauty"], choices=["tomt", "beauty"])
    parser.add_argument("--workdir", type=Path, default=REPO / "out" / "bench_search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--beauty-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="+", default=list(G.STRATEGIES), choices=list(G.STRATEGIES))
    parser.add_argument("--preset", default="laptop", choices=list(G.PRESETS))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--long-text", default="auto", choices=["auto", *G.LONG_TEXT],
                        help="dense query side for long requests (auto: the better one on the tomt dev split)")
    parser.add_argument("--rec-methods", nargs="+", default=["ppmi-svd"], choices=list(G.REC_METHODS))
    parser.add_argument("--beauty-embeddings", help="optional .npy of MiniLM Beauty item vectors (a cache)")
    parser.add_argument("--beauty-ids", help="ids of the rows of --beauty-embeddings")
    parser.add_argument("--max-queries", type=int, default=None,
                        help="evaluate a seeded sample of at most this many held-out queries (Beauty: 24k)")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    args = parser.parse_args()
    overrides = dict(pair.split("=", 1) for pair in args.set)
    args.workdir.mkdir(parents=True, exist_ok=True)
    needed = {"tomt": "movielens_tomt", "beauty": "amazon2014_beauty_5core"}
    results: dict = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    if args.long_text == "auto" and "tomt" not in args.datasets:
        args.long_text = "truncate"  # "auto" is chosen on tomt's dev split; generated queries are short anyway
    for name in args.datasets:
        if not (DATA / needed[name]).exists():
            log(f"skipping {name}: ../shared/data/{needed[name]} is not available")
            continue
        results[name] = run_tomt(args, overrides) if name == "tomt" else run_beauty(args, overrides)
        if args.long_text == "auto":
            args.long_text = "truncate"
    results["seconds"] = round(time.perf_counter() - started, 1)
    log(f"\ndone in {results['seconds']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
