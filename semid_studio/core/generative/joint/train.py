"""Training a joint model: :class:`JointTrainer` (the recommender's
:class:`~semid_studio.core.generative.trainer.Trainer` on mixed rec / search batches) and
:func:`train_joint`, the task over a project (checkpoints, resume, cancel, the token strategy's
tables)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...devices import autocast, resolve_device
from ...errors import ProjectError, SemidError
from ...events import NEVER, CancelToken, Message, TaskGenerator
from ...store import ProjectStore
from ...wording import hint
from ..distributed import SINGLE, Dist
from ..model import TextInput
from ..seen import SeenIndex
from ..spec import GenerativeSpec, spec_from_dict
from ..tokens import SidVocab
from ..train import (CHECKPOINT_S, JOINT_KIND, leased_loop, load_split, make_vocab, model_lease, resume_trainer,
                     same_spec, training_content, user_tokens_for)
from ..trainer import Trainer, sid_loss
from ..trie import SidTrie
from .data import SearchData, search_data
from .recipe import resolve_recipe
from .spec import JointSpec, selection_label
from .text import TextFeatures, encoder_name, sentence_encoder, text_input
from .views import TaskView, rank_texts, task_views, use_view


class JointTrainer(Trainer):
    """:class:`Trainer` with a text side: each step mixes search pairs into the batch."""

    some_unused = True  # a search-only model never reads its history-side weights

    def __init__(self, spec: GenerativeSpec, joint: JointSpec, vocab: SidVocab, codes: np.ndarray, split,
                 data: SearchData, text: TextInput, device="cpu", user_tokens: np.ndarray | None = None,
                 table=None, content: np.ndarray | None = None, dist: Dist = SINGLE) -> None:
        """``table``: a :class:`~semid_studio.core.search.token_strategies.JointTable` (Separate /
        Prefix-share; ``codes`` is then its virtual-row table), or None for one shared SID table."""
        if spec.item_head > 0:
            raise SemidError("spec field 'item_head' is for recommendation models (semid train --task rec); "
                             "a joint model does not have one yet")
        self.joint, self.data = joint, data
        # search's share of the loss (and of the batch's targets unless rec_targets is set)
        self.search_weight = 1.0 if joint.task == "search" else joint.mix
        self.n_search = max(1, int(round(spec.batch_targets * self.search_weight)))
        self.n_rec = 0 if joint.task == "search" else (joint.rec_targets or max(1, spec.batch_targets - self.n_search))
        super().__init__(spec, vocab, codes, split, device, user_tokens, text=text, content=content, dist=dist)
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
            from ..data import iter_batches

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
        self.begin_step()
        q_rows, q_targets, item_feats, i_rows, i_targets = self._search_rows()
        batch = self.next_batch() if self.n_rec else None
        rec_part, rec_weight = self.share(batch) if batch is not None else (None, 0.0)
        # this rank's share of the search pairs, weighted like the rec rows (Trainer.share)
        n_search = len(q_rows) + len(i_rows)
        pairs, real = self.my_rows(n_search)
        search_weight = 1.0
        if self.dist.active:
            search_weight = self.dist.world * len(pairs) / max(1, n_search) if real else 0.0
        targets = np.concatenate([q_targets, i_targets])[pairs]
        local_q, local_i = pairs[pairs < len(q_rows)], pairs[pairs >= len(q_rows)] - len(q_rows)
        with autocast(self.device, self.spec.precision):
            loss = self.loss_fn(rec_part, rec_weight, q_rows[local_q], i_rows[local_i], item_feats, targets,
                                search_weight)
        self.optimise(loss)
        self.state.step += 1
        if self.n_rec:
            self.state.batch_in_epoch += 1
        return self.dist.total(float(loss.detach())) / self.dist.world, n_search + (batch.n_targets if batch is not None else 0)

    def local_loss(self, batch, rec_weight: float, q_rows: np.ndarray, i_rows: np.ndarray, item_feats,
                   targets: np.ndarray, search_weight: float) -> torch.Tensor:
        """The step's loss on this rank's rec rows and search pairs (requests, then item texts)."""
        spec = self.spec
        rec_loss = None
        if batch is not None:
            inputs = torch.from_numpy(batch.inputs).to(self.device)
            rec_targets = torch.from_numpy(batch.targets).to(self.device)
            users = None
            if spec.user_bins > 0 and self.user_tokens is not None:
                users = torch.from_numpy(self.user_tokens[batch.users]).to(self.device)
            h, tgt = self.model.forward_train(inputs, rec_targets, users)
            rec_loss = sid_loss(self.model, use_view(self.model, self.views["rec"]), h, tgt,
                                constrained=spec.constrained_loss, label_smoothing=spec.label_smoothing,
                                seen=self.seen_shares(batch))
        # the search pairs: requests, then (with index_share) item texts, one loss over both
        t = torch.from_numpy(targets).to(self.device)
        hs, ts = [], []
        if len(q_rows):
            f, n = self.data.train.batch(q_rows, self.device)
            h, tgt = self.model.forward_search(f, n, t[: len(q_rows)])
            hs.append(h), ts.append(tgt)
        if len(i_rows) and item_feats is not None:
            f, n = item_feats.batch(i_rows, self.device)
            h, tgt = self.model.forward_search(f, n, t[len(q_rows):])
            hs.append(h), ts.append(tgt)
        h, tgt = (hs[0], ts[0]) if len(hs) == 1 else (torch.cat(hs), torch.cat(ts))
        # each task's loss is the mean over its targets, weighted by ``mix`` (search) and
        # 1 - mix (rec): with the default batch split that is the plain per-target mean, and
        # ``rec_targets`` changes how many rec targets a step sees, not rec's share of the
        # gradient; each task's softmax runs over its own trie (one trie when shared)
        search = sid_loss(self.model, use_view(self.model, self.views["search"]), h, tgt,
                          constrained=spec.constrained_loss, label_smoothing=spec.label_smoothing)
        loss = self.search_weight * (search if search_weight == 1.0 else search * search_weight)
        if rec_loss is not None:
            loss = loss + (1.0 - self.search_weight) * (rec_loss if rec_weight == 1.0 else rec_loss * rec_weight)
        return loss

    def validate(self, probes=None, ks=(10,)) -> dict[str, float]:
        from ...search import search_metrics

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
        rows = self.dist.rows(len(self.data.dev))  # each rank its share of the dev queries
        ranked, _, _ = rank_texts(self.model, use_view(self.model, view), self.data.dev, k=k,
                                  beam=max(k, self.joint.search_beam), shift=view.shift, rows=rows)
        ranked = self.dist.gather_rows(ranked, len(self.data.dev))
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
    from ...search.token_strategies import active_token_strategy

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
    from ...search.token_strategies import joint_table, task_tables

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


def _model_to_resume(store: ProjectStore, spec: GenerativeSpec, joint: JointSpec, resume: int | bool | None,
                     dist: Dist) -> int | None:
    """The joint model to continue (None: a new one): the one asked for, else (unless ``resume``
    is False) an unfinished one of the same settings. Rank 0 decides and claims it first; the
    other ranks are told."""
    model_id: int | None = None
    if isinstance(resume, int) and not isinstance(resume, bool):
        rec = store.get_model(resume)
        if rec.kind != JOINT_KIND:
            raise ProjectError(f"model #{resume} is a '{rec.kind}' model, not a joint search + rec model")
        if rec.status == "done":
            raise SemidError(f"model #{resume} has finished its schedule ({rec.step} steps); start a new one with --new")
        model_id = resume
    elif resume is not False and dist.is_main:
        model_id = _resumable(store, spec, joint)
    if dist.is_main and model_id is not None:
        store.claim(model_lease(model_id), f"model #{model_id}")  # before reading its checkpoint
    if not dist.is_main:
        # rank 0 goes first: its set-up may write the query states' cache (and the recipe's
        # embedding sets) that the others then read
        model_id = int(dist.from_main(0)[0]) or None
    return model_id


def _sid_table(store: ProjectStore, spec: GenerativeSpec, joint: JointSpec,
               model_id: int | None) -> TaskGenerator[tuple]:
    """What to train on: ``(spec, joint, run, vocab, codes, tokens, table)``. A resumed model
    keeps its own settings, SID run and vocabulary; a new one takes the active run, through the
    project's token strategy when one is in force (``tokens`` / ``table``; None: one shared table)."""
    tokens: dict | None = None  # the token strategy (None: one shared SID table)
    table = None
    if model_id is not None:
        rec = store.get_model(model_id)
        spec, joint = spec_from_dict(rec.spec["spec"]), JointSpec.from_dict(rec.spec["joint"])
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
        from ...search.token_strategies import active_token_strategy

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
    return spec, joint, run, vocab, codes, tokens, table


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
    max_call_steps: int | None = None,
    checkpoint_s: float | None = CHECKPOINT_S,
    cancel: CancelToken = NEVER,
    dist: Dist = SINGLE,
    fit_schedule: bool = False,
) -> TaskGenerator[int]:
    """Train (or resume) a joint search + recommendation model on the active SID table.

    Same contract as :func:`.train.train_model` (checkpoints ``best`` chosen on validation —
    here the dev queries, and for ``task="joint"`` the geometric mean of rec validation and
    search dev (``select_mean``) — and ``last``, also every ``checkpoint_s`` seconds; resume;
    cancel; time and step budgets; the model leased to this process; several processes under
    ``torchrun`` with ``dist``; ``fit_schedule``). Strategy names in ``joint``
    (``encoder_model="search"``, ``item_vectors="rec"``: the laptop preset's recipe) are turned
    into the project's embedding sets first, made when missing (:func:`.recipe.resolve_recipe`).
    Returns the model id.
    """
    joint = joint or JointSpec()
    recipe: dict = {}
    if dist.is_main and not (isinstance(resume, int) and not isinstance(resume, bool)):
        # before looking for a model to resume: a stored model holds the sets it was given
        spec, joint, recipe = yield from resolve_recipe(store, spec, joint, cancel=cancel)
    model_id = _model_to_resume(store, spec, joint, resume, dist)
    if model_id is None and not dist.is_main:  # rank 0 has made what was missing by now
        spec, joint, recipe = yield from resolve_recipe(store, spec, joint, make=False, cancel=cancel)
    spec, joint, run, vocab, codes, tokens, table = yield from _sid_table(store, spec, joint, model_id)
    encoder = encoder_name(store, joint)
    data = yield from search_data(store, joint, vocab.n_items, encoder=encoder, cancel=cancel)
    if dist.active and dist.is_main:
        dist.from_main(model_id or 0)  # the others may start their set-up now (see above)
    text = text_input(joint, data.train, sentence_encoder(store, encoder).tokenizer.vocab_size)
    seqs, split = load_split(store, spec.split)
    dev = dist.device if dist.active else resolve_device(device)
    yield Message(f"{split.describe()}; SIDs from quantiser run #{run.id}; task {joint.task}, "
                  f"{'mix ' + format(joint.mix, 'g') + ' search, ' if joint.task == 'joint' else ''}"
                  f"query encoder {joint.query_encoder} ({encoder}); device {dev}")
    content, content_info = training_content(store, spec, run, vocab.n_items)
    if content is not None and table is not None:
        content = table.per_row(content)
    trainer = JointTrainer(spec, joint, vocab, codes, split, data, text, dev, user_tokens_for(vocab, seqs), table,
                           content, dist=dist)
    if model_id is None and not dist.is_main:
        model_id = int(dist.from_main(0)[0])
        history: list[dict] = []
    elif model_id is None:
        record = {"spec": spec.to_dict(), "joint": joint.to_dict(), "vocab": vocab.to_dict(), "text": text.to_dict(),
                  "preset": preset, "n_parameters": trainer.model.n_parameters(), "split_info": split.info,
                  "queries": data.info, "targets_per_step": {"search": trainer.n_search, "rec": trainer.n_rec}}
        if tokens is not None:
            record["tokens"] = tokens
        if content_info is not None:
            record["content"] = content_info
        if recipe:
            record["recipe"] = recipe
        model_id = store.create_model(
            name=name or f"joint-{joint.task}-{joint.query_encoder}-{preset or 'custom'}-seed{spec.seed}"
                         + (f"-{tokens['strategy']}" if tokens else ""),
            kind=JOINT_KIND, quantizer_run_id=run.id, spec=record,
        )
        store.claim(model_lease(model_id), f"model #{model_id}")
        dist.from_main(model_id)
        history = []
        yield Message(f"model #{model_id}: {trainer.model.n_parameters():,} parameters; per step "
                      f"{trainer.n_search} search + {trainer.n_rec} rec targets")
    else:
        history = resume_trainer(store, model_id, trainer)
        yield Message(f"resuming joint model #{model_id} at step {trainer.state.step}")
    yield from leased_loop(store, model_id, trainer, history, max_minutes, checkpoint_s, cancel, max_call_steps,
                           fit_schedule)
    return model_id
