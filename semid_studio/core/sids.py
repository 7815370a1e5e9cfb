"""Semantic IDs: the dedup level, SID strings, code-health metrics and look-ups.

A quantiser gives every item a tuple of ``L`` semantic codes, coarse to fine. Items that
share a tuple (a *collision group*) get one more code, the **dedup level**: 0, 1, 2, ... in
idx order within the group, 0 for an item whose tuple is unique. The dedup level is never
dropped (method.md, section 3: counting a shared SID as a hit inflates every metric); its
size is the largest collision group. The result is the ``codes`` array ``(n_items, L + 1)``
that the project stores, aligned to item ``idx``.

SID strings write one token per level with letters ``a, b, c, ...``:
``<a_12><b_200><c_7><d_0>``. :func:`parse_sid` reads those (and prefixes of them) back, as
well as the short form ``12,200,7``.

:func:`code_health` measures what the method notes ask every run to report: per-level code
usage and entropy, the share of items whose tuple is unique before dedup, the largest
collision group, the relative reconstruction error and the purity of level-1 and level-2
prefixes against a label field (e.g. ``categories[1]``). :class:`SidIndex` answers
item -> SID and SID prefix -> items with sorted arrays and binary search, so that a 100k-item
catalogue is instant and the GUI's lazily expanded SID tree costs one ``children()`` per node.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import wording
from .errors import InputError

_TOKEN_RE = re.compile(r"<([a-z])_(\d+)>")
_LABEL_RE = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[\s*(-?\d+)\s*\])?\s*$")


def level_letter(level: int) -> str:
    """Letter of a 0-based level: 0 -> ``a``, 1 -> ``b``, ... (26 levels at most)."""
    if not 0 <= level < 26:
        raise ValueError(f"SID level {level} is out of range (26 levels at most)")
    return chr(ord("a") + level)


# --------------------------------------------------------------------------- dedup level


def _lexsort_rows(codes: np.ndarray) -> np.ndarray:
    """Row order sorting ``codes`` lexicographically by column 0, then 1, ...; ties by idx."""
    n, width = codes.shape
    keys = [np.arange(n)] + [codes[:, j] for j in range(width - 1, -1, -1)]
    return np.lexsort(keys)


def _group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Boolean mask: True where a sorted row differs from the row before it."""
    n = sorted_codes.shape[0]
    starts = np.ones(n, dtype=bool)
    if n > 1 and sorted_codes.shape[1] > 0:
        starts[1:] = np.any(sorted_codes[1:] != sorted_codes[:-1], axis=1)
    elif n > 1:
        starts[1:] = False
    return starts


def add_dedup_level(codes: np.ndarray) -> np.ndarray:
    """Append the dedup code to every row of semantic codes.

    Parameters
    ----------
    codes : np.ndarray
        Semantic codes ``(n_items, L)``, non-negative integers.

    Returns
    -------
    np.ndarray
        ``(n_items, L + 1)`` int64: the input columns plus the dedup code, which is the rank
        of the item (in idx order) among the items sharing its tuple, so 0 for unique tuples.
        Every row of the result is distinct.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (n_items, levels), got shape {codes.shape}")
    codes = codes.astype(np.int64, copy=False)
    n = codes.shape[0]
    dedup = np.zeros(n, dtype=np.int64)
    if n:
        order = _lexsort_rows(codes)
        starts = _group_starts(codes[order])
        group_start_pos = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        dedup[order] = np.arange(n) - group_start_pos
    return np.concatenate([codes, dedup[:, None]], axis=1)


def default_level_sizes(codes: np.ndarray, dedup_headroom: int = 4) -> list[int]:
    """Codes per level: ``max + 1`` for the semantic levels (a codebook's unused tail codes
    still get a slot) and room for ``dedup_headroom`` more collisions on the dedup level, so
    cold-start items that collide with existing ones stay representable."""
    codes = np.asarray(codes)
    sizes = [int(codes[:, i].max()) + 1 for i in range(codes.shape[1])]
    sizes[-1] += dedup_headroom
    return sizes


# --------------------------------------------------------------------------- SID strings


def sid_string(row: Sequence[int]) -> str:
    """One SID (or prefix) as text: ``(12, 200, 7, 0)`` -> ``<a_12><b_200><c_7><d_0>``."""
    return "".join(f"<{level_letter(j)}_{int(c)}>" for j, c in enumerate(row))


def sid_strings(codes: np.ndarray) -> list[str]:
    """SID strings of every row of ``codes`` (n, width), in row order.

    Token texts are built once per (level, code), so this is a join per item, not a format.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D, got shape {codes.shape}")
    if codes.size and codes.min() < 0:
        raise ValueError("SID codes must be non-negative")
    tokens = [np.array([f"<{level_letter(j)}_{c}>" for c in range(int(codes[:, j].max(initial=0)) + 1)],
                       dtype=object) for j in range(codes.shape[1])]
    columns = [tokens[j][codes[:, j]] for j in range(codes.shape[1])]
    return ["".join(parts) for parts in zip(*columns)] if columns else [""] * codes.shape[0]


def parse_sid(text: str) -> tuple[int, ...]:
    """Read a SID or SID prefix back into codes.

    Accepts the token form ``<a_12><b_200>`` (letters in level order, whitespace between
    tokens allowed) and the short form ``12,200`` (commas, spaces or slashes between codes).

    Raises
    ------
    InputError
        For empty or malformed text, naming what is wrong and where.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty SID; write it like '<a_12><b_200>' or '12,200'", field="sid")
    stripped = text.strip()
    if stripped.startswith("<"):
        codes: list[int] = []
        pos = 0
        for match in _TOKEN_RE.finditer(stripped):
            gap = stripped[pos : match.start()]
            if gap.strip():
                raise InputError(f"cannot read SID {text!r}: unexpected {gap.strip()!r} at character {pos + 1}",
                                 field="sid")
            letter, code = match.group(1), int(match.group(2))
            expected = level_letter(len(codes))
            if letter != expected:
                raise InputError(
                    f"cannot read SID {text!r}: token {len(codes) + 1} is <{letter}_{code}> but level "
                    f"{len(codes) + 1} is written '{expected}'",
                    field="sid",
                )
            codes.append(code)
            pos = match.end()
        rest = stripped[pos:]
        if rest.strip() or not codes:
            raise InputError(
                f"cannot read SID {text!r}: expected tokens like <a_12><b_200>, found {rest.strip() or stripped!r}",
                field="sid",
            )
        return tuple(codes)
    parts = [p for p in re.split(r"[\s,/]+", stripped) if p]
    if not all(p.isdigit() for p in parts):
        bad = next(p for p in parts if not p.isdigit())
        raise InputError(
            f"cannot read SID {text!r}: {bad!r} is not a non-negative whole number "
            "(write '<a_12><b_200>' or '12,200')",
            field="sid",
        )
    return tuple(int(p) for p in parts)


# --------------------------------------------------------------------------- labels for purity


def label_values(items_frame: pd.DataFrame, field_spec: str, kinds: Mapping[str, str] | None = None) -> np.ndarray:
    """Label of every item for purity, from a field spec.

    Parameters
    ----------
    items_frame : pd.DataFrame
        The catalogue (``store.items_frame()``), one row per item in idx order.
    field_spec : str
        ``field`` (a scalar field, or a list field: a path's first level that is not the same for
        every item, a set's values), or ``field[i]`` (element ``i`` of a path such as a category
        path).
    kinds : mapping, optional
        Field -> ``path`` / ``set`` (:mod:`.field_kinds`); a list field not in it is detected.

    Returns
    -------
    np.ndarray
        Object array: a string per item, ``None`` where an item has no value; for a set field a
        tuple of the item's values (sorted, distinct) instead of a string.

    Raises
    ------
    InputError
        When the spec is malformed, the field is unknown, or no item has a value.
    """
    from .field_kinds import detect_list_kind

    match = _LABEL_RE.match(field_spec or "")
    if not match:
        raise InputError(f"cannot read label field {field_spec!r}; write 'field' or 'field[1]'",
                         field="label field")
    name, index = match.group(1), match.group(2)
    columns = [c for c in items_frame.columns]
    if name not in columns:
        raise InputError(f"unknown label field; the catalogue has {sorted(map(str, columns))}", field=name)
    raw = [v.tolist() if isinstance(v, np.ndarray) else v for v in items_frame[name].tolist()]
    is_list = [isinstance(v, (list, tuple)) for v in raw]
    kind = None
    if any(is_list):
        kind = (kinds or {}).get(name) or detect_list_kind(raw)[0]
    if index is not None:
        i = int(index)
        if not any(is_list):
            raise InputError(f"'{name}[{i}]' needs a list field, but '{name}' holds single values", field=name)
        if kind == "set":
            raise InputError(f"'{name}' holds sets of values, not paths: measure purity against '{name}' "
                             f"(every value counts), or {wording.hint('field_kind_import', name=name, other='path')}", field=name)
        values = [_as_label(v[i]) if lst and -len(v) <= i < len(v) else None for v, lst in zip(raw, is_list)]
    elif kind == "set":
        values = [_as_set(v) if lst else _as_set([v]) for v, lst in zip(raw, is_list)]
    elif any(is_list):
        values = _first_varying_level(raw, is_list)
    else:
        values = [_as_label(v) for v in raw]
    canonical: dict = {}  # one object per distinct label: a million items share a few thousand
    out = np.empty(len(values), dtype=object)
    out[:] = [v if v is None else canonical.setdefault(v, v) for v in values]  # element-wise: tuples stay tuples
    if not any(v is not None for v in values):
        raise InputError(f"label field {field_spec!r} has no value for any item", field=name)
    return out


def store_label_values(store, field_spec: str) -> np.ndarray:
    """:func:`label_values` over a project's catalogue, with the kinds stored for its list fields.

    Only the field itself is read (``json_extract`` row by row): a whole ``items_frame`` of a
    million items costs over a gigabyte, and most of it stays held by the allocator after.
    """
    import json

    from .field_kinds import stored_field_kinds

    match = _LABEL_RE.match(field_spec or "")
    name = match.group(1) if match else None
    if name is None or name in ("item_id", "title") or name not in store.item_fields():
        # a malformed spec, a column, or a field that is rare or absent: the whole frame, as always
        return label_values(store.items_frame(), field_spec, stored_field_kinds(store))
    path = '$."' + name.replace('"', '\\"') + '"'
    constants = {"true": True, "false": False}
    values = [json.loads(value) if kind in ("array", "object") else constants.get(kind, value)
              for value, kind in store.db.execute(
                  "SELECT json_extract(attrs, ?), json_type(attrs, ?) FROM items ORDER BY idx", [path, path])]
    frame = pd.DataFrame({name: pd.Series(values, dtype=object)})
    del values
    return label_values(frame, field_spec, stored_field_kinds(store))


def _as_set(values) -> tuple[str, ...] | None:
    labels = sorted({label for label in (_as_label(v) for v in values) if label is not None})
    return tuple(labels) or None


def _as_label(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _first_varying_level(raw: list, is_list: list[bool]) -> list[str | None]:
    """For a list field, the first position whose values (among items that have one) differ."""
    depth = max((len(v) for v, lst in zip(raw, is_list) if lst), default=0)
    level_values: list[str | None] = []
    for i in range(depth):
        level_values = [_as_label(v[i]) if lst and i < len(v) else None for v, lst in zip(raw, is_list)]
        if len({v for v in level_values if v is not None}) > 1:
            return level_values
    return level_values  # every level is constant: purity is trivially 1


# --------------------------------------------------------------------------- health


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0


def _prefix_purity(codes: np.ndarray, labels: np.ndarray) -> float:
    """Share of labelled items whose label is the majority label of their prefix group.

    For a set field (labels are tuples) an item counts once for every value it carries, and the
    majority of a group is the value the most of its items carry: the share of items that carry
    their group's most common value.
    """
    has = np.array([v is not None for v in labels])
    if not has.any():
        return float("nan")
    _, prefix_id = np.unique(codes[has], axis=0, return_inverse=True)
    prefix_id = prefix_id.ravel()
    kept = labels[has]
    if any(isinstance(v, tuple) for v in kept):
        sizes = np.array([len(v) if isinstance(v, tuple) else 1 for v in kept])
        flat = [x for v in kept for x in (v if isinstance(v, tuple) else (v,))]
        prefix_id = np.repeat(prefix_id, sizes)  # one (prefix, value) pair per value of an item
    else:
        flat = kept.astype(str)
    _, label_id = np.unique(np.asarray(flat, dtype=str), return_inverse=True)
    pair = np.stack([prefix_id, label_id.ravel()], axis=1)
    pairs, pair_counts = np.unique(pair, axis=0, return_counts=True)
    # majority count per prefix = max over the (prefix, label) counts of that prefix
    best = np.zeros(int(prefix_id.max()) + 1, dtype=np.int64)
    np.maximum.at(best, pairs[:, 0], pair_counts)
    return float(best.sum() / has.sum())


#: rows per block of the reconstruction-error pass
_HEALTH_BLOCK = 32768


def code_health(
    codes_with_dedup: np.ndarray,
    n_levels: int,
    codebook_size: int,
    vectors: np.ndarray | None = None,
    reconstructions: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    label_field: str | None = None,
) -> dict:
    """Health figures of a SID table (JSON-able).

    Parameters
    ----------
    codes_with_dedup : np.ndarray
        ``(n_items, n_levels + 1)`` codes, last column the dedup level.
    n_levels : int
        Number of semantic levels ``L``.
    codebook_size : int
        Codes per semantic level ``K`` (for usage shares and the entropy ceiling).
    vectors, reconstructions : np.ndarray, optional
        The quantiser's input vectors and their reconstructions, for the relative
        reconstruction error ``sum ||x - x_hat||^2 / sum ||x||^2``.
    labels : np.ndarray, optional
        One label per item (``None`` = unlabelled, left out of purity), e.g. from
        :func:`label_values`.
    label_field : str, optional
        The label field spec, recorded next to the purity figures.

    Returns
    -------
    dict
        ``n_items, levels, codebook_size, per_level`` (list of ``level, used, usage, entropy_bits,
        max_entropy_bits, largest_code``), ``unique_share`` (items whose L-tuple is unique
        before dedup), ``n_unique_tuples``, ``collision_groups``, ``items_in_collisions``,
        ``largest_collision_group``, ``dedup_level_size`` and, when given the inputs,
        ``relative_reconstruction_error`` and ``purity``.
    """
    codes = np.asarray(codes_with_dedup, dtype=np.int64)
    n = codes.shape[0]
    if codes.ndim != 2 or codes.shape[1] != n_levels + 1:
        raise ValueError(f"expected codes (n, {n_levels + 1}) with the dedup level, got {codes.shape}")
    per_level = []
    for j in range(n_levels):
        counts = np.bincount(codes[:, j], minlength=codebook_size)
        per_level.append({
            "level": j + 1,
            "used": int((counts > 0).sum()),
            "usage": float((counts > 0).sum() / codebook_size),
            "entropy_bits": round(_entropy_bits(counts), 4),
            "max_entropy_bits": round(math.log2(codebook_size), 4),
            "largest_code": int(counts.max()) if n else 0,
        })
    semantic = codes[:, :n_levels]
    if n:
        _, group_sizes = np.unique(semantic, axis=0, return_counts=True)
    else:
        group_sizes = np.zeros(0, dtype=np.int64)
    colliding = group_sizes[group_sizes > 1]
    metrics: dict = {
        "n_items": int(n),
        "levels": int(n_levels),
        "codebook_size": int(codebook_size),
        "per_level": per_level,
        "unique_share": float((group_sizes == 1).sum() / n) if n else 1.0,
        "n_unique_tuples": int(len(group_sizes)),
        "collision_groups": int(len(colliding)),
        "items_in_collisions": int(colliding.sum()),
        "largest_collision_group": int(group_sizes.max()) if n else 0,
        "dedup_level_size": int(codes[:, -1].max() + 1) if n else 0,
        "all_sids_unique": bool(len(np.unique(codes, axis=0)) == n) if n else True,
    }
    if vectors is not None and reconstructions is not None:
        err = total = 0.0
        for start in range(0, len(vectors), _HEALTH_BLOCK):  # float64 in row blocks, never of the whole array
            x = np.asarray(vectors[start : start + _HEALTH_BLOCK], dtype=np.float64)
            d = x - np.asarray(reconstructions[start : start + _HEALTH_BLOCK], dtype=np.float64)
            err += float(np.einsum("ij,ij->", d, d))
            total += float(np.einsum("ij,ij->", x, x))
        metrics["relative_reconstruction_error"] = float(err / max(total, 1e-30))
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        if labels.shape[0] != n:
            raise ValueError(f"{labels.shape[0]} labels for {n} items")
        labelled = int(sum(v is not None for v in labels))
        distinct = {x for v in labels if v is not None for x in (v if isinstance(v, tuple) else (v,))}
        purity = {"label_field": label_field, "labelled_items": labelled, "n_labels": len(distinct)}
        if any(isinstance(v, tuple) for v in labels):
            purity["field_kind"] = "set"  # share of items carrying their prefix's most common value
        for depth in (1, 2):
            if depth <= n_levels:
                purity[f"level_{depth}"] = round(_prefix_purity(codes[:, :depth], labels), 4)
        metrics["purity"] = purity
    return metrics


#: a SID table with fewer items unique before the dedup level than this is not made active
MIN_UNIQUE_SHARE = 0.5


def degenerate_problems(metrics: dict) -> list[str]:
    """Why a quantiser result is unfit to be the project's SIDs ([] when it is fit).

    One code used at a level means that level tells no item from another (identical or
    near-identical embeddings, e.g. an empty text for every item); fewer than half the items
    unique before dedup means the arbitrary dedup counter, not the semantics, names most items.
    """
    n = metrics.get("n_items", 0)
    if n < 2:
        return []
    problems = [f"level {level_letter(lvl['level'] - 1)} uses one code for all {n:,} items"
                for lvl in metrics.get("per_level", []) if lvl["used"] <= 1]
    unique = metrics.get("unique_share", 1.0)
    if unique < MIN_UNIQUE_SHARE:
        problems.append(f"only {unique:.0%} of the items are unique before the dedup level "
                        f"(largest collision group {metrics.get('largest_collision_group'):,} items)")
    return problems


def format_health(metrics: dict) -> str:
    """A compact, human-readable table of :func:`code_health` figures (for the CLI)."""
    if not metrics or "per_level" not in metrics:
        return "health: not measured"
    k = metrics.get("codebook_size", "?")
    lines = ["level  used        entropy (bits)  largest code"]
    for lvl in metrics["per_level"]:
        lines.append(
            f"{level_letter(lvl['level'] - 1)}      {lvl['used']:>4}/{k:<5} {lvl['usage']:>4.0%}"
            f"  {lvl['entropy_bits']:>5.2f} / {lvl['max_entropy_bits']:<5.2f}   {lvl.get('largest_code', ''):>6}"
        )
    n_levels = metrics.get("levels", len(metrics["per_level"]))
    lines.append(
        f"{level_letter(n_levels)}      dedup level, size {metrics.get('dedup_level_size')}"
    )
    if "unique_share" in metrics:
        lines.append(
            f"unique before dedup {metrics['unique_share']:.1%} of {metrics.get('n_items', 0):,} items; "
            f"largest collision group {metrics.get('largest_collision_group')}; "
            f"{metrics.get('collision_groups', 0):,} collision groups ({metrics.get('items_in_collisions', 0):,} items)"
        )
    if "unmatched_unique_share" in metrics:
        lines.append(
            f"  (before the collision-aware last level: {metrics['unmatched_unique_share']:.1%} unique, "
            f"largest group {metrics.get('unmatched_largest_group')}; "
            f"{metrics.get('last_level_reassigned', 0):,} items moved to a free last code)"
        )
    extra = []
    if "relative_reconstruction_error" in metrics:
        extra.append(f"relative reconstruction error {metrics['relative_reconstruction_error']:.4f}")
    if "fit_seconds" in metrics:
        extra.append(f"fit {metrics['fit_seconds']:.1f} s")
    if extra:
        lines.append("; ".join(extra))
    training = metrics.get("training")
    if training:
        lines.append(
            f"training: {training.get('epoch')} epochs, reconstruction loss {training.get('recon', float('nan')):.4f}, "
            f"quantisation loss {training.get('vq', float('nan')):.4f}, "
            f"{metrics.get('restarted_codes', 0):,} dead codes restarted"
        )
    purity = metrics.get("purity")
    if purity:
        levels = ", ".join(f"level {key.split('_')[1]} {purity[key]:.3f}"
                           for key in ("level_1", "level_2") if key in purity)
        lines.append(f"purity vs '{purity.get('label_field')}' ({purity.get('n_labels')} labels, "
                     f"{purity.get('labelled_items'):,} items): {levels}")
    return "\n".join(lines)


def health_summary(metrics: dict) -> str:
    """The health of a run in one line (for logs and status bars)."""
    if not metrics or "unique_share" not in metrics:
        return "health not measured"
    parts = [f"{metrics['unique_share']:.1%} unique before dedup",
             f"largest collision group {metrics.get('largest_collision_group')}"]
    if metrics.get("per_level"):
        parts.append("codes used " + "/".join(str(lvl["used"]) for lvl in metrics["per_level"]))
    purity = metrics.get("purity") or {}
    if "level_1" in purity:
        parts.append(f"level-1 purity {purity['level_1']:.3f}")
    if "relative_reconstruction_error" in metrics:
        parts.append(f"reconstruction error {metrics['relative_reconstruction_error']:.3f}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- look-ups


class SidIndex:
    """Item <-> SID look-ups over a codes array, by sorted order and binary search.

    Parameters
    ----------
    codes : np.ndarray
        ``(n_items, L + 1)`` codes (with the dedup level), row i = item idx i.

    Notes
    -----
    Rows are sorted lexicographically once (``np.lexsort``); a prefix is a contiguous range
    of that order, found with one ``searchsorted`` per prefix code. ``children()`` of a node
    is then a scan of its range only.
    """

    def __init__(self, codes: np.ndarray) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2:
            raise ValueError(f"codes must be 2-D, got shape {codes.shape}")
        self.codes = codes
        self.n_items, self.width = codes.shape
        self.order = _lexsort_rows(codes) if self.n_items else np.zeros(0, dtype=np.int64)
        self.sorted_codes = codes[self.order]

    def _range(self, prefix: Sequence[int]) -> tuple[int, int]:
        prefix = tuple(int(c) for c in prefix)
        if len(prefix) > self.width:
            raise InputError(f"SID prefix {sid_string(prefix)} has {len(prefix)} levels; these SIDs have "
                             f"{self.width}", field="sid")
        lo, hi = 0, self.n_items
        for j, code in enumerate(prefix):
            column = self.sorted_codes[lo:hi, j]  # sorted, because the prefix before j is fixed
            lo, hi = lo + int(np.searchsorted(column, code, "left")), lo + int(np.searchsorted(column, code, "right"))
            if lo == hi:
                break
        return lo, hi

    def items(self, prefix: Sequence[int] = ()) -> np.ndarray:
        """Item idxs whose SID starts with ``prefix``, in SID order (``()`` = every item)."""
        lo, hi = self._range(prefix)
        return self.order[lo:hi].copy()

    def count(self, prefix: Sequence[int] = ()) -> int:
        """Number of items under ``prefix``."""
        lo, hi = self._range(prefix)
        return hi - lo

    def children(self, prefix: Sequence[int] = ()) -> list[tuple[int, int]]:
        """``(code, item count)`` of every code that follows ``prefix``, in code order."""
        depth = len(tuple(prefix))
        if depth >= self.width:
            return []
        lo, hi = self._range(prefix)
        if lo == hi:
            return []
        column = self.sorted_codes[lo:hi, depth]
        starts = np.flatnonzero(np.concatenate([[True], column[1:] != column[:-1]]))
        counts = np.diff(np.append(starts, hi - lo))
        return [(int(c), int(k)) for c, k in zip(column[starts], counts)]

    def path(self, idx: int) -> tuple[int, ...]:
        """The full SID (codes) of item ``idx``."""
        if not 0 <= int(idx) < self.n_items:
            raise IndexError(f"item idx {idx} is out of range 0..{self.n_items - 1}")
        return tuple(int(c) for c in self.codes[int(idx)])

    def find(self, sid: Sequence[int]) -> int | None:
        """The item whose full SID is ``sid``, or None."""
        if len(tuple(sid)) != self.width:
            return None
        found = self.items(sid)
        return int(found[0]) if len(found) else None

    def prefix_counts(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Distinct prefixes of ``level`` codes and their item counts.

        Returns ``(prefixes (m, level), counts (m,))`` in SID order.
        """
        if not 1 <= level <= self.width:
            raise ValueError(f"level must be in 1..{self.width}, got {level}")
        if self.n_items == 0:
            return np.zeros((0, level), dtype=np.int64), np.zeros(0, dtype=np.int64)
        head = self.sorted_codes[:, :level]
        starts = np.flatnonzero(_group_starts(head))
        counts = np.diff(np.append(starts, self.n_items))
        return head[starts].copy(), counts

    def collision_groups(self) -> list[np.ndarray]:
        """Item idxs of every group sharing its semantic tuple (all columns but the dedup level)."""
        if self.n_items == 0:
            return []
        head = self.sorted_codes[:, : self.width - 1]
        starts = np.flatnonzero(_group_starts(head))
        sizes = np.diff(np.append(starts, self.n_items))
        return [self.order[s : s + k].copy() for s, k in zip(starts, sizes) if k > 1]
