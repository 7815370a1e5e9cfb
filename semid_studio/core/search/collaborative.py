"""Collaborative item vectors from the training interactions: the ``rec`` strategy.

A truncated SVD of the positive PMI matrix of items co-occurring within a window of user
histories (``ppmi-svd``) or matrix factorisation with the BPR loss (``bpr``); items with no
training interaction are placed by their content embedding (ridge regression) or, in a
catalogue without text, in random directions. :func:`evaluate_rec_dense` measures how well
any embedding's geometry serves recommendation (item-kNN from the history).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..embed import MIN_DISTINCT_TEXT_SHARE, catalogue_text_share, embed_items
from ..errors import ProjectError
from ..events import NEVER, CancelToken, Message, Metric, Progress, TaskGenerator
from ..store import ProjectStore
from .interactions import cooccurrence_pairs, loo_probes, training_interactions
from .strategy_spec import StrategySpec


def ppmi_svd(frame: pd.DataFrame, n_items: int, *, dim: int, window: int, seed: int,
             smoothing: float = 0.75) -> np.ndarray:
    """Item vectors from a truncated SVD of the positive PMI matrix of co-occurring items.

    Co-occurrence: items at most ``window`` positions apart in a user's history (both
    directions). The context distribution is smoothed (``counts ** smoothing``, Levy et al.
    2015); vectors are ``U * sqrt(S)``. Items that co-occur with nothing get zero vectors.
    """
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    pairs = cooccurrence_pairs(frame, window)
    if len(pairs) == 0:
        return np.zeros((n_items, dim), dtype=np.float32)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    counts = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n_items, n_items))
    counts.sum_duplicates()
    row_sum = np.asarray(counts.sum(axis=1)).ravel()
    ctx = row_sum ** smoothing
    coo = counts.tocoo()
    # PMI(i, j) = log P(i, j) / (P(i) P_smoothed(j))
    pmi = np.log(coo.data * ctx.sum() / (row_sum[coo.row] * ctx[coo.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n_items, n_items))
    k = max(1, min(dim, n_items - 1))
    u, s, _ = randomized_svd(ppmi, n_components=k, n_iter=5, random_state=seed)
    vecs = np.zeros((n_items, dim), dtype=np.float32)
    vecs[:, :k] = (u * np.sqrt(s)).astype(np.float32)
    return vecs


def bpr_vectors(frame: pd.DataFrame, n_items: int, *, dim: int, epochs: int, seed: int, lr: float = 0.01,
                reg: float = 1e-5, batch: int = 4096, cancel: CancelToken = NEVER) -> TaskGenerator[np.ndarray]:
    """Item factors of a matrix factorisation trained with the BPR loss (Rendle et al. 2009).

    Negatives are drawn uniformly from the catalogue; torch's generator is seeded.
    """
    import torch

    users, uidx = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    items = frame["item_idx"].to_numpy(np.int64)
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.nn.Embedding(len(users), dim)
    item_emb = torch.nn.Embedding(n_items, dim)
    torch.nn.init.normal_(user_emb.weight, std=0.1, generator=gen)
    torch.nn.init.normal_(item_emb.weight, std=0.1, generator=gen)
    opt = torch.optim.Adam([*user_emb.parameters(), *item_emb.parameters()], lr=lr)
    u_all = torch.tensor(np.asarray(uidx, dtype=np.int64))
    i_all = torch.tensor(np.array(items, dtype=np.int64))
    n = len(items)
    for epoch in range(epochs):
        cancel.raise_if_cancelled()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch):
            sel = order[start : start + batch]
            u, i = u_all[sel], i_all[sel]
            j = torch.randint(0, n_items, (len(sel),), generator=gen)
            eu, ei, ej = user_emb(u), item_emb(i), item_emb(j)
            x = (eu * (ei - ej)).sum(dim=1)
            loss = -torch.nn.functional.logsigmoid(x).mean() + reg * (eu.pow(2).sum() + ei.pow(2).sum()
                                                                       + ej.pow(2).sum()) / len(sel)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(sel)
        yield Metric("bpr loss", total / n, epoch + 1)
        yield Progress("bpr", epoch + 1, epochs)
    return item_emb.weight.detach().numpy().astype(np.float32)


def _content_vectors(store: ProjectStore, spec: StrategySpec, cancel: CancelToken) -> TaskGenerator[tuple[np.ndarray, int]]:
    """The project's content embedding (made now if missing), for cold-item fallbacks."""
    n = store.item_count()
    for emb in reversed(store.list_embedding_sets()):
        # an imported set made by a named text encoder is content too
        if emb.n_items == n and (emb.strategy == "content" or (emb.strategy == "imported" and emb.model != "imported")):
            return store.load_embedding_set(emb.id).vectors, emb.id
    set_id = yield from embed_items(store, model=spec.model, template=spec.template, device=spec.device, cancel=cancel)
    return store.load_embedding_set(set_id).vectors, set_id


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``W`` minimising ``|xW - y|^2 + alpha |W|^2`` (x with a bias column appended by the caller)."""
    a = x.T @ x + alpha * np.eye(x.shape[1])
    return np.linalg.solve(a, x.T @ y)


def _rec_vectors(store: ProjectStore, spec: StrategySpec, cancel: CancelToken) -> TaskGenerator[tuple[np.ndarray, dict]]:
    n_items = store.item_count()
    train = training_interactions(store)
    if len(train) == 0:
        raise ProjectError(f"{store.path}: rec-tuned embeddings need interactions; import some first")
    started = time.perf_counter()
    yield Message(f"rec-tuned vectors ({spec.rec_method}, {spec.rec_dim} dims) from {len(train)} training "
                  f"interactions (each user's last 2 items left out)")
    if spec.rec_method == "ppmi-svd":
        vecs = ppmi_svd(train, n_items, dim=spec.rec_dim, window=spec.rec_window, seed=spec.seed)
    else:
        vecs = yield from bpr_vectors(train, n_items, dim=spec.rec_dim, epochs=spec.rec_epochs, seed=spec.seed,
                                      cancel=cancel)
    counts = np.bincount(train["item_idx"].to_numpy(np.int64), minlength=n_items)
    warm = (counts > 0) & (np.linalg.norm(vecs, axis=1) > 0)
    info: dict[str, Any] = {"rec_method": spec.rec_method, "rec_dim": spec.rec_dim,
                            "training_interactions": int(len(train)), "n_warm": int(warm.sum()),
                            "n_cold": int((~warm).sum()), "holdout_last": 2}
    if spec.rec_method == "ppmi-svd":
        info.update(rec_window=spec.rec_window, pmi_smoothing=0.75)
    else:
        info.update(rec_epochs=spec.rec_epochs, negatives="uniform")
    if (~warm).any() and catalogue_text_share(store, spec.template)[0] < MIN_DISTINCT_TEXT_SHARE:
        # no text to place a cold item by: a seeded random direction keeps its SID apart from
        # the others' (a shared zero vector would pile every cold item into one SID prefix)
        rng = np.random.default_rng(spec.seed)
        scale = float(np.linalg.norm(vecs[warm], axis=1).mean()) if warm.any() else 1.0
        cold = rng.standard_normal(((~warm).sum(), vecs.shape[1])).astype(np.float32)
        vecs[~warm] = scale * cold / np.linalg.norm(cold, axis=1, keepdims=True)
        info["cold_fallback"] = "random directions (the items have no text to place them by)"
        yield Message(f"{int((~warm).sum())} items have no training interaction: {info['cold_fallback']}")
    elif (~warm).any():
        content, content_id = yield from _content_vectors(store, spec, cancel)
        if warm.sum() >= 2:
            x = np.hstack([content, np.ones((n_items, 1), dtype=np.float32)]).astype(np.float64)
            w = _ridge(x[warm], vecs[warm].astype(np.float64))
            vecs[~warm] = (x[~warm] @ w).astype(np.float32)
            info["cold_fallback"] = f"ridge regression content -> rec vectors (content set #{content_id}, alpha 1)"
        else:
            info["cold_fallback"] = "none (fewer than 2 items with training interactions); zero vectors"
        yield Message(f"{int((~warm).sum())} items have no training interaction: {info['cold_fallback']}")
    info["fit_seconds"] = round(time.perf_counter() - started, 2)
    return vecs.astype(np.float32), info


def evaluate_rec_dense(store: ProjectStore, embedding_set_id: int, *, split: str = "valid",
                       ks: Sequence[int] = (10, 30), n_last: int = 1, exclude_seen: bool = True,
                       chunk: int = 1024) -> dict:
    """How well an embedding's geometry serves recommendation: item-kNN from the history.

    The user's query vector is the mean of the L2-normalised vectors of the last ``n_last``
    history items; the whole catalogue is ranked by cosine, history items left out when
    ``exclude_seen``. Leave-one-out split (:func:`loo_probes`), same metrics as search.
    """
    from .indexes import normalize
    from .metrics import head_items, search_metrics

    emb = store.load_embedding_set(embedding_set_id)
    hists, targets = loo_probes(store, split)
    if not len(targets):
        raise ProjectError(f"{store.path}: no user has 3 or more interactions; nothing to evaluate")
    vecs = normalize(emb.vectors)
    kmax = max(ks)
    ranked = np.full((len(targets), kmax), -1, dtype=np.int64)
    for start in range(0, len(targets), chunk):
        block = hists[start : start + chunk]
        q = normalize(np.stack([vecs[h[-n_last:]].mean(axis=0) for h in block]))
        scores = q @ vecs.T
        if exclude_seen:
            for r, h in enumerate(block):
                scores[r, h] = -np.inf
        part = np.argpartition(-scores, kmax - 1, axis=1)[:, :kmax]
        vals = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ranked[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
    metrics = search_metrics(ranked, targets, ks, head_items(store))
    metrics.update(embedding_set_id=int(embedding_set_id), strategy=emb.strategy, split=split, n_last=n_last,
                   exclude_seen=exclude_seen)
    return metrics
