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
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .. import wording
from ..errors import InputError, ProjectError
from ..store import ProjectStore
from .columns import TARGETS, norm, resolve_columns
from .readers import read_delimited, read_text, sniff_separator
from .values import normalize_ids

_VECTOR_NAMES = ("embedding", "embeddings", "vector", "vectors", "emb", "values")


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
        not catalogue items, catalogue items without a vector, non-finite values.
    """
    path = Path(path)
    n_items = store.item_count()
    if n_items == 0:
        raise ProjectError(f"{store.path}: the catalogue is empty; import items before their embeddings")
    if not path.exists():
        raise InputError("no such file", file=str(path))
    index = store.item_index()
    sources = [path]
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if path.suffix.lower() == ".npy" or magic.startswith(b"\x93NUMPY"):
        vectors = _load_npy(path)
        ids_file = Path(ids_path) if ids_path is not None else _ids_beside(path)
        if ids_file is None:
            raise InputError("a .npy matrix needs the item ids of its rows", file=str(path),
                             hint=wording.hint("embedding_ids"))
        ids, lines, id_field = _read_ids(ids_file, index, encoding, id_column)
        sources.append(ids_file)
        if len(ids) != len(vectors):
            raise InputError(f"{len(ids)} ids for a matrix of {len(vectors)} rows", file=str(ids_file),
                             hint="the ids file must list one id per matrix row, in row order")
        where_file, unit = ids_file, "line"
    elif path.suffix.lower() in (".parquet", ".pq") or magic.startswith(b"PAR1"):
        ids, vectors, id_field = _read_parquet(path, id_column)
        lines = np.arange(1, len(ids) + 1)
        where_file, unit = path, "row"
    else:
        raise InputError("expected a .npy matrix (with its ids file) or a .parquet file", file=str(path))

    def located(pos: int, message: str, hint: str | None = None) -> InputError:
        if unit == "line":
            return InputError(message, file=str(where_file), line=int(lines[pos]), field=id_field, hint=hint)
        return InputError(f"row {int(lines[pos])}: {message}", file=str(where_file), field=id_field, hint=hint)

    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InputError(f"vector of row {pos + 1} has NaN or infinite values ({int(bad.sum())} rows like this)",
                         file=str(path))
    seen: dict[str, int] = {}
    for pos, item_id in enumerate(ids):
        if item_id is None:
            raise located(pos, "empty item id")
        if item_id in seen:
            raise located(pos, f"duplicate item id '{item_id}' (first at {unit} {int(lines[seen[item_id]])})")
        seen[item_id] = pos
    unknown = [pos for pos, item_id in enumerate(ids) if item_id not in index]
    if unknown:
        examples = ", ".join(repr(ids[p]) for p in unknown[:5])
        raise located(unknown[0], f"{len(unknown)} of {len(ids)} ids are not items of the project "
                                  f"(e.g. {examples})", hint="import those items first, or drop their rows")
    if len(ids) < n_items:
        missing = [item_id for item_id in store.item_ids() if item_id not in seen]
        examples = ", ".join(repr(m) for m in missing[:5])
        raise InputError(f"{len(missing)} of {n_items} catalogue items have no vector (e.g. {examples})",
                         file=str(where_file), field=id_field,
                         hint="the file must hold one vector for every item of the project")

    order = np.empty(n_items, dtype=np.int64)
    order[np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))] = np.arange(len(ids))
    vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)

    digest = hashlib.sha256()
    for source in sources:
        with open(source, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    key = "imported-" + digest.hexdigest()[:32]
    cached = store.find_embedding_set(key)
    if cached is not None and cached.n_items == n_items:
        return cached.id
    norms = np.linalg.norm(vectors[: min(len(vectors), 1000)], axis=1)
    return store.save_embedding_set(
        name=name or f"imported / {path.name}",
        model=model_name or "imported",
        template=None,
        strategy="imported",
        cache_key=key,
        vectors=vectors,
        params={"source": path.name, "ids": sources[1].name if len(sources) > 1 else None,
                "sha256": digest.hexdigest(), "normalized": bool(np.allclose(norms, 1.0, atol=1e-3))},
    )


def _load_npy(path: Path) -> np.ndarray:
    try:
        matrix = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused on purpose
        raise InputError(f"cannot read the matrix: {exc}", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"not a .npy file ({exc})", file=str(path)) from None
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise InputError(f"expected a 2-D matrix with one row per item, got shape {matrix.shape}", file=str(path))
    if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise InputError(f"expected a real numeric matrix, got dtype {matrix.dtype}", file=str(path))
    return np.asarray(matrix, dtype=np.float32)


def _ids_beside(path: Path) -> Path | None:
    for candidate in (f"{path.stem}_ids.csv", f"{path.stem}_ids.txt", f"{path.stem}.ids.txt", f"{path.stem}_ids.tsv"):
        if (path.parent / candidate).exists():
            return path.parent / candidate
    return None


def _read_ids(path: Path, index: dict[str, int], encoding: str | None,
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


def _read_parquet(path: Path, id_column: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({exc})", file=str(path)) from None
    if table.num_rows == 0:
        raise InputError("the file has no rows", file=str(path))
    columns = [str(c) for c in table.column_names]
    res = resolve_columns("items", columns, {"item_id": id_column} if id_column else None, file=str(path),
                          line=None)
    if "item_id" not in res.mapping:
        raise res.problems[0]
    id_col = res.mapping["item_id"]
    ids, _ = normalize_ids(pd.Series(table.column(id_col).to_pylist(), dtype=object), from_text=False)
    others = [c for c in columns if c != id_col]
    lists = [c for c in others if pa.types.is_list(table.schema.field(c).type)
             or pa.types.is_large_list(table.schema.field(c).type)
             or pa.types.is_fixed_size_list(table.schema.field(c).type)]
    if lists:
        chosen = lists[0] if len(lists) == 1 else next((c for c in lists if norm(c) in _VECTOR_NAMES), None)
        if chosen is None:
            raise InputError(f"several list columns ({', '.join(lists)}); cannot tell which holds the vectors",
                             file=str(path), hint="keep only the vector column, or name it 'embedding'")
        column = table.column(chosen).combine_chunks()
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]) + 1
            raise InputError(f"row {row}: no vector", file=str(path), field=chosen)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(set(lengths.tolist())) != 1:
            row = int(np.flatnonzero(lengths != lengths[0])[0]) + 1
            raise InputError(f"row {row}: vector has {lengths[row - 1]} values, row 1 has {lengths[0]}",
                             file=str(path), field=chosen)
        flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        try:
            vectors = np.asarray(flat, dtype=np.float32).reshape(len(column), int(lengths[0]))
        except (TypeError, ValueError):
            raise InputError("the vector column does not hold numbers", file=str(path), field=chosen) from None
        return ids, vectors, id_col
    numeric = [c for c in others if pa.types.is_integer(table.schema.field(c).type)
               or pa.types.is_floating(table.schema.field(c).type)]
    if not numeric:
        raise InputError(f"no vector column: expected one list column or numeric columns besides '{id_col}'",
                         file=str(path))
    vectors = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
                               for c in numeric])
    return ids, vectors, id_col
