"""Which reader a file needs, and the named formats: MovieLens, Amazon reviews, RecBole atomic files.

A named format turns its files into a :class:`~.readers.Table` whose columns already carry the
project's target names (``item_id``, ``title``, ``user_id``, ``timestamp``, ``rating``) and
whose values are typed (genres as lists, years as ints), with the line of every row in the
original file. Everything after reading (mapping, checks, writing) is the same generic path.

Format selection (``read_table``'s ``fmt``):

- ``csv`` / ``tsv`` / ``jsonl`` / ``parquet`` force that reader.
- ``movielens``: ml-100k (``u.item`` pipe-separated with 19 genre flags, ``u.data`` tab-separated
  ``user item rating timestamp``), ml-1m (``movies.dat`` / ``ratings.dat``, ``::``-separated),
  ml-latest(-small) (``movies.csv`` with ``tags.csv`` beside it aggregated into a ``tags`` list;
  ``ratings.csv`` is a plain CSV), and RecBole's ``ml-100k.item`` / ``.inter``. Variants are told
  apart by file name and content. 100k / 1m files are Latin-1 in the GroupLens originals; they
  are read as UTF-8 when they are valid UTF-8 (re-encoded copies exist) and as Latin-1
  otherwise, unless an encoding is given. A file that is no MovieLens file (a queries file of the
  same call) is read as with ``auto``.
- ``amazon``: JSON lines of the McAuley-lab dumps. Reviews: 2014 / 2018 (``reviewerID``,
  ``asin``, ``unixReviewTime``, ``overall``) and 2023 (``user_id``, ``parent_asin``, ``timestamp``
  in ms, ``rating``); review text is not imported. Metadata: 2014 (one Python dict literal per
  line, parsed with ``ast.literal_eval``, never ``eval``; ``categories`` keeps the first category
  path), 2018 (``category`` list, ``price`` text such as ``$12.99``) and 2023 (``parent_asin``,
  ``store`` -> ``brand``, ``categories``, ``features``, ``description``). Price becomes a float,
  the sales rank an int with its category.
- ``auto``: Parquet by extension or magic bytes; MovieLens by the unambiguous names (``u.item``,
  ``u.data``, ``*.dat`` with ``::``) and the ml-latest ``movies.csv`` header; Amazon dumps by
  their keys (a Python-literal line, or ``asin`` with Amazon-only keys such as ``reviewerID``,
  ``salesRank``, ``imUrl``); RecBole files by extension (``.inter``, ``.item``, ``.user``) or
  typed header (``item_id:token``); JSON by extension or a first character ``{`` / ``[``;
  delimited text by extension (``.csv``, ``.tsv``) when the header holds that separator, else
  the separator most used in the header (tab, comma, pipe, semicolon). Compression (gzip, bz2, xz) is recognised by content.

RecBole atomic files have typed headers (``item_id:token``, ``class:token_seq``): the type
suffix is dropped from the column name, ``token`` columns stay text, ``float`` columns become
numbers and ``token_seq`` columns become lists (split on spaces, or a quoted list
``'Beauty', 'Makeup'`` as some Amazon conversions write it). A ``token_seq`` column that is
used as a title or query text stays one string.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, SemidError
from ..events import NEVER, CancelToken, Progress, TaskGenerator
from .readers import (
    Table,
    base_name,
    decode,
    empty_file,
    head_lines,
    read_bytes,
    read_delimited,
    read_json_records,
    read_jsonl,
    read_parquet,
    read_text,
    records_frame,
    sniff_separator,
)
from .values import is_missing, parse_price, plain

FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "movielens", "amazon", "p5")

#: the 19 genres of ml-100k, in flag order (used when u.genre is not beside u.item)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
_RATINGS_NAMES = ["user_id", "item_id", "rating", "timestamp"]
_RECBOLE_EXT = (".inter", ".item", ".user")
_RECBOLE_FIELD = re.compile(r"^[^:\s]+:(token|token_seq|float|float_seq)$")
_RECBOLE_TYPES = {"token": "str", "float": "float", "token_seq": "list", "float_seq": "float_list"}
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
_INT_LINE = re.compile(r"\d+(?:[ \t]+\d+)+")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
_DATAMAPS_KEYS = ('"user2id"', '"item2id"', '"id2user"', '"id2item"')
_HEADERLESS = {3: ["user_id", "item_id", "timestamp"], 4: ["user_id", "item_id", "rating", "timestamp"]}
_AMAZON_KEYS = {"reviewerID", "unixReviewTime", "reviewTime", "salesRank", "imUrl", "related", "main_cat",
                "also_buy", "also_view", "rank", "store", "rating_number", "main_category", "helpful_vote",
                "verified_purchase", "overall"}


# --------------------------------------------------------------------------- detection


def detect_reader(path: Path, fmt: str = "auto", kind: str | None = None) -> tuple[str, str | None]:
    """``(reader, separator)`` for a file: see the module docstring for the rules.

    Readers: ``parquet``, ``delimited`` (with its separator; ``"whitespace"`` for runs of spaces
    or tabs), ``headerless`` (user item [rating] timestamp, no header), ``jsonl``, ``recbole``,
    ``amazon``, ``p5``, ``p5-datamaps``, ``ml-100k-items``, ``ml-100k-ratings``,
    ``ml-1m-movies``, ``ml-1m-ratings``, ``ml-1m-users``, ``ml-latest-movies``. ``kind``
    (items / interactions / queries, when known) only decides whether a header-less file of
    numbers is read as interactions.
    """
    if fmt not in FORMATS:
        raise SemidError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError("no such file", file=str(path))
    name = base_name(path)
    ext = Path(name).suffix
    if path.is_file():
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if fmt == "parquet" or (fmt != "csv" and fmt != "tsv" and fmt != "jsonl"
                                and (ext in (".parquet", ".pq") or magic == b"PAR1")):
            return "parquet", None
    head = head_lines(path, 3)
    if not head:
        raise empty_file(path)
    first = head[0].strip()
    if fmt == "csv":
        return "delimited", ","
    if fmt == "tsv":
        return "delimited", "\t"
    if fmt in ("auto", "p5", "jsonl") and first.startswith("{") and any(k in first[:400] for k in _DATAMAPS_KEYS):
        return "p5-datamaps", None  # one JSON object of id maps, not JSON Lines
    if fmt == "jsonl":
        return "jsonl", None
    if fmt in ("auto", "movielens"):
        variant = _movielens_variant(name, first, content=fmt == "movielens")
        if variant:
            return variant, None
    if fmt == "p5" or (fmt == "auto" and _looks_p5(name, head)):
        return "p5", None
    if first.startswith("{") and fmt in ("auto", "amazon") and _looks_amazon(first, strict=fmt == "amazon"):
        return "amazon", None
    if ext in _RECBOLE_EXT or _is_recbole_header(first):
        return "recbole", "\t"
    if first.startswith(("{", "[")) or ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl", None
    # the extension's separator unless the header has none of it (a ';' CSV from a European Excel)
    if ext == ".csv" and "," in first:
        sep = ","
    elif ext in (".tsv", ".tab") and "\t" in first:
        sep = "\t"
    else:
        sep = sniff_separator(first)
        if sep == "," and "," not in first and len(first.split()) > 1:
            sep = "whitespace"  # "user item rating time": no separator character, only spaces
    if kind in (None, "interactions") and _headerless_ratings(head, sep):
        return "headerless", sep
    return "delimited", sep


def _fields(line: str, sep: str) -> list[str]:
    return line.split() if sep == "whitespace" else [f.strip() for f in line.split(sep)]


def _headerless_ratings(head: list[str], sep: str) -> bool:
    """``user item [rating] timestamp`` rows with no header: column names are never numbers, so a
    first line of 3 or 4 fields ending in numbers (timestamp; rating too when 4) is data."""
    counts = {len(_fields(line, sep)) for line in head}
    if len(counts) != 1 or next(iter(counts)) not in _HEADERLESS:
        return False
    fields = _fields(head[0], sep)
    numeric = fields[2:]  # rating (if any) and timestamp
    return all(_NUMBER.fullmatch(f) for f in numeric)


def _looks_p5(name: str, head: list[str]) -> bool:
    """P5 / S3-Rec ``sequential_data.txt``: ``user item item ...``, integers, no header.

    By name (``sequential*.txt``) or by content: lines of space-separated integers whose
    lengths differ (a header-less ratings file has the same 3 or 4 fields on every line).
    """
    if name.startswith("sequential") or "_sequential" in name:
        return bool(_INT_LINE.fullmatch(head[0].strip()))  # the reader names any bad line after it
    if not all(_INT_LINE.fullmatch(line.strip()) for line in head):
        return False
    lengths = {len(line.split()) for line in head}
    return len(lengths) > 1 or not lengths <= set(_HEADERLESS)


def _movielens_variant(name: str, first: str, *, content: bool) -> str | None:
    if name == "u.item" or (content and first.count("|") == 23 and first.split("|")[0].isdigit()):
        return "ml-100k-items"
    if name == "u.data" or (content and re.fullmatch(r"\d+\t\d+\t\d+(\.\d+)?\t\d+", first)):
        return "ml-100k-ratings"
    if "::" in first and (name.endswith(".dat") or content):
        parts = first.split("::")
        if name == "users.dat" or (len(parts) == 5 and parts[1] in ("M", "F")):
            return "ml-1m-users"
        if name == "ratings.dat" or (len(parts) == 4 and all(p.strip().replace(".", "").isdigit() for p in parts)):
            return "ml-1m-ratings"
        return "ml-1m-movies"
    if first.replace(" ", "").lower().startswith("movieid,title,genres"):
        return "ml-latest-movies"
    return None


def _looks_amazon(first: str, *, strict: bool) -> bool:
    try:
        record = json.loads(first)
    except ValueError:
        try:
            record = ast.literal_eval(first)  # literals only: never runs code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return False
        return isinstance(record, dict) and ("asin" in record or "parent_asin" in record)
    if not isinstance(record, dict) or not ({"asin", "parent_asin"} & set(record)):
        return False
    return strict or bool(_AMAZON_KEYS & set(record))


def _is_recbole_header(first: str) -> bool:
    fields = first.split("\t")
    return len(fields) > 1 and all(_RECBOLE_FIELD.match(f.strip()) for f in fields)


# --------------------------------------------------------------------------- dispatch


def read_table(
    path: str | Path,
    *,
    fmt: str = "auto",
    encoding: str | None = None,
    limit: int | None = None,
    kind: str | None = None,
    datamaps: str | Path | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[Table]:
    """Read one file with the reader its format needs (``limit``: only the first rows, for previews).

    ``kind`` (items / interactions / queries) lets a reader say when a file is the wrong kind
    (a P5 ``datamaps.json`` given as interactions); ``datamaps``: a P5 ``datamaps.json`` that maps
    a sequential file's numbers back to the original ids (by default one lying beside it).
    """
    path = Path(path)
    reader, sep = detect_reader(path, fmt, kind)
    if reader == "parquet":
        return (yield from read_parquet(path, limit=limit, cancel=cancel))
    if reader == "p5-datamaps":
        return read_p5_datamaps(path, kind)
    if reader == "p5":
        return (yield from read_p5(path, encoding, kind=kind, datamaps=datamaps, limit=limit, cancel=cancel))
    if limit is not None:
        try:
            return (yield from _read_text_table(path, reader, sep, fmt, encoding, limit,
                                                max(limit * 4 + 50, 200), cancel))
        except InputError:
            pass  # the head cut a quoted field or a JSON array in two: read the whole file instead
    return (yield from _read_text_table(path, reader, sep, fmt, encoding, limit, None, cancel))


def _read_text_table(path: Path, reader: str, sep: str | None, fmt: str, encoding: str | None,
                     limit: int | None, max_lines: int | None, cancel: CancelToken) -> TaskGenerator[Table]:
    if reader in ("delimited", "headerless"):
        text = read_text(path, encoding, max_lines=max_lines)
        if sep == "whitespace":
            # runs of spaces / tabs -> one tab, line by line (keeps every line where it was)
            text = "\n".join("\t".join(line.split()) for line in text.split("\n"))
        name = {",": "csv", "\t": "tsv", "whitespace": "whitespace-separated"}.get(sep, f"delimited ({sep!r})")
        real_sep = "\t" if sep == "whitespace" else sep
        if reader == "delimited":
            return (yield from read_delimited(path, text, real_sep, reader=name, limit=limit, cancel=cancel))
        first = next(line for line in text.split("\n") if line.strip())
        names = list(_HEADERLESS[len(first.split(real_sep))])
        table = yield from read_delimited(path, text, real_sep, reader=f"{name}, no header", names=names,
                                          limit=limit, cancel=cancel)
        table.notes.append(f"no header line: the columns are read as {', '.join(names)}")
        return table
    if reader == "jsonl":
        text = read_text(path, encoding, max_lines=max_lines)
        label = "json" if text.lstrip().startswith("[") else "jsonl"
        return (yield from read_jsonl(path, text, reader=label, limit=limit, cancel=cancel))
    if reader == "recbole":
        return (yield from read_recbole(path, encoding, movielens=fmt == "movielens", limit=limit,
                                        max_lines=max_lines, cancel=cancel))
    if reader == "amazon":
        return (yield from read_amazon(path, encoding, limit=limit, max_lines=max_lines, cancel=cancel))
    return (yield from read_movielens(path, reader, encoding, limit=limit, max_lines=max_lines, cancel=cancel))


# --------------------------------------------------------------------------- P5


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


# --------------------------------------------------------------------------- RecBole


def read_recbole(path: Path, encoding: str | None, *, movielens: bool = False, limit: int | None = None,
                 max_lines: int | None = None, cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    """A RecBole atomic file (tab-separated, typed header)."""
    text = read_text(path, encoding, max_lines=max_lines)
    table = yield from read_delimited(path, text, "\t", reader="recbole", limit=limit, cancel=cancel)
    renames, types = {}, {}
    for column in table.columns:
        base, _, declared = column.partition(":")
        if declared in _RECBOLE_TYPES:
            renames[column] = base
            types[base] = _RECBOLE_TYPES[declared]
    if movielens:
        # RecBole's ml-100k names -> the names the other MovieLens readers use
        extra = {"movie_title": "title", "release_year": "year", "class": "genres"}
        for column, base in list(renames.items()):
            if base in extra:
                renames[column] = extra[base]
                types[extra[base]] = types.pop(base)
        table.reader = "recbole (movielens)"
    table.frame = table.frame.rename(columns=renames)
    table.column_types = types
    return table


def recbole_list(value: Any) -> list | None:
    """A RecBole ``token_seq`` cell -> list: space-separated tokens, or a quoted Python list body."""
    if isinstance(value, list):
        return value
    if is_missing(value):
        return None
    text = str(value).strip()
    if text[:1] in ("'", '"'):
        try:
            parsed = ast.literal_eval("[" + text + "]")  # literals only: never runs code
            if all(isinstance(p, str) for p in parsed):
                return [p.strip() for p in parsed]
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return text.split()


# --------------------------------------------------------------------------- MovieLens


def _movielens_text(path: Path, encoding: str | None, max_lines: int | None) -> tuple[str, str | None]:
    """UTF-8 when the bytes are valid UTF-8, else Latin-1 (GroupLens' encoding), unless given."""
    data = read_bytes(path, max_lines=max_lines)
    if encoding:
        return decode(data, path, encoding), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("latin-1"), "read as Latin-1 (not valid UTF-8; the GroupLens files are Latin-1)"


def read_movielens(path: Path, variant: str, encoding: str | None, *, limit: int | None = None,
                   max_lines: int | None = None, cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    if variant == "ml-1m-users":
        raise InputError("this is MovieLens users.dat (user attributes); import movies.dat as items and "
                         "ratings.dat as interactions", file=str(path))
    if variant == "ml-latest-movies":
        return (yield from _ml_latest_movies(path, encoding, limit, max_lines, cancel))
    text, note = _movielens_text(path, encoding, max_lines)
    if variant in ("ml-100k-ratings", "ml-1m-ratings"):
        sep = "\t"
        if variant == "ml-1m-ratings":
            text = text.replace("::", "\t")  # keeps every line where it was; the C parser wants 1 char
        table = yield from read_delimited(path, text, sep, reader=variant.replace("-ratings", ""),
                                          names=list(_RATINGS_NAMES), limit=limit, cancel=cancel)
    elif variant == "ml-100k-items":
        table = _ml100k_items(path, text, limit)
    else:
        table = _ml1m_movies(path, text, limit)
    if note:
        table.notes.append(note)
    return table


def _lines(text: str, limit: int | None):
    count = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        yield number, line
        count += 1
        if limit and count >= limit:
            return


def _year(title: str | None) -> int | None:
    match = _YEAR_IN_TITLE.search(title or "")
    return int(match.group(1)) if match else None


def _ml100k_items(path: Path, text: str, limit: int | None) -> Table:
    genres = list(ML100K_GENRES)
    genre_file = path.with_name("u.genre")
    if genre_file.exists():
        named = [ln.split("|")[0] for ln in genre_file.read_bytes().decode("latin-1").splitlines() if "|" in ln]
        if named:
            genres = named
    n_fields = 5 + len(genres)
    records, lines = [], []
    for number, line in _lines(text, limit):
        parts = line.split("|")
        if len(parts) != n_fields:
            raise InputError(f"expected {n_fields} '|'-separated fields (id|title|release date|video release "
                             f"date|IMDb URL|{len(genres)} genre flags), found {len(parts)}",
                             file=str(path), line=number)
        flags = parts[5:]
        bad = next((g for g, f in zip(genres, flags) if f.strip() not in ("0", "1")), None)
        if bad is not None:
            raise InputError(f"genre flag must be 0 or 1, got '{flags[genres.index(bad)]}'",
                             file=str(path), line=number, field=bad)
        release = parts[2].strip()
        date = None
        if release:
            try:
                date = _dt.datetime.strptime(release, "%d-%b-%Y").date()
            except ValueError:
                raise InputError(f"release date '{release}' is not like 01-Jan-1995", file=str(path),
                                 line=number, field="release date") from None
        title = parts[1].strip()
        records.append({
            "item_id": parts[0].strip(),
            "title": title,
            "year": _year(title) or (date.year if date else None),  # the film's year, as in its title
            "release_date": date.isoformat() if date else None,
            "genres": [g for g, f in zip(genres, flags) if f.strip() == "1"],
            "imdb_url": parts[4].strip() or None,
        })
        lines.append(number)
    if not records:
        raise empty_file(path)
    return Table(path, records_frame(records), np.asarray(lines, dtype=np.int64), "ml-100k",
                 from_text=False, header_line=None)


def _ml1m_movies(path: Path, text: str, limit: int | None) -> Table:
    records, lines = [], []
    for number, line in _lines(text, limit):
        if line.count("::") < 2:
            raise InputError("expected MovieID::Title::Genres", file=str(path), line=number)
        movie_id, rest = line.split("::", 1)
        title, genres = rest.rsplit("::", 1)
        records.append({"item_id": movie_id.strip(), "title": title.strip(), "year": _year(title),
                        "genres": [g for g in genres.strip().split("|") if g]})
        lines.append(number)
    if not records:
        raise empty_file(path)
    return Table(path, records_frame(records), np.asarray(lines, dtype=np.int64), "ml-1m",
                 from_text=False, header_line=None)


def _ml_latest_movies(path: Path, encoding: str | None, limit: int | None, max_lines: int | None,
                      cancel: CancelToken) -> TaskGenerator[Table]:
    text = read_text(path, encoding, max_lines=max_lines)
    table = yield from read_delimited(path, text, ",", reader="ml-latest", limit=limit, cancel=cancel)
    cols = {c.lower(): c for c in table.columns}
    frame = table.frame
    ids = frame[cols["movieid"]].astype(str).str.strip()
    titles = frame[cols["title"]].astype(str).str.strip()
    genres = [[] if g.strip() in ("", "(no genres listed)") else [p for p in g.split("|") if p]
              for g in frame[cols["genres"]].astype(str)]
    data = {"item_id": ids.tolist(), "title": titles.tolist(), "year": [_year(t) for t in titles],
            "genres": genres}
    tags_path = path.with_name("tags.csv")
    if tags_path.exists():
        tags = yield from _ml_latest_tags(tags_path, encoding, cancel)
        data["tags"] = [tags.get(i, []) for i in data["item_id"]]
        table.merged.append(tags_path)
        table.notes.append(f"{tags_path.name} (beside {path.name}) is merged into the items as their 'tags' "
                           f"field ({sum(len(v) for v in tags.values())} distinct tags on {len(tags)} movies): "
                           "it needs no import of its own, and it is not a query log")
    extra = [c for c in table.columns if c.lower() not in ("movieid", "title", "genres")]
    for column in extra:
        data[column] = frame[column].tolist()
    table.frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})
    table.column_types = {c: "str" for c in extra}
    table.from_text = False
    return table


def _ml_latest_tags(path: Path, encoding: str | None, cancel: CancelToken) -> TaskGenerator[dict[str, list[str]]]:
    """tags.csv -> {movieId: [tag, ...]}: distinct per movie (case-insensitive), in file order."""
    text = read_text(path, encoding)
    table = yield from read_delimited(path, text, ",", reader="csv", cancel=cancel)
    cols = {c.lower(): c for c in table.columns}
    if "movieid" not in cols or "tag" not in cols:
        raise InputError(f"expected columns movieId and tag, found {table.columns}", file=str(path), line=1)
    out: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for movie, tag in zip(table.frame[cols["movieid"]].astype(str).str.strip(), table.frame[cols["tag"]].astype(str)):
        tag = tag.strip()
        if not tag:
            continue
        key = tag.lower()
        if key not in seen.setdefault(movie, set()):
            seen[movie].add(key)
            out.setdefault(movie, []).append(tag)
    return out


# --------------------------------------------------------------------------- Amazon


def read_amazon(path: Path, encoding: str | None, *, limit: int | None = None, max_lines: int | None = None,
                cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    """Amazon review or metadata JSON lines (2014, 2018, 2023) -> interactions or items columns."""
    text = read_text(path, encoding, max_lines=max_lines)
    records, lines, unit = yield from read_json_records(path, text, reader="amazon", limit=limit,
                                                        python_literals=True, cancel=cancel)
    keys: set[str] = set()
    for rec in records[:200]:
        keys.update(rec)
    if "reviewerID" in keys:
        variant = "amazon-2018-reviews" if {"verified", "vote", "style"} & keys else "amazon-2014-reviews"
        rows = [{"user_id": r.get("reviewerID"), "item_id": r.get("asin"),
                 "timestamp": r.get("unixReviewTime") if r.get("unixReviewTime") is not None else r.get("reviewTime"),
                 "rating": r.get("overall")} for r in records]
        note = "review text and other review fields are not imported"
    elif "user_id" in keys:
        variant = "amazon-2023-reviews"
        rows = [{"user_id": r.get("user_id"), "item_id": r.get("parent_asin") or r.get("asin"),
                 "timestamp": r.get("timestamp"), "rating": r.get("rating")} for r in records]
        note = "review text and other review fields are not imported; items are parent_asin"
    elif "parent_asin" in keys:
        variant, rows, note = "amazon-2023-meta", [_meta_2023(r) for r in records], None
    elif {"category", "main_cat", "feature", "also_buy", "also_view", "rank"} & keys:
        variant, rows, note = "amazon-2018-meta", [_meta_2018(r) for r in records], None
    else:
        variant, rows, note = "amazon-2014-meta", [_meta_2014(r) for r in records], None
    table = Table(path, records_frame(rows), lines, variant, unit=unit, from_text=False, header_line=None)
    if note:
        table.notes.append(note)
    return table


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = " ".join(str(v).strip() for v in value if not is_missing(v))
    if is_missing(value):
        return None
    return str(value).strip() or None


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return [str(v).strip() for v in value if not is_missing(v) and str(v).strip()]
    if is_missing(value):
        return None
    return [str(value).strip()]


def _meta_2014(rec: dict) -> dict:
    categories = rec.get("categories")
    if isinstance(categories, list) and categories and isinstance(categories[0], list):
        categories = categories[0]  # several category paths: keep the first (as TIGER's data does)
    rank = rec.get("salesRank")
    rank_value, rank_category = None, None
    if isinstance(rank, dict) and rank:
        rank_category, rank_value = next(iter(rank.items()))
    elif isinstance(rank, (int, float)):
        rank_value = rank
    return {
        "item_id": rec.get("asin"),
        "title": _text(rec.get("title")),
        "brand": _text(rec.get("brand")),
        "categories": _str_list(categories),
        "price": parse_price(rec.get("price")),
        "sales_rank": None if rank_value is None else int(rank_value),
        "sales_rank_category": rank_category,
        "description": _text(rec.get("description")),
    }


_RANK = re.compile(r"([\d,]+)\s+in\s+([^(]+)")


def _meta_2018(rec: dict) -> dict:
    rank = rec.get("rank")
    if isinstance(rank, list):
        rank = rank[0] if rank else None
    rank_value, rank_category = None, None
    if isinstance(rank, str):
        match = _RANK.search(rank)
        if match:
            rank_value = int(match.group(1).replace(",", ""))
            rank_category = match.group(2).strip()
    elif isinstance(rank, (int, float)):
        rank_value = int(rank)
    return {
        "item_id": rec.get("asin"),
        "title": _text(rec.get("title")),
        "brand": _text(rec.get("brand")),
        "categories": _str_list(rec.get("category")),
        "price": parse_price(rec.get("price")),
        "sales_rank": rank_value,
        "sales_rank_category": rank_category,
        "main_category": _text(rec.get("main_cat")),
        "features": _str_list(rec.get("feature")),
        "description": _text(rec.get("description")),
    }


def _meta_2023(rec: dict) -> dict:
    return {
        "item_id": rec.get("parent_asin"),
        "title": _text(rec.get("title")),
        "brand": _text(rec.get("store")),
        "categories": _str_list(rec.get("categories")),
        "price": parse_price(rec.get("price")),
        "main_category": _text(rec.get("main_category")),
        "features": _str_list(rec.get("features")),
        "description": _text(rec.get("description")),
        "average_rating": plain(rec.get("average_rating")),
        "rating_number": plain(rec.get("rating_number")),
    }
