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

The readers of the named formats are :mod:`.movielens`, :mod:`.amazon`, :mod:`.p5` and
:mod:`.recbole`; this module detects which one a file needs and dispatches to it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from ..errors import InputError, SemidError
from ..events import NEVER, CancelToken, TaskGenerator
from .amazon import read_amazon
from .movielens import read_movielens
from .p5 import read_p5, read_p5_datamaps
from .readers import (Table, base_name, empty_file, head_lines, read_delimited, read_jsonl, read_parquet, read_text,
                      sniff_separator)
from .recbole import read_recbole


FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "movielens", "amazon", "p5")


_RECBOLE_EXT = (".inter", ".item", ".user")
_RECBOLE_FIELD = re.compile(r"^[^:\s]+:(token|token_seq|float|float_seq)$")


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
