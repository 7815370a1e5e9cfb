"""Whole-project recipes built from the core steps (import -> embed -> quantise).

Used by the app on first start (it opens the bundled sample project), by the test fixtures
and by the benchmarks, so that all of them build projects the same way.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ProjectError
from .events import NEVER, CancelToken, Message, TaskGenerator
from .store import ProjectStore

#: the bundled sample catalogue (written by scripts/make_sample_data.py)
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLE_TEMPLATE = "Title: {title}; Brand: {brand}; Categories: {categories}; Price: {price}"
#: purity is measured against the category under the department (38 labels)
SAMPLE_LABEL_FIELD = "categories[1]"
#: 3 x 64 rather than the paper's 3 x 256: with 3,000 items, 64 level-1 branches of ~50 items
#: make a tree worth browsing (256 would leave ~12 items per branch)
SAMPLE_CODEBOOK_SIZE = 64


def sample_files(folder: Path = SAMPLE_DATA_DIR) -> dict[str, Path]:
    files = {
        "items": folder / "items.jsonl",
        "interactions": folder / "interactions.csv",
        "queries": folder / "queries.csv",
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise ProjectError(
            f"the bundled sample data is missing ({', '.join(missing)}); "
            "regenerate it with 'python scripts/make_sample_data.py'"
        )
    return files


def embed_catalogue(
    store: ProjectStore,
    *,
    model: str | None = None,
    template: str | None = None,
    device: str | None = None,
    batch_size: int = 64,
    processes: int = 1,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[int]:
    """The default embedding of a catalogue: its text when it has some, else its interactions.

    Items with text are embedded by the sentence encoder (:func:`embed.embed_items`). A
    catalogue without text (an id column alone, or a text that is the same for most items:
    retail logs, P5 releases) would give every item the same vector, so it is embedded from
    the interactions instead: the ``rec`` strategy's co-occurrence vectors, said in one line.
    """
    from .search import strategies
    from .embed import MIN_DISTINCT_TEXT_SHARE, catalogue_text_share, embed_items

    share, template_used = catalogue_text_share(store, template)
    if share >= MIN_DISTINCT_TEXT_SHARE:
        return (yield from embed_items(store, model=model, template=template, device=device,
                                       batch_size=batch_size, processes=processes, cancel=cancel))
    n_items = store.item_count()
    why = (f"the {n_items:,} items have no text" if share == 0
           else f"only {share:.0%} of the {n_items:,} items have a text of their own under '{template_used}'")
    if store.interaction_count() == 0:
        raise ProjectError(f"{store.path}: {why}, and the project has no interactions to embed them from; "
                           "import items with text, interactions, or precomputed embeddings")
    spec = strategies.make_spec(overrides={"device": device} if device else None)
    yield Message(f"{why}: embedding them from the interactions instead (rec strategy, "
                  f"{spec.rec_method} co-occurrence vectors, {spec.rec_dim} dims)", level="warning")
    return (yield from strategies.build_embedding(store, "rec", spec, cancel=cancel))


def build_project(
    path: str | Path,
    *,
    items: str | Path | None = None,
    interactions: str | Path | None = None,
    queries: str | Path | None = None,
    format: str = "auto",
    mapping: dict | None = None,
    encoding: str | None = None,
    on_unknown: str = "abort",
    field_kinds: dict | None = None,
    template: str | None = None,
    model: str | None = None,
    label_field: str | None = None,
    method: str = "rq-kmeans",
    spec=None,
    quantizer: tuple[str, str | None, dict] | None = None,
    cancel: CancelToken = NEVER,
) -> TaskGenerator[Path]:
    """Create a project at ``path`` and run import -> embed -> quantise on it.

    The import options are those of :func:`importing.import_data`; ``spec`` (default: the
    method's default preset sized to the catalogue) is passed to :func:`quantize.quantize_project`;
    ``quantizer`` = ``(method, preset, overrides)`` instead sizes what the overrides leave open
    to the imported catalogue (:func:`quantize.sized_spec`). If any step fails
    or is cancelled, the half-built file is removed: the user is left with what they had
    before (nothing).
    """
    from . import importing, quantize

    path = Path(path)
    store = ProjectStore.create(path)
    try:
        if template:
            store.set_meta("template", template)
        yield Message(f"importing into {path.name}")
        report = yield from importing.import_data(
            store, items=items, interactions=interactions, queries=queries, format=format, mapping=mapping,
            encoding=encoding, on_unknown=on_unknown, field_kinds=field_kinds, cancel=cancel)
        yield Message(report.summary())
        set_id = yield from embed_catalogue(store, model=model, template=template, cancel=cancel)
        if quantizer is not None:
            method, preset, overrides = quantizer
            spec = quantize.sized_spec(method, store.item_count(), preset, overrides)
        yield from quantize.quantize_project(store, method=method, spec=spec, embedding_set_id=set_id,
                                             label_field=label_field, cancel=cancel)
    except BaseException:
        store.close()
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        raise
    store.close()
    return path


def build_sample_project(path: str | Path, *, cancel: CancelToken = NEVER) -> TaskGenerator[Path]:
    """The bundled sample project: sample_data/ imported, embedded and quantised."""
    from .quantize import make_spec

    files = sample_files()
    spec = make_spec("rq-kmeans", overrides={"codebook_size": str(SAMPLE_CODEBOOK_SIZE)})
    return (yield from build_project(path, **files, template=SAMPLE_TEMPLATE, label_field=SAMPLE_LABEL_FIELD,
                                     spec=spec, cancel=cancel))
