"""Reading files into :class:`Table`: bytes (plain, gzip, bz2, xz), text decoding with the line of a
bad byte, delimited text, JSON Lines / JSON arrays, Parquet.

A :class:`Table` keeps, next to the DataFrame of what was read, the 1-based line of every row
as a text editor shows it (header = line 1), so that every later check can name the file, the
line and the field.

Line numbers in delimited files: a quoted field may hold newlines, so a record can span several
physical lines. The line given for a row is the physical line on which its record *starts* (we
count the newlines inside the fields of earlier records); blank lines are skipped but counted.
JSON Lines: line n is the n-th physical line. A top-level JSON array has no useful line
numbers, so rows are named "record N"; Parquet rows are named "row N" (1-based).

Every reader works on the whole decoded file in memory (fine up to a few hundred MB; the
delimited reader parses it in chunks so that it can report progress and be cancelled).
"""

from __future__ import annotations

import ast
import bz2
import csv
import gzip
import io
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import wording
from ..errors import InputError
from ..events import NEVER, CancelToken, Progress, TaskGenerator

#: rows per chunk of the delimited reader (one progress event and one cancel check each)
CHUNK_ROWS = 100_000
#: lines read for a preview, per wanted row (records may span lines)
_PREVIEW_LINES_PER_ROW = 4
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass
class Table:
    """What one file holds, before any mapping: columns as named in the file.

    ``lines[i]`` locates row ``i`` (see the module docstring); ``unit`` says how: ``"line"``
    (an editor line, passed as ``InputError.line``), ``"record"`` or ``"row"`` (named in the
    message instead). ``from_text`` is True when values are raw strings of a delimited file
    (then ids get the ``17850.0`` rule and attribute columns get their types inferred).
    ``column_types`` fixes the type of a column (``"str"``, ``"float"``, ``"list"``) where the
    file declares it (RecBole headers) or a named format knows it.
    """

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    reader: str
    unit: str = "line"
    from_text: bool = True
    header_line: int | None = 1
    column_types: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: other files a format read into this table (MovieLens' tags.csv beside movies.csv)
    merged: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def __len__(self) -> int:
        return len(self.frame)

    def error(self, row: int | None, message: str, *, field: str | None = None,
              hint: str | None = None) -> InputError:
        """An InputError located at row position ``row`` (None: the header / the whole file)."""
        if row is None:
            line = self.header_line if self.unit == "line" else None
            return InputError(message, file=self.name, line=line, field=field, hint=hint)
        where = int(self.lines[row])
        if self.unit == "line":
            return InputError(message, file=self.name, line=where, field=field, hint=hint)
        return InputError(f"{self.unit} {where}: {message}", file=self.name, field=field, hint=hint)


# --------------------------------------------------------------------------- bytes and text


def _opener(path: Path, magic: bytes):
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open
    if magic.startswith(b"BZh"):
        return bz2.open
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open
    return open


def read_bytes(path: Path, *, max_lines: int | None = None) -> bytes:
    """The file's (decompressed) bytes; only the first ``max_lines`` lines when given."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if path.is_dir():
        raise InputError("is a folder, not a file", file=str(path))
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK\x03\x04"):
        raise InputError("is a ZIP archive", file=str(path), hint="unzip it and import the files inside")
    opener = _opener(path, magic)
    try:
        with opener(path, "rb") as fh:
            if max_lines is None:
                return fh.read()
            chunks = []
            for _ in range(max_lines):
                line = fh.readline()
                if not line:
                    break
                chunks.append(line)
            return b"".join(chunks)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"cannot decompress: {exc}", file=str(path),
                         hint="the file may be truncated or not really compressed") from None


def decode(data: bytes, path: Path, encoding: str | None) -> str:
    """Bytes -> text. The default is UTF-8 (a BOM is dropped; a UTF-16 BOM selects UTF-16).

    A byte that does not decode is reported with its line and the ``encoding`` option to use.
    """
    chosen = encoding or "utf-8"
    if encoding is None:
        if data.startswith(b"\xef\xbb\xbf"):
            chosen = "utf-8-sig"
        elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
            chosen = "utf-16"
    try:
        return data.decode(chosen)
    except LookupError:
        raise InputError(f"unknown text encoding '{encoding}'", field="encoding",
                         hint="use a Python codec name such as utf-8, latin-1 or cp1252") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        alternative = "latin-1" if chosen.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig") else "utf-8"
        raise InputError(
            f"byte 0x{bad} is not valid {chosen} text",
            file=str(path), line=line,
            hint=f"the file is in another encoding; {wording.hint('encoding', encoding=alternative)}",
        ) from None


def read_text(path: Path, encoding: str | None, *, max_lines: int | None = None) -> str:
    return decode(read_bytes(path, max_lines=max_lines), path, encoding)


def head_lines(path: Path, n: int = 5) -> list[str]:
    """The first ``n`` non-blank lines, decoded leniently: for sniffing formats only."""
    data = read_bytes(path, max_lines=n + 20)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace").lstrip("\ufeff")
    return [line for line in text.splitlines() if line.strip()][:n]


def base_name(path: Path) -> str:
    """File name without compression suffixes, lower case: ``Reviews.JSON.gz`` -> ``reviews.json``."""
    name = path.name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def empty_file(path: Path) -> InputError:
    return InputError("the file is empty", file=str(path), line=1)


# --------------------------------------------------------------------------- delimited text


def read_delimited(
    path: Path,
    text: str,
    sep: str,
    *,
    reader: str,
    names: list[str] | None = None,
    limit: int | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[Table]:
    """Parse delimited text (header on its first line unless ``names`` are given).

    Values stay strings ("" where empty); see the module docstring for line numbers.
    """
    stripped = text.lstrip("\r\n \t")
    if not stripped.strip():
        raise empty_file(path)
    lead = text[: len(text) - len(stripped)].count("\n")  # blank lines before the header
    text = stripped
    first = lead + 1
    header = None
    if names is None:
        try:
            header = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
        except csv.Error:
            header = None
        if header is not None:
            header = [h.strip() for h in header]
            seen: dict[str, int] = {}
            for pos, name in enumerate(header):
                if name and name in seen:
                    raise InputError(f"column '{name}' appears twice in the header (columns {seen[name] + 1} "
                                     f"and {pos + 1})", file=str(path), line=first, field=name)
                seen[name] = pos
    total_lines = text.count("\n") + 1
    stage = f"reading {path.name}"
    frames = []
    done = 0
    try:
        chunks = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, na_filter=False, keep_default_na=False,
            skip_blank_lines=False, header=None if names is not None else 0, names=names,
            chunksize=CHUNK_ROWS, nrows=limit, engine="c", quotechar='"',
        )
        for chunk in chunks:
            cancel.raise_if_cancelled()
            frames.append(chunk)
            done += len(chunk)
            yield Progress(stage, min(done, total_lines), total_lines if limit is None else None)
    except pd.errors.ParserError as exc:
        raise _locate_parse_error(path, text, sep, first, names is None, exc) from None
    except pd.errors.EmptyDataError:
        raise empty_file(path) from None
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names or header or [])
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.fillna("")
    n = len(frame)
    data_first = first + (0 if names is not None else 1 + (header_text_newlines(text) if header else 0))
    lines = data_first + np.arange(n, dtype=np.int64)
    if n and '"' in text:
        # quoted fields may span lines: shift every record by the newlines inside earlier records
        inner = np.zeros(n, dtype=np.int64)
        for col in frame.columns:
            inner += frame[col].astype(str).str.count("\n").to_numpy(dtype=np.int64)
        lines += np.concatenate([[0], np.cumsum(inner)[:-1]])
    if n:
        blank = np.ones(n, dtype=bool)
        for col in frame.columns:
            blank &= (frame[col].astype(str).str.strip() == "").to_numpy()
        if blank.any():
            frame = frame.loc[~blank].reset_index(drop=True)
            lines = lines[~blank]
    if len(frame) == 0:
        if names is not None:
            raise empty_file(path)
        raise InputError("the file has a header but no data rows", file=str(path), line=first)
    return Table(path, frame, lines, reader, header_line=None if names is not None else first)


def header_text_newlines(text: str) -> int:
    """Newlines inside a (quoted) header record: almost always 0."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        next(reader)
    except (csv.Error, StopIteration):
        return 0
    return max(0, reader.line_num - 1)


def _locate_parse_error(path: Path, text: str, sep: str, first: int, has_header: bool,
                        exc: Exception) -> InputError:
    """pandas' tokenizer errors are vague about lines; re-read with the csv module to find the
    record (its first line) and say what is wrong with it."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    previous_end = 0
    expected = None
    try:
        for record in reader:
            start = first + previous_end
            previous_end = reader.line_num
            if not record:
                continue
            if expected is None:
                expected = len(record)
                continue
            if len(record) > expected:
                what = "header" if has_header else "first row"
                return InputError(f"this row has {len(record)} fields but the {what} has {expected}",
                                  file=str(path), line=start,
                                  hint=f"check the separator ({_sep_name(sep)}) and quoting of this line")
    except csv.Error as err:
        return InputError(f"cannot parse this record: {err}", file=str(path), line=first + previous_end,
                          hint='a quoted field may be missing its closing "')
    return InputError(f"cannot parse the file: {str(exc).splitlines()[-1]}", file=str(path))


def _sep_name(sep: str) -> str:
    return {",": "comma", "\t": "tab", "|": "pipe", ";": "semicolon"}.get(sep, repr(sep))


def sniff_separator(line: str) -> str:
    """The most frequent of tab, comma, pipe, semicolon in a header line (comma when none)."""
    counts = {sep: line.count(sep) for sep in ("\t", ",", "|", ";")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


# --------------------------------------------------------------------------- JSON


def read_json_records(
    path: Path,
    text: str,
    *,
    reader: str,
    limit: int | None = None,
    python_literals: bool = False,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[tuple[list[dict], np.ndarray, str]]:
    """JSON Lines (one object per line) or one top-level JSON array of objects.

    Returns ``(records, lines, unit)``. ``python_literals`` also accepts lines that are Python
    dict literals (the Amazon 2014 metadata); they are parsed with ``ast.literal_eval``, which
    evaluates literals only and never runs code.
    """
    body = text.lstrip()
    if not body:
        raise empty_file(path)
    if body.startswith("["):
        try:
            data = json.loads(body)
        except ValueError as exc:
            lead = text[: len(text) - len(body)].count("\n")
            raise InputError(f"not valid JSON: {getattr(exc, 'msg', exc)}", file=str(path),
                             line=getattr(exc, "lineno", 0) + lead or None) from None
        if not isinstance(data, list):
            raise InputError("expected a JSON array of objects", file=str(path), line=1)
        if not data:
            raise empty_file(path)
        records = data[:limit] if limit else data
        for pos, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise InputError(f"record {pos + 1}: expected a JSON object, got {type(rec).__name__}",
                                 file=str(path))
        return records, np.arange(1, len(records) + 1, dtype=np.int64), "record"

    records: list[dict] = []
    lines: list[int] = []
    stage = f"reading {path.name}"
    raw_lines = text.split("\n")
    total = len(raw_lines)
    loads = json.loads
    for number, raw in enumerate(raw_lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            rec = loads(line)
        except ValueError as exc:
            rec = _python_literal(line) if python_literals else None
            if rec is None:
                hint = "JSON Lines needs one complete JSON object per line"
                if line.startswith("{'"):
                    hint = "this looks like Amazon 2014 metadata (Python dicts); use the amazon format"
                raise InputError(f"not valid JSON: {getattr(exc, 'msg', exc)} (column {getattr(exc, 'colno', '?')})",
                                 file=str(path), line=number, hint=hint) from None
        if not isinstance(rec, dict):
            raise InputError(f"expected a JSON object, got {type(rec).__name__}", file=str(path), line=number)
        records.append(rec)
        lines.append(number)
        if limit and len(records) >= limit:
            break
        if number % 50_000 == 0:
            cancel.raise_if_cancelled()
            yield Progress(stage, number, total)
    if not records:
        raise empty_file(path)
    yield Progress(stage, total, total)
    return records, np.asarray(lines, dtype=np.int64), "line"


def _python_literal(line: str) -> dict | None:
    try:
        value = ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records -> DataFrame of object columns (keys in first-seen order; absent keys -> None).

    Object columns keep every value exactly as parsed: an int stays an int, a list a list.
    """
    keys: dict[str, None] = {}
    for rec in records:
        for key in rec:
            if key not in keys:
                keys[key] = None
    return pd.DataFrame({str(k): pd.Series([rec.get(k) for rec in records], dtype=object) for k in keys})


def read_jsonl(path: Path, text: str, *, reader: str = "jsonl", limit: int | None = None,
               cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    records, lines, unit = yield from read_json_records(path, text, reader=reader, limit=limit, cancel=cancel)
    return Table(path, records_frame(records), lines, reader, unit=unit, from_text=False, header_line=None)


# --------------------------------------------------------------------------- Parquet


def read_parquet(path: Path, *, limit: int | None = None, cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    """A Parquet file; values become Python objects (lists stay lists, dates become ISO text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise InputError("no such file", file=str(path))
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({exc})", file=str(path)) from None
    stage = f"reading {path.name}"
    total = pf.metadata.num_rows
    if limit is not None:
        batches = list(pf.iter_batches(batch_size=max(1, limit)))[:1]
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow) if batches else pf.schema_arrow.empty_table()
    else:
        parts = []
        for group in range(pf.num_row_groups):
            cancel.raise_if_cancelled()
            parts.append(pf.read_row_group(group))
            yield Progress(stage, sum(len(p) for p in parts), total)
        table = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table()
    if table.num_rows == 0:
        raise InputError("the file has no rows", file=str(path))
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        values: list[Any] = column.to_pylist()
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            values = [None if v is None else v.isoformat() for v in values]
        columns[str(name)] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(columns)
    lines = np.arange(1, len(frame) + 1, dtype=np.int64)
    return Table(path, frame, lines, "parquet", unit="row", from_text=False, header_line=None)
