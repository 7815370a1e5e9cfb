"""RecBole atomic files (``.inter``, ``.item``, ``.user``): typed headers
(``item_id:token``, ``class:token_seq``), the type suffix dropped, ``float`` columns as
numbers and ``token_seq`` columns as lists."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ..events import NEVER, CancelToken, TaskGenerator
from .readers import Table, read_delimited, read_text
from .values import is_missing


_RECBOLE_TYPES = {"token": "str", "float": "float", "token_seq": "list", "float_seq": "float_list"}


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
