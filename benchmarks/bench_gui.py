"""GUI responsiveness: open a project, expand tree nodes, and the longest GUI-thread stall.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py --beauty --synthetic 100000 \\
        [--beauty-embeddings out/cache/beauty_minilm.npy --beauty-ids out/cache/beauty_minilm_ids.csv]

Two catalogues:

- **Beauty** (Amazon 2014 5-core, 12,101 items, ../shared/data): imported with the core importer,
  embedded with MiniLM (or the given cache of MiniLM vectors), RQ-KMeans 3 x 256.
- **synthetic** (``--synthetic N`` items): titles from a word list in a three-level category tree,
  ~2 interactions per item, and clustered 384-d vectors (no encoder: the GUI's speed does not
  depend on where vectors came from), RQ-KMeans 3 x 256.

Projects are built once into ``--work`` (default ``out/bench``) and reused. For each, the real
``MainWindow`` is driven offscreen and the script prints:

- **open**: from ``open_project`` until the catalogue shows and the SID tree's top level is
  loaded (the inspection job done); and until the embedding map is drawn;
- **expand**: ``QTreeView.expand`` of a node until its children are inserted and painted
  (labels, purity and words computed for the visible rows): every level-1 node, the 20
  largest level-2 nodes and the largest last-level node;
- **stall**: a 5 ms ``QTimer`` on the GUI thread records the gap between its ticks while a
  quantiser is fitted in the background, while the generative recommender (TIGER) trains from
  the Training panel (live curves drawn, validation runs included; cancelled after
  ``--train-seconds``), while the project opens and while a query is typed; the longest gap is
  the longest time the window could not react (target: < 100 ms).

``--fit-seconds 0`` / ``--train-seconds 0`` leave out the quantiser fit / the model training.
Without ``--beauty`` or ``--synthetic``, ``--project PATH`` measures an existing project (e.g.
the sample project).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
BEAUTY = SHARED / "amazon2014_beauty_5core"


# --------------------------------------------------------------------------- building the projects


def build_beauty(path: Path, embeddings: Path | None, ids: Path | None) -> None:
    from semid_studio.core import importing
    from semid_studio.core.embed import BUNDLED_MODEL, embed_items
    from semid_studio.core.events import drive
    from semid_studio.core.quantize import quantize_project
    from semid_studio.core.store import ProjectStore

    template = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"
    store = ProjectStore.create(path)
    try:
        store.set_meta("template", template)
        drive(importing.import_data(store, items=BEAUTY / "items.jsonl.gz",
                                    interactions=BEAUTY / "interactions.tsv.gz"))
        if embeddings is not None:
            set_id = importing.import_embeddings(store, embeddings, ids_path=ids, model_name=BUNDLED_MODEL,
                                                 name="MiniLM (cached)")
        else:
            set_id = drive(embed_items(store, template=template))
        drive(quantize_project(store, embedding_set_id=set_id, label_field="categories"))
    except BaseException:
        store.close()
        path.unlink(missing_ok=True)
        raise
    store.close()


_DEPTS = ["Beauty", "Home", "Garden", "Toys", "Sports", "Electronics", "Books", "Grocery", "Pets", "Office",
          "Tools", "Baby", "Health", "Music", "Outdoors", "Kitchen", "Auto", "Crafts", "Shoes", "Travel"]
_ADJ = ["classic", "compact", "deluxe", "eco", "fast", "gentle", "heavy", "light", "mini", "organic", "portable",
        "premium", "quiet", "smart", "soft", "sturdy", "travel", "ultra", "vintage", "wireless"]
_NOUNS = ["bag", "bottle", "brush", "cable", "candle", "chair", "charger", "cream", "cup", "desk", "fan", "glove",
          "hat", "jar", "kit", "lamp", "mat", "mug", "pan", "pen", "pillow", "plate", "rack", "rope", "scarf",
          "shelf", "shoe", "soap", "sock", "speaker", "spoon", "stand", "tape", "tent", "timer", "towel", "toy",
          "tray", "vase", "watch"]


def build_synthetic(path: Path, n_items: int, seed: int = 0) -> None:
    import pandas as pd

    from semid_studio.core.events import drive
    from semid_studio.core.quantize import quantize_project
    from semid_studio.core.store import ProjectStore

    rng = np.random.default_rng(seed)
    n_cats = 200
    cat = rng.integers(0, n_cats, size=n_items)
    records = []
    for i in range(n_items):
        c = int(cat[i])
        dept, sub, leaf = _DEPTS[c % 20], f"{_ADJ[(c // 20) % 20].capitalize()} goods", f"Type {c}"
        title = (f"Brand{c % 97} {_ADJ[(i * 7 + c) % 20]} {_NOUNS[(c * 3 + i % 5) % 40]} "
                 f"{_NOUNS[(c + i % 3) % 40]} no. {i}")
        records.append({"item_id": f"S{i:07d}", "title": title, "brand": f"Brand{c % 97}",
                        "categories": [dept, sub, leaf], "price": round(float(rng.uniform(2, 200)), 2)})
    centers = rng.normal(size=(n_cats, 384)).astype(np.float32)
    vectors = centers[cat] + 0.6 * rng.normal(size=(n_items, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n_users = max(1, n_items // 4)
    n_inter = 2 * n_items
    users = rng.integers(0, n_users, size=n_inter)
    inter = pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_idx": rng.integers(0, n_items, size=n_inter),
                          "ts": 1.6e9 + rng.integers(0, 10**7, size=n_inter)})
    store = ProjectStore.create(path)
    try:
        store.add_items(records)
        store.add_interactions(inter)
        set_id = store.save_embedding_set(name="synthetic clusters", model="synthetic", template=None,
                                          strategy="synthetic", cache_key="synthetic", vectors=vectors)
        drive(quantize_project(store, embedding_set_id=set_id, label_field="categories[2]"))
    except BaseException:
        store.close()
        path.unlink(missing_ok=True)
        raise
    store.close()


# --------------------------------------------------------------------------- measuring


class StallMonitor:
    """Ticks every 5 ms on the GUI thread and keeps the gaps between ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
            self.at.append(self._last - self._start)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self.at = []
        self._last = None
        self._start = time.perf_counter()
        self.timer.start()

    def stop(self) -> dict:
        self.timer.stop()
        gaps = np.array(self.gaps) * 1000 if self.gaps else np.zeros(1)
        worst = np.argsort(-gaps)[:3] if self.gaps else []
        return {"max_ms": float(gaps.max()), "p99_ms": float(np.percentile(gaps, 99)),
                "over_100ms": int((gaps > 100).sum()), "ticks": len(self.gaps),
                # when the longest gaps began (s after start): e.g. a set-up, a validation, a save
                "worst": [(round(float(self.at[i]), 1), round(float(gaps[i]))) for i in worst]}


def pump(app, condition, timeout: float = 600.0) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - start


def measure(app, path: Path, fit_seconds: float, train_seconds: float = 0.0, train_preset: str = "laptop",
            train_overrides: str = "") -> dict:
    from semid_studio.gui.main_window import MainWindow

    win = MainWindow(persist=False)
    win.resize(1400, 900)
    win.show()
    win.show_view("tree")
    pump(app, lambda: True, 1)
    app.processEvents()
    monitor = StallMonitor()
    out: dict = {"items": None}

    # -- open
    monitor.start()
    t0 = time.perf_counter()
    assert win.open_project(path), win.errors
    model = win.sid_tree.model
    pump(app, lambda: win.context.inspection is not None and model.rowCount() > 0)
    out["open_s"] = time.perf_counter() - t0
    pump(app, lambda: win.context.projection is not None and not win.runner.is_busy())
    app.processEvents()
    out["open_with_map_s"] = time.perf_counter() - t0
    out["open_stall"] = monitor.stop()
    out["items"] = win.context.store.item_count()

    # -- expand
    view = win.sid_tree.tree

    def expand(index) -> float:
        start = time.perf_counter()
        view.expand(index)
        pump(app, lambda: model.rowCount(index) > 0 or not model.hasChildren(index), 60)
        view.viewport().repaint()  # paint the new rows: labels, purity and words are computed here
        took = time.perf_counter() - start
        view.collapse(index)
        return took

    level1 = [model.index(r, 0) for r in range(model.rowCount())]
    times1 = [expand(i) for i in level1]
    largest = max(level1, key=lambda i: model.node_at(i).count)
    view.expand(largest)
    pump(app, lambda: model.rowCount(largest) > 0)
    level2 = sorted((model.index(r, 0, largest) for r in range(model.rowCount(largest))),
                    key=lambda i: -model.node_at(i).count)[:20]
    times2 = [expand(i) for i in level2]
    # the largest last-level node: the biggest group of items under one semantic prefix
    index_obj = win.context.inspection.index
    prefixes, counts = index_obj.prefix_counts(model.n_levels)
    deepest = model.index_for_prefix(tuple(int(c) for c in prefixes[int(np.argmax(counts))]))
    parent = deepest.parent()
    chain = []
    while parent.isValid():
        chain.append(parent)
        parent = parent.parent()
    for ancestor in reversed(chain):  # open the way down (not timed), as a user would have
        view.expand(ancestor)
        pump(app, lambda a=ancestor: model.rowCount(a) > 0, 60)
    view.scrollTo(deepest)
    t_deep = expand(deepest)
    out["expand_level1_ms"] = (1000 * statistics.median(times1), 1000 * max(times1), len(times1))
    out["expand_level2_ms"] = (1000 * statistics.median(times2), 1000 * max(times2), len(times2))
    out["expand_largest_leaf_group_ms"] = (1000 * t_deep, int(counts.max()))
    view.collapse(largest)

    # -- reveal an item (find)
    start = time.perf_counter()
    win.sid_tree.reveal_item(out["items"] // 2)
    view.viewport().repaint()
    out["reveal_ms"] = 1000 * (time.perf_counter() - start)

    # -- a query while the window is watched (only with a real text encoder)
    emb = win.context.store.list_embedding_sets()[-1]
    if emb.model not in ("synthetic", "imported"):
        pg = win.playground
        win.show_view("playground")
        monitor.start()
        t0 = time.perf_counter()
        for text in ("r", "re", "red", "red l", "red lip", "red lipstick"):  # typed, debounced
            pg.query_edit.setText(text)
            end = time.perf_counter() + 0.06  # a fast typist: 60 ms between keys
            pump(app, lambda e=end: time.perf_counter() > e, 5)
        pump(app, lambda: pg.results.rowCount() > 0 and pg.results_request == pg._latest_request, 120)
        out["query_s"] = time.perf_counter() - t0
        out["query_stall"] = monitor.stop()
        win.show_view("tree")

    # -- the longest stall while the generative recommender trains (Training panel, curves drawn)
    if train_seconds > 0:
        panel = win.training
        win.show_view("training")
        panel.show_form(panel.generative_form)
        form = panel.generative_form
        form.preset_combo.setCurrentText(train_preset)
        form.overrides_edit.setText(train_overrides)
        pump(app, lambda: True, 1)
        monitor.start()
        t0 = time.perf_counter()
        panel.start()
        try:
            pump(app, lambda: not panel.running or time.perf_counter() - t0 > train_seconds, train_seconds + 600)
        finally:
            out["train_s"] = time.perf_counter() - t0
            if panel.running:
                t_cancel = time.perf_counter()
                panel.cancel()
                pump(app, lambda: not panel.running, 600)
                out["train_cancel_s"] = time.perf_counter() - t_cancel
            pump(app, lambda: win.is_idle(), 600)
            out["train_stall"] = monitor.stop()
        steps = panel.curves.series("loss (running mean)")[0]
        out["train_steps"] = int(steps[-1]) if steps else 0
        out["train_validations"] = len(panel.valid_curves.series(f"valid {form.spec().select_metric}")[0])
        out["train_status"] = panel.last_status
        out["train_preset"] = train_preset + (f" ({train_overrides})" if train_overrides else "")

    # -- the longest stall while a quantiser is fitted in the background
    if fit_seconds > 0:
        win.training.show_form(win.training.quantizer_form)
        form = win.training.form
        form.method_combo.setCurrentText("rq-kmeans")
        form.preset_combo.setCurrentText("default")
        monitor.start()
        t0 = time.perf_counter()
        win.training.start()
        try:
            pump(app, lambda: not win.training.running or time.perf_counter() - t0 > fit_seconds, fit_seconds + 60)
        finally:
            if win.training.running:
                win.training.cancel()
                pump(app, lambda: not win.training.running, 600)
            fit_status = win.training.last_status
            # the new run is loaded into the tree and map after the fit: part of what the user waits on
            pump(app, lambda: win.is_idle() and win.context.inspection is not None, 600)
            out["fit_stall"] = monitor.stop()
        out["fit_s"] = time.perf_counter() - t0
        out["fit_status"] = fit_status
    win.close()
    return out


def report(name: str, r: dict) -> None:
    print(f"\n== {name}: {r['items']:,} items")
    print(f"open (catalogue + SID tree ready)     {r['open_s']:.2f} s; with the embedding map {r['open_with_map_s']:.2f} s")
    med, worst, n = r["expand_level1_ms"]
    print(f"expand a level-1 node                 median {med:.1f} ms, max {worst:.1f} ms ({n} nodes)")
    med, worst, n = r["expand_level2_ms"]
    print(f"expand a level-2 node                 median {med:.1f} ms, max {worst:.1f} ms ({n} largest)")
    ms, size = r["expand_largest_leaf_group_ms"]
    print(f"expand the largest last-level node    {ms:.1f} ms ({size} items)")
    print(f"reveal an item (find)                 {r['reveal_ms']:.1f} ms")
    for key, label in (("open_stall", "while opening"), ("query_stall", "while typing a query"),
                       ("fit_stall", f"while fitting RQ-KMeans ({r.get('fit_s', 0):.0f} s, {r.get('fit_status')})"),
                       ("train_stall", f"while training TIGER {r.get('train_preset')} ({r.get('train_s', 0):.0f} s, "
                                       f"{r.get('train_steps')} steps, {r.get('train_validations')} validations, "
                                       f"{r.get('train_status')})")):
        if key in r:
            s = r[key]
            worst = ", ".join(f"{ms} ms at {t} s" for t, ms in s["worst"])
            print(f"GUI stall {label:<28} max {s['max_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, "
                  f"{s['over_100ms']} gaps > 100 ms ({s['ticks']} ticks; longest: {worst})")
    print(f"(load average after this project: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; other work on the "
          "machine lengthens the gaps)")
    if "train_cancel_s" in r:
        print(f"cancel the training -> stopped and saved   {r['train_cancel_s']:.2f} s")
    if "query_s" in r:
        print(f"query typed -> results shown          {r['query_s']:.2f} s (first query loads the encoder)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beauty", action="store_true", help="measure on Amazon Beauty (../shared/data)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="measure on N synthetic items")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "bench")
    parser.add_argument("--beauty-embeddings", type=Path, help="cached MiniLM vectors of Beauty (.npy)")
    parser.add_argument("--beauty-ids", type=Path, help="item ids of the cached vectors' rows")
    parser.add_argument("--project", type=Path, help="measure this existing project (e.g. the sample project)")
    parser.add_argument("--fit-seconds", type=float, default=120.0,
                        help="watch the fit for at most this long, then cancel it (default 120; 0: no fit)")
    parser.add_argument("--train-seconds", type=float, default=60.0,
                        help="watch the generative model train for this long, then cancel it (default 60; 0: none)")
    parser.add_argument("--train-preset", default="laptop", help="generative preset to train (default laptop)")
    parser.add_argument("--train-overrides", default="eval_every=50, valid_users=1000",
                        help="spec overrides, so that validation runs fall inside the window "
                             "(default 'eval_every=50, valid_users=1000')")
    args = parser.parse_args(argv)
    if not args.beauty and not args.synthetic and not args.project:
        parser.error("choose --beauty, --synthetic N and/or --project PATH")
    args.work.mkdir(parents=True, exist_ok=True)

    targets = []
    if args.beauty:
        if not BEAUTY.exists():
            print("../shared/data/amazon2014_beauty_5core is not here; skipping Beauty", file=sys.stderr)
        else:
            path = args.work / "beauty.semid"
            if not path.exists():
                t = time.perf_counter()
                build_beauty(path, args.beauty_embeddings, args.beauty_ids)
                print(f"built {path} in {time.perf_counter() - t:.0f} s")
            targets.append(("Beauty", path))
    if args.synthetic:
        path = args.work / f"synthetic_{args.synthetic}.semid"
        if not path.exists():
            t = time.perf_counter()
            build_synthetic(path, args.synthetic)
            print(f"built {path} in {time.perf_counter() - t:.0f} s")
        targets.append((f"synthetic {args.synthetic:,}", path))
    if args.project:
        if not args.project.exists():
            parser.error(f"{args.project}: no such project")
        targets.append((args.project.name, args.project))

    from PySide6.QtWidgets import QApplication

    from semid_studio.gui.app import configure_threads, settle_memory

    configure_threads()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("SemID Studio Bench")
    app.setApplicationName("SemID Studio Bench")
    import semid_studio.gui.main_window  # noqa: F401 - what the app imports before it settles

    settle_memory()  # as semid-studio does at start-up
    print(f"torch threads {__import__('torch').get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    import shutil
    import tempfile

    for name, path in targets:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / path.name  # the fit adds a run: measure on a copy
            shutil.copyfile(path, copy)
            results[name] = measure(app, copy, args.fit_seconds, args.train_seconds, args.train_preset,
                                    args.train_overrides)
        report(name, results[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
