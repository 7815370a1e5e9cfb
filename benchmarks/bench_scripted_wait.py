"""How fast the window's background work runs while a script waits, by way of waiting.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_scripted_wait.py [--seconds 3]

A job is started on the app's own TaskRunner (the one every panel uses) and the main thread
waits for it the way a script would: ``time.sleep`` (no events: the baseline for the worker),
``QTest.qWait``, a ``processEvents`` + ``time.sleep`` loop, and ``semid_studio.gui.scripting``.
Two jobs:

- **python**: a pure-Python loop (the share of a real job that needs the GIL: tokenising,
  batching, the training loop's bookkeeping); iterations per second are printed;
- **fit**: RQ-KMeans 3 x 64 on 3,000 clustered 384-d vectors (numpy / scikit-learn: much of
  it runs without the GIL); the seconds it takes are printed (capped at ``--cap`` seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from semid_studio.core import quantize as q  # noqa: E402
from semid_studio.core.events import drive  # noqa: E402
from semid_studio.gui import scripting  # noqa: E402
from semid_studio.gui.tasks import TaskRunner  # noqa: E402


def qwait_until(condition, timeout_s: float, step_ms: int = 20) -> None:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        QTest.qWait(step_ms)


def process_events_until(condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.01)


def sleep_until(condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)


def scripting_until(condition, timeout_s: float) -> None:
    try:
        scripting.wait_until(condition, int(timeout_s * 1000))
    except TimeoutError:
        pass


WAYS = {"time.sleep (no events)": sleep_until, "QTest.qWait(20) loop": qwait_until,
        "QTest.qWait(500) loop": lambda c, t: qwait_until(c, t, 500),
        "processEvents + sleep": process_events_until, "scripting.wait_until": scripting_until}


def python_rate(runner: TaskRunner, wait, seconds: float) -> float:
    count = [0]

    def spin(cancel):
        while not cancel.cancelled:
            sum(range(1000))
            count[0] += 1

    job = runner.submit("spin", spin)
    t0 = time.perf_counter()
    wait(lambda: False, seconds)
    rate = count[0] / (time.perf_counter() - t0)
    job.cancel()
    scripting.wait_until(lambda: not runner.is_busy(), 10_000)
    return rate


def fit_seconds(runner: TaskRunner, wait, vectors: np.ndarray, cap: float) -> float | None:
    spec = q.make_spec("rq-kmeans", None, {"levels": 3, "codebook_size": 64})
    finished = threading.Event()  # set by the worker itself: time.sleep handles no Qt events

    def fit(cancel):
        drive(q.fit_quantizer(vectors, spec, cancel))
        finished.set()

    job = runner.submit("fit", fit)
    t0 = time.perf_counter()
    wait(finished.is_set, cap)
    took = time.perf_counter() - t0
    if not finished.is_set():
        job.cancel()
        scripting.wait_until(lambda: not runner.is_busy(), 600_000)
        return None
    scripting.wait_until(lambda: not runner.is_busy(), 60_000)  # the runner hears of the end by an event
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="how long each wait of the python job runs")
    ap.add_argument("--cap", type=float, default=60.0, help="give up on the fit job after this many seconds")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 (the event loop the waits run)
    runner = TaskRunner()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 60, 3000)] + 0.3 * rng.normal(size=(3000, 384)).astype(np.float32)
    print(f"{'waiting with':26s} {'python job (it/s)':>18s} {'fit job (s)':>12s}")
    for name, wait in WAYS.items():
        rate = python_rate(runner, wait, args.seconds)
        took = fit_seconds(runner, wait, vectors, args.cap)
        took_text = f"{took:.1f}" if took is not None else f"> {args.cap:.0f}"
        print(f"{name:26s} {rate:18,.0f} {took_text:>12s}", flush=True)


if __name__ == "__main__":
    main()
