"""Fitting a quantiser on a project: :func:`fit_quantizer` (either kind, on arrays),
:func:`quantize_project` (the embeddings of a project in, a stored SID table out) and
:func:`encode_with_run` (codes for new vectors from a stored run)."""

from __future__ import annotations

import numpy as np

from .. import sids
from ..errors import ProjectError, SemidError
from ..events import NEVER, CancelToken, Message, TaskGenerator
from ..store import ProjectStore, QuantizerRun
from ..wording import hint
from .residual import FittedQuantizer, prepare_vectors, residual_encode, thread_limit
from .rq_kmeans import fit_rq_kmeans
from .rq_vae import _build_rqvae, _rqvae_encode, fit_rq_vae
from .spec import RQKMeansSpec, RQVAESpec, Spec, _check_method, sized_spec, spec_from_dict, spec_to_dict


def fit_quantizer(vectors: np.ndarray, spec: Spec, cancel: CancelToken = NEVER,
                  inplace: bool = False) -> TaskGenerator[FittedQuantizer]:
    """Fit the quantiser the spec's type names (RQ-KMeans or RQ-VAE) on ``vectors``
    (``inplace``: normalise the caller's float32 array instead of a copy; see :func:`fit_rq_kmeans`)."""
    if not isinstance(spec, (RQKMeansSpec, RQVAESpec)):
        raise TypeError(f"not a quantiser spec: {type(spec).__name__}")
    is_vae = isinstance(spec, RQVAESpec)
    with thread_limit(spec.threads, torch_too=is_vae):
        if is_vae:
            return (yield from fit_rq_vae(vectors, spec, cancel, inplace))
        return (yield from fit_rq_kmeans(vectors, spec, cancel, inplace))


def method_of(spec: Spec) -> str:
    return "rq-vae" if isinstance(spec, RQVAESpec) else "rq-kmeans"


def encode_with_run(run: QuantizerRun, vectors: np.ndarray) -> np.ndarray:
    """Semantic codes ``(n, L)`` for (new) vectors from a stored run, without refitting.

    Every level takes the nearest codeword of the residual (an RQ-VAE's encoder is rebuilt
    from the stored spec and weights first). For the run's own items this reproduces the
    stored codes except where the fit deliberately moved items off their nearest codeword
    (balanced levels, the collision-aware last level). The dedup level is not assigned here:
    it depends on the other items sharing the tuple.
    """
    if not run.codebooks:
        raise ProjectError(f"quantiser run #{run.id} has no codebooks stored; it cannot encode new items")
    spec = spec_from_dict(run.method, run.spec)
    books = [np.asarray(run.codebooks[k], dtype=np.float32)
             for k in sorted(run.codebooks, key=lambda name: int(name.split("_")[-1]))]
    x = prepare_vectors(vectors, spec.normalize)
    if run.method == "rq-kmeans":
        if x.shape[1] != books[0].shape[1]:
            raise SemidError(f"vectors have {x.shape[1]} dims but run #{run.id} was fitted on {books[0].shape[1]}")
        coarse = {k: np.asarray(v, dtype=np.float32) for k, v in run.model_state.items() if k.startswith("coarse_")}
        return residual_encode(x, books, coarse or None)[0]
    import torch

    weight = run.model_state.get("encoder.0.weight")
    if weight is None:
        raise ProjectError(f"quantiser run #{run.id} has no RQ-VAE weights stored")
    if x.shape[1] != weight.shape[1]:
        raise SemidError(f"vectors have {x.shape[1]} dims but run #{run.id} was trained on {weight.shape[1]}")
    model = _build_rqvae(int(weight.shape[1]), spec)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in run.model_state.items()})
    model.eval()
    return _rqvae_encode(model, torch.from_numpy(x), books)[1]


def quantize_project(
    store: ProjectStore,
    *,
    method: str = "rq-kmeans",
    spec: Spec | None = None,
    embedding_set_id: int | None = None,
    label_field: str | None = None,
    name: str | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Fit a quantiser on a project's embeddings and store the run as the active SID table.

    Parameters
    ----------
    store : ProjectStore
    method : str
        ``rq-kmeans`` (default) or ``rq-vae``; ignored when ``spec`` says otherwise.
    spec : RQKMeansSpec | RQVAESpec, optional
        Defaults to the method's ``default`` preset sized to the catalogue (:func:`sized_spec`).
    embedding_set_id : int, optional
        The embedding set to quantise (the newest by default).
    label_field : str, optional
        Item field for prefix purity, e.g. ``categories[1]`` (see :func:`sids.label_values`).
    name : str, optional
        Run name (default: method, levels x codebook size, seed).
    cancel : CancelToken

    Returns
    -------
    int
        The new run's id. A failure or cancel leaves the project as it was.
    """
    _check_method(method)
    if spec is None:
        spec = sized_spec(method, store.item_count())
    method = method_of(spec)
    emb = store.load_embedding_set(embedding_set_id)
    n_items = store.item_count()
    if emb.n_items != n_items:
        raise ProjectError(
            f"embedding set #{emb.id} covers {emb.n_items} items but the catalogue has {n_items}; "
            f"{hint('embed')} again to embed the new items"
        )
    labels = None
    if label_field:  # checked before the slow fit, so a typo fails at once
        labels = sids.store_label_values(store, label_field)
    yield Message(f"fitting {method} ({spec.levels} x {spec.codebook_size}, seed {spec.seed}) on embedding set "
                  f"{emb.describe()}")
    vectors, emb.vectors = emb.vectors, None  # read for this fit alone: normalised in place, not copied
    fitted = yield from fit_quantizer(vectors, spec, cancel, inplace=True)
    del vectors
    cancel.raise_if_cancelled()
    codes = sids.add_dedup_level(fitted.codes)
    metrics = sids.code_health(codes, spec.levels, spec.codebook_size, fitted.inputs, fitted.reconstructions,
                               labels, label_field)
    metrics.update({k: v for k, v in fitted.info.items() if k != "final_epoch"})
    if "final_epoch" in fitted.info:
        metrics["training"] = fitted.info["final_epoch"]
    metrics["method"] = method
    problems = sids.degenerate_problems(metrics)
    if problems:
        metrics["problems"] = problems
    run_name = name or f"{method} {spec.levels}x{spec.codebook_size} seed {spec.seed}"
    with store.atomic():
        run_id = store.save_quantizer_run(
            name=run_name, embedding_set_id=emb.id, method=method, spec=spec_to_dict(spec), seed=spec.seed,
            codes=codes, sid_strings=sids.sid_strings(codes), metrics=metrics,
            codebooks=fitted.codebook_arrays(), model_state=fitted.model_state or None,
        )
        if not problems:  # degenerate SIDs are kept for inspection, never made the project's SIDs
            store.set_active_run(run_id)
    yield Message(f"saved quantiser run #{run_id} '{run_name}': {sids.health_summary(metrics)}")
    if problems:
        yield Message(f"quantiser run #{run_id} is degenerate and was NOT made the active SID table: "
                      f"{'; '.join(problems)} (embedding set {emb.describe()})", level="warning")
    return run_id
