"""Search queries for a catalogue: generated when none exist, split, and kept out of training.

Three generators, each writing a fixed number of training and test queries per item into the
project's ``queries`` table (``source = "generated"``), with the protocol and its seed stored
beside every row:

``known-item``
    Simulated known-item queries (Azzopardi, de Rijke and Balog, SIGIR 2007): draw a length,
    then draw that many distinct terms from the item's own text with probability proportional
    to how *discriminative* they are (term frequency in the item x inverse document frequency
    in the catalogue), optionally mixed with catalogue-wide noise terms. ``exclude_title``
    leaves out every word of the title (the Spotify paper's queries never contain the title).
``category-path``
    Product-search queries from the terms of the item's category path (Ai et al., SIGIR 2017):
    the leaf category plus any subset of its ancestors, stop words and repeated words removed.
``template``
    Attribute templates: the item's category (leaf, or a value of a list field such as genres)
    combined with its brand, a price band ("under $10", "$10 to $25", ...) and any other mapped
    field, in a few phrasings ("vegan lipstick", "lipstick by acme", "lipstick under $10").

Splits: generated rows are ``train`` or ``test``; imported query logs may also use
``validation``. Every split other than ``train`` is *held out*: it never reaches a training
step (embedding fine-tuning, the generative model) nor model selection. Model selection uses a
``dev`` part carved out of ``train`` by :func:`split_for_selection`, and training code calls
:func:`assert_training_only` on what it is about to learn from.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import ProjectError, SemidError
from .events import NEVER, CancelToken, Message, ProgressThrottle, TaskGenerator
from .store import ProjectStore
from .wording import hint

METHODS = ("known-item", "category-path", "template")
#: the split that training may read; every other split is held out
TRAIN_SPLIT = "train"
#: source value of generated rows in the queries table
GENERATED = "generated"

# A compact English stop-word list (articles, pronouns, auxiliaries, prepositions, and the
# filler words of requests such as "looking for"). Used to clean generated queries and to
# reject queries that consist of nothing else.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down
    during each few for from further had hadn has hasn have haven having he her here hers herself
    him himself his how i if in into is isn it its itself just let me more most my myself no nor
    not now of off on once only or other ought our ours ourselves out over own same shan she
    should shouldn so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was wasn we were weren what when where which
    while who whom why will with won would wouldn you your yours yourself yourselves s t d ll m o
    re ve y also across along among around behind beside besides beyond etc however inside may
    might must near onto outside per shall since though toward towards upon us via within
    without yet""".split()
)

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters and digits of any script; apostrophes kept inside)."""
    return [w.replace("\u2019", "'") for w in _WORD_RE.findall(str(text).lower())]


def content_terms(text: str) -> list[str]:
    """Words of ``text`` without stop words (order kept, repeats kept)."""
    return [w for w in tokenize(text) if w not in STOP_WORDS]


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class QuerySpec:
    """How queries are generated (stored as the ``protocol`` of every generated row).

    Attributes
    ----------
    method
        ``known-item``, ``category-path`` or ``template``.
    per_item, test_per_item
        Training and test queries per item. An item whose text cannot give that many distinct
        queries gets fewer; their number is reported (``items_short``), never padded with copies.
    seed
        Seeds every random draw: the same spec on the same catalogue gives the same queries.
    fields
        Item fields to use. known-item: the text fields terms are drawn from (default: every
        text field but the id); template: the modifier fields (default: brand, price and any
        other short text field).
    exclude_title
        known-item: leave out every word that occurs in the item's title.
    mean_length, min_length, max_length
        known-item: query length ~ Poisson(mean_length), clipped to [min_length, max_length].
    noise
        known-item: probability that a term is drawn from the whole catalogue's term
        distribution instead of the item's (Azzopardi et al.'s noisy query model).
    category_field
        category-path / template: the list field holding the category path, coarse to fine.
    price_field
        template: the numeric field turned into price bands.
    """

    method: str = "known-item"
    per_item: int = 4
    test_per_item: int = 2
    seed: int = 0
    fields: tuple[str, ...] = ()
    exclude_title: bool = False
    mean_length: float = 3.0
    min_length: int = 2
    max_length: int = 6
    noise: float = 0.0
    category_field: str = "categories"
    price_field: str = "price"


PRESETS: dict[str, dict[str, Any]] = {
    # a few queries per item: enough to fine-tune an encoder on a laptop
    "laptop": {"per_item": 4, "test_per_item": 2},
    # the Spotify paper's protocol: 10 train + 10 test queries per item, never the title
    "paper": {"per_item": 10, "test_per_item": 10, "exclude_title": True},
}


def make_spec(method: str = "known-item", *, preset: str | None = None,
              overrides: Mapping[str, Any] | None = None) -> QuerySpec:
    """A :class:`QuerySpec` from a preset plus overrides (values may be strings, as from a CLI).

    Raises
    ------
    SemidError
        Unknown method, preset or field, or a value that does not parse or is out of range.
    """
    if method not in METHODS:
        raise SemidError(f"unknown query generator '{method}'; choose one of {', '.join(METHODS)}")
    values: dict[str, Any] = {"method": method}
    if preset is not None:
        if preset not in PRESETS:
            raise SemidError(f"unknown query preset '{preset}'; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    types = {f.name: f.type for f in fields(QuerySpec)}
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in types:
            raise SemidError(f"unknown query setting '{key}'; known: {', '.join(sorted(types))}")
        values[key] = _coerce(key, types[key], value)
    spec = QuerySpec(**values)
    _validate(spec)
    return spec


def _coerce(key: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    try:
        if "tuple" in kind:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(value)
        if kind.startswith("bool") and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return value
    except (TypeError, ValueError):
        raise SemidError(f"query setting '{key}': cannot read {value!r} as {kind}") from None


def _validate(spec: QuerySpec) -> None:
    if spec.per_item < 1 or spec.test_per_item < 0:
        raise SemidError("queries per item: need --per-item >= 1 and --test-per-item >= 0")
    if spec.per_item + spec.test_per_item > 100:
        raise SemidError("at most 100 queries per item (train + test)")
    if not 1 <= spec.min_length <= spec.max_length:
        raise SemidError("query length: need 1 <= min_length <= max_length")
    if spec.mean_length <= 0:
        raise SemidError("query length: mean_length must be positive")
    if not 0.0 <= spec.noise < 1.0:
        raise SemidError("noise must be in [0, 1)")


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


# --------------------------------------------------------------------------- generation


def generate_queries(
    store: ProjectStore,
    spec: QuerySpec,
    *,
    replace_existing: bool = True,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[dict]:
    """Generate ``spec.per_item`` training and ``spec.test_per_item`` test queries per item.

    Earlier generated queries are replaced (imported ones are never touched); the protocol is
    stored with every row. All rows are written in one transaction.

    Parameters
    ----------
    store
        The open project (needs items).
    spec
        The protocol (see :class:`QuerySpec`); its seed makes the result reproducible.
    replace_existing
        When False and the project already has generated queries, raise instead of replacing.
    cancel
        Checked between items.

    Returns
    -------
    dict
        The protocol as stored plus counts: ``n_train``, ``n_test``, ``items_short``.
    """
    _validate(spec)
    n_items = store.item_count()
    if n_items == 0:
        raise ProjectError(f"{store.path}: the catalogue is empty; import items first")
    existing = int(store.db.execute("SELECT count(*) FROM queries WHERE source = ?", [GENERATED]).fetchone()[0])
    if existing and not replace_existing:
        raise ProjectError(f"{store.path}: already has {existing} generated queries; replace them explicitly")
    items = store.items_frame()
    rng = np.random.default_rng(spec.seed)
    needed = spec.per_item + spec.test_per_item
    make = {"known-item": _known_item_candidates, "category-path": _category_candidates,
            "template": _template_candidates}[spec.method]
    yield Message(f"generating {spec.method} queries: {spec.per_item} train + {spec.test_per_item} test per item "
                  f"for {n_items} items (seed {spec.seed})")
    # a generated query equal to an imported one for the same item would put the same request
    # on both sides of a split (the leakage guard then refuses to train): such texts are skipped
    imported = {(str(text).strip().lower(), int(item)) for text, item in store.db.execute(
        "SELECT text, item_idx FROM queries WHERE source != ?", [GENERATED])}
    texts, idxs, splits = [], [], []
    short = clashes = 0
    throttle = ProgressThrottle("generating queries", n_items)
    for idx, candidates in enumerate(make(items, spec, rng, needed)):
        if idx % 256 == 0:
            cancel.raise_if_cancelled()
        queries = [" ".join(terms) for terms in candidates]
        if imported:
            kept = [q for q in queries if (q.strip().lower(), idx) not in imported]
            clashes += len(queries) - len(kept)
            queries = kept
        queries = queries[:needed]
        if len(queries) < needed:
            short += 1
        # the candidates come in random order: the first ones become test queries, but an item
        # short of distinct queries keeps at least one for training
        n_test = min(spec.test_per_item, max(0, len(queries) - 1)) if len(queries) > 1 else 0
        for j, q in enumerate(queries):
            texts.append(q)
            idxs.append(idx)
            splits.append("test" if j < n_test else TRAIN_SPLIT)
        event = throttle.update(idx + 1)
        if event:
            yield event
    if not texts:
        raise SemidError(f"{spec.method} queries: no item gave a query; check the fields used ({spec})")
    frame = pd.DataFrame({"text": texts, "item_idx": idxs, "split": splits})
    frame["query_id"] = [f"gen-{spec.method}-{i}" for i in range(len(frame))]
    protocol = asdict(spec)
    protocol.update(
        n_items=n_items,
        n_train=int((frame["split"] == TRAIN_SPLIT).sum()),
        n_test=int((frame["split"] == "test").sum()),
        items_short=short,
        fields_used=list(spec.fields) or (_text_fields(items) if spec.method == "known-item" else []),
        reference={"known-item": "Azzopardi, de Rijke and Balog, SIGIR 2007 (discriminative term model)",
                   "category-path": "Ai et al., SIGIR 2017 (category-path queries)",
                   "template": "attribute templates (brand, category, price band, fields)"}[spec.method],
    )
    cancel.raise_if_cancelled()
    with store.atomic():
        removed = store.delete_queries(source=GENERATED)
        store.add_queries(frame, source=GENERATED, protocol=protocol)
    if removed:
        yield Message(f"replaced {removed} earlier generated queries", level="warning")
    if clashes:
        yield Message(f"left out {clashes} generated queries identical to imported queries for the same item")
    if short:
        yield Message(f"{short} of {n_items} items could not give {needed} distinct queries and got fewer",
                      level="warning")
    yield Message(f"saved {protocol['n_train']} train and {protocol['n_test']} test queries")
    return protocol


def query_protocols(store: ProjectStore) -> list[dict]:
    """Counts per (source, split) with the protocol stored for them."""
    rows = store.db.execute(
        "SELECT source, split, protocol, count(*) FROM queries GROUP BY source, split, protocol ORDER BY source, split"
    ).fetchall()
    return [{"source": s, "split": sp, "n": int(n), "protocol": json.loads(p) if p else None} for s, sp, p, n in rows]


# --------------------------------------------------------------------------- splits and the guard


def split_for_selection(frame: pd.DataFrame, fraction: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a model-selection (``dev``) part out of training queries, deterministically.

    Only rows of the ``train`` split are used (a frame with any other split is refused, so a
    held-out query can never end up in either part). The draw depends on ``seed`` and on the
    query rows themselves (their store ids), not on the frame's order.

    Parameters
    ----------
    frame
        Rows of ``store.queries_frame(split="train")`` (must have ``id`` and ``split``).
    fraction
        Share of rows in the dev part, in [0, 1). 0 gives an empty dev part.
    seed
        Seeds the draw.

    Returns
    -------
    (train_part, dev_part)
        Disjoint frames whose union is ``frame``; dev rows get ``split = "dev"``.
    """
    if not 0.0 <= fraction < 1.0:
        raise SemidError("the model-selection fraction must be in [0, 1)")
    _require_train_rows(frame, "split_for_selection")
    if fraction == 0.0 or len(frame) == 0:
        return frame.copy(), frame.iloc[0:0].assign(split="dev")
    # rank rows by a seeded hash of their id: stable under reordering and independent of numpy
    keys = np.array([int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big")
                     for i in frame["id"].tolist()], dtype=np.uint64)
    n_dev = max(1, int(round(fraction * len(frame))))
    dev_pos = np.argsort(keys, kind="stable")[:n_dev]
    is_dev = np.zeros(len(frame), dtype=bool)
    is_dev[dev_pos] = True
    return frame[~is_dev].copy(), frame[is_dev].assign(split="dev")


def _require_train_rows(frame: pd.DataFrame, who: str) -> None:
    if "id" not in frame or "split" not in frame:
        raise SemidError(f"{who}: needs query rows from the project (columns 'id' and 'split')")
    bad = sorted(set(frame["split"].astype(str)) - {TRAIN_SPLIT})
    if bad:
        raise SemidError(f"{who}: got held-out queries (split {bad}); only the '{TRAIN_SPLIT}' split may be used")


def assert_training_only(store: ProjectStore, frame: pd.DataFrame, *, exclude_ids: Iterable[int] = (),
                         who: str = "training") -> None:
    """Raise unless every row of ``frame`` is a ``train`` query of the project (and not dev).

    The check goes back to the project file (the split column of the rows themselves could
    have been edited) and compares both the row ids and the (text, item) pairs: a held-out
    query re-entered under a new id is caught too.

    Raises
    ------
    SemidError
        Naming how many held-out rows were found and an example.
    """
    _require_train_rows(frame, who)
    ids = [int(i) for i in frame["id"].tolist()]
    excluded = {int(i) for i in exclude_ids}
    overlap = excluded.intersection(ids)
    if overlap:
        raise SemidError(f"{who}: {len(overlap)} model-selection (dev) queries are in the training data")
    held = store.db.execute(
        "SELECT id, text, item_idx, split FROM queries WHERE split != ?", [TRAIN_SPLIT]
    ).fetchall()
    if not held:
        return
    held_ids = {r[0]: r for r in held}
    bad = [i for i in ids if i in held_ids]
    if bad:
        r = held_ids[bad[0]]
        raise SemidError(f"{who}: {len(bad)} held-out queries would reach training "
                         f"(e.g. query #{r[0]} of split '{r[3]}': {r[1][:60]!r})")
    held_pairs = {(str(r[1]).strip().lower(), int(r[2])) for r in held}
    pairs = zip(frame["text"].astype(str).str.strip().str.lower(), frame["item_idx"].astype(int))
    dup = [p for p in pairs if p in held_pairs]
    if dup:
        raise SemidError(f"{who}: {len(dup)} training queries repeat a held-out query for the same item "
                         f"(e.g. {dup[0][0][:60]!r}); the held-out split would leak into training")


def heldout_split(store: ProjectStore, split: str | None = None) -> str:
    """The split to report on: the one asked for, else ``validation`` when the project has it
    (imported logs whose test part is kept aside), else ``test``."""
    if split is not None:
        if split == TRAIN_SPLIT:
            raise SemidError("evaluate on a held-out split (test or validation), not on 'train'")
        if store.query_count(split) == 0:
            have = sorted({r["split"] for r in query_protocols(store)})
            raise ProjectError(f"{store.path}: no queries in split '{split}' (the project has {have or 'none'}); "
                               f"import or generate queries first")
        return split
    for name in ("validation", "test"):
        if store.query_count(name):
            return name
    raise ProjectError(f"{store.path}: has no held-out queries (test or validation); "
                       f"{hint('generate_queries')}")


def describe_spec(spec: QuerySpec) -> str:
    parts = [f"{spec.method}", f"{spec.per_item} train + {spec.test_per_item} test per item", f"seed {spec.seed}"]
    if spec.exclude_title:
        parts.append("no title words")
    return ", ".join(parts)


__all__ = [
    "GENERATED", "METHODS", "PRESETS", "QuerySpec", "STOP_WORDS", "TRAIN_SPLIT", "assert_training_only",
    "content_terms", "describe_spec", "generate_queries", "heldout_split", "make_spec", "query_protocols",
    "split_for_selection", "tokenize",
]
