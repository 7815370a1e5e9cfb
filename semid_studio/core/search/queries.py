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

The generators themselves are in :mod:`.query_methods`, their settings in :mod:`.query_spec`.

Splits: generated rows are ``train`` or ``test``; imported query logs may also use
``validation``. Every split other than ``train`` is *held out*: it never reaches a training
step (embedding fine-tuning, the generative model) nor model selection. Model selection uses a
``dev`` part carved out of ``train`` by :func:`split_for_selection`, and training code calls
:func:`assert_training_only` on what it is about to learn from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, ProgressThrottle, TaskGenerator
from ..store import ProjectStore
from ..wording import hint
from .query_methods import _category_candidates, _known_item_candidates, _template_candidates, _text_fields
# the spec and the words are part of this module's API (see __all__)
from .query_spec import METHODS, PRESETS, QuerySpec, _validate, describe_spec, make_spec
from .text import STOP_WORDS, content_terms, tokenize


#: the split that training may read; every other split is held out
TRAIN_SPLIT = "train"
#: source value of generated rows in the queries table
GENERATED = "generated"


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


__all__ = [
    "GENERATED", "METHODS", "PRESETS", "QuerySpec", "STOP_WORDS", "TRAIN_SPLIT", "assert_training_only",
    "content_terms", "describe_spec", "generate_queries", "heldout_split", "make_spec", "query_protocols",
    "split_for_selection", "tokenize",
]
