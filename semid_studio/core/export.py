"""Export SID tables and codebooks for production systems.

A SID table has one row per item: the item id, each code (``code_a``, ``code_b``, ... — the
last one is the dedup level), and the SID string (``<a_12><b_200><c_7><d_0>``). Every file
carries its *provenance* — embedding model, text template, quantiser method and spec, seed,
run, date — because results move 10-30% with those settings (method.md, section 3):

- Parquet: in the file's schema metadata (key ``semid.provenance``);
- JSON: a top-level ``provenance`` object next to ``items``;
- CSV: a sidecar ``<file>.provenance.json``.

Codebooks go out as ``.npy`` (one array ``(levels, codebook_size, dim)``) or as
``.safetensors`` (every codebook plus, for RQ-VAE, the encoder weights; provenance in the
header metadata).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .errors import SemidError
from .store import ProjectStore, QuantizerRun, now_iso
from .store.encoding import json_default

TABLE_FORMATS = (".csv", ".parquet", ".json")
CODEBOOK_FORMATS = (".npy", ".safetensors")


def level_letter(level: int) -> str:
    return chr(ord("a") + level)


def code_columns(n_columns: int) -> list[str]:
    """``code_a, code_b, ...`` for the semantic levels and the dedup level."""
    return [f"code_{level_letter(i)}" for i in range(n_columns)]


def provenance(store: ProjectStore, run: QuantizerRun) -> dict:
    """Everything needed to know how a SID table was made."""
    emb = next((e for e in store.list_embedding_sets() if e.id == run.embedding_set_id), None)
    return {
        "tool": f"SemID Studio {__version__}",
        "exported": now_iso(),
        "project": store.path.name,
        "quantizer_run": {"id": run.id, "name": run.name, "method": run.method, "spec": run.spec,
                          "seed": run.seed, "created": run.created},
        "embedding": None if emb is None else {
            "id": emb.id, "model": emb.model, "template": emb.template, "strategy": emb.strategy,
            "dim": emb.dim, "params": emb.params, "created": emb.created},
        "levels": run.n_levels,
        "dedup_level": True,
        "n_items": run.n_items,
        "health": run.metrics,
    }


def sid_table(store: ProjectStore, run_id: int | None = None, *, with_title: bool = False) -> pd.DataFrame:
    """The SID table of a run (the active run by default), one row per item in idx order."""
    run = store.load_quantizer_run(run_id)
    ids = store.item_ids()
    if len(ids) < run.n_items:
        raise SemidError(f"run #{run.id} covers {run.n_items} items but the catalogue has only {len(ids)}")
    codes = run.codes
    table = pd.DataFrame(codes, columns=code_columns(codes.shape[1]))
    table.insert(0, "item_id", ids[: run.n_items])
    sids = dict(store.db.execute("SELECT item_idx, sid FROM sid_assignments WHERE run_id = ?", [run.id]).fetchall())
    table["sid"] = [sids[i] for i in range(run.n_items)]
    if with_title:
        table.insert(1, "title", store.items_frame(fields=[])["title"].to_numpy()[: run.n_items])
    return table


def export_sid_table(
    store: ProjectStore, out_path: str | Path, run_id: int | None = None, *, with_title: bool = False
) -> list[Path]:
    """Write the SID table as CSV, Parquet or JSON (by suffix); returns the files written.

    The file is written to a temporary name and renamed, so a failure never leaves a
    half-written table where the user expects a good one.
    """
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise SemidError(f"{out_path}: unknown export format '{suffix}'; use one of {', '.join(TABLE_FORMATS)}")
    if not out_path.parent.exists():
        raise SemidError(f"{out_path}: folder {out_path.parent} does not exist")
    run = store.load_quantizer_run(run_id, with_arrays=False)
    table = sid_table(store, run.id, with_title=with_title)
    prov = provenance(store, run)
    tmp = out_path.with_name(out_path.name + ".part")
    written = [out_path]
    if suffix == ".csv":
        table.to_csv(tmp, index=False)
        sidecar = out_path.with_name(out_path.name + ".provenance.json")
        sidecar.write_text(json.dumps(prov, indent=2, ensure_ascii=False))
        written.append(sidecar)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        meta = dict(arrow.schema.metadata or {})
        meta[b"semid.provenance"] = json.dumps(prov, ensure_ascii=False).encode()
        pq.write_table(arrow.replace_schema_metadata(meta), tmp)
    else:
        payload = {"provenance": prov, "items": table.to_dict("records")}
        tmp.write_text(json.dumps(payload, ensure_ascii=False, default=json_default))
    tmp.replace(out_path)
    return written


def read_provenance(path: str | Path) -> dict:
    """Provenance of an exported SID table (any of the three formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[b"semid.provenance"])
    if suffix == ".json":
        return json.loads(path.read_text())["provenance"]
    return json.loads(path.with_name(path.name + ".provenance.json").read_text())


def stacked_codebooks(run: QuantizerRun) -> np.ndarray:
    """The run's codebooks as one ``(levels, codebook_size, dim)`` array, level order."""
    names = sorted(run.codebooks, key=_level_order)
    if not names:
        raise SemidError(f"quantiser run #{run.id} has no codebooks stored")
    books = [run.codebooks[n] for n in names]
    if len({b.shape for b in books}) != 1:
        raise SemidError(
            f"run #{run.id} has codebooks of different shapes {[b.shape for b in books]}; export as .safetensors"
        )
    return np.stack(books)


def export_codebooks(store: ProjectStore, out_path: str | Path, run_id: int | None = None) -> Path:
    """Write the codebooks as ``.npy`` or ``.safetensors`` (the latter with RQ-VAE weights)."""
    from safetensors.numpy import save_file

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in CODEBOOK_FORMATS:
        raise SemidError(f"{out_path}: codebooks export as {' or '.join(CODEBOOK_FORMATS)}, not '{suffix}'")
    run = store.load_quantizer_run(run_id)
    tmp = out_path.with_name(out_path.name + ".part")
    if suffix == ".npy":
        with open(tmp, "wb") as fh:
            np.save(fh, stacked_codebooks(run))
    else:
        tensors = {f"codebooks.{n}": np.ascontiguousarray(v) for n, v in run.codebooks.items()}
        tensors.update({f"model.{n}": np.ascontiguousarray(v) for n, v in run.model_state.items()})
        save_file(tensors, str(tmp), metadata={"semid.provenance": json.dumps(provenance(store, run))})
    tmp.replace(out_path)
    return out_path


def export_model(store: ProjectStore, out_path: str | Path, model_id: int, *, tag: str = "best") -> list[Path]:
    """Write a model's checkpoint as safetensors and its spec as JSON beside it.

    ``out.safetensors`` holds the weights (plain tensors, loadable with
    ``safetensors.numpy.load_file``; the model and checkpoint ids in its metadata);
    ``out.json`` holds everything needed to rebuild and trust it: the spec, the vocabulary
    (SID level sizes), the quantiser run whose SIDs it writes, the preset, the split, the
    checkpoint's step and its validation history. A model that reads the items' content
    vectors (``content_input`` / ``content_output``) also gets ``out.content.npy``.
    Returns the files written.
    """
    from safetensors.numpy import save_file

    out = Path(out_path)
    if out.suffix != ".safetensors":
        out = out.with_name(out.name + ".safetensors")
    rec = store.get_model(model_id)
    if rec.kind != "tiger":  # == generative.MODEL_KIND (not imported: torch is heavy)
        raise SemidError(f"model #{model_id} is a '{rec.kind}' model, not a generative recommender")
    ckpt = store.load_checkpoint(model_id, tag)
    if ckpt is None:
        raise SemidError(f"model #{model_id} has no '{tag}' checkpoint yet (it has not reached a validation run)")
    if not out.parent.exists():
        raise SemidError(f"{out.parent}: no such folder")
    tensors = {name: np.ascontiguousarray(value) for name, value in ckpt.weights.items()}
    meta = {"format": "semid-studio tiger checkpoint", "model_id": str(model_id), "tag": tag, "step": str(ckpt.step)}
    try:
        save_file(tensors, str(out), metadata=meta)
    except OSError as exc:
        raise SemidError(f"{out}: cannot write ({exc.strerror or exc})") from None
    sidecar = out.with_suffix(".json")
    run = store.load_quantizer_run(rec.quantizer_run_id, with_arrays=False) if rec.quantizer_run_id else None
    info = {
        "model": {"id": rec.id, "name": rec.name, "kind": rec.kind, "status": rec.status, "created": rec.created},
        "checkpoint": {"tag": tag, "step": ckpt.step, "chosen_on": "validation" if tag == "best" else "latest step",
                       "best_metric": rec.best_metric, "select_metric": rec.spec.get("spec", {}).get("select_metric")},
        "weights_file": out.name,
        "spec": rec.spec.get("spec"),
        "vocab": rec.spec.get("vocab"),
        "preset": rec.spec.get("preset"),
        "split_info": rec.spec.get("split_info"),
        "n_parameters": rec.spec.get("n_parameters"),
        "quantizer_run": None if run is None else {"id": run.id, "name": run.name, "method": run.method,
                                                    "spec": run.spec, "n_items": run.n_items},
        "project": str(store.path.name),
        "history": rec.history,
    }
    if rec.spec.get("members"):
        # an ensemble: every member's weights, each under "member<i>.", ranked together
        info["members"] = rec.spec["members"]
        info["weights_layout"] = "one model per 'member<i>.' prefix; rank with the members' mean scores"
    written = [out, sidecar]
    if rec.spec.get("content"):
        # the model reads each item's content vector beside its SID: ship the vectors it was
        # trained with (rows in item idx order, as in the SID table) and say where they came from
        emb = store.load_embedding_set(int(rec.spec["content"]["embedding_set_id"]))
        vectors_file = out.with_name(out.stem + ".content.npy")
        try:
            np.save(vectors_file, np.asarray(emb.vectors, dtype=np.float32))
        except OSError as exc:
            raise SemidError(f"{vectors_file}: cannot write ({exc.strerror or exc})") from None
        written.append(vectors_file)
        info["content_vectors"] = {"file": vectors_file.name, "embedding_set_id": emb.id, "name": emb.name,
                                   "model": emb.model, "template": emb.template, "strategy": emb.strategy,
                                   "dim": emb.dim, "rows": "item idx order (the SID table's row order)"}
    try:
        sidecar.write_text(json.dumps(info, indent=2, default=json_default))
    except OSError as exc:
        raise SemidError(f"{sidecar}: cannot write ({exc.strerror or exc})") from None
    return written


def _level_order(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)
