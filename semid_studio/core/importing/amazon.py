"""Amazon review dumps of the McAuley lab: reviews (2014 / 2018 / 2023 keys; the review text
is not imported) and metadata (2014 Python literals read with ``ast.literal_eval``, 2018, 2023),
with price as a float and the sales rank as an int with its category."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..events import NEVER, CancelToken, TaskGenerator
from .readers import Table, read_json_records, read_text, records_frame
from .values import is_missing, parse_price, plain


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
