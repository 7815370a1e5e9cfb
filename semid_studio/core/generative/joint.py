"""Joint generative search and recommendation over one SID space (method.md, section 2).

The TIGER model of this package, built with a text input (:class:`.model.TextInput`), answers
two requests with one encoder, one decoder and one constrained beam search:

- ``<task_rec>`` + a user's history -> the next item's SID (exactly the recommender's path);
- query text + ``<task_search>`` -> the SID of the item the query is about.

Query text reaches the model in one of two ways (``JointSpec.query_encoder``), measured against
each other in ``benchmarks/bench_joint.py``:

- ``minilm``: the project's sentence encoder (frozen all-MiniLM-L6-v2) reads the query once;
  its last hidden states are mean-pooled in groups of ``state_pool`` word pieces, with the
  whole-text mean (the sentence embedding dense retrieval uses) as the first position, and
  projected into ``d_model`` by a learned linear layer. Computed once per text and cached in
  the project (beside the encoder's embedding set).
- ``wordpiece``: MiniLM's tokenizer ids, embedded by a table learned from scratch.

Long queries are cut to ``max_query_tokens`` word pieces and the share cut is counted and
reported (movielens_tomt requests are long: about half exceed 128 pieces).

Training (:func:`train_joint`) runs the recommender's own loop (:class:`.train.Trainer`,
checkpoints, resume, cancel) on mixed batches: every step has about ``mix`` of its targets
from search pairs and the rest from history positions. Search pairs are the project's
``train`` queries minus a ``dev`` part carved by :func:`~semid_studio.core.queries.split_for_selection`
(used to choose the checkpoint), guarded by
:func:`~semid_studio.core.queries.assert_training_only`; optionally (``index_share``) some
search targets are the catalogue's own item texts ("indexing" pairs, as in DSI), which teach
the model the SID of items nobody has asked about. Held-out queries never reach training.
A joint model's decoder cross-attends to the encoder's states and learns an offset for items the
user already has (:data:`JOINT_MODEL_DEFAULTS`), and its ``best`` checkpoint is chosen on the
geometric mean of rec validation and search dev NDCG.

:func:`joint_search` answers one query (the ``semid search`` command and the playground);
:func:`evaluate_joint` reports search (Recall/NDCG@K, MRR, head/torso, asked/never asked, via
:func:`~semid_studio.core.search.search_metrics`) and recommendation (as the recommender is
evaluated) and stores both reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, Progress, TaskGenerator
from ..store import ModelRecord, ProjectStore
from .decode import beam_search
from .metrics import ranking_metrics, summarise_runs
from .model import TextInput, TigerModel
from .seen import SeenIndex
from .spec import GenerativeSpec, _coerce, make_spec, spec_from_dict
from .tokens import SidVocab, sid_string
from .train import (CHECKPOINT_S, JOINT_KIND, Trainer, leased_loop, load_split, lr_factor, make_vocab, model_lease,
                    resolve_device, resume_trainer, same_spec, sid_loss, training_content, user_tokens_for)
from .trie import SidTrie
from ..wording import hint

TASKS = ("rec", "search", "joint")
QUERY_ENCODERS = ("minilm", "wordpiece")
SELECT_MEANS = ("geometric", "arithmetic")


@dataclass(frozen=True)
class JointSpec:
    """Settings of the text side and the task mix (stored with the model beside its
    :class:`~.spec.GenerativeSpec`)."""

    task: str = "joint"  # "joint": both tasks; "search": query -> SID only
    mix: float = 0.5  # search's share of the training loss (and of the batch's targets, by default)
    # rec targets per step; 0: the rest of the batch (batch_targets x (1 - mix)). Why: a history
    # window gives a target per position for the cost of one short sequence, a query one target
    # for up to max_query_tokens, so more rec targets per step cost little and let the rec side
    # see more epochs before the few training queries are learnt by heart
    rec_targets: int = 0
    query_encoder: str = "minilm"  # "minilm" (frozen sentence-encoder states) or "wordpiece" (learned)
    max_query_tokens: int = 128  # word pieces read per query; longer ones are cut (and counted)
    state_pool: int = 4  # minilm: token states mean-pooled in groups of this many word pieces
    index_share: float = 0.0  # share of search targets that are item texts -> their SID (indexing pairs)
    dev_fraction: float = 0.1  # share of train queries held back for checkpoint selection
    dev_seed: int = 0
    # sentence encoder / tokenizer: a model name or path, or "set:N" for the fine-tuned text encoder
    # of embedding set #N (search-tuned or multi-task); default: the project's content encoder
    encoder_model: str = ""
    search_beam: int = 30  # beam width for search validation (>= the largest K)
    # how the checkpoint weighs the two tasks' validation figures: "geometric" counts a 10 % gain
    # on either task the same; the arithmetic mean followed search alone on movielens_tomt,
    # whose search NDCG runs about 4x rec's (docs/joint-search.md, stop 16)
    select_mean: str = "geometric"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JointSpec":
        """A stored spec; models saved before ``select_mean`` existed chose on the arithmetic mean."""
        return cls(**{"select_mean": "arithmetic", **data})


# A joint model's decoder cross-attends to the encoder's states (the request's word pieces, or
# the history) unless told otherwise: on movielens_tomt search R@30 0.213 -> 0.261 (5 seeds) for
# ~7 % more time per step. The rec-only `laptop` preset keeps "state" (no worse on Beauty).
# It also learns how much to offset what the user already has (seen_bias, see seen.py): on
# movielens_tomt the movies already rated in the top 10 fall from 3.6-3.9 to 0.1 and rec R@10
# (every movie ranked) rises from 0.073 to 0.11; a search-only model never reads a history, so
# there it changes nothing. The rec-only presets were not re-measured with it and stay as they are.
JOINT_MODEL_DEFAULTS = {"decoder_context": "cross", "seen_bias": True}


def make_joint_model_spec(preset: str, overrides: Mapping[str, Any] | None = None) -> GenerativeSpec:
    """The model spec of a new search / joint model: the preset, then the joint defaults, then
    the user's overrides."""
    return make_spec(preset, {**JOINT_MODEL_DEFAULTS, **(overrides or {})})


def make_joint_spec(overrides: Mapping[str, Any] | None = None) -> JointSpec:
    """A :class:`JointSpec` from overrides (values may be strings, as typed on a command line)."""
    types = {f.name: f.type for f in fields(JointSpec)}
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    values: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in types:
            raise SemidError(f"unknown joint-model setting '{name}' (known: {', '.join(sorted(types))})")
        values[name] = _coerce(name, kinds[str(types[name])], value)
    spec = JointSpec(**values)
    if spec.task not in ("search", "joint"):
        raise SemidError(f"joint-model task must be 'search' or 'joint' ('rec' trains the recommender), "
                         f"got '{spec.task}'")
    if spec.query_encoder not in QUERY_ENCODERS:
        raise SemidError(f"query_encoder must be one of {', '.join(QUERY_ENCODERS)}, got '{spec.query_encoder}'")
    if not 0.0 < spec.mix <= 1.0 or (spec.task == "joint" and spec.mix >= 1.0):
        raise SemidError(f"--mix (share of search targets) must be in (0, 1) for a joint model, got {spec.mix}")
    if spec.rec_targets < 0:
        raise SemidError(f"rec_targets must be >= 0 (0: the batch's share), got {spec.rec_targets}")
    if not 0.0 <= spec.index_share < 1.0:
        raise SemidError(f"index_share must be in [0, 1), got {spec.index_share}")
    if not 0.0 < spec.dev_fraction < 1.0:
        raise SemidError(f"dev_fraction must be in (0, 1): the joint model chooses its checkpoint on a dev part "
                         f"of the train queries, got {spec.dev_fraction}")
    if spec.select_mean not in SELECT_MEANS:
        raise SemidError(f"select_mean must be one of {', '.join(SELECT_MEANS)}, got '{spec.select_mean}'")
    if spec.max_query_tokens < 4 or spec.state_pool < 1 or spec.search_beam < 1:
        raise SemidError("max_query_tokens must be >= 4, state_pool and search_beam >= 1")
    return spec


def selection_label(select_mean: str, metric: str) -> str:
    """What a joint (both tasks) model's checkpoint is chosen on, in words."""
    return f"{select_mean} mean of rec and search {metric}"


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict, dict]:
    """``--set`` pairs -> (GenerativeSpec overrides, JointSpec overrides)."""
    joint_names = {f.name for f in fields(JointSpec)}
    gen = {k: v for k, v in overrides.items() if k not in joint_names}
    joint = {k: v for k, v in overrides.items() if k in joint_names}
    return gen, joint


# --------------------------------------------------------------------------- text features


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


def _piece_counts(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Word pieces per text (special tokens included), without truncation."""
    out = []
    for start in range(0, len(texts), 512):
        enc = tokenizer(list(texts[start : start + 512]), add_special_tokens=True, verbose=False)["input_ids"]
        out.extend(len(ids) for ids in enc)
    return np.asarray(out, dtype=np.int64)


def wordpiece_features(tokenizer, texts: Sequence[str], max_tokens: int) -> TextFeatures:
    """Tokenizer ids (cut to ``max_tokens``; padding id 0 never appears inside a text)."""
    counts = _piece_counts(tokenizer, texts)
    parts = []
    for start in range(0, len(texts), 512):
        enc = tokenizer(list(texts[start : start + 512]), add_special_tokens=True, truncation=True,
                        max_length=max_tokens, verbose=False)["input_ids"]
        parts.extend(np.asarray(ids, dtype=np.int32) for ids in enc)
    return _ragged(parts, "wordpiece", int((counts > max_tokens).sum()), int(counts.max(initial=0)))


def state_features(encoder, texts: Sequence[str], max_tokens: int, pool: int, *, batch_size: int = 32,
                   cancel: CancelToken = NEVER, stage: str = "query states") -> TaskGenerator[TextFeatures]:
    """Frozen sentence-encoder states per text: ``[mean of all, mean of pieces 0..pool-1, ...]``
    (float16), from the encoder's last hidden layer (what its sentence embedding pools)."""
    tokenizer = encoder.tokenizer
    hf = encoder[0].auto_model
    device = next(hf.parameters()).device
    counts = _piece_counts(tokenizer, texts)
    order = np.argsort(-np.minimum(counts, max_tokens), kind="stable")  # similar lengths batch together
    parts: list[np.ndarray | None] = [None] * len(texts)
    hf.eval()
    yield Progress(stage, 0, len(texts))
    for start in range(0, len(texts), batch_size):
        cancel.raise_if_cancelled()
        rows = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_tokens, padding=True,
                        return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad():
            states = hf(**enc).last_hidden_state.float()  # (b, T, dim)
        mask = enc["attention_mask"].float()
        n = mask.sum(1).long().cpu().numpy()
        mean = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        T = states.shape[1]
        G = (T + pool - 1) // pool
        padded = torch.nn.functional.pad(states * mask[..., None], (0, 0, 0, G * pool - T))
        pmask = torch.nn.functional.pad(mask, (0, G * pool - T))
        sums = padded.reshape(len(rows), G, pool, -1).sum(2)
        cnt = pmask.reshape(len(rows), G, pool).sum(2)
        groups = sums / cnt.clamp_min(1)[..., None]
        for j, r in enumerate(rows):
            g = (int(n[j]) + pool - 1) // pool
            parts[r] = torch.cat([mean[j : j + 1], groups[j, :g]]).cpu().numpy().astype(np.float16)
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
    from ..embed import BUNDLED_MODEL

    return BUNDLED_MODEL


def sentence_encoder(store: ProjectStore | None, name: str):
    """The SentenceTransformer behind an encoder name: a model name or path (loaded once and
    cached), or ``set:N``, the fine-tuned text encoder of the project's embedding set #N.

    Why ``set:N``: the search-tuned encoder reads a request and the text of the item it asks for
    into nearby states, so what the model learns from item texts can carry over to requests for
    items nobody asked about in training.
    """
    if not name.startswith(ENCODER_SET_PREFIX):
        from ..embed import load_encoder

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
    from ..strategies import load_query_encoder

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
        from ..strategies import load_artifact

        digest = hashlib.sha256(json.dumps([_encoder_identity(store, encoder), joint.max_query_tokens,
                                            joint.state_pool, texts]).encode())
        key = f"joint_states:{digest.hexdigest()[:24]}"
        hit = load_artifact(store, set_id, key)  # type: ignore[arg-type]
        if hit is not None:
            arrays, meta = hit
            return TextFeatures("states", arrays["values"], arrays["offsets"], int(meta["n_truncated"]),
                                int(meta["max_tokens_seen"]))
    feats = yield from state_features(enc, texts, joint.max_query_tokens, joint.state_pool, cancel=cancel)
    if key is not None:
        from ..strategies import save_artifact

        with store.atomic():  # type: ignore[union-attr]
            save_artifact(store, set_id, key, {"values": feats.values, "offsets": feats.offsets},  # type: ignore[arg-type]
                          {"n_truncated": feats.n_truncated, "max_tokens_seen": feats.max_tokens_seen,
                           "encoder": encoder, "n": len(feats)})
    return feats


def text_input(joint: JointSpec, feats: TextFeatures, vocab_size: int) -> TextInput:
    if joint.query_encoder == "wordpiece":
        return TextInput("wordpiece", int(vocab_size), joint.max_query_tokens)
    return TextInput("states", int(feats.values.shape[1]), 1 + (joint.max_query_tokens + joint.state_pool - 1)
                     // joint.state_pool)


# --------------------------------------------------------------------------- training data


@dataclass
class SearchData:
    """Search training pairs (train queries minus dev), dev pairs, optional item texts."""

    train: TextFeatures
    train_targets: np.ndarray
    dev: TextFeatures
    dev_targets: np.ndarray
    items: TextFeatures | None  # item texts -> their own SID (indexing pairs), row = item idx
    info: dict


def search_data(store: ProjectStore, joint: JointSpec, n_items: int, *, encoder: str,
                cancel: CancelToken = NEVER) -> TaskGenerator[SearchData]:
    """Train queries (guarded: never a held-out one), the dev part, and their features."""
    from ..queries import TRAIN_SPLIT, assert_training_only, split_for_selection

    frame = store.queries_frame(split=TRAIN_SPLIT)
    frame = frame[frame["item_idx"] < n_items]
    if len(frame) < 2:
        raise ProjectError(f"{store.path}: the joint model needs training queries (split 'train'); "
                           f"{hint('generate_queries')}")
    train, dev = split_for_selection(frame, joint.dev_fraction, joint.dev_seed)
    # the leakage guard: goes back to the project file, refuses held-out rows by id and by text
    assert_training_only(store, train, exclude_ids=dev["id"].tolist(), who="joint model training")
    yield Message(f"search pairs: {len(train)} train queries, {len(dev)} dev queries (checkpoint selection, "
                  f"{joint.dev_fraction:.0%} of train, seed {joint.dev_seed}); held-out queries are never read")
    tr = yield from text_features(store, joint, train["text"].tolist(), encoder=encoder, cancel=cancel)
    dv = yield from text_features(store, joint, dev["text"].tolist(), encoder=encoder, cancel=cancel)
    items = None
    if joint.index_share > 0:
        from ..search import item_texts

        texts, _ = item_texts(store)
        items = yield from text_features(store, joint, texts[:n_items], encoder=encoder, cancel=cancel)
    over = tr.n_truncated + dv.n_truncated
    yield Message(f"queries over {joint.max_query_tokens} word pieces are cut there: {over} of {len(tr) + len(dv)} "
                  f"({over / max(1, len(tr) + len(dv)):.1%}); longest {max(tr.max_tokens_seen, dv.max_tokens_seen)}",
                  level="warning" if over else "info")
    ids = sorted(int(i) for i in train["id"])
    info = {"n_train_queries": len(train), "n_dev_queries": len(dev), "dev_fraction": joint.dev_fraction,
            "dev_seed": joint.dev_seed, "train_fingerprint": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16],
            "dev_ids": sorted(int(i) for i in dev["id"]), "train_features": tr.info(), "dev_features": dv.info(),
            "item_features": items.info() if items is not None else None, "encoder": encoder}
    return SearchData(tr, train["item_idx"].to_numpy(np.int64), dv, dev["item_idx"].to_numpy(np.int64), items, info)


# --------------------------------------------------------------------------- the trainer


@dataclass
class TaskView:
    """What one task decodes: its trie, how the trie's nodes map onto the model's per-node
    output embeddings (None: the trie is the model's own), and where its rows sit in the model's
    code table (row = item idx + ``shift``; ``offsets`` are added to the task's stored codes).
    Under the shared token strategy both tasks have the same view."""

    trie: SidTrie
    node_maps: list | None = None
    shift: int = 0
    offsets: np.ndarray | None = None

    def stored_codes(self, codes: np.ndarray) -> np.ndarray:
        """Decoded codes -> the codes of the task's own SID table (as ``semid export`` shows them)."""
        return codes if self.offsets is None else codes - self.offsets


def use_view(model: TigerModel, view: TaskView) -> SidTrie:
    """Point the model's per-node output embeddings at ``view``'s trie; returns the trie."""
    model.set_node_maps(view.node_maps if view.node_maps is not None else [None] * model.vocab.n_levels)
    return view.trie


def task_views(table, train_trie: SidTrie, device) -> dict[str, TaskView]:
    """One trie per task over its own rows of a :class:`~semid_studio.core.token_strategies.JointTable`,
    with node maps onto the model's training trie (built over all rows)."""
    views = {}
    for task in ("rec", "search"):
        shift = table.shift(task)
        trie = SidTrie.build(table.task_codes(task), table.level_sizes,
                             items=np.arange(shift, shift + table.n_items))
        maps = [m.to(device) for m in trie.node_map(train_trie)]
        views[task] = TaskView(trie.to(device), maps, shift, table.offsets[task])
    return views


@torch.no_grad()
def rank_texts(model: TigerModel, trie: SidTrie, feats: TextFeatures, *, k: int, beam: int,
               rows: np.ndarray | None = None, batch_size: int = 128, shift: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constrained beam-search top-``k`` items for texts: ``(items, scores, codes)``.

    ``shift``: the trie's rows are item idx + shift (the search rows of a Separate /
    Prefix-share model); items are returned as item idx."""
    model.eval()
    rows = np.arange(len(feats)) if rows is None else np.asarray(rows)
    device = model.tokens.weight.device
    items, scores, codes = [], [], []
    for start in range(0, len(rows), batch_size):
        f, n = feats.batch(rows[start : start + batch_size], device)
        dec = beam_search(model, trie, [], beam=beam, k=k, encoded=model.encode_text(f, n))
        items.append(dec.items), scores.append(dec.scores), codes.append(dec.codes)
    if not items:
        return np.zeros((0, k), np.int64), np.zeros((0, k)), np.zeros((0, k, trie.n_levels), np.int64)
    found = np.concatenate(items)
    if shift:
        found = np.where(found >= 0, found - shift, -1)
    return found, np.concatenate(scores), np.concatenate(codes)


class JointTrainer(Trainer):
    """:class:`Trainer` with a text side: each step mixes search pairs into the batch."""

    def __init__(self, spec: GenerativeSpec, joint: JointSpec, vocab: SidVocab, codes: np.ndarray, split,
                 data: SearchData, text: TextInput, device="cpu", user_tokens: np.ndarray | None = None,
                 table=None, content: np.ndarray | None = None) -> None:
        """``table``: a :class:`~semid_studio.core.token_strategies.JointTable` (Separate /
        Prefix-share; ``codes`` is then its virtual-row table), or None for one shared SID table."""
        self.joint, self.data = joint, data
        # search's share of the loss (and of the batch's targets unless rec_targets is set)
        self.search_weight = 1.0 if joint.task == "search" else joint.mix
        self.n_search = max(1, int(round(spec.batch_targets * self.search_weight)))
        self.n_rec = 0 if joint.task == "search" else (joint.rec_targets or max(1, spec.batch_targets - self.n_search))
        super().__init__(spec, vocab, codes, split, device, user_tokens, text=text, content=content)
        if table is None:  # shared: both tasks decode the one trie, exactly as before
            view = TaskView(self.trie)
            self.views = {"rec": view, "search": view}
        else:
            self.views = task_views(table, self.trie, self.device)
            if self.seen_index is not None:  # rec's softmax runs over its own trie's nodes
                self.seen_index = SeenIndex(split.train, self.views["rec"].trie, self.model.n_steps, self.device)
        self._train_trie = self.trie

    def _batches(self):
        if self._epoch_batches is None:
            from .data import iter_batches

            rng = np.random.default_rng([self.spec.seed, self.state.epoch])
            self._epoch_batches = iter_batches(self.windows, max(1, self.n_rec), rng)
        return self._epoch_batches

    def _search_rows(self) -> tuple[np.ndarray, np.ndarray, TextFeatures, np.ndarray, np.ndarray]:
        """This step's search pairs: a function of (seed, step) only, so a resumed run draws
        the same ones without extra state."""
        rng = np.random.default_rng([self.spec.seed, self.state.step, 17])
        n_items = 0
        if self.data.items is not None:
            n_items = int(round(self.n_search * self.joint.index_share))
        n_q = self.n_search - n_items
        q = rng.choice(len(self.data.train), size=min(n_q, len(self.data.train)), replace=False)
        it = np.zeros(0, np.int64)
        if n_items and self.data.items is not None:
            it = rng.choice(len(self.data.items), size=min(n_items, len(self.data.items)), replace=False)
        shift = self.views["search"].shift  # search targets are the search rows of the code table
        return q, self.data.train_targets[q] + shift, self.data.items, it, it + shift  # item idx = its row

    def train_step(self) -> tuple[float, int]:
        spec = self.spec
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = spec.lr * lr_factor(spec, self.state.step)
        q_rows, q_targets, item_feats, i_rows, i_targets = self._search_rows()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=spec.precision == "bf16"):
            rec_loss, n_rec = None, 0
            if self.n_rec:
                batch = self.next_batch()
                inputs = torch.from_numpy(batch.inputs).to(self.device)
                targets = torch.from_numpy(batch.targets).to(self.device)
                users = None
                if spec.user_bins > 0 and self.user_tokens is not None:
                    users = torch.from_numpy(self.user_tokens[batch.users]).to(self.device)
                h, tgt = self.model.forward_train(inputs, targets, users)
                rec_loss = sid_loss(self.model, use_view(self.model, self.views["rec"]), h, tgt,
                                    constrained=spec.constrained_loss, label_smoothing=spec.label_smoothing,
                                    seen=self.seen_shares(batch))
                n_rec = len(tgt)
            # the search pairs: requests, then (with index_share) item texts, one loss over both
            f, n = self.data.train.batch(q_rows, self.device)
            h, tgt = self.model.forward_search(f, n, torch.from_numpy(q_targets).to(self.device))
            if len(i_rows) and item_feats is not None:
                f, n = item_feats.batch(i_rows, self.device)
                hi, ti = self.model.forward_search(f, n, torch.from_numpy(i_targets).to(self.device))
                h, tgt = torch.cat([h, hi]), torch.cat([tgt, ti])
            # each task's loss is the mean over its targets, weighted by ``mix`` (search) and
            # 1 - mix (rec): with the default batch split that is the plain per-target mean, and
            # ``rec_targets`` changes how many rec targets a step sees, not rec's share of the
            # gradient; each task's softmax runs over its own trie (one trie when shared)
            loss = self.search_weight * sid_loss(self.model, use_view(self.model, self.views["search"]), h, tgt,
                                                 constrained=spec.constrained_loss,
                                                 label_smoothing=spec.label_smoothing)
            if rec_loss is not None:
                loss = loss + (1.0 - self.search_weight) * rec_loss
            n_total = n_rec + len(tgt)
        self.optimise(loss)
        self.state.step += 1
        if self.n_rec:
            self.state.batch_in_epoch += 1
        return float(loss.detach()), n_total

    def validate(self, probes=None, ks=(10,)) -> dict[str, float]:
        from ..search import search_metrics

        out: dict[str, float] = {}
        if self.n_rec:
            self.trie = use_view(self.model, self.views["rec"])  # the recommender's validation reads self.trie
            try:
                out.update(super().validate(probes, ks))
            finally:
                self.trie = self._train_trie
        k = max(ks)
        self.cancel.raise_if_cancelled()
        view = self.views["search"]
        ranked, _, _ = rank_texts(self.model, use_view(self.model, view), self.data.dev, k=k,
                                  beam=max(k, self.joint.search_beam), shift=view.shift)
        m = search_metrics(ranked, self.data.dev_targets, tuple(ks))
        out.update({f"search_{name}": float(v) for name, v in m.items() if name != "n"})
        self.model.train()
        return out

    @property
    def selection_name(self) -> str:
        m = self.spec.select_metric
        return f"search {m}" if self.joint.task == "search" else selection_label(self.joint.select_mean, m)

    def selection_value(self, metrics: dict[str, float]) -> float:
        m = self.spec.select_metric
        if self.joint.task == "search":
            return metrics[f"search_{m}"]
        rec, search = metrics[m], metrics[f"search_{m}"]
        if self.joint.select_mean == "geometric":
            return math.sqrt(max(rec, 0.0) * max(search, 0.0))
        return 0.5 * (rec + search)

    def part_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each task's own figure, so a live plot can show the two curves apart."""
        m = self.spec.select_metric
        if self.joint.task == "search":
            return {}
        return {f"rec {m}": metrics[m], f"search {m}": metrics[f"search_{m}"]}


# --------------------------------------------------------------------------- the project task


def _resumable(store: ProjectStore, spec: GenerativeSpec, joint: JointSpec) -> int | None:
    from ..token_strategies import active_token_strategy

    ts = active_token_strategy(store)
    tokens = None if ts is None else ts.to_dict()
    for rec in reversed(store.list_models(JOINT_KIND)):
        if rec.status == "done":
            continue
        stored_joint = JointSpec.from_dict(rec.spec["joint"]) if "joint" in rec.spec else None
        if same_spec(rec.spec.get("spec"), spec) and stored_joint == joint \
                and rec.spec.get("tokens") == tokens and store.has_checkpoint(rec.id, "last") \
                and store.lease_holder(model_lease(rec.id)) is None:
            return rec.id
    return None


def _strategy_table(store: ProjectStore, tokens: dict, n_items: int):
    """The virtual-row code table of a Separate / Prefix-share model (token_strategies.joint_table)."""
    from ..token_strategies import joint_table, task_tables

    tables = task_tables(store, tokens["runs"], n_items)
    return joint_table(tables["rec"], tables["search"], int(tokens["shared_levels"]))


def _strategy_vocab(spec: GenerativeSpec, table) -> SidVocab:
    """:func:`.train.make_vocab` for a table of two tasks: item-id tokens for the N real items
    only, the dedup step modelled when either table has collisions, node counts of both tries."""
    dedup = table.codes[:, -1]
    model_dedup = spec.dedup_token == "model" or (spec.dedup_token == "auto" and int(dedup.max()) > 0)
    nodes: tuple[int, ...] = ()
    if spec.node_output:
        nodes = tuple(SidTrie.build(table.codes, table.level_sizes).n_nodes)
    return SidVocab(table.level_sizes, table.n_items, spec.user_bins, model_dedup, nodes)


def train_joint(
    store: ProjectStore,
    spec: GenerativeSpec,
    joint: JointSpec | None = None,
    *,
    resume: int | bool | None = None,
    name: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    max_minutes: float | None = None,
    checkpoint_s: float | None = CHECKPOINT_S,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Train (or resume) a joint search + recommendation model on the active SID table.

    Same contract as :func:`.train.train_model` (checkpoints ``best`` chosen on validation —
    here the dev queries, and for ``task="joint"`` the geometric mean of rec validation and
    search dev (``select_mean``) — and ``last``, also every ``checkpoint_s`` seconds; resume;
    cancel; time budget; the model leased to this process). Returns the model id.
    """
    joint = joint or JointSpec()
    model_id: int | None = None
    if isinstance(resume, int) and not isinstance(resume, bool):
        rec = store.get_model(resume)
        if rec.kind != JOINT_KIND:
            raise ProjectError(f"model #{resume} is a '{rec.kind}' model, not a joint search + rec model")
        if rec.status == "done":
            raise SemidError(f"model #{resume} has finished its schedule ({rec.step} steps); start a new one with --new")
        spec, joint = spec_from_dict(rec.spec["spec"]), JointSpec.from_dict(rec.spec["joint"])
        model_id = resume
    elif resume is not False:
        model_id = _resumable(store, spec, joint)

    tokens: dict | None = None  # the token strategy (None: one shared SID table)
    table = None
    if model_id is not None:
        store.claim(model_lease(model_id), f"model #{model_id}")  # before reading its checkpoint
        rec = store.get_model(model_id)
        run = store.load_quantizer_run(rec.quantizer_run_id)
        vocab = SidVocab.from_dict(rec.spec["vocab"])
        tokens = rec.spec.get("tokens")
        if tokens is None:
            codes = run.codes[: vocab.n_items]
        else:
            table = _strategy_table(store, tokens, vocab.n_items)
            codes = table.codes
            vocab.check_codes(codes)
    else:
        from ..token_strategies import active_token_strategy

        run = store.load_quantizer_run()
        codes = run.codes
        if len(codes) != store.item_count():
            raise ProjectError(f"the active SID table covers {len(codes)} of {store.item_count()} items; "
                               f"{hint('quantize')} again so every item has a Semantic ID")
        ts = active_token_strategy(store)
        if ts is None:
            vocab = make_vocab(spec, codes)
        else:
            tokens = ts.to_dict()
            table = _strategy_table(store, tokens, len(codes))
            codes = table.codes
            vocab = _strategy_vocab(spec, table)
            yield Message(f"token strategy {ts.describe()}: the rec task decodes rec-SIDs, the search task "
                          f"search-SIDs, each through its own trie")
    encoder = encoder_name(store, joint)
    data = yield from search_data(store, joint, vocab.n_items, encoder=encoder, cancel=cancel)
    text = text_input(joint, data.train, sentence_encoder(store, encoder).tokenizer.vocab_size)
    seqs, split = load_split(store, spec.split)
    dev = resolve_device(device)
    yield Message(f"{split.describe()}; SIDs from quantiser run #{run.id}; task {joint.task}, "
                  f"{'mix ' + format(joint.mix, 'g') + ' search, ' if joint.task == 'joint' else ''}"
                  f"query encoder {joint.query_encoder} ({encoder}); device {dev}")
    content, content_info = training_content(store, spec, run, vocab.n_items)
    if content is not None and table is not None:
        content = table.per_row(content)
    trainer = JointTrainer(spec, joint, vocab, codes, split, data, text, dev, user_tokens_for(vocab, seqs), table,
                           content)
    if model_id is None:
        record = {"spec": spec.to_dict(), "joint": joint.to_dict(), "vocab": vocab.to_dict(), "text": text.to_dict(),
                  "preset": preset, "n_parameters": trainer.model.n_parameters(), "split_info": split.info,
                  "queries": data.info, "targets_per_step": {"search": trainer.n_search, "rec": trainer.n_rec}}
        if tokens is not None:
            record["tokens"] = tokens
        if content_info is not None:
            record["content"] = content_info
        model_id = store.create_model(
            name=name or f"joint-{joint.task}-{joint.query_encoder}-{preset or 'custom'}-seed{spec.seed}"
                         + (f"-{tokens['strategy']}" if tokens else ""),
            kind=JOINT_KIND, quantizer_run_id=run.id, spec=record,
        )
        store.claim(model_lease(model_id), f"model #{model_id}")
        history: list[dict] = []
        yield Message(f"model #{model_id}: {trainer.model.n_parameters():,} parameters; per step "
                      f"{trainer.n_search} search + {trainer.n_rec} rec targets")
    else:
        history = resume_trainer(store, model_id, trainer)
        yield Message(f"resuming joint model #{model_id} at step {trainer.state.step}")
    yield from leased_loop(store, model_id, trainer, history, max_minutes, checkpoint_s, cancel)
    return model_id


# --------------------------------------------------------------------------- loading and search


@dataclass
class JointModel:
    record: ModelRecord
    spec: GenerativeSpec
    joint: JointSpec
    vocab: SidVocab
    model: TigerModel
    trie: SidTrie
    codes: np.ndarray  # the rec task's SIDs as the model writes them (item idx order)
    encoder: str
    step: int
    views: dict | None = None  # "rec" / "search" -> TaskView (the same view under the shared strategy)
    tokens: dict | None = None  # the token strategy record (None: shared)
    # script families of the catalogue's texts, for the unknown-script warning (filled on first
    # search: rendering every item's text per keystroke is slow on a large catalogue)
    catalogue_scripts: set[str] | None = None

    def view(self, task: str) -> TaskView:
        """The task's view, with the model's node embeddings pointed at its trie."""
        view = (self.views or {}).get(task) or TaskView(self.trie)
        use_view(self.model, view)
        return view

    def recommender(self):
        """The rec side as a :class:`~.evaluate.LoadedModel` (what recommendation code decodes with)."""
        from .evaluate import LoadedModel

        return LoadedModel(self.record, self.spec, self.vocab, self.model, self.view("rec").trie, self.codes,
                           self.step, 0, [])


def has_joint_model(store: ProjectStore) -> bool:
    """Whether the project has a joint model with a chosen checkpoint (search can use it)."""
    return any(store.has_checkpoint(r.id, "best") for r in store.list_models(JOINT_KIND))


def pick_joint(store: ProjectStore, model_id: int | None = None) -> ModelRecord:
    from .evaluate import pick_model

    return pick_model(store, model_id, kind=JOINT_KIND)


def load_joint(store: ProjectStore, model_id: int | None = None, *, tag: str = "best",
               device: str | None = None) -> JointModel:
    """A trained joint model ready to decode, with the trie of the current catalogue
    (items added after training are searchable through their content SIDs, as for rec)."""
    from .evaluate import build_trie, catalogue_codes, model_content

    rec = pick_joint(store, model_id)
    spec = spec_from_dict(rec.spec["spec"])
    joint = JointSpec.from_dict(rec.spec["joint"])
    vocab = SidVocab.from_dict(rec.spec["vocab"])
    ckpt = store.load_checkpoint(rec.id, tag)
    if ckpt is None:
        raise ProjectError(f"model #{rec.id} has no '{tag}' checkpoint yet (it has not reached a validation run)")
    dev = resolve_device(device)
    tokens = rec.spec.get("tokens")
    # Separate / Prefix-share: the catalogue the model was trained on (items added later have
    # no SID in the two task tables' spaces yet: they are not searched or recommended)
    table = _strategy_table(store, tokens, vocab.n_items) if tokens is not None else None
    codes = None if table is not None else catalogue_codes(store, rec.quantizer_run_id, vocab.n_items, vocab)[0]
    content = model_content(store, rec, vocab.n_items if codes is None else len(codes))
    if content is not None and table is not None:
        content = table.per_row(content)
    model = TigerModel(spec, vocab, TextInput.from_dict(rec.spec["text"]),
                       0 if content is None else content.shape[1]).to(dev)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.weights.items()})
    model.eval()
    encoder = rec.spec.get("queries", {}).get("encoder") or encoder_name(store, joint)
    if table is not None:
        vocab.check_codes(table.codes)
        model.set_catalogue(table.codes, content)
        views = task_views(table, SidTrie.build(table.codes, vocab.level_sizes), dev)
        use_view(model, views["rec"])
        return JointModel(rec, spec, joint, vocab, model, views["rec"].trie, table.task_codes("rec"), encoder,
                          ckpt.step, views, tokens)
    ok = (codes >= 0).all(axis=1)
    safe = np.where(ok[:, None], codes, 0)
    model.set_catalogue(safe, content)
    trie = build_trie(safe, vocab, ok)
    maps = None
    if spec.node_output:
        maps = trie.node_map(SidTrie.build(codes[: vocab.n_items], vocab.level_sizes))
        model.set_node_maps(maps)
    view = TaskView(trie.to(dev), maps)
    return JointModel(rec, spec, joint, vocab, model, view.trie, codes, encoder, ckpt.step,
                      {"rec": view, "search": view})


def joint_search(store: ProjectStore, text: str, *, k: int = 10, beam: int | None = None,
                 model_id: int | None = None, loaded: JointModel | None = None):
    """Generative search for one query: text -> ranked items with their SIDs and scores.

    The function the playground and ``semid search`` call. Returns a
    :class:`~semid_studio.core.search.SearchResult` whose hits carry ``rank, idx, item_id,
    title, sid, score`` (the SID's summed log-probability under the model, constrained).

    Raises
    ------
    SemidError
        For an unusable query (:func:`~semid_studio.core.search.check_query`), a bad ``k``, or
        a project without a joint model.
    """
    from ..search import SearchResult, check_query, item_texts, text_scripts

    if not 1 <= int(k) <= 1000:
        raise SemidError("-k must be between 1 and 1000")
    beam = max(int(k), beam or 20)
    if loaded is not None and loaded.catalogue_scripts is None:
        loaded.catalogue_scripts = text_scripts(item_texts(store)[0])
    scripts = loaded.catalogue_scripts if loaded is not None else text_scripts(item_texts(store)[0])
    checked = check_query(text, known_scripts=scripts)  # before loading a model: bad input fails fast
    started = time.perf_counter()
    jm = loaded or load_joint(store, model_id)
    feats = _drive(text_features(store, jm.joint, [checked.text], encoder=jm.encoder, cache=False))
    view = jm.view("search")
    items, scores, codes = rank_texts(jm.model, view.trie, feats, k=int(k), beam=beam, shift=view.shift)
    codes = view.stored_codes(codes)  # the SIDs of the search task's own table
    jm.view("rec")  # leave the model pointed at the rec trie (jm.trie), as loaded
    result = SearchResult(checked.text, "joint", warnings=list(checked.warnings))
    if feats.n_truncated:
        result.warnings.append(f"the query is longer than {jm.joint.max_query_tokens} word pieces; the model reads "
                               f"its first {jm.joint.max_query_tokens}")
    keep = items[0] >= 0
    rows = store.get_items(items[0][keep])
    result.hits = [{"rank": r + 1, "idx": int(it["idx"]), "item_id": it["item_id"], "title": it.get("title"),
                    "sid": sid_string(c), "score": round(float(s), 4)}
                   for r, (it, s, c) in enumerate(zip(rows, scores[0][keep], codes[0][keep]))]
    result.note = (f"generative search with joint model #{jm.record.id} ({jm.joint.task}, query encoder "
                   f"{jm.joint.query_encoder}); constrained beam {beam}: every result is a real item")
    if jm.tokens:
        result.note += (f"; token strategy {jm.tokens['strategy']}: SIDs of the search table (quantiser run "
                        f"#{jm.tokens['runs']['search']})")
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def _drive(gen):
    from ..events import drive

    return drive(gen)


# --------------------------------------------------------------------------- evaluation


def rank_joint_rec(store: ProjectStore, jm: JointModel, *, k: int, beam: int | None = None,
                   exclude_history: bool = False, cancel: CancelToken = NEVER) -> TaskGenerator[tuple]:
    """The joint model's recommendations for the test users of its split: ``(ranked, split)``."""
    from .evaluate import rank_probes

    seqs, sp = load_split(store, jm.spec.split)
    ranked = yield from rank_probes(jm.recommender(), sp.test, k=k, beam=beam or max(20, k), user_tokens=user_tokens_for(jm.vocab, seqs),
                                    exclude_history=exclude_history, cancel=cancel,
                                    stage=f"model #{jm.record.id} rec test")
    return ranked, sp


def evaluate_joint(
    store: ProjectStore,
    model_ids: Sequence[int] | None = None,
    *,
    split: str | None = None,
    ks: Sequence[int] = (10, 30),
    rec_ks: Sequence[int] = (5, 10, 20),
    beam: int | None = None,
    rec: bool = True,
    exclude_history: bool = False,
    max_queries: int | None = None,
    bootstrap: int = 1000,
    save: bool = True,
    device: str | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[dict]:
    """Search and recommendation metrics of joint model(s) (several = several seeds).

    Search: every query of the held-out split (``validation`` when the project has it, else
    ``test``; :func:`~semid_studio.core.queries.heldout_split`) ranked over the full catalogue
    by constrained beam search, scored by :func:`~semid_studio.core.search.search_metrics`
    (Recall@K, NDCG@K, MRR; head / torso; asked / never asked), unusable queries counted as
    misses. Rec (``rec=True``, joint task only): the recommender's test probes on its split
    (``exclude_history``: each user's history items left out, as in :func:`.evaluate.evaluate_model`).

    Returns ``{"search": {...}, "rec": {...} or None, "settings": {...}}``.
    """
    from ..queries import TRAIN_SPLIT, heldout_split
    from ..search import _summarise, _validated, bootstrap_ci, head_items, item_texts, search_metrics, text_scripts
    ks = tuple(sorted({int(k) for k in ks}))
    rec_ks = tuple(sorted({int(k) for k in rec_ks}))
    if not ks or ks[0] < 1 or not rec_ks or rec_ks[0] < 1:
        raise SemidError("cut-offs K must be positive integers")
    kmax = max(ks)
    beam = beam or max(30, kmax)
    if beam < kmax:
        raise SemidError(f"beam width {beam} is smaller than the largest K ({kmax})")
    records = [pick_joint(store, m) for m in model_ids] if model_ids else [pick_joint(store)]
    split = heldout_split(store, split)
    frame = store.queries_frame(split=split)
    n_split = len(frame)
    if max_queries is not None and max_queries < n_split:
        keep = np.sort(np.random.default_rng(0).choice(n_split, size=max_queries, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
    targets = frame["item_idx"].to_numpy(np.int64)
    texts_all, _ = item_texts(store)
    clean, valid, reasons = _validated(frame["text"].tolist(), text_scripts(texts_all))
    n_items = store.item_count()
    head = head_items(store)
    asked = np.zeros(n_items, dtype=bool)
    asked[store.queries_frame(split=TRAIN_SPLIT)["item_idx"].to_numpy(np.int64)] = True
    groups = {"asked": asked[targets], "never_asked": ~asked[targets]}
    yield Message(f"joint search evaluation: {len(records)} model(s) on {len(frame)} {split} queries over "
                  f"{n_items} items (beam {beam})")
    search_runs, rec_runs, per_model = [], [], []
    sel = np.flatnonzero(valid)
    for record in records:
        cancel.raise_if_cancelled()
        jm = load_joint(store, record.id, device=device)
        feats = yield from text_features(store, jm.joint, [clean[i] for i in sel], encoder=jm.encoder, cancel=cancel)
        t0 = time.monotonic()
        ranked = np.full((len(frame), kmax), -1, dtype=np.int64)
        view = jm.view("search")
        if len(sel):
            ranked[sel], _, _ = rank_texts(jm.model, view.trie, feats, k=kmax, beam=beam, shift=view.shift)
        seconds = time.monotonic() - t0
        m = search_metrics(ranked, targets, ks, head, groups)
        m["ci95"] = bootstrap_ci(ranked, targets, ks, n_boot=bootstrap, seed=0)
        m["model_id"] = record.id
        m["queries_per_s"] = len(sel) / max(seconds, 1e-9)
        search_runs.append(m)
        info = {"model_id": record.id, "seed": jm.spec.seed, "step": jm.step, "best_step": record.best_step,
                "task": jm.joint.task, "query_encoder": jm.joint.query_encoder,
                "tokens": jm.tokens["strategy"] if jm.tokens else "shared",
                "query_truncation": feats.info(), "search_seconds": round(seconds, 2)}
        yield Message(f"model #{record.id} search: R@{ks[0]} {m[f'recall@{ks[0]}']:.4f} R@{kmax} "
                      f"{m[f'recall@{kmax}']:.4f} MRR {m['mrr']:.4f} ({feats.n_truncated} queries cut at "
                      f"{jm.joint.max_query_tokens} word pieces)")
        if rec and jm.joint.task == "joint":
            r, sp = yield from rank_joint_rec(store, jm, k=max(rec_ks), exclude_history=exclude_history,
                                              cancel=cancel)
            rm = ranking_metrics(r, sp.test.targets, rec_ks)
            rec_runs.append(rm)
            info["rec_split"] = jm.spec.split
            yield Message(f"model #{record.id} rec ({jm.spec.split} test): "
                          + ", ".join(f"R@{k} {rm[f'recall@{k}']:.4f}" for k in rec_ks))
        per_model.append(info)
    search_metrics_ = dict(search_runs[0]) if len(search_runs) == 1 else _summarise(search_runs)
    if len(search_runs) > 1:
        search_metrics_["runs"] = search_runs
    settings = {"method": "joint", "split": split, "ks": list(ks), "rec_ks": list(rec_ks), "beam": beam,
                "constrained": True, "n_queries": int(len(frame)), "n_split_queries": int(n_split),
                "n_rejected": int((~valid).sum()), "rejected": reasons, "models": per_model,
                "n_head_items": int(head.sum()), "spec": records[0].spec["spec"], "joint": records[0].spec["joint"],
                "checkpoint": "best (chosen on the dev part of train queries / rec validation)",
                "rec_exclude_history": bool(exclude_history)}
    report = {"search": search_metrics_, "rec": None, "settings": settings, "ids": {}}
    if rec_runs:
        report["rec"] = {"per_seed": rec_runs, "summary": summarise_runs(rec_runs)}
    if save:
        report["ids"]["search"] = store.save_evaluation(
            name=f"joint #{', #'.join(str(r.id) for r in records)} search", task="search", split=split,
            settings=settings, metrics=search_metrics_, model_id=records[0].id)
        if report["rec"] is not None:
            report["ids"]["rec"] = store.save_evaluation(
                name=f"joint #{', #'.join(str(r.id) for r in records)} rec", task="recommendation",
                split=records[0].spec["spec"]["split"], settings=settings, metrics=report["rec"],
                model_id=records[0].id)
    return report


__all__ = ["JOINT_KIND", "JointModel", "JointSpec", "JointTrainer", "SearchData", "TaskView", "TextFeatures",
           "evaluate_joint", "rank_joint_rec", "task_views", "use_view",
           "has_joint_model", "joint_search", "load_joint", "make_joint_model_spec", "make_joint_spec", "rank_texts",
           "search_data", "selection_label", "split_overrides", "text_features", "train_joint"]
