"""``semid-studio [PROJECT] [--screenshot FILE]``: start the desktop app.

Without a project it opens the last project, or builds and opens the bundled sample project.
With ``--screenshot FILE`` it opens the project, waits until every background job is done,
saves a PNG of the main window and exits (for documentation and checks); ``--view`` picks the
view shown and ``--size`` the window size.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

ORGANIZATION = "SemID Studio"
APPLICATION = "SemID Studio"
#: the views --view can show (MainWindow.VIEWS; repeated so that --help does not import Qt)
VIEWS = ("catalogue", "tree", "training", "playground", "evaluation", "strategies", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semid-studio", description="SemID Studio: the desktop app.")
    parser.add_argument("project", nargs="?", help="a .semid project to open (default: the last one, else the sample)")
    parser.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window once idle, then exit")
    parser.add_argument("--view", choices=VIEWS, help="the view to show first")
    parser.add_argument("--size", default="1400x900", metavar="WxH", help="window size for --screenshot")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="with --screenshot: give up after this many seconds (default 600)")
    return parser


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"semid-studio: --size must look like 1400x900, got {text!r}") from None
    return w, h


def configure_threads() -> int:
    """Set torch's intra-op threads, leaving a core for the GUI thread; returns the old count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    return before


def settle_memory() -> None:
    """Collect once, then freeze what start-up imported (see ``context.freeze_long_lived``)."""
    import gc

    gc.collect()
    gc.freeze()


def install_excepthook(window_getter) -> None:
    """An exception that escapes a slot becomes a one-line message, not a dead window."""

    def hook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb)  # the developer's trace goes to stderr
        window = window_getter()
        if window is not None and issubclass(exc_type, Exception):
            from .main_window import describe_error

            window.show_error(describe_error(exc))

    sys.excepthook = hook


def platform_problem() -> str | None:
    """Why Qt could not open a window here (missing system packages, no display), or None."""
    from . import system_libs

    if not system_libs.xcb_in_use():
        return None
    packages = system_libs.missing_packages()
    if packages:
        return system_libs.advice(packages)
    return system_libs.display_problem()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # checked before Qt loads: without it Qt aborts the process with a page of plugin advice
    problem = platform_problem()
    if problem:
        print(f"semid-studio: {problem}", file=sys.stderr)
        return 2
    threads_before = configure_threads()
    try:
        return _run(args)
    finally:
        # an in-process caller (a test, a notebook) gets its own thread count back
        import torch

        torch.set_num_threads(threads_before)


def _run(args) -> int:
    from PySide6.QtWidgets import QApplication

    from ..core.store import project

    project.CLIENT = "the SemID Studio app"  # named to a 'semid' command that waits for its writes
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    from .main_window import MainWindow, wait_until_idle

    settle_memory()
    screenshot = Path(args.screenshot).expanduser() if args.screenshot else None
    window = MainWindow(persist=screenshot is None)
    install_excepthook(lambda: window)
    if screenshot is not None:
        window.resize(*_parse_size(args.size))
    if args.view:
        window.show_view(args.view)
    window.show()
    if args.project and not Path(args.project).expanduser().exists():
        print(f"semid-studio: {args.project}: no such project file", file=sys.stderr)
        if screenshot is not None:
            return 2
    window.start(args.project)
    if screenshot is None:
        return app.exec()

    outcome = {"code": 1}

    from PySide6.QtCore import QTimer

    # the give-up timer must die with this run: left pending, it would close the window and quit
    # the application minutes later (in a test process, in the middle of another test)
    give_up_timer = QTimer()
    give_up_timer.setSingleShot(True)

    def take() -> None:
        give_up_timer.stop()
        app.processEvents()
        if not window.context.is_open:
            print(f"semid-studio: no project could be opened: {'; '.join(window.errors) or 'unknown error'}",
                  file=sys.stderr)
        elif window.grab().save(str(screenshot), "PNG"):
            outcome["code"] = 0
            print(f"saved {screenshot}")
        else:
            print(f"semid-studio: cannot write {screenshot}", file=sys.stderr)
        window.close()
        app.quit()

    idle_poll = wait_until_idle(window, take)

    def give_up() -> None:
        idle_poll.stop()  # no late screenshot after giving up
        print(f"semid-studio: still busy after {args.timeout:.0f} s; no screenshot", file=sys.stderr)
        window.close()
        app.quit()

    give_up_timer.timeout.connect(give_up)
    give_up_timer.start(int(args.timeout * 1000))
    app.exec()
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())
