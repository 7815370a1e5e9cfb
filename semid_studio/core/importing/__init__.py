"""Importing catalogues, interactions, search queries and precomputed embeddings into a project.

Three kinds of file, each with its *targets* (see :data:`TARGETS`):

- **items** (the catalogue): ``item_id`` (required), ``title`` (recommended); every other column
  is kept as an item attribute (lists stay lists).
- **interactions**: ``user_id``, ``item_id``, ``timestamp`` (required), ``rating`` (optional).
- **queries**: ``text`` (the query) and ``item_id`` (required); ``split`` (train / validation /
  test, default train), ``query_id``, ``user_id``, ``timestamp`` (optional).

Files: CSV / TSV (or any delimiter), JSON Lines (or one JSON array), Parquet, each possibly
gzip / bz2 / xz compressed, plus the named formats MovieLens and Amazon reviews and RecBole
atomic files (:mod:`.formats`). Columns are found by their usual names (:mod:`.columns`) or by
an explicit mapping; values are read by the rules in :mod:`.values` (ids are always text;
timestamps become float unix seconds).

Everything is read and checked before anything is written, and the writes of one call happen
in one ``store.atomic()`` block: a bad row anywhere, an error or a cancel leaves the project as
it was. Problems are :class:`~semid_studio.core.errors.InputError` naming the file, the line
(1-based as an editor shows it, header = line 1) and the field.

Public entry points:

- :func:`import_data` — the whole import, a task generator returning an :class:`ImportReport`.
- :func:`validate` — the same reading and checks, returning every problem, writing nothing.
- :func:`preview` — the head of one file with the detected mapping and its problems (the GUI's
  import wizard).
- :func:`import_embeddings` — precomputed item vectors (``.npy`` + ids, or Parquet).

The CLI's flat ``--map TARGET=COLUMN`` options can be passed as ``mapping`` unchanged; see
:func:`.columns.route_mapping` for how they are routed to the files of the call.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from ..errors import InputError, ProjectError, SemidError, UnknownItemsError
from ..events import NEVER, CancelToken, Message, Progress, TaskGenerator, drive
from ..field_kinds import META_KEY, detect_list_kind, parse_field_kinds, stored_field_kinds
from ..store import ProjectStore
from .checks import (
    Prepared,
    decide_field_kinds,
    items_from_interactions,
    list_fields,
    prepare_interactions,
    prepare_items,
    prepare_queries,
)
from .columns import KIND_SYNONYMS, KINDS, TARGETS, Target, canonical_target, route_mapping
from .embeddings import import_embeddings
from .formats import FORMATS, detect_reader, read_table
from .readers import Table

__all__ = [
    "FORMATS", "KINDS", "ON_UNKNOWN", "TARGETS", "FileReport", "ImportReport", "Preview", "Target",
    "detect_reader", "import_data", "import_embeddings", "preview", "read_queries", "read_table", "validate",
]

#: what to do with interactions / queries rows whose item is not in the catalogue (or that lack
#: a user or item id): ``abort`` raises UnknownItemsError / InputError, ``skip`` drops and counts them
ON_UNKNOWN = ("abort", "skip")
#: the reader named in the report for a catalogue built from the interactions' item ids
_DERIVED = "item ids of the interactions"
#: rows per write call (one progress event and one cancel check each)
_WRITE_CHUNK = 50_000


@dataclass
class FileReport:
    """What happened to one file."""

    kind: str
    path: str
    reader: str
    rows: int
    imported: int
    mapping: dict[str, str]
    ignored: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """The outcome of :func:`import_data` (``as_dict`` for ``--json``, ``summary`` for people)."""

    items_added: int = 0
    interactions_added: int = 0
    queries_added: int = 0
    users: int = 0  # distinct users in the interactions of this import
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> rows skipped
    files: list[FileReport] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # the project's counts afterwards
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = []
        for f in self.files:
            if f.reader == _DERIVED:  # an interactions-only import: say where the catalogue came from
                lines.append(f"items: {f.path}: no items file: {f.imported} items created from the interactions' "
                             "item ids; they have no text")
                continue
            line = f"{f.kind}: {f.path} ({f.reader}): {f.rows} rows -> {f.imported} imported"
            if f.skipped:
                line += " (skipped " + ", ".join(f"{n} with {why}" for why, n in f.skipped.items()) + ")"
            lines.append(line)
        added = (f"added {self.items_added} items, {self.interactions_added} interactions "
                 f"({self.users} users), {self.queries_added} queries in {self.elapsed_s:.1f} s")
        lines.append(added)
        if self.totals:
            lines.append("project now: " + ", ".join(f"{v} {k}" for k, v in self.totals.items()))
        return "\n".join(lines)


@dataclass
class Preview:
    """The head of one file as the import would see it (see :func:`preview`)."""

    path: str
    kind: str
    reader: str | None
    columns: list[str]
    mapping: dict[str, str]  # target -> column
    detected: list[str]  # targets found by name detection (the rest were given)
    ignored: list[str]  # columns that interactions / queries do not use
    rows: pd.DataFrame  # the first rows as read, columns as in the file
    normalized: pd.DataFrame | None  # the same rows as they would be imported (None if problems)
    problems: list[InputError]
    notes: list[str]
    #: items: list field -> path / set, as detected in these rows (the import decides on every row)
    field_kinds: dict[str, str] = field(default_factory=dict)

    @property
    def targets(self) -> tuple[Target, ...]:
        return TARGETS[self.kind]


# --------------------------------------------------------------------------- reading + checks


def _kind(name: str) -> str:
    kind = KIND_SYNONYMS.get(str(name).lower())
    if kind is None:
        raise SemidError(f"unknown kind '{name}'; use items, interactions or queries")
    return kind


def _prepare_all(
    store: ProjectStore | None,
    files: Mapping[str, str | Path | None],
    fmt: str,
    mapping: dict | None,
    encoding: str | None,
    on_unknown: str,
    cancel: CancelToken,
    field_kinds: Mapping[str, str] | None = None,
) -> TaskGenerator[list[Prepared]]:
    """Read every file and check it against the project; nothing is written."""
    given_kinds = parse_field_kinds(field_kinds)
    if on_unknown not in ON_UNKNOWN:
        raise SemidError(f"on_unknown must be one of {', '.join(ON_UNKNOWN)}, not '{on_unknown}'")
    if fmt not in FORMATS:
        raise SemidError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    given = {kind: Path(path) for kind, path in files.items() if path is not None}
    if not given:
        raise SemidError("nothing to import: give an items, interactions or queries file")
    tables: dict[str, Table] = {}
    for kind, path in given.items():
        cancel.raise_if_cancelled()
        # a P5 datamaps.json given as the items file also maps the sequential file's numbers back
        datamaps = given["items"] if kind == "interactions" and tables.get("items") is not None \
            and tables["items"].reader == "p5 datamaps" else None
        table = yield from read_table(path, fmt=fmt, encoding=encoding, kind=kind, datamaps=datamaps,
                                      cancel=cancel)
        yield Message(f"read {len(table)} rows from {path.name} ({table.reader})")
        tables[kind] = table
    _refuse_merged_files(given, tables)
    routed = route_mapping(mapping, {kind: t.columns for kind, t in tables.items()})

    existing = store.item_index() if store is not None else {}
    prepared: list[Prepared] = []
    catalogue: dict[str, int] | None = dict(existing) if store is not None else None
    if "items" in tables:
        yield Progress("checking", 0, len(tables))
        prep = prepare_items(tables["items"], routed["items"], existing=existing.keys())
        # a kind the project already stores for a field holds for its new items too, unless given
        stored = stored_field_kinds(store) if store is not None else {}
        prep.field_kinds = decide_field_kinds(prep, {**stored, **given_kinds},
                                              store.item_fields() if store is not None else ())
        prepared.append(prep)
        if prep.ids is not None:
            start = len(existing)
            catalogue = catalogue if catalogue is not None else {}
            for offset, item_id in enumerate(prep.ids):
                if item_id is not None:
                    catalogue.setdefault(item_id, start + offset)
    linked = [k for k in ("interactions", "queries") if k in tables]
    if "interactions" in tables and "items" not in tables and not existing:
        # interactions only (retail logs, P5 releases): the catalogue is their item ids, without text
        prep = items_from_interactions(tables["interactions"], routed["interactions"])
        if prep is not None:
            prepared.append(prep)
            catalogue = {item_id: offset for offset, item_id in enumerate(prep.ids)}
    if given_kinds and "items" not in tables:
        raise SemidError("field kinds (--field-kind) describe the list fields of an items file; give the items "
                         "file too (or set them on their own: semid import PROJECT --field-kind FIELD=KIND)")
    if linked and catalogue is not None and not catalogue:
        raise ProjectError(f"{store.path if store is not None else 'the project'}: the catalogue is empty; "
                           f"import items first (or give the items file in the same import)")
    for kind in linked:
        cancel.raise_if_cancelled()
        yield Progress("checking", len(prepared), len(tables))
        prepare = prepare_interactions if kind == "interactions" else prepare_queries
        prepared.append(prepare(tables[kind], routed[kind], catalogue=catalogue, on_unknown=on_unknown))
    yield Progress("checking", len(prepared), len(tables))
    for prep in prepared:
        if not prep.derived:
            prep.notes[:0] = prep.table.notes  # what the reader noticed (encoding, tags, ...) comes first
    return prepared


def _refuse_merged_files(given: Mapping[str, Path], tables: Mapping[str, Table]) -> None:
    """A file that a format already read into another table (MovieLens' tags.csv into the
    items) must not be imported a second time, e.g. as a query log."""
    for kind, table in tables.items():
        for merged in table.merged:
            for other_kind, path in given.items():
                if other_kind != kind and path.resolve() == merged.resolve():
                    raise InputError(f"is already read into the {kind} beside {table.path.name} (their "
                                     f"'{merged.stem}' field); it is not a file of {other_kind}",
                                     file=str(path), hint=f"leave it out of the {other_kind}")


def _problems(prepared: list[Prepared], on_unknown: str) -> list[InputError]:
    """Every problem, the ones that must be fixed in the files first, unknown items last."""
    hard = [problem for prep in prepared for problem in prep.problems]
    unknown = [prep.unknown for prep in prepared if prep.unknown is not None and on_unknown == "abort"]
    return hard + unknown


def _raise_first(problems: list[InputError]) -> None:
    if not problems:
        return
    first = problems[0]
    more = len(problems) - 1
    if more and not isinstance(first, UnknownItemsError):
        raise InputError(
            f"{first.message} (and {more} more problem{'s' if more > 1 else ''} in these files)",
            file=first.file, line=first.line, field=first.field, hint=first.hint,
        )
    raise first


def validate(
    store: ProjectStore | None = None,
    *,
    items: str | Path | None = None,
    interactions: str | Path | None = None,
    queries: str | Path | None = None,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    on_unknown: str = "abort",
    field_kinds: Mapping[str, str] | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[list[InputError]]:
    """Read and check files as :func:`import_data` would, and return every problem found.

    Parameters are those of :func:`import_data`; ``store`` may be None (then ids are not checked
    against a project, and interactions are checked against the items file when one is given).
    Nothing is written. Unknown items appear as an :class:`UnknownItemsError` unless
    ``on_unknown="skip"``.
    """
    prepared = yield from _prepare_all(store, {"items": items, "interactions": interactions, "queries": queries},
                                       format, mapping, encoding, on_unknown, cancel, field_kinds)
    for prep in prepared:
        for note in prep.notes:
            yield Message(f"{prep.table.path.name}: {note}")
    return _problems(prepared, on_unknown)


def read_queries(
    store: ProjectStore,
    path: str | Path,
    *,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    on_unknown: str = "skip",
    cancel: CancelToken = NEVER,
) -> TaskGenerator[Prepared]:
    """Read and check a queries file against the project's catalogue as :func:`import_data`
    would (same readers, formats, mapping, encoding and checks), writing nothing.

    For query logs scored from outside the project (:mod:`semid_studio.core.generative.joint.query_log`).
    Returns the checked file: ``frame`` (text, item_idx, split, ...), ``skipped`` (rows left out,
    with ``on_unknown="skip"``), ``unknown_ids`` (a few of the item ids not in the catalogue).

    Raises
    ------
    InputError
        The first problem in the file (file, line, field), as the import would.
    UnknownItemsError
        Unknown items with ``on_unknown="abort"``.
    """
    prepared = yield from _prepare_all(store, {"queries": path}, format, mapping, encoding, on_unknown, cancel)
    _raise_first(_problems(prepared, on_unknown))
    return prepared[0]


# --------------------------------------------------------------------------- import


def import_data(
    store: ProjectStore,
    *,
    items: str | Path | None = None,
    interactions: str | Path | None = None,
    queries: str | Path | None = None,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    on_unknown: str = "abort",
    field_kinds: Mapping[str, str] | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[ImportReport]:
    """Import items, interactions and/or queries into ``store``, all or nothing.

    Parameters
    ----------
    store
        The open project.
    items, interactions, queries
        Files to import (any may be None). Interactions and queries may reference items already
        in the project or in ``items``. Items are appended: their ids must be new.
    format
        ``auto`` (detect per file), ``csv``, ``tsv``, ``jsonl``, ``parquet``, ``movielens`` or
        ``amazon`` (see :mod:`.formats`).
    mapping
        Target -> column, flat (``{"item_id": "sku"}``, ``{"interactions.item_id": "product"}``)
        or per kind (``{"items": {...}, "interactions": {...}}``); see :mod:`.columns`.
    encoding
        Text encoding of the files (default UTF-8; the MovieLens format knows its own).
    on_unknown
        ``abort`` (default): rows naming items that are not in the catalogue raise
        :class:`UnknownItemsError` (with counts), rows without a user / item id an InputError.
        ``skip``: such rows are left out and counted in the report.
    field_kinds
        List field -> ``path`` or ``set`` (``{"genres": "set"}``, or ``["genres=set"]``); list
        fields not named are detected (:mod:`semid_studio.core.field_kinds`). Stored with the
        project: labels and purity read a set's values all at once, a path level by level.
    cancel
        Checked between reading steps and write chunks; a cancel rolls everything back.

    Returns
    -------
    ImportReport
        Counts per kind, skipped rows, per-file details and the project's totals afterwards.

    Raises
    ------
    InputError
        The first problem found (its message says how many more there are).
    UnknownItemsError
        Unknown items with ``on_unknown="abort"`` (only when the files have no other problem).
    """
    started = time.perf_counter()
    prepared = yield from _prepare_all(store, {"items": items, "interactions": interactions, "queries": queries},
                                       format, mapping, encoding, on_unknown, cancel, field_kinds)
    _raise_first(_problems(prepared, on_unknown))
    for prep in prepared:
        for note in prep.notes:
            level = "warning" if note.startswith(("no title", "skipped", "the title")) else "info"
            yield Message(f"{prep.table.path.name}: {note}", level=level)

    report = ImportReport()
    cancel.raise_if_cancelled()
    with store.atomic():
        for prep in prepared:
            added = yield from _write(store, prep, cancel)
            if prep.kind == "items":
                report.items_added = added
                if prep.field_kinds:
                    store.set_meta(META_KEY, {**stored_field_kinds(store), **prep.field_kinds})
            elif prep.kind == "interactions":
                report.interactions_added = added
                report.users = int(prep.frame["user_id"].nunique())
            else:
                report.queries_added = added
            skipped = sum(prep.skipped.values())
            if skipped:
                report.skipped[prep.kind] = skipped
            reader = _DERIVED if prep.derived else prep.table.reader
            report.files.append(FileReport(prep.kind, prep.table.name, reader, prep.n_rows, added,
                                           dict(prep.mapping), list(prep.ignored), dict(prep.skipped),
                                           list(prep.notes)))
        cancel.raise_if_cancelled()
    report.totals = {
        "items": store.item_count(),
        "interactions": store.interaction_count(),
        "users": store.db.execute("SELECT count(DISTINCT user_id) FROM interactions").fetchone()[0],
        "queries": store.query_count(),
    }
    report.elapsed_s = round(time.perf_counter() - started, 3)
    yield Message(report.summary().splitlines()[-2])
    return report


def _write(store: ProjectStore, prep: Prepared, cancel: CancelToken) -> TaskGenerator[int]:
    stage = f"writing {prep.kind}"
    total = prep.n_ready
    if prep.kind == "items":
        expected = store.item_count()
        with store.bulk_load("items", total):
            for start in range(0, total, _WRITE_CHUNK):
                cancel.raise_if_cancelled()
                first = store.add_items(prep.records[start : start + _WRITE_CHUNK])
                if first != expected + start:  # interactions were linked to these idx values
                    raise ProjectError(f"{store.path}: the catalogue changed during the import; try again")
                yield Progress(stage, min(start + _WRITE_CHUNK, total), total)
        return total
    add = store.add_interactions if prep.kind == "interactions" else store.add_queries
    with store.bulk_load("interactions" if prep.kind == "interactions" else "queries", total):
        for start in range(0, total, _WRITE_CHUNK):
            cancel.raise_if_cancelled()
            add(prep.frame.iloc[start : start + _WRITE_CHUNK])
            yield Progress(stage, min(start + _WRITE_CHUNK, total), total)
    return total


# --------------------------------------------------------------------------- preview


def preview(
    path: str | Path,
    kind: str,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    n: int = 20,
    store: ProjectStore | None = None,
) -> Preview:
    """Read the first ``n`` rows of one file and say how it would be imported; writes nothing.

    Parameters
    ----------
    path, kind
        The file and what it holds (``items``, ``interactions`` or ``queries``).
    format, mapping, encoding
        As for :func:`import_data`; ``mapping`` may be flat or per kind (entries for other kinds
        are ignored).
    n
        Rows to read.
    store
        When given, item ids of an items file are checked against the project.

    Returns
    -------
    Preview
        Detected reader, columns, mapping (target -> column), the raw head, the head as it would
        be imported, and the problems found in it (reading problems included: this function does
        not raise for bad files). Unknown items are not checked here (items of the same import
        are not known yet); :func:`validate` checks them.
    """
    kind = _kind(kind)
    path = Path(path)
    try:
        table = drive(read_table(path, fmt=format, encoding=encoding, limit=max(1, n), kind=kind))
        explicit = route_mapping(_mapping_for(kind, mapping), {kind: table.columns})[kind]
    except InputError as exc:
        return Preview(str(path), kind, None, [], {}, [], [], pd.DataFrame(), None, [exc], [])
    kinds: dict[str, str] = {}
    if kind == "items":
        prep = prepare_items(table, explicit, existing=store.item_index().keys() if store is not None else None)
        normalized = None if prep.records is None else pd.DataFrame.from_records(prep.records)
        for name in list_fields(prep.records or []):
            kinds[name] = detect_list_kind(rec.get(name) for rec in prep.records)[0]
    else:
        prepare = prepare_interactions if kind == "interactions" else prepare_queries
        prep = prepare(table, explicit, catalogue=None, on_unknown="abort")
        normalized = prep.frame
    return Preview(str(path), kind, table.reader, table.columns, dict(prep.mapping),
                   sorted(prep.resolved.detected), list(prep.ignored), table.frame, normalized,
                   list(prep.problems), list(table.notes) + list(prep.notes), kinds)


def _mapping_for(kind: str, mapping: dict | None) -> dict | None:
    """The part of a flat or per-kind mapping that concerns one kind."""
    if not mapping:
        return None
    out: dict = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            if KIND_SYNONYMS.get(str(key).lower()) == kind:
                out.update(value)
            continue
        prefix, dot, rest = str(key).partition(".")
        if dot and prefix.lower() in KIND_SYNONYMS:
            if KIND_SYNONYMS[prefix.lower()] == kind:
                out[rest] = value
            continue
        targets = {t.name for t in TARGETS[kind]}
        target = canonical_target(str(key))
        elsewhere = any(target in {t.name for t in TARGETS[k]} for k in KINDS if k != kind)
        if target in targets or (kind == "items" and not elsewhere):
            out[target] = value
    return out
