"""Decoding Semantic IDs: batched beam search, temperature sampling and exact scoring.

- :func:`beam_search` is real beam search: batched over users, deterministic, distinct beams
  (every beam is a distinct SID prefix), scores are summed log-probabilities, a key-value cache
  means each step runs the decoder on one new token per beam. With ``constrained=True`` the
  trie (:mod:`.trie`) masks every step, so every result is a real item; without it, SIDs that
  map to no item are reported as invalid (-1).
- :func:`sample` draws K distinct items per user with temperature (stochastic beam search,
  Kool et al. 2019: sampling without replacement over whole SIDs), for diversity.
- :func:`exact_scores` computes the log-likelihood of *every* item's SID for a history (a
  check on beam search: the beam's top results must be the exact top results).

Scores in constrained mode are the model's log-probability with each step normalised over
the valid next codes only — the same quantity the constrained training loss optimises and
that :func:`exact_scores` returns. A ``seen_bias`` model also reads, at every step, how much
of each candidate node the user already has, from the whole history passed in (:mod:`.seen`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data import pad_histories
from .model import TigerModel
from .seen import HistoryShares
from .trie import SidTrie


@dataclass
class Decoded:
    """Top-K per user: item idx (-1 = an SID no item has, only when unconstrained)."""

    items: np.ndarray  # (B, K) int64
    scores: np.ndarray  # (B, K) float: summed log-probabilities (or perturbed keys when sampling)
    codes: np.ndarray  # (B, K, L + 1) the generated SIDs

    @property
    def invalid_rate(self) -> float:
        """Share of returned slots whose SID is not a catalogue item."""
        filled = np.isfinite(self.scores)
        return float(((self.items < 0) & filled).sum() / max(1, filled.sum()))


def _masked_log_softmax(logits: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return F.log_softmax(logits, dim=-1)
    any_valid = valid.any(dim=-1, keepdim=True)
    masked = logits.masked_fill(~valid, float("-inf")).masked_fill(~any_valid, 0.0)
    return F.log_softmax(masked, dim=-1).masked_fill(~valid, float("-inf"))


def _gumbel_children(parent_key: torch.Tensor, phi: torch.Tensor, generator: torch.Generator | None
                     ) -> torch.Tensor:
    """Stochastic beam search keys: Gumbel-perturb the children's log-probabilities ``phi``
    (R, C), conditioned on their maximum being the parent's key (R, 1)."""
    u = torch.rand(phi.shape, generator=generator, device=phi.device).clamp_(1e-12, 1 - 1e-7)
    g = phi - torch.log(-torch.log(u))
    z = g.max(dim=-1, keepdim=True).values
    # key = -log(exp(-T) - exp(-Z) + exp(-G)), written stably (Kool et al. 2019, appendix)
    v = parent_key - g + torch.log1p(-torch.exp((g - z).clamp(max=-1e-7)))
    key = parent_key - v.clamp_min(0) - torch.log1p(torch.exp(-v.abs()))
    return torch.where(torch.isfinite(phi), key, torch.full_like(phi, float("-inf")))


def _prepare(model: TigerModel, histories: list[np.ndarray], users: np.ndarray | None):
    items, lengths = pad_histories(histories, model.spec.max_history)
    device = model.tokens.weight.device
    items_t = torch.from_numpy(items).to(device)
    users_t = None if users is None else torch.as_tensor(users, device=device)
    memory = model.encode(items_t, users_t, causal=model.spec.train_targets == "all")
    offset = memory.shape[1] - items.shape[1]
    return memory, torch.from_numpy(lengths).to(device) + offset


@torch.no_grad()
def beam_search(model: TigerModel, trie: SidTrie, histories: list[np.ndarray], *, beam: int = 20, k: int = 10,
                constrained: bool = True, temperature: float | None = None, sample: bool = False,
                generator: torch.Generator | None = None, exclude: list[np.ndarray] | None = None,
                users: np.ndarray | None = None,
                encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
                partners: Sequence[TigerModel] = ()) -> Decoded:
    """Top-``k`` items for each history by beam search of width ``beam`` (>= k).

    Parameters
    ----------
    model, trie
        A trained model and the trie of the catalogue to recommend from (cold-start items
        included if the trie was built with them).
    histories
        One array of item idx per user (oldest first; the last ``max_history`` are used).
    constrained
        Restrict every step to the trie's children of the beam's prefix (results are always
        real items). Unconstrained decoding may return SIDs no item has; those slots get -1.
    temperature, sample
        ``temperature`` divides the logits; ``sample=True`` draws the beams at random without
        replacement (stochastic beam search) instead of keeping the most likely ones.
    exclude
        Per user, items that must not be returned (e.g. the history itself); constrained only.
    users
        Hashed user tokens (only for models trained with ``user_bins > 0``).
    encoded
        Already encoded inputs ``(memory, lengths)`` instead of histories (a joint model's
        queries, :meth:`TigerModel.encode_text`); ``histories`` is then ignored.
    partners
        The other members of an ensemble (``spec.members``, item-head models trained like
        ``model`` with other seeds): each runs its own beam, and :func:`merge_item_head` ranks
        the union of their candidates by the members' mean scores. Only the merged ranking
        reads them (sampling and unconstrained decoding use ``model`` alone).
    """
    if beam < k:
        raise ValueError(f"beam width {beam} must be >= k {k}")
    found = _search(model, trie, histories, beam=beam, constrained=constrained, temperature=temperature,
                    sample=sample, generator=generator, exclude=exclude, users=users, encoded=encoded)
    if model.spec.item_head > 0 and constrained and not sample and encoded is None and temperature in (None, 1.0):
        members = [found]
        for other in partners:
            members.append(_search(other, trie, histories, beam=beam, constrained=True, exclude=exclude, users=users))
        device = found.memory.device
        last = torch.tensor([int(h[-1]) if len(h) else -1 for h in histories], device=device)
        return merge_item_head(members, trie, k=k, exclude=exclude, last_items=last)
    order = torch.argsort(found.keys, dim=1, descending=True)[:, :k]
    out_scores = torch.gather(found.keys, 1, order)
    out_codes = torch.gather(found.codes, 1, order[:, :, None].expand(-1, -1, trie.n_levels)).cpu().numpy()
    if constrained:
        items = torch.gather(found.items(trie), 1, order).cpu().numpy()
    else:
        items = trie.lookup(out_codes)
    out_scores = out_scores.cpu().numpy()
    items = np.where(np.isfinite(out_scores), items, -1)
    return Decoded(items, out_scores, out_codes)


@dataclass
class _Searched:
    """One model's beam over a batch: its encoded inputs and its final beams."""

    model: TigerModel
    memory: torch.Tensor
    lengths: torch.Tensor
    seen: HistoryShares | None
    scores: torch.Tensor  # (B, W) summed log-probabilities
    keys: torch.Tensor  # (B, W) what the beams are ranked by: sampling keys, or the scores themselves
    nodes: torch.Tensor  # (B, W) trie node of each beam (-1 = none)
    codes: torch.Tensor  # (B, W, L + 1)

    def items(self, trie: SidTrie) -> torch.Tensor:
        """The beams' item idx (-1 where a beam holds no item)."""
        leaf = trie.leaf_item.to(self.nodes.device)
        return torch.where(self.nodes >= 0, leaf[self.nodes.clamp_min(0)], torch.full_like(self.nodes, -1))


def _search(model: TigerModel, trie: SidTrie, histories: list[np.ndarray], *, beam: int, constrained: bool,
            temperature: float | None = None, sample: bool = False, generator: torch.Generator | None = None,
            exclude: list[np.ndarray] | None = None, users: np.ndarray | None = None,
            encoded: tuple[torch.Tensor, torch.Tensor] | None = None) -> _Searched:
    """The beam search itself (see :func:`beam_search`): the ``beam`` best SIDs per history."""
    model.eval()
    L1 = trie.n_levels
    memory, lengths = _prepare(model, histories, users) if encoded is None else encoded
    B = memory.shape[0]
    device = memory.device
    state = model.decode_start(memory, lengths)
    # a seen_bias model reads what each user already has (the whole history, not the window)
    seen = None
    if model.seen_bias is not None and constrained and encoded is None:
        seen = HistoryShares(trie, histories, model.n_steps, device)
    blocked = trie.blocked_nodes(exclude, device) if (exclude is not None and constrained) else None
    scores = torch.zeros(B, 1, device=device)  # summed log-probs of the live beams
    keys = torch.zeros(B, 1, device=device)  # sampling keys (== scores without sampling)
    nodes = torch.zeros(B, 1, dtype=torch.long, device=device)  # trie node of each beam's prefix (-1 = none)
    codes = torch.zeros(B, 1, 0, dtype=torch.long, device=device)
    for level in range(L1):
        W = scores.shape[1]
        modelled = level < model.n_steps
        h = model.decode_step(state) if modelled else None  # (B * W, d)
        if constrained:
            cand_nodes, cand_codes = trie.children(level, nodes.reshape(-1))  # (B * W, C)
            valid = cand_nodes >= 0
            if blocked is not None and blocked[level].shape[1] > 0:
                per_user = blocked[level].repeat_interleave(W, dim=0)  # (B * W, H)
                valid = valid & ~(cand_nodes[:, :, None] == per_user[:, None, :]).any(-1)
            if modelled:
                shares = None
                if seen is not None:
                    owners = torch.arange(B, device=device).repeat_interleave(W)
                    shares = seen.share(level, cand_nodes, owners)
                logits = model.child_logits(h, level, cand_codes, cand_nodes, trie, seen=shares).float()
            else:  # an unmodelled dedup level: the items of the tuple share its probability
                logits = torch.zeros(cand_codes.shape, device=device)
        else:
            size = trie.level_sizes[level]
            cand_codes = torch.arange(size, device=device).expand(B * W, size)
            cand_nodes = None
            valid = None
            if modelled:
                logits = model.full_logits(h, level).float()
            else:  # unmodelled dedup level without a trie: the first item of the tuple
                logits = torch.full((B * W, size), float("-inf"), device=device)
                logits[:, 0] = 0.0
        if modelled and temperature is not None and temperature != 1.0:
            logits = logits / temperature
        logp = _masked_log_softmax(logits, valid)
        C = logp.shape[1]
        phi = scores.reshape(B * W, 1) + logp
        cand = phi.reshape(B, W * C)
        if sample:
            cand_keys = _gumbel_children(keys.reshape(B * W, 1), phi, generator).reshape(B, W * C)
        else:
            cand_keys = cand
        n_keep = min(beam, W * C)
        top_keys, top = torch.topk(cand_keys, n_keep, dim=1)
        parent, slot = top // C, top % C
        rows = (torch.arange(B, device=device)[:, None] * W + parent).reshape(-1)
        scores = torch.gather(cand, 1, top)
        keys = top_keys
        new_codes = cand_codes[rows, slot.reshape(-1)].reshape(B, n_keep)
        if constrained:
            nodes = cand_nodes[rows, slot.reshape(-1)].reshape(B, n_keep)
        codes = torch.cat([torch.gather(codes, 1, parent[:, :, None].expand(-1, -1, codes.shape[2])),
                           new_codes[:, :, None]], dim=2)
        if level + 1 < model.n_steps:
            model.reorder(state, rows)
            model.feed(state, new_codes.reshape(-1), level)  # the next step reads this level's code
    return _Searched(model, memory, lengths, seen, scores, keys, nodes, codes)


def merge_item_head(members: list[_Searched], trie: SidTrie, *, k: int, exclude: list[np.ndarray] | None = None,
                    last_items: torch.Tensor | None = None) -> Decoded:
    """Top-``k`` of an item-head model (``spec.item_head``): the beam's items and as many
    top items of the item-level score, each scored by its SID log-probability (exact,
    teacher-forced) + the item-level score. That score is ``item_blend`` x the head's
    log-probability over the trie's items, plus ``transition_weight`` x the transition prior's
    log-probability after the history's last item (``last_items`` (B,), -1 = none).

    An ensemble (several ``members``, one searched beam each) ranks the union of every
    member's beam and the top ``W x members`` of its item-level score, each candidate scored by
    the members' *mean* SID and head log-probabilities (the prior is counted once: every
    member holds the same counts). With one member it is the single model's ranking."""
    first = members[0]
    model, memory = first.model, first.memory
    B, W = first.nodes.shape
    device = memory.device
    spec = model.spec
    in_trie = torch.full((model.n_catalogue,), float("-inf"), device=device)
    in_trie[torch.from_numpy(trie.items).to(device)] = 0.0
    head = 0.0
    for member in members:
        states = member.memory[torch.arange(B, device=device), member.lengths - 1]
        head = head + F.log_softmax(member.model.item_logits(states).float() + in_trie, dim=-1)
    head = head / len(members)
    # (0 x -inf would be nan: without a blend the level is 0 on the trie's items, -inf elsewhere)
    item_level = spec.item_blend * head if spec.item_blend > 0 else in_trie.expand(B, -1).clone()
    if spec.transition_weight > 0:
        last = torch.full((B,), -1, device=device) if last_items is None else last_items
        item_level = item_level + spec.transition_weight * model.transition_log_probs(last)
    if exclude is not None:
        for row, items in enumerate(exclude):
            if len(items):
                item_level[row, torch.as_tensor(np.asarray(items), device=device)] = float("-inf")
    # item_blend 0 without a prior: the extra candidates still come from the head
    pool = item_level if (spec.item_blend > 0 or spec.transition_weight > 0) else head + item_level
    item_top = torch.topk(pool, min(W * len(members), pool.shape[1]), dim=1).indices
    cand = torch.cat([member.items(trie) for member in members] + [item_top], dim=1)
    missing = cand < 0
    cand = cand.clamp_min(0)
    sid = sum(sid_log_probs(m.model, trie, m.memory, m.lengths, cand, m.seen) for m in members) / len(members)
    total = sid + item_level.gather(1, cand)
    total = total.masked_fill(missing, float("-inf"))
    # an item may come from both lists: keep one copy
    cand, order = torch.sort(cand, dim=1)
    total = total.gather(1, order)
    total[:, 1:] = total[:, 1:].masked_fill(cand[:, 1:] == cand[:, :-1], float("-inf"))
    top_scores, top = torch.topk(total, min(k, total.shape[1]), dim=1)
    items = cand.gather(1, top)
    out_scores = top_scores.cpu().numpy()
    items = np.where(np.isfinite(out_scores), items.cpu().numpy(), -1)
    return Decoded(items, out_scores, model.codes[torch.from_numpy(items).clamp_min(0)].cpu().numpy())


def score_meaning(spec) -> str:
    """What a beam-search ranking's scores are, in words (the app's and the CLI's captions)."""
    if spec.item_head <= 0:
        return "SID log-probability"
    words = f"SID log-probability + {spec.item_blend:g} x item-head log-probability"
    if getattr(spec, "members", 1) > 1:
        words = f"{spec.members} models' mean {words}"
    if spec.transition_weight > 0:
        words += f" + {spec.transition_weight:g} x transition log-probability"
    return words


@torch.no_grad()
def sid_log_probs(model: TigerModel, trie: SidTrie, memory: torch.Tensor, lengths: torch.Tensor,
                  items: torch.Tensor, seen: HistoryShares | None = None) -> torch.Tensor:
    """Log-likelihood of given items' SIDs ``(B, Q)`` after B encoded histories (``memory``,
    ``lengths`` as for :meth:`TigerModel.decode_start`), teacher-forced, each level normalised
    over the real children of the item's prefix: the quantity constrained beam search ranks by."""
    B, Q = items.shape
    device = memory.device
    state = memory[torch.arange(B, device=device), lengths - 1][:, None, :].expand(B, Q, -1)
    cross = model.spec.decoder_context == "cross"
    mask = (torch.arange(memory.shape[1], device=device)[None] < lengths[:, None])[:, None, None, :] if cross else None
    h = model.decode_full(state, model.codes[items], memory if cross else None, mask).reshape(B * Q, model.n_steps, -1)
    paths = trie.item_path.to(device)[items.reshape(-1)]  # (B * Q, L1) node ids
    owners = torch.arange(B, device=device).repeat_interleave(Q)
    total = torch.zeros(B * Q, device=device)
    for level in range(trie.n_levels):
        parents = torch.zeros_like(owners) if level == 0 else paths[:, level - 1]
        nodes, child_codes = trie.children(level, parents)
        if level < model.n_steps:
            shares = None if seen is None else seen.share(level, nodes, owners)
            logits = model.child_logits(h[:, level], level, child_codes, nodes, trie, seen=shares).float()
        else:  # unmodelled dedup level: uniform over the items of the tuple
            logits = torch.zeros(nodes.shape, device=device)
        logp = _masked_log_softmax(logits, nodes >= 0)
        slot = paths[:, level] - trie.first[level].to(device)[parents]
        total += logp.gather(1, slot[:, None])[:, 0]
    return total.reshape(B, Q)


def sample(model: TigerModel, trie: SidTrie, histories: list[np.ndarray], *, k: int = 10,
           temperature: float = 1.0, seed: int = 0, beam: int | None = None,
           exclude: list[np.ndarray] | None = None) -> Decoded:
    """``k`` distinct items per user drawn with temperature (stochastic beam search).

    Deterministic for a given ``seed``. Higher temperature -> more diverse lists.
    """
    generator = torch.Generator(device=model.tokens.weight.device).manual_seed(seed)
    return beam_search(model, trie, histories, beam=beam or k, k=k, constrained=True, temperature=temperature,
                       sample=True, generator=generator, exclude=exclude)


@torch.no_grad()
def exact_scores(model: TigerModel, trie: SidTrie, history: np.ndarray, *, chunk: int = 2048) -> np.ndarray:
    """Log-likelihood of every catalogue item's SID after ``history`` (``(n_items,)`` over
    the trie's items, indexed by item idx; items outside the trie get -inf).

    Teacher-forced in one pass per chunk of items (no beam, no cache), with each level
    normalised over the real children of the item's prefix — the quantity constrained beam
    search ranks by — so it is an independent check of :func:`beam_search`.
    """
    model.eval()
    memory, lengths = _prepare(model, [np.asarray(history)], None)
    device = memory.device
    items = torch.from_numpy(trie.items).to(device)
    seen = HistoryShares(trie, [np.asarray(history)], model.n_steps, device) if model.seen_bias is not None else None
    out = torch.full((int(trie.items.max()) + 1,), float("-inf"), device=device)
    for start in range(0, len(items), chunk):
        some = items[start : start + chunk]
        out[some] = sid_log_probs(model, trie, memory, lengths, some[None], seen)[0]
    return out.cpu().numpy()
