"""Training the generative recommender: one loop for the CLI, the GUI, the tests and the
benchmarks.

- :class:`Trainer` works on arrays (a split, an SID table): batches, loss, optimiser,
  learning-rate schedule, validation, and its complete state as numpy arrays (weights,
  optimiser moments, RNG state, data position) so that an interrupted run resumes to the very
  same model.
- :func:`train_model` is the task generator over a project file: it creates (or resumes) a
  model record, yields progress and validation metrics, keeps the checkpoint that is best on
  the *validation* split (``best``) and the latest state (``last``), and stops cleanly on
  cancel, on a time budget or at the end of the schedule. ``last`` is also written every
  ``checkpoint_s`` seconds of training (default :data:`CHECKPOINT_S`), so a crash or
  ``kill -9`` loses at most about that much work; a model being trained is leased to its
  process so that a second trainer never writes the same model.
- Under ``torchrun`` the same loop trains one model with several processes (DDP, see
  :mod:`.distributed`): each takes its share of every global batch, rank 0 writes.

Why the loop looks like this (measured on Beauty, see docs/generative.md): every position of
a history window is a target in one pass (causal encoder), windows are bucketed by length
instead of padded to a fixed size, and the loss is the SID's log-likelihood with each level's
softmax restricted to the codes that exist under the true prefix (the same quantity the
constrained beam search ranks by).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import autocast, check_precision, resolve_device
from ..errors import ProjectError, SemidError
from ..events import (NEVER, CancelToken, Cancelled, Message, Metric, PartialResult,
                      ProgressThrottle, TaskGenerator)
from ..sids import default_level_sizes
from ..store import ProjectStore
from .data import Batch, Sequences, Split, Windows, iter_batches, make_split, training_windows
from .decode import beam_search
from .distributed import SINGLE, Dist
from .metrics import ranking_metrics
from .model import TextInput, TigerModel
from .schedule import RunClock, past_pace, plan_text
from .seen import SeenIndex, TargetShares
from .spec import GenerativeSpec, spec_from_dict
from .tokens import SidVocab
from .trie import SidTrie
from ..wording import hint

MODEL_KIND = "tiger"
#: seconds of training between time-based ``last`` checkpoints (what a crash can lose at most)
CHECKPOINT_S = 60.0
JOINT_KIND = "tiger-joint"  # a joint search + rec model (joint/), stored beside the recommenders


def sid_loss(model: TigerModel, trie: SidTrie, h: torch.Tensor, targets: torch.Tensor, *,
             constrained: bool, label_smoothing: float = 0.0, seen: TargetShares | None = None) -> torch.Tensor:
    """Mean negative log-likelihood of the target items' SIDs (summed over modelled levels).

    ``h``: decoder states ``(N, n_steps, d)`` from :meth:`TigerModel.forward_train`.
    ``constrained``: each level's softmax runs over the codes that exist under the target's
    true prefix only (what constrained decoding normalises over). Label smoothing spreads
    its mass over those same codes. ``seen``: what each target's user already had, for a
    ``seen_bias`` model (constrained only).
    """
    total = torch.zeros((), device=targets.device)
    codes = model.codes[targets]
    n = len(targets)
    for level in range(model.n_steps):
        hl = h[:, level]
        if not constrained:
            nll = _nll(model.full_logits(hl, level).float(), codes[:, level], label_smoothing)
            total = total + nll.sum() / n
            continue
        parents = torch.zeros_like(targets) if level == 0 else trie.item_path[targets, level - 1]
        slot = trie.item_path[targets, level] - trie.first[level][parents]
        # the node outputs' projected content, once per level and step (every row group reads it)
        table = model.content_table(trie, level) if model.spec.content_output and level > 0 else None
        per_node = (bool(model.node_emb) or table is not None) and level > 0
        for rows in _by_family_size(trie, level, parents, per_node):
            p = parents if rows is None else parents[rows]
            width = None if rows is None else int(trie.n_children(level, p).max())
            nodes, child_codes = trie.children(level, p, width)
            shares = None
            if seen is not None:
                owners = torch.arange(n, device=targets.device) if rows is None else rows
                shares = seen.share(level, nodes, owners)
            logits = model.child_logits(hl if rows is None else hl[rows], level, child_codes, nodes, trie,
                                        table, shares).float()
            logits = logits.masked_fill(nodes < 0, float("-inf"))
            nll = _nll(logits, slot if rows is None else slot[rows], label_smoothing)
            total = total + nll.sum() / n
    return total


def _nll(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target[:, None])[:, 0]
    if label_smoothing > 0:
        finite = torch.isfinite(logp)
        mean_logp = torch.where(finite, logp, torch.zeros_like(logp)).sum(-1) / finite.sum(-1)
        nll = (1 - label_smoothing) * nll - label_smoothing * mean_logp
    return nll


def _by_family_size(trie: SidTrie, level: int, parents: torch.Tensor, split: bool):
    """Row groups of similar sibling counts. Per-node output terms gather one embedding per
    sibling, padded to the widest family in the group; grouping by family size keeps that
    padding small (one group, ``None``, when there is nothing to gain)."""
    if not split or trie.max_children[level] <= 16:
        return [None]
    sizes = trie.n_children(level, parents)
    edges = torch.tensor([8, 16, 32, 64], device=parents.device)
    group = torch.bucketize(sizes, edges)
    return [rows for g in range(len(edges) + 1) if len(rows := torch.nonzero(group == g)[:, 0])]


def lr_factor(spec: GenerativeSpec, step: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then the schedule."""
    warm = max(1, spec.warmup_steps)
    if step < warm:
        return (step + 1) / warm
    if spec.schedule == "constant":
        return 1.0
    if spec.schedule == "inverse_sqrt":  # the paper's: constant after warm-up scaled by 1/sqrt(step)
        return math.sqrt(warm / (step + 1))
    progress = min(1.0, (step - warm) / max(1, spec.max_steps - warm))
    return spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def rank(model: TigerModel, trie: SidTrie, histories: list[np.ndarray], *, k: int, beam: int,
         batch_size: int = 256, users: np.ndarray | None = None, cancel: CancelToken = NEVER) -> np.ndarray:
    """Constrained beam-search top-``k`` item idx for many histories, in batches (cancellable
    between batches: a validation on thousands of users must not hold up a cancel)."""
    out = []
    for start in range(0, len(histories), batch_size):
        cancel.raise_if_cancelled()
        chunk = histories[start : start + batch_size]
        u = None if users is None else users[start : start + batch_size]
        out.append(beam_search(model, trie, chunk, beam=beam, k=k, users=u).items)
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_s: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None


class _StepLoss(nn.Module):
    """A step's whole loss as one module's forward. DDP averages the gradients of what the
    forward of the module it wraps computed, and the loss reads the model beyond
    ``forward_train`` (output tables, node embeddings): so the wrapped forward is all of it."""

    def __init__(self, trainer: "Trainer") -> None:
        super().__init__()
        self.model = trainer.model  # the parameters DDP keeps in step
        self._loss = trainer.local_loss

    def forward(self, *args):
        return self._loss(*args)


class Trainer:
    """The training loop on arrays (no project file); :func:`train_model` wraps it."""

    #: whether a step may leave parameters without a gradient (DDP then looks for them each step)
    some_unused = False

    def __init__(self, spec: GenerativeSpec, vocab: SidVocab, codes: np.ndarray, split: Split,
                 device: torch.device | str = "cpu", user_tokens: np.ndarray | None = None,
                 text: TextInput | None = None, content: np.ndarray | None = None, dist: Dist = SINGLE) -> None:
        """``content``: the items' content vectors (row = item idx), for a spec with
        ``content_input`` / ``content_output``. ``dist``: this process's rank in a
        data-parallel run (:mod:`.distributed`)."""
        self.spec, self.vocab, self.split, self.dist = spec, vocab, split, dist
        self.device = torch.device(device)
        check_precision(spec.precision, self.device)
        if spec.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(spec.threads)
        torch.manual_seed(spec.seed)
        reads_content = spec.content_input or spec.content_output
        if reads_content and content is None:
            raise SemidError("content_input / content_output need the items' content vectors")
        # ``text``: a joint search + recommendation model (see .joint.JointTrainer)
        self.model = TigerModel(spec, vocab, text, content.shape[1] if reads_content else 0).to(self.device)
        self.model.set_catalogue(codes, content if reads_content else None)
        self.trie = SidTrie.build(codes, vocab.level_sizes).to(self.device)
        self.user_tokens = user_tokens  # (n_users,) token per Sequences row, or None
        self.windows: Windows = training_windows(split.train, spec.max_history, last_only=spec.train_targets == "last")
        if len(self.windows) == 0:
            raise SemidError("no training sequences with at least two items; import more interactions")
        self.seen_index = SeenIndex(split.train, self.trie, self.model.n_steps, self.device) if spec.seen_bias else None
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (decay if p.dim() >= 2 else no_decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=spec.lr, betas=(0.9, 0.98), eps=1e-8,
        )
        # the moving average of the weights (spec.ema_decay > 0), one tensor per parameter
        self.average: list[torch.Tensor] | None = None
        if spec.ema_decay > 0:
            self.average = [p.detach().clone() for p in self.model.parameters()]
        self.state = TrainState()
        self._epoch_batches: list[Batch] | None = None
        valid = split.valid
        if spec.valid_users and len(valid) > spec.valid_users:
            rows = np.sort(np.random.default_rng(12345).choice(len(valid), spec.valid_users, replace=False))
            valid = valid.subset(rows)
        self.valid = valid
        self.cancel: CancelToken = NEVER  # set by the training loop, checked during validation too
        # fp16 needs its loss scaled so that small gradients do not flush to zero (off otherwise)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=spec.precision == "fp16")
        self._own_random_stream()
        # under DDP a step's loss runs through the wrapper, which averages the ranks' gradients
        self.loss_fn = dist.wrap(_StepLoss(self), unused=self.some_unused) if dist.active else self.local_loss

    def _own_random_stream(self) -> None:
        """Ranks beside 0 draw their own dropout masks (rank 0 keeps the one-process stream)."""
        if self.dist.rank:
            torch.manual_seed((self.spec.seed * 1_000_003 + self.state.step) * 1009 + self.dist.rank)

    # -- data

    def _batches(self) -> list[Batch]:
        if self._epoch_batches is None:
            # the order of epoch e depends only on (seed, e): a resumed run sees the same batches
            rng = np.random.default_rng([self.spec.seed, self.state.epoch])
            self._epoch_batches = iter_batches(self.windows, self.spec.batch_targets, rng,
                                               last_only=self.spec.train_targets == "last")
        return self._epoch_batches

    def next_batch(self) -> Batch:
        batches = self._batches()
        if self.state.batch_in_epoch >= len(batches):
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            self._epoch_batches = None
            batches = self._batches()
        return batches[self.state.batch_in_epoch]

    @property
    def targets_per_epoch(self) -> int:
        return len(self.windows) if self.spec.train_targets == "last" else self.windows.n_targets

    # -- one step

    def train_step(self) -> tuple[float, int]:
        """One optimiser step on the next global batch (this rank's share of it); returns
        (the whole batch's loss, its number of target items)."""
        batch = self.next_batch()
        self.begin_step()
        part, weight = self.share(batch)
        with autocast(self.device, self.spec.precision):
            loss = self.loss_fn(part, weight)
        self.optimise(loss)
        # the step counts only once the update is complete (an interrupt before this line
        # leaves the weights of the previous step, which is what a checkpoint then records)
        self.state.step += 1
        self.state.batch_in_epoch += 1
        # each rank's loss is its weighted share: their mean is the whole batch's mean loss
        return self.dist.total(float(loss.detach())) / self.dist.world, batch.n_targets

    def begin_step(self) -> None:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.spec.lr * lr_factor(self.spec, self.state.step)

    def local_loss(self, batch: Batch, weight: float = 1.0) -> torch.Tensor:
        """The SID loss of ``batch`` (mean over its targets), times ``weight``."""
        spec = self.spec
        inputs = torch.from_numpy(batch.inputs).to(self.device)
        targets = torch.from_numpy(batch.targets).to(self.device)
        users = None
        if spec.user_bins > 0 and self.user_tokens is not None:
            users = torch.from_numpy(self.user_tokens[batch.users]).to(self.device)
        h, tgt = self.model.forward_train(inputs, targets, users, last_only=spec.train_targets == "last")
        loss = sid_loss(self.model, self.trie, h, tgt, constrained=spec.constrained_loss,
                        label_smoothing=spec.label_smoothing, seen=self.seen_shares(batch))
        return loss if weight == 1.0 else loss * weight

    def my_rows(self, n: int) -> tuple[np.ndarray, bool]:
        """This rank's rows of a step's ``n`` rows, and whether it has any. A rank left
        without rows (a batch with fewer rows than processes) runs row 0 at weight 0: every
        rank must take part in each gradient average."""
        rows = self.dist.rows(n)
        return (rows, True) if len(rows) else (np.zeros(1, np.int64), False)

    def share(self, batch: Batch) -> tuple[Batch, float]:
        """This rank's part of a global batch and its loss weight: (rank's targets / all
        targets) x ranks, so that DDP's gradient average is the gradient of the whole batch's
        mean loss, exactly what one process computes."""
        if not self.dist.active:
            return batch, 1.0
        rows, real = self.my_rows(len(batch.inputs))
        part = batch.take(rows)
        return part, (self.dist.world * part.n_targets / max(1, batch.n_targets) if real else 0.0)

    def seen_shares(self, batch: Batch) -> TargetShares | None:
        """What each target's user had up to its input (``seen_bias`` models), else None."""
        if self.seen_index is None:
            return None
        users, positions = batch.target_positions()
        return self.seen_index.for_targets(users, positions, self.device)

    def optimise(self, loss: torch.Tensor) -> None:
        """Backward, clip, one optimiser step, and the weight average's update (the scaler
        steps are no-ops unless the precision is fp16)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.spec.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            # the decay ramps up over the first steps so the average soon forgets the random start
            decay = min(self.spec.ema_decay, (1 + self.state.step) / (10 + self.state.step))
            with torch.no_grad():
                for avg, p in zip(self.average, self.model.parameters()):
                    avg.lerp_(p.detach(), 1.0 - decay)

    @contextmanager
    def served_weights(self):
        """Within the block the model holds the weights that validation and checkpoints use: the
        moving average when there is one (the raw training weights are put back after)."""
        if self.average is None:
            yield
            return
        params = list(self.model.parameters())
        with torch.no_grad():
            raw = [p.detach().clone() for p in params]
            for p, avg in zip(params, self.average):
                p.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(params, raw):
                    p.copy_(r)

    # -- validation

    def validate(self, probes=None, ks=(10,)) -> dict[str, float]:
        """Ranking figures on the validation probes (each rank ranks its share; every rank
        gets the figures of all of them)."""
        probes = self.valid if probes is None else probes
        rows = self.dist.rows(len(probes))
        hists = [probes.history(int(i)) for i in rows]
        users = None
        if self.spec.user_bins > 0 and self.user_tokens is not None:
            users = self.user_tokens[probes.users[rows]]
        k = max(ks)
        ranked = rank(self.model, self.trie, hists, k=k, beam=max(k, self.spec.valid_beam), users=users,
                      cancel=self.cancel)
        ranked = self.dist.gather_rows(ranked, len(probes))
        self.model.train()
        return ranking_metrics(ranked, probes.targets, ks)

    @property
    def selection_name(self) -> str:
        """The validation figure checkpoints are chosen by."""
        return self.spec.select_metric

    def selection_value(self, metrics: dict[str, float]) -> float:
        return metrics[self.spec.select_metric]

    def part_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Validation figures worth a curve of their own beside the selection figure (none here)."""
        return {}

    # -- state as arrays (checkpoints)

    def weights(self) -> dict[str, np.ndarray]:
        """The served weights (the moving average when there is one): what a checkpoint holds."""
        with self.served_weights():
            return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        state = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
        self.model.load_state_dict(state)

    def train_state(self) -> dict[str, np.ndarray]:
        """Optimiser moments, RNG and data position, as arrays (no pickle); with a weight
        average also the raw training weights (the checkpoint's weights are the average)."""
        out: dict[str, np.ndarray] = {}
        names = {id(p): n for n, p in self.model.named_parameters()}
        if self.average is not None:
            for name, p in self.model.named_parameters():
                out[f"raw/{name}"] = p.detach().cpu().numpy().copy()
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                st = self.optimizer.state.get(p)
                if not st:
                    continue
                name = names[id(p)]
                out[f"opt/{name}/exp_avg"] = st["exp_avg"].detach().cpu().numpy().copy()
                out[f"opt/{name}/exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().numpy().copy()
                out[f"opt/{name}/step"] = np.asarray([float(st["step"])], dtype=np.float64)
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        if self.device.type == "cuda":
            out["rng/cuda"] = torch.cuda.get_rng_state(self.device).numpy().copy()
        if self.scaler.is_enabled():
            out.update({f"amp/{k}": np.asarray([v], dtype=np.float64) for k, v in self.scaler.state_dict().items()})
        s = self.state
        # in global batches (what one process would have done): a resume may use another number of processes
        out["pos"] = np.asarray([s.step, s.epoch, s.batch_in_epoch], dtype=np.int64)
        out["elapsed"] = np.asarray([s.elapsed_s], dtype=np.float64)
        return out

    def load_train_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Called after :meth:`load_weights` with the same checkpoint's weights."""
        params = dict(self.model.named_parameters())
        if self.average is not None:
            # the loaded weights are the average; the raw ones continue training
            with torch.no_grad():
                self.average = [p.detach().clone() for p in params.values()]
                for name, p in params.items():
                    p.copy_(torch.from_numpy(arrays[f"raw/{name}"].copy()))
        for key in arrays:
            if not key.startswith("opt/") or not key.endswith("/exp_avg"):
                continue
            name = key[len("opt/") : -len("/exp_avg")]
            p = params[name]
            self.optimizer.state[p] = {
                "step": torch.tensor(float(arrays[f"opt/{name}/step"][0])),
                "exp_avg": torch.from_numpy(arrays[f"opt/{name}/exp_avg"].copy()).to(self.device),
                "exp_avg_sq": torch.from_numpy(arrays[f"opt/{name}/exp_avg_sq"].copy()).to(self.device),
            }
        torch.set_rng_state(torch.from_numpy(arrays["rng/torch"].copy()))
        if "rng/cuda" in arrays and self.device.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(arrays["rng/cuda"].copy()), self.device)
        amp = {key[len("amp/"):]: float(v[0]) for key, v in arrays.items() if key.startswith("amp/")}
        if amp and self.scaler.is_enabled():
            self.scaler.load_state_dict({k: int(v) if k in ("growth_interval", "_growth_tracker") else v
                                         for k, v in amp.items()})
        step, epoch, batch_in_epoch = (int(v) for v in arrays["pos"])
        self.state.step, self.state.epoch, self.state.batch_in_epoch = step, epoch, batch_in_epoch
        self.state.elapsed_s = float(arrays["elapsed"][0])
        self._epoch_batches = None
        self._own_random_stream()


# --------------------------------------------------------------------------- the project task


def make_vocab(spec: GenerativeSpec, codes: np.ndarray) -> SidVocab:
    """The vocabulary for a new model on this SID table (resolves ``dedup_token='auto'``)."""
    codes = np.asarray(codes)
    model_dedup = spec.dedup_token == "model" or (spec.dedup_token == "auto" and int(codes[:, -1].max()) > 0)
    sizes = tuple(default_level_sizes(codes))
    nodes: tuple[int, ...] = ()
    if spec.node_output:
        nodes = tuple(SidTrie.build(codes, sizes).n_nodes)
    return SidVocab(sizes, len(codes), spec.user_bins, model_dedup, nodes)


def training_content(store: ProjectStore, spec: GenerativeSpec, run, n_items: int
                     ) -> tuple[np.ndarray | None, dict | None]:
    """The content vectors a ``content_input`` / ``content_output`` model reads: the embedding
    set the SIDs were quantised from (or ``spec.content_set``), first ``n_items`` rows. Returns
    ``(vectors, record)``, ``(None, None)`` for a model that reads none."""
    if not (spec.content_input or spec.content_output):
        return None, None
    try:
        emb = store.load_embedding_set(spec.content_set or run.embedding_set_id)
    except ProjectError as exc:
        if not spec.content_set:
            raise
        raise ProjectError(f"spec field 'content_set': {exc}") from None
    if emb.n_items < n_items:
        raise ProjectError(f"embedding set #{emb.id} covers {emb.n_items} of the model's {n_items} items")
    vectors = np.asarray(emb.vectors[:n_items], dtype=np.float32)
    return vectors, {"embedding_set_id": emb.id, "dim": int(vectors.shape[1])}


def load_split(store: ProjectStore, kind: str) -> tuple[Sequences, Split]:
    seqs = Sequences.from_frame(store.interactions_frame())
    return seqs, make_split(seqs, kind)


def user_tokens_for(vocab: SidVocab, seqs: Sequences) -> np.ndarray | None:
    if vocab.user_bins <= 0:
        return None
    return np.asarray([vocab.user_token(u) for u in seqs.user_ids], dtype=np.int64)


def _resumable(store: ProjectStore, spec: GenerativeSpec) -> int | None:
    """The newest unfinished model trained with exactly this spec that no other process is
    training now, if any."""
    for rec in reversed(store.list_models(MODEL_KIND)):
        if rec.status in ("done",):
            continue
        if same_spec(rec.spec.get("spec"), spec) and store.has_checkpoint(rec.id, "last") \
                and store.lease_holder(model_lease(rec.id)) is None:
            return rec.id
    return None


def model_lease(model_id: int) -> str:
    """The lease a trainer holds on its model (two processes never train one model at once)."""
    return f"model:{int(model_id)}"


def same_spec(stored: dict | None, spec: GenerativeSpec) -> bool:
    """Whether a stored spec is ``spec`` (fields added since it was stored take their defaults)."""
    try:
        return stored is not None and spec_from_dict(stored) == spec
    except (SemidError, TypeError):
        return False


def train_model(
    store: ProjectStore,
    spec: GenerativeSpec,
    *,
    resume: int | bool | None = None,
    name: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    max_minutes: float | None = None,
    max_call_steps: int | None = None,
    checkpoint_s: float | None = CHECKPOINT_S,
    cancel: CancelToken = NEVER,
    dist: Dist = SINGLE,
) -> TaskGenerator[int]:
    """Train (or resume) a generative recommender on the project's active SID table.

    Parameters
    ----------
    store
        The project (interactions and an active quantiser run are needed).
    spec
        Settings (:func:`.spec.make_spec`). The split (``spec.split``) is part of the spec.
    resume
        ``None`` (default): resume the newest unfinished model with exactly this spec if
        there is one, else start a new model. ``False``: always start a new model. An int:
        resume that model (its own stored spec is used).
    max_minutes
        Stop cleanly after this much training time in this call (the model can be resumed).
    max_call_steps
        Stop cleanly after this many steps in this call (resumable; a budget in steps).
    checkpoint_s
        Also save the ``last`` checkpoint after every this many seconds of training (``None``
        or 0: only at validations), so that a crash loses at most about this much.
    cancel
        Cancelling (or Ctrl+C) saves the state of the last completed step as the ``last``
        checkpoint and marks the model 'interrupted'; resuming continues from there exactly.
    dist
        This process's rank in a data-parallel run (:func:`.distributed.start`); rank 0
        decides which model to train and alone writes to ``store`` (the others may open it
        read-only). ``device`` is then ``dist.device``.

    Returns
    -------
    int
        The model id.
    """
    model_id: int | None = None
    if isinstance(resume, bool) and resume is False:
        model_id = None
    elif isinstance(resume, int) and not isinstance(resume, bool):
        rec = store.get_model(resume)
        if rec.kind != MODEL_KIND:
            raise ProjectError(f"model #{resume} is a '{rec.kind}' model, not a generative recommender")
        if rec.status == "done":
            raise SemidError(f"model #{resume} has finished its schedule ({rec.step} steps); "
                             f"{hint('new_model')}")
        model_id = resume
    elif dist.is_main:
        model_id = _resumable(store, spec)
    if dist.is_main and model_id is not None:
        store.claim(model_lease(model_id), f"model #{model_id}")  # before reading its checkpoint
    # the other ranks follow rank 0's choice (a resumed model, or a new one on this SID run)
    run_id = 0 if model_id is not None else (store.active_run_id() or 0)
    resumed, run_id = dist.from_main(model_id or 0, run_id)
    model_id = int(resumed) or None

    if model_id is not None:
        rec = store.get_model(model_id)
        spec = spec_from_dict(rec.spec["spec"])
        run = store.load_quantizer_run(rec.quantizer_run_id)
        vocab = SidVocab.from_dict(rec.spec["vocab"])
        codes = run.codes[: vocab.n_items]
    else:
        run = store.load_quantizer_run(int(run_id) or None)
        codes = run.codes
        if len(codes) != store.item_count():
            raise ProjectError(f"the active SID table covers {len(codes)} of {store.item_count()} items; "
                               f"{hint('quantize')} again so every item has a Semantic ID")
        vocab = make_vocab(spec, codes)

    seqs, split = load_split(store, spec.split)
    dev = dist.device if dist.active else resolve_device(device)
    yield Message(f"{split.describe()}; SIDs from quantiser run #{run.id} ({vocab.n_levels} levels); device {dev}"
                  + (f"; {dist.world} processes (DDP), {spec.batch_targets} targets per global batch"
                     if dist.active else ""))
    content, content_info = training_content(store, spec, run, vocab.n_items)
    trainer = Trainer(spec, vocab, codes, split, dev, user_tokens_for(vocab, seqs), content=content, dist=dist)

    if model_id is None:
        if dist.is_main:
            record = {"spec": spec.to_dict(), "vocab": vocab.to_dict(), "preset": preset,
                      "n_parameters": trainer.model.n_parameters(), "split_info": split.info}
            if content_info is not None:
                record["content"] = content_info
            model_id = store.create_model(
                name=name or f"tiger-{preset or 'custom'}-{spec.split}-seed{spec.seed}",
                kind=MODEL_KIND,
                quantizer_run_id=run.id,
                spec=record,
            )
            store.claim(model_lease(model_id), f"model #{model_id}")
        model_id = int(dist.from_main(model_id or 0)[0])
        history: list[dict] = []
        yield Message(f"model #{model_id}: {trainer.model.n_parameters():,} parameters, "
                      f"{trainer.targets_per_epoch:,} training targets per epoch")
    else:
        history = resume_trainer(store, model_id, trainer)
        yield Message(f"resuming model #{model_id} at step {trainer.state.step} "
                      f"({trainer.state.elapsed_s / 60:.1f} min trained so far)")

    yield from leased_loop(store, model_id, trainer, history, max_minutes, checkpoint_s, cancel, max_call_steps)
    return model_id


def leased_loop(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
                max_minutes: float | None, checkpoint_s: float | None, cancel: CancelToken,
                max_call_steps: int | None = None) -> TaskGenerator[None]:
    """:func:`_loop` on a model this process has claimed; the lease is given back at the end
    (a killed process leaves a stale lease, which the next trainer takes over)."""
    try:
        yield from _loop(store, model_id, trainer, history, max_minutes, cancel, checkpoint_s, max_call_steps)
    finally:
        # giving the lease back must not hide the error that ended the run (a full disk, say)
        if trainer.dist.is_main:
            with suppress(SemidError):
                store.release(model_lease(model_id))


def _save(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict], status: str,
          *, best: bool) -> None:
    if not trainer.dist.is_main:
        return  # rank 0 writes for all (the ranks hold the same weights)
    s = trainer.state
    extra = {"elapsed_s": s.elapsed_s, "epoch": s.epoch, "processes": trainer.dist.world}
    with store.atomic():
        if best:
            store.save_checkpoint(model_id, "best", s.step, trainer.weights(), None, extra)
        store.save_checkpoint(model_id, "last", s.step, trainer.weights(), trainer.train_state(), extra)
        store.update_model(model_id, status=status, step=s.step, best_step=s.best_step, best_metric=s.best_metric,
                           history=history)


def _set_status(store: ProjectStore, trainer: Trainer, model_id: int, status: str) -> None:
    if trainer.dist.is_main:
        store.update_model(model_id, status=status)


def resume_trainer(store: ProjectStore, model_id: int, trainer: Trainer) -> list[dict]:
    """Load model ``model_id``'s last checkpoint (weights, optimiser, data order, best so far)
    into ``trainer``; returns its validation history."""
    ckpt = store.load_checkpoint(model_id, "last")
    if ckpt is None:
        raise ProjectError(f"model #{model_id} has no saved checkpoint to resume from; start a new one with --new")
    trainer.load_weights(ckpt.weights)
    trainer.load_train_state(ckpt.train_state)
    rec = store.get_model(model_id)
    trainer.state.best_metric, trainer.state.best_step = rec.best_metric, rec.best_step
    return list(rec.history)


def _loop(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
          max_minutes: float | None, cancel: CancelToken, checkpoint_s: float | None = None,
          max_call_steps: int | None = None) -> TaskGenerator[None]:
    spec, s, dist = trainer.spec, trainer.state, trainer.dist
    throttle = ProgressThrottle("training", spec.max_steps)
    budget_s = None if max_minutes is None else max_minutes * 60.0
    call_start = time.monotonic()
    first_step = s.step
    losses: list[float] = []
    n_targets = 0
    bad_evals = 0
    _set_status(store, trainer, model_id, "running")
    status = "running"
    # several processes: a cancel is one of rank 0's decisions, taken between steps for all
    # ranks at once (a rank that stopped alone would leave the others waiting)
    trainer.cancel = NEVER if dist.active else cancel
    saved_at = time.monotonic()  # when 'last' was last written (time-based checkpoints)
    run_clock = RunClock(s.step, spec.max_steps, budget_s, call_start)
    yield from _announce_plan(store, model_id, trainer, history, budget_s)
    try:
        while s.step < spec.max_steps:
            if not dist.active:
                cancel.raise_if_cancelled()
            t0 = time.monotonic()
            loss, n = trainer.train_step()
            s.elapsed_s += time.monotonic() - t0
            losses.append(loss)
            n_targets += n
            if not math.isfinite(loss):
                raise SemidError(f"training diverged (loss {loss}) at step {s.step}; {hint('lower_lr')}")
            out_of_time = budget_s is not None and time.monotonic() - call_start >= budget_s
            out_of_steps = max_call_steps is not None and s.step - first_step >= max_call_steps
            if dist.active:
                cancelled, out_of_time = (bool(v) for v in dist.from_main(cancel.cancelled, out_of_time))
                if cancelled:
                    raise Cancelled()
            running = float(np.mean(losses[-50:]))
            ev = throttle.update(s.step, f"loss {running:.3f}{run_clock.eta_text(s.step, time.monotonic())}")
            if not run_clock.planned and (pace := run_clock.pace(s.step, time.monotonic())) is not None:
                run_clock.planned = True  # once the run has measured its own pace
                left_s = None if budget_s is None else budget_s - (time.monotonic() - call_start)
                yield Message(plan_text(s.step, spec.max_steps, spec.eval_every, pace, budget_s, left_s))
            if ev:
                yield ev
                # the loss curve between validations (split "running": the mean of the last 50 steps)
                yield Metric("loss", running, s.step, s.elapsed_s, "running")
            budget_over = out_of_time or out_of_steps
            if s.step % spec.eval_every == 0 or s.step >= spec.max_steps or budget_over:
                entry = yield from _evaluate(store, model_id, trainer, history, losses, n_targets)
                losses, n_targets = [], 0
                if entry["improved"]:
                    bad_evals = 0
                else:
                    bad_evals += 1
                stop = bool(dist.from_main(bool(spec.patience and bad_evals >= spec.patience))[0])
                if stop:
                    yield Message(f"no validation improvement in {bad_evals} evaluations: stopping early")
                    status = "done"
                    break
                if budget_over:
                    budget = f"time budget of {max_minutes:g} min" if out_of_time else f"budget of {max_call_steps} steps"
                    yield Message(f"{budget} reached at step {s.step}; {hint('continue_training')}")
                    status = "stopped"
                    break
                saved_at = time.monotonic()
            elif checkpoint_s and time.monotonic() - saved_at >= checkpoint_s:
                # a resumable 'last' between validations: one write a minute, not per step
                _save(store, model_id, trainer, history, "running", best=False)
                saved_at = time.monotonic()
        else:
            status = "done"
        _set_status(store, trainer, model_id, status)
    except (Cancelled, KeyboardInterrupt):
        # the weights are those of the last completed step (see Trainer.train_step)
        _save(store, model_id, trainer, history, "interrupted", best=False)
        raise
    except RuntimeError as exc:
        if not dist.active:
            raise
        # another rank has gone (killed, out of memory): this rank's weights are still those
        # of its last completed step, so rank 0 keeps them before saying so in one line
        _save(store, model_id, trainer, history, "interrupted", best=False)
        raise SemidError(f"rank {dist.rank}: another training process stopped ({str(exc).splitlines()[0][:200]}); "
                         f"the last completed step ({s.step}) is saved - run the same command to resume") from None
    yield PartialResult("model", {"model_id": model_id, "status": status, "step": s.step,
                                  "best_step": s.best_step, "best_metric": s.best_metric})
    return None


def _announce_plan(store: ProjectStore, model_id: int, trainer: Trainer, history: list[dict],
                   budget_s: float | None) -> TaskGenerator[None]:
    """Before the first step: the curve so far (a resumed run's history, for plots) and what the
    budget will reach at the pace of this model's earlier runs or of a model of its shape."""
    if history:
        yield PartialResult("history", {"model_id": model_id, "metrics": _history_metrics(trainer, history)})
    rec = store.get_model(model_id)
    pace = past_pace(store, rec.kind, rec.spec.get("spec") or {}, rec.spec.get("joint"))
    if pace is not None:
        spec = trainer.spec
        step = trainer.state.step
        yield Message("expected: " + plan_text(step, spec.max_steps, spec.eval_every, pace, budget_s,
                                               resumed_from=step or None))


def _history_metrics(trainer: Trainer, history: list[dict]) -> list[Metric]:
    """The stored history as the Metric events the loop yielded when it validated."""
    out = []
    for h in history:
        if h.get("train_loss") is not None:
            out.append(Metric("train_loss", h["train_loss"], h["step"], h["elapsed_s"], "train"))
        out.append(Metric(trainer.selection_name, trainer.selection_value(h["valid"]), h["step"], h["elapsed_s"],
                          "valid"))
        out += [Metric(name, part, h["step"], h["elapsed_s"], "valid")
                for name, part in trainer.part_metrics(h["valid"]).items()]
    return out


def _evaluate(store, model_id, trainer: Trainer, history, losses, n_targets) -> TaskGenerator[dict]:
    spec, s = trainer.spec, trainer.state
    t0 = time.monotonic()
    k = int(spec.select_metric.split("@")[1])
    with trainer.served_weights():
        metrics = trainer.validate(ks=sorted({k, 10}))
    value = trainer.selection_value(metrics)
    improved = s.best_metric is None or value > s.best_metric
    if improved:
        s.best_metric, s.best_step = value, s.step
    entry = {"step": s.step, "epoch": s.epoch, "elapsed_s": round(s.elapsed_s, 2),
             "train_loss": float(np.mean(losses)) if losses else None,
             "targets_per_s": n_targets / max(1e-9, s.elapsed_s - (history[-1]["elapsed_s"] if history else 0.0)),
             "valid": metrics, "valid_s": round(time.monotonic() - t0, 2)}
    history.append(entry)
    _save(store, model_id, trainer, history, "running", best=improved)
    for metric in _history_metrics(trainer, [entry]):
        yield metric
    yield PartialResult("checkpoint", {"model_id": model_id, "step": s.step, "best": improved, **metrics})
    return {**entry, "improved": improved}
