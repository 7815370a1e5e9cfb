"""List fields are either *paths* (a category path, coarse to fine) or *sets* (genres, tags).

The difference matters for labels and purity: a path is read level by level (``categories[1]``,
or its first level that varies), a set is read as all its values at once — a branch of the SID
tree is labelled with its most common value, and its purity is the share of its items that carry
that value (an item with ``Adventure|Animation|Children`` counts for all three).

Telling them apart (:func:`detect_list_kind`), over the values that occur at least twice:

- in a path a value sits at one depth (``Makeup`` is always level 2) and its parent decides it
  (``Makeup`` always follows ``Beauty``);
- in a set a value moves: ``Comedy`` is first in one film and fourth in the next, after
  whatever genre sorts before it.

So a list field is a path when at least 90% of the occurrences of its repeated values sit at
their value's usual depth and at least 80% follow their value's usual parent; otherwise it is a
set. Real data is far from both thresholds: Amazon Beauty's categories 0.985 / 0.955 (path),
ml-latest genres 0.57 / 0.43 and ml-100k genres 0.70 / 0.44 (sets). With no repeated value
there is no evidence, and the field stays a path (what it was before kinds existed).

The user can say which (``semid import --field-kind genres=set``, the import wizard); the
choice, else the detected kind, is stored in the project's meta ``field_kinds``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Mapping

FIELD_KINDS = ("path", "set")
META_KEY = "field_kinds"
_DEPTH_SHARE = 0.9
_PARENT_SHARE = 0.8


def _clean(values) -> list[str]:
    out = []
    for v in values:
        if v is None:
            continue
        text = str(v).strip()
        if text:
            out.append(text)
    return out


def detect_list_kind(lists: Iterable) -> tuple[str, str]:
    """``("path" | "set", reason)`` for a list field, from its values (one list per item).

    Non-list values (None, scalars) are ignored. See the module docstring for the rule.
    """
    depth: dict[str, Counter] = defaultdict(Counter)
    parent: dict[str, Counter] = defaultdict(Counter)
    occurrences: Counter = Counter()
    for value in lists:
        if not isinstance(value, (list, tuple)):
            continue
        parts = _clean(value)
        for i, v in enumerate(parts):
            occurrences[v] += 1
            depth[v][i] += 1
            if i:
                parent[v][parts[i - 1]] += 1
    repeated = [v for v, n in occurrences.items() if n >= 2]
    n_occ = sum(occurrences[v] for v in repeated)
    if not n_occ:
        return "path", "no value occurs twice: no evidence of a set"
    depth_share = sum(max(depth[v].values()) for v in repeated) / n_occ
    n_child = sum(sum(parent[v].values()) for v in repeated)
    parent_share = sum(max(parent[v].values()) for v in repeated if parent[v]) / n_child if n_child else 1.0
    figures = f"values at their usual position {depth_share:.0%}, after their usual predecessor {parent_share:.0%}"
    if depth_share >= _DEPTH_SHARE and parent_share >= _PARENT_SHARE:
        return "path", figures
    return "set", figures


def parse_field_kinds(pairs: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """``{"genres": "set"}`` from a mapping or from ``FIELD=KIND`` strings (the CLI's option).

    Raises
    ------
    InputError
        A kind that is not ``path`` or ``set``, or a string without ``=``.
    """
    from .errors import InputError

    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, Mapping) else []
    if not isinstance(pairs, Mapping):
        parsed = []
        for pair in pairs:
            name, eq, kind = str(pair).partition("=")
            if not eq or not name.strip():
                raise InputError(f"cannot read '{pair}'; write FIELD=path or FIELD=set, e.g. genres=set",
                                 field="field kind")
            parsed.append((name, kind))
        items = parsed
    out = {}
    for name, kind in items:
        kind = str(kind).strip().lower()
        if kind not in FIELD_KINDS:
            raise InputError(f"unknown kind '{kind}' for field '{name}'; use path or set", field=str(name).strip())
        out[str(name).strip()] = kind
    return out


def stored_field_kinds(store) -> dict[str, str]:
    """The kinds stored with a project's list fields (``{}`` for projects made before kinds)."""
    kinds = store.get_meta(META_KEY) or {}
    return {str(k): str(v) for k, v in kinds.items() if v in FIELD_KINDS}


def set_field_kinds(store, kinds: Mapping[str, str]) -> dict[str, str]:
    """Say which list fields of a project's catalogue are paths or sets; returns all stored kinds.

    Raises
    ------
    InputError
        A field the catalogue does not have, or a kind that is not ``path`` / ``set``.
    """
    from .errors import InputError

    kinds = parse_field_kinds(kinds)
    fields = store.item_fields()
    for name in kinds:
        if name not in fields:
            raise InputError(f"the catalogue has no field '{name}'; its fields are {', '.join(fields) or 'none'}",
                             file=str(store.path), field=name)
        values = store.items_frame([name])[name].tolist()
        if not any(isinstance(v, (list, tuple)) for v in values):
            raise InputError(f"'{name}' holds single values, not lists: only list fields are paths or sets",
                             file=str(store.path), field=name)
    merged = {**stored_field_kinds(store), **kinds}
    store.set_meta(META_KEY, merged)
    return merged
