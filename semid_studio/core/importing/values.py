"""Turning raw cell values into the project's types: ids, timestamps, numbers, lists, prices.

Every function here is column-wise (a whole pandas Series in, a numpy array out) and never
raises on a bad value: it returns a mask of the values it could not read, so that the caller
can name the first bad line and count the rest.

Rules (also in the module docstring of :mod:`semid_studio.core.importing`):

- **Ids are text.** Delimited files are read as strings, so ``0123`` and the ASIN
  ``7806397051`` stay exactly as written. A column of a delimited file in which *every*
  non-empty id looks like ``17850.0`` is an integer column that a spreadsheet or pandas wrote as
  floats because of empty cells; its ids lose the ``.0`` (``17850``). The rule is per column, so
  a column that mixes ``1.0`` and ``abc`` keeps both as written. Numbers in JSON / Parquet are
  written without a trailing ``.0`` when integral (``17850.0`` -> ``17850``).
- **Timestamps** become float unix seconds (UTC). Numbers are unix seconds, milliseconds,
  microseconds or nanoseconds, decided per value by magnitude (< 1e11 s, < 1e14 ms, < 1e17 us,
  else ns: 1e11 s is the year 5138, 1e11 ms is 1973). Text is an ISO date / datetime
  (``2010-12-01``, ``2010-12-01 08:26:00``, ``2010-12-01T08:26:00+01:00``) or a common date
  string whose format is inferred from the value (``12/1/2010 8:26``, ``01-Jan-1995``,
  ``09 1, 2013``). Dates without a time zone are taken as UTC.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

_FLOAT_ID = re.compile(r"^[+-]?\d+\.0+$")
_INT_TEXT = r"[+-]?\d+"
_NUM_TEXT = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
_LEADING_ZERO = r"[+-]?0\d"
_PRICE = re.compile(r"[-+]?\d[\d,]*(\.\d+)?|[-+]?\.\d+")

#: explicit date formats tried when pandas cannot guess one from a value
_DATE_FORMATS = (
    "%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%B %d, %Y", "%m %d, %Y",
    "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%d.%m.%Y", "%d.%m.%Y %H:%M",
    "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%a, %d %b %Y %H:%M:%S %z", "%Y%m%d%H%M%S",
)
_EPOCH = pd.Timestamp(0, tz="UTC")


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and empty / blank strings count as missing."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def missing_mask(values: pd.Series) -> np.ndarray:
    """Boolean mask of the missing values of a column (see :func:`is_missing`)."""
    if values.dtype == object:
        return values.map(is_missing).to_numpy(dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype):
        return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy(dtype=bool)
    return values.isna().to_numpy(dtype=bool)


def _object_array(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=object, na_value=None)


# --------------------------------------------------------------------------- ids


def normalize_ids(values: pd.Series, *, from_text: bool) -> tuple[np.ndarray, bool]:
    """Ids as stripped strings (None where missing).

    Parameters
    ----------
    values
        One column as read (strings from a delimited file, Python values from JSON/Parquet).
    from_text
        True for a delimited file's column (then the ``17850.0`` column rule applies).

    Returns
    -------
    ids, float_rule_applied
        Object array of ``str`` or ``None``; whether ``.0`` suffixes were removed.
    """
    if from_text:
        text = values.astype(str).str.strip()
        ids = _object_array(text)
        empty = text.eq("").to_numpy()
        ids[empty] = None
        present = text[~empty]
        if len(present) and bool(present.str.fullmatch(_FLOAT_ID.pattern).all()):
            ids[~empty] = _object_array(present.str.replace(r"\.0+$", "", regex=True))
            return ids, True
        return ids, False
    return np.array([_id_of(v) for v in _object_array(values)], dtype=object), False


def _id_of(value: Any) -> str | None:
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip() or None


# --------------------------------------------------------------------------- timestamps


def parse_timestamps(values: pd.Series) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """Float unix seconds for every value, the mask of values that could not be read, and the
    units met (``{"seconds", "milliseconds", "date"}``) for the import report.

    Missing values are reported as bad (a timestamp that is asked for is required).
    """
    n = len(values)
    out = np.full(n, np.nan)
    units: set[str] = set()
    if n == 0:
        return out, np.zeros(0, dtype=bool), units
    values = values.reset_index(drop=True)
    missing = missing_mask(values)
    # numbers (and numeric strings) first; the cast is the fast path for a clean numeric column
    try:
        numbers = np.array(values.astype("float64").to_numpy(dtype=float, na_value=np.nan))
    except (ValueError, TypeError):
        series = values if values.dtype != object else values.where(~missing, None)
        numbers = np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    numbers[missing] = np.nan
    if values.dtype == object:  # True is not a time, although it casts to 1.0
        numbers[values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)] = np.nan
    is_num = ~np.isnan(numbers)
    if is_num.any():
        vals = numbers[is_num]
        mag = np.abs(vals)
        scale = np.select([mag < 1e11, mag < 1e14, mag < 1e17], [1.0, 1e3, 1e6], 1e9)
        out[is_num] = vals / scale
        names = {1.0: "seconds", 1e3: "milliseconds", 1e6: "microseconds", 1e9: "nanoseconds"}
        units.update(names[s] for s in np.unique(scale))
    todo = ~is_num & ~missing
    if todo.any():
        text = values[todo].map(lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v).strip())
        secs = _parse_date_strings(text)
        out[np.flatnonzero(todo)] = secs
        if not np.isnan(secs).all():
            units.add("date")
    bad = np.isnan(out) | ~np.isfinite(out)
    return out, bad, units


def _parse_date_strings(text: pd.Series) -> np.ndarray:
    """Dates as text -> float seconds (NaN where unreadable): ISO first, then formats inferred
    from the first value that is still unread (a few rounds, for columns mixing formats)."""
    from pandas.tseries.api import guess_datetime_format

    result = np.full(len(text), np.nan)
    values = text.reset_index(drop=True)
    parsed = _to_seconds(values, "ISO8601")
    result[:] = parsed
    for _round in range(6):
        left = np.flatnonzero(np.isnan(result))
        if not len(left):
            break
        sample = values.iloc[left[0]]
        candidates = [guess_datetime_format(sample)] + list(_DATE_FORMATS)
        chosen = None
        for fmt in candidates:
            if fmt and not np.isnan(_to_seconds(pd.Series([sample]), fmt)[0]):
                chosen = fmt
                break
        if chosen is None:
            break  # the first unread value matches no format: it is an error, leave NaN
        result[left] = _to_seconds(values.iloc[left], chosen)
    return result


def _to_seconds(values: pd.Series, fmt: str) -> np.ndarray:
    try:
        stamps = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    except (ValueError, TypeError, OverflowError):
        return np.full(len(values), np.nan)
    secs = (stamps - _EPOCH) / pd.Timedelta(seconds=1)
    return pd.Series(secs).to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- numbers


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats (NaN where missing), the mask of present-but-unreadable values, and the mask of
    missing values."""
    raw = pd.Series(_object_array(values), dtype=object)
    missing = raw.map(is_missing).to_numpy(dtype=bool)
    nums = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(nums) & ~missing
    return nums, bad, missing


def parse_price(value: Any) -> float | None:
    """``12.99``, ``"$12.99"``, ``"$1,299.00"`` -> float; a range ``"$5.99 - $12.99"`` gives its
    lower end; anything without a number (HTML junk in some Amazon dumps) gives None."""
    if is_missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if len(text) > 40:  # long strings are scraped page fragments, not prices
        return None
    match = _PRICE.search(text)
    if match is None:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


# --------------------------------------------------------------------------- attributes


def plain(value: Any) -> Any:
    """A JSON-friendly Python value: numpy scalars/arrays unwrapped, NaN -> None, tuples -> lists."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value


def infer_text_column(values: pd.Series) -> list:
    """Type a delimited file's attribute column: all-integer text -> int, all-number -> float,
    all ``[...]`` JSON lists -> lists, else strings. Empty cells -> None.

    Numbers with a leading zero (``0123``, zip codes, EAN codes) and integers longer than 15
    digits (where a float would lose digits) keep the column as text.
    """
    text = values.astype(str).str.strip()
    empty = text.eq("")
    present = text[~empty]
    out = _object_array(text)
    out[empty.to_numpy()] = None
    if not len(present):
        return out.tolist()
    if bool(present.str.fullmatch(_NUM_TEXT).all()) and not bool(present.str.match(_LEADING_ZERO).any()):
        if bool(present.str.fullmatch(_INT_TEXT).all()):
            if int(present.str.len().max()) <= 15:  # longer codes would not survive a float
                out[~empty.to_numpy()] = [int(v) for v in present]
        else:
            out[~empty.to_numpy()] = [float(v) for v in present]
        return out.tolist()
    if bool((present.str.startswith("[") & present.str.endswith("]")).all()):
        try:
            out[~empty.to_numpy()] = [json.loads(v) for v in present]
            return out.tolist()
        except ValueError:
            pass
    return out.tolist()


def split_list(value: Any, sep: str) -> list[str] | None:
    """``"A|B|C"`` -> ``["A", "B", "C"]`` (empty parts dropped); lists pass through."""
    if isinstance(value, list):
        return value
    if is_missing(value):
        return None
    return [part.strip() for part in str(value).split(sep) if part.strip()]


def clean_text(value: Any) -> str | None:
    """A text field (title, query) as a stripped string; lists are joined with ", "."""
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [clean_text(v) for v in value]
        joined = ", ".join(p for p in parts if p)
        return joined or None
    if is_missing(value):
        return None
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None
