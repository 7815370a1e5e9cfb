"""From a :class:`~.readers.Table` to store-ready rows, collecting every problem on the way.

``prepare_items`` / ``prepare_interactions`` / ``prepare_queries`` never write and never raise
for bad data: they return a :class:`Prepared` holding the rows to write and a list of
:class:`~semid_studio.core.errors.InputError` problems, one per kind of problem (the first
offending line, with the number of rows that share the problem). Unknown items are kept apart
(``Prepared.unknown``) because the user may choose to skip them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

import numpy as np
import pandas as pd

from .. import wording
from ..errors import InputError, UnknownItemsError
from ..field_kinds import detect_list_kind
from .columns import Resolved, resolve_columns
from .recbole import recbole_list
from .readers import Table
from .values import (
    clean_text,
    infer_text_column,
    is_missing,
    missing_mask,
    normalize_ids,
    parse_numbers,
    parse_timestamps,
    plain,
)

_SPLITS = {"train": "train", "training": "train", "trn": "train", "validation": "validation",
           "valid": "validation", "val": "validation", "dev": "validation", "test": "test",
           "testing": "test", "tst": "test"}
_RESERVED = ("idx", "item_id", "title")
_TIMESTAMP_HINT = "expected unix seconds or milliseconds, or a date such as 2010-12-01 08:26:00"


@dataclass
class Prepared:
    """One file, read and checked: what would be written, and what is wrong."""

    kind: str
    table: Table
    resolved: Resolved
    problems: list[InputError]
    unknown: UnknownItemsError | None = None
    records: list[dict] | None = None  # items, for ProjectStore.add_items
    frame: pd.DataFrame | None = None  # interactions / queries, for add_interactions / add_queries
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    ids: np.ndarray | None = None  # items: every row's id (also when there are problems)
    derived: bool = False  # items made from an interactions file's item ids (no items file)
    field_kinds: dict[str, str] = field(default_factory=dict)  # items: list field -> path / set
    unknown_ids: list[str] = field(default_factory=list)  # a few item ids not in the catalogue (also when skipped)

    @property
    def mapping(self) -> dict[str, str]:
        return self.resolved.mapping

    @property
    def n_rows(self) -> int:
        return len(self.records) if self.derived else len(self.table)

    @property
    def n_ready(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.frame is None else len(self.frame)


def _where(table: Table, row: int) -> str:
    return f"{'line' if table.unit == 'line' else table.unit} {int(table.lines[row])}"


def _problem(table: Table, mask: np.ndarray, field_: str, message: Callable[[int], str],
             hint: str | None = None) -> InputError:
    """An error at the first row of ``mask``, with the number of rows that have the problem."""
    rows = np.flatnonzero(mask)
    first = int(rows[0])
    text = message(first)
    if len(rows) > 1:
        text += f" ({len(rows)} rows like this)"
    return table.error(first, text, field=field_, hint=hint)


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ids(table: Table, column: str) -> tuple[np.ndarray, bool]:
    from_text = table.from_text and table.column_types.get(column, "str") == "str"
    return normalize_ids(table.frame[column], from_text=from_text)


def _float_note(column: str) -> str:
    return f"ids in '{column}' are written as floats (e.g. '17850.0'); they are read as integers ('17850')"


# --------------------------------------------------------------------------- items


def prepare_items(table: Table, explicit: dict[str, str] | None, *,
                  existing: Collection[str] | None = None) -> Prepared:
    """Check an items file; ``existing``: ids already in the project (they may not come again)."""
    if not explicit and len(table.columns) == 1:
        explicit = {"item_id": table.columns[0]}  # a file of ids only: its one column is the id, whatever its name
    res = resolve_columns("items", table.columns, explicit, file=table.name, line=table.header_line)
    prep = Prepared("items", table, res, list(res.problems))
    if "item_id" not in res.mapping:
        return prep
    id_col = res.mapping["item_id"]
    ids, floated = _ids(table, id_col)
    prep.ids = ids
    if floated:
        prep.notes.append(_float_note(id_col))
    series = pd.Series(ids, dtype=object)
    missing = series.isna().to_numpy()
    if missing.any():
        prep.problems.append(_problem(table, missing, id_col, lambda r: "empty item id",
                                      hint="every item needs an id"))
    dup = series.duplicated(keep="first").to_numpy() & ~missing
    if dup.any():
        n_ids = series[dup].nunique()

        def duplicate(row: int) -> str:
            first = int(np.flatnonzero((series == ids[row]).to_numpy())[0])
            more = f"; {n_ids} ids appear more than once" if n_ids > 1 else ""
            return f"duplicate item id '{ids[row]}' (first on {_where(table, first)}){more}"

        prep.problems.append(_problem(table, dup, id_col, duplicate,
                                      hint="item ids must be unique; remove or merge the repeated rows"))
    if existing:
        known = series.isin(existing).to_numpy() & ~missing
        if known.any():
            prep.problems.append(_problem(
                table, known, id_col, lambda r: f"item id '{ids[r]}' is already in the project",
                hint="items can only be added to a project: import the new items only"))

    title_col = res.mapping.get("title")
    if title_col is None:
        titles: list = [None] * len(table)
        prep.notes.append(f"no title column (columns: {', '.join(table.columns)}); items get no title "
                          f"({wording.hint('map_title')})")
    else:
        titles = [clean_text(v) for v in table.frame[title_col].tolist()]
        if sum(t is None for t in titles) == len(titles):
            prep.notes.append(f"the title column '{title_col}' is empty in every row")

    used = set(res.mapping.values())
    names: dict[str, str] = {}
    for column in table.columns:
        if column in used:
            continue
        name = res.renames.get(column, column)
        if name in _RESERVED:
            prep.notes.append(f"column '{column}' is stored as attribute '{name}_column' "
                              f"('{name}' is the project's own field)")
            name = f"{name}_column"
        if name in names.values():
            other = next(c for c, n in names.items() if n == name)
            prep.problems.append(table.error(None, f"columns '{other}' and '{column}' would both become "
                                                   f"attribute '{name}'", field=column))
            continue
        names[column] = name
    attrs = {names[c]: _attribute_values(table, c) for c in names}
    if prep.problems:
        return prep
    keys = list(attrs)
    columns = [attrs[k] for k in keys]
    prep.records = [
        {"item_id": item_id, "title": title, **dict(zip(keys, values))}
        for item_id, title, *values in zip(ids, titles, *columns)
    ]
    return prep


def items_from_interactions(table: Table, explicit: dict[str, str] | None) -> Prepared | None:
    """The catalogue of an interactions-only import: one item per distinct item id (first-seen
    order), with no title or other text. None when the item id column cannot be found (the
    interactions check reports that)."""
    res = resolve_columns("interactions", table.columns, explicit, file=table.name, line=table.header_line)
    if "item_id" not in res.mapping:
        return None
    ids, _floated = _ids(table, res.mapping["item_id"])
    unique = pd.unique(pd.Series(ids, dtype=object).dropna())
    prep = Prepared("items", table, Resolved({"item_id": res.mapping["item_id"]}, {}, set(), []), [],
                    derived=True)
    prep.ids = np.asarray(unique, dtype=object)
    prep.records = [{"item_id": item_id, "title": None} for item_id in unique]
    prep.notes.append(f"no items file: {len(unique):,} items created from the interactions' item ids; "
                      "they have no text")
    return prep


def list_fields(records: list[dict]) -> list[str]:
    """The attributes that hold lists in at least one record (in first-seen order)."""
    names: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if isinstance(value, (list, tuple)) and key not in names:
                names[key] = None
    return list(names)


def decide_field_kinds(prep: Prepared, given: Mapping[str, str], known: Collection[str] = ()) -> dict[str, str]:
    """Path or set for every list attribute of an items file (``given`` first, else detected).

    Adds a note per list field saying how it is read, and a problem for a given field that the
    file does not have as a list (``known``: fields already in the project, which may be named).
    """
    if prep.records is None:
        return {}
    fields = list_fields(prep.records)
    kinds: dict[str, str] = {}
    for name in fields:
        if name in given:
            kinds[name] = given[name]
            prep.notes.append(f"'{name}' is read as a {given[name]} (as given, or as the project reads it)")
            continue
        kind, why = detect_list_kind(rec.get(name) for rec in prep.records)
        kinds[name] = kind
        other = "path" if kind == "set" else "set"
        what = ("a set of values: labels and purity count every value" if kind == "set"
                else "a path, level by level")
        prep.notes.append(f"'{name}' is read as {what} ({why}); {wording.hint('field_kind', name=name, other=other)}")
    scalar = [c for c in (prep.records[0] if prep.records else {}) if c not in fields]
    for name in given:
        if name in fields or name in known:
            continue
        if name in scalar:
            message = f"'{name}' holds single values, not lists: only list fields are paths or sets"
        else:
            message = (f"no list field '{name}' in this file; its list fields are {', '.join(fields) or 'none'}")
        prep.problems.append(prep.table.error(None, message, field=name))
    return kinds


def _attribute_values(table: Table, column: str) -> list:
    values = table.frame[column]
    kind = table.column_types.get(column)
    if kind == "list":
        return [recbole_list(v) for v in values.tolist()]
    if kind == "float_list":
        out = []
        for v in values.tolist():
            parts = recbole_list(v)
            try:
                out.append(None if parts is None else [float(p) for p in parts])
            except ValueError:
                out.append(parts)
        return out
    if kind == "float":
        nums, bad, missing = parse_numbers(values)
        raw = values.tolist()
        return [None if m else (raw[i] if b else float(nums[i])) for i, (b, m) in enumerate(zip(bad, missing))]
    if kind == "str":
        return [None if is_missing(v) else str(v).strip() for v in values.tolist()]
    if table.from_text:
        return infer_text_column(values)
    return [plain(v) for v in values.tolist()]


# --------------------------------------------------------------------------- links to items


def _link_items(prep: Prepared, item_col: str, items: np.ndarray, catalogue: Mapping[str, int] | None,
                skip: bool, drop: np.ndarray) -> np.ndarray | None:
    """Item ids -> idx via the catalogue; unknown ids become an UnknownItemsError or are skipped."""
    if catalogue is None:
        return None
    table = prep.table
    idx = pd.Series(items, dtype=object).map(catalogue)
    unknown = idx.isna().to_numpy() & ~pd.isna(items)
    if unknown.any():
        rows = np.flatnonzero(unknown)
        distinct = list(dict.fromkeys(items[rows].tolist()))
        prep.unknown_ids = distinct[:5]
        if skip:
            drop |= unknown
            prep.skipped["unknown item"] = int(unknown.sum())
        else:
            prep.unknown = UnknownItemsError(
                file=table.name, field=item_col, n_rows=len(table), n_unknown_rows=len(rows),
                n_unknown_ids=len(distinct), examples=distinct[:5],
                first_line=int(table.lines[rows[0]]) if table.unit == "line" else None)
    return idx.to_numpy(dtype=float, na_value=np.nan)


def _missing_ids(prep: Prepared, ids: np.ndarray, column: str, what: str, skip: bool, drop: np.ndarray) -> None:
    missing = pd.isna(ids)
    if not missing.any():
        return
    if skip:
        drop |= missing
        prep.skipped[f"no {what}"] = int(missing.sum())
    else:
        prep.problems.append(_problem(prep.table, missing, column, lambda r: f"empty {what}", hint=wording.hint("skip_unknown")))


def _timestamps(prep: Prepared, column: str, keep: np.ndarray, *, required: bool) -> np.ndarray:
    table = prep.table
    values = table.frame[column]
    secs, bad, units = parse_timestamps(values)
    if not required:
        bad &= ~missing_mask(values)
    bad &= keep
    if bad.any():
        raw = values.tolist()
        prep.problems.append(_problem(
            table, bad, column,
            lambda r: "missing timestamp" if is_missing(raw[r]) else f"cannot read timestamp '{_shown(raw[r])}'",
            hint=_TIMESTAMP_HINT))
    for unit in ("milliseconds", "microseconds", "nanoseconds"):
        if unit in units:
            prep.notes.append(f"'{column}': numbers of that size are unix {unit}; converted to seconds")
    return secs


def _ignored(prep: Prepared) -> None:
    used = set(prep.mapping.values())
    prep.ignored = [c for c in prep.table.columns if c not in used]
    if prep.ignored:
        prep.notes.append(f"columns not imported: {', '.join(prep.ignored)}")


# --------------------------------------------------------------------------- interactions


def prepare_interactions(table: Table, explicit: dict[str, str] | None, *,
                         catalogue: Mapping[str, int] | None, on_unknown: str = "abort") -> Prepared:
    """Check an interactions file; ``catalogue`` maps item id -> idx (None: do not check items)."""
    res = resolve_columns("interactions", table.columns, explicit, file=table.name, line=table.header_line)
    prep = Prepared("interactions", table, res, list(res.problems))
    if any(t not in res.mapping for t in ("user_id", "item_id", "timestamp")):
        return prep
    _ignored(prep)
    skip = on_unknown == "skip"
    n = len(table)
    drop = np.zeros(n, dtype=bool)
    user_col, item_col = res.mapping["user_id"], res.mapping["item_id"]
    users, floated_u = _ids(table, user_col)
    items, floated_i = _ids(table, item_col)
    for floated, col in ((floated_u, user_col), (floated_i, item_col)):
        if floated:
            prep.notes.append(_float_note(col))
    _missing_ids(prep, users, user_col, "user id", skip, drop)
    _missing_ids(prep, items, item_col, "item id", skip, drop)
    idx = _link_items(prep, item_col, items, catalogue, skip, drop)
    keep = ~drop
    ts = _timestamps(prep, res.mapping["timestamp"], keep, required=True)
    rating = None
    if "rating" in res.mapping:
        col = res.mapping["rating"]
        rating, bad, _missing = parse_numbers(table.frame[col])
        bad &= keep
        if bad.any():
            raw = table.frame[col].tolist()
            prep.problems.append(_problem(table, bad, col, lambda r: f"rating '{_shown(raw[r])}' is not a number"))
    if prep.skipped:
        prep.notes.append("skipped " + ", ".join(f"{v} rows with {k}" for k, v in prep.skipped.items()))
    if prep.problems or prep.unknown is not None:
        return prep
    data = {"user_id": users[keep], "ts": ts[keep]}
    if idx is not None:
        data["item_idx"] = idx[keep].astype(np.int64)
    else:
        data["item_id"] = items[keep]
    if rating is not None:
        data["rating"] = rating[keep]
    prep.frame = pd.DataFrame(data)
    return prep


# --------------------------------------------------------------------------- queries


def prepare_queries(table: Table, explicit: dict[str, str] | None, *,
                    catalogue: Mapping[str, int] | None, on_unknown: str = "abort") -> Prepared:
    """Check a queries file (query text -> the item it should find)."""
    res = resolve_columns("queries", table.columns, explicit, file=table.name, line=table.header_line)
    prep = Prepared("queries", table, res, list(res.problems))
    if any(t not in res.mapping for t in ("text", "item_id")):
        return prep
    _ignored(prep)
    skip = on_unknown == "skip"
    n = len(table)
    drop = np.zeros(n, dtype=bool)
    text_col, item_col = res.mapping["text"], res.mapping["item_id"]
    texts = np.array([clean_text(v) for v in table.frame[text_col].tolist()], dtype=object)
    empty = pd.isna(texts)
    if empty.any():
        prep.problems.append(_problem(table, empty, text_col, lambda r: "empty query text"))
    items, floated = _ids(table, item_col)
    if floated:
        prep.notes.append(_float_note(item_col))
    _missing_ids(prep, items, item_col, "item id", skip, drop)
    idx = _link_items(prep, item_col, items, catalogue, skip, drop)
    keep = ~drop
    data: dict[str, Any] = {"text": texts}
    if idx is not None:
        data["item_idx"] = idx
    else:
        data["item_id"] = items
    if "split" in res.mapping:
        col = res.mapping["split"]
        raw = table.frame[col].tolist()
        splits = np.array([None if is_missing(v) else _SPLITS.get(str(v).strip().lower(), "?") for v in raw],
                          dtype=object)
        bad = (splits == "?") & keep
        if bad.any():
            prep.problems.append(_problem(table, bad, col, lambda r: f"unknown split '{_shown(raw[r])}'",
                                          hint="use train, validation or test"))
        data["split"] = np.where(pd.isna(splits), "train", splits)
    else:
        data["split"] = np.full(n, "train", dtype=object)
    for target in ("query_id", "user_id"):
        if target in res.mapping:
            data[target] = _ids(table, res.mapping[target])[0]
    if "timestamp" in res.mapping:
        secs = _timestamps(prep, res.mapping["timestamp"], keep, required=False)
        data["ts"] = np.where(np.isnan(secs), None, secs)
    if prep.skipped:
        prep.notes.append("skipped " + ", ".join(f"{v} rows with {k}" for k, v in prep.skipped.items()))
    if prep.problems or prep.unknown is not None:
        return prep
    frame = pd.DataFrame(data).loc[keep].reset_index(drop=True)
    if "item_idx" in frame:
        frame["item_idx"] = frame["item_idx"].astype(np.int64)
    prep.frame = frame
    return prep
