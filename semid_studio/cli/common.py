"""Helpers shared by the CLI command modules: opening projects, running tasks, printing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from ..core.events import Event, Message, Metric, Progress, TaskGenerator, drive
from ..core.store import ProjectStore
from ..core.store.encoding import json_default

T = TypeVar("T")


def open_store(path: str, *, read_only: bool = False) -> ProjectStore:
    """Open a project; says on stderr when it recovers a crashed run's writes or waits for
    another process's write."""
    store = ProjectStore.open(Path(path), read_only=read_only)
    store.on_wait = lambda text: print(text, file=sys.stderr, flush=True)
    if store.recovered:
        print(f"{path}: was not closed cleanly (a crash or kill); recovered its last commits from the -wal file",
              file=sys.stderr)
    return store


def run_task(gen: TaskGenerator[T], *, quiet: bool = False) -> T:
    """Drive a core task with tqdm progress bars on stderr (one bar per stage).

    ``quiet`` (used with --json) keeps stderr for warnings only, so stdout stays machine-readable.
    """
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, Progress):
            if quiet:
                return
            bar = bars.get(event.stage)
            if bar is None:
                bar = bars[event.stage] = tqdm(total=event.total, desc=event.stage, file=sys.stderr, disable=None,
                                               leave=False, dynamic_ncols=True)
            if event.total is not None and bar.total != event.total:
                bar.total = event.total
            bar.n = event.done
            if event.message:
                bar.set_postfix_str(event.message, refresh=False)
            bar.refresh()
        elif isinstance(event, Message):
            if not quiet or event.level in ("warning", "error"):
                _clear(bars)
                print(("warning: " if event.level == "warning" else "") + event.text, file=sys.stderr)
        elif isinstance(event, Metric):
            if not quiet and event.split not in ("train", "running"):  # loss curves: too many to print
                _clear(bars)
                print(f"  {event.split} {event.name} = {event.value:.4f} (step {event.step})", file=sys.stderr)

    try:
        return drive(gen, on_event)
    finally:
        _clear(bars)


def _clear(bars: dict) -> None:
    for bar in bars.values():
        bar.close()
    bars.clear()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=json_default))


def parse_key_values(pairs: list[str] | None, option: str) -> dict[str, str]:
    """``["title=name", "item_id=sku"]`` -> dict; errors name the bad pair."""
    from ..core.errors import SemidError

    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise SemidError(f"{option} expects TARGET=COLUMN, got '{pair}'")
        out[key.strip()] = value.strip()
    return out
