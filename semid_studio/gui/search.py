"""What the panels run in workers for joint generative search: list joint models, answer a
query with one, gather the strategies view's points from stored evaluations, and run the
missing evaluations.

Everything here is plain Python on a worker's own :class:`~semid_studio.core.store.ProjectStore`
(see ``context.store_task``) and returns plain data; the core does the work
(:mod:`semid_studio.core.generative.joint`, :mod:`semid_studio.core.search`). The playground's
:class:`JointModelCache` keeps the loaded joint model for its workers, so a keystroke costs one
constrained beam search, not a model load.

A *strategy point* is one joint model (one embedding strategy's SIDs, one seed) that has a
stored search evaluation and a stored recommendation evaluation (``evaluate_joint`` writes
both). The reference lines are the newest stored baselines: BM25 and dense retrieval for
search (``evaluate_search``), popularity and the Markov chain for recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from ..core.errors import SemidError
from ..core.events import NEVER, CancelToken, Message
from ..core.store import ProjectStore

JOINT_KIND = "tiger-joint"  # == core.generative.joint.JOINT_KIND (imported lazily there: torch is heavy)

#: labels of the embedding strategies (core.search.strategies.STRATEGIES) as the app shows them
STRATEGY_LABELS = {"content": "content", "search": "search-tuned", "rec": "rec-tuned", "multitask": "multi-task",
                   "fused-concat": "fused concat", "fused-svd": "fused SVD", "imported": "imported",
                   # token strategies (core.search.token_strategies): one SID set per task
                   "separate": "Separate", "prefix-share": "Prefix-share"}


@dataclass(frozen=True)
class JointInfo:
    """A joint search + rec model as the panels list it."""

    id: int
    name: str
    status: str
    step: int
    best_step: int | None
    best_metric: float | None
    task: str  # "joint" or "search"
    mix: float
    query_encoder: str
    seed: int
    preset: str | None
    quantizer_run_id: int | None
    has_best: bool
    has_last: bool
    updated: str
    select_mean: str  # how a joint-task checkpoint weighs the two tasks (JointSpec.select_mean)
    tokens: str | None = None  # token strategy ("separate", "prefix-share"); None: one shared SID table

    @property
    def resumable(self) -> bool:
        return self.has_last and self.status != "done"

    def describe(self) -> str:
        best = "" if self.best_step is None else f", best @ {self.best_step:,}"
        return f"#{self.id} {self.name} ({self.task}, {self.status}, step {self.step:,}{best})"


def list_joint_models(store: ProjectStore) -> list[JointInfo]:
    """Every joint model of the project, oldest first."""
    from ..core.generative.joint import JointSpec

    tags = store.checkpoint_tags()
    out = []
    for rec in store.list_models(JOINT_KIND):
        spec, joint = rec.spec.get("spec", {}), rec.spec.get("joint", {})
        out.append(JointInfo(rec.id, rec.name, rec.status, int(rec.step or 0), rec.best_step, rec.best_metric,
                             str(joint.get("task", "joint")), float(joint.get("mix", 0.5)),
                             str(joint.get("query_encoder", "minilm")), int(spec.get("seed", 0)),
                             rec.spec.get("preset"), rec.quantizer_run_id, (rec.id, "best") in tags,
                             (rec.id, "last") in tags, rec.updated, JointSpec.from_dict(joint).select_mean,
                             (rec.spec.get("tokens") or {}).get("strategy")))
    return out


# --------------------------------------------------------------------------- one query


class JointModelCache:
    """The one loaded joint model the playground searches with, shared by its workers
    (the GUI thread never touches the torch model). The lock makes a burst of keystrokes
    load a checkpoint once."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._model = None

    def get(self, store: ProjectStore, info: JointInfo):
        from ..core.generative.joint import load_joint

        # a new best checkpoint (training still running) changes the key: reload
        key = (str(store.path), info.id, info.best_step)
        with self._lock:
            if self._key != key:
                self._model, self._key = None, None  # free the old one first
                self._model = load_joint(store, info.id)
                self._key = key
            return self._model

    def clear(self) -> None:
        with self._lock:
            self._model, self._key = None, None


@dataclass
class JointAnswer:
    """A joint model's answer to one query, with the model that gave it."""

    text: str
    model: JointInfo
    k: int
    beam: int
    result: object  # core.search.SearchResult


def joint_query(store: ProjectStore, text: str, info: JointInfo, cache: JointModelCache, *, k: int = 10,
                beam: int = 20, cancel: CancelToken = NEVER) -> JointAnswer:
    """Answer ``text`` with joint model ``info`` (:func:`~semid_studio.core.generative.joint.joint_search`).

    Raises SemidError for an unusable query (empty, stop words only, too long) with the
    core's one-line message.
    """
    from ..core.generative.joint import joint_search
    from ..core.search import check_query

    check_query(text)  # before loading anything: a bad query answers at once
    if not info.has_best:
        raise SemidError(f"joint model #{info.id} has not reached a validation run yet: it has no checkpoint")
    loaded = cache.get(store, info)
    cancel.raise_if_cancelled()
    beam = max(int(beam), int(k))
    result = joint_search(store, text, k=k, beam=beam, loaded=loaded)
    return JointAnswer(text, info, k, beam, result)


# --------------------------------------------------------------------------- strategy points


@dataclass
class StrategyPoint:
    """One joint model placed by its stored search and rec evaluations."""

    model_id: int
    name: str
    strategy: str  # the embedding strategy of the SIDs it was trained on, or its token strategy
    seed: int
    task: str
    query_encoder: str
    quantizer_run_id: int | None
    embedding_set_id: int | None
    search: dict  # metrics of its search evaluation (recall@10, ...)
    rec: dict | None  # recall@K etc. (None: no rec evaluation, e.g. a search-only model)
    search_eval: dict
    rec_eval: dict | None

    @property
    def label(self) -> str:
        return f"{STRATEGY_LABELS.get(self.strategy, self.strategy)}, seed {self.seed}"

    def value(self, side: str, metric: str) -> float | None:
        values = self.search if side == "search" else self.rec
        v = None if values is None else values.get(metric)
        return float(v) if isinstance(v, (int, float)) else None


@dataclass
class ReferenceLine:
    """A baseline's value on one axis (search: vertical line, rec: horizontal)."""

    side: str  # "search" or "rec"
    name: str
    values: dict  # metric -> value
    evaluation_id: int
    split: str


@dataclass
class StrategiesData:
    points: list[StrategyPoint] = field(default_factory=list)
    lines: list[ReferenceLine] = field(default_factory=list)
    #: joint models with a checkpoint but no stored search evaluation yet
    unevaluated: list[JointInfo] = field(default_factory=list)
    n_joint_models: int = 0
    search_split: str | None = None
    rec_split: str | None = None

    def metrics(self, side: str) -> list[str]:
        """The Recall@K / NDCG@K names every point or line of that side has (for the axis choice)."""
        names: set[str] = set()
        for p in self.points:
            names |= {k for k, v in ((p.search if side == "search" else p.rec) or {}).items()
                      if "@" in k and isinstance(v, (int, float))}
        for line in self.lines:
            if line.side == side:
                names |= {k for k in line.values if "@" in k}
        return sorted(names, key=lambda n: (n.split("@")[0] != "recall", int(n.split("@")[1]), n))


def _mean_values(summary: dict) -> dict:
    """``{"recall@10": {"mean": ..}}`` or ``{"recall@10": 0.1}`` -> ``{"recall@10": 0.1}``."""
    out = {}
    for k, v in (summary or {}).items():
        if isinstance(v, dict) and isinstance(v.get("mean"), (int, float)):
            out[k] = float(v["mean"])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def _per_model_search(evaluation: dict) -> dict[int, dict]:
    """model id -> its search metrics in a joint search evaluation (one model or several seeds)."""
    m = evaluation.get("metrics") or {}
    if "runs" in m:
        return {int(r["model_id"]): r for r in m["runs"] if "model_id" in r}
    mid = m.get("model_id", evaluation.get("model_id"))
    return {} if mid is None else {int(mid): m}


def _per_model_rec(evaluation: dict) -> dict[int, dict]:
    """model id -> its rec metrics in a joint rec evaluation (per seed, in the order of the
    settings' models that have a rec part)."""
    settings = evaluation.get("settings") or {}
    per_seed = (evaluation.get("metrics") or {}).get("per_seed") or []
    ids = [int(m["model_id"]) for m in settings.get("models", []) if "rec_split" in m]
    return dict(zip(ids, per_seed))


def query_file_evaluations(store: ProjectStore) -> list[dict]:
    """The stored evaluations of query files from outside the project, oldest first."""
    from ..core.generative.joint.query_log import METHOD

    return [e for e in store.list_evaluations("search") if (e.get("settings") or {}).get("method") == METHOD]


def strategy_points(store: ProjectStore, query_file: int | None = None) -> StrategiesData:
    """The strategies view's points and reference lines from the project's stored evaluations.

    The newest evaluation of each kind wins (a model evaluated twice shows its latest figures).
    ``query_file``: the id of a query-file evaluation (:func:`query_file_evaluations`) whose
    figures give the search side instead of the held-out queries' (its split is the file's name).
    """
    from ..core.generative.joint.query_log import METHOD

    data = StrategiesData()
    joint = {j.id: j for j in list_joint_models(store)}
    data.n_joint_models = sum(1 for j in joint.values() if j.has_best)
    runs = {r.id: r for r in store.list_quantizer_runs()}
    sets = {e.id: e for e in store.list_embedding_sets()}
    search_of: dict[int, tuple[dict, dict]] = {}
    rec_of: dict[int, tuple[dict, dict]] = {}
    search_lines: dict[str, ReferenceLine] = {}
    rec_lines: dict[str, ReferenceLine] = {}
    for e in store.list_evaluations():  # oldest first: later ones overwrite
        settings = e.get("settings") or {}
        metrics = e.get("metrics") or {}
        method = settings.get("method")
        if e["task"] == "search" and (method == METHOD or query_file is not None):
            # the search side comes from one source: the held-out queries, or the chosen query file
            if e["id"] == query_file:
                _query_file_search(e, sets, search_of, search_lines)
                data.search_split = e["split"]
            continue
        if e["task"] == "search" and method == "joint":
            for mid, m in _per_model_search(e).items():
                search_of[mid] = (m, e)
            data.search_split = e["split"]
        elif e["task"] == "recommendation" and method == "joint":
            for mid, m in _per_model_rec(e).items():
                rec_of[mid] = (m, e)
            data.rec_split = e["split"]
        elif e["task"] == "search" and method == "bm25":
            search_lines["BM25"] = ReferenceLine("search", "BM25", _mean_values(metrics), e["id"], e["split"])
        elif e["task"] == "search" and method == "dense":
            runs_ = metrics.get("runs") or [dict(metrics, embedding_set_id=(settings.get("embedding_set_ids")
                                                                            or [None])[0])]
            for r in runs_:
                set_id = r.get("embedding_set_id")
                emb = sets.get(set_id)
                what = STRATEGY_LABELS.get(emb.strategy, emb.strategy) if emb is not None else "?"
                name = f"dense {what} (set #{set_id})"
                search_lines[name] = ReferenceLine("search", name, _mean_values(r), e["id"], e["split"])
        elif e["task"] == "recommendation":
            for base in ("popularity", "markov"):
                entry = metrics.get(base)
                if isinstance(entry, dict) and "summary" in entry:
                    name = {"popularity": "popularity", "markov": "Markov chain"}[base]
                    rec_lines[name] = ReferenceLine("rec", name, _mean_values(entry["summary"]), e["id"], e["split"])
    for mid, (search, s_eval) in sorted(search_of.items()):
        info = joint.get(mid)
        if info is None:
            continue  # the model was deleted
        run = runs.get(info.quantizer_run_id) if info.quantizer_run_id is not None else None
        emb = sets.get(run.embedding_set_id) if run is not None else None
        rec, r_eval = rec_of.get(mid, (None, None))
        # a Separate / Prefix-share model is its own row of the paper's table (two SID sets)
        strategy = info.tokens or (emb.strategy if emb is not None else "?")
        data.points.append(StrategyPoint(
            mid, info.name, strategy, info.seed, info.task, info.query_encoder,
            info.quantizer_run_id, emb.id if emb is not None else None,
            {k: v for k, v in search.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            None if rec is None else {k: float(v) for k, v in rec.items() if isinstance(v, (int, float))},
            s_eval, r_eval))
    data.unevaluated = [j for j in joint.values() if j.has_best and j.id not in search_of]
    data.lines = list(search_lines.values()) + list(rec_lines.values())
    return data


def _query_file_search(e: dict, sets: dict, search_of: dict, search_lines: dict) -> None:
    """A query-file evaluation's methods: joint models as points, BM25 and dense as lines."""
    for name, entry in (e.get("metrics") or {}).items():
        values = {**_mean_values(entry.get("summary")), "n": entry.get("n", 0)}
        if entry.get("method") == "joint" and entry.get("model_id") is not None:
            search_of[int(entry["model_id"])] = (values, e)
        elif entry.get("method") == "bm25":
            search_lines["BM25"] = ReferenceLine("search", "BM25", values, e["id"], e["split"])
        elif entry.get("method") == "dense":
            set_id = entry.get("embedding_set_id")
            emb = sets.get(set_id)
            what = STRATEGY_LABELS.get(emb.strategy, emb.strategy) if emb is not None else "?"
            label = f"dense {what} (set #{set_id})"
            search_lines[label] = ReferenceLine("search", label, values, e["id"], e["split"])


#: the hint of a bad query file in the window: the button has none of the import wizard's boxes
#: (columns, encoding) that the import's own hints point at, so it says what the button reads
QUERY_FILE_HINT = ("the button reads the file as the import detects it: columns such as 'query' and 'item_id', "
                   "UTF-8 text")


def evaluate_query_file(store: ProjectStore, path: str, *, model_ids=None, cancel: CancelToken = NEVER):
    """The GUI's "Evaluate on a query file…": :func:`semid_studio.core.generative.joint.query_log.evaluate_query_log`
    with the file read as the import reads it (format and columns detected, unknown items
    skipped and counted), every search baseline, stored as one evaluation. Errors about the file
    keep their file, line and field; their hint says what the button reads (:data:`QUERY_FILE_HINT`)."""
    from ..core.errors import InputError
    from ..core.generative.joint.query_log import evaluate_query_log

    try:
        return (yield from evaluate_query_log(store, path, model_ids=model_ids, cancel=cancel))
    except InputError as exc:
        if exc.hint:
            raise InputError(exc.message, file=exc.file, line=exc.line, field=exc.field,
                             hint=QUERY_FILE_HINT) from None
        raise


def query_file_summary(report: dict) -> str:
    """One line about a query file's evaluation, in the GUI's words."""
    f = report["file"]
    text = f"Saved evaluation #{report['id']}: {f['requests']:,} requests of {f['name']} scored"
    if f["n_dropped_unknown_items"]:
        text += f" ({f['n_dropped_unknown_items']:,} left out: their item is not in the catalogue)"
    overlap = report["leakage"]["overlap"]
    if overlap:
        text += f"; {overlap:,} are also training queries of this project, so not held out"
    methods = ", ".join(f"{name} R@10 {m['recall@10']:.3f}" for name, m in report["methods"].items()
                        if "recall@10" in m)
    return text + (f". {methods}." if methods else ".")


def describe_point(store: ProjectStore, point: StrategyPoint) -> str:
    """What made a point, as HTML: the model, its SIDs and their embeddings, the evaluations."""
    import html

    rec = store.get_model(point.model_id)
    spec, joint = rec.spec.get("spec", {}), rec.spec.get("joint", {})
    lines = [f"<b>Joint model #{rec.id} “{html.escape(rec.name)}”</b> — {rec.status} at step {rec.step:,}"
             + ("" if rec.best_step is None else f", checkpoint of step {rec.best_step:,}")]
    lines.append(f"Task <b>{html.escape(point.task)}</b>, mix {joint.get('mix')}, query encoder "
                 f"{html.escape(str(joint.get('query_encoder')))}, seed {spec.get('seed')}, preset "
                 f"{html.escape(str(rec.spec.get('preset')))}")
    tokens = rec.spec.get("tokens")
    if tokens:
        runs = tokens.get("runs", {})
        what = STRATEGY_LABELS.get(tokens.get("strategy"), str(tokens.get("strategy")))
        lines.append(f"Token strategy <b>{html.escape(what)}</b>: search decodes the SIDs of run "
                     f"#{runs.get('search')}, rec those of run #{runs.get('rec')}"
                     f" ({int(tokens.get('shared_levels', 0))} level(s) shared)")
    if point.quantizer_run_id is not None:
        try:
            run = store.load_quantizer_run(point.quantizer_run_id, with_arrays=False)
            lines.append(f"SIDs: quantiser run #{run.id} “{html.escape(run.name)}” ({run.method}, "
                         f"{run.n_levels} levels)")
        except SemidError:
            lines.append(f"SIDs: quantiser run #{point.quantizer_run_id} (no longer in the project)")
    if point.embedding_set_id is not None:
        emb = next((e for e in store.list_embedding_sets() if e.id == point.embedding_set_id), None)
        if emb is not None:
            p = emb.params or {}
            extra = ", ".join(f"{k} {p[k]}" for k in ("epochs", "steps", "train_queries", "rec_method", "pairs_per_s")
                              if k in p)
            lines.append(f"Embeddings: set #{emb.id} “{html.escape(emb.name)}” — strategy "
                         f"<b>{STRATEGY_LABELS.get(emb.strategy, emb.strategy)}</b>"
                         + (f" ({html.escape(extra)})" if extra else ""))
    s = point.search
    ks = sorted(int(k.split("@")[1]) for k in s if k.startswith("recall@"))
    lines.append(f"Search (evaluation #{point.search_eval['id']}, {point.search_eval['split']}, "
                 f"{int(s.get('n', 0)):,} queries): " + ", ".join(f"R@{k} {s[f'recall@{k}']:.4f}" for k in ks)
                 + (f", MRR {s['mrr']:.4f}" if "mrr" in s else ""))
    if point.rec is not None and point.rec_eval is not None:
        rks = sorted(int(k.split("@")[1]) for k in point.rec if k.startswith("recall@"))
        lines.append(f"Recommendation (evaluation #{point.rec_eval['id']}, split {point.rec_eval['split']}, test "
                     "users): " + ", ".join(f"R@{k} {point.rec[f'recall@{k}']:.4f}" for k in rks))
    else:
        lines.append("Recommendation: not evaluated (a search-only model has no rec side).")
    return "<br>".join(lines)


def sid_spaces(store: ProjectStore) -> list[tuple[int, str]]:
    """Quantiser runs labelled by the embedding strategy they were fitted on (newest first)."""
    sets = {e.id: e for e in store.list_embedding_sets()}
    out = []
    for run in reversed(store.list_quantizer_runs()):
        emb = sets.get(run.embedding_set_id)
        what = STRATEGY_LABELS.get(emb.strategy, emb.strategy) if emb is not None else "?"
        out.append((run.id, f"#{run.id} {what} SIDs — {run.name}"))
    return out


# --------------------------------------------------------------------------- running evaluations


def run_strategy_evaluations(store: ProjectStore, *, max_queries: int | None = 500, rec_ks=(5, 10, 20),
                             search_ks=(10, 30), cancel: CancelToken = NEVER):
    """Evaluate what the strategies view is missing, storing every report in the project:
    each joint model without a search evaluation (``evaluate_joint``: search and rec), the
    search baselines (BM25, dense with the newest text embedding set) and the rec baselines
    (popularity, Markov). ``max_queries`` evaluates a seeded sample of the held-out queries
    (stored with the report); None = all. Returns the number of evaluations written."""
    from ..core import search as S
    from ..core.generative.evaluate import evaluate_count_baselines
    from ..core.generative.joint import evaluate_joint

    data = strategy_points(store)
    written = 0
    todo = data.unevaluated
    if not todo and not data.n_joint_models:
        yield Message("no joint model with a checkpoint yet: only the baselines are evaluated", level="warning")
    for i, info in enumerate(todo, start=1):
        cancel.raise_if_cancelled()
        yield Message(f"evaluating joint model #{info.id} ({i} of {len(todo)})")
        report = yield from evaluate_joint(store, [info.id], ks=search_ks, rec_ks=rec_ks, max_queries=max_queries,
                                           bootstrap=0, save=True, cancel=cancel)
        written += len(report["ids"])
    names = {line.name for line in data.lines}
    has_heldout = heldout_count(store)[1] > 0
    if not has_heldout:
        yield Message("no held-out queries (test or validation): the search baselines need them", level="warning")
    if "BM25" not in names and has_heldout:
        cancel.raise_if_cancelled()
        yield from S.evaluate_search(store, "bm25", ks=search_ks, max_queries=max_queries, bootstrap=0, cancel=cancel)
        written += 1
    if not any(n.startswith("dense") for n in names) and has_heldout:
        cancel.raise_if_cancelled()
        try:
            from ..core.search.strategies import default_search_set

            set_id = default_search_set(store)
        except SemidError as exc:
            yield Message(f"no dense baseline: {exc}", level="warning")
        else:
            yield from S.evaluate_search(store, "dense", embedding_set_ids=[set_id], ks=search_ks,
                                         max_queries=max_queries, bootstrap=0, cancel=cancel)
            written += 1
    if not any(line.side == "rec" for line in data.lines) and store.interaction_count() > 0:
        cancel.raise_if_cancelled()
        split = "loo"
        yield Message(f"rec baselines: popularity and the Markov chain on the '{split}' test users")
        evaluate_count_baselines(store, split=split, ks=tuple(rec_ks))
        written += 1
    return written


def heldout_count(store: ProjectStore) -> tuple[str | None, int]:
    """The held-out split evaluations use, and its number of queries (None, 0 without queries)."""
    from ..core.search.queries import heldout_split

    try:
        split = heldout_split(store)
    except SemidError:
        return None, 0
    return split, int(store.query_count(split))


__all__ = ["JOINT_KIND", "JointAnswer", "JointInfo", "JointModelCache", "ReferenceLine", "STRATEGY_LABELS",
           "StrategiesData", "StrategyPoint", "describe_point", "heldout_count", "joint_query", "list_joint_models",
           "run_strategy_evaluations", "sid_spaces", "strategy_points"]
