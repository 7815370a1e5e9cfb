"""A million items end to end: time and peak memory of every step, at growing catalogue sizes.

    QT_QPA_PLATFORM=offscreen nice .venv/bin/python benchmarks/bench_million.py \\
        [--sizes 10000,100000,1000000] [--interactions-per-item 10] [--work out/million] \\
        [--steps import,embeddings,quantize,tree,catalogue,trie,model,decode,export_csv,export_parquet,export_json] \\
        [--json out/bench_million.json]

For each size N the script writes a synthetic, seeded catalogue under ``--work`` (reused when
it is there):

- ``items.parquet``: N items with a title (brand, adjective and nouns drawn from the item's
  category, and a made-up model word from a vocabulary of N/20 words drawn Zipf-like, so that
  the titles' vocabulary grows with the catalogue as a real one does), a brand, a price and a
  three-level category path (20 departments x 10 sub-departments x N/500 leaves);
- ``vectors.npy`` + ``vectors_ids.csv``: clustered 384-d unit vectors (department + sub-
  department + leaf centre + noise, so quantisation meets realistic structure), rows in a
  shuffled order (the importer puts them back in the project's order);
- ``interactions.csv``: ``--interactions-per-item`` x N interactions (10M at 1M items) by
  N/2 users whose activity and whose items' popularity both follow power laws (Zipf-like:
  a few best sellers, a long tail), in time order per user.

and then runs the pipeline on a fresh project, **every step in its own process** (the real
CLI where there is one), so that the peak RSS of each step is its own (``os.wait4``; Linux
starts a child's peak at its parent's, so this script itself stays small: even the data are
written by a child process):

``import``      ``semid import P --items items.parquet --interactions interactions.csv``
``embeddings``  ``semid import P --embeddings vectors.npy --embedding-ids vectors_ids.csv``
``quantize``    ``semid quantize P --label-field categories[1]`` (the default RQ-KMeans, sized
                to the catalogue by ``quantize.sized_spec``; code health included)
``tree``        the GUI's SID tree: ``analysis.inspection.load_inspection`` (what opening a project loads
                in a worker), then the real ``SidTreeModel`` in a ``QTreeView`` (offscreen):
                ``expand`` of level-1 and level-2 nodes and of the largest last-level node until
                the children are inserted and painted
``catalogue``   the real ``CatalogueTableModel`` in a ``QTableView``: fetching a page of rows
                (with SIDs) at random places of the catalogue, scrolled to and painted; and the
                catalogue's SQL filter / sort (``analysis.items.filter_items``) for reference
``trie``        ``SidTrie.build`` over the active SID table
``model``       a generative model of the ``laptop`` preset (untrained: latency does not depend
                on what it learnt) built and saved as a checkpoint
``decode``      that model loaded the way ``semid recommend`` and the playground load it
                (``evaluate.load_model``: checkpoint, catalogue codes, content vectors, trie,
                node maps); then top-10 constrained beam search (beam 20) for single users
                (latency, wall and CPU) and batches of 64 users (throughput), torch on one thread
``export_*``    ``semid export P sids.csv`` / ``.parquet`` / ``.json``

It prints one table per size and the whole table at the end (``--json`` also writes every
figure). The measured figures and what they mean for ten million items are in
docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEPS = ("import", "embeddings", "quantize", "tree", "catalogue", "trie", "model", "decode",
         "export_csv", "export_parquet", "export_json")
DIM = 384
#: per-dimension noise around an item's leaf centre (the centres' scales are 1, 0.7 and 0.5)
NOISE = 1.0
SEED = 0

_DEPTS = ["Beauty", "Books", "Garden", "Kitchen", "Toys", "Sports", "Music", "Office", "Tools", "Baby",
          "Health", "Pets", "Shoes", "Jewelry", "Auto", "Games", "Grocery", "Outdoor", "Crafts", "Home"]
_ADJ = ["classic", "compact", "deluxe", "eco", "fresh", "gentle", "heavy", "light", "mini", "modern",
        "natural", "organic", "pro", "quick", "rich", "smart", "soft", "strong", "ultra", "vintage"]
_SYLLABLES = ["ba", "ce", "di", "do", "el", "fa", "gu", "hi", "in", "jo", "ka", "lo", "mi", "ne", "os", "pe",
              "qu", "ru", "sa", "ta", "te", "um", "vo", "wu", "xe", "ya", "zi", "zo", "ar", "ix"]
_NOUNS = ["bag", "balm", "bottle", "box", "brush", "cable", "candle", "case", "chair", "clip", "cream",
          "cup", "desk", "drill", "gel", "glove", "hat", "jar", "kit", "lamp", "lotion", "mask", "mat",
          "mug", "oil", "pad", "pan", "pen", "pillow", "plate", "rack", "rope", "scarf", "serum", "shirt",
          "soap", "sock", "spray", "towel", "wallet"]


# --------------------------------------------------------------------------- synthetic data


def _power_law(n: int, exponent: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities of ``n`` things ~ (rank + offset)^-exponent, ranks in a random order."""
    p = (np.arange(n, dtype=np.float64) + offset) ** -exponent
    p /= p.sum()
    return p[rng.permutation(n)]


def generate(n: int, folder: Path, per_item: int) -> dict:
    """Write the synthetic catalogue of ``n`` items into ``folder`` (see the module docstring)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "done.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if "title_words" in info:  # else: written before titles had a growing vocabulary
            return info
    rng = np.random.default_rng(SEED)
    n_sub = 200
    n_leaf = max(n_sub, n // 500)
    leaf = rng.integers(0, n_leaf, size=n)
    sub = leaf % n_sub
    dept = sub % len(_DEPTS)
    ids = pd.Series(np.char.add("I", np.char.zfill(np.arange(n).astype(str), 7)))

    # -- items.parquet (category path as a list column, built without a Python loop per item)
    def pick(words: list[str], index: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(words, dtype=object)[index % len(words)])

    brand = "Brand" + pd.Series((leaf % 97).astype(str))
    title = (brand + " " + pick(_ADJ, leaf * 7 + rng.integers(0, 3, n)) + " " + pick(_NOUNS, leaf * 3)
             + " " + pick(_NOUNS, leaf + rng.integers(0, 40, n)) + " no. " + pd.Series(np.arange(n).astype(str)))
    # a model word from a vocabulary that grows with the catalogue (its own seed: the rest of
    # the data is drawn exactly as before)
    words_rng = np.random.default_rng(SEED + 1)
    n_words = max(500, n // 20)
    digits = np.arange(n_words)[:, None] // (len(_SYLLABLES) ** np.arange(4))[None, :] % len(_SYLLABLES)
    vocabulary = ["".join(_SYLLABLES[d] for d in row).capitalize() for row in digits]
    title = title + " " + pick(vocabulary, words_rng.choice(n_words, size=n, p=_power_law(n_words, 1.0, 5.0, words_rng)))
    path_values = np.empty(3 * n, dtype=object)
    path_values[0::3] = np.asarray(_DEPTS, dtype=object)[dept]
    path_values[1::3] = (pick(_ADJ, sub // len(_DEPTS)).str.capitalize() + " " + pick(_DEPTS, dept).str.lower()).to_numpy()
    path_values[2::3] = ("Type " + pd.Series(leaf.astype(str))).to_numpy()
    categories = pa.ListArray.from_arrays(pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32)),
                                          pa.array(path_values, type=pa.string()))
    items = pa.table({"item_id": pa.array(ids.to_numpy(), type=pa.string()),
                      "title": pa.array(title.to_numpy(), type=pa.string()),
                      "brand": pa.array(brand.to_numpy(), type=pa.string()),
                      "price": pa.array(np.round(rng.uniform(2, 200, n), 2)),
                      "categories": categories})
    pq.write_table(items, folder / "items.parquet", row_group_size=100_000)
    del items, title, path_values, categories

    # -- vectors.npy (+ ids): clustered unit vectors, rows shuffled, written in blocks
    centres = [rng.normal(size=(len(_DEPTS), DIM)).astype(np.float32),
               0.7 * rng.normal(size=(n_sub, DIM)).astype(np.float32),
               0.5 * rng.normal(size=(n_leaf, DIM)).astype(np.float32)]
    perm = rng.permutation(n)
    out = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 100_000):
        rows = perm[start : start + 100_000]
        block = centres[0][dept[rows]] + centres[1][sub[rows]] + centres[2][leaf[rows]]
        block += NOISE * rng.normal(size=block.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(rows)] = block
    out.flush()
    del out
    pd.DataFrame({"item_id": ids.to_numpy()[perm]}).to_csv(folder / "vectors_ids.csv", index=False)

    # -- interactions.csv: power-law users and items, time-ordered per user
    m = per_item * n
    n_users = max(1, n // 2)
    users = rng.choice(n_users, size=m, p=_power_law(n_users, 0.8, 20.0, rng))
    item_idx = rng.choice(n, size=m, p=_power_law(n, 1.0, 10.0, rng))
    ts = 1_500_000_000 + rng.integers(0, 60_000_000, size=m)
    order = np.lexsort((ts, users))
    users, item_idx, ts = users[order], item_idx[order], ts[order]
    path = folder / "interactions.csv"
    with open(path, "w") as fh:
        fh.write("user_id,item_id,timestamp\n")
        for start in range(0, m, 1_000_000):
            sl = slice(start, start + 1_000_000)
            pd.DataFrame({"user_id": np.char.add("U", np.char.zfill(users[sl].astype(str), 7)),
                          "item_id": ids.to_numpy()[item_idx[sl]], "timestamp": ts[sl]}
                         ).to_csv(fh, header=False, index=False)
    info = {"items": n, "interactions": int(m), "users": int(len(np.unique(users))), "leaves": int(n_leaf),
            "title_words": n_words,
            "bytes": {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}}
    stamp.write_text(json.dumps(info))
    return info


# --------------------------------------------------------------------------- one step in its own process


def run_step(argv: list[str], log: Path) -> dict:
    """Run a command; its wall time, peak RSS (its own, from wait4) and the RESULT line it printed."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "ab") as fh:
        fh.write(("\n$ " + " ".join(argv) + "\n").encode())
        fh.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=fh, cwd=REPO)
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fh.write(out)
    wall = time.perf_counter() - started
    result: dict = {"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024), "rc": proc.returncode,
                    "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "load": round(load, 1)}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[len("RESULT "):]))
    return result


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "semid_studio.cli", *map(str, args)]


def step_commands(step: str, project: Path, data: Path, out: Path) -> list[str]:
    if step == "import":
        return cli("import", project, "--items", data / "items.parquet", "--interactions", data / "interactions.csv")
    if step == "embeddings":
        return cli("import", project, "--embeddings", data / "vectors.npy", "--embedding-ids",
                   data / "vectors_ids.csv")
    if step == "quantize":
        return cli("quantize", project, "--label-field", "categories[1]")
    if step.startswith("export_"):
        return cli("export", project, out / f"sids.{step.split('_', 1)[1]}")
    return [sys.executable, str(Path(__file__).resolve()), "--inner", step, "--project", str(project)]


# --------------------------------------------------------------------------- the in-process steps


def _result(**figures) -> None:
    print("RESULT " + json.dumps(figures), flush=True)


def inner_tree(project: Path) -> None:
    from PySide6.QtWidgets import QApplication, QTreeView

    from semid_studio.core.analysis.inspection import load_inspection
    from semid_studio.core.store import ProjectStore
    from semid_studio.gui.app import settle_memory
    from semid_studio.gui.context import freeze_long_lived
    from semid_studio.gui.models.sid_tree import SidTreeModel

    app = QApplication.instance() or QApplication([sys.argv[0]])
    settle_memory()  # as the app does after start-up
    store = ProjectStore.open(project)
    t = time.perf_counter()
    insp = load_inspection(store)
    load_s = time.perf_counter() - t
    freeze_long_lived()  # as the app does when an inspection arrives (context._on_inspection)
    model = SidTreeModel()
    t = time.perf_counter()
    model.set_index(insp.index, insp.run.codes, titles=insp.titles, item_ids=insp.item_ids, labels=insp.labels,
                    terms=insp.terms)
    view = QTreeView()
    view.setUniformRowHeights(True)
    view.setModel(model)
    view.resize(1000, 800)
    view.show()
    model.load_children()
    app.processEvents()
    view.viewport().repaint()
    top_ms = 1000 * (time.perf_counter() - t)

    def pump(condition, timeout: float = 60.0) -> None:
        end = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > end:
                raise TimeoutError("the tree did not load")
            app.processEvents()

    cpu_ms: dict[str, list[float]] = {"l1": [], "l2": []}

    def expand(index, kind: str = "") -> float:
        start, cpu = time.perf_counter(), time.thread_time()
        view.expand(index)
        pump(lambda: model.rowCount(index) > 0 or not model.hasChildren(index))
        view.viewport().repaint()  # paint the new rows: labels, purity and words are computed here
        took = time.perf_counter() - start
        if kind:
            cpu_ms[kind].append(1000 * (time.thread_time() - cpu))
        view.collapse(index)
        return 1000 * took

    model.load_children(all=True)  # every level-1 node (a view loads them as it scrolls), to sample from
    app.processEvents()
    level1 = [model.index(r, 0) for r in range(model.rowCount())]
    picked = level1[:: max(1, len(level1) // 64)]
    times1 = [expand(i, "l1") for i in picked]
    largest = max(level1, key=lambda i: model.node_at(i).count)
    view.expand(largest)
    pump(lambda: model.rowCount(largest) > 0)
    level2 = sorted((model.index(r, 0, largest) for r in range(model.rowCount(largest))),
                    key=lambda i: -model.node_at(i).count)[:20]
    times2 = [expand(i, "l2") for i in level2]
    view.collapse(largest)
    prefixes, counts = insp.index.prefix_counts(model.n_levels)
    deepest = model.index_for_prefix(tuple(int(c) for c in prefixes[int(np.argmax(counts))]))
    chain, parent = [], deepest.parent()
    while parent.isValid():
        chain.append(parent)
        parent = parent.parent()
    for ancestor in reversed(chain):  # open the way down (not timed), as a user would have
        view.expand(ancestor)
        pump(lambda a=ancestor: model.rowCount(a) > 0)
    view.scrollTo(deepest)
    deep_ms = expand(deepest)
    t = time.perf_counter()
    leaf = model.reveal(int(store.item_count() // 2))
    view.scrollTo(leaf)
    view.viewport().repaint()
    reveal_ms = 1000 * (time.perf_counter() - t)
    health = insp.run.metrics
    _result(load_inspection_s=round(load_s, 2), top_level_ms=round(top_ms, 1),
            expand_l1_median_ms=round(statistics.median(times1), 1), expand_l1_max_ms=round(max(times1), 1),
            expand_l1_nodes=len(times1), expand_l2_median_ms=round(statistics.median(times2), 1),
            expand_l2_max_ms=round(max(times2), 1), expand_deepest_ms=round(deep_ms, 1),
            expand_cpu_median_ms=round(statistics.median(cpu_ms["l1"] + cpu_ms["l2"]), 1),
            expand_cpu_max_ms=round(max(cpu_ms["l1"] + cpu_ms["l2"]), 1),
            deepest_items=int(counts.max()), reveal_ms=round(reveal_ms, 1),
            level1_nodes=len(level1), unique_share=health.get("unique_share"),
            codes_used=[lvl["used"] for lvl in health.get("per_level", [])],
            purity=health.get("purity", {}).get("level_1"), spec=f"{insp.run.n_levels}x{insp.codebook_size}")
    store.close()


def inner_catalogue(project: Path) -> None:
    from PySide6.QtWidgets import QApplication, QTableView

    from semid_studio.core.analysis.items import filter_items
    from semid_studio.core.store import ProjectStore
    from semid_studio.gui.models.catalogue import CatalogueTableModel

    app = QApplication.instance() or QApplication([sys.argv[0]])
    store = ProjectStore.open(project)
    t = time.perf_counter()
    model = CatalogueTableModel()
    model.set_project(store, store.active_run_id(), store.item_fields()[:4])
    view = QTableView()
    view.setModel(model)
    view.resize(1200, 800)
    view.show()
    app.processEvents()
    view.viewport().repaint()
    open_ms = 1000 * (time.perf_counter() - t)
    n = model.rowCount()
    rng = np.random.default_rng(1)
    pages, page_cpu = [], []
    for row in rng.integers(0, n, size=30):
        model._pages.clear()  # a page never seen: read from the project, not the cache
        start, cpu = time.perf_counter(), time.thread_time()
        view.scrollTo(model.index(int(row), 0))
        view.viewport().repaint()
        pages.append(1000 * (time.perf_counter() - start))
        page_cpu.append(1000 * (time.thread_time() - cpu))
    fetch = []
    for row in rng.integers(0, n, size=30):
        model._pages.clear()
        start = time.perf_counter()
        model.item_at(int(row))
        fetch.append(1000 * (time.perf_counter() - start))
    run_id = store.active_run_id()
    t = time.perf_counter()
    by_sid = filter_items(store, run_id=run_id, order_by="sid")
    sort_sid_s = time.perf_counter() - t
    t = time.perf_counter()
    found = filter_items(store, text="no. 12345", run_id=run_id)
    search_s = time.perf_counter() - t
    model.set_order(by_sid)
    model._pages.clear()
    start = time.perf_counter()
    view.scrollTo(model.index(n // 3, 0))
    view.viewport().repaint()
    sorted_page_ms = 1000 * (time.perf_counter() - start)
    _result(open_ms=round(open_ms, 1), page_scroll_median_ms=round(statistics.median(pages), 1),
            page_scroll_max_ms=round(max(pages), 1), page_cpu_median_ms=round(statistics.median(page_cpu), 1),
            page_cpu_max_ms=round(max(page_cpu), 1), page_fetch_median_ms=round(statistics.median(fetch), 1),
            page_fetch_max_ms=round(max(fetch), 1), sorted_page_ms=round(sorted_page_ms, 1),
            sort_by_sid_s=round(sort_sid_s, 2), search_s=round(search_s, 2), search_hits=int(len(found)))
    store.close()


def inner_trie(project: Path) -> None:
    from semid_studio.core.sids import default_level_sizes
    from semid_studio.core.generative.trie import SidTrie
    from semid_studio.core.store import ProjectStore

    store = ProjectStore.open(project)
    t = time.perf_counter()
    run = store.load_quantizer_run()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    trie = SidTrie.build(run.codes, default_level_sizes(run.codes))
    build_s = time.perf_counter() - t
    _result(load_codes_s=round(load_s, 2), build_s=round(build_s, 2), nodes=trie.n_nodes,
            max_children=trie.max_children)
    store.close()


BENCH_MODEL = "bench_million untrained"


def inner_model(project: Path) -> None:
    """An untrained ``laptop`` model of the catalogue, saved as a checkpoint (what a training
    run's first checkpoint costs), in a process of its own so that ``decode`` measures loading."""
    import torch

    from semid_studio.core.generative.model import TigerModel
    from semid_studio.core.generative.spec import make_spec
    from semid_studio.core.generative.train import MODEL_KIND, make_vocab, training_content
    from semid_studio.core.store import ProjectStore

    torch.manual_seed(0)
    store = ProjectStore.open(project)
    t = time.perf_counter()
    run = store.load_quantizer_run()
    spec = make_spec("laptop")
    vocab = make_vocab(spec, run.codes)
    content, content_info = training_content(store, spec, run, vocab.n_items)
    model = TigerModel(spec, vocab, content_dim=content.shape[1])
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    n_params = model.n_parameters()
    del model, content
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    model_id = store.create_model(name=BENCH_MODEL, kind=MODEL_KIND, quantizer_run_id=run.id,
                                  spec={"spec": spec.to_dict(), "vocab": vocab.to_dict(), "preset": "laptop",
                                        "n_parameters": n_params, "content": content_info})
    store.save_checkpoint(model_id, "best", 0, weights)
    save_s = time.perf_counter() - t
    del weights
    _result(model_build_s=round(build_s, 2), checkpoint_save_s=round(save_s, 2), parameters=int(n_params))
    store.close()


def inner_decode(project: Path, threads: int = 1) -> None:
    import torch

    from semid_studio.core.generative.decode import beam_search
    from semid_studio.core.generative.evaluate import load_model
    from semid_studio.core.store import ProjectStore

    torch.set_num_threads(threads)
    store = ProjectStore.open(project)
    model_id = max(m.id for m in store.list_models() if m.name == BENCH_MODEL)  # from the 'model' step
    t = time.perf_counter()
    lm = load_model(store, model_id, device="cpu")  # as semid recommend and the playground load it
    load_s = time.perf_counter() - t
    rng = np.random.default_rng(2)
    n_inter = store.interaction_count()
    rows = rng.integers(1, n_inter + 1, size=200)
    marks = ",".join("?" * len(rows))
    users = [u for (u,) in store.db.execute(f"SELECT DISTINCT user_id FROM interactions WHERE id IN ({marks})",
                                            [int(r) for r in rows])]
    histories = [np.asarray(store.user_history(u), dtype=np.int64) for u in users]
    for h in histories[:10]:  # warm-up (first-call allocations, the tables' pages)
        beam_search(lm.model, lm.trie, [h], beam=20, k=10)
    single, single_cpu = [], []
    for h in histories[:100]:
        start, cpu = time.perf_counter(), time.thread_time()
        dec = beam_search(lm.model, lm.trie, [h], beam=20, k=10)
        single.append(1000 * (time.perf_counter() - start))
        single_cpu.append(1000 * (time.thread_time() - cpu))
        assert (dec.items >= 0).all()
    batch = histories[:64]
    start = time.perf_counter()
    beam_search(lm.model, lm.trie, batch, beam=20, k=10)
    batch_s = time.perf_counter() - start
    _result(load_model_s=round(load_s, 2), parameters=int(lm.model.n_parameters()),
            decoder_steps=int(lm.model.n_steps), users=len(single), latency_median_ms=round(statistics.median(single), 1),
            latency_p90_ms=round(float(np.percentile(single, 90)), 1),
            latency_cpu_median_ms=round(statistics.median(single_cpu), 1), batch64_s=round(batch_s, 2),
            batch64_per_user_ms=round(1000 * batch_s / len(batch), 1), torch_threads=threads)
    store.close()


INNER = {"tree": inner_tree, "catalogue": inner_catalogue, "trie": inner_trie, "model": inner_model,
         "decode": inner_decode}


# --------------------------------------------------------------------------- report


_KEY_FIGURES = {
    "import": ("interactions",),
    "quantize": (),
    "tree": ("load_inspection_s", "expand_l1_median_ms", "expand_l1_max_ms", "expand_l2_max_ms", "expand_deepest_ms"),
    "catalogue": ("page_scroll_median_ms", "page_scroll_max_ms", "page_fetch_max_ms", "sort_by_sid_s"),
    "trie": ("build_s",),
    "decode": ("load_model_s", "latency_median_ms", "batch64_per_user_ms"),
}


def print_table(results: dict[int, dict]) -> None:
    sizes = sorted(results)
    print("\n| step | " + " | ".join(f"{n:,} items: wall s / CPU s / peak MB" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for step in STEPS:
        cells = []
        for n in sizes:
            r = results[n].get(step)
            cells.append("" if r is None else (f"{r['wall_s']:.1f} / {r['cpu_s']:.1f} / {r['peak_rss_mb']:,}"
                                              + ("" if r.get("rc", 0) == 0 else f" (rc {r['rc']})")))
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()
    for step in STEPS:
        for n in sizes:
            r = results[n].get(step) or {}
            extra = {k: v for k, v in r.items() if k not in ("wall_s", "peak_rss_mb", "rc", "cpu_s", "load")}
            if extra:
                print(f"{step} @ {n:,}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="catalogue sizes, comma separated")
    parser.add_argument("--interactions-per-item", type=int, default=10)
    parser.add_argument("--work", type=Path, default=REPO / "out" / "million")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"steps to run (default all: {','.join(STEPS)})")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="reuse an existing project (skip import steps)")
    parser.add_argument("--inner", choices=sorted(INNER), help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        INNER[args.inner](args.project)
        return 0
    if args.generate:
        generate(args.generate, args.work / f"n{args.generate}" / "data", args.interactions_per_item)
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}")
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}")
    results: dict[int, dict] = {}
    for n in sizes:
        folder = args.work / f"n{n}"
        data = folder / "data"
        t = time.perf_counter()
        # in a process of its own: a child's peak RSS (wait4) starts from this process's peak
        # (Linux carries it over fork and exec), so this one must never grow
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate", str(n), "--work", str(args.work),
                        "--interactions-per-item", str(args.interactions_per_item)], check=True, cwd=REPO)
        info = json.loads((data / "done.json").read_text())
        print(f"\n== {n:,} items, {info['interactions']:,} interactions, {info['users']:,} users "
              f"(data ready in {time.perf_counter() - t:.0f} s)")
        out = folder / "export"
        out.mkdir(exist_ok=True)
        project = folder / "bench.semid"
        log = folder / "log.txt"
        if not args.keep:
            for p in folder.glob("bench.semid*"):
                p.unlink()
            subprocess.run(cli("new", project), check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        results[n] = {"data": info}
        for step in steps:
            if args.keep and step in ("import", "embeddings"):
                continue
            r = run_step(step_commands(step, project, data, out), log)
            if step == "import":
                r["interactions"] = info["interactions"]
            results[n][step] = r
            print(f"{step:<15} {r['wall_s']:>8.1f} s  peak {r['peak_rss_mb']:>6,} MB  cpu {r['cpu_s']:>7.1f} s"
                  f"  (load {r['load']:.1f})"
                  + ("" if r["rc"] == 0 else f"  FAILED rc {r['rc']} (see {log})"), flush=True)
            if r["rc"] != 0 and step in ("import", "embeddings", "quantize"):
                break
        results[n]["project_mb"] = round(project.stat().st_size / 2**20) if project.exists() else None
        print(f"project file {results[n]['project_mb']} MB")
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
