"""Baselines on the same split and metric code as the SID model: popularity, a first-order
Markov chain and SASRec (torch), so that the generative model's figures stay honest.

All of them learn from ``split.train`` only and rank the whole catalogue.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..events import NEVER, CancelToken, Message, Metric, ProgressThrottle, TaskGenerator
from .data import Probes, Sequences, Split, pad_histories, training_windows, iter_batches
from .metrics import DEFAULT_KS, ranking_metrics


def _topk_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _mask_seen(scores: np.ndarray, probes: Probes, start: int) -> np.ndarray:
    """``scores`` rows ``start, start+1, ...`` with each user's history items set to -inf (the
    seen-item filter: a model and its baselines leave out the same items)."""
    for row in range(len(scores)):
        scores[row, probes.history(start + row)] = -np.inf
    return scores


class Popularity:
    """Rank items by how often they occur in the training part."""

    name = "popularity"

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.counts = np.zeros(n_items, dtype=np.float64)

    def fit(self, train: Sequences) -> "Popularity":
        self.counts = np.bincount(train.items, minlength=self.n_items).astype(np.float64)
        return self

    def recommend(self, probes: Probes, k: int, *, exclude_history: bool = False, chunk: int = 2048) -> np.ndarray:
        if not exclude_history:
            top = _topk_rows(self.counts[None, :], k)[0]
            return np.tile(top, (len(probes), 1))
        out = []
        for start in range(0, len(probes), chunk):
            rows = np.tile(self.counts, (min(chunk, len(probes) - start), 1))
            out.append(_topk_rows(_mask_seen(rows, probes, start), k))
        return np.concatenate(out) if out else np.zeros((0, k), np.int64)


class Markov:
    """First-order Markov chain: rank items by how often they followed the history's last item
    in the training part; ties and the rest of the list by popularity."""

    name = "markov"

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.trans: sp.csr_matrix | None = None
        self.pop = np.zeros(n_items)

    def fit(self, train: Sequences) -> "Markov":
        src, dst = train.next_pairs()
        self.trans = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(self.n_items, self.n_items))
        self.trans.sum_duplicates()
        self.pop = np.bincount(train.items, minlength=self.n_items).astype(np.float64)
        return self

    def recommend(self, probes: Probes, k: int, *, exclude_history: bool = False, chunk: int = 2048) -> np.ndarray:
        last = probes.last_items()
        tie = self.pop / (self.pop.max() + 1.0)  # < 1: only breaks ties between equal counts
        out = []
        for start in range(0, len(last), chunk):
            rows = self.trans[last[start : start + chunk]].toarray() + tie[None, :]
            if exclude_history:
                rows = _mask_seen(rows, probes, start)
            out.append(_topk_rows(rows, k))
        return np.concatenate(out) if out else np.zeros((0, k), np.int64)


# --------------------------------------------------------------------------- SASRec


@dataclass(frozen=True)
class SASRecSpec:
    """SASRec (Kang & McAuley 2018) trained with full softmax cross-entropy over the catalogue
    on every position (the strong 'SASRec+ / CE' variant; the original BCE with one sampled
    negative is far weaker on Beauty).

    Defaults chosen on Beauty *validation* (docs/generative.md): batches of ~1024 target
    positions (more updates per epoch than 4096 at the same cost per epoch, which is what a
    short CPU budget needs), learning rate 2e-3 (ahead of 1e-3 at every validation we ran), dropout
    0.5, early stopping on validation NDCG@10.
    """

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    dropout: float = 0.5
    max_history: int = 50
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_targets: int = 1024
    max_epochs: int = 200
    eval_every_epochs: int = 2
    patience: int = 3  # evaluations without improvement before stopping
    # 0: softmax over the whole catalogue; N: sampled softmax over the target and N items drawn
    # uniformly, shared by the batch (gSASRec / eSASRec's 'SS' loss; 256 in their papers)
    negatives: int = 0
    seed: int = 0


class SASRecNet(nn.Module):
    def __init__(self, n_items: int, spec: SASRecSpec) -> None:
        super().__init__()
        self.spec = spec
        d = spec.d_model
        self.item = nn.Embedding(n_items + 1, d, padding_idx=n_items)  # last row = padding
        self.pos = nn.Embedding(spec.max_history, d)
        layer = nn.TransformerEncoderLayer(d, spec.n_heads, d * 4, spec.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, spec.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(spec.dropout)
        self.n_items = n_items
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) item idx or -1 (right padded) -> hidden states (B, T, d)."""
        pad = inputs < 0
        x = self.item(inputs.masked_fill(pad, self.n_items)) * math.sqrt(self.spec.d_model)
        x = x + self.pos(torch.arange(inputs.shape[1], device=inputs.device))[None]
        x = self.drop(x)
        T = inputs.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=inputs.device), 1)
        h = self.encoder(x, mask=causal, is_causal=True)
        return self.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.item.weight[: self.n_items].T


def sasrec_loss(net: SASRecNet, h: torch.Tensor, targets: torch.Tensor, negatives: int) -> torch.Tensor:
    """Full softmax cross-entropy (``negatives`` 0), or sampled softmax: the target against
    ``negatives`` uniformly drawn items (a drawn item equal to a row's target is masked)."""
    if negatives <= 0:
        return F.cross_entropy(net.logits(h), targets)
    table = net.item.weight
    drawn = torch.randint(0, net.n_items, (negatives,), device=targets.device)
    positive = (h * table[targets]).sum(-1, keepdim=True)
    sampled = (h @ table[drawn].T).masked_fill(drawn[None, :] == targets[:, None], float("-inf"))
    return F.cross_entropy(torch.cat([positive, sampled], dim=1), torch.zeros_like(targets))


#: the baselines ``semid evaluate`` knows by name: SASRec with full softmax, and with sampled softmax
SASREC_VARIANTS = {"sasrec": SASRecSpec(), "sasrec-ss": SASRecSpec(negatives=256)}


class SASRec:
    """Train / rank wrapper around :class:`SASRecNet` (selection on validation NDCG@10)."""

    name = "sasrec"

    def __init__(self, n_items: int, spec: SASRecSpec = SASRecSpec(), device: str = "cpu") -> None:
        self.n_items = n_items
        self.spec = spec
        self.device = torch.device(device)
        self.net: SASRecNet | None = None
        self.best: dict = {}

    def fit(self, split: Split, *, max_minutes: float | None = None, valid_users: int | None = None,
            cancel: CancelToken = NEVER) -> TaskGenerator["SASRec"]:
        spec = self.spec
        torch.manual_seed(spec.seed)
        rng = np.random.default_rng(spec.seed)
        net = SASRecNet(self.n_items, spec).to(self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
        windows = training_windows(split.train, spec.max_history)
        valid = split.valid
        if valid_users and len(valid) > valid_users:
            valid = valid.subset(np.sort(np.random.default_rng(0).choice(len(valid), valid_users, replace=False)))
        best_score, best_state, bad, history = -1.0, None, 0, []
        start = time.monotonic()
        throttle = ProgressThrottle("sasrec", spec.max_epochs)
        step = 0
        for epoch in range(spec.max_epochs):
            net.train()
            for batch in iter_batches(windows, spec.batch_targets, rng):
                cancel.raise_if_cancelled()
                inp = torch.from_numpy(batch.inputs).to(self.device)
                tgt = torch.from_numpy(batch.targets).to(self.device)
                h = net(inp)
                mask = tgt >= 0
                loss = sasrec_loss(net, h[mask], tgt[mask], spec.negatives)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            elapsed = time.monotonic() - start
            out_of_time = max_minutes is not None and elapsed > max_minutes * 60
            if (epoch + 1) % spec.eval_every_epochs == 0 or out_of_time or epoch + 1 == spec.max_epochs:
                self.net = net
                m = ranking_metrics(self.recommend(valid, 10), valid.targets, (10,))
                history.append({"epoch": epoch + 1, "elapsed_s": elapsed, **m})
                yield Metric("ndcg@10", m["ndcg@10"], step, elapsed, "valid")
                if m["ndcg@10"] > best_score:
                    best_score, bad = m["ndcg@10"], 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    self.best = {"epoch": epoch + 1, "elapsed_s": elapsed, **m}
                else:
                    bad += 1
                if bad >= spec.patience or out_of_time:
                    break
            ev = throttle.update(epoch + 1)
            if ev:
                yield ev
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net = net
        self.best["history"] = history
        yield Message(f"SASRec {asdict(spec)}: best validation NDCG@10 {best_score:.4f} at epoch {self.best.get('epoch')}")
        return self

    @torch.no_grad()
    def recommend(self, probes: Probes, k: int, *, exclude_history: bool = False, chunk: int = 1024) -> np.ndarray:
        assert self.net is not None
        self.net.eval()
        out = []
        for start in range(0, len(probes), chunk):
            hists = [probes.history(i) for i in range(start, min(len(probes), start + chunk))]
            items, lengths = pad_histories(hists, self.spec.max_history)
            h = self.net(torch.from_numpy(items).to(self.device))
            last = h[torch.arange(len(hists)), torch.from_numpy(lengths - 1).to(self.device)]
            scores = self.net.logits(last)
            if exclude_history:
                for row, hist in enumerate(hists):
                    scores[row, torch.from_numpy(hist).to(self.device)] = float("-inf")
            out.append(torch.topk(scores, k, dim=1).indices.cpu().numpy())
        self.net.train()
        return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def tune_sasrec(split: Split, n_items: int, grid: list[dict], *, base: SASRecSpec = SASRecSpec(),
                max_minutes_each: float | None = None, valid_users: int | None = None, device: str = "cpu",
                cancel: CancelToken = NEVER) -> TaskGenerator[tuple[SASRec, list[dict]]]:
    """Small grid search on validation NDCG@10; returns the best fitted model and every trial."""
    trials, best = [], None
    for i, overrides in enumerate(grid):
        spec = replace(base, **overrides)
        yield Message(f"SASRec trial {i + 1}/{len(grid)}: {overrides}")
        model = yield from SASRec(n_items, spec, device).fit(split, max_minutes=max_minutes_each,
                                                             valid_users=valid_users, cancel=cancel)
        trials.append({"overrides": overrides, **{k: v for k, v in model.best.items() if k != "history"}})
        if best is None or model.best["ndcg@10"] > best.best["ndcg@10"]:
            best = model
    assert best is not None
    return best, trials


def evaluate_ranker(ranker, probes: Probes, ks=DEFAULT_KS, *, exclude_history: bool = False) -> dict[str, float]:
    return ranking_metrics(ranker.recommend(probes, max(ks), exclude_history=exclude_history), probes.targets, ks)
