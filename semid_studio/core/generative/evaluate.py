"""Evaluation and recommendation on a project file.

- :func:`load_model` rebuilds a trained model (the checkpoint chosen on validation) with the
  trie of the *current* catalogue: items added after training get Semantic IDs from their
  content (:func:`catalogue_codes`) and become recommendable without retraining.
- :func:`evaluate_model` ranks the whole catalogue for every test user with constrained beam
  search, for one or several training seeds (mean and spread), next to popularity, a
  first-order Markov chain and (optionally) SASRec on the same split and metric code, and
  stores the report with its exact settings in the project.
- :func:`recommend` turns a history of the user's own item ids into ranked items.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, Progress, TaskGenerator
from ..store import ModelRecord, ProjectStore
from .baselines import SASREC_VARIANTS, Markov, Popularity, SASRec, SASRecSpec
from .data import Probes, Split
from .decode import Decoded, beam_search, sample
from .metrics import DEFAULT_KS, category_entropy, ranking_metrics, summarise_runs
from .model import TigerModel
from .spec import GenerativeSpec, spec_from_dict
from .tokens import SidVocab, sid_string
from ..devices import resolve_device
from .train import JOINT_KIND, MODEL_KIND, load_split, user_tokens_for
from .trie import SidTrie
from ..wording import hint


@dataclass
class LoadedModel:
    record: ModelRecord
    spec: GenerativeSpec
    vocab: SidVocab
    model: TigerModel
    trie: SidTrie
    codes: np.ndarray  # (n_catalogue, L + 1): trained items' SIDs, then cold-start items'
    step: int
    n_cold: int  # items added after training that got an SID from their content
    skipped: list[int]  # items with no SID (no embedding, or a collision group too large)
    # an ensemble's other members (spec.members > 1), ranked with ``model`` by beam_search
    partners: list[TigerModel] = field(default_factory=list)


#: per model kind: what it is called in messages, and the command that trains one
_KIND_WORDS = {MODEL_KIND: ("generative recommender", "generative model", "train"),
               JOINT_KIND: ("joint search + rec model", "joint search model", "train_joint")}


def pick_model(store: ProjectStore, model_id: int | None = None, *, kind: str = MODEL_KIND) -> ModelRecord:
    """The model asked for (checked to be of ``kind``), or the newest one of ``kind`` that has
    a checkpoint."""
    what, short, command = _KIND_WORDS[kind]
    if model_id is not None:
        rec = store.get_model(model_id)
        if rec.kind != kind:
            raise ProjectError(f"model #{model_id} is a '{rec.kind}' model, not a {what}")
        return rec
    for rec in reversed(store.list_models(kind)):
        if store.has_checkpoint(rec.id, "best"):
            return rec
    raise ProjectError(f"{store.path}: has no trained {short} yet; {hint(command)}")


def catalogue_codes(store: ProjectStore, run_id: int, n_trained: int, vocab: SidVocab
                    ) -> tuple[np.ndarray, list[str], list[int]]:
    """SIDs of the whole current catalogue for a model trained on the first ``n_trained`` items.

    Items added later (cold start) are encoded from their content with the model's quantiser
    run (:func:`semid_studio.core.quantize.encode_with_run`) and given dedup codes after the
    existing items of their tuple. Returns ``(codes, warnings, skipped idx)``; items that
    cannot get an SID are left out of the trie (``codes`` rows stay -1) and reported.
    """
    run = store.load_quantizer_run(run_id)
    codes = np.asarray(run.codes[:n_trained], dtype=np.int64)
    n_now = store.item_count()
    if n_now <= n_trained:
        return codes, [], []
    new = np.arange(n_trained, n_now)
    warnings: list[str] = []
    if len(run.codes) >= n_now:
        # the SID table itself already covers the new items (re-quantised with this run's codebooks)
        new_codes = np.asarray(run.codes[n_trained:n_now], dtype=np.int64)
    else:
        from ..quantize import encode_with_run

        new_codes = None
        vectors = catalogue_vectors(store, run.embedding_set_id, n_now)
        if vectors is not None:
            semantic = encode_with_run(run, vectors[n_trained:n_now])
            # dedup code: rank after every earlier item with the same semantic tuple
            counts: dict[tuple, int] = {}
            for row in codes[:, :-1]:
                key = tuple(int(c) for c in row)
                counts[key] = counts.get(key, 0) + 1
            dedup = np.zeros(len(semantic), dtype=np.int64)
            for i, row in enumerate(semantic):
                key = tuple(int(c) for c in row)
                dedup[i] = counts.get(key, 0)
                counts[key] = dedup[i] + 1
            new_codes = np.concatenate([semantic.astype(np.int64), dedup[:, None]], axis=1)
        if new_codes is None:
            warnings.append(f"{len(new)} items added after training have no embedding in the model's embedding "
                            f"space yet; {hint('embed')} to make them recommendable")
            return codes, warnings, new.tolist()
    fits = (new_codes < np.asarray(vocab.level_sizes)[None, :]).all(axis=1)
    skipped = new[~fits].tolist()
    if skipped:
        warnings.append(f"{len(skipped)} new items fall in a collision group larger than the model's dedup level "
                        "allows; retrain to make them recommendable")
    full = np.full((n_now, codes.shape[1]), -1, dtype=np.int64)
    full[:n_trained] = codes
    full[new[fits]] = new_codes[fits]
    return full, warnings, skipped


def catalogue_vectors(store: ProjectStore, set_id: int, n_now: int, *, partial: bool = False
                      ) -> np.ndarray | None:
    """Vectors of the whole current catalogue (``n_now`` items) in the space of embedding set
    ``set_id``: that set when it covers them, else the newest set made the same way (model,
    template, width, strategy) that does; None when there is none (run 'semid embed'), or with
    ``partial`` the set's own, shorter, vectors."""
    base = store.load_embedding_set(set_id)
    if base.n_items >= n_now:
        return np.asarray(base.vectors[:n_now])
    for emb in reversed(store.list_embedding_sets()):
        if emb.n_items == n_now and emb.model == base.model and emb.template == base.template \
                and emb.dim == base.dim and emb.strategy == base.strategy:
            return np.asarray(store.load_embedding_set(emb.id).vectors)
    return np.asarray(base.vectors) if partial else None


def model_content(store: ProjectStore, rec: ModelRecord, n_rows: int) -> np.ndarray | None:
    """Content vectors for a model that reads them (``rec.spec["content"]``), one row per item
    of the current catalogue (``n_rows``); items without a vector get zeros (they have no SID
    either, so they are never decoded). None for a model that reads none."""
    info = rec.spec.get("content")
    if not info:
        return None
    # partial: when no set covers the newer items, only the trained ones have vectors (the newer
    # ones have no SID either)
    vectors = catalogue_vectors(store, int(info["embedding_set_id"]), n_rows, partial=True)
    if vectors.shape == (n_rows, int(info["dim"])) and vectors.dtype == np.float32:
        return vectors  # the usual case: no second copy (1.5 GB at a million items)
    out = np.zeros((n_rows, int(info["dim"])), dtype=np.float32)
    n = min(len(vectors), n_rows)
    out[:n] = vectors[:n]
    return out


def load_model(store: ProjectStore, model_id: int | None = None, *, tag: str = "best",
               device: str | None = None) -> LoadedModel:
    """A trained model ready to decode, with the trie of the current catalogue."""
    rec = pick_model(store, model_id)
    spec = spec_from_dict(rec.spec["spec"])
    vocab = SidVocab.from_dict(rec.spec["vocab"])
    ckpt = store.load_checkpoint(rec.id, tag)
    if ckpt is None:
        raise ProjectError(f"model #{rec.id} has no '{tag}' checkpoint yet (it has not reached a validation run)")
    codes, warnings, skipped = catalogue_codes(store, rec.quantizer_run_id, vocab.n_items, vocab)
    dev = resolve_device(device)
    info = rec.spec.get("content")
    # an ensemble's checkpoint holds every member's weights, each under "member<i>."
    parts = member_weights(ckpt.weights, spec.members)
    models = []
    for weights in parts:
        model = TigerModel(replace(spec, members=1), vocab, content_dim=int(info["dim"]) if info else 0).to(dev)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
        model.eval()
        models.append(model)
    step = ckpt.step
    del ckpt, parts, weights  # copied into the models: at a million items each copy of the weights is ~1.5 GB
    ok = (codes >= 0).all(axis=1)
    # rows without an SID get a harmless placeholder in the model's table and stay out of the trie
    safe = np.where(ok[:, None], codes, 0)
    content = model_content(store, rec, len(codes))  # read after the checkpoint is gone (memory)
    for model in models:
        model.set_catalogue(safe, content)
    del content
    trie = build_trie(safe, vocab, ok)
    if spec.node_output:
        # per-node output embeddings exist for the training catalogue's prefixes only
        node_map = trie.node_map(SidTrie.build(codes[: vocab.n_items], vocab.level_sizes))
        for model in models:
            model.set_node_maps(node_map)
    return LoadedModel(rec, spec, vocab, models[0], trie.to(dev), codes, step,
                       int(ok[vocab.n_items:].sum()), skipped, partners=models[1:])


def member_weights(weights: dict, members: int) -> list[dict]:
    """One weight dict per member: the checkpoint itself for a single model; for an ensemble
    (``members`` > 1) the ``member<i>.``-prefixed tensors of each member, prefix removed."""
    if members <= 1:
        return [weights]
    out = []
    for i in range(members):
        prefix = f"member{i}."
        part = {name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)}
        if not part:
            raise ProjectError(f"the ensemble's checkpoint has no weights for member {i + 1} of {members}")
        out.append(part)
    return out


def build_trie(codes: np.ndarray, vocab: SidVocab, keep: np.ndarray | None = None) -> SidTrie:
    """Trie over the items in ``keep`` (all by default), leaves mapped to item idx."""
    if keep is None or keep.all():
        return SidTrie.build(codes, vocab.level_sizes)
    rows = np.flatnonzero(keep)
    return SidTrie.build(codes[rows], vocab.level_sizes, items=rows)


# --------------------------------------------------------------------------- evaluation


def rank_probes(lm: LoadedModel, probes: Probes, *, k: int, beam: int, batch_size: int = 256,
                user_tokens: np.ndarray | None = None, exclude_history: bool = False, cancel: CancelToken = NEVER,
                stage: str = "ranking") -> TaskGenerator[np.ndarray]:
    """Constrained beam-search top-k for every probe (a generator: progress per batch);
    ``exclude_history`` leaves each user's own history items out of their list."""
    out = []
    n = len(probes)
    for start in range(0, n, batch_size):
        cancel.raise_if_cancelled()
        rows = range(start, min(n, start + batch_size))
        hists = [probes.history(i) for i in rows]
        users = None if user_tokens is None else user_tokens[probes.users[start : start + batch_size]]
        out.append(beam_search(lm.model, lm.trie, hists, beam=beam, k=k, users=users,
                               exclude=hists if exclude_history else None, partners=lm.partners).items)
        yield Progress(stage, min(n, start + batch_size), n)
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def _group(store: ProjectStore, rec: ModelRecord) -> list[ModelRecord]:
    """Models trained with the same spec (except the seed) on the same SID run: several seeds."""
    base = dict(rec.spec["spec"])
    base.pop("seed", None)
    out = []
    for other in store.list_models(MODEL_KIND):
        spec = dict(other.spec.get("spec", {}))
        spec.pop("seed", None)
        if spec == base and other.quantizer_run_id == rec.quantizer_run_id \
                and store.has_checkpoint(other.id, "best"):
            out.append(other)
    return out


def evaluate_model(
    store: ProjectStore,
    model_ids: list[int] | None = None,
    *,
    split: str | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
    beam: int | None = None,
    baselines: tuple[str, ...] = ("popularity", "markov"),
    sasrec_spec: SASRecSpec | None = None,
    sasrec_minutes: float | None = None,
    exclude_history: bool = False,
    device: str | None = None,
    save: bool = True,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[dict]:
    """Full-catalogue Recall@K / NDCG@K of the generative model and baselines on the test split.

    Parameters
    ----------
    model_ids
        Models to evaluate, one per training seed; by default the newest generative model and
        every other model trained with the same spec except the seed (mean and spread are
        reported over them).
    split
        ``loo`` or ``temporal``; must be the split the models were trained on (default: theirs).
    ks
        Cut-offs (default 5, 10, 20).
    beam
        Beam width (default: max(20, max K)).
    baselines
        Any of ``popularity``, ``markov``, ``sasrec`` (full softmax), ``sasrec-ss`` (sampled
        softmax, 256 negatives), fitted on the same training part.
    exclude_history
        The seen-item filter: leave each test user's history items out of every method's list
        (the model's beams and the baselines' scores alike). Right where the next item is never
        a repeat (e.g. Amazon review data); the report records it.
    save
        Store the report (with every setting) in the project's evaluations.

    Returns
    -------
    dict
        ``{"settings": ..., "models": {name: {"per_seed": [...], "summary": {...}}}, "evaluation_id": id}``.
    """
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] <= 0:
        raise SemidError("--k needs positive cut-offs, e.g. 5,10,20")
    known = ("popularity", "markov", *SASREC_VARIANTS)
    unknown = set(baselines) - set(known)
    if unknown:
        raise SemidError(f"unknown baseline(s) {sorted(unknown)}; choose from {', '.join(known)}")
    kmax = max(ks)
    beam = beam or max(20, kmax)
    if beam < kmax:
        raise SemidError(f"beam width {beam} is smaller than the largest K ({kmax})")
    if model_ids:
        records = [pick_model(store, m) for m in model_ids]
    else:
        records = _group(store, pick_model(store))
    kinds = {r.spec["spec"]["split"] for r in records}
    if split is None:
        split = records[0].spec["spec"]["split"]
    if kinds != {split}:
        raise SemidError(f"the model(s) were trained on the '{'/'.join(sorted(kinds))}' split, not '{split}'; "
                         f"{hint('train_split', split=split)}")
    seqs, sp = load_split(store, split)
    repeats = sp.test.repeat_share()
    yield Message(f"{sp.describe()}; evaluating {len(records)} model(s) {[r.id for r in records]} "
                  f"(beam {beam}, K = {', '.join(map(str, ks))}"
                  f"{', history items left out' if exclude_history else ''}); "
                  f"{repeats:.1%} of test targets repeat an item of their history")
    report: dict = {"models": {}}
    per_seed, seeds, valid_runs = [], [], []
    for rec in records:
        lm = load_model(store, rec.id, device=device)
        tokens = user_tokens_for(lm.vocab, seqs)
        t0 = time.monotonic()
        ranked = yield from rank_probes(lm, sp.test, k=kmax, beam=beam, user_tokens=tokens,
                                        exclude_history=exclude_history, cancel=cancel, stage=f"model #{rec.id} test")
        seconds = time.monotonic() - t0
        m = ranking_metrics(ranked, sp.test.targets, ks)
        m["users_per_s"] = len(sp.test) / max(seconds, 1e-9)
        per_seed.append(m)
        seeds.append(lm.spec.seed)
        valid_runs.append({"model_id": rec.id, "best_step": rec.best_step, "best_valid": rec.best_metric,
                           "select_metric": lm.spec.select_metric})
        yield Message(f"model #{rec.id} (seed {lm.spec.seed}): " + _fmt(m, ks))
    report["models"]["tiger"] = {"per_seed": per_seed, "seeds": seeds, "summary": summarise_runs(per_seed),
                                 "selection": valid_runs}
    n_items = store.item_count()
    for name in baselines:
        cancel.raise_if_cancelled()
        if name not in SASREC_VARIANTS:
            report["models"][name] = count_baseline(name, sp, n_items, ks, exclude_history=exclude_history)
            yield Message(f"{name}: " + _fmt(report["models"][name]["per_seed"][0], ks))
        else:
            # one fit per seed of the models, chosen on validation NDCG@10 like the models
            spec = (sasrec_spec if name == "sasrec" and sasrec_spec else SASREC_VARIANTS[name])
            runs = []
            for seed in seeds:
                model = yield from SASRec(n_items, replace(spec, seed=seed), device=str(resolve_device(device))).fit(
                    sp, max_minutes=sasrec_minutes, cancel=cancel)
                mm = ranking_metrics(model.recommend(sp.test, kmax, exclude_history=exclude_history),
                                     sp.test.targets, ks)
                runs.append(mm)
                yield Message(f"{name} (seed {seed}): " + _fmt(mm, ks))
            report["models"][name] = {"per_seed": runs, "seeds": seeds, "summary": summarise_runs(runs),
                                      "spec": asdict(spec)}
    rec0 = records[0]
    report["settings"] = {
        "split": split, "split_info": sp.info, "ks": list(ks), "beam": beam, "constrained": True,
        "model_ids": [r.id for r in records], "seeds": seeds, "quantizer_run_id": rec0.quantizer_run_id,
        "preset": rec0.spec.get("preset"), "spec": rec0.spec["spec"], "checkpoint": "best (chosen on validation)",
        "baselines": list(baselines), "n_items": n_items, "n_test": len(sp.test),
        "exclude_history": bool(exclude_history), "test_repeat_share": repeats,
    }
    if save:
        report["evaluation_id"] = store.save_evaluation(
            name=f"tiger #{', #'.join(str(r.id) for r in records)} on {split}", task="recommendation", split=split,
            settings=report["settings"], metrics=report["models"], model_id=rec0.id)
    return report


def count_baseline(name: str, sp: Split, n_items: int, ks: tuple[int, ...], *,
                   exclude_history: bool = False) -> dict:
    """Popularity or the first-order Markov chain, fitted on the split's training part and
    tested on its test users, in the report's ``{"per_seed", "summary"}`` form."""
    ranker = {"popularity": Popularity, "markov": Markov}[name](n_items).fit(sp.train)
    m = ranking_metrics(ranker.recommend(sp.test, max(ks), exclude_history=exclude_history), sp.test.targets, ks)
    return {"per_seed": [m], "summary": summarise_runs([m])}


def evaluate_count_baselines(store: ProjectStore, *, split: str = "loo", ks: tuple[int, ...] = DEFAULT_KS,
                             save: bool = True) -> dict:
    """Popularity and the Markov chain alone (no generative model), stored as a recommendation
    report: the reference lines of views that compare models trained elsewhere."""
    ks = tuple(sorted({int(k) for k in ks}))
    _seqs, sp = load_split(store, split)
    models = {name: count_baseline(name, sp, store.item_count(), ks) for name in ("popularity", "markov")}
    settings = {"method": "baselines", "split": split, "split_info": sp.info, "ks": list(ks),
                "baselines": list(models), "model_ids": [], "seeds": [], "n_items": store.item_count(),
                "n_test": len(sp.test)}
    report = {"settings": settings, "models": models}
    if save:
        report["evaluation_id"] = store.save_evaluation(name=f"rec baselines on {split}", task="recommendation",
                                                        split=split, settings=settings, metrics=models)
    return report


def _fmt(m: dict, ks) -> str:
    return ", ".join(f"R@{k} {m[f'recall@{k}']:.4f} N@{k} {m[f'ndcg@{k}']:.4f}" for k in ks)


# --------------------------------------------------------------------------- recommendation


def history_to_idx(store: ProjectStore, item_ids: list[str], *, skip_unknown: bool = False) -> np.ndarray:
    """The user's item ids -> item idx, with clear errors for empty or unknown input."""
    ids = [str(i).strip() for i in item_ids if str(i).strip()]
    if not ids:
        raise SemidError("the history is empty; give at least one item id (e.g. --history ITEM1,ITEM2)")
    index = store.item_index()
    unknown = [i for i in ids if i not in index]
    if unknown and (not skip_unknown or len(unknown) == len(ids)):
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        what = "none of the history's items is" if len(unknown) == len(ids) else f"{len(unknown)} history item(s) are"
        raise SemidError(f"{what} in the catalogue: {shown}")
    return np.asarray([index[i] for i in ids if i in index], dtype=np.int64)


#: below this share of repeated interactions, a history item in a list of recommendations is a wasted slot
REPEAT_SHARE_TO_KEEP_HISTORY = 0.01


def leave_out_history_by_default(store: ProjectStore) -> bool:
    """True where (almost) nobody in the project's interactions takes an item twice."""
    return store.repeat_share() < REPEAT_SHARE_TO_KEEP_HISTORY


def recommend(
    store: ProjectStore,
    history: list[str],
    *,
    model_id: int | None = None,
    k: int = 10,
    beam: int = 20,
    temperature: float | None = None,
    seed: int = 0,
    exclude_history: bool | None = None,
    skip_unknown: bool = False,
    device: str | None = None,
    loaded: LoadedModel | None = None,
) -> list[dict]:
    """Top-``k`` items after a history of item ids (oldest first).

    ``exclude_history`` None leaves the history's items out where the project's users never
    repeat an item (:func:`leave_out_history_by_default`).

    ``temperature`` switches from beam search to sampling K distinct items with that
    temperature (deterministic for a ``seed``). Returns dicts with rank, item_id, title, sid
    and score (the summed log-probability of the SID, plus the item head's and the transition
    prior's parts for models with them: :func:`.decode.score_meaning`; sampling keys when
    sampling).
    """
    if k <= 0:
        raise SemidError("k must be at least 1")
    if temperature is None and beam < k:
        raise SemidError(f"the beam width ({beam}) must be at least k ({k})")
    if temperature is not None and temperature <= 0:
        raise SemidError("temperature must be positive")
    idx = history_to_idx(store, history, skip_unknown=skip_unknown)
    lm = loaded or load_model(store, model_id, device=device)
    if exclude_history is None:
        exclude_history = leave_out_history_by_default(store)
    exclude = [idx] if exclude_history else None
    users = None
    if lm.vocab.user_bins > 0:
        users = np.asarray([0], dtype=np.int64)  # an anonymous history: no user token
    if temperature is None:
        dec: Decoded = beam_search(lm.model, lm.trie, [idx], beam=beam, k=k, exclude=exclude, users=users,
                                   partners=lm.partners)
    else:
        dec = sample(lm.model, lm.trie, [idx], k=k, temperature=temperature, seed=seed, beam=max(beam, k),
                     exclude=exclude)
    items = dec.items[0]
    keep = items >= 0
    records = store.get_items(items[keep])
    out = []
    for rank_, (rec, score, codes) in enumerate(zip(records, dec.scores[0][keep], dec.codes[0][keep]), start=1):
        out.append({"rank": rank_, "item_id": rec["item_id"], "title": rec.get("title"), "sid": sid_string(codes),
                    "score": float(score), "idx": int(rec["idx"])})
    return out


def diversity(lm: LoadedModel, probes: Probes, labels: np.ndarray, *, k: int = 10, temperature: float | None = None,
              seed: int = 0, beam: int = 20, batch_size: int = 256) -> float:
    """Mean category entropy of the top-K lists (TIGER's Entropy@K), beam or sampled."""
    lists = []
    for start in range(0, len(probes), batch_size):
        hists = [probes.history(i) for i in range(start, min(len(probes), start + batch_size))]
        if temperature is None:
            lists.append(beam_search(lm.model, lm.trie, hists, beam=beam, k=k, partners=lm.partners).items)
        else:
            lists.append(sample(lm.model, lm.trie, hists, k=k, temperature=temperature, seed=seed + start).items)
    return category_entropy(np.concatenate(lists), labels)


def model_summary(store: ProjectStore, rec: ModelRecord) -> dict:
    return {"id": rec.id, "name": rec.name, "status": rec.status, "step": rec.step, "best_step": rec.best_step,
            "best_metric": rec.best_metric, "split": rec.spec.get("spec", {}).get("split"),
            "preset": rec.spec.get("preset"), "seed": rec.spec.get("spec", {}).get("seed")}


__all__ = ["LoadedModel", "load_model", "evaluate_model", "recommend", "history_to_idx", "rank_probes",
           "catalogue_codes", "diversity", "pick_model", "build_trie", "Split"]
