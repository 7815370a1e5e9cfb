"""Query text as the joint model reads it: :class:`TextFeatures` (ragged, per text).

``minilm``: the frozen sentence encoder's last hidden states, mean-pooled in groups of (at
least) ``state_pool`` word pieces after the whole-text mean, cached in the project beside the
encoder's embedding set; a text longer than the encoder's window is read window by window, so a
long request is read whole. ``wordpiece``: the tokenizer's ids. Both are cut to
``max_query_tokens`` word pieces and the share cut is counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...errors import SemidError
from ...events import NEVER, CancelToken, Progress, TaskGenerator
from ...store import ProjectStore
from ...search.text import token_lengths
from ...wording import hint
from ..model import TextInput
from .spec import JointSpec


@dataclass
class TextFeatures:
    """Model inputs for many texts, ragged: text ``i`` is ``values[offsets[i]:offsets[i+1]]``
    (rows of vectors for ``states``, word-piece ids for ``wordpiece``)."""

    kind: str
    values: np.ndarray
    offsets: np.ndarray
    n_truncated: int = 0
    max_tokens_seen: int = 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def share_truncated(self) -> float:
        return self.n_truncated / max(1, len(self))

    def batch(self, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``(feats, lengths)`` tensors for the given rows."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        T = int(lengths.max(initial=1))
        if self.kind == "states":
            out = np.zeros((len(rows), T, self.values.shape[1]), dtype=np.float32)
        else:
            out = np.zeros((len(rows), T), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : lengths[i]] = self.values[self.offsets[r] : self.offsets[r + 1]]
        return torch.from_numpy(out).to(device), torch.from_numpy(lengths.astype(np.int64)).to(device)

    def info(self) -> dict:
        return {"kind": self.kind, "n": len(self), "n_truncated": int(self.n_truncated),
                "share_truncated": round(self.share_truncated, 4), "max_tokens_seen": int(self.max_tokens_seen),
                "mean_positions": round(float(self.lengths.mean()) if len(self) else 0.0, 2)}


def _ragged(parts: list[np.ndarray], kind: str, n_truncated: int, max_seen: int) -> TextFeatures:
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    if parts:
        values = np.concatenate(parts)
    else:
        values = np.zeros((0, 1), np.float16) if kind == "states" else np.zeros(0, np.int32)
    return TextFeatures(kind, values, offsets, n_truncated, max_seen)


def wordpiece_features(tokenizer, texts: Sequence[str], max_tokens: int) -> TextFeatures:
    """Tokenizer ids (cut to ``max_tokens``; padding id 0 never appears inside a text)."""
    counts = token_lengths(tokenizer, texts)
    parts = []
    for start in range(0, len(texts), 512):
        enc = tokenizer(list(texts[start : start + 512]), add_special_tokens=True, truncation=True,
                        max_length=max_tokens, verbose=False)["input_ids"]
        parts.extend(np.asarray(ids, dtype=np.int32) for ids in enc)
    return _ragged(parts, "wordpiece", int((counts > max_tokens).sum()), int(counts.max(initial=0)))


def _pool_states(states: torch.Tensor, pool: int) -> torch.Tensor:
    """``(n, dim)`` token states -> ``[mean of all, mean of pieces 0..pool-1, ...]``."""
    n = states.shape[0]
    groups = (n + pool - 1) // pool
    padded = torch.nn.functional.pad(states, (0, 0, 0, groups * pool - n))
    counts = torch.full((groups,), float(pool), device=states.device)
    counts[-1] = n - (groups - 1) * pool
    return torch.cat([states.mean(0, keepdim=True), padded.reshape(groups, pool, -1).sum(1) / counts[:, None]])


def text_window(encoder) -> int:
    """Word pieces the sentence encoder reads in one pass (special tokens included)."""
    sizes = [getattr(encoder, "max_seq_length", None), getattr(encoder.tokenizer, "model_max_length", None),
             getattr(encoder[0].auto_model.config, "max_position_embeddings", None)]
    known = [int(s) for s in sizes if s and s < 1_000_000]  # tokenizers say 1e30 when they do not know
    return min(known, default=512)


def _hidden_states(hf, tokenizer, ids: list[list[int]], device) -> list[torch.Tensor]:
    """Last hidden states ``(len, dim)`` of each word-piece id list (one padded forward pass)."""
    batch = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad():
        out = hf(**batch).last_hidden_state.float()
    return [out[j, : len(ids[j])] for j in range(len(ids))]


def _windowed_states(hf, tokenizer, ids: list[int], window: int, device) -> torch.Tensor:
    """States of a text longer than the encoder's window: its word pieces read in consecutive
    windows (each a pass of its own, with its own [CLS] / [SEP]), the pieces' states joined,
    the first window's [CLS] in front and the last window's [SEP] at the end."""
    body = ids[1:-1]
    step = window - 2
    chunks = [[ids[0], *body[i : i + step], ids[-1]] for i in range(0, len(body), step)]
    states = _hidden_states(hf, tokenizer, chunks, device)
    return torch.cat([states[0][:1], *(s[1:-1] for s in states), states[-1][-1:]])


def state_features(encoder, texts: Sequence[str], max_tokens: int, pool: int, *, max_states: int = 0,
                   batch_size: int = 32, cancel: CancelToken = NEVER,
                   stage: str = "query states") -> TaskGenerator[TextFeatures]:
    """Frozen sentence-encoder states per text: ``[mean of all, mean of pieces 0..p-1, ...]``
    (float16), from the encoder's last hidden layer (what its sentence embedding pools).

    Up to ``max_tokens`` word pieces of each text are read; a text longer than the encoder's
    own window is read window by window (:func:`_windowed_states`), so a long request is read
    whole rather than cut at the window. ``p`` is ``pool``, or with ``max_states`` > 0 the
    group size that keeps a text within ``max_states`` pooled positions
    (``max(pool, ceil(n / max_states))``): a 1,000-piece request costs the model no more
    positions than a 256-piece one.
    """
    tokenizer = encoder.tokenizer
    hf = encoder[0].auto_model
    device = next(hf.parameters()).device
    window = text_window(encoder)
    counts = token_lengths(tokenizer, texts)
    # one pass reads a text whole when it fits the window (or when the cut is within the window)
    one_pass = max_tokens if max_tokens <= window else window
    order = np.argsort(-np.minimum(counts, max_tokens), kind="stable")  # similar lengths batch together
    parts: list[np.ndarray | None] = [None] * len(texts)
    hf.eval()

    def pooled(states: torch.Tensor) -> np.ndarray:
        n = states.shape[0]
        size = pool if max_states <= 0 else max(pool, -(-n // max_states))
        return _pool_states(states, size).cpu().numpy().astype(np.float16)

    yield Progress(stage, 0, len(texts))
    for start in range(0, len(texts), batch_size):
        cancel.raise_if_cancelled()
        rows = order[start : start + batch_size]
        short = [r for r in rows if counts[r] <= one_pass or max_tokens <= window]
        if short:
            enc = tokenizer([texts[i] for i in short], truncation=True, max_length=one_pass, verbose=False)
            for r, states in zip(short, _hidden_states(hf, tokenizer, enc["input_ids"], device)):
                parts[r] = pooled(states)
        for r in rows:
            if parts[r] is None:  # longer than the window: read in windows up to max_tokens
                ids = tokenizer(texts[r], truncation=True, max_length=max_tokens, verbose=False)["input_ids"]
                parts[r] = pooled(_windowed_states(hf, tokenizer, ids, window, device))
        yield Progress(stage, min(len(texts), start + batch_size), len(texts))
    return _ragged(parts, "states", int((counts > max_tokens).sum()), int(counts.max(initial=0)))  # type: ignore[arg-type]


ENCODER_SET_PREFIX = "set:"


def encoder_name(store: ProjectStore, joint: JointSpec) -> str:
    """The sentence encoder / tokenizer the text side uses: the spec's, else the model of the
    project's newest content embedding set, else the bundled default."""
    if joint.encoder_model:
        sentence_encoder(store, joint.encoder_model)  # a bad name or set fails here, before training
        return joint.encoder_model
    for emb in reversed(store.list_embedding_sets()):
        if emb.strategy == "content" and emb.model not in ("", "imported"):
            return emb.model
    from ...embed import BUNDLED_MODEL

    return BUNDLED_MODEL


def sentence_encoder(store: ProjectStore | None, name: str):
    """The SentenceTransformer behind an encoder name: a model name or path (loaded once and
    cached), or ``set:N``, the fine-tuned text encoder of the project's embedding set #N.

    Why ``set:N``: the search-tuned encoder reads a request and the text of the item it asks for
    into nearby states, so what the model learns from item texts can carry over to requests for
    items nobody asked about in training.
    """
    if not name.startswith(ENCODER_SET_PREFIX):
        from ...embed import load_encoder

        return load_encoder(name or None)
    ref = name[len(ENCODER_SET_PREFIX):]
    if not ref.isdigit():
        raise SemidError(f"encoder_model '{name}': expected '{ENCODER_SET_PREFIX}N' with N an embedding set id "
                         f"({hint('info')})")
    if store is None:
        raise SemidError(f"encoder_model '{name}' names an embedding set: it needs the project")
    known = {e.id for e in store.list_embedding_sets()}
    if int(ref) not in known:
        raise SemidError(f"encoder_model '{name}': the project has no embedding set #{ref} "
                         f"(it has {', '.join(f'#{i}' for i in sorted(known)) or 'none'})")
    from ...search.strategies import load_query_encoder

    return load_query_encoder(store, int(ref))


def _encoder_identity(store: ProjectStore | None, name: str) -> str:
    """The encoder name for cache keys: ``set:N`` with the set's creation time (ids can be reused)."""
    if store is None or not name.startswith(ENCODER_SET_PREFIX):
        return name
    created = {e.id: e.created for e in store.list_embedding_sets()}
    return f"{name}@{created.get(int(name[len(ENCODER_SET_PREFIX):]))}"


def _cache_set(store: ProjectStore) -> int | None:
    sets = store.list_embedding_sets()
    return sets[0].id if sets else None


def text_features(store: ProjectStore | None, joint: JointSpec, texts: Sequence[str], *, encoder: str,
                  cache: bool = True, cancel: CancelToken = NEVER) -> TaskGenerator[TextFeatures]:
    """Model inputs for ``texts`` under ``joint``'s query encoder.

    ``minilm`` states are computed once per (encoder, settings, texts) and cached in the
    project (an artifact beside its first embedding set), so resuming or re-evaluating does
    not run the sentence encoder again.
    """
    enc = sentence_encoder(store, encoder)
    texts = [str(t) for t in texts]
    if joint.query_encoder == "wordpiece":
        return wordpiece_features(enc.tokenizer, texts, joint.max_query_tokens)
    key = None
    set_id = _cache_set(store) if (store is not None and cache) else None
    if set_id is not None:
        from ...search.artifacts import load_artifact

        settings = [joint.max_query_tokens, joint.state_pool] + ([joint.max_query_states] if joint.max_query_states else [])
        digest = hashlib.sha256(json.dumps([_encoder_identity(store, encoder), *settings, texts]).encode())
        key = f"joint_states:{digest.hexdigest()[:24]}"
        hit = load_artifact(store, set_id, key)  # type: ignore[arg-type]
        if hit is not None:
            arrays, meta = hit
            return TextFeatures("states", arrays["values"], arrays["offsets"], int(meta["n_truncated"]),
                                int(meta["max_tokens_seen"]))
    feats = yield from state_features(enc, texts, joint.max_query_tokens, joint.state_pool,
                                      max_states=joint.max_query_states, cancel=cancel)
    if key is not None and not store.read_only:  # a read-only reader (a training rank > 0) only reads the cache
        from ...search.artifacts import save_artifact

        with store.atomic():  # type: ignore[union-attr]
            save_artifact(store, set_id, key, {"values": feats.values, "offsets": feats.offsets},  # type: ignore[arg-type]
                          {"n_truncated": feats.n_truncated, "max_tokens_seen": feats.max_tokens_seen,
                           "encoder": encoder, "n": len(feats)})
    return feats


def text_input(joint: JointSpec, feats: TextFeatures, vocab_size: int) -> TextInput:
    if joint.query_encoder == "wordpiece":
        return TextInput("wordpiece", int(vocab_size), joint.max_query_tokens)
    positions = (joint.max_query_tokens + joint.state_pool - 1) // joint.state_pool
    if joint.max_query_states:
        positions = min(positions, joint.max_query_states)
    return TextInput("states", int(feats.values.shape[1]), 1 + positions)
