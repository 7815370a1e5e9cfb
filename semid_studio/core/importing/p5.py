"""P5 releases: ``sequential_data.txt`` (one line per user: user id then item ids) with the
``datamaps.json`` beside it that maps the numbers back to the dataset's own ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..events import NEVER, CancelToken, Progress, TaskGenerator
from .readers import Table, base_name, empty_file, read_text


_P5_HINT = ("give sequential_data.txt as the interactions file; a datamaps.json beside it, or given as the items "
            "file, maps its numbers back to the original user and item ids")


def load_datamaps(path: Path) -> dict:
    """A P5 ``datamaps.json`` (one JSON object: user2id, item2id, id2user, id2item, ...)."""
    text = read_text(path, None)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not valid JSON: {getattr(exc, 'msg', exc)}", file=str(path),
                         line=getattr(exc, "lineno", None)) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with id2item / id2user maps (a P5 datamaps.json)", file=str(path))
    for forward, backward in (("id2item", "item2id"), ("id2user", "user2id")):
        if not isinstance(data.get(forward), dict) and isinstance(data.get(backward), dict):
            data[forward] = {str(v): k for k, v in data[backward].items()}  # only the inverse was shipped
    if not isinstance(data.get("id2item"), dict):
        raise InputError("a P5 datamaps.json needs an 'id2item' (or 'item2id') object", file=str(path),
                         field="id2item")
    return data


def read_p5_datamaps(path: Path, kind: str | None) -> Table:
    """A P5 ``datamaps.json`` as an items file: the original item ids, in P5's number order, no text."""
    if kind in ("interactions", "queries"):
        raise InputError(f"this is a P5 datamaps.json (maps between the original user / item ids and P5's "
                         f"numbers); it holds no {kind}", file=str(path), hint=_P5_HINT)
    id2item = load_datamaps(path)["id2item"]
    numbers = sorted(id2item, key=lambda k: (not str(k).isdigit(), int(k) if str(k).isdigit() else 0, str(k)))
    frame = pd.DataFrame({"item_id": pd.Series([str(id2item[k]) for k in numbers], dtype=object)})
    lines = np.arange(1, len(numbers) + 1, dtype=np.int64)
    table = Table(path, frame, lines, "p5 datamaps", unit="record", from_text=False, header_line=None)
    table.notes.append(f"P5 datamaps.json: {len(numbers):,} item ids (id2item); they have no text")
    return table


def beside_datamaps(path: Path) -> Path | None:
    """The ``datamaps.json`` of a sequential file: ``datamaps.json`` or ``<prefix>datamaps.json``
    (``p5_sequential_data.txt`` -> ``p5_datamaps.json``) in the same folder, possibly compressed."""
    prefix = base_name(path).split("sequential", 1)[0]
    for stem in dict.fromkeys([f"{prefix}datamaps.json", "datamaps.json"]):
        for suffix in ("", ".gz", ".bz2", ".xz"):
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def read_p5(path: Path, encoding: str | None, *, kind: str | None = None, datamaps: str | Path | None = None,
            limit: int | None = None, cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    """P5 / S3-Rec ``sequential_data.txt``: ``user item item ...`` per line, in time order.

    One interaction per item; its timestamp is its position in the line (0, 1, 2, ...): the file
    has no times, only the order. With a ``datamaps.json`` (given, or beside the file) the
    numbers become the original user and item ids.
    """
    if kind in ("items", "queries"):
        raise InputError(f"this is a P5 sequential file ('user item item ...' per line: interactions), not "
                         f"{kind}", file=str(path),
                         hint="give it as the interactions file, and the catalogue is built from its item "
                              "ids; or give datamaps.json as the items file")
    datamaps_path = Path(datamaps) if datamaps is not None else beside_datamaps(path)
    maps = load_datamaps(datamaps_path) if datamaps_path is not None else None
    text = read_text(path, encoding, max_lines=None if limit is None else limit + 1)
    users: list[str] = []
    items: list[str] = []
    positions: list[int] = []
    lines: list[int] = []
    stage = f"reading {path.name}"
    raw_lines = text.split("\n")
    for number, raw in enumerate(raw_lines, start=1):
        parts = raw.split()
        if not parts:
            continue
        bad = next((p for p in parts if not p.isdigit()), None)
        if bad is not None:
            raise InputError(f"'{bad[:40]}' is not a number; P5 sequential lines are 'user item item ...' "
                             "(whitespace-separated numbers)", file=str(path), line=number)
        if len(parts) < 2:
            raise InputError(f"user {parts[0]} has no items", file=str(path), line=number,
                             hint="each line is a user followed by the items in time order")
        users.extend([parts[0]] * (len(parts) - 1))
        items.extend(parts[1:])
        positions.extend(range(len(parts) - 1))
        lines.extend([number] * (len(parts) - 1))
        if number % 20_000 == 0:
            cancel.raise_if_cancelled()
            yield Progress(stage, number, len(raw_lines))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise empty_file(path)
    if limit is not None:
        del users[limit:], items[limit:], positions[limit:], lines[limit:]
    notes = ["P5 sequential file: the order within a line is time; the timestamps are the positions "
             "0, 1, 2, ... (the file has no times)"]
    if maps is not None:
        for what, key, values in (("item", "id2item", items), ("user", "id2user", users)):
            mapping = maps.get(key)
            if not isinstance(mapping, dict):
                notes.append(f"{datamaps_path.name} has no {key}: {what} ids stay P5's numbers")
                continue
            for pos, value in enumerate(values):
                original = mapping.get(value)
                if original is None:
                    raise InputError(f"{what} {value} is not in {datamaps_path.name} ({key})", file=str(path),
                                     line=lines[pos], field=f"{what}_id",
                                     hint="the datamaps.json belongs to another data set; give the right one")
                values[pos] = str(original)
        notes.append(f"user and item ids mapped back to the original ids with {datamaps_path.name}")
    else:
        notes.append("no datamaps.json beside the file: user and item ids are P5's numbers")
    frame = pd.DataFrame({"user_id": pd.Series(users, dtype=object), "item_id": pd.Series(items, dtype=object),
                          "timestamp": np.asarray(positions, dtype=np.int64)})
    table = Table(path, frame, np.asarray(lines, dtype=np.int64), "p5", from_text=False, header_line=None)
    table.notes.extend(notes)
    yield Progress(stage, len(raw_lines), len(raw_lines))
    return table
