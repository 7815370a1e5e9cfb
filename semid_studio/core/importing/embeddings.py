"""Precomputed item embeddings: a ``.npy`` matrix plus the item ids of its rows, or a Parquet file.

The vectors must cover the catalogue exactly: every id is a catalogue item, every catalogue item
has one vector. Rows are reordered to the project's ``idx`` order (every array in a project is
aligned to it) and stored as an embedding set with strategy ``imported`` and a cache key derived
from the content of the file(s), so importing the same files twice returns the first set.

Accepted files:

- ``vectors.npy`` (2-D, numeric; loaded with ``allow_pickle=False``) with ``ids_path``: one id
  per line (an optional header such as ``item_id``), or a CSV/TSV whose item id column is found
  like an items file's (or named by ``id_column``). Without ``ids_path``, ``<stem>_ids.csv``,
  ``<stem>_ids.txt`` or ``<stem>.ids.txt`` beside the matrix is used.
- ``vectors.parquet``: an item id column (detected or ``id_column``) and either one list column
  (named ``embedding``, ``vector``, ... when there are several) or many numeric columns, one per
  dimension, in file order.

**Streamed, for catalogues embedded elsewhere** (10M x 384 float32 is 15 GB): the matrix is
never loaded whole. A ``.npy`` is checked from its header (``np.load(mmap_mode="r")``, never
unpickled) and read in blocks of ``ROWS_PER_BLOCK`` rows with plain sequential reads (pages of a
mapping would count as the process's memory); a Parquet file is read with
``ParquetFile.iter_batches``, the id column first, the vectors after. Rows already in the
project's order go straight into the project's chunked payload; otherwise each block is first
written to its rows' places in a scratch file beside the project (rows x dims x 4 bytes on disk,
removed afterwards), which is then read back in order. Memory: the ids, and a few blocks.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import wording
from ..errors import InputError, ProjectError
from ..store import ProjectStore
from ..streamed import StreamedArray
from .columns import TARGETS, norm, resolve_columns
from .readers import read_delimited, read_text, sniff_separator
from .values import normalize_ids

_VECTOR_NAMES = ("embedding", "embeddings", "vector", "vectors", "emb", "values")
#: rows read, checked and written at a time (16k x 384-d float32 = 25 MB)
ROWS_PER_BLOCK = 16384


def import_embeddings(
    store: ProjectStore,
    path: str | Path,
    *,
    ids_path: str | Path | None = None,
    name: str | None = None,
    model_name: str | None = None,
    id_column: str | None = None,
    encoding: str | None = None,
) -> int:
    """Store precomputed item vectors as an embedding set; return its id.

    The vectors are streamed (see the module docstring): memory holds the ids and a few blocks
    of rows, never the whole matrix.

    Parameters
    ----------
    store
        The open project (its catalogue must already be imported).
    path
        ``.npy`` matrix or ``.parquet`` file.
    ids_path
        For ``.npy``: the ids of its rows, in row order (see the module docstring).
    name, model_name
        Shown in the project (default ``imported / <file name>`` and ``imported``).
    id_column
        The item id column of a CSV ids file or of the Parquet file (default: detected).
    encoding
        Text encoding of the ids file (default UTF-8).

    Raises
    ------
    InputError
        Unreadable files, a row count that does not match the ids, duplicate ids, ids that are
        not catalogue items, catalogue items without a vector, non-finite values. Nothing is
        stored then.
    """
    path = Path(path)
    n_items = store.item_count()
    if n_items == 0:
        raise ProjectError(f"{store.path}: the catalogue is empty; import items before their embeddings")
    if not path.exists():
        raise InputError("no such file", file=str(path))
    sources = [path]
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if path.suffix.lower() == ".npy" or magic.startswith(b"\x93NUMPY"):
        matrix = _open_npy(path)
        ids_file = Path(ids_path) if ids_path is not None else _ids_beside(path)
        if ids_file is None:
            raise InputError("a .npy matrix needs the item ids of its rows", file=str(path),
                             hint=wording.hint("embedding_ids"))
        ids, lines, id_field = _read_ids(ids_file, _Catalogue(store), encoding, id_column)
        sources.append(ids_file)
        if len(ids) != matrix.n_rows:
            raise InputError(f"{len(ids)} ids for a matrix of {matrix.n_rows} rows", file=str(ids_file),
                             hint="the ids file must list one id per matrix row, in row order")
        where_file, unit = ids_file, "line"
    elif path.suffix.lower() in (".parquet", ".pq") or magic.startswith(b"PAR1"):
        ids, matrix, id_field = _open_parquet(path, id_column)
        lines = np.arange(1, len(ids) + 1)
        where_file, unit = path, "row"
    else:
        raise InputError("expected a .npy matrix (with its ids file) or a .parquet file", file=str(path))

    def located(pos: int, message: str, hint: str | None = None) -> InputError:
        if unit == "line":
            return InputError(message, file=str(where_file), line=int(lines[pos]), field=id_field, hint=hint)
        return InputError(f"row {int(lines[pos])}: {message}", file=str(where_file), field=id_field, hint=hint)

    dest = _destinations(store, ids, lines, unit, located, where_file, id_field)
    del ids, lines

    digest = hashlib.sha256()
    for source in sources:
        with open(source, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    key = "imported-" + digest.hexdigest()[:32]
    cached = store.find_embedding_set(key)
    if cached is not None and cached.n_items == n_items:
        return cached.id
    first = next(iter(matrix.blocks(1000)))  # a sample: are the vectors unit length?
    normalized = bool(np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-3))
    del first

    scattered: Path | None = None
    try:
        if np.array_equal(dest, np.arange(n_items)):  # already in the project's order: one pass
            rows = functools.partial(_finite_blocks, matrix)
        else:  # file order -> project order through a file on disk, then one sequential pass
            scattered = _scatter(matrix, dest, store.path.parent)
            rows = functools.partial(_read_rows, scattered, n_items, matrix.dim)
        return store.save_embedding_set(
            name=name or f"imported / {path.name}",
            model=model_name or "imported",
            template=None,
            strategy="imported",
            cache_key=key,
            vectors=StreamedArray((n_items, matrix.dim), rows),
            params={"source": path.name, "ids": sources[1].name if len(sources) > 1 else None,
                    "sha256": digest.hexdigest(), "normalized": normalized},
        )
    finally:
        if scattered is not None:
            scattered.unlink(missing_ok=True)


# --------------------------------------------------------------------------- streaming


@dataclass
class _Matrix:
    """The vectors of a file, read in row blocks (file order, float32) by ``blocks(rows)``."""

    path: Path
    n_rows: int
    dim: int
    blocks: Callable[..., Iterator[np.ndarray]]


class _Catalogue:
    """``item_id in catalogue``, asked of the project (no dict of every id for one question)."""

    def __init__(self, store: ProjectStore) -> None:
        self.store = store

    def __contains__(self, item_id: object) -> bool:
        return self.store.db.execute("SELECT 1 FROM items WHERE item_id = ?", [str(item_id)]).fetchone() is not None


def _destinations(store: ProjectStore, ids: np.ndarray, lines: np.ndarray, unit: str,
                  located: Callable[..., InputError], where_file: Path, id_field: str | None) -> np.ndarray:
    """The project idx of every file row; every id must be a distinct catalogue item, and every
    catalogue item must have a row (hash look-ups over whole columns, no loop per id)."""
    import pandas as pd

    n_items = store.item_count()
    empty = np.flatnonzero(pd.isna(ids))
    dups = np.flatnonzero(pd.Index(ids).duplicated())
    dups = dups[~pd.isna(ids[dups])]
    if len(empty) and (not len(dups) or empty[0] < dups[0]):
        raise located(int(empty[0]), "empty item id")
    if len(dups):
        pos = int(dups[0])
        first = int(np.flatnonzero(ids[:pos] == ids[pos])[0])
        raise located(pos, f"duplicate item id '{ids[pos]}' (first at {unit} {int(lines[first])})")
    catalogue = pd.Index(store.item_ids())
    dest = catalogue.get_indexer(ids)
    unknown = np.flatnonzero(dest < 0)
    if len(unknown):
        examples = ", ".join(repr(ids[p]) for p in unknown[:5])
        raise located(int(unknown[0]), f"{len(unknown)} of {len(ids)} ids are not items of the project "
                                       f"(e.g. {examples})", hint="import those items first, or drop their rows")
    if len(ids) < n_items:
        missing = catalogue[~catalogue.isin(ids)]
        examples = ", ".join(repr(m) for m in missing[:5])
        raise InputError(f"{len(missing)} of {n_items} catalogue items have no vector (e.g. {examples})",
                         file=str(where_file), field=id_field,
                         hint="the file must hold one vector for every item of the project")
    return dest.astype(np.int64)


def _finite_blocks(matrix: _Matrix) -> Iterator[np.ndarray]:
    """The file's blocks; the first row with NaN or an infinity is an error naming it (and how
    many rows have one: the rest of the file is scanned for the count, nothing is stored)."""
    pos = 0
    blocks = matrix.blocks(ROWS_PER_BLOCK)
    for block in blocks:
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            row = pos + int(np.flatnonzero(bad)[0])
            count = int(bad.sum()) + sum(int((~np.isfinite(b).all(axis=1)).sum()) for b in blocks)
            raise InputError(f"vector of row {row + 1} has NaN or infinite values ({count} rows like this)",
                             file=str(matrix.path))
        pos += len(block)
        yield block


def _scatter(matrix: _Matrix, dest: np.ndarray, folder: Path) -> Path:
    """Write the file's rows in project order into a scratch file beside the project (its size:
    rows x dims x 4 bytes); each block is written through a mapping opened for it alone, so the
    pages it touched leave the process's memory with it."""
    fd, name = tempfile.mkstemp(prefix=".semid-vectors-", suffix=".f32", dir=folder)
    scratch = Path(name)
    try:
        with os.fdopen(fd, "r+b") as fh:
            fh.truncate(len(dest) * matrix.dim * 4)
        pos = 0
        for block in _finite_blocks(matrix):
            out = np.memmap(scratch, dtype=np.float32, mode="r+", shape=(len(dest), matrix.dim))
            out[dest[pos : pos + len(block)]] = block
            del out
            pos += len(block)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return scratch


def _read_rows(path: Path, n_rows: int, dim: int, rows: int | None = None) -> Iterator[np.ndarray]:
    """A float32 matrix file in row blocks (sequential reads)."""
    rows = rows or ROWS_PER_BLOCK
    with open(path, "rb") as fh:
        for start in range(0, n_rows, rows):
            k = min(rows, n_rows - start)
            yield np.fromfile(fh, dtype=np.float32, count=k * dim).reshape(k, dim)


def _open_npy(path: Path) -> _Matrix:
    """A ``.npy`` matrix checked from its header (never unpickled), read later in row blocks."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused on purpose
        raise InputError(f"cannot read the matrix: {exc}", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"not a .npy file ({exc})", file=str(path)) from None
    if mapped.ndim != 2 or mapped.shape[0] == 0:
        raise InputError(f"expected a 2-D matrix with one row per item, got shape {mapped.shape}", file=str(path))
    if not np.issubdtype(mapped.dtype, np.number) or np.iscomplexobj(mapped):
        raise InputError(f"expected a real numeric matrix, got dtype {mapped.dtype}", file=str(path))
    n_rows, dim = (int(s) for s in mapped.shape)
    dtype, offset, c_order = mapped.dtype, int(mapped.offset), bool(mapped.flags.c_contiguous)
    del mapped

    def blocks(rows: int) -> Iterator[np.ndarray]:
        if c_order:  # plain sequential reads: memory is one block (mapped pages would count as ours)
            with open(path, "rb") as fh:
                fh.seek(offset)
                for start in range(0, n_rows, rows):
                    k = min(rows, n_rows - start)
                    block = np.fromfile(fh, dtype=dtype, count=k * dim)
                    if len(block) != k * dim:
                        raise InputError(f"the file ends inside row {start + len(block) // dim + 1} of {n_rows}",
                                         file=str(path))
                    yield block.reshape(k, dim).astype(np.float32, copy=False)
        else:  # Fortran order: a fresh mapping per block, released with it
            for start in range(0, n_rows, rows):
                mapped = np.load(path, mmap_mode="r", allow_pickle=False)
                yield np.array(mapped[start : start + rows], dtype=np.float32, order="C")
                del mapped

    return _Matrix(path, n_rows, dim, blocks)


def _open_parquet(path: Path, id_column: str | None) -> tuple[np.ndarray, _Matrix, str]:
    """The ids of a Parquet file (read column by column in batches) and its vectors, read later
    in row batches: one list column, or one numeric column per dimension."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def unreadable(exc: Exception) -> InputError:
        return InputError(f"not a readable Parquet file ({exc})", file=str(path))

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    n_rows = pf.metadata.num_rows
    if n_rows == 0:
        raise InputError("the file has no rows", file=str(path))
    columns = [str(c) for c in schema.names]
    res = resolve_columns("items", columns, {"item_id": id_column} if id_column else None, file=str(path),
                          line=None)
    if "item_id" not in res.mapping:
        raise res.problems[0]
    id_col = res.mapping["item_id"]

    def batches(names: list[str], rows: int) -> Iterator:
        try:
            yield from pf.iter_batches(batch_size=rows, columns=names)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(exc) from None

    parts = [normalize_ids(pd.Series(b.column(0).to_pylist(), dtype=object), from_text=False)[0]
             for b in batches([id_col], 1 << 16)]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
    others = [c for c in columns if c != id_col]
    types = {c: schema.field(c).type for c in others}
    lists = [c for c in others if pa.types.is_list(types[c]) or pa.types.is_large_list(types[c])
             or pa.types.is_fixed_size_list(types[c])]
    if lists:
        chosen = lists[0] if len(lists) == 1 else next((c for c in lists if norm(c) in _VECTOR_NAMES), None)
        if chosen is None:
            raise InputError(f"several list columns ({', '.join(lists)}); cannot tell which holds the vectors",
                             file=str(path), hint="keep only the vector column, or name it 'embedding'")
        head = next(batches([chosen], 1)).column(0)
        if head.null_count:
            raise InputError("row 1: no vector", file=str(path), field=chosen)
        width = int(pc.list_value_length(head).to_numpy(zero_copy_only=False)[0])

        def list_blocks(rows: int) -> Iterator[np.ndarray]:
            start = 0
            for batch in batches([chosen], rows):
                column = batch.column(0)
                if column.null_count:
                    row = start + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]) + 1
                    raise InputError(f"row {row}: no vector", file=str(path), field=chosen)
                lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
                if (lengths != width).any():
                    at = int(np.flatnonzero(lengths != width)[0])
                    raise InputError(f"row {start + at + 1}: vector has {lengths[at]} values, row 1 has {width}",
                                     file=str(path), field=chosen)
                flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
                try:
                    block = np.asarray(flat, dtype=np.float32).reshape(len(column), width)
                except (TypeError, ValueError):
                    raise InputError("the vector column does not hold numbers", file=str(path),
                                     field=chosen) from None
                start += len(column)
                yield block

        return ids, _Matrix(path, n_rows, width, list_blocks), id_col
    numeric = [c for c in others if pa.types.is_integer(types[c]) or pa.types.is_floating(types[c])]
    if not numeric:
        raise InputError(f"no vector column: expected one list column or numeric columns besides '{id_col}'",
                         file=str(path))

    def wide_blocks(rows: int) -> Iterator[np.ndarray]:
        for batch in batches(numeric, rows):
            yield np.column_stack([batch.column(i).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
                                   for i in range(len(numeric))])

    return ids, _Matrix(path, n_rows, len(numeric), wide_blocks), id_col


def _ids_beside(path: Path) -> Path | None:
    for candidate in (f"{path.stem}_ids.csv", f"{path.stem}_ids.txt", f"{path.stem}.ids.txt", f"{path.stem}_ids.tsv"):
        if (path.parent / candidate).exists():
            return path.parent / candidate
    return None


def _read_ids(path: Path, index: "_Catalogue | dict[str, int]", encoding: str | None,
              id_column: str | None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Ids in row order with their lines: a one-id-per-line file or a delimited file with a header."""
    text = read_text(path, encoding)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise InputError("the file is empty", file=str(path), line=1)
    sep = sniff_separator(first)
    if sep in first:
        from ..events import drive

        table = drive(read_delimited(path, text, sep, reader="csv"))
        explicit = {"item_id": id_column} if id_column else None
        res = resolve_columns("items", table.columns, explicit, file=str(path), line=1)
        if "item_id" not in res.mapping:
            raise res.problems[0]
        column = res.mapping["item_id"]
        ids, _ = normalize_ids(table.frame[column], from_text=True)
        return ids, table.lines, column
    # one id per line; a first line that names an id column (and is no item) is a header
    values, lines = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        value = line.strip()
        if value:
            values.append(value)
            lines.append(number)
    header_names = set(TARGETS["items"][0].aliases)
    if values and values[0] not in index and norm(values[0]) in header_names:
        values, lines = values[1:], lines[1:]
    if not values:
        raise InputError("the file has no ids", file=str(path), line=1)
    import pandas as pd

    ids, _ = normalize_ids(pd.Series(values, dtype=object), from_text=True)
    return ids, np.asarray(lines), None
