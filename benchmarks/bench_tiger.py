"""TIGER benchmark on Amazon 2014 Beauty (leave-one-out, full catalogue): quality and speed.

    .venv/bin/python benchmarks/bench_tiger.py [--preset laptop] [--minutes 60] [--seeds 0,1,2]
        [--threads 1] [--embeddings out/cache/beauty_minilm.npy] [--sasrec default|tune|none]
        [--curve 5,10,15,30,45,60] [--project out/bench/beauty.semid] [--json out/bench_tiger.json]
    .venv/bin/python benchmarks/bench_tiger.py --models ID[,ID] [--speed-only] ...   (stored models)
    .venv/bin/python benchmarks/bench_tiger.py --throughput --threads 1              (efficiency choices)
    .venv/bin/python benchmarks/bench_tiger.py --combine s0.json,s1.json,s2.json     (seeds run apart)
    .venv/bin/python benchmarks/bench_tiger.py --models ID --beam-check 2000          (beam vs exact ranking)
    ... --protocols all,filtered   (the test table also with the seen-item filter on every method)

Budgets (``--minutes``, ``--curve``) are CPU minutes of this process: with one torch thread
that is one core of a laptop, and it stays fair on a shared machine; wall minutes are printed
next to them. Figures and commands: docs/generative.md.

What it does, through the same core functions as the CLI:

1. builds (once) a Beauty project: items and interactions imported from ../shared/data,
   items embedded with the bundled all-MiniLM-L6-v2 and the template
   ``Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}`` (or read from
   ``--embeddings``, a .npy in the order of items.jsonl.gz), default RQ-KMeans SIDs;
2. trains the generative model for ``--minutes`` per seed (checkpoint chosen on validation),
   and tests the best-so-far checkpoint at each ``--curve`` time (quality against time); the
   snapshots are also written next to the project (``*.snapshots/``) for ``--models`` runs;
3. evaluates on the test split (Recall / NDCG @ 5, 10, 20) next to popularity, the
   first-order Markov chain and SASRec (``default``: its tuned defaults; ``tune``: a small
   grid chosen on validation);
4. measures speed: training targets per second, constrained top-10 with beam 20 for one
   history (median ms, ``paper`` preset and the trained model), users per second batched,
   the invalid-SID rate with and without the trie, peak memory.

Figures taken on a shared machine are pessimistic; the printed table says which device and
how many threads ran them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BEAUTY = REPO / ".." / "shared" / "data" / "amazon2014_beauty_5core"
TEMPLATE = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"
PAPER = {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384}
SASREC_GRID = [  # around SASRecSpec's defaults (d 64, dropout 0.5, lr 2e-3, batch 1,024)
    {},
    {"dropout": 0.3},
    {"lr": 1e-3},
    {"d_model": 128, "dropout": 0.5},
]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_project(path: Path, data: Path, embeddings: str | None):
    from semid_studio.core import embed, importing, quantize
    from semid_studio.core.events import drive
    from semid_studio.core.store import ProjectStore

    if path.exists():
        return ProjectStore.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(path)
    try:
        store.set_meta("template", TEMPLATE)
        drive(importing.import_data(store, items=data / "items.jsonl.gz", interactions=data / "interactions.tsv.gz"))
        if embeddings:
            vectors = np.load(embeddings).astype(np.float32)
            if len(vectors) != store.item_count():
                sys.exit(f"{embeddings}: {len(vectors)} rows, catalogue has {store.item_count()} items")
            ids_file = Path(embeddings).with_name(Path(embeddings).stem + "_ids.csv")
            if ids_file.exists():
                listed = [x.strip() for x in ids_file.read_text().splitlines() if x.strip()]
                listed = listed[1:] if listed and listed[0] == "item_id" else listed
                if listed != list(store.item_ids()):
                    sys.exit(f"{ids_file}: ids are not in catalogue order")
            model, _ = embed.resolve_model(None)
            store.save_embedding_set(name="all-MiniLM-L6-v2 / content (cached)", model=model, template=TEMPLATE,
                                     strategy="content", cache_key=embed.cache_key(model, TEMPLATE), vectors=vectors,
                                     params={"source": str(embeddings)})
        else:
            drive(embed.embed_items(store, template=TEMPLATE))
        # TIGER's 3 x 256 (the published Beauty protocol), not the size-to-catalogue default
        drive(quantize.quantize_project(store, spec=quantize.make_spec("rq-kmeans", overrides={"codebook_size": 256})))
    except BaseException:
        store.close()
        path.unlink(missing_ok=True)
        raise
    return store


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fmt_row(name: str, summary: dict, ks=(5, 10, 20)) -> str:
    cells = []
    for k in ks:
        for m in ("recall", "ndcg"):
            v = summary.get(f"{m}@{k}")
            if v is None:
                cells.append("".rjust(16))
            elif isinstance(v, dict):
                cells.append((f"{v['mean']:.4f}" + (f"±{v['std']:.4f}" if v.get("n", 1) > 1 else "")).rjust(16))
            else:
                cells.append(f"{v:.4f}".rjust(16))
    return name.ljust(28) + "".join(cells)


def train_seed(store, spec, preset, minutes, curve, device, snapdir: Path | None = None):
    """Train one seed; snapshot the best-so-far checkpoint at each curve time.

    Curve times are CPU minutes of this process since training started (one torch thread =
    one core of a laptop; fair on a shared machine); wall minutes are recorded next to them.
    Snapshots are also written to ``snapdir`` so a crash later in the script loses nothing.
    """
    from semid_studio.core.events import CancelToken, Cancelled, PartialResult, drive
    from semid_studio.core.generative import train_model

    snapshots: dict[float, dict] = {}
    pending = sorted(c for c in curve if c <= minutes + 1e-9)
    clock = {"cpu0": time.process_time(), "wall0": time.monotonic(), "points": []}

    def take(model_id, minute, cpu_min, wall_min):
        ckpt = store.load_checkpoint(model_id, "best")
        snapshots[minute] = {"weights": ckpt.weights, "step": ckpt.step, "cpu_min": cpu_min, "wall_min": wall_min}
        if snapdir is not None:
            snapdir.mkdir(parents=True, exist_ok=True)
            np.savez(snapdir / f"model{model_id}_{minute:g}min.npz", **ckpt.weights)
            (snapdir / f"model{model_id}_{minute:g}min.json").write_text(json.dumps(
                {"step": ckpt.step, "cpu_min": cpu_min, "wall_min": wall_min}))

    def on_event(event):
        if isinstance(event, PartialResult) and event.kind == "checkpoint":
            cpu_min = (time.process_time() - clock["cpu0"]) / 60
            wall_min = (time.monotonic() - clock["wall0"]) / 60
            clock["points"].append({"step": event.payload["step"], "cpu_min": cpu_min, "wall_min": wall_min,
                                    "valid_ndcg@10": event.payload["ndcg@10"],
                                    "valid_recall@10": event.payload["recall@10"]})
            log(f"  step {event.payload['step']:6d}  cpu {cpu_min:6.1f} min  wall {wall_min:6.1f} min  "
                f"valid ndcg@10 {event.payload['ndcg@10']:.4f}  recall@10 {event.payload['recall@10']:.4f}")
            while pending and cpu_min >= pending[0] - 1e-9:
                take(event.payload["model_id"], pending.pop(0), cpu_min, wall_min)

    def on_any(event):
        on_event(event)
        if (time.process_time() - clock["cpu0"]) / 60 >= minutes:
            cancel.cancel()  # the CPU budget is spent; the best checkpoint so far is kept

    # the run's length is spec.max_steps (the LR schedule, sized to the budget); the CPU budget
    # is a cap, checked between steps; the wall-clock cap is a safety net on a busy machine
    cancel = CancelToken()
    try:
        model_id = drive(train_model(store, spec, resume=False, preset=preset, device=device,
                                     max_minutes=minutes * 2, cancel=cancel), on_any)
    except Cancelled:
        model_id = max(r.id for r in store.list_models("tiger"))
        log(f"  CPU budget of {minutes:g} min spent: stopped model #{model_id} (best checkpoint kept)")
    cpu_min = (time.process_time() - clock["cpu0"]) / 60
    wall_min = (time.monotonic() - clock["wall0"]) / 60
    for c in pending:  # the run ended before this time: its final best is what that budget gets
        take(model_id, c, cpu_min, wall_min)
    return model_id, snapshots, {"cpu_min": cpu_min, "wall_min": wall_min, "valid_points": clock["points"]}


def load_snapshots(snapdir: Path, model_id: int) -> dict[float, dict]:
    """The curve snapshots :func:`train_seed` wrote for this model (empty when none)."""
    out = {}
    for meta in sorted(snapdir.glob(f"model{model_id}_*min.json")):
        minute = float(meta.stem.split("_")[-1][:-3])
        with np.load(meta.with_suffix(".npz")) as z:
            out[minute] = {**json.loads(meta.read_text()), "weights": {k: z[k] for k in z.files}}
    return out


def curve_points(store, model_id, snapshots, split, beam):
    from semid_studio.core.events import drive
    from semid_studio.core.generative.evaluate import load_model, rank_probes
    from semid_studio.core.generative.metrics import ranking_metrics

    lm = load_model(store, model_id)
    out = []
    for minute in sorted(snapshots):
        snap = snapshots[minute]
        lm.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in snap["weights"].items()})
        ranked = drive(rank_probes(lm, split.test, k=20, beam=beam))
        m = ranking_metrics(ranked, split.test.targets, (5, 10, 20))
        out.append({"minutes": minute, "best_step": snap["step"], "cpu_min": snap["cpu_min"],
                    "wall_min": snap["wall_min"], **m})
        log(f"  curve {minute:5.1f} min (best step {snap['step']}): R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f}")
    return out


def speed(store, model_id, split, preset_name: str, device: str, n_latency: int = 200):
    """Latency (batch of one), batched throughput and invalid rates."""
    from semid_studio.core.generative import make_spec
    from semid_studio.core.generative.decode import beam_search
    from semid_studio.core.generative.evaluate import load_model
    from semid_studio.core.generative.model import TigerModel
    from semid_studio.core.generative.train import make_vocab
    from semid_studio.core.generative.trie import SidTrie

    lm = load_model(store, model_id, device=device)
    hists = [split.test.history(i) for i in range(len(split.test))]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(hists), n_latency, replace=False)

    def latency(model, trie):
        times = []
        for i in pick:
            t0 = time.perf_counter()
            beam_search(model, trie, [hists[i]], beam=20, k=10)
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000), float(np.percentile(times, 90) * 1000)

    with torch.inference_mode():
        beam_search(lm.model, lm.trie, hists[:4], beam=20, k=10)  # warm-up
        result = {"trained_model": preset_name}
        result["latency_ms_trained"], result["latency_p90_ms_trained"] = latency(lm.model, lm.trie)
        # the paper-size model: latency depends on the architecture only, not on training
        run = store.load_quantizer_run(lm.record.quantizer_run_id)
        paper_spec = make_spec("paper")
        vocab = make_vocab(paper_spec, run.codes)
        torch.manual_seed(0)
        paper = TigerModel(paper_spec, vocab).to(lm.model.tokens.weight.device).eval()
        paper.set_catalogue(run.codes)
        ptrie = SidTrie.build(run.codes, vocab.level_sizes).to(lm.model.tokens.weight.device)
        beam_search(paper, ptrie, hists[:4], beam=20, k=10)
        result["latency_ms_paper"], result["latency_p90_ms_paper"] = latency(paper, ptrie)
        # batched
        n = min(len(hists), 4096)
        t0 = time.perf_counter()
        constrained = []
        for s in range(0, n, 256):
            constrained.append(beam_search(lm.model, lm.trie, hists[s:s + 256], beam=20, k=10))
        result["users_per_s_batched"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in range(0, n, 256):
            beam_search(paper, ptrie, hists[s:s + 256], beam=20, k=10)
        result["users_per_s_batched_paper"] = n / (time.perf_counter() - t0)
        result["invalid_rate_constrained"] = float(np.mean([d.invalid_rate for d in constrained]))
        free = [beam_search(lm.model, lm.trie, hists[s:s + 256], beam=20, k=20, constrained=False)
                for s in range(0, min(n, 2048), 256)]
        result["invalid_rate_unconstrained_top20"] = float(np.mean([d.invalid_rate for d in free]))
    return result


THROUGHPUT_CONFIGS = [  # (preset, overrides): the efficiency choices of docs/generative.md
    ("paper", {"train_targets": "last", "item_embedding": "0"}),
    ("paper", {"item_embedding": "0"}),
    ("laptop", {"content_input": "0", "node_output": "0", "decoder_context": "cross"}),
    ("laptop", {"content_input": "0", "node_output": "0"}),
    ("laptop", {"content_input": "0", "node_output": "0", "constrained_loss": "0"}),
    ("laptop", {"content_input": "0"}),
    ("laptop", {"content_input": "0", "precision": "bf16"}),
    ("laptop", {}),  # as shipped: content_input on
    ("laptop", {"content_input": "0", "content_output": "1"}),
    ("laptop", {"content_output": "1"}),
]


def throughput(store, split, steps: int = 6, max_s: float = 25.0) -> dict:
    """Training target items per CPU second for each efficiency choice, and the padding share
    of length-bucketed against random batches."""
    from semid_studio.core.generative import make_spec
    from semid_studio.core.generative.data import iter_batches, training_windows
    from semid_studio.core.generative.train import make_vocab, training_content
    from semid_studio.core.generative.trainer import Trainer

    run = store.load_quantizer_run()
    codes = run.codes
    windows = training_windows(split.train, 20)
    rng = np.random.default_rng(0)
    batches = iter_batches(windows, 2048, rng)
    lengths = windows.lengths - 1
    perm, rows = rng.permutation(len(lengths)), 2048 // 20
    random_slots = sum(int(lengths[perm[i:i + rows]].max()) * len(perm[i:i + rows]) for i in range(0, len(perm), rows))
    out = {"padding_bucketed": 1 - sum(b.n_targets for b in batches) / sum(b.targets.size for b in batches),
           "padding_random_batches": 1 - lengths.sum() / random_slots, "configs": []}
    for preset, overrides in THROUGHPUT_CONFIGS:
        spec = make_spec(preset, overrides)
        content, _ = training_content(store, spec, run, len(codes))
        trainer = Trainer(spec, make_vocab(spec, codes), codes, split, "cpu", content=content)
        for _ in range(2):  # warm-up
            trainer.train_step()
        t0, n, k = time.process_time(), 0, 0
        while k < steps and time.process_time() - t0 < max_s:
            n += trainer.train_step()[1]
            k += 1
        row = {"preset": preset, "overrides": overrides, "targets_per_cpu_s": n / (time.process_time() - t0),
               "parameters": trainer.model.n_parameters()}
        out["configs"].append(row)
        log(f"  {preset} {overrides}: {row['targets_per_cpu_s']:.0f} targets / CPU s")
    return out


def beam_check(store, model_id: int, split, n_users: int, beams=(10, 20, 50), seed: int = 0) -> dict:
    """How much the beam costs: Recall / NDCG @ 10 on a seeded sample of test users from
    constrained beam search at several widths and from the exact ranking of the whole catalogue
    (``exact_scores``: every item's SID log-likelihood), plus how often the top 10 agree."""
    from semid_studio.core.events import drive
    from semid_studio.core.generative.decode import exact_scores
    from semid_studio.core.generative.evaluate import load_model, rank_probes
    from semid_studio.core.generative.metrics import ranking_metrics

    lm = load_model(store, model_id)
    rows = np.sort(np.random.default_rng(seed).choice(len(split.test), min(n_users, len(split.test)), replace=False))
    probes = split.test.subset(rows)
    t0 = time.process_time()
    exact = np.stack([np.argsort(-exact_scores(lm.model, lm.trie, probes.history(i)), kind="stable")[:10]
                      for i in range(len(probes))])
    out = {"n_users": len(probes), "exact": {**ranking_metrics(exact, probes.targets, (10,)),
                                              "cpu_s": time.process_time() - t0}}
    for beam in beams:
        t0 = time.process_time()
        ranked = drive(rank_probes(lm, probes, k=10, beam=beam))
        same = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ranked, exact)]))
        out[f"beam {beam}"] = {**ranking_metrics(ranked, probes.targets, (10,)), "overlap_with_exact@10": same,
                               "cpu_s": time.process_time() - t0}
    for name, m in out.items():
        if isinstance(m, dict):
            extra = f"  top-10 overlap with exact {m['overlap_with_exact@10']:.3f}" if "overlap_with_exact@10" in m else ""
            log(f"  {name:8} R@10 {m['recall@10']:.4f}  N@10 {m['ndcg@10']:.4f}  ({m['cpu_s']:.0f} CPU s){extra}")
    return out


def combine(files: list[Path]) -> int:
    """Pool the per-seed test figures of several result files (same preset, same split; the
    baselines are deterministic and are taken from the first file) into mean and spread."""
    from semid_studio.core.generative.metrics import summarise_runs

    per_seed, seeds, rows = {}, [], []
    for f in files:
        res = json.loads(f.read_text())
        for protocol, report in _reports(res).items():
            per_seed.setdefault(protocol, []).extend(report["tiger"]["per_seed"])
        seeds += res["report"]["tiger"]["seeds"]
        rows.append((f, res))
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"seeds repeat across the files ({seeds}): each file must add new seeds")
    presets = {(r["preset"], json.dumps(r["overrides"], sort_keys=True)) for _, r in rows}
    if len(presets) > 1:
        raise SystemExit(f"the files were trained with different settings: {sorted(presets)}")
    print(f"TIGER on Beauty, test split: {len(seeds)} seeds {seeds} pooled from {len(files)} files "
          f"(mean ± standard deviation over seeds)")
    names = {"popularity": "popularity", "markov": "Markov (1st order)", "sasrec": "SASRec (tuned, ours)"}
    for protocol, runs in per_seed.items():
        if len(runs) != len(seeds):
            print(f"({protocol}: only {len(runs)} of the {len(seeds)} seeds have it; left out)")
            continue
        print(f"\n{PROTOCOLS[protocol]}")
        print("".ljust(28) + "".join(f"{m}@{k}".rjust(16) for k in (5, 10, 20) for m in ("R", "N")))
        print(fmt_row("TIGER (paper)", PAPER))
        for seed, m in zip(seeds, runs):
            print(fmt_row(f"  ours, seed {seed}", m))
        print(fmt_row("TIGER-ours (SID model)", summarise_runs(runs)))
        for key, entry in _reports(rows[0][1])[protocol].items():
            if key != "tiger":
                print(fmt_row(names.get(key, key), entry["summary"]))
    return 0


#: the two ranking protocols (the second is the seen-item filter, applied to every method)
PROTOCOLS = {"all": "every item ranked", "filtered": "each user's history items left out of every list"}


def _reports(results: dict) -> dict[str, dict]:
    """A results file's test reports per protocol (files from before --protocols have 'all' only)."""
    return results.get("reports") or {"all": results["report"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(BEAUTY))
    ap.add_argument("--project", default=str(REPO / "out" / "bench" / "beauty.semid"))
    ap.add_argument("--embeddings", help="cached MiniLM vectors (.npy, rows in items.jsonl.gz order)")
    ap.add_argument("--preset", default="laptop")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--minutes", type=float, default=60.0,
                    help="training budget per seed in CPU minutes of this process (use --threads 1)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--curve", default="5,10,15,30,45,60", help="minutes at which the best checkpoint is tested")
    ap.add_argument("--sasrec", choices=["tune", "default", "none"], default="default",
                    help="default: SASRecSpec's settings (tuned on validation, see docs/generative.md); "
                         "tune: a small grid chosen on validation")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed measurements")
    ap.add_argument("--speed-only", action="store_true", help="with --models: only the speed measurements")
    ap.add_argument("--throughput", action="store_true",
                    help="only the training throughput of each efficiency choice (use --threads 1)")
    ap.add_argument("--sasrec-minutes", type=float, default=15.0, help="budget per SASRec fit")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--models", help="skip training: evaluate these model ids (comma list)")
    ap.add_argument("--json", help="write all figures to this file")
    ap.add_argument("--beam-check", type=int, metavar="USERS",
                    help="with --models: beam widths 10/20/50 against the exact ranking on this many test users")
    ap.add_argument("--combine", help="only pool the test figures of earlier --json files (one seed each, e.g. "
                                      "seeds trained in parallel processes) into mean and spread")
    ap.add_argument("--protocols", default="all",
                    help="comma list: all (every item ranked), filtered (each user's history items left out "
                         "of every method's list, the seen-item filter); the test table is printed for each")
    args = ap.parse_args(argv)
    if args.combine:
        return combine([Path(f) for f in args.combine.split(",") if f.strip()])

    data = Path(args.data)
    if not (data / "interactions.tsv.gz").exists():
        print(f"{data}: Beauty data not found; skipping", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from dataclasses import replace

    from semid_studio.core.events import drive
    from semid_studio.core.generative import evaluate_model, make_spec
    from semid_studio.core.generative.baselines import SASRec, SASRecSpec, tune_sasrec
    from semid_studio.core.generative.metrics import ranking_metrics, summarise_runs
    from semid_studio.core.generative.train import load_split

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    curve = [float(c) for c in args.curve.split(",") if c.strip()]
    overrides = dict(s.split("=", 1) for s in args.set)
    t_start = time.monotonic()
    store = build_project(Path(args.project), data, args.embeddings)
    seqs, split = load_split(store, "loo")
    log(f"project {args.project}: {store.item_count()} items; {split.describe()}")
    env = {"device": args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
           "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    log(f"device {env['device']}, {env['threads']} threads, torch {env['torch']}"
        + ("" if env["gpu"] else "; no GPU available on this machine"))

    if args.throughput:
        out = throughput(store, split)
        print(json.dumps(out, indent=1, default=float))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1, default=float))
        return 0
    results: dict = {"env": env, "preset": args.preset, "overrides": overrides, "minutes": args.minutes,
                     "seeds": seeds}
    model_ids, curves, timing = [], [], []
    if args.models:
        # evaluate stored models; their curve snapshots (if any) are read back from disk
        model_ids = [int(m) for m in args.models.split(",")]
        for model_id in model_ids:
            snaps = load_snapshots(Path(args.project).with_suffix(".snapshots"), model_id)
            if snaps and not (args.speed_only or args.beam_check):
                curves.append(curve_points(store, model_id, snaps, split, beam=20))
    else:
        for seed in seeds:
            spec = make_spec(args.preset, {**overrides, "seed": seed})
            log(f"training seed {seed} ({args.preset}, {args.minutes:g} min) ...")
            model_id, snaps, clock = train_seed(store, spec, args.preset, args.minutes, curve, args.device,
                                                Path(args.project).with_suffix(".snapshots"))
            model_ids.append(model_id)
            timing.append({"seed": seed, "model_id": model_id, **clock})
            curves.append(curve_points(store, model_id, snaps, split, beam=20))
    results["model_ids"] = model_ids
    results["curve"] = curves
    results["timing"] = timing
    histories = [store.get_model(m).history for m in model_ids]
    results["train_targets_per_s"] = float(np.mean([np.mean([h["targets_per_s"] for h in hist[1:] or hist])
                                                    for hist in histories]))
    results["valid_history"] = histories

    if args.beam_check:
        if not model_ids:
            sys.exit("--beam-check needs --models")
        out = beam_check(store, model_ids[0], split, args.beam_check)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1, default=float))
        return 0
    if args.speed_only:
        if not model_ids:
            sys.exit("--speed-only needs --models")
        results["speed"] = speed(store, model_ids[0], split, args.preset, args.device or "cpu")
        results["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps({"speed": results["speed"], "peak_rss_mb": results["peak_rss_mb"],
                          "threads": torch.get_num_threads()}, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        return 0
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    if not protocols or set(protocols) - set(PROTOCOLS):
        sys.exit(f"--protocols: choose from {', '.join(PROTOCOLS)}")
    results["reports"], results["evaluation_ids"] = {}, {}
    for protocol in protocols:
        report = drive(evaluate_model(store, model_ids, ks=(5, 10, 20), baselines=("popularity", "markov"),
                                      exclude_history=protocol == "filtered", device=args.device))
        results["reports"][protocol] = report["models"]
        results["evaluation_ids"][protocol] = report.get("evaluation_id")
    results["report"] = results["reports"][protocols[0]]

    if args.sasrec != "none":
        n_items = store.item_count()
        if args.sasrec == "tune":
            log("tuning SASRec on validation ...")
            best, trials = drive(tune_sasrec(split, n_items, SASREC_GRID, max_minutes_each=args.sasrec_minutes,
                                             device=env["device"]), lambda e: None)
            results["sasrec_trials"] = trials
            spec = best.spec
        else:
            spec = SASRecSpec()
        runs: dict[str, list] = {p: [] for p in protocols}
        for seed in seeds:
            model = drive(SASRec(n_items, replace(spec, seed=seed), env["device"]).fit(
                split, max_minutes=args.sasrec_minutes))
            for protocol in protocols:
                ranked = model.recommend(split.test, 20, exclude_history=protocol == "filtered")
                runs[protocol].append(ranking_metrics(ranked, split.test.targets, (5, 10, 20)))
        for protocol in protocols:
            results["reports"][protocol]["sasrec"] = {"per_seed": runs[protocol],
                                                      "summary": summarise_runs(runs[protocol]),
                                                      "spec": {k: v for k, v in vars(spec).items()}}

    if not args.no_speed:
        results["speed"] = speed(store, model_ids[0], split, args.preset, args.device or "cpu")
    results["peak_rss_mb"] = peak_rss_mb()
    results["wall_minutes"] = (time.monotonic() - t_start) / 60

    print(f"\nTIGER on Beauty (leave-one-out, full catalogue of {store.item_count()} items, "
          f"{len(split.test)} test users); device {env['device']}, {env['threads']} threads"
          + ("" if env["gpu"] else " (no GPU available)"))
    print(("ours: stored model(s) " + ", ".join(f"#{m}" for m in model_ids) if args.models else
           f"ours: preset {args.preset} {overrides or ''}, {args.minutes:g} CPU-min training per seed, seeds {seeds}")
          + ", "
          "checkpoint chosen on validation NDCG@10")
    names = {"tiger": "TIGER-ours (SID model)", "popularity": "popularity", "markov": "Markov (1st order)",
             "sasrec": "SASRec (tuned, ours)"}
    for protocol, report in results["reports"].items():
        print(f"\n{PROTOCOLS[protocol]}")
        print("".ljust(28) + "".join(f"{m}@{k}".rjust(16) for k in (5, 10, 20) for m in ("R", "N")))
        print(fmt_row("TIGER (paper)", PAPER))
        for key, entry in report.items():
            print(fmt_row(names.get(key, key), entry["summary"]))
    if curves:
        print("\nquality against training time (test, best-on-validation checkpoint so far):")
        for seed, pts in zip(seeds, curves):
            for p in pts:
                print(f"  seed {seed}  {p['minutes']:5.1f} min  R@5 {p['recall@5']:.4f}  N@5 {p['ndcg@5']:.4f}  "
                      f"R@10 {p['recall@10']:.4f}  N@10 {p['ndcg@10']:.4f}")
    for t in timing:
        print(f"  seed {t['seed']}: model #{t['model_id']} trained {t['cpu_min']:.1f} CPU min, "
              f"{t['wall_min']:.1f} wall min")
    sp = results.get("speed")
    print(f"\n  training: {results['train_targets_per_s']:.0f} target items per wall second of training steps "
          "(lower than per CPU second on a busy machine; --throughput measures CPU seconds)")
    if sp:
        print("\nspeed:")
        print(f"  constrained top-10, beam 20, one history: median {sp['latency_ms_paper']:.1f} ms (paper preset), "
              f"{sp['latency_ms_trained']:.1f} ms ({args.preset})")
        print(f"  batched (256 users per call): {sp['users_per_s_batched']:.0f} users / s ({args.preset}), "
              f"{sp['users_per_s_batched_paper']:.0f} users / s (paper preset)")
        print(f"  invalid SIDs: {sp['invalid_rate_constrained']:.4f} constrained, "
              f"{sp['invalid_rate_unconstrained_top20']:.4f} of top-20 unconstrained")
    print(f"  peak memory (RSS): {results['peak_rss_mb']:.0f} MB; wall time {results['wall_minutes']:.1f} min")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
