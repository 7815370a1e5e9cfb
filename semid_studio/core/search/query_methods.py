"""The three query generators: candidate queries for every item of a catalogue.

``known-item`` (discriminative terms of the item's own text, Azzopardi et al. 2007),
``category-path`` (terms of its category path, Ai et al. 2017) and ``template`` (category x
brand / price band / other short fields). Each yields, item by item in catalogue order, the
candidate queries as lists of terms in random order; :func:`.queries.generate_queries` picks,
splits and stores them.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..errors import SemidError
from .query_spec import QuerySpec
from .text import content_terms, tokenize


# --------------------------------------------------------------------------- item fields


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    if isinstance(value, (list, tuple)) and not value:
        return True
    return False


def _text_of(value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(_text_of(v) for v in value)
    return str(value)


def _text_fields(items: pd.DataFrame) -> list[str]:
    """Fields whose values are mostly text (or lists of text): what queries can be made of."""
    out = []
    sample = items.head(500)
    for col in items.columns:
        if col in ("item_id",):
            continue
        vals = [v for v in sample[col].tolist() if not _is_missing(v)]
        if not vals:
            continue
        texty = sum(isinstance(v, str) or (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v))
                    for v in vals)
        if texty >= 0.8 * len(vals) and not _looks_like_urls(vals):
            out.append(col)
    return out


def _looks_like_urls(values: list) -> bool:
    strings = [v for v in values if isinstance(v, str)][:50]
    return bool(strings) and sum(s.startswith(("http://", "https://")) for s in strings) > 0.5 * len(strings)


def _check_fields(items: pd.DataFrame, names: Iterable[str], what: str) -> None:
    missing = [n for n in names if n not in items.columns]
    if missing:
        known = sorted(c for c in items.columns if c != "item_id")
        raise SemidError(f"{what}: the catalogue has no field(s) {missing}; it has {known}")


# --------------------------------------------------------------------------- known-item


def _known_item_candidates(items: pd.DataFrame, spec: QuerySpec, rng: np.random.Generator,
                           needed: int) -> Iterable[list[str]]:
    fields_ = list(spec.fields) or _text_fields(items)
    _check_fields(items, fields_, "known-item queries")
    if not fields_:
        raise SemidError("known-item queries need text fields; the catalogue has none")
    docs: list[list[str]] = []
    for rec in items[fields_].itertuples(index=False):
        terms = content_terms(" ".join(_text_of(v) for v in rec))
        docs.append(terms)
    if spec.exclude_title and "title" in items.columns:
        titles = [set(tokenize(_text_of(t))) for t in items["title"].tolist()]
        docs = [[t for t in d if t not in ti] for d, ti in zip(docs, titles)]
    n_docs = len(docs)
    df: dict[str, int] = {}
    cf: dict[str, int] = {}
    for d in docs:
        for t in set(d):
            df[t] = df.get(t, 0) + 1
        for t in d:
            cf[t] = cf.get(t, 0) + 1
    vocab = np.array(list(cf))
    background = np.array([cf[t] for t in vocab], dtype=np.float64)
    background /= max(background.sum(), 1.0)
    for terms in docs:
        # discriminative term model: tf(t, d) * idf(t), first-occurrence order kept for output
        uniq = list(dict.fromkeys(terms))
        if not uniq:
            yield []
            continue
        tf = {t: 0 for t in uniq}
        for t in terms:
            tf[t] += 1
        weights = np.array([tf[t] * math.log((1 + n_docs) / df[t]) for t in uniq], dtype=np.float64) + 1e-9
        weights /= weights.sum()
        position = {t: i for i, t in enumerate(uniq)}
        seen: set[tuple[str, ...]] = set()
        out = []
        for _ in range(needed * 8):
            if len(out) == needed:
                break
            length = int(np.clip(rng.poisson(spec.mean_length), spec.min_length, spec.max_length))
            length = min(length, len(uniq) + (1 if spec.noise > 0 else 0))
            chosen: list[str] = []
            n_item_terms = sum(rng.random() >= spec.noise for _ in range(length))
            n_item_terms = min(n_item_terms, len(uniq))
            if n_item_terms:
                chosen = list(rng.choice(len(uniq), size=n_item_terms, replace=False, p=weights))
                chosen = [uniq[i] for i in chosen]
            for _ in range(length - n_item_terms):
                chosen.append(str(vocab[rng.choice(len(vocab), p=background)]))
            chosen = list(dict.fromkeys(chosen))
            if not chosen:
                continue
            key = tuple(sorted(chosen))
            if key in seen:
                continue
            seen.add(key)
            chosen.sort(key=lambda t: position.get(t, len(position)))
            out.append(chosen)
        yield out


# --------------------------------------------------------------------------- category-path


def _path_of(value: Any) -> list[str]:
    """A category path as a list of level names (a string path "a > b > c" is split too)."""
    if _is_missing(value):
        return []
    if isinstance(value, str):
        parts = re.split(r"\s*(?:>|/|\|)\s*", value)
        return [p for p in parts if p.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        flat: list[str] = []
        for v in value:
            if isinstance(v, (list, tuple)):  # several paths: use the first (the most specific list)
                return _path_of(v)
            if not _is_missing(v):
                flat.append(str(v))
        return flat
    return [str(value)]


def _category_candidates(items: pd.DataFrame, spec: QuerySpec, rng: np.random.Generator,
                         needed: int) -> Iterable[list[str]]:
    _check_fields(items, [spec.category_field], "category-path queries (set category_field)")
    paths = [_path_of(v) for v in items[spec.category_field].tolist()]
    if not any(len(p) > 0 for p in paths):
        raise SemidError(f"category-path queries: field '{spec.category_field}' holds no category paths")
    # levels every item shares (a root such as "Beauty") say nothing about the item: left out,
    # as a query made only of them would match the whole catalogue
    shared = set.intersection(*[set(p) for p in paths if p]) if paths else set()
    for path in paths:
        levels = [lvl for lvl in path if lvl not in shared] or path[-1:]
        if not levels:
            yield []
            continue
        leaf, ancestors = levels[-1], levels[:-1]
        variants = []
        # the leaf with every subset of its ancestors, in path order (Ai et al.: path terms)
        for r in range(len(ancestors) + 1):
            for subset in itertools.combinations(ancestors, r):
                terms = list(dict.fromkeys(content_terms(" ".join([*subset, leaf]))))
                if terms:
                    variants.append(terms)
        unique = list({tuple(v): v for v in variants}.values())
        order = rng.permutation(len(unique))
        yield [unique[i] for i in order[:needed]]


# --------------------------------------------------------------------------- template


def _price_bands(prices: np.ndarray) -> list[tuple[float, float, str]]:
    """Three to four bands at rounded quartiles of the catalogue's prices."""
    valid = prices[np.isfinite(prices) & (prices > 0)]
    if len(valid) < 4:
        return []
    nice = []
    for q in (0.25, 0.5, 0.75):
        v = float(np.quantile(valid, q))
        step = 1 if v < 10 else 5 if v < 50 else 10 if v < 200 else 50
        nice.append(max(step, round(v / step) * step))
    edges = sorted(set(nice))
    bands = [(0.0, edges[0], f"under ${edges[0]:g}")]
    for lo, hi in zip(edges, edges[1:]):
        bands.append((lo, hi, f"${lo:g} to ${hi:g}"))
    bands.append((edges[-1], math.inf, f"over ${edges[-1]:g}"))
    return bands


def _template_candidates(items: pd.DataFrame, spec: QuerySpec, rng: np.random.Generator,
                         needed: int) -> Iterable[list[str]]:
    has_cat = spec.category_field in items.columns
    if spec.fields:
        _check_fields(items, spec.fields, "template queries")
        modifiers = [f for f in spec.fields if f != spec.category_field]
    else:
        modifiers = [f for f in ("brand", spec.price_field) if f in items.columns]
        modifiers += [f for f in _text_fields(items) if f not in modifiers
                      and f not in ("title", "description", spec.category_field) and _short_field(items[f])]
    if not has_cat and not modifiers:
        raise SemidError(f"template queries need a category field ('{spec.category_field}') or other fields; "
                         f"set category_field or fields")
    bands = _price_bands(pd.to_numeric(items[spec.price_field], errors="coerce").to_numpy(np.float64)) \
        if spec.price_field in modifiers else []
    for _, rec in items.iterrows():
        heads: list[str] = []
        if has_cat:
            path = _path_of(rec[spec.category_field])
            heads = [p for p in path[::-1][:2] if p]  # leaf and its parent
        mods: list[tuple[str, str]] = []  # (kind, text)
        for f in modifiers:
            value = rec[f]
            if _is_missing(value):
                continue
            if f == spec.price_field:
                try:
                    price = float(value)
                except (TypeError, ValueError):
                    continue
                for lo, hi, label in bands:
                    if lo <= price < hi:
                        mods.append(("price", label))
                        break
            elif f == "brand":
                mods.append(("brand", str(value)))
            elif isinstance(value, (list, tuple)):
                mods.extend(("field", str(v)) for v in value[:3] if not _is_missing(v))
            else:
                mods.append(("field", _text_of(value)))
        if not heads:  # no category: the first modifier value plays the head
            if not mods:
                yield []
                continue
            heads = [mods[0][1]]
            mods = mods[1:]
        variants = []
        for head in heads:
            head_l = head.lower()
            variants.append(head_l)
            for kind, text in mods:
                t = text.lower()
                if kind == "price":
                    variants += [f"{head_l} {t}"]
                elif kind == "brand":
                    variants += [f"{t} {head_l}", f"{head_l} by {t}"]
                else:
                    variants += [f"{t} {head_l}", f"{head_l} {t}"]
            for (k1, t1), (k2, t2) in itertools.combinations(mods, 2):
                a, b = ((t1, t2) if k2 == "price" else (t2, t1) if k1 == "price" else (t1, t2))
                if k1 == "price" or k2 == "price":
                    variants.append(f"{a.lower()} {head_l} {b.lower()}")
                else:
                    variants.append(f"{a.lower()} {b.lower()} {head_l}")
        unique = list(dict.fromkeys(re.sub(r"\s+", " ", v).strip() for v in variants if v.strip()))
        order = rng.permutation(len(unique))
        # a template query keeps its words as written ("under $10"), so it is one "term" here
        yield [[unique[i]] for i in order[:needed]]


def _short_field(values: pd.Series) -> bool:
    sample = [v for v in values.head(300).tolist() if not _is_missing(v)]
    return bool(sample) and np.mean([len(_text_of(v)) for v in sample]) <= 40
