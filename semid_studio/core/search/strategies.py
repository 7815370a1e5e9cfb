"""Item embeddings for joint search + recommendation SIDs: how each embedding set is made.

Six strategies (Penha et al., RecSys 2025, section 2 of ``method.md``); each stores an
embedding set in the project with everything that made it in ``params`` (and, for fine-tuned
encoders, the encoder's weights in ``embedding_artifacts``):

``content``
    The project's encoder as it is (:func:`semid_studio.core.embed.embed_items`).
``search``
    The encoder fine-tuned on (training query, item text) pairs with in-batch negatives
    (sentence-transformers' ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``
    and a no-duplicates batch sampler, so an item never appears twice in a batch as its own
    false negative).
``rec``
    Collaborative item vectors from the *training* interactions: a truncated SVD of the
    positive PMI matrix of items co-occurring within a window of user histories
    (``ppmi-svd``, the default) or matrix factorisation with the BPR loss (``bpr``, torch).
    Items with no training interaction get a vector predicted from their content embedding
    by a ridge regression fitted on the items that have one.
``multitask``
    One encoder fine-tuned on the *sum* of two contrastive losses per batch: query -> item
    and item -> item, the item pairs co-occurring within ``cooccur_window`` positions in
    training histories.
``fused-concat``
    L2-normalised search-tuned and rec-tuned vectors, concatenated.
``fused-svd``
    Both projected to the same dimension by PCA (SVD of the centred vectors), normalised and
    summed.

What counts as training data: queries of the ``train`` split only (a ``dev`` part is carved
out of it for model selection, see :func:`semid_studio.core.search.queries.split_for_selection`),
checked by :func:`semid_studio.core.search.queries.assert_training_only` before any step; and the
leave-one-out training part of the interactions (each user's last two items are the
recommender's validation and test targets, so they are left out).

This module builds a set (:func:`build_embedding`) and encodes queries for it
(:func:`load_query_encoder`, :func:`encode_queries`); the parts are :mod:`.strategy_spec`
(settings), :mod:`.fine_tune`, :mod:`.collaborative` (rec vectors), :mod:`.artifacts` and
:mod:`.interactions`, and every public name of theirs is importable from here.

Long texts: fine-tuning truncates every text to ``max_tokens`` word pieces (default: the
encoder's window) and reports the share of queries and items that were cut; encoding queries
for search truncates to the window or averages consecutive windows (``long_text="chunk"``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..embed import cache_key, embed_items, encode_texts, load_encoder, resolve_model
from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, TaskGenerator
from ..store import ProjectStore
from ..wording import hint
# the parts' public names are this module's API too (see __all__)
from .artifacts import _set_info, load_artifact, save_artifact
from .collaborative import _rec_vectors, bpr_vectors, evaluate_rec_dense, ppmi_svd
from .fine_tune import _encoder_arrays, _fine_tune, _fingerprint, _pair_hash
from .interactions import cooccurrence_pairs, loo_probes, training_interactions
from .queries import TRAIN_SPLIT
from .strategy_spec import (FINE_TUNED, LONG_TEXT, PRESETS, REC_METHODS, STRATEGIES, StrategySpec, make_spec,
                            validate_spec)
from .text import token_lengths


# --------------------------------------------------------------------------- fused sets


def _newest_of(store: ProjectStore, strategy: str) -> int:
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        if emb.strategy == strategy and emb.n_items == n:
            return emb.id
    raise ProjectError(f"{store.path}: has no {strategy} embedding set for the current catalogue; "
                       f"{hint('make_strategy_set', strategy=strategy)}")


def _fuse(store: ProjectStore, strategy: str, spec: StrategySpec, sources: Sequence[int] | None
          ) -> tuple[np.ndarray, dict, dict[str, np.ndarray]]:
    from .indexes import normalize

    if sources:
        if len(sources) != 2:
            raise SemidError("fused sets take two sources: SEARCH_SET,REC_SET")
        s_id, r_id = int(sources[0]), int(sources[1])
    else:
        s_id, r_id = _newest_of(store, "search"), _newest_of(store, "rec")
    s_set, r_set = store.load_embedding_set(s_id), store.load_embedding_set(r_id)
    if s_set.strategy == "rec" or r_set.strategy in ("fused-concat", "fused-svd"):
        raise SemidError(f"fused sets combine a text set (got #{s_id}, {s_set.strategy}) and a rec set "
                         f"(got #{r_id}, {r_set.strategy})")
    if s_set.n_items != r_set.n_items:
        raise ProjectError(f"embedding sets #{s_id} and #{r_id} cover different catalogues")
    s, r = normalize(s_set.vectors), normalize(r_set.vectors)
    info: dict[str, Any] = {"sources": {"search": s_id, "rec": r_id},
                            "source_strategies": {"search": s_set.strategy, "rec": r_set.strategy},
                            "search_dim": int(s.shape[1]), "rec_dim": int(r.shape[1])}
    arrays: dict[str, np.ndarray] = {}
    if strategy == "fused-concat":
        vecs = np.hstack([s, r])
        info["how"] = "concat(l2norm(search), l2norm(rec))"
    else:
        k = int(min(spec.fused_dim, s.shape[1], r.shape[1]))
        parts = []
        for name, v in (("search", s), ("rec", r)):
            mean = v.mean(axis=0)
            _, sv, vt = np.linalg.svd(v - mean, full_matrices=False)
            comps = vt[:k].astype(np.float32)
            parts.append(normalize((v - mean) @ comps.T))
            arrays[f"{name}_mean"] = mean.astype(np.float32)
            arrays[f"{name}_components"] = comps
            info[f"{name}_explained"] = float((sv[:k] ** 2).sum() / max((sv ** 2).sum(), 1e-12))
        vecs = parts[0] + parts[1]
        info.update(how="l2norm(PCA_k(search)) + l2norm(PCA_k(rec))", fused_dim=k)
    return vecs.astype(np.float32), info, arrays


# --------------------------------------------------------------------------- building a set


def build_embedding(
    store: ProjectStore,
    strategy: str,
    spec: StrategySpec | None = None,
    *,
    sources: Sequence[int] | None = None,
    name: str | None = None,
    force: bool = False,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Make (or reuse) an embedding set with ``strategy``; return its id.

    Parameters
    ----------
    store
        The open project.
    strategy
        One of :data:`STRATEGIES`.
    spec
        Settings (:class:`StrategySpec`; default settings when None).
    sources
        Fused strategies: ``(search_set_id, rec_set_id)`` (default: the newest of each).
    name
        Name of the new set (default: model / strategy / seed).
    force
        Make a new set even when one with the same settings and training data exists.
    cancel
        Checked between steps and training steps; a cancel leaves the project unchanged.

    Returns
    -------
    int
        The embedding set id. Its ``params`` record the base model, the training data
        (query split, counts, fingerprint), epochs, seed, loss, truncation and timings.
    """
    if strategy not in STRATEGIES:
        raise SemidError(f"unknown embedding strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    spec = spec or StrategySpec()
    validate_spec(spec)
    if store.item_count() == 0:
        raise ProjectError(f"{store.path}: the catalogue is empty; import items first")
    if strategy == "content":
        return (yield from embed_items(store, model=spec.model, template=spec.template, device=spec.device,
                                       cancel=cancel))
    from .text import item_texts

    stored_name, _ = resolve_model(spec.model)
    texts, template = item_texts(store, spec.template)
    key_params: dict[str, Any] = {"spec": _key_spec(strategy, spec), "sources": list(sources or [])}
    if strategy in FINE_TUNED:
        frame = store.queries_frame(split=TRAIN_SPLIT, source=spec.query_source or None)
        key_params["queries"] = _fingerprint(frame)
    if strategy in ("rec", "multitask"):
        key_params["interactions"] = int(store.interaction_count())
    if strategy.startswith("fused"):
        key_params["sources"] = list(sources) if sources else [_newest_of(store, "search"), _newest_of(store, "rec")]
    key = cache_key(stored_name, template, strategy, key_params)
    cached = store.find_embedding_set(key)
    if cached is not None and cached.n_items == store.item_count() and not force:
        yield Message(f"an embedding set with these settings and data is already in the project (set #{cached.id})")
        return cached.id

    params: dict[str, Any] = {"strategy": strategy, "spec": asdict(spec), "base_model": stored_name,
                              "seed": spec.seed, "template": template}
    arrays: dict[str, dict[str, np.ndarray]] = {}
    metas: dict[str, dict] = {}
    if strategy in FINE_TUNED:
        model, info, train, dev = yield from _fine_tune(store, strategy, spec, texts, cancel)
        params.update(info)
        params.update(query_split=TRAIN_SPLIT, query_source=spec.query_source or "all",
                      dev_fraction=spec.dev_fraction, queries_fingerprint=key_params["queries"])
        cancel.raise_if_cancelled()
        vectors = yield from encode_texts(model, texts, batch_size=64, cancel=cancel, stage="embedding items")
        arrays["encoder"] = _encoder_arrays(model, spec.weights_dtype)
        metas["encoder"] = {"base_model": stored_name, "format": "sentence-transformers state_dict",
                            "dtype": spec.weights_dtype, "max_seq_length": int(model.max_seq_length)}
        arrays["train_queries"] = {"ids": train["id"].to_numpy(np.int64),
                                   "pair_hash": _pair_hash(train["text"].tolist(), train["item_idx"].tolist())}
        arrays["dev_queries"] = {"ids": dev["id"].to_numpy(np.int64),
                                 "pair_hash": _pair_hash(dev["text"].tolist(), dev["item_idx"].tolist())}
        params["items_over_window_share"] = float((token_lengths(model.tokenizer, texts) > model.max_seq_length).mean())
    elif strategy == "rec":
        vectors, info = yield from _rec_vectors(store, spec, cancel)
        params.update(info)
    else:
        vectors, info, proj = _fuse(store, strategy, spec, sources)
        params.update(info)
        if proj:
            arrays["projection"] = proj
            metas["projection"] = {"how": "query -> l2norm((q - search_mean) @ search_components.T)"}
    cancel.raise_if_cancelled()
    label = {"search": "search-tuned", "rec": "rec-tuned", "multitask": "multi-task",
             "fused-concat": "fused concat", "fused-svd": "fused SVD"}[strategy]
    model_name = stored_name if strategy != "rec" else f"{spec.rec_method}({spec.rec_dim})"
    # a rec set is made from the interactions, not by the text encoder: its name says so
    made_by = Path(stored_name).name if strategy != "rec" else f"{model_name} from interactions"
    set_name = name or f"{made_by} / {label} / seed {spec.seed}"
    with store.atomic():
        set_id = store.save_embedding_set(name=set_name, model=model_name, template=template, strategy=strategy,
                                          cache_key=key, vectors=vectors, params=params)
        for art, arrs in arrays.items():
            save_artifact(store, set_id, art, arrs, metas.get(art))
    yield Message(f"saved embedding set #{set_id} ({label}): {vectors.shape[0]} items x {vectors.shape[1]} dims")
    return set_id


def _key_spec(strategy: str, spec: StrategySpec) -> dict:
    """The spec fields that change the result of ``strategy`` (so that the cache key does not
    depend on settings it ignores)."""
    common = {"model", "template", "seed"}
    tuned = {"epochs", "batch_size", "lr", "warmup", "max_pairs", "max_tokens", "dev_fraction", "query_source"}
    per = {"search": common | tuned,
           "multitask": common | tuned | {"cooccur_window", "item_loss_weight"},
           "rec": {"seed", "rec_method", "rec_dim", "rec_window", "rec_epochs", "model", "template"},
           "fused-concat": set(), "fused-svd": {"fused_dim"}}[strategy]
    return {k: v for k, v in asdict(spec).items() if k in per}


# --------------------------------------------------------------------------- the query side


_ENCODERS: "OrderedDict[tuple, Any]" = OrderedDict()


def has_text_side(strategy: str, model: str = "") -> bool:
    """Whether a set can encode a query: every strategy but ``rec`` (and imported vectors
    whose model is unknown)."""
    return strategy != "rec" and not (strategy == "imported" and model == "imported")


def default_search_set(store: ProjectStore) -> int:
    """The newest embedding set of the current catalogue that has a text side."""
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        if has_text_side(emb.strategy, emb.model) and emb.n_items == n:
            return emb.id
    raise ProjectError(f"{store.path}: has no text embeddings for dense search; {hint('embed')} first")


def load_query_encoder(store: ProjectStore, embedding_set_id: int, device: str | None = None):
    """The SentenceTransformer that encodes queries for an embedding set.

    content sets: their own (bundled or named) model; search-tuned and multi-task sets: the
    base model with the fine-tuned weights stored in the project; fused sets: the encoder of
    their text source (:func:`encode_queries` also projects into the fused space).

    Raises
    ------
    SemidError
        For a rec-tuned set (collaborative vectors have no text side) or missing weights.
    """
    emb = _set_info(store, embedding_set_id)
    if emb.strategy == "rec":
        raise SemidError(f"embedding set #{emb.id} is rec-tuned (collaborative): it has no text encoder for queries; "
                         f"use a content, search-tuned, multi-task or fused set")
    if emb.strategy in ("fused-concat", "fused-svd"):
        return load_query_encoder(store, int(emb.params["sources"]["search"]), device)
    if emb.strategy == "imported" and emb.model == "imported":
        raise SemidError(f"embedding set #{emb.id} was imported without naming its model: no query encoder is "
                         f"known for it; re-import it naming the model, or use another set")
    if emb.strategy not in FINE_TUNED:
        return load_encoder(emb.model, device)
    key = (str(Path(store.path).resolve()), emb.id, emb.created, device)
    if key in _ENCODERS:
        _ENCODERS.move_to_end(key)
        return _ENCODERS[key]
    art = load_artifact(store, emb.id, "encoder")
    if art is None:
        raise ProjectError(f"{store.path}: embedding set #{emb.id} has no stored encoder weights")
    arrays, meta = art
    import torch
    from sentence_transformers import SentenceTransformer

    from ..embed import best_device

    _, location = resolve_model(meta.get("base_model"))
    model = SentenceTransformer(location, device=device or best_device())
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32) if v.dtype == np.float16 else np.array(v))
             for k, v in arrays.items()}
    model.load_state_dict(state, strict=True)
    model.max_seq_length = int(meta.get("max_seq_length") or model.max_seq_length)
    model.eval()
    _ENCODERS[key] = model
    while len(_ENCODERS) > 2:
        _ENCODERS.popitem(last=False)
    return model


def encode_long(encoder, texts: Sequence[str], *, mode: str = "truncate", batch_size: int = 32,
                cancel: CancelToken = NEVER, stage: str = "encoding queries") -> TaskGenerator[tuple[np.ndarray, dict]]:
    """Encode texts that may exceed the encoder's window, knowingly.

    ``truncate``: the first ``window`` word pieces (the share cut is reported).
    ``chunk``: a long text is cut into consecutive windows of ``window - 2`` word pieces, each
    encoded, and the L2-normalised chunk vectors are averaged (then normalised again).

    Returns ``(vectors, stats)`` with the share over the window and the number of chunks.
    """
    if mode not in LONG_TEXT:
        raise SemidError(f"long_text must be one of {', '.join(LONG_TEXT)}, got '{mode}'")
    from .indexes import normalize

    texts = list(texts)
    window = int(getattr(encoder, "max_seq_length", 0) or 512)
    lengths = token_lengths(encoder.tokenizer, texts)
    over = lengths > window
    stats = {"mode": mode, "window": window, "n": len(texts), "n_over_window": int(over.sum()),
             "share_over_window": float(over.mean()) if len(texts) else 0.0,
             "max_tokens": int(lengths.max()) if len(texts) else 0,
             "median_tokens": float(np.median(lengths)) if len(texts) else 0.0}
    if mode == "truncate" or not over.any():
        vecs = yield from encode_texts(encoder, texts, batch_size=batch_size, cancel=cancel, stage=stage)
        stats["n_chunks"] = len(texts)
        return vecs, stats
    step = window - 2
    chunk_texts: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        if not over[i]:
            chunk_texts.append(text)
            owner.append(i)
            continue
        ids = encoder.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        for start in range(0, len(ids), step):
            chunk_texts.append(encoder.tokenizer.decode(ids[start : start + step]))
            owner.append(i)
    vecs = yield from encode_texts(encoder, chunk_texts, batch_size=batch_size, cancel=cancel, stage=stage)
    vecs = normalize(vecs)
    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), vecs)
    stats["n_chunks"] = len(chunk_texts)
    return normalize(out), stats


def encode_queries(
    store: ProjectStore,
    embedding_set_id: int,
    texts: Sequence[str],
    *,
    long_text: str = "truncate",
    batch_size: int = 32,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[tuple[np.ndarray, dict]]:
    """Query vectors in the space of an embedding set: ``(vectors (n, dim), stats)``.

    Fused sets: a query has only a text side, so over a fused-concat set its vector is the
    normalised text vector followed by zeros (ranking by the search half), and over a
    fused-SVD set the text vector projected by the search part's PCA.
    """
    from .indexes import normalize

    emb = _set_info(store, embedding_set_id)
    encoder = load_query_encoder(store, embedding_set_id)
    vecs, stats = yield from encode_long(encoder, texts, mode=long_text, batch_size=batch_size, cancel=cancel)
    stats["embedding_set_id"] = int(embedding_set_id)
    if emb.strategy == "fused-concat":
        vecs = np.hstack([normalize(vecs), np.zeros((len(vecs), int(emb.params["rec_dim"])), dtype=np.float32)])
        stats["fused_query"] = "concat(l2norm(text), 0)"
    elif emb.strategy == "fused-svd":
        art = load_artifact(store, emb.id, "projection")
        if art is None:
            raise ProjectError(f"{store.path}: fused-SVD set #{emb.id} has no stored projection")
        proj, _ = art
        vecs = normalize((vecs - proj["search_mean"]) @ proj["search_components"].T)
        stats["fused_query"] = "l2norm(PCA_k(text))"
    return vecs.astype(np.float32), stats


# --------------------------------------------------------------------------- audits and rec check


def audit_training_queries(store: ProjectStore, embedding_set_id: int, *, strict: bool = True) -> dict:
    """Check, from what the set recorded, that no held-out query reached its training.

    Compares the stored training query ids and (text, item) fingerprints with the project's
    current held-out queries (every split but ``train``) and with the set's own dev part.

    Returns
    -------
    dict
        ``n_training_queries``, ``heldout_by_id``, ``heldout_by_text``, ``dev_overlap``, ``ok``.

    Raises
    ------
    SemidError
        With ``strict``, when any overlap is found.
    """
    emb = _set_info(store, embedding_set_id)
    art = load_artifact(store, emb.id, "train_queries")
    if art is None:
        return {"n_training_queries": 0, "heldout_by_id": 0, "heldout_by_text": 0, "dev_overlap": 0, "ok": True,
                "note": f"set #{emb.id} ({emb.strategy}) was not trained on queries"}
    used, _ = art
    held = store.db.execute("SELECT id, text, item_idx FROM queries WHERE split != ?", [TRAIN_SPLIT]).fetchall()
    held_hash = _pair_hash([r[1] for r in held], [r[2] for r in held])
    by_hash = dict(zip([r[0] for r in held], held_hash.tolist()))
    used_ids = used["ids"].astype(np.int64)
    used_hash = used["pair_hash"].astype(np.uint64)
    # an id counts only if it still names the same query (ids can be reused after regeneration)
    by_id = int(sum(1 for i, h in zip(used_ids.tolist(), used_hash.tolist()) if by_hash.get(i) == h))
    by_text = int(np.isin(used_hash, held_hash).sum())
    dev = load_artifact(store, emb.id, "dev_queries")
    dev_overlap = int(np.isin(used_ids, dev[0]["ids"]).sum()) if dev is not None else 0
    report = {"n_training_queries": int(len(used_ids)), "heldout_by_id": by_id, "heldout_by_text": by_text,
              "dev_overlap": dev_overlap, "ok": by_id == 0 and by_text == 0 and dev_overlap == 0}
    if strict and not report["ok"]:
        raise SemidError(f"embedding set #{emb.id} was trained on held-out queries: {by_id} by id, {by_text} by text, "
                         f"{dev_overlap} from its own dev part")
    return report


def current_set(store: ProjectStore, strategy: str) -> int | None:
    """The newest ``strategy`` set of the current catalogue made from the project's current
    training data, or None: for a fine-tuned strategy, exactly its current training queries (all
    sources) with none of them since turned into a held-out query; for ``rec``, its current
    training interactions. Other strategies: the newest set of the catalogue."""
    n = store.item_count()
    wanted: Any = None
    for emb in reversed(store.list_embedding_sets()):
        if emb.strategy != strategy or emb.n_items != n:
            continue
        params = emb.params or {}
        if strategy in FINE_TUNED:
            wanted = wanted or _fingerprint(store.queries_frame(split=TRAIN_SPLIT))
            if params.get("queries_fingerprint") != wanted or params.get("query_source", "all") != "all" \
                    or not audit_training_queries(store, emb.id, strict=False)["ok"]:
                continue
        elif strategy == "rec":
            wanted = wanted or len(training_interactions(store))
            if params.get("training_interactions") != wanted:
                continue
        return emb.id
    return None


__all__ = [
    "FINE_TUNED", "LONG_TEXT", "PRESETS", "REC_METHODS", "STRATEGIES", "StrategySpec", "audit_training_queries",
    "bpr_vectors", "build_embedding", "cooccurrence_pairs", "current_set", "default_search_set", "encode_long",
    "encode_queries", "evaluate_rec_dense", "has_text_side", "load_artifact", "load_query_encoder", "loo_probes",
    "make_spec", "ppmi_svd", "save_artifact", "training_interactions", "validate_spec",
]
