"""One quantiser run loaded for the inspector: :func:`load_inspection` (codes, labels, title
words, the label field and codebook size the run was measured with)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemidError
from ..store import ProjectStore, QuantizerRun
from .nodes import LabelCodes, TermIndex, default_label_field, encode_labels
from .reading import read_item_columns


@dataclass
class Inspection:
    """Everything the SID inspector shows about one quantiser run, loaded in one go.

    Built off the GUI thread (:func:`load_inspection`) and handed over as plain data.
    """

    run: "QuantizerRun"  # noqa: F821 - with its codes
    index: object  # core.sids.SidIndex over run.codes
    item_ids: np.ndarray
    titles: np.ndarray
    labels: LabelCodes | None
    terms: TermIndex
    codebook_size: int | None

    @property
    def n_levels(self) -> int:
        return self.run.n_levels


def run_label_field(store: ProjectStore, run) -> str | None:
    """The label field a run was measured against (its spec or metrics), else the project's."""
    purity = run.metrics.get("purity") if isinstance(run.metrics, dict) else None
    for source in (run.spec, run.metrics, purity):
        if isinstance(source, dict) and source.get("label_field"):
            return str(source["label_field"])
    chosen = store.get_meta("label_field")
    if chosen:
        return str(chosen)
    return default_label_field(store.item_fields())


def run_codebook_size(run) -> int | None:
    """Codes per level from the run's spec (``codebook_size``), if it says."""
    size = run.spec.get("codebook_size") if isinstance(run.spec, dict) else None
    if isinstance(size, (list, tuple)):
        size = max(size) if size else None
    return int(size) if size else None


def load_inspection(store: ProjectStore, run_id: int | None = None, *, label_field: str | None = None) -> Inspection:
    """Load a run (the active one by default) with its SID index, labels and title words.

    Parameters
    ----------
    store : ProjectStore
        An open project (in the calling thread).
    run_id : int, optional
        The quantiser run; the project's active run when None.
    label_field : str, optional
        ``field`` or ``field[i]`` to measure purity against; by default the run's own label
        field, else ``categories`` / ``genres`` / ... when the catalogue has one.
    """
    import pandas as pd

    from ..errors import InputError
    from ..field_kinds import stored_field_kinds
    from ..sids import SidIndex, label_values

    run = store.load_quantizer_run(run_id)
    field_spec = label_field or run_label_field(store, run)
    base = None if field_spec is None else field_spec.split("[", 1)[0].strip()
    item_ids, titles, values = read_item_columns(store, base)
    labels = None
    if base is not None:
        try:
            if all(v is None for v in values):
                raise InputError(f"unknown label field; the catalogue has {sorted(store.item_fields())}", field=base)
            frame = pd.DataFrame({base: pd.Series(values, dtype=object)})
            labels = encode_labels(list(label_values(frame, field_spec, stored_field_kinds(store))), field=field_spec)
        except SemidError:
            if label_field is not None:
                raise  # the user asked for this field: say what is wrong with it
            labels = None  # a guessed field this catalogue lacks: no purity, still a tree
    n = run.n_items
    titles = titles[:n]
    return Inspection(
        run=run,
        index=SidIndex(run.codes),
        item_ids=item_ids[:n],
        titles=titles,
        labels=labels,
        terms=TermIndex(list(titles)),
        codebook_size=run_codebook_size(run),
    )
