"""Quantiser benchmark: fit time and SID health of RQ-KMeans variants and RQ-VAE on Beauty.

    .venv/bin/python benchmarks/bench_quantize.py [--embeddings out/cache/beauty_minilm.npy]
        [--seeds 3] [--vae-preset laptop] [--skip-vae] [--json out/bench_quantize.json]

Data: Amazon 2014 Beauty 5-core (12,101 items, ../shared/data), each item written with the
template ``Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}`` and
embedded with the bundled all-MiniLM-L6-v2 (or read from ``--embeddings``, a ``.npy`` in the
order of items.jsonl.gz; ``--ids`` checks that order against a one-id-per-line file).

For every RQ-KMeans variant (3 x 256 unless ``--levels`` / ``--codebook-size``) and for the
RQ-VAE preset, it prints: fit time (wall clock and CPU seconds of this process: on a shared
machine the wall clock depends on the other load, printed first); per level the codes used and the entropy (bits); the share
of items whose 3-code tuple is unique before dedup and the largest collision group (and, for
the collision-aware last level, the same figures before it); the relative reconstruction
error; the purity of level-1 and level-2 prefixes against ``--label-field`` (default
``categories[1]``: Makeup / Skin Care / Hair Care / ...). ``--seeds N`` repeats the RQ-KMeans
variants over N seeds and prints mean and spread, since level-1 purity moves by about
+-0.005 between seeds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BEAUTY = REPO / ".." / "shared" / "data" / "amazon2014_beauty_5core"
TEMPLATE = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"

#: name -> (preset, overrides); the first is the shipped default
VARIANTS = {
    "default: PCA-32 level 1, deep-balanced, matched last": ("default", {}),
    "plain residual k-means": ("plain", {}),
    "plain + matched last level": ("plain", {"unique_last_level": True}),
    "full-dim level 1, deep-balanced, matched": ("default", {"coarse_dims": 0}),
    "PCA-64 level 1, deep-balanced, matched": ("default", {"coarse_dims": 64}),
    "PCA-32 level 1, deep-balanced, nearest last": ("default", {"unique_last_level": False}),
    "PCA-32 level 1, all balanced, matched": ("default", {"balanced": "all"}),
    "PCA-32 level 1, not balanced, matched": ("default", {"balanced": "none"}),
    "fast: random init, 10 iter, not balanced, matched": ("fast", {}),
}

REFERENCE = ("reference: plain residual k-means measured before this work (1 seed): fit 1.5 s, "
             "256/256 codes per level, entropy 7.65 / 6.72 / 6.58 bits, 73.5% unique, largest group 13, "
             "level-1 purity 0.87")


def load_items(folder: Path) -> pd.DataFrame:
    path = folder / "items.jsonl.gz"
    if not path.exists():
        sys.exit(f"{path}: not found (the Beauty data lives in ../shared/data next to the repository)")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return pd.DataFrame(records).set_index(pd.RangeIndex(len(records), name="idx"))


def load_vectors(items: pd.DataFrame, embeddings: str | None, ids: str | None) -> tuple[np.ndarray, str]:
    if embeddings:
        vectors = np.load(embeddings)
        if len(vectors) != len(items):
            sys.exit(f"{embeddings}: {len(vectors)} rows but the catalogue has {len(items)} items")
        if ids:
            listed = [line.strip() for line in Path(ids).read_text().splitlines() if line.strip()]
            listed = listed[1:] if listed and listed[0] == "item_id" else listed
            if listed != items["item_id"].tolist():
                sys.exit(f"{ids}: ids are not in the order of items.jsonl.gz")
        return vectors.astype(np.float32), f"read from {embeddings}"
    from semid_studio.core.embed import encode_texts, load_encoder, render_texts
    from semid_studio.core.events import drive

    texts = render_texts(items, TEMPLATE)
    started = time.perf_counter()
    vectors = drive(encode_texts(load_encoder(None), texts))
    seconds = time.perf_counter() - started
    return vectors, (f"computed with all-MiniLM-L6-v2 in {seconds:.0f} s, "
                     f"{len(texts) / seconds:.0f} items embedded per second")


def health(fitted, labels, label_field: str) -> dict:
    from semid_studio.core import sids

    spec = fitted.spec
    codes = sids.add_dedup_level(fitted.codes)
    metrics = sids.code_health(codes, spec.levels, spec.codebook_size, fitted.inputs, fitted.reconstructions,
                               labels, label_field)
    metrics.update({k: v for k, v in fitted.info.items() if k != "final_epoch"})
    return metrics


def row(name: str, m: dict) -> str:
    used = "/".join(str(lvl["used"]) for lvl in m["per_level"])
    ent = "/".join(f"{lvl['entropy_bits']:.2f}" for lvl in m["per_level"])
    before = ""
    if "unmatched_unique_share" in m:
        before = f" ({m['unmatched_unique_share']:.1%}, {m['unmatched_largest_group']})"
    pur = m.get("purity", {})
    return (f"| {name} | {m['fit_seconds']:.1f} | {m['cpu_seconds']:.1f} | {used} | {ent} | {m['unique_share']:.1%}{before} | "
            f"{m['largest_collision_group']} | {pur.get('level_1', float('nan')):.3f} | "
            f"{pur.get('level_2', float('nan')):.3f} | {m['relative_reconstruction_error']:.4f} |")


HEADER = ("| variant | fit s | CPU s | codes used | entropy bits | unique before dedup (before matching) | largest group "
          "| purity L1 | purity L2 | rel. recon. error |\n|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(BEAUTY), help="folder with items.jsonl.gz")
    parser.add_argument("--embeddings", help="MiniLM vectors (.npy) in items.jsonl.gz order, to skip encoding")
    parser.add_argument("--ids", help="item ids of --embeddings, one per line, to check the order")
    parser.add_argument("--label-field", default="categories[1]")
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for RQ-KMeans' FAISS (0 = all; 1 is faster on a busy machine)")
    parser.add_argument("--seeds", type=int, default=1, help="RQ-KMeans seeds per variant (mean and spread)")
    parser.add_argument("--variants", help="comma-separated numbers of the variants to run (default: all)")
    parser.add_argument("--vae-preset", default="laptop", help="RQ-VAE preset (laptop: ~60 epochs)")
    parser.add_argument("--vae-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override an RQ-VAE spec field (repeatable)")
    parser.add_argument("--skip-vae", action="store_true")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    args = parser.parse_args()

    from semid_studio.core import quantize, sids
    from semid_studio.core.events import Progress, drive

    items = load_items(Path(args.data))
    vectors, how = load_vectors(items, args.embeddings, args.ids)
    labels = sids.label_values(items, args.label_field)
    print(f"Beauty: {len(items):,} items x {vectors.shape[1]} dims ({how}); purity against '{args.label_field}' "
          f"({len({v for v in labels if v is not None})} labels); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(REFERENCE)
    print()
    size = {"levels": args.levels, "codebook_size": args.codebook_size}
    chosen = list(VARIANTS.items())
    if args.variants:
        chosen = [chosen[int(i) - 1] for i in args.variants.split(",")]
    results: dict = {"rq-kmeans": {}, "rq-vae": None}
    print(f"RQ-KMeans {args.levels} x {args.codebook_size} (seed 0)")
    print(HEADER)
    for name, (preset, overrides) in chosen:
        runs = []
        for seed in range(args.seeds):
            spec = quantize.make_spec("rq-kmeans", preset, {**overrides, **size, "seed": seed,
                                                            "threads": args.threads})
            cpu = time.process_time()
            fitted = drive(quantize.fit_quantizer(vectors, spec))
            runs.append(health(fitted, labels, args.label_field) | {"cpu_seconds": time.process_time() - cpu})
        results["rq-kmeans"][name] = {"spec": quantize.spec_to_dict(spec), "runs": runs}
        print(row(name, runs[0]), flush=True)
    if args.seeds > 1:
        print(f"\nmean +- sd over seeds 0..{args.seeds - 1}")
        print("| variant | fit s | unique before dedup | largest group | purity L1 | purity L2 | rel. recon. error |")
        print("|---|---|---|---|---|---|---|")
        for name, res in results["rq-kmeans"].items():
            runs = res["runs"]

            def stat(get, fmt):
                values = np.array([get(m) for m in runs], dtype=float)
                return f"{values.mean():{fmt}} +- {values.std():{fmt}}"

            print(f"| {name} | {stat(lambda m: m['fit_seconds'], '.1f')} | {stat(lambda m: m['unique_share'], '.3f')} "
                  f"| {stat(lambda m: m['largest_collision_group'], '.1f')} "
                  f"| {stat(lambda m: m['purity']['level_1'], '.4f')} | {stat(lambda m: m['purity']['level_2'], '.4f')} "
                  f"| {stat(lambda m: m['relative_reconstruction_error'], '.4f')} |")

    if not args.skip_vae:
        overrides = dict(item.split("=", 1) for item in args.vae_set)
        spec = quantize.make_spec("rq-vae", args.vae_preset, {**size, **overrides})
        print(f"\nRQ-VAE preset '{args.vae_preset}': hidden {'-'.join(map(str, spec.hidden))}, latent "
              f"{spec.latent_dim}, {spec.levels} x {spec.codebook_size}, beta {spec.beta}, {spec.epochs} epochs, "
              f"batch {spec.batch_size}, {spec.threads} thread(s)")
        last = {}

        def on_event(event):
            if isinstance(event, Progress) and event.done and (event.done % 10 == 0 or event.done == event.total):
                if last.get("done") != event.done:
                    last["done"] = event.done
                    print(f"  epoch {event.done}/{event.total}: {event.message}", flush=True)

        cpu = time.process_time()
        fitted = drive(quantize.fit_quantizer(vectors, spec), on_event)
        m = health(fitted, labels, args.label_field) | {"cpu_seconds": time.process_time() - cpu}
        m["training"] = fitted.info.get("final_epoch")
        results["rq-vae"] = {"spec": quantize.spec_to_dict(spec), "health": m}
        print(HEADER)
        print(row(f"RQ-VAE {args.vae_preset}", m))
        print(sids.format_health(m))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
