"""Scoring on a query log outside the project (``semid evaluate PROJECT --task search --queries FILE``).

A query log (a file of request text -> the item it asks for) is read and checked exactly as
``semid import --queries`` reads and checks it (:func:`semid_studio.core.importing.read_queries`:
same readers, formats, column mapping and encoding; errors name the file, line and field), then
scored by the joint model and every search baseline (BM25, dense retrieval over each embedding
set that has a text side) with the search metrics of the in-project evaluation
(:func:`semid_studio.core.search.search_metrics`: Recall@K, NDCG@K, MRR; head / torso, asked /
never asked).

The log's queries are **never stored in the project and never reach a training step**: nothing
is written but one evaluation row (``task="search"``, ``split`` = the file's name, settings
``method="query-file"``) that names the file and its sha256 and holds the figures, never a
query text. The joint model's query states are computed without the project's cache. The
leakage guard (:func:`training_overlap`) checks the log's texts against the project's training
queries (and against the (text, item) fingerprints every fine-tuned embedding set recorded)
and reports the overlap: such requests were seen in training, so their scores are not held out.

Requests whose item is not in the catalogue are dropped and counted (``on_unknown="skip"``,
the default here) or stop the evaluation (``"abort"``), as in the import.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ...errors import SemidError, UnknownItemsError
from ...events import NEVER, CancelToken, Message, TaskGenerator
from ...search.queries import TRAIN_SPLIT
from ...store import ProjectStore
from ...wording import hint


#: the ``method`` of a stored query-file evaluation (its settings); other readers of search
#: evaluations (the strategies view's held-out points) leave such rows alone
METHOD = "query-file"


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class QueryLog:
    """A query file read and checked against the catalogue; held in memory only."""

    path: Path
    sha256: str
    reader: str
    rows: int  # data rows in the file
    texts: list[str]
    targets: np.ndarray  # item idx of each kept request
    dropped: dict[str, int] = field(default_factory=dict)  # why -> rows left out
    unknown_ids: list[str] = field(default_factory=list)  # a few item ids not in the catalogue
    splits: dict[str, int] = field(default_factory=dict)  # the file's own split column, when it has one
    mapping: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_unknown(self) -> int:
        return int(self.dropped.get("unknown item", 0))

    def info(self) -> dict:
        """What the stored evaluation says about the file (never its queries)."""
        return {"path": str(self.path), "name": self.name, "sha256": self.sha256, "reader": self.reader,
                "mapping": dict(self.mapping), "rows": self.rows, "requests": len(self.texts),
                "dropped": dict(self.dropped), "n_dropped_unknown_items": self.n_unknown,
                "unknown_item_examples": list(self.unknown_ids), "file_splits": dict(self.splits)}


def read_query_log(store: ProjectStore, path: str | Path, *, format: str = "auto", mapping: dict | None = None,
                   encoding: str | None = None, on_unknown: str = "skip",
                   cancel: CancelToken = NEVER) -> TaskGenerator[QueryLog]:
    """Read and check a query file as the import does (nothing is written).

    Raises
    ------
    InputError
        A bad file (one line naming the file, line and field).
    UnknownItemsError
        Requests for items not in the catalogue, with ``on_unknown="abort"``.
    """
    from ... import importing

    path = Path(path)
    if not path.is_file():
        raise SemidError(f"{path}: no such query file")
    try:
        prep = yield from importing.read_queries(store, path, format=format, mapping=mapping, encoding=encoding,
                                                 on_unknown=on_unknown, cancel=cancel)
    except UnknownItemsError as exc:
        exc.hint = hint("skip_unknown")  # not the import's "to import the rest": nothing is imported here
        exc.args = (exc.format(),)
        raise
    frame = prep.frame
    splits = {}
    if "split" in prep.mapping:
        splits = {str(k): int(v) for k, v in frame["split"].value_counts().sort_index().items()}
    return QueryLog(path, file_sha256(path), prep.table.reader, prep.n_rows, frame["text"].astype(str).tolist(),
                    frame["item_idx"].to_numpy(np.int64), dict(prep.skipped), list(prep.unknown_ids), splits,
                    dict(prep.mapping), list(prep.notes))


def training_overlap(store: ProjectStore, texts: Sequence[str], targets: Sequence[int]) -> dict:
    """The leakage guard for queries from outside the project.

    Counts the requests whose text (case and outer spaces ignored) is one of the project's
    training queries, and those whose (text, item) pair is among the training queries a
    fine-tuned embedding set recorded when it was made (they may since have left the project).

    Returns
    -------
    dict
        ``n_requests``, ``n_training_queries`` (the project's train split), ``same_text_as_training``,
        ``same_pair_as_embedding_training``, ``overlap`` (requests caught by either), ``rows``
        (their positions in ``texts``; not stored with the evaluation).
    """
    from ...search.artifacts import load_artifact
    from ...search.fine_tune import _pair_hash

    norm = [str(t).strip().lower() for t in texts]
    train = {str(t).strip().lower() for (t,) in store.db.execute("SELECT text FROM queries WHERE split = ?",
                                                                 [TRAIN_SPLIT])}
    by_text = np.array([t in train for t in norm], dtype=bool)
    learned = [load_artifact(store, e.id, "train_queries") for e in store.list_embedding_sets()]
    learned_hash = np.concatenate([a[0]["pair_hash"].astype(np.uint64) for a in learned if a is not None]
                                  or [np.zeros(0, np.uint64)])
    by_pair = np.isin(_pair_hash(texts, targets), learned_hash) if len(texts) else np.zeros(0, bool)
    either = by_text | by_pair
    return {"n_requests": len(norm), "n_training_queries": int(store.query_count(TRAIN_SPLIT)),
            "same_text_as_training": int(by_text.sum()), "same_pair_as_embedding_training": int(by_pair.sum()),
            "overlap": int(either.sum()), "rows": np.flatnonzero(either).tolist()}


def _dense_sets(store: ProjectStore, embedding_set_ids: Sequence[int] | None) -> list:
    """The embedding sets dense retrieval can search: those asked for, else every set of the
    current catalogue with a text side (as the in-project search evaluation can take)."""
    from ...search.strategies import has_text_side

    sets = store.list_embedding_sets()
    if embedding_set_ids:
        known = {e.id: e for e in sets}
        missing = [i for i in embedding_set_ids if i not in known]
        if missing:
            raise SemidError(f"the project has no embedding set #{missing[0]} "
                             f"(it has {', '.join(f'#{i}' for i in sorted(known)) or 'none'})")
        return [known[i] for i in embedding_set_ids]
    n = store.item_count()
    return [e for e in sets if has_text_side(e.strategy, e.model) and e.n_items == n]


def _joint_records(store: ProjectStore, model_ids: Sequence[int] | None) -> list:
    from .evaluate import has_joint_model, pick_joint

    if model_ids:
        return [pick_joint(store, m) for m in model_ids]
    return [pick_joint(store)] if has_joint_model(store) else []


def evaluate_query_log(
    store: ProjectStore,
    path: str | Path,
    *,
    model_ids: Sequence[int] | None = None,
    baselines: bool = True,
    embedding_set_ids: Sequence[int] | None = None,
    ks: Sequence[int] = (10, 30),
    beam: int | None = None,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    on_unknown: str = "skip",
    bootstrap: int = 1000,
    save: bool = True,
    device: str | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[dict]:
    """Score a query file that is not in the project: the joint model(s) and every search baseline.

    Parameters
    ----------
    store
        The open project (items; a joint model and embedding sets when there are some).
    path
        The query file: any file ``semid import --queries`` reads (CSV/TSV, JSONL(.gz), Parquet, ...).
    model_ids
        Joint models to score; default the newest joint model with a chosen checkpoint, and
        none (baselines only, with a note) when the project has no joint model.
    baselines
        Also score BM25 and dense retrieval over ``embedding_set_ids`` (default: every
        embedding set of the catalogue with a text side).
    ks, beam
        Cut-offs (MRR is cut at the largest) and the joint model's beam (default max(30, K)).
    format, mapping, encoding
        How to read the file, as for the import.
    on_unknown
        ``skip`` (default): requests for items not in the catalogue are dropped and counted;
        ``abort``: they stop the evaluation (:class:`~semid_studio.core.errors.UnknownItemsError`).
    bootstrap
        Resamples for the 95% intervals over requests (0: none).
    save
        Store the report as one evaluation row (the file's name and sha256, the figures; never
        the queries). Nothing else is written to the project in any case.
    cancel
        Checked between methods and inside encoding and decoding.

    Returns
    -------
    dict
        ``id`` (the evaluation, or None), ``file`` (path, name, sha256, rows, requests, dropped...),
        ``leakage`` (:func:`training_overlap`), ``methods`` (name -> ``n``, ``recall@K``, ``ndcg@K``,
        ``mrr``, breakdowns, ``ci95``), ``notes`` and ``settings``.
    """
    from ... import search as S
    from ...search.checks import _validated

    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise SemidError("cut-offs K must be positive integers")
    kmax = max(ks)
    beam = beam or max(30, kmax)
    if beam < kmax:
        raise SemidError(f"beam width {beam} is smaller than the largest K ({kmax})")
    records = _joint_records(store, model_ids)  # a bad --model fails before the file is read
    log = yield from read_query_log(store, path, format=format, mapping=mapping, encoding=encoding,
                                    on_unknown=on_unknown, cancel=cancel)
    notes: list[str] = []
    if log.dropped:
        what = ", ".join(f"{n} with {why}" for why, n in log.dropped.items())
        examples = f" (e.g. {', '.join(repr(i) for i in log.unknown_ids)})" if log.unknown_ids else ""
        notes.append(f"dropped {sum(log.dropped.values())} of {log.rows} requests: {what}{examples}")
    if not log.texts:
        raise SemidError(f"{log.path}: no request left to score ({notes[0] if notes else 'the file is empty'})")
    leakage = training_overlap(store, log.texts, log.targets)
    if leakage["overlap"]:  # no example text: the note is stored, the file's queries never are
        notes.append(f"{leakage['overlap']} of {len(log.texts)} requests are also training queries of the project "
                     f"(same text): their scores are not held out")
    if not records:
        notes.append("the project has no joint model with a chosen checkpoint: baselines only")

    n_items = store.item_count()
    targets = log.targets
    texts_all, template = S.item_texts(store)
    scripts = S.text_scripts(texts_all)
    clean, valid, reasons = _validated(log.texts, scripts)
    if reasons:
        notes.append(f"{int((~valid).sum())} requests are unusable "
                     f"({', '.join(f'{n} {r}' for r, n in reasons.items())}); they count as misses")
    head = S.head_items(store)
    asked_items = np.zeros(n_items, dtype=bool)
    asked_items[store.queries_frame(split=TRAIN_SPLIT)["item_idx"].to_numpy(np.int64)] = True
    groups = {"asked": asked_items[targets], "never_asked": ~asked_items[targets]}
    yield Message(f"scoring {len(log.texts)} requests of {log.name} (not stored in the project) over {n_items} "
                  f"items: {len(records)} joint model(s)" + (" and the search baselines" if baselines else ""))
    for note in notes:
        yield Message(note, level="warning")

    methods: dict[str, dict] = {}
    settings: dict = {"method": METHOD, "file": log.info(), "ks": list(ks), "beam": beam,
                      "n_test": len(log.texts), "n_queries": len(log.texts), "n_rejected": int((~valid).sum()),
                      "rejected": reasons, "n_head_items": int(head.sum()), "bootstrap": bootstrap,
                      "leakage": {k: v for k, v in leakage.items() if k != "rows"},
                      "stored": "the file's name, path and sha256 and these figures; never its queries",
                      "models": [], "sets": [], "notes": notes,
                      "groups": {"asked": "target item has training queries", "never_asked": "target item has none"}}

    def score(name: str, ranked: np.ndarray, **extra) -> dict:
        m = S.search_metrics(ranked, targets, ks, head, groups)
        m["ci95"] = S.bootstrap_ci(ranked, targets, ks, n_boot=bootstrap, seed=0)
        m.update(extra)
        methods[name] = m
        yield Message(f"{name} on {log.name}: " + ", ".join(f"R@{k} {m[f'recall@{k}']:.4f}" for k in ks)
                      + f", MRR {m['mrr']:.4f}")
        return m

    yield from _score_joint_models(store, records, score, clean, valid, kmax=kmax, beam=beam, settings=settings,
                                   device=device, cancel=cancel)
    if baselines:
        cancel.raise_if_cancelled()
        yield from _score_baselines(store, score, texts_all, template, clean, scripts, kmax=kmax,
                                    embedding_set_ids=embedding_set_ids, settings=settings, cancel=cancel)

    if not methods:
        raise SemidError("nothing to score the query file with: the project has no joint model, and no baseline "
                         "was asked for or possible")
    eval_id = None
    if save:
        # the Evaluation panel reads one row per method from {"method": {"summary": {...}}}
        stored = {name: {"summary": {k: v for k, v in m.items() if k != "n" and isinstance(v, float)},
                         **{k: v for k, v in m.items() if not isinstance(v, float)}}
                  for name, m in methods.items()}
        eval_id = store.save_evaluation(name=f"query file {log.name}", task="search", split=log.name,
                                        settings=settings, metrics=stored,
                                        model_id=records[0].id if records else None)
    return {"id": eval_id, "file": log.info(), "leakage": leakage, "methods": methods, "notes": notes,
            "settings": settings}


def _score_joint_models(store: ProjectStore, records: list, score: Callable, clean: list[str], valid: np.ndarray,
                        *, kmax: int, beam: int, settings: dict, device: str | None,
                        cancel: CancelToken) -> TaskGenerator[None]:
    """Rank the requests with each joint model and ``score`` them; each model's facts go into
    ``settings["models"]``."""
    from .evaluate import load_joint, rank_joint_search

    for record in records:
        cancel.raise_if_cancelled()
        jm = load_joint(store, record.id, device=device)
        ranked, feats, seconds = yield from rank_joint_search(store, jm, clean, valid, k=kmax, beam=beam,
                                                              cache=False, cancel=cancel)
        # the share of requests cut at the encoder's length, as the in-project evaluation reports it
        truncation = {**feats.info(), "max_query_tokens": int(jm.joint.max_query_tokens)}
        yield from score(f"joint #{record.id}", ranked, method="joint", model_id=record.id,
                         query_truncation=truncation)
        yield Message(f"joint #{record.id}: {feats.n_truncated} of {len(feats)} requests "
                      f"({feats.share_truncated:.1%}) cut at {jm.joint.max_query_tokens} word pieces")
        settings["models"].append({"model_id": record.id, "seed": jm.spec.seed, "step": jm.step,
                                   "task": jm.joint.task, "query_encoder": jm.joint.query_encoder,
                                   "tokens": jm.tokens["strategy"] if jm.tokens else "shared",
                                   "query_truncation": feats.info(), "search_seconds": round(seconds, 2)})


def _score_baselines(store: ProjectStore, score: Callable, texts_all: list[str], template: str, clean: list[str],
                     scripts: set[str], *, kmax: int, embedding_set_ids: Sequence[int] | None, settings: dict,
                     cancel: CancelToken) -> TaskGenerator[None]:
    """Rank the requests with BM25 and dense retrieval over each embedding set and ``score``
    them; what could not be scored is a note in ``settings["notes"]``."""
    from ... import search as S

    notes = settings["notes"]
    if any(t.strip() for t in texts_all):
        ranked, info = S.rank_bm25(texts_all, clean, kmax, known_scripts=scripts)
        yield from score("bm25", ranked, method="bm25", empty_rankings=info["empty_rankings"])
        settings.update(template=template, bm25=info["bm25"])
    else:
        notes.append("the items have no text: no BM25 baseline")
        yield Message(notes[-1], level="warning")
    sets = _dense_sets(store, embedding_set_ids)
    if not sets:
        notes.append("no embedding set with a text side: no dense baseline")
        yield Message(notes[-1], level="warning")
    for emb in sets:
        cancel.raise_if_cancelled()
        ranked, info = yield from S.rank_dense(store, emb.id, clean, kmax, known_scripts=scripts, cancel=cancel)
        yield from score(f"dense #{emb.id} {emb.strategy}", ranked, method="dense", embedding_set_id=emb.id)
        settings["sets"].append({k: v for k, v in info.items() if k not in ("n_rejected", "rejected")})


def format_report(report: dict) -> str:
    """The report as a short table, one line per method (the CLI's output)."""
    f = report["file"]
    ks = report["settings"]["ks"]
    cols = [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks] + ["mrr"]
    width = max([len(n) for n in report["methods"]] + [6])
    lines = [f"{f['name']} (sha256 {f['sha256'][:12]}): {f['rows']} rows, {f['requests']} requests scored, "
             f"{f['n_dropped_unknown_items']} dropped (item not in the catalogue)",
             f"{'method':<{width}}  {'n':>6}  " + "  ".join(f"{c:>9}" for c in cols)]
    for name, m in report["methods"].items():
        lines.append(f"{name:<{width}}  {m['n']:>6}  " + "  ".join(f"{m[c]:9.4f}" for c in cols))
    for name, m in report["methods"].items():
        t = m.get("query_truncation")
        if t:
            lines.append(f"{name}: {t['n_truncated']} of {t['n']} requests ({t['share_truncated']:.1%}) cut at the "
                         f"encoder's {t['max_query_tokens']} word pieces")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


__all__ = [
    "METHOD", "QueryLog", "evaluate_query_log", "file_sha256", "format_report", "read_query_log", "training_overlap",
]
