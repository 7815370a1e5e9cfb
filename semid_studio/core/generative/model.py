"""The TIGER-style encoder-decoder, built from torch's own layers and scaled-dot-product
attention.

What it computes
----------------
- **Encoder** over the history, one position per item (sum of its level-code embeddings and,
  optionally, its item-id embedding; see :mod:`.tokens`). It is *causal*: position ``t`` sees
  items ``0..t``, so one pass over a user's sequence yields the state after every prefix and
  every position is a training target at once (SASRec's trick, here for a generative model).
  ``train_targets="last"`` gives TIGER's original bidirectional encoder with one target per
  history, for comparison.
- **Decoder** over the target's SID tokens ``[start, c_a, c_b, ...]``, predicting level ``l``
  at position ``l``. The start token carries the encoder state of the last history item; with
  ``decoder_context="cross"`` every decoder layer also cross-attends to the history states
  (only those up to the target's own position while training).
- **Output**: per-level logits over that level's codes, by default tied to the level's input
  embeddings.
- **Item-level signals beside the SID tokens** (spec options, see docs/generative.md): an
  item-id embedding per history position, per-trie-node output embeddings (``node_output``),
  and the item's own content vector — the sentence embedding its SID was quantised from —
  projected into each history position (``content_input``) and, as the mean over a node's
  items, into the output (``content_output``).
- **What the user already has** (``seen_bias``): a learned offset per SID level times the share
  of each candidate node's items in the user's whole history (:mod:`.seen`), added to the
  candidate's logit, so the model learns whether people come back to items.

Attention heads may be wider than ``d_model / n_heads`` (TIGER: 6 heads x 64 on d_model
128), so attention is our own small module over ``F.scaled_dot_product_attention``.
Decoding keeps a key-value cache: each beam step runs the decoder on one new token only.

Joint search + recommendation (method.md section 2): built with a :class:`TextInput`, the same
model also reads query text. A history then starts with a ``<task_rec>`` position; a query is
``[text positions ..., <task_search>]`` read *bidirectionally* by the same encoder layers, and
the decoder starts from the task token's state — one shared SID space, one decoder, one
constrained beam search. Without a ``TextInput`` nothing of this exists (same parameters, same
initialisation, same outputs as before).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .spec import GenerativeSpec
from .tokens import BOS, PAD, TASK_REC, TASK_SEARCH, UNK_ITEM, SidVocab


def random_bytes(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """Uniform random uint8 values of ``shape``, drawn 7 per 64-bit random number.

    torch's CPU ``bernoulli_`` (behind ``F.dropout``) costs about 30 elementwise operations
    per element; this is ~4x cheaper and comes from the same (seeded, checkpointed) generator.
    The top byte of ``random_()`` on int64 is never >= 128, so only the low 7 bytes are used.
    """
    n = int(np.prod(shape)) if len(shape) else 1
    words = torch.empty((n + 6) // 7, dtype=torch.int64, device=device).random_()
    return words.view(torch.uint8).view(-1, 8)[:, :7].reshape(-1)[:n].view(shape)


class Dropout(nn.Module):
    """Inverted dropout with a cheap mask (see :func:`random_bytes`); keep-probability is
    quantised to 1/256."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = int(round(p * 256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        keep = random_bytes(x.shape, x.device) >= self.threshold
        scale = 256.0 / (256 - self.threshold)
        return x * keep.to(x.dtype).mul_(scale)


class Attention(nn.Module):
    """Multi-head attention with ``n_heads x head_dim`` inner width (may differ from d_model)."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float, cross: bool) -> None:
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim, self.cross = n_heads, head_dim, cross
        if cross:
            self.q = nn.Linear(d_model, inner)
            self.kv = nn.Linear(d_model, 2 * inner)
        else:
            self.qkv = nn.Linear(d_model, 3 * inner)
        self.out = nn.Linear(inner, d_model)
        self.dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        B, H, T, D = x.shape
        return x.transpose(1, 2).reshape(B, T, H * D)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of a memory, ``(B, H, T, D)`` each (cached once per decode)."""
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x: torch.Tensor, *, kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        if self.cross:
            q = self._split(self.q(x))
            k, v = kv  # type: ignore[misc]
        else:
            q, k, v = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        return self.out(self._merge(y))

    def step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Self-attention of one new token ``(B, 1, d)`` over the cached ones plus itself."""
        q, k, v = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(self._merge(y)), (k, v)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer."""

    def __init__(self, s: GenerativeSpec) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(s.d_model)
        self.attn = Attention(s.d_model, s.n_heads, s.head_dim, s.dropout, cross=False)
        self.norm2 = nn.LayerNorm(s.d_model)
        self.ff = FeedForward(s.d_model, s.d_ff, s.dropout, s.activation)
        self.drop = Dropout(s.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask=mask, is_causal=is_causal))
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: causal self-attention, optional cross-attention, MLP."""

    def __init__(self, s: GenerativeSpec) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(s.d_model)
        self.self_attn = Attention(s.d_model, s.n_heads, s.head_dim, s.dropout, cross=False)
        self.use_cross = s.decoder_context == "cross"
        if self.use_cross:
            self.norm2 = nn.LayerNorm(s.d_model)
            self.cross_attn = Attention(s.d_model, s.n_heads, s.head_dim, s.dropout, cross=True)
        self.norm3 = nn.LayerNorm(s.d_model)
        self.ff = FeedForward(s.d_model, s.d_ff, s.dropout, s.activation)
        self.drop = Dropout(s.dropout)

    def forward(self, x: torch.Tensor, kv, cross_mask: torch.Tensor | None, n_tok: int) -> torch.Tensor:
        """``x``: (B, Q * n_tok, d) — Q targets of n_tok tokens each, per batch row."""
        B, QN, d = x.shape
        h = self.norm1(x).reshape(B * QN // n_tok, n_tok, d)
        x = x + self.drop(self.self_attn(h, is_causal=True).reshape(B, QN, d))
        if self.use_cross:
            x = x + self.drop(self.cross_attn(self.norm2(x), kv=kv, mask=cross_mask))
        return x + self.drop(self.ff(self.norm3(x)))

    def step(self, x: torch.Tensor, cache, kv, cross_mask):
        """One new token per beam ``(B * W, 1, d)`` with the self-attention cache.

        All W beams of a user share that user's history, so the cross-attention runs once per
        user with the beams as its query positions: the history keys / values are never copied
        per beam.
        """
        h, cache = self.self_attn.step(self.norm1(x), cache)
        x = x + h
        if self.use_cross:
            BW, _, d = x.shape
            B = kv[0].shape[0]
            c = self.cross_attn(self.norm2(x).reshape(B, BW // B, d), kv=kv, mask=cross_mask)
            x = x + c.reshape(BW, 1, d)
        return x + self.ff(self.norm3(x)), cache


SEEN_BIAS_SCALE = 10.0  # see TigerModel.seen_offset


@dataclass(frozen=True)
class TextInput:
    """The text side of a joint search + recommendation model.

    ``kind``: ``"states"`` — precomputed vectors per text position (e.g. a frozen sentence
    encoder's token states), projected into ``d_model`` by a linear layer; ``"wordpiece"`` —
    token ids (0 = padding) looked up in a table learned from scratch. ``dim``: the vector
    width (states) or the id range (wordpiece). ``max_positions``: text positions per query.
    """

    kind: str
    dim: int
    max_positions: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "max_positions": self.max_positions}

    @classmethod
    def from_dict(cls, data: dict) -> "TextInput":
        return cls(str(data["kind"]), int(data["dim"]), int(data["max_positions"]))


class TigerModel(nn.Module):
    """Generative recommender: history of items -> the next item's Semantic ID."""

    def __init__(self, spec: GenerativeSpec, vocab: SidVocab, text: TextInput | None = None,
                 content_dim: int = 0) -> None:
        """``content_dim``: width of the items' content vectors (``spec.content_input`` /
        ``content_output``; the vectors themselves come with :meth:`set_catalogue`)."""
        super().__init__()
        self.spec, self.vocab, self.text = spec, vocab, text
        d = spec.d_model
        self.tokens = nn.Embedding(vocab.size, d, padding_idx=PAD)
        # a joint model puts a <task_rec> position in front of every history
        n_pos = spec.max_history + (1 if spec.user_bins > 0 else 0) + (1 if text is not None else 0)
        self.pos = nn.Embedding(n_pos, d)
        self.emb_drop = Dropout(spec.emb_dropout)
        self.encoder = nn.ModuleList(EncoderLayer(spec) for _ in range(spec.encoder_layers))
        self.enc_norm = nn.LayerNorm(d)
        self.start = nn.Linear(d, d)  # encoder state -> decoder start token
        self.decoder = nn.ModuleList(DecoderLayer(spec) for _ in range(spec.decoder_layers))
        self.dec_norm = nn.LayerNorm(d)
        # decoder steps: one per SID level, minus the dedup level when it is not modelled
        self.n_steps = vocab.n_levels if vocab.model_dedup else vocab.n_levels - 1
        sizes = vocab.level_sizes[: self.n_steps]
        if spec.tie_output:
            self.out_bias = nn.ParameterList(nn.Parameter(torch.zeros(s)) for s in sizes)
        else:
            self.heads = nn.ModuleList(nn.Linear(d, s) for s in sizes)
        # optional item-level signal on the output side: one embedding per trie node of levels
        # 1.. (a prefix of length >= 2, i.e. nearly an item), added to the code's logit; the
        # last row of each table stays zero for prefixes the model never saw (cold start)
        self.node_emb = nn.ModuleList()
        if spec.node_output:
            counts = list(vocab.node_counts)
            if len(counts) < self.n_steps:
                raise ValueError("node_output needs the training trie's node counts in the vocabulary")
            for level in range(1, self.n_steps):
                self.node_emb.append(nn.Embedding(counts[level] + 1, d, padding_idx=counts[level]))
        self._node_maps: list[torch.Tensor | None] = [None] * vocab.n_levels
        self.register_buffer("level_offsets", torch.tensor(vocab.level_offsets), persistent=False)
        self.register_buffer("item_feats", torch.zeros(1, vocab.n_levels + 1, dtype=torch.long), persistent=False)
        self.register_buffer("codes", torch.zeros(1, vocab.n_levels, dtype=torch.long), persistent=False)
        if text is not None:
            # created after every recommender module, so those are initialised exactly as before
            if text.kind == "states":
                self.text_in = nn.Sequential(nn.LayerNorm(text.dim), nn.Linear(text.dim, d))
            elif text.kind == "wordpiece":
                self.text_in = nn.Embedding(text.dim, d, padding_idx=0)
            else:
                raise ValueError(f"unknown text input kind '{text.kind}'")
            self.text_pos = nn.Embedding(text.max_positions, d)
        # content vectors beside the SID tokens (created last: models without them are
        # initialised exactly as before)
        if (spec.content_input or spec.content_output) and content_dim <= 0:
            raise ValueError("content_input / content_output need the width of the items' content vectors")
        self.content_dim = content_dim if (spec.content_input or spec.content_output) else 0
        if spec.content_input:
            self.content_in = nn.Sequential(nn.LayerNorm(content_dim), nn.Linear(content_dim, d))
        if spec.content_output:
            self.content_out = nn.Linear(content_dim, d, bias=False)
        self.register_buffer("content", torch.zeros(1, max(1, self.content_dim)), persistent=False)
        # one offset per modelled level for items the user already has (created after every
        # other module: models without it are initialised exactly as before)
        self.seen_bias = nn.Parameter(torch.zeros(self.n_steps)) if spec.seen_bias else None
        # the item-level head (created last, as above): the state is projected into the space
        # of the items' input vectors, plus a learned per-item bias (popularity); items beyond
        # the training vocabulary (cold start) get no bias of their own
        if spec.item_head > 0:
            self.item_query = nn.Linear(d, d)
            self.item_bias = nn.Parameter(torch.zeros(vocab.n_items))
        # the transition prior (spec.transition_weight): how often each item followed each
        # other in the training part, as a sparse table (row = item, CSR) that travels with the
        # weights; its size is only known once counted (set_transitions), or when loaded
        if spec.transition_weight > 0:
            self.register_buffer("transition_start", torch.zeros(vocab.n_items + 1, dtype=torch.long))
            self.register_buffer("transition_next", torch.zeros(0, dtype=torch.long))
            self.register_buffer("transition_count", torch.zeros(0))
            self.register_buffer("item_count", torch.zeros(vocab.n_items))
        # per decoding trie: each level's node vectors (mean of the node's items' content);
        # the projected tables are cached while the weights cannot change (eval mode)
        self._node_content: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._projected: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._item_table: torch.Tensor | None = None  # item_vectors() in eval mode
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        with torch.no_grad():
            self.tokens.weight[PAD].zero_()
            if self.text is not None and self.text.kind == "wordpiece":
                self.text_in.weight[0].zero_()

    # -- catalogue

    def set_catalogue(self, codes: np.ndarray, content: np.ndarray | None = None) -> None:
        """Attach the SID table (row = item idx); items beyond the vocabulary's ``n_items``
        (cold start) are encoded by their codes plus the 'unknown item' token. ``content``
        ``(n, content_dim)``: the items' content vectors, for models that read them."""
        feats = self.vocab.item_features(codes)
        self._item_table = None  # the item head's table follows the catalogue
        device = self.tokens.weight.device
        self.item_feats = torch.from_numpy(feats).to(device)
        self.codes = torch.from_numpy(np.asarray(codes, dtype=np.int64)).to(device)
        if self.content_dim:
            if content is None or content.shape != (len(codes), self.content_dim):
                got = None if content is None else content.shape
                raise ValueError(f"this model reads content vectors of shape {(len(codes), self.content_dim)}, got {got}")
            table = np.zeros((len(codes) + 1, self.content_dim), dtype=np.float32)  # last row: padding
            table[:-1] = content
            self.content = torch.from_numpy(table).to(device)
            self._node_content = weakref.WeakKeyDictionary()
            self._projected = weakref.WeakKeyDictionary()

    def train(self, mode: bool = True):
        self._projected = weakref.WeakKeyDictionary()  # the weights may change from here on
        self._item_table = None
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._projected = weakref.WeakKeyDictionary()
        self._item_table = None
        for name in ("transition_next", "transition_count"):  # sized by the stored table
            if hasattr(self, name) and prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.item_count.device))
        return super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def n_catalogue(self) -> int:
        return self.item_feats.shape[0] - 1

    # -- encoder

    def embed_history(self, items: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) item idx, -1 = padding -> (B, T', d) input vectors (T' = T + 1 with a user token)."""
        feats = self.item_feats[items.masked_fill(items < 0, self.n_catalogue)]
        if self.training and self.spec.item_dropout > 0:
            # replace some item-id tokens by 'unknown': the model must also read the SID codes,
            # which is what lets it recommend cold-start items with no id embedding of their own
            drop = torch.rand(items.shape, device=items.device) < self.spec.item_dropout
            ids = feats[..., -1]
            feats = feats.clone()
            feats[..., -1] = torch.where(drop & (ids != PAD), torch.full_like(ids, UNK_ITEM), ids)
        x = self._item_input(feats, items.masked_fill(items < 0, self.n_catalogue))
        if users is not None and self.spec.user_bins > 0:
            x = torch.cat([self.tokens(users)[:, None, :], x], dim=1)
        if self.text is not None:  # joint model: the history is a recommendation request
            task = self.tokens.weight[TASK_REC].expand(x.shape[0], 1, -1)
            x = torch.cat([task, x], dim=1)
        T = x.shape[1]
        x = x + self.pos.weight[:T][None]
        return self.emb_drop(x)

    def encode(self, items: torch.Tensor, users: torch.Tensor | None = None, *, causal: bool = True
               ) -> torch.Tensor:
        """History states ``(B, T', d)``.

        Right padding: with a causal encoder, real positions never see the padding after them.
        The bidirectional variant masks padded keys.
        """
        x = self.embed_history(items, users)
        mask = None
        if not causal:
            valid = items >= 0
            extra = x.shape[1] - items.shape[1]  # user / task tokens in front
            if extra:
                valid = torch.cat([torch.ones_like(valid[:, :1]).expand(-1, extra), valid], dim=1)
            mask = valid[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, mask, causal)
        return self.enc_norm(x)

    # -- item-level head

    def _item_input(self, feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Items' input vectors from their token ids ``feats`` (..., L + 2) and catalogue rows
        (...,): the sum of their code (and item-id) embeddings plus their projected content."""
        if not self.spec.item_embedding:
            feats = feats[..., :-1]
        x = self.tokens(feats).sum(dim=-2)
        if self.spec.content_input:
            x = x + self.content_in(self.content[rows])
        return x

    def item_vectors(self) -> torch.Tensor:
        """Every catalogue item's input vector (as a history position reads it, without
        position or dropout): ``(n_catalogue, d)``, what the item head scores states against.
        Cached while the weights cannot change (eval), like the projected node content."""
        if not self.training and self._item_table is not None:
            return self._item_table
        rows = torch.arange(self.n_catalogue, device=self.item_feats.device)
        table = self._item_input(self.item_feats[:-1], rows)
        if not self.training:
            self._item_table = table
        return table

    def item_logits(self, states: torch.Tensor, items: torch.Tensor | None = None,
                    vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Item-head logits of encoder ``states`` ``(N, d)``: over every catalogue item
        ``(N, n_catalogue)``, or over given ``items`` ``(N, C)`` / ``(C,)``. ``vectors``: the
        result of :meth:`item_vectors` when several calls share one."""
        table = self.item_vectors() if vectors is None else vectors
        known = min(self.vocab.n_items, table.shape[0])
        bias = F.pad(self.item_bias[:known], (0, table.shape[0] - known))  # cold-start items: 0
        q = self.item_query(states)
        if items is None:
            return q @ table.T + bias
        if items.dim() == 1:
            return q @ table[items].T + bias[items]
        return (table[items] @ q.unsqueeze(-1)).squeeze(-1) + bias[items]

    # -- transition prior

    def set_transitions(self, sequences) -> None:
        """Count item -> next item in training ``sequences`` (:class:`.data.Sequences`) for the
        transition prior, and each item's occurrences (the prior's fallback)."""
        n = self.vocab.n_items
        src, dst = sequences.next_pairs()
        keys, counts = np.unique(src * n + dst, return_counts=True)  # sorted by (item, next item)
        device = self.tokens.weight.device
        # registered here too, so that a model trained without the prior can be given one
        tables = {"transition_start": np.searchsorted(keys, np.arange(n + 1) * n),
                  "transition_next": keys % n,
                  "transition_count": counts.astype(np.float32),
                  "item_count": np.bincount(sequences.items, minlength=n)[:n].astype(np.float32)}
        for name, table in tables.items():
            self.register_buffer(name, torch.from_numpy(table).to(device))

    def transition_log_probs(self, last: torch.Tensor) -> torch.Tensor:
        """``log P(next item | last item)`` over the catalogue ``(B, n_catalogue)`` for the
        histories' last items ``(B,)``: the training part's counts, smoothed towards item
        popularity by ``spec.transition_smoothing`` pseudo-counts. Items the table does not
        know (cold start, or -1) follow popularity alone."""
        B, N, n = last.shape[0], self.n_catalogue, self.vocab.n_items
        alpha = self.spec.transition_smoothing
        popularity = F.pad(self.item_count[:N] + 1.0, (0, max(0, N - n)), value=1.0)
        popularity = popularity / popularity.sum()
        known = (last >= 0) & (last < n)
        row = last.clamp(0, n - 1)
        begin, end = self.transition_start[row], self.transition_start[row + 1]
        size = torch.where(known, end - begin, torch.zeros_like(begin))
        owner = torch.repeat_interleave(torch.arange(B, device=last.device), size)
        at = torch.arange(int(size.sum()), device=last.device) - torch.repeat_interleave(size.cumsum(0) - size, size)
        at = at + torch.repeat_interleave(begin, size)
        counts = torch.zeros(B, N, device=last.device)
        counts[owner, self.transition_next[at]] = self.transition_count[at]
        total = torch.zeros(B, device=last.device).index_add_(0, owner, self.transition_count[at])
        return torch.log((counts + alpha * popularity) / (total + alpha)[:, None])

    # -- text encoder (joint search)

    def encode_text(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Query states for search: ``(memory (B, T + 1, d), lengths + 1)``.

        ``feats``: ``(B, T, dim)`` vectors (``states``) or ``(B, T)`` ids (``wordpiece``),
        right-padded; ``lengths`` (B,) valid text positions (>= 1). The ``<task_search>``
        token is written right after each query's last position, so the decoder starts from
        it exactly as it starts from a history's last item (:meth:`decode_start`); attention
        is bidirectional over the valid positions.
        """
        if self.text is None:
            raise ValueError("this model has no text input (it was trained for recommendation only)")
        B, T = feats.shape[0], feats.shape[1]
        x = self.text_in(feats) + self.text_pos.weight[:T][None]
        x = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
        rows = torch.arange(B, device=x.device)
        x = x.index_put((rows, lengths), self.tokens.weight[TASK_SEARCH].expand(B, -1).to(x.dtype))
        x = self.emb_drop(x)
        n = lengths + 1
        valid = torch.arange(T + 1, device=x.device)[None] < n[:, None]
        mask = valid[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, mask, False)
        return self.enc_norm(x), n

    def forward_search(self, feats: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder states ``(B, n_steps, d)`` for query -> target item SIDs (teacher-forced)."""
        memory, n = self.encode_text(feats, lengths)
        B = memory.shape[0]
        state = memory[torch.arange(B, device=memory.device), n - 1][:, None]
        codes = self.codes[targets][:, None]
        mask = None
        if self.spec.decoder_context == "cross":
            mask = (torch.arange(memory.shape[1], device=memory.device)[None] < n[:, None])[:, None, None, :]
        h = self.decode_full(state, codes, memory if mask is not None else None, mask)
        return h[:, 0], targets

    # -- decoder (training / scoring: whole SIDs at once)

    def _cross_kv(self, memory: torch.Tensor):
        return [layer.cross_attn.project_kv(memory) if layer.use_cross else None for layer in self.decoder]

    def decode_full(self, states: torch.Tensor, codes: torch.Tensor, memory: torch.Tensor | None,
                    cross_mask: torch.Tensor | None, kv=None) -> torch.Tensor:
        """Decoder output states for Q targets per row, teacher-forced: ``(B, Q, n_steps, d)``.

        states (B, Q, d): the encoder state each target is predicted from; codes (B, Q, L+1):
        the target SIDs; memory (B, T, d) and cross_mask (B or 1, 1, Q * n_steps, T) for the
        cross-attention. Position ``l`` of the output predicts level ``l``.
        """
        B, Q, _ = states.shape
        L1 = self.n_steps
        start = self.start(states) + self.tokens.weight[BOS]
        prev = self.tokens(codes[..., : L1 - 1] + self.level_offsets[: L1 - 1])  # (B, Q, L1 - 1, d)
        x = torch.cat([start[:, :, None, :], prev], dim=2).reshape(B, Q * L1, -1)
        if kv is None and memory is not None:
            kv = self._cross_kv(memory)
        for i, layer in enumerate(self.decoder):
            x = layer(x, kv[i] if kv is not None else None, cross_mask, L1)
        return self.dec_norm(x).reshape(B, Q, L1, -1)

    def full_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Logits over every code of ``level`` (no trie): ``(..., size_level)``."""
        if self.spec.tie_output:
            off, size = self.vocab.level_offsets[level], self.vocab.level_sizes[level]
            return h @ self.tokens.weight[off : off + size].T + self.out_bias[level]
        return self.heads[level](h)

    def set_node_maps(self, maps: list[torch.Tensor | None]) -> None:
        """How the decoding trie's node ids map to this model's node embeddings (per level;
        None = identical, i.e. the training trie). Unknown nodes map to -1."""
        self._node_maps = [None if m is None else m.to(self.tokens.weight.device) for m in maps]

    def child_logits(self, h: torch.Tensor, level: int, codes: torch.Tensor, nodes: torch.Tensor,
                     trie=None, content_table: torch.Tensor | None = None,
                     seen: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of given children ``(..., C)`` (their codes and nodes of ``trie``, -1 = no
        child) from decoder states ``h`` ``(..., d)``: the code's logit plus, with
        ``node_output``, the child node's own embedding and, with ``content_output``, its
        projected content vector (levels >= 1; needs ``trie``, or ``content_table`` from
        :meth:`content_table` when one step asks several times). ``seen`` ``(..., C)``: the
        share of each child's items the user already has (:mod:`.seen`), for ``seen_bias``."""
        base = self.full_logits(h, level).gather(-1, codes.clamp_min(0))
        if self.seen_bias is not None and seen is not None:
            base = base + self.seen_offset(level) * seen
        if self.spec.content_output and level > 0:
            if content_table is None and trie is None:
                raise ValueError("a content_output model needs the decoding trie")
            table = self.content_table(trie, level) if content_table is None else content_table
            rows = torch.where(nodes >= 0, nodes, torch.full_like(nodes, table.shape[0] - 1))
            base = base + (table[rows] @ h.unsqueeze(-1)).squeeze(-1)
        if not self.node_emb or level == 0:
            return base
        table = self.node_emb[level - 1]
        pad = table.num_embeddings - 1
        node_map = self._node_maps[level]
        rows = nodes if node_map is None else node_map[nodes.clamp_min(0)]
        rows = torch.where((nodes >= 0) & (rows >= 0), rows, torch.full_like(rows, pad))
        emb = table(rows)  # (..., C, d)
        return base + (emb @ h.unsqueeze(-1)).squeeze(-1)

    def seen_offset(self, level: int) -> torch.Tensor:
        """The logit offset for a child whose items the user all has. The parameter is scaled
        because Adam moves a weight by about the learning rate per step, and this offset has
        to travel several logits within a run of a thousand steps."""
        return SEEN_BIAS_SCALE * self.seen_bias[level]

    def content_table(self, trie, level: int) -> torch.Tensor:
        """Projected content vectors of ``trie``'s nodes at ``level``: ``(n_nodes + 1, d)``, the
        last row zero (for missing children). Cached while the weights cannot change (eval)."""
        cached = self._projected.get(trie, {})
        if not self.training and level in cached:
            return cached[level]
        raw = self._node_content.get(trie)
        if raw is None:
            raw = self._node_content[trie] = self._node_vectors(trie)
        table = F.pad(self.content_out(raw[level]), (0, 0, 0, 1))
        if not self.training:
            self._projected.setdefault(trie, {})[level] = table
        return table

    @torch.no_grad()
    def _node_vectors(self, trie) -> list[torch.Tensor]:
        """Per level, each node's content: the normalised mean of its items' vectors."""
        content = self.content[:-1]
        out = []
        for level, n_nodes in enumerate(trie.n_nodes):
            nodes = trie.item_path[:, level].to(content.device)
            rows = torch.nonzero(nodes >= 0)[:, 0]
            rows = rows[rows < len(content)]
            sums = torch.zeros(n_nodes, self.content_dim, device=content.device)
            sums.index_add_(0, nodes[rows], content[rows])
            out.append(F.normalize(sums, dim=-1))
        return out

    def forward_train(self, inputs: torch.Tensor, targets: torch.Tensor, users: torch.Tensor | None = None,
                      *, last_only: bool = False, with_states: bool = False):
        """Logits for a training batch.

        Returns ``(decoder states (N, n_steps, d), target item idx (N,))`` for the N target
        slots that have a target; ``with_states`` adds the encoder states they start from
        ``(N, d)`` (the item head's input).
        """
        causal = not last_only
        memory = self.encode(inputs, users, causal=causal)
        offset = memory.shape[1] - inputs.shape[1]  # 1 with a user token in front
        L1 = self.n_steps
        B, T = inputs.shape
        if last_only:
            lengths = (inputs >= 0).sum(1)
            last = lengths - 1
            states = memory[torch.arange(B, device=inputs.device), last + offset][:, None]
            tgt = targets[torch.arange(B, device=inputs.device), last][:, None]
            cross_mask = None
            if self.spec.decoder_context == "cross":
                valid = torch.arange(memory.shape[1], device=inputs.device)[None] < (lengths + offset)[:, None]
                cross_mask = valid[:, None, None, :]
        else:
            states = memory[:, offset:]
            tgt = targets
            cross_mask = None
            if self.spec.decoder_context == "cross":
                # decoder tokens of target t see history states 0..t (and the user token)
                q_pos = torch.arange(T, device=inputs.device).repeat_interleave(L1)
                k_pos = torch.arange(memory.shape[1], device=inputs.device) - offset
                cross_mask = (k_pos[None, :] <= q_pos[:, None])[None, None]
        codes = self.codes[tgt.clamp_min(0)]
        keep = tgt >= 0
        if self.spec.decoder_context != "cross":
            # without cross-attention each target is independent: decode only real targets
            h = self.decode_full(states[keep][None], codes[keep][None], None, None)[0]
        else:
            h = self.decode_full(states, codes, memory, cross_mask)[keep]
        return (h, tgt[keep], states[keep]) if with_states else (h, tgt[keep])

    # -- decoder (incremental, for beam search)

    def decode_start(self, memory: torch.Tensor, lengths: torch.Tensor) -> dict:
        """Everything the incremental decoder needs for a batch of encoded histories.

        ``memory`` (B, T', d) from :meth:`encode`; ``lengths`` counts valid positions in it.
        """
        B = memory.shape[0]
        last = memory[torch.arange(B, device=memory.device), lengths - 1]
        state = {
            "x": (self.start(last) + self.tokens.weight[BOS])[:, None, :],
            "cache": [None] * len(self.decoder),
            "kv": None,
            "mask": None,
        }
        if self.spec.decoder_context == "cross":
            state["kv"] = self._cross_kv(memory)
            valid = torch.arange(memory.shape[1], device=memory.device)[None] < lengths[:, None]
            state["mask"] = valid[:, None, None, :]
        return state

    def decode_step(self, state: dict) -> torch.Tensor:
        """Run the decoder on the state's newest token; returns its output state ``(B, d)``."""
        x = state["x"]
        for i, layer in enumerate(self.decoder):
            kv = state["kv"][i] if state["kv"] is not None else None
            x, state["cache"][i] = layer.step(x, state["cache"][i], kv, state["mask"])
        return self.dec_norm(x)[:, 0]

    def feed(self, state: dict, codes: torch.Tensor, level: int) -> None:
        """Set the next decoder input to the embedding of ``codes`` (B,) at ``level``."""
        state["x"] = self.tokens(codes + self.level_offsets[level])[:, None, :]

    @staticmethod
    def reorder(state: dict, rows: torch.Tensor) -> dict:
        """Keep / repeat beams: ``rows`` (B * W_new,) indexes the current B * W_old beams and
        must keep each user's beams together, in user order (the history cache is per user)."""
        state["x"] = state["x"][rows]
        state["cache"] = [None if c is None else (c[0][rows], c[1][rows]) for c in state["cache"]]
        return state

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
