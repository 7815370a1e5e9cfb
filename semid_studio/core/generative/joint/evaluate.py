"""Using a trained joint model: load it (:func:`load_joint`), answer one query
(:func:`joint_search`), rank query sets and histories, and evaluate both tasks
(:func:`evaluate_joint`) on the project's held-out queries and users."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...devices import resolve_device
from ...errors import ProjectError, SemidError
from ...events import NEVER, CancelToken, Message, Progress, TaskGenerator
from ...store import ModelRecord, ProjectStore
from ..metrics import ranking_metrics, summarise_runs
from ..model import TextInput, TigerModel
from ..spec import GenerativeSpec, spec_from_dict
from ..tokens import SidVocab, sid_string
from ..train import JOINT_KIND, load_split, user_tokens_for
from ..trie import SidTrie
from .spec import JointSpec
from .text import TextFeatures, encoder_name, text_features
from .train import _strategy_table
from .views import TaskView, rank_texts, task_views, use_view


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
    # (an ensemble's other members, as LoadedModel has them: a joint model is one model)
    partners: tuple = ()

    def view(self, task: str) -> TaskView:
        """The task's view, with the model's node embeddings pointed at its trie."""
        view = (self.views or {}).get(task) or TaskView(self.trie)
        use_view(self.model, view)
        return view

    def recommender(self):
        """The rec side as a :class:`~.evaluate.LoadedModel` (what recommendation code decodes with)."""
        from ..evaluate import LoadedModel

        return LoadedModel(self.record, self.spec, self.vocab, self.model, self.view("rec").trie, self.codes,
                           self.step, 0, [])


def has_joint_model(store: ProjectStore) -> bool:
    """Whether the project has a joint model with a chosen checkpoint (search can use it)."""
    return any(store.has_checkpoint(r.id, "best") for r in store.list_models(JOINT_KIND))


def pick_joint(store: ProjectStore, model_id: int | None = None) -> ModelRecord:
    from ..evaluate import pick_model

    return pick_model(store, model_id, kind=JOINT_KIND)


def load_joint(store: ProjectStore, model_id: int | None = None, *, tag: str = "best",
               device: str | None = None) -> JointModel:
    """A trained joint model ready to decode, with the trie of the current catalogue
    (items added after training are searchable through their content SIDs, as for rec)."""
    from ..evaluate import build_trie, catalogue_codes, model_content

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
    from ...search import SearchResult, check_query, item_texts, text_scripts

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
    from ...events import drive

    return drive(gen)


# --------------------------------------------------------------------------- evaluation


def rank_joint_rec(store: ProjectStore, jm: JointModel, *, k: int, beam: int | None = None,
                   exclude_history: bool = False, cancel: CancelToken = NEVER) -> TaskGenerator[tuple]:
    """The joint model's recommendations for the test users of its split: ``(ranked, split)``."""
    from ..evaluate import rank_probes

    seqs, sp = load_split(store, jm.spec.split)
    ranked = yield from rank_probes(jm.recommender(), sp.test, k=k, beam=beam or max(20, k), user_tokens=user_tokens_for(jm.vocab, seqs),
                                    exclude_history=exclude_history, cancel=cancel,
                                    stage=f"model #{jm.record.id} rec test")
    return ranked, sp


def rank_joint_search(store: ProjectStore, jm: JointModel, texts: Sequence[str], valid: np.ndarray, *, k: int,
                      beam: int, cache: bool = True, cancel: CancelToken = NEVER
                      ) -> TaskGenerator[tuple[np.ndarray, TextFeatures, float]]:
    """The joint model's top-``k`` items for query texts: ``(ranked (n, k), features, seconds)``.

    Rows where ``valid`` is False (queries that failed :func:`~semid_studio.core.search.check_query`)
    get an empty ranking. ``cache=False`` leaves the project untouched (no cached query states):
    queries from outside the project are never stored in it.
    """
    sel = np.flatnonzero(valid)
    feats = yield from text_features(store, jm.joint, [texts[i] for i in sel], encoder=jm.encoder, cache=cache,
                                     cancel=cancel)
    t0 = time.monotonic()
    ranked = np.full((len(texts), k), -1, dtype=np.int64)
    view = jm.view("search")
    chunk = 512  # a progress event and a cancel check per chunk
    stage = f"model #{jm.record.id} search"
    for start in range(0, len(sel), chunk):
        cancel.raise_if_cancelled()
        rows = np.arange(start, min(start + chunk, len(sel)))
        ranked[sel[rows]], _, _ = rank_texts(jm.model, view.trie, feats, k=k, beam=beam, rows=rows, shift=view.shift)
        yield Progress(stage, int(rows[-1]) + 1, len(sel))
    jm.view("rec")  # leave the model pointed at the rec trie, as loaded
    return ranked, feats, time.monotonic() - t0


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
    ``test``; :func:`~semid_studio.core.search.queries.heldout_split`) ranked over the full catalogue
    by constrained beam search, scored by :func:`~semid_studio.core.search.search_metrics`
    (Recall@K, NDCG@K, MRR; head / torso; asked / never asked), unusable queries counted as
    misses. Rec (``rec=True``, joint task only): the recommender's test probes on its split
    (``exclude_history``: each user's history items left out, as in :func:`.evaluate.evaluate_model`).

    Returns ``{"search": {...}, "rec": {...} or None, "settings": {...}}``.
    """
    from ...search.queries import TRAIN_SPLIT, heldout_split
    from ...search import bootstrap_ci, head_items, item_texts, search_metrics, text_scripts
    from ...search.checks import _validated
    from ...search.metrics import _summarise
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
        ranked, feats, seconds = yield from rank_joint_search(store, jm, clean, valid, k=kmax, beam=beam,
                                                              cancel=cancel)
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
