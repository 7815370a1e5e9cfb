"""Take the README's screenshots of every main view from the real app (offscreen).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gui_screenshots.py PROJECT.semid docs/screenshots

The project is copied to a temporary folder first (the script trains a generative model and
fits an extra quantiser run there, for live training curves, a run comparison and real
recommendations), then the window is driven as a person would: select an item, train the
generative recommender from the Training panel, open a branch of the tree, type a query, load a
user's history and read its recommendations, evaluate the model against the baselines, export.
Each view is saved as a PNG (reduced to a small palette so each file stays well under 300 KB).

Joint search + rec (``--views joint`` takes only these; ``all``, the default, takes both): generate
known-item queries, make rec-tuned embeddings and their SIDs, train small joint models on the
content and the rec-tuned SIDs (two seeds each), evaluate them in the Strategies view against
the baselines, and search with the newest in the Playground.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


def wait(app, condition, timeout: float = 600.0) -> None:
    """Process events until ``condition()`` holds (raises after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not become ready in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app, window, seconds: float = 0.4) -> None:
    wait(app, window.is_idle)
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # let debounced inputs and 10 Hz plots catch up
        app.processEvents()
        time.sleep(0.01)
    wait(app, window.is_idle)


def save(window, out: Path, name: str) -> Path:
    from PySide6.QtGui import QImage

    path = out / f"{name}.png"
    from PySide6.QtCore import Qt

    image = window.grab().toImage()
    # an 8-bit palette without dithering: a UI has few colours, and dither noise compresses badly
    flags = Qt.ImageConversionFlag.ThresholdDither | Qt.ImageConversionFlag.AvoidDither
    image = image.convertToFormat(QImage.Format_Indexed8, flags)
    image.save(str(path), "PNG")
    print(f"{path}  {path.stat().st_size // 1024} KB")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--query", default="long lasting red lipstick")
    parser.add_argument("--size", default="1400x860")
    parser.add_argument("--preset", default="laptop", help="generative preset to train (default laptop)")
    parser.add_argument("--steps", type=int, default=400, help="its training steps (default 400)")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validation runs (default 100)")
    parser.add_argument("--train-minutes", type=float, default=8.0, help="time budget for the training (default 8)")
    parser.add_argument("--views", choices=["all", "main", "joint"], default="all",
                        help="main: the original views; joint: joint search + rec (strategies, playground search)")
    parser.add_argument("--joint-query", default="waterproof hiking boots")
    parser.add_argument("--joint-steps", type=int, default=300, help="steps of each joint model (tiny preset)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from semid_studio.gui.app import configure_threads
    from semid_studio.gui.main_window import MainWindow

    configure_threads()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("SemID Studio Screenshots")
    app.setApplicationName("SemID Studio Screenshots")
    tmp = Path(tempfile.mkdtemp(prefix="semid-shots-"))
    project = tmp / args.project.name
    shutil.copyfile(args.project, project)
    window = MainWindow(persist=False)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    try:
        assert window.open_project(project), window.errors
        settle(app, window)
        wait(app, lambda: window.context.projection is not None)
        if args.views in ("all", "main"):
            main_views(app, window, args, tmp)
        if args.views in ("all", "joint"):
            joint_views(app, window, args)
    finally:
        window.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run_form(app, window, form, what: str) -> None:
    panel = window.training
    window.show_view("training")
    panel.show_form(form)
    panel.start()
    wait(app, lambda: not panel.running, timeout=1800)
    if panel.last_status != "done":
        raise SystemExit(f"{what} failed: {panel.stage_label.text()} {window.errors}")
    settle(app, window)


def joint_views(app, window, args) -> None:
    """Queries, rec-tuned SIDs, joint models on two SID spaces, the strategies view, joint search."""
    panel = window.training
    qform = panel.queries_form
    qform.method_combo.setCurrentText("known-item")
    qform.per_item_spin.setValue(2)
    qform.test_spin.setValue(1)
    qform.exclude_title_check.setChecked(True)  # the sample's imported test queries reuse titles
    run_form(app, window, qform, "generating queries")
    save(window, args.out, "training_queries")

    sform = panel.strategy_form
    sform.strategy_combo.setCurrentIndex(sform.strategy_combo.findData("rec"))
    run_form(app, window, sform, "rec-tuned embeddings")
    store = window.context.store
    rec_set = store.list_embedding_sets()[-1].id
    content_run = min(r.id for r in store.list_quantizer_runs() if r.embedding_set_id != rec_set)
    form = panel.quantizer_form
    form.method_combo.setCurrentText("rq-kmeans")
    form.embedding_combo.setCurrentIndex(form.embedding_combo.findData(rec_set))
    form.name_edit.setText("rq-kmeans on rec-tuned embeddings")
    run_form(app, window, form, "rec-tuned SIDs")
    rec_run = window.context.store.active_run_id()

    gform = panel.generative_form
    for run_id in (content_run, rec_run):
        window.context.set_active_run(run_id)
        settle(app, window)
        for seed in (0, 1):
            panel.show_form(gform)
            gform.resume_combo.setCurrentIndex(0)
            gform.task_combo.setCurrentIndex(gform.task_combo.findData("joint"))
            gform.encoder_combo.setCurrentIndex(gform.encoder_combo.findData("minilm"))
            gform.preset_combo.setCurrentText("tiny")
            gform.steps_spin.setValue(args.joint_steps)
            gform.eval_spin.setValue(max(1, args.joint_steps // 3))
            gform.seed_spin.setValue(seed)
            gform.overrides_edit.setText("valid_users=300, dev_fraction=0.05")
            run_form(app, window, gform, "a joint model")
    save(window, args.out, "training_joint")

    window.show_view("strategies")
    sv = window.strategies
    settle(app, window)
    sv.queries_spin.setValue(300)
    sv.start_evaluation()
    wait(app, lambda: not sv.running, timeout=1800)
    if sv.last_status != "done":
        raise SystemExit(f"evaluating the strategies failed: {sv.eval_label.text()} {window.errors}")
    settle(app, window)
    sv.select_point(len(sv.data.points) - 1)
    settle(app, window)
    save(window, args.out, "strategies")
    sv.compare_a.setCurrentIndex(sv.compare_a.findData(rec_run))
    sv.compare_b.setCurrentIndex(sv.compare_b.findData(content_run))
    sv._on_compare()
    settle(app, window)
    save(window, args.out, "compare_strategies")

    window.context.set_active_run(content_run)
    settle(app, window)
    window.show_view("playground")
    pg = window.playground
    content_models = [p.model_id for p in sv.data.points if p.quantizer_run_id == content_run]
    if content_models:
        pg.choose_search_model(content_models[-1])
    if pg.user_combo.count():  # the same joint model recommends from a real user's history
        pg.user_combo.setCurrentIndex(0)
        pg.load_user_history()
    pg.query_edit.setText(args.joint_query)
    wait(app, lambda: pg.last_answer is not None and pg.results.rowCount() > 0
         and pg.recommendations.rowCount() > 0, timeout=300)
    settle(app, window)
    pg.results_view.selectRow(0)
    save(window, args.out, "playground_joint")


def main_views(app, window, args, tmp: Path) -> None:
    """The original screenshots: every main view."""
    # catalogue: an item selected, its details on the right
    window.show_view("catalogue")
    window.catalogue.view.selectRow(2)
    settle(app, window)
    save(window, args.out, "catalogue")

    # the import wizard on the bundled sample files: columns found, every row checked
    from semid_studio.core.pipeline import sample_files

    window.new_project()
    wizard = window.wizard
    for kind, path in sample_files().items():
        wizard.files_page.paths[kind].setText(str(path))
    wizard.next()
    wait(app, lambda: not wizard.preview_page.checking and wizard.preview_page.isComplete())
    settle(app, window)
    save(wizard, args.out, "import_wizard")
    wizard.reject()

    # training the generative recommender: live loss and validation curves, the saved model
    window.show_view("training")
    panel = window.training
    panel.show_form(panel.generative_form)
    gform = panel.generative_form
    gform.preset_combo.setCurrentText(args.preset)
    gform.steps_spin.setValue(args.steps)
    gform.eval_spin.setValue(args.eval_every)
    gform.minutes_spin.setValue(args.train_minutes)
    panel.start()
    wait(app, lambda: not panel.running, timeout=args.train_minutes * 60 + 300)
    if panel.last_status != "done":  # "done" also when the time budget stopped it (resumable)
        raise SystemExit(f"training the generative model failed: {window.errors}")
    settle(app, window)
    save(window, args.out, "training")

    # training: a small RQ-VAE fit for live curves (also a second run to compare)
    panel.show_form(panel.quantizer_form)
    form = window.training.form
    form.method_combo.setCurrentText("rq-vae")
    form.preset_combo.setCurrentText("tiny")
    form.size_spin.setValue(64)
    # nearest codes at the last level too, so that this run has collision groups to show
    form.overrides_edit.setText("unique_last_level=false")
    form.name_edit.setText("rq-vae tiny (screenshot)")
    window.training.start()
    wait(app, lambda: not window.training.running)
    settle(app, window)
    save(window, args.out, "training_quantiser")

    # the new run's collision groups
    window.show_view("tree")
    wait(app, lambda: window.context.inspection is not None and window.context.inspection.run.method == "rq-vae")
    settle(app, window)
    window.sid_tree.tabs.setCurrentIndex(1)
    settle(app, window)
    save(window, args.out, "sid_tree_collisions")

    # the tree: the biggest level-1 branch opened, one of its children selected
    window.show_view("tree")
    tree = window.sid_tree
    first_run = min(r.id for r in window.context.store.list_quantizer_runs())
    window.context.set_active_run(first_run)
    settle(app, window)
    wait(app, lambda: window.context.projection is not None)
    model = tree.model
    root_counts = model.children_counts(tree.tree.rootIndex())
    biggest = max(range(len(root_counts)), key=root_counts.__getitem__)
    parent = model.index(biggest, 0)
    tree.tree.expand(parent)
    settle(app, window)
    model.load_children(parent, all=True)
    counts = model.children_counts(parent)
    child = model.index(max(range(len(counts)), key=counts.__getitem__), 0, parent)
    tree.tree.expand(child)
    tree.tree.setCurrentIndex(child)
    settle(app, window)
    save(window, args.out, "sid_tree")
    for tab, name in ((2, "code_usage"), (3, "embedding_map")):
        tree.tabs.setCurrentIndex(tab)
        settle(app, window)
        save(window, args.out, name)
    tree.tabs.setCurrentIndex(4)
    tree.compare_runs()
    settle(app, window)
    save(window, args.out, "compare_runs")

    # playground: a query, and a real user's history
    window.show_view("playground")
    pg = window.playground
    if pg.user_combo.count():
        pg.user_combo.setCurrentIndex(0)
        pg.load_user_history()
    pg.query_edit.setText(args.query)
    wait(app, lambda: pg.results.rowCount() > 0 and pg.recommendations.rowCount() > 0, timeout=300)
    settle(app, window)
    pg.recommend_view.selectRow(0)
    save(window, args.out, "playground")
    window.show_view("tree")
    tree.tabs.setCurrentIndex(0)
    tree.reveal_item(pg.recommended_items[0])
    settle(app, window)
    save(window, args.out, "sid_tree_highlight")

    # evaluation: the model against popularity and the Markov chain on the test split
    window.show_view("evaluation")
    window.evaluation.start_evaluation()
    wait(app, lambda: window.evaluation.last_status in ("done", "failed"), timeout=600)
    settle(app, window)
    save(window, args.out, "evaluation")
    window.show_view("export")
    export = window.export
    export.table_format.setCurrentIndex(export.table_format.findData(".parquet"))
    export.with_titles.setChecked(True)
    export.table_path.setText(str(tmp / "sample_sids.parquet"))
    export.export_table()
    wait(app, lambda: "Wrote" in export.status.text())
    export.model_path.setText(str(tmp / "sample_model.safetensors"))
    export.export_model()
    wait(app, lambda: "model.json" in export.status.text())
    settle(app, window)
    save(window, args.out, "export")


if __name__ == "__main__":
    sys.exit(main())
