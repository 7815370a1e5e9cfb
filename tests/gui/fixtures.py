"""Fixtures for the GUI tests: a ready project, its source files, and a window on it.

``gui_project`` is a private copy of the bundled sample project (``sample_project`` from the
root conftest: import -> MiniLM embeddings -> RQ-KMeans through the real pipeline). Where the
sample data is not there (a checkout that has not generated it yet), the same pipeline runs on
a small catalogue of real-sounding products written below, so the GUI tests still run on real
embeddings and a real quantiser.

``source_files`` are item / interaction / query files for the import wizard: the first items
of the sample files (and the interactions and queries that name them), small enough that the
wizard's embed step takes seconds.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

#: the offscreen platform plugin says this when a window's size limits change or a tooltip is
#: raised; it is the test platform talking, not the app
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")

# --------------------------------------------------------------------------- a small real-text catalogue

_PRODUCTS = {
    ("Makeup", "Eyes"): [
        ("Maybelline Great Lash Washable Mascara, Blackest Black", "Maybelline", 4.99),
        ("L'Oreal Voluminous Original Mascara, Carbon Black", "L'Oreal", 8.49),
        ("CoverGirl LashBlast Volume Mascara, Very Black", "CoverGirl", 7.99),
        ("Urban Decay Naked Eyeshadow Palette, 12 neutral shades", "Urban Decay", 54.0),
        ("NYX Jumbo Eye Pencil, Milk", "NYX", 4.5),
        ("Revlon ColorStay Eyeliner, Black Brown", "Revlon", 7.2),
        ("Anastasia Beverly Hills Brow Wiz, Medium Brown", "Anastasia", 23.0),
        ("e.l.f. Cosmetics Eyelid Primer, Sheer", "e.l.f.", 3.0),
    ],
    ("Makeup", "Lips"): [
        ("Revlon Super Lustrous Lipstick, Fire and Ice", "Revlon", 6.49),
        ("MAC Matte Lipstick, Ruby Woo", "MAC", 19.0),
        ("Maybelline SuperStay 24 Liquid Lipstick, Keep Up The Flame", "Maybelline", 9.99),
        ("Burt's Bees 100% Natural Moisturizing Lip Balm, Beeswax", "Burt's Bees", 3.29),
        ("NYX Butter Gloss, Creme Brulee", "NYX", 5.0),
        ("Clinique Chubby Stick Moisturizing Lip Colour Balm", "Clinique", 18.0),
        ("Carmex Classic Lip Balm Medicated, Original", "Carmex", 2.49),
        ("Rimmel Lasting Finish Lip Liner, Red", "Rimmel", 3.99),
    ],
    ("Skin Care", "Face"): [
        ("CeraVe Moisturizing Cream for Normal to Dry Skin, 16 oz", "CeraVe", 16.08),
        ("Neutrogena Hydro Boost Water Gel Face Moisturizer", "Neutrogena", 17.99),
        ("Olay Regenerist Micro-Sculpting Anti-Aging Cream", "Olay", 28.99),
        ("La Roche-Posay Toleriane Hydrating Gentle Facial Cleanser", "La Roche-Posay", 15.99),
        ("The Ordinary Niacinamide 10% + Zinc 1% Serum", "The Ordinary", 6.5),
        ("Cetaphil Gentle Skin Cleanser for Sensitive Skin", "Cetaphil", 11.99),
        ("Neutrogena Oil-Free Acne Wash with Salicylic Acid", "Neutrogena", 8.99),
        ("Clean & Clear Morning Burst Facial Scrub", "Clean & Clear", 5.49),
    ],
    ("Skin Care", "Sun"): [
        ("Banana Boat Sport Sunscreen Lotion SPF 50", "Banana Boat", 8.97),
        ("Neutrogena Ultra Sheer Dry-Touch Sunscreen SPF 55", "Neutrogena", 10.49),
        ("La Roche-Posay Anthelios Melt-in Sunscreen Milk SPF 60", "La Roche-Posay", 35.99),
        ("Coppertone Water Babies Sunscreen Lotion SPF 50", "Coppertone", 9.99),
        ("Aveeno Protect + Hydrate Face Sunscreen SPF 50", "Aveeno", 11.49),
        ("Hawaiian Tropic Sheer Touch Sunscreen SPF 30", "Hawaiian Tropic", 7.97),
    ],
    ("Hair Care", "Shampoo"): [
        ("Head & Shoulders Classic Clean Dandruff Shampoo", "Head & Shoulders", 7.49),
        ("Pantene Pro-V Daily Moisture Renewal Shampoo", "Pantene", 5.99),
        ("OGX Renewing Argan Oil of Morocco Shampoo", "OGX", 7.99),
        ("Neutrogena T/Gel Therapeutic Shampoo", "Neutrogena", 8.49),
        ("Tresemme Moisture Rich Shampoo with Vitamin E", "Tresemme", 4.99),
        ("Dove Nutritive Solutions Daily Moisture Shampoo", "Dove", 5.49),
        ("Suave Professionals Keratin Infusion Smoothing Shampoo", "Suave", 3.99),
    ],
    ("Hair Care", "Styling"): [
        ("Moroccanoil Treatment Hair Oil, Original", "Moroccanoil", 48.0),
        ("John Frieda Frizz Ease Extra Strength Serum", "John Frieda", 9.99),
        ("Got2b Glued Spiking Glue Styling Gel", "Got2b", 4.49),
        ("CHI 44 Iron Guard Thermal Protection Spray", "CHI", 16.99),
        ("Aussie Instant Freeze Hairspray", "Aussie", 3.97),
        ("Batiste Dry Shampoo, Original", "Batiste", 8.99),
    ],
    ("Fragrance", "Women"): [
        ("Chanel No. 5 Eau de Parfum Spray, 3.4 oz", "Chanel", 138.0),
        ("Marc Jacobs Daisy Eau de Toilette Spray", "Marc Jacobs", 92.0),
        ("Viktor & Rolf Flowerbomb Eau de Parfum", "Viktor & Rolf", 155.0),
        ("Lancome La Vie Est Belle Eau de Parfum", "Lancome", 118.0),
        ("Elizabeth Arden Green Tea Scent Spray", "Elizabeth Arden", 14.99),
        ("Britney Spears Fantasy Eau de Parfum", "Britney Spears", 24.0),
    ],
    ("Tools", "Nails"): [
        ("OPI Nail Lacquer, Big Apple Red", "OPI", 10.5),
        ("Essie Nail Polish, Ballet Slippers", "Essie", 9.0),
        ("Sally Hansen Hard as Nails Nail Polish, Clear", "Sally Hansen", 4.49),
        ("Seche Vite Dry Fast Top Coat", "Seche", 9.95),
        ("Revlon Compact Emery Boards, 10 count", "Revlon", 2.99),
        ("Tweezerman Stainless Steel Slant Tweezer", "Tweezerman", 23.0),
    ],
}
_QUERIES = [
    ("mascara that makes lashes look longer", 0), ("waterproof black eyeliner", 5), ("red lipstick that lasts", 8),
    ("lip balm for chapped lips", 11), ("moisturizer for very dry skin", 16), ("gentle face wash", 19),
    ("sunscreen for swimming", 24), ("dandruff shampoo", 30), ("frizz control serum", 38),
    ("floral perfume for women", 44), ("quick drying top coat for nails", 52), ("tweezers for eyebrows", 54),
]


def write_small_catalogue(folder: Path) -> dict[str, Path]:
    """Write items.jsonl, interactions.csv and queries.csv for the small catalogue above."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for (department, category), products in _PRODUCTS.items():
        for title, brand, price in products:
            items.append({"item_id": f"P{len(items):03d}", "title": title, "brand": brand,
                          "categories": ["Beauty", department, category], "price": price})
    with open(folder / "items.jsonl", "w") as fh:
        for rec in items:
            fh.write(json.dumps(rec) + "\n")
    # users who shop within one or two departments, deterministic
    by_dept: dict[str, list[int]] = {}
    for i, rec in enumerate(items):
        by_dept.setdefault(rec["categories"][1], []).append(i)
    depts = sorted(by_dept)
    with open(folder / "interactions.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["user_id", "item_id", "timestamp"])
        for u in range(40):
            pool = by_dept[depts[u % len(depts)]] + by_dept[depts[(u * 3 + 1) % len(depts)]]
            for step in range(6 + u % 5):
                i = pool[(u * 7 + step * 5) % len(pool)]
                out.writerow([f"U{u:03d}", items[i]["item_id"], 1_600_000_000 + u * 1000 + step * 86400])
    with open(folder / "queries.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["query", "item_id", "split"])
        for n, (text, i) in enumerate(_QUERIES):
            out.writerow([text, items[i]["item_id"], "test" if n % 4 == 0 else "train"])
    return {"items": folder / "items.jsonl", "interactions": folder / "interactions.csv",
            "queries": folder / "queries.csv"}


def sample_data_available() -> bool:
    from semid_studio.core.errors import ProjectError
    from semid_studio.core.pipeline import sample_files

    try:
        sample_files()
    except ProjectError:
        return False
    return True


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def gui_project_master(request, tmp_path_factory) -> Path:
    """The ready project the GUI tests copy: the sample project, or the small catalogue's."""
    if sample_data_available():
        return request.getfixturevalue("sample_project_master")
    from semid_studio.core.events import NEVER, drive
    from semid_studio.core.pipeline import SAMPLE_TEMPLATE
    from semid_studio.core.quantize import make_spec
    from semid_studio.gui.panels.import_wizard import create_project

    folder = tmp_path_factory.mktemp("small-catalogue")
    files = write_small_catalogue(folder / "files")
    path = folder / "small.semid"
    spec = make_spec("rq-kmeans", "default", {"codebook_size": 4})  # 55 items: 4 x 4 x 4 tuples
    drive(create_project(path, files={k: str(v) for k, v in files.items()}, format="auto", mapping={},
                         encoding=None, on_unknown="abort", template=SAMPLE_TEMPLATE, model=None, spec=spec,
                         label_field="categories", cancel=NEVER))
    return path


@pytest.fixture
def gui_project(gui_project_master, tmp_path) -> Path:
    """A private copy of the ready project that a test may change."""
    target = tmp_path / "project.semid"
    shutil.copyfile(gui_project_master, target)
    return target


@pytest.fixture
def source_files(tmp_path) -> dict[str, Path]:
    """Small item / interaction / query files for the import wizard (from the sample files if present)."""
    folder = tmp_path / "files"
    if not sample_data_available():
        return write_small_catalogue(folder)
    from semid_studio.core.pipeline import sample_files

    return subset_of_sample(sample_files(), folder, n_items=120)


def subset_of_sample(files: dict[str, Path], folder: Path, n_items: int) -> dict[str, Path]:
    """The first ``n_items`` items of the sample files, with the interactions and queries naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    with open(files["items"]) as src, open(folder / files["items"].name, "w") as dst:
        for line in src:
            if len(ids) >= n_items:
                break
            if line.strip():
                ids.add(str(json.loads(line)["item_id"]))
                dst.write(line)
    out = {"items": folder / files["items"].name}
    for kind in ("interactions", "queries"):
        with open(files[kind], newline="") as src, open(folder / files[kind].name, "w", newline="") as dst:
            reader = csv.reader(src)
            writer = csv.writer(dst)
            header = next(reader)
            col = header.index("item_id")
            writer.writerow(header)
            writer.writerows(row for row in reader if row and row[col] in ids)
        out[kind] = folder / files[kind].name
    return out


@pytest.fixture
def window(qtbot):
    """The real main window (not shown on screen: QT_QPA_PLATFORM=offscreen)."""
    from semid_studio.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.close()  # cancels and waits for every job, closes the project


def wait_idle(qtbot, win, timeout: int = 60000) -> None:
    """Until no job runs and nothing is queued (debounced inputs, the tree's fetches)."""
    qtbot.waitUntil(lambda: win.is_idle() and not win.sid_tree.model.fetch_pending
                    and not win.playground._debounce.isActive(), timeout=timeout)


@pytest.fixture
def opened(qtbot, window, gui_project):
    """The window with ``gui_project`` open and its SID tree loaded."""
    assert window.open_project(gui_project), window.errors
    qtbot.waitUntil(lambda: window.context.inspection is not None, timeout=60000)
    wait_idle(qtbot, window)
    return window
