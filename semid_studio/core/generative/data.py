"""User sequences, evaluation splits and training batches for the generative recommender.

Everything here works on plain arrays (item ``idx`` integers), so the store, the benchmarks
and the tests share one code path:

- :class:`Sequences` holds every user's items in order as one ragged array (CSR layout:
  ``items[offsets[u]:offsets[u + 1]]`` is user ``u``'s sequence).
- :func:`make_split` cuts them into a training part and validation / test *probes*
  (one history -> one target item per user), leave-one-out or by a global time cut.
- :func:`training_windows` and :func:`iter_batches` turn the training part into windows of at
  most ``max_history + 1`` items where *every* position is a target (one pass trains them all),
  bucketed by length so that almost no compute is spent on padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ProjectError, SemidError
from ..wording import hint

SPLITS = ("loo", "temporal")


@dataclass
class Sequences:
    """Every user's item sequence, in time order, as one ragged array."""

    user_ids: np.ndarray  # (n_users,) object: the user's own ids
    offsets: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (n_interactions,) int64 item idx
    ts: np.ndarray  # (n_interactions,) float64

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def seq(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    def next_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (item, the item the same user took next) pair: two aligned arrays."""
        same_user = np.ones(max(0, len(self.items) - 1), dtype=bool)
        ends = self.offsets[1:-1] - 1  # each user's last position (but the last user's)
        same_user[ends[(ends >= 0) & (ends < len(same_user))]] = False
        return self.items[:-1][same_user], self.items[1:][same_user]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Sequences":
        """From ``store.interactions_frame()`` (rows already sorted by user, time, file order)."""
        if len(frame) == 0:
            raise ProjectError(f"the project has no interactions; {hint('import_interactions')}")
        users = frame["user_id"].to_numpy()
        # rows are grouped by user: a new user starts wherever the id changes
        change = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts = np.concatenate([[0], change])
        offsets = np.concatenate([starts, [len(frame)]]).astype(np.int64)
        return cls(
            user_ids=users[starts].astype(object),
            offsets=offsets,
            items=frame["item_idx"].to_numpy(np.int64),
            ts=frame["ts"].to_numpy(np.float64),
        )

    @classmethod
    def from_lists(cls, user_ids: list, seqs: list[np.ndarray], ts: list[np.ndarray] | None = None) -> "Sequences":
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, np.int64)
        if ts is None:
            times = np.zeros(len(items))
        else:
            times = np.concatenate(ts).astype(np.float64) if len(ts) else np.zeros(0)
        return cls(np.asarray(user_ids, dtype=object), offsets, items, times)


@dataclass
class Probes:
    """Evaluation cases: for user ``users[i]``, the history ``items[offsets[i]:offsets[i+1]]``
    and the item that came next, ``targets[i]``."""

    users: np.ndarray  # (n,) int64 row in Sequences
    offsets: np.ndarray  # (n + 1,) int64
    items: np.ndarray
    targets: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.targets)

    def history(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, rows: np.ndarray) -> "Probes":
        hists = [self.history(int(i)) for i in rows]
        lengths = np.array([len(h) for h in hists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.concatenate(hists) if hists else np.zeros(0, np.int64)
        return Probes(self.users[rows], offsets, items, self.targets[rows])

    def last_items(self) -> np.ndarray:
        """The last history item of every probe."""
        return self.items[self.offsets[1:] - 1]

    def repeat_share(self) -> float:
        """Share of probes whose target already occurs in their history (0 means the seen-item
        filter can only remove wrong answers)."""
        if not len(self):
            return 0.0
        owner = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        hit = np.zeros(len(self), dtype=bool)
        hit[owner[self.items == self.targets[owner]]] = True
        return float(hit.mean())


@dataclass
class Split:
    """A training part plus validation and test probes, all on the same item idx space."""

    name: str
    train: Sequences  # what models (and baselines) may learn from
    valid: Probes
    test: Probes
    info: dict

    def describe(self) -> str:
        return (f"{self.name}: {self.train.n_users} users, {len(self.train.items)} training interactions, "
                f"{len(self.valid)} validation and {len(self.test)} test cases")


def _probes(users: list[int], hists: list[np.ndarray], targets: list[int]) -> Probes:
    lengths = np.array([len(h) for h in hists], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.concatenate(hists).astype(np.int64) if hists else np.zeros(0, np.int64)
    return Probes(np.asarray(users, np.int64), offsets, items, np.asarray(targets, np.int64))


def make_split(seqs: Sequences, kind: str = "loo", *, temporal_valid: float = 0.8,
               temporal_test: float = 0.9) -> Split:
    """Cut sequences into training part, validation and test probes.

    ``loo`` (leave-one-out, the TIGER / P5 protocol): for a user with ``n >= 3`` items the
    last item is the test target (history: everything before it), the second last the
    validation target (history: everything before that) and the first ``n - 2`` items are the
    training part. Users with fewer than 3 items only contribute training data.

    ``temporal`` (global time split, no future leaks across users): interactions before the
    ``temporal_valid`` quantile of all timestamps are training data; a user's first
    interaction in ``[t_valid, t_test)`` is a validation target and their first one at or
    after ``t_test`` a test target, each with the user's whole earlier history (at least one
    item) as input.
    """
    if kind not in SPLITS:
        raise SemidError(f"unknown split '{kind}'; choose one of {', '.join(SPLITS)}")
    train_seqs, train_ts = [], []
    v_users, v_hist, v_tgt = [], [], []
    t_users, t_hist, t_tgt = [], [], []
    if kind == "loo":
        for u in range(seqs.n_users):
            s = seqs.seq(u)
            ts = seqs.ts[seqs.offsets[u] : seqs.offsets[u + 1]]
            if len(s) >= 3:
                train_seqs.append(s[:-2])
                train_ts.append(ts[:-2])
                v_users.append(u), v_hist.append(s[:-2]), v_tgt.append(int(s[-2]))
                t_users.append(u), t_hist.append(s[:-1]), t_tgt.append(int(s[-1]))
            else:
                train_seqs.append(s)
                train_ts.append(ts)
        info = {"kind": "loo"}
    else:
        if not 0 < temporal_valid < temporal_test < 1:
            raise SemidError("temporal split needs 0 < valid quantile < test quantile < 1")
        t_valid = float(np.quantile(seqs.ts, temporal_valid))
        t_test = float(np.quantile(seqs.ts, temporal_test))
        if t_test <= t_valid:
            raise SemidError("temporal split: the validation and test cut-offs fall on the same time "
                             "(too few distinct timestamps)")
        for u in range(seqs.n_users):
            s = seqs.seq(u)
            ts = seqs.ts[seqs.offsets[u] : seqs.offsets[u + 1]]
            n_train = int(np.searchsorted(ts, t_valid, side="left"))
            train_seqs.append(s[:n_train])
            train_ts.append(ts[:n_train])
            i_val = n_train
            if i_val < len(s) and ts[i_val] < t_test and i_val >= 1:
                v_users.append(u), v_hist.append(s[:i_val]), v_tgt.append(int(s[i_val]))
            i_test = int(np.searchsorted(ts, t_test, side="left"))
            if i_test < len(s) and i_test >= 1:
                t_users.append(u), t_hist.append(s[:i_test]), t_tgt.append(int(s[i_test]))
        info = {"kind": "temporal", "t_valid": t_valid, "t_test": t_test,
                "valid_quantile": temporal_valid, "test_quantile": temporal_test}
    train = Sequences.from_lists(list(seqs.user_ids), train_seqs, train_ts)
    split = Split(kind, train, _probes(v_users, v_hist, v_tgt), _probes(t_users, t_hist, t_tgt), info)
    if len(split.valid) == 0 or len(split.test) == 0:
        raise SemidError(f"the {kind} split leaves no validation or test users; "
                         "each user needs at least 3 interactions (leave-one-out)")
    split.info.update(n_train_interactions=int(len(train.items)), n_valid=len(split.valid), n_test=len(split.test))
    return split


# --------------------------------------------------------------------------- training windows


@dataclass
class Windows:
    """Training windows: ``items[offsets[i]:offsets[i+1]]`` has ``n + 1`` items; the first
    ``n`` are inputs and each input position ``t`` predicts item ``t + 1``."""

    offsets: np.ndarray
    items: np.ndarray
    users: np.ndarray  # (n_windows,) row in Sequences (for the optional user token)
    starts: np.ndarray  # (n_windows,) position of the window's first item in the user's sequence

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_targets(self) -> int:
        return int((self.lengths - 1).sum())


def training_windows(train: Sequences, max_history: int, *, last_only: bool = False) -> Windows:
    """Cut training sequences into windows of at most ``max_history + 1`` items.

    Every target of a sequence lands in exactly one window; a long sequence is cut from its
    end backwards, so the most recent targets get the longest context. With ``last_only``
    (the original TIGER recipe) each prefix of a sequence becomes its own window that trains
    only its last target — kept for comparison.
    """
    offs, chunks, users, starts = [0], [], [], []
    for u in range(train.n_users):
        s = train.seq(u)
        if len(s) < 2:
            continue
        if last_only:
            for end in range(2, len(s) + 1):
                start = max(0, end - max_history - 1)
                chunks.append(s[start:end]), users.append(u), starts.append(start)
                offs.append(offs[-1] + end - start)
            continue
        end = len(s)
        while end >= 2:
            start = max(0, end - max_history - 1)
            chunks.append(s[start:end]), users.append(u), starts.append(start)
            offs.append(offs[-1] + end - start)
            end = start + 1  # the next window ends where this one's first input is
            if start == 0:
                break
    items = np.concatenate(chunks).astype(np.int64) if chunks else np.zeros(0, np.int64)
    return Windows(np.asarray(offs, np.int64), items, np.asarray(users, np.int64), np.asarray(starts, np.int64))


@dataclass
class Batch:
    """A padded batch (right padding). ``inputs[b, t]`` is an item idx or -1;
    ``targets[b, t]`` is the item that followed it, or -1 where there is none."""

    inputs: np.ndarray  # (B, T) int64
    targets: np.ndarray  # (B, T) int64
    users: np.ndarray  # (B,) int64
    starts: np.ndarray  # (B,) position of inputs[b, 0] in the user's sequence
    last_only: bool = False

    def target_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(user, position of the input item)`` of every target, in the order of
        ``targets[targets >= 0]`` (the order :meth:`TigerModel.forward_train` returns)."""
        keep = self.targets >= 0
        users = np.broadcast_to(self.users[:, None], keep.shape)[keep]
        positions = (self.starts[:, None] + np.arange(keep.shape[1])[None, :])[keep]
        return users, positions

    @property
    def n_targets(self) -> int:
        return int((self.targets >= 0).sum())

    def take(self, rows: np.ndarray) -> "Batch":
        """The batch of these rows only (a data-parallel rank's share)."""
        return Batch(self.inputs[rows], self.targets[rows], self.users[rows], self.starts[rows], self.last_only)


def pad_histories(hists: list[np.ndarray], max_history: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last ``max_history`` items of each history; right-pad with -1.

    Returns ``(items (B, T), lengths (B,))``.
    """
    clipped = [h[-max_history:] for h in hists]
    lengths = np.array([len(h) for h in clipped], dtype=np.int64)
    out = np.full((len(clipped), max(1, int(lengths.max(initial=1)))), -1, dtype=np.int64)
    for i, h in enumerate(clipped):
        out[i, : len(h)] = h
    return out, lengths


def iter_batches(windows: Windows, batch_targets: int, rng: np.random.Generator, *,
                 last_only: bool = False) -> list[Batch]:
    """One epoch of batches, bucketed by window length.

    Windows are sorted by length (ties in random order), cut into batches of about
    ``batch_targets`` target positions each, and the batch order is shuffled: padding stays
    small and every batch carries about the same amount of learning signal.
    """
    lengths = windows.lengths
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for w in order:
        n = int(lengths[w]) - 1
        width = max(width, n)
        # cost = target slots in the padded batch (one per row when only the last is trained)
        cost = (len(current) + 1) * (1 if last_only else width)
        if current and cost > batch_targets:
            batches.append(current)
            current, width = [], n
        current.append(int(w))
    if current:
        batches.append(current)
    out = []
    for idx in rng.permutation(len(batches)):
        rows = batches[idx]
        T = int(max(lengths[r] for r in rows)) - 1
        inputs = np.full((len(rows), T), -1, dtype=np.int64)
        targets = np.full((len(rows), T), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            s = windows.items[windows.offsets[r] : windows.offsets[r + 1]]
            n = len(s) - 1
            inputs[i, :n] = s[:-1]
            if last_only:
                targets[i, n - 1] = s[-1]
            else:
                targets[i, :n] = s[1:]
        out.append(Batch(inputs, targets, windows.users[rows], windows.starts[rows], last_only))
    return out
