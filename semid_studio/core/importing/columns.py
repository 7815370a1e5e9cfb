"""Targets per kind of file, automatic detection of the usual column names, and user mappings.

A *target* is what the project needs from a file (``item_id``, ``title``, ``user_id``,
``timestamp``, ...). Each target has a list of usual column names, compared after lower-casing
and dropping everything that is not a letter or digit (``Item ID``, ``item_id`` and ``itemId``
all read ``itemid``); the first name in the list that the file has wins. An explicit mapping
(``{"item_id": "sku"}``) always wins over detection.

Mappings come in two shapes:

- per kind: ``{"items": {"item_id": "sku"}, "interactions": {"user_id": "cust"}}``;
- flat, as the CLI's repeated ``--map TARGET=COLUMN`` gives them: ``{"item_id": "sku"}``.
  A flat key may name its kind (``"interactions.item_id": "product"``). Without one it goes to
  every file of the call whose kind has that target *and* that has the column; when only one
  such file is given it goes there (and a missing column is an error there). A target no kind
  knows (``brand``) renames an items column into that attribute: ``--map brand=Manufacturer``.
  Short names are accepted: ``item``, ``user``, ``time``/``ts``, ``query``.

A target mapped to ``None`` (or ``""``) is deliberately left unmapped: no detection for it (for
example, keep a ``name`` column as an attribute instead of using it as the title). Required
targets cannot be left unmapped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .. import wording
from ..errors import InputError

KINDS = ("items", "interactions", "queries")


def norm(name: str) -> str:
    """Column name as compared by detection: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass(frozen=True)
class Target:
    """One thing a kind of file provides, with the column names detected for it."""

    name: str
    label: str
    required: bool
    aliases: tuple[str, ...]
    recommended: bool = False
    #: names tried only when none of ``aliases`` is present (e.g. a description as the title)
    fallback: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "required": self.required,
                "recommended": self.recommended, "aliases": list(self.aliases + self.fallback)}


_ITEM = ("itemid", "item", "parentasin", "asin", "movieid", "productid", "sku", "stockcode", "articleid",
         "trackid", "songid", "bookid", "isbn", "iid", "itemkey", "productcode", "movie", "product")
_USER = ("userid", "user", "reviewerid", "customerid", "customer", "clientid", "visitorid", "accountid",
         "memberid", "uid", "sessionid")
_TIME = ("timestamp", "ts", "time", "unixreviewtime", "datetime", "date", "invoicedate", "eventtime",
         "createdat", "created", "unixtime", "epoch", "ratedat", "reviewtime")

TARGETS: dict[str, tuple[Target, ...]] = {
    "items": (
        Target("item_id", "item id", True, _ITEM + ("id",)),
        Target("title", "title", False,
               ("title", "name", "movietitle", "producttitle", "productname", "itemname", "itemtitle",
                "booktitle", "tracktitle", "trackname", "songtitle"),
               recommended=True, fallback=("description", "desc", "productdescription", "text")),
    ),
    "interactions": (
        Target("user_id", "user id", True, _USER),
        Target("item_id", "item id", True, _ITEM),
        Target("timestamp", "timestamp", True, _TIME),
        Target("rating", "rating", False, ("rating", "overall", "score", "stars", "starrating", "userrating",
                                            "rate")),
    ),
    "queries": (
        Target("text", "query text", True, ("query", "querytext", "q", "text", "searchquery", "searchterm",
                                            "querystring", "question", "request", "keywords", "keyword")),
        Target("item_id", "item id", True, _ITEM),
        Target("split", "split", False, ("split", "fold", "subset", "partition")),
        Target("query_id", "query id", False, ("queryid", "qid")),
        Target("user_id", "user id", False, _USER),
        Target("timestamp", "timestamp", False, _TIME),
    ),
}

#: short names accepted as mapping keys
TARGET_SYNONYMS = {"item": "item_id", "itemid": "item_id", "user": "user_id", "userid": "user_id",
                   "time": "timestamp", "ts": "timestamp", "query": "text", "query_text": "text",
                   "queryid": "query_id"}
KIND_SYNONYMS = {"item": "items", "items": "items", "catalog": "items", "catalogue": "items",
                 "interaction": "interactions", "interactions": "interactions", "ratings": "interactions",
                 "query": "queries", "queries": "queries"}


def target_names(kind: str) -> list[str]:
    return [t.name for t in TARGETS[kind]]


def canonical_target(name: str) -> str:
    key = name.strip()
    return TARGET_SYNONYMS.get(key, TARGET_SYNONYMS.get(key.lower(), key))


def closest_column(wanted: list[str], columns: list[str]) -> str | None:
    """The file's column most like any of ``wanted`` (difflib), or None when nothing is close."""
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(norm(col), col)
    best, best_score = None, 0.0
    for want in wanted:
        for candidate in difflib.get_close_matches(norm(want), list(by_norm), n=1, cutoff=0.6):
            score = difflib.SequenceMatcher(None, norm(want), candidate).ratio()
            if score > best_score:
                best, best_score = by_norm[candidate], score
    return best


def _columns_text(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:30])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > 30 else "")


@dataclass
class Resolved:
    """The outcome of detection for one file: target -> column, attribute renames, problems."""

    mapping: dict[str, str]
    renames: dict[str, str]  # items only: column -> attribute name
    detected: set[str]  # targets found by detection (not given by the user)
    problems: list[InputError]


def resolve_columns(kind: str, columns: list[str], explicit: dict[str, str] | None, *, file: str,
                    line: int | None) -> Resolved:
    """Match a kind's targets to a file's columns (explicit mapping first, then detection)."""
    explicit = {canonical_target(k): v for k, v in (explicit or {}).items()}
    known = {t.name: t for t in TARGETS[kind]}
    problems: list[InputError] = []
    mapping: dict[str, str] = {}
    renames: dict[str, str] = {}
    present = set(columns)
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(norm(col), col)

    for target, column in explicit.items():
        if column is None or column == "":
            continue  # deliberately unmapped: no detection for this target (see below)
        if target not in known and kind != "items":
            problems.append(InputError(
                f"unknown target '{target}' for {kind}; targets are {', '.join(known)}",
                file=file, field=target))
            continue
        if column not in present:
            # forgive case and punctuation differences, but say nothing: it is the column they meant
            match = by_norm.get(norm(column))
            if match is None:
                near = closest_column([column], columns)
                problems.append(InputError(
                    f"column '{column}' (given for {target}) is not in the file; it has {_columns_text(columns)}"
                    + (f"; did you mean '{near}'?" if near else ""),
                    file=file, line=line, field=column))
                continue
            column = match
        if target in known:
            mapping[target] = column
        else:
            renames[column] = target

    used = set(mapping.values()) | set(renames)
    detected: set[str] = set()
    for target in TARGETS[kind]:
        if target.name in mapping:
            continue
        if target.name in explicit:
            if explicit[target.name] in (None, "") and target.required:
                problems.append(InputError(f"the {target.label} is required; it cannot be left unmapped",
                                           file=file, line=line, field=target.name))
            continue  # given (and reported above if its column is missing) or deliberately unmapped
        for group in (target.aliases, target.fallback):
            found = next((by_norm[a] for a in group if a in by_norm and by_norm[a] not in used), None)
            if found is not None:
                mapping[target.name] = found
                used.add(found)
                detected.add(target.name)
                break
        if target.name not in mapping and target.required:
            near = closest_column(list(target.aliases) + [target.name], [c for c in columns if c not in used])
            problems.append(InputError(
                f"no {target.label} column; the file has {_columns_text(columns)}"
                + (f"; closest: '{near}'" if near else ""),
                file=file, line=line, field=target.name,
                hint=wording.hint("map_column", target=target.name).replace("COLUMN", near or "COLUMN")))
    return Resolved(mapping, renames, detected, problems)


def route_mapping(mapping: dict | None, columns_by_kind: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Split a flat or per-kind mapping over the kinds of the files given (see module docstring).

    Raises
    ------
    InputError
        A key that fits none of the files given (field ``mapping``).
    """
    routed: dict[str, dict[str, str | None]] = {kind: {} for kind in columns_by_kind}
    if not mapping:
        return routed
    for key, value in mapping.items():
        if isinstance(value, dict):
            kind = KIND_SYNONYMS.get(str(key).lower())
            if kind is None:
                raise InputError(f"unknown kind '{key}' in the mapping; use items, interactions or queries",
                                 field="mapping")
            if kind in routed:
                routed[kind].update({canonical_target(k): None if v is None else str(v) for k, v in value.items()})
            continue
        column = None if value is None else str(value)
        kind_part, dot, target_part = str(key).partition(".")
        if dot and KIND_SYNONYMS.get(kind_part.lower()):
            kind = KIND_SYNONYMS[kind_part.lower()]
            if kind not in routed:
                raise InputError(f"mapping '{key}={column}' is for {kind}, but no {kind} file is given",
                                 field="mapping")
            routed[kind][canonical_target(target_part)] = column
            continue
        target = canonical_target(str(key))
        candidates = [k for k in routed if target in target_names(k)]
        if not candidates:
            elsewhere = [k for k in KINDS if target in target_names(k)]
            if elsewhere:
                raise InputError(f"mapping '{key}={column}' is for {' or '.join(elsewhere)}, but no such file "
                                 "is given", field="mapping")
            if "items" in routed:
                candidates = ["items"]  # an attribute rename
            else:
                known = sorted({t for k in routed for t in target_names(k)})
                raise InputError(f"mapping '{key}={column}': unknown target; targets for the files given are "
                                 f"{', '.join(known)}", field="mapping")
        if len(candidates) == 1:
            routed[candidates[0]][target] = column
            continue
        if column is None:  # "do not use a column for this target": applies to every candidate
            for kind in candidates:
                routed[kind][target] = None
            continue
        having = [k for k in candidates if column in columns_by_kind[k]
                  or norm(column) in {norm(c) for c in columns_by_kind[k]}]
        if not having:
            raise InputError(
                f"mapping '{key}={column}': none of the {', '.join(candidates)} files has a column '{column}'",
                field="mapping", hint=wording.hint("map_kind_column", kind=candidates[0], target=target))
        for kind in having:
            routed[kind][target] = column
    return routed
