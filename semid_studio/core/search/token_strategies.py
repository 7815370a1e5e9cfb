"""Token strategies of the joint search + recommendation model (method.md section 2).

Which Semantic IDs does each task of one joint model decode? Three answers, chosen with
``semid quantize PROJECT --tokens shared|separate|prefix-share``:

- **shared** (default): one SID table (the active quantiser run) for both tasks — what
  ``semid quantize`` has always done; nothing of this module is involved.
- **separate**: one SID table per task, each quantised from that task's own embeddings (the
  search side from a search-tuned set, the rec side from a rec-tuned set), written with
  *distinct vocabulary ranges*: a search SID token is never a rec SID token. Histories are
  read as rec-SIDs, the rec task decodes rec-SIDs and the search task search-SIDs, each
  through its own trie (Penha et al.'s "Separate").
- **prefix-share**: the two tables share their first level and differ after it. Level 1 is
  residual k-means on the *fused* space (``[l2norm(search), l2norm(rec)] / sqrt 2``, the
  Fused_concat vector), so a level-1 group is coherent in both spaces; each task then
  quantises its *own residual* — its vector minus the mean of its level-1 group in its own
  space — with levels 2..L of the chosen quantiser (RQ-KMeans by default, RQ-VAE
  selectable). The shared token carries what both tasks agree on (one broad group per item,
  one token range), the deeper tokens what each task needs, and the deeper codes are real
  residual refinements of the shared one (not codes of an unrelated hierarchy glued under
  it). The level-1 range is shared; levels 2..L have distinct ranges per task.

Storage: each task's table is an ordinary quantiser run (its ``metrics["tokens"]`` says what
it is), and the project's ``meta`` row ``token_strategy`` ties them: ``{"strategy", "runs":
{"search", "rec"}, "sets": {...}, "shared_levels"}``. The rec run becomes the active run
(``semid train --task rec``, recommendations and the SID browser use it). The strategy is in
force while its rec run is the active run (:func:`active_token_strategy`): a later ``semid
quantize`` or choosing another active run ends it, without a schema change.

The model side (:func:`joint_table`): one code table of ``2 N`` *virtual rows* — row ``i`` is
item ``i``'s rec-SID, row ``N + i`` its search-SID — with per-level ranges ``[rec codes |
search codes]`` on the levels that are not shared. Item ``i`` of a history is row ``i``; a
search target for item ``i`` is row ``N + i``; each task's trie holds only its own rows, so
every result of either task is a real item of that task's table. The dedup level is a
counter inside a semantic tuple, not a semantic token: its range is shared (the tries keep
the tasks apart above it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, TaskGenerator
from ..store import ProjectStore, now_iso
from ..wording import hint


STRATEGIES = ("shared", "separate", "prefix-share")
META_KEY = "token_strategy"
# embedding strategies each side takes by default, in order of preference: the search side falls
# back to the content set (the project's encoder has a text side); the rec side needs rec vectors
TASK_SETS = {"search": ("search", "content"), "rec": ("rec",)}


@dataclass(frozen=True)
class TokenStrategy:
    """The record tying one SID table per task (stored in the project's ``meta``)."""

    strategy: str  # "separate" or "prefix-share"
    runs: dict  # {"search": run id, "rec": run id}
    sets: dict  # {"search": embedding set id, "rec": embedding set id}
    shared_levels: int  # leading levels both tables share (0: separate, 1: prefix-share)
    created: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TokenStrategy":
        return cls(str(data["strategy"]), {k: int(v) for k, v in data["runs"].items()},
                   {k: int(v) for k, v in data.get("sets", {}).items()}, int(data["shared_levels"]),
                   str(data.get("created", "")))

    def describe(self) -> str:
        return (f"{self.strategy}: search SIDs from run #{self.runs['search']} (set #{self.sets.get('search')}), "
                f"rec SIDs from run #{self.runs['rec']} (set #{self.sets.get('rec')})"
                + (f", first {self.shared_levels} level(s) shared" if self.shared_levels else
                   ", distinct vocabulary ranges"))


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise SemidError(f"unknown token strategy '{name}'; choose one of {', '.join(STRATEGIES)}")
    return name


def active_token_strategy(store: ProjectStore) -> TokenStrategy | None:
    """The project's token strategy when it is in force (its rec run is the active run), else
    None (= shared: one SID table for both tasks)."""
    data = store.get_meta(META_KEY)
    if not data:
        return None
    ts = TokenStrategy.from_dict(data)
    if store.active_run_id() != ts.runs.get("rec"):
        return None
    return ts


# --------------------------------------------------------------------------- building the tables


def _pick_set(store: ProjectStore, side: str, set_id: int | None, strategy: str) -> int:
    n_items = store.item_count()
    if set_id is not None:
        emb = store.load_embedding_set(set_id)  # raises for an unknown id
        if emb.n_items != n_items:
            raise ProjectError(f"embedding set #{set_id} covers {emb.n_items} items but the catalogue has {n_items}; "
                               "re-embed the catalogue")
        return emb.id
    sets = [e for e in store.list_embedding_sets() if e.n_items == n_items]
    for wanted in TASK_SETS[side]:
        for emb in reversed(sets):
            if emb.strategy == wanted:
                return emb.id
    raise SemidError(f"--tokens {strategy} needs a second embedding set: one for the {side} side (strategy "
                     f"'{TASK_SETS[side][0]}'), and the project has none; make one with 'semid embed PROJECT "
                     f"--strategy {TASK_SETS[side][0]}' or name a set with --{side}-set ID")


def _tag_run(store: ProjectStore, run_id: int, info: dict) -> None:
    run = store.load_quantizer_run(run_id, with_arrays=False)
    store.update_run_metrics(run_id, {**run.metrics, "tokens": info})


def build_token_strategy(
    store: ProjectStore,
    strategy: str,
    *,
    method: str = "rq-kmeans",
    spec=None,
    search_set: int | None = None,
    rec_set: int | None = None,
    label_field: str | None = None,
    name: str | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[TokenStrategy]:
    """Quantise one SID table per task and store the strategy tying them (see the module doc).

    ``strategy``: ``separate`` or ``prefix-share`` (``shared`` is :func:`quantize_project`).
    ``search_set`` / ``rec_set``: the embedding sets of each side (default: the newest
    ``search`` set, else the content set / the newest ``rec`` set). ``spec``: the quantiser
    spec, the same for both tables.
    Returns the stored :class:`TokenStrategy`; its rec run is the active run.
    """
    from .. import quantize

    check_strategy(strategy)
    if strategy == "shared":
        raise SemidError("the shared token strategy is one SID table: use quantize_project")
    if spec is None:
        spec = quantize.PRESETS[method]["default"]
    method = quantize.method_of(spec)
    sets = {"search": _pick_set(store, "search", search_set, strategy),
            "rec": _pick_set(store, "rec", rec_set, strategy)}
    if sets["search"] == sets["rec"]:
        raise SemidError(f"--tokens {strategy}: the search and rec sides are the same embedding set "
                         f"#{sets['search']}; give each task its own (--search-set / --rec-set)")
    yield Message(f"token strategy {strategy}: search side embedding set #{sets['search']}, rec side #{sets['rec']}; "
                  f"{method} {spec.levels} x {spec.codebook_size}, seed {spec.seed}")
    label = name or f"{method} {spec.levels}x{spec.codebook_size} seed {spec.seed}"
    if strategy == "separate":
        runs = {}
        for side in ("search", "rec"):  # rec last: it becomes the active run
            runs[side] = yield from quantize.quantize_project(
                store, method=method, spec=spec, embedding_set_id=sets[side], label_field=label_field,
                name=f"separate/{side}: {label} on set #{sets[side]}", cancel=cancel)
        shared = 0
    else:
        if spec.levels < 2:
            raise SemidError("--tokens prefix-share shares level 1 and needs at least 2 semantic levels "
                             f"(got --levels {spec.levels})")
        runs = yield from _prefix_share_runs(store, spec, sets, label_field, label, cancel)
        shared = 1
    ts = TokenStrategy(strategy, runs, sets, shared, now_iso())
    with store.atomic():
        for side in ("search", "rec"):
            _tag_run(store, runs[side], {"strategy": strategy, "task": side, "shared_levels": shared,
                                         "partner_run": runs["rec" if side == "search" else "search"]})
        store.set_active_run(runs["rec"])
        store.set_meta(META_KEY, ts.to_dict())
    yield Message(f"token strategy {ts.describe()}")
    return ts


def _prefix_share_runs(store: ProjectStore, spec, sets: dict, label_field: str | None, label: str,
                       cancel: CancelToken) -> TaskGenerator[dict]:
    """Level 1 shared (k-means on the fused space), levels 2..L from each task's own residual."""
    from .. import quantize, sids
    from ..quantize.rq_kmeans import _cluster_means

    vecs = {side: quantize.prepare_vectors(store.load_embedding_set(sets[side]).vectors, spec.normalize)
            for side in ("search", "rec")}
    # the fused space: each side unit length (neither dominates by scale), halves weighed equally
    fused = np.concatenate([quantize.prepare_vectors(vecs["search"], True),
                            quantize.prepare_vectors(vecs["rec"], True)], axis=1) / np.sqrt(2.0)
    coarse = quantize.RQKMeansSpec(
        levels=1, codebook_size=spec.codebook_size, seed=spec.seed, normalize=False, unique_last_level=False,
        coarse_dims=getattr(spec, "coarse_dims", 32), threads=spec.threads,
        backend=getattr(spec, "backend", "faiss"))
    yield Message(f"prefix-share: level 1 by k-means on the fused space ({fused.shape[1]} dims)")
    level1 = (yield from quantize.fit_quantizer(fused, coarse, cancel)).codes[:, 0]
    labels = sids.store_label_values(store, label_field) if label_field else None
    runs = {}
    for side in ("search", "rec"):
        cancel.raise_if_cancelled()
        x = vecs[side]
        # the task's own level-1 codewords: the means of the shared groups in this task's space
        means = _cluster_means(x, level1, np.zeros((spec.codebook_size, x.shape[1]), np.float32))
        residual = (x - means[level1]).astype(np.float32)
        deep = dataclasses.replace(spec, levels=spec.levels - 1, normalize=False)
        if isinstance(spec, quantize.RQKMeansSpec):
            # levels 2..L as a plain fit would treat them: no principal-subspace first level,
            # balanced when the spec balances its deep levels, last-level matching done below
            # with the shared code in the prefix
            deep = dataclasses.replace(deep, coarse_dims=0, unique_last_level=False,
                                       balanced="all" if spec.balanced in ("deep", "all") else "none")
        yield Message(f"prefix-share: levels 2..{spec.levels} of the {side} table on its own residuals")
        fitted = yield from quantize.fit_quantizer(residual, deep, cancel)
        codes = np.concatenate([level1[:, None], fitted.codes], axis=1).astype(np.int64)
        info = dict(fitted.info)
        if isinstance(spec, quantize.RQKMeansSpec) and spec.unique_last_level:
            last = fitted.codebooks[-1]
            before_last = residual - sum((fitted.codebooks[j][fitted.codes[:, j]]
                                          for j in range(len(fitted.codebooks) - 1)), np.zeros_like(residual))
            codes[:, -1], moved = quantize.unique_last_codes(codes[:, :-1], before_last, last, codes[:, -1])
            info["last_level_reassigned"] = moved
        recon = means[level1] + fitted.reconstructions
        if isinstance(spec, quantize.RQKMeansSpec):  # codebooks reconstruct the (matched) codes
            recon = means[level1] + sum(fitted.codebooks[j][codes[:, j + 1]] for j in range(spec.levels - 1))
        table = sids.add_dedup_level(codes)
        metrics = sids.code_health(table, spec.levels, spec.codebook_size, x, recon, labels, label_field)
        metrics.update({k: v for k, v in info.items() if k != "final_epoch"})
        metrics["method"] = quantize.method_of(spec)
        books = {"level_1": means.astype(np.float32)}
        books.update({f"level_{j + 2}": b.astype(np.float32) for j, b in enumerate(fitted.codebooks)})
        # an RQ-VAE here encodes residuals, not item vectors: stored under its own prefix so that
        # nothing mistakes it for a whole-vector encoder (encode_with_run refuses such a run)
        state = {f"residual/{k}": v for k, v in fitted.model_state.items()} or None
        with store.atomic():
            runs[side] = store.save_quantizer_run(
                name=f"prefix-share/{side}: {label} on set #{sets[side]}", embedding_set_id=sets[side],
                method=quantize.method_of(spec), spec=quantize.spec_to_dict(spec), seed=spec.seed, codes=table,
                sid_strings=sids.sid_strings(table), metrics=metrics, codebooks=books, model_state=state)
        yield Message(f"saved quantiser run #{runs[side]} ({side} table): {sids.health_summary(metrics)}")
    return runs


# --------------------------------------------------------------------------- the model's view


@dataclass
class JointTable:
    """One code table for a joint model under a token strategy (see the module doc)."""

    codes: np.ndarray  # (2 N, L + 1) virtual rows: rec-SIDs of items 0..N-1, then their search-SIDs
    level_sizes: tuple[int, ...]
    offsets: dict  # per task, (L + 1,) what is added to the task's stored codes on each level
    n_items: int
    shared_levels: int

    def task_codes(self, task: str) -> np.ndarray:
        """The task's SIDs as the model writes them (item idx order)."""
        return self.codes[: self.n_items] if task == "rec" else self.codes[self.n_items :]

    def shift(self, task: str) -> int:
        """Virtual row of item idx ``i`` in ``task``: ``i + shift``."""
        return 0 if task == "rec" else self.n_items

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """Item-indexed ``values`` (N, ...) on the virtual rows (2 N, ...): rec rows, then search rows."""
        if len(values) != self.n_items:
            raise SemidError(f"expected one row per item ({self.n_items}), got {len(values)}")
        return np.concatenate([values, values])


def task_tables(store: ProjectStore, runs: dict, n_items: int | None = None) -> dict[str, np.ndarray]:
    """The stored SID tables of each task (first ``n_items`` rows), checked to cover the same items."""
    out = {}
    for side in ("search", "rec"):
        run = store.load_quantizer_run(int(runs[side]))
        out[side] = np.asarray(run.codes if n_items is None else run.codes[:n_items], dtype=np.int64)
    if out["search"].shape != out["rec"].shape:
        raise ProjectError(f"the search table (run #{runs['search']}, shape {out['search'].shape}) and the rec table "
                           f"(run #{runs['rec']}, shape {out['rec'].shape}) differ in items or levels; "
                           f"{hint('quantize_tokens', strategy='...')}")
    return out


def joint_table(rec: np.ndarray, search: np.ndarray, shared_levels: int, dedup_headroom: int = 4) -> JointTable:
    """Both tasks' tables as one table of virtual rows with per-task vocabulary ranges."""
    from ..sids import default_level_sizes

    rec, search = np.asarray(rec, np.int64), np.asarray(search, np.int64)
    if rec.shape != search.shape or rec.ndim != 2:
        raise SemidError(f"the two SID tables must have the same shape, got {rec.shape} and {search.shape}")
    n, L1 = rec.shape
    if not 0 <= shared_levels < L1 - 1:
        raise SemidError(f"shared_levels must be in 0..{L1 - 2}, got {shared_levels}")
    if shared_levels and not (rec[:, :shared_levels] == search[:, :shared_levels]).all():
        row = int(np.flatnonzero((rec[:, :shared_levels] != search[:, :shared_levels]).any(axis=1))[0])
        raise ProjectError(f"item idx {row} has different shared codes in the two tables; the token strategy's "
                           f"runs do not belong together ({hint('quantize_tokens', strategy='prefix-share')})")
    size_r, size_s = default_level_sizes(rec, dedup_headroom), default_level_sizes(search, dedup_headroom)
    sizes, off_s = [], np.zeros(L1, np.int64)
    for level in range(L1):
        if level < shared_levels or level == L1 - 1:  # shared range: the shared prefix and the dedup counter
            sizes.append(max(size_r[level], size_s[level]))
        else:  # distinct ranges: [rec codes | search codes]
            off_s[level] = size_r[level]
            sizes.append(size_r[level] + size_s[level])
    codes = np.concatenate([rec, search + off_s[None, :]])
    return JointTable(codes, tuple(int(s) for s in sizes), {"rec": np.zeros(L1, np.int64), "search": off_s},
                      n, shared_levels)


__all__ = [
    "META_KEY", "STRATEGIES", "JointTable", "TokenStrategy", "active_token_strategy", "build_token_strategy",
    "check_strategy", "joint_table", "task_tables",
]
