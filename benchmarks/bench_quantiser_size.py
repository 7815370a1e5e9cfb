"""How big should the default quantiser be? SID-tree figures per catalogue and codebook size.

    .venv/bin/python benchmarks/bench_quantiser_size.py [--sizes 16,32,64,128,256] [--levels 3]
        [--catalogues sample,ml-100k,tomt,beauty,sports] [--cache out/cache/size_rule]

For each catalogue of this repo's data (the bundled sample and, where ../shared/data has them,
MovieLens-100K, MovieLens latest-small (tomt), Amazon Beauty and the text-less Amazon Sports)
it builds a project once through the default path (import -> ``embed_catalogue``: the text
encoder, or the interactions when the items have no text), then fits the default RQ-KMeans
at each codebook size and prints:

- ``unique``: share of items whose L-code tuple is unique before the dedup level (and, in
  brackets, before the collision-aware last level);
- ``L1 items``: items per used level-1 code (median, max): the size of a top branch;
- ``single L2``: share of level-2 prefixes that hold one item, i.e. chains of single-item
  nodes below level 2 (nothing left to browse);
- ``L2 items``: median items per used level-2 prefix;
- ``purity``: level-1 purity against the catalogue's label field, where it has one;
- the codebook size the default rule (``quantize.default_codebook_size``) picks, marked ``*``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / ".." / "shared" / "data"

from semid_studio.core import importing, quantize, sids  # noqa: E402
from semid_studio.core.events import drive  # noqa: E402
from semid_studio.core.pipeline import SAMPLE_TEMPLATE, embed_catalogue, sample_files  # noqa: E402
from semid_studio.core.store import ProjectStore  # noqa: E402


def _sports_items(cache: Path) -> Path:
    """An id-only items file for Sports (its release has none): the interactions' item ids."""
    import pandas as pd

    target = cache / "sports_items.csv"
    if not target.exists():
        frame = pd.read_csv(DATA / "amazon2014_sports_5core" / "interactions.tsv.gz", sep="\t", usecols=["item_id"])
        frame.drop_duplicates().to_csv(target, index=False)
    return target


def catalogues(cache: Path) -> dict[str, dict]:
    """name -> import arguments (items, interactions, format, template, label field)."""
    sample = sample_files()
    found = {"sample": dict(items=sample["items"], interactions=sample["interactions"], template=SAMPLE_TEMPLATE,
                            label="categories[1]")}
    ml100k = DATA / "movielens_100k" / "recbole_atomic"
    if ml100k.exists():
        found["ml-100k"] = dict(items=ml100k / "ml-100k.item", interactions=ml100k / "ml-100k.inter", label=None)
    tomt = DATA / "movielens_tomt" / "ml-latest-small"
    if tomt.exists():
        found["tomt"] = dict(items=tomt / "movies.csv", interactions=tomt / "ratings.csv", format="movielens",
                             label=None)
    beauty = DATA / "amazon2014_beauty_5core"
    if beauty.exists():
        found["beauty"] = dict(items=beauty / "items.jsonl.gz", interactions=beauty / "interactions.tsv.gz",
                               template=SAMPLE_TEMPLATE, label="categories[1]")
    if (DATA / "amazon2014_sports_5core").exists():
        found["sports"] = dict(items=_sports_items(cache),
                               interactions=DATA / "amazon2014_sports_5core" / "interactions.tsv.gz", label=None)
    return found


def build(name: str, args: dict, cache: Path) -> Path:
    path = cache / f"{name}.semid"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    store = ProjectStore.create(partial)
    try:
        if args.get("template"):
            store.set_meta("template", args["template"])
        drive(importing.import_data(store, items=args["items"], interactions=args["interactions"],
                                    format=args.get("format", "auto")))
        drive(embed_catalogue(store))
    finally:
        store.close()
    partial.rename(path)
    return path


def tree_figures(codes: np.ndarray, levels: int) -> dict:
    """Branch sizes of the SID tree (codes without the dedup level)."""
    _, l1_sizes = np.unique(codes[:, :1], axis=0, return_counts=True)
    _, l2_sizes = np.unique(codes[:, :2], axis=0, return_counts=True)
    return {"l1_median": float(np.median(l1_sizes)), "l1_max": int(l1_sizes.max()),
            "l2_median": float(np.median(l2_sizes)), "single_l2": float((l2_sizes == 1).mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="16,32,64,128,256")
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--catalogues", default="sample,ml-100k,tomt,beauty,sports")
    parser.add_argument("--cache", default=str(REPO / "out" / "cache" / "size_rule"))
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    available = catalogues(cache)
    print(f"{'catalogue':<9} {'items':>7} {'K':>4}  {'unique (before matching)':<25} {'L1 items med/max':<17} "
          f"{'single L2':>9} {'L2 items':>8} {'purity L1':>9} {'fit s':>6}")
    for name in args.catalogues.split(","):
        if name not in available:
            print(f"{name:<9} (data not available here)")
            continue
        spec_args = available[name]
        store = ProjectStore.open(build(name, spec_args, cache))
        vectors = store.load_embedding_set(None).vectors
        labels = sids.label_values(store.items_frame(), spec_args["label"]) if spec_args["label"] else None
        store.close()
        n = len(vectors)
        chosen = quantize.default_codebook_size(n)
        for k in sizes:
            spec = quantize.make_spec("rq-kmeans", overrides={"levels": args.levels, "codebook_size": k})
            started = time.perf_counter()
            fitted = drive(quantize.fit_quantizer(vectors, spec))
            seconds = time.perf_counter() - started
            codes = sids.add_dedup_level(fitted.codes)
            health = sids.code_health(codes, args.levels, k, labels=labels, label_field=spec_args["label"])
            shape = tree_figures(fitted.codes, args.levels)
            before = fitted.info.get("unmatched_unique_share", health["unique_share"])
            purity = (health.get("purity") or {}).get("level_1")
            mark = "*" if k == chosen else " "
            print(f"{name:<9} {n:>7,} {k:>4}{mark} {health['unique_share']:>6.1%} ({before:>6.1%})"
                  f"{'':<10} {shape['l1_median']:>6.0f} / {shape['l1_max']:<8} {shape['single_l2']:>9.1%} "
                  f"{shape['l2_median']:>8.1f} {purity if purity is not None else float('nan'):>9.3f} {seconds:>6.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
