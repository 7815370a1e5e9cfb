"""The training loop of the generative recommender on arrays: :class:`Trainer`.

It works on a split and an SID table: batches, loss, optimiser, learning-rate schedule,
validation, and its complete state as numpy arrays (weights, optimiser moments, RNG state,
data position) so that an interrupted run resumes to the very same model. Under ``torchrun``
each process takes its share of every global batch (:mod:`.distributed`).

Why the loop looks like this (measured on Beauty, see docs/generative.md): every position of
a history window is a target in one pass (causal encoder), windows are bucketed by length
instead of padded to a fixed size, and the loss is the SID's log-likelihood with each level's
softmax restricted to the codes that exist under the true prefix (the same quantity the
constrained beam search ranks by).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import autocast, check_precision
from ..errors import SemidError
from ..events import NEVER, CancelToken
from .data import Batch, Probes, Split, Windows, iter_batches, training_windows
from .decode import beam_search
from .distributed import SINGLE, Dist
from .metrics import ranking_metrics
from .model import TextInput, TigerModel
from .seen import SeenIndex, TargetShares
from .spec import GenerativeSpec
from .tokens import SidVocab
from .trie import SidTrie


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


def item_loss(model: TigerModel, states: torch.Tensor, targets: torch.Tensor, negatives: int = 0) -> torch.Tensor:
    """The item head's mean cross-entropy: softmax over every training item (``negatives`` 0),
    or over the target and ``negatives`` items drawn uniformly and shared by the batch (a
    uniform draw needs no log-Q correction: it shifts every logit alike); a drawn item that is
    a row's own target is masked out of that row."""
    if negatives <= 0:
        logits = model.item_logits(states)[:, : model.vocab.n_items]
        return F.cross_entropy(logits.float(), targets)
    drawn = torch.randint(0, model.vocab.n_items, (negatives,), device=targets.device)
    vectors = model.item_vectors()
    positive = model.item_logits(states, targets[:, None], vectors)  # (N, 1)
    sampled = model.item_logits(states, drawn, vectors)  # (N, negatives)
    sampled = sampled.masked_fill(drawn[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([positive, sampled], dim=1).float()
    return F.cross_entropy(logits, torch.zeros_like(targets))


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


def selection_probes(valid: Probes, spec: GenerativeSpec) -> Probes:
    """The validation cases checkpoints are chosen on: ``spec.valid_users`` of them, a fixed
    random subset (the same for every model of a project), or all."""
    if spec.valid_users and len(valid) > spec.valid_users:
        rows = np.sort(np.random.default_rng(12345).choice(len(valid), spec.valid_users, replace=False))
        valid = valid.subset(rows)
    return valid


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
        if spec.transition_weight > 0:
            self.model.set_transitions(split.train)
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
        self.valid = selection_probes(split.valid, spec)
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
        h, tgt, states = self.model.forward_train(inputs, targets, users, last_only=spec.train_targets == "last",
                                                  with_states=True)
        loss = sid_loss(self.model, self.trie, h, tgt, constrained=spec.constrained_loss,
                        label_smoothing=spec.label_smoothing, seen=self.seen_shares(batch))
        if spec.item_head > 0:
            loss = loss + spec.item_head * item_loss(self.model, states, tgt, spec.item_negatives)
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
