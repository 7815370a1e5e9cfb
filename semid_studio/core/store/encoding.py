"""How values are stored in the project file: arrays as safetensors bytes (no pickle; a
payload over :data:`BLOB_CHUNK_BYTES` as ordered chunks), JSON, timestamps."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays -> safetensors bytes (no pickle; dtype and shape are in the header)."""
    return _st_save({k: np.ascontiguousarray(v) for k, v in arrays.items()})


#: what gives a damaged stored value back (ProjectStore.read_arrays), by table
_REDO_DAMAGED = {"embedding_sets": "embed the items again", "quantizer_runs": "quantise again",
                 "checkpoints": "train the model again", "embedding_artifacts": "build the embedding set again"}


class DamagedArrays(ValueError):
    """Stored bytes that are not a safetensors payload (see ProjectStore.read_arrays)."""


def decode_arrays(blob: bytes | None) -> dict[str, np.ndarray]:
    """safetensors bytes -> arrays. Only a header and raw numbers are read: nothing in a damaged
    or hostile payload is ever executed (no pickle)."""
    if not blob:
        return {}
    try:
        return dict(_st_load(bytes(blob)))
    except Exception as exc:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise DamagedArrays(f"not a safetensors payload ({len(blob):,} bytes: {exc})") from None


# --------------------------------------------------------------------------- large array blobs
#
# SQLite refuses any single value over 1 GB (SQLITE_MAX_LENGTH), and a million 384-d float32
# vectors are 1.5 GB. An array payload larger than BLOB_CHUNK_BYTES is therefore written as
# the rows of ``blob_chunks`` (in order, they are the same safetensors bytes), and its own
# column holds a short marker instead. Payloads up to that size are stored exactly as before.
# Reading assembles the chunks straight into one numpy buffer in small pieces, so a payload
# costs its own size in memory once (not bytes + arrays), and no single C call holds the GIL
# for long (the GUI reads vectors in worker threads).


#: payloads larger than this are split into chunks of this size (bytes)
BLOB_CHUNK_BYTES = 64 << 20
#: what a chunked payload's own column starts with (followed by JSON: total bytes, chunks)
CHUNK_MARK = b"SEMID-CHUNKED\n"


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
              "I32": np.int32, "I64": np.int64, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32,
              "U64": np.uint64, "BOOL": np.bool_}
_ST_NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in _ST_DTYPES.items()}


@dataclass
class _Payload:
    """Arrays ready to be stored: ``value`` goes in the column, ``chunks`` (if any) in blob_chunks."""

    value: bytes | None
    chunks: Iterator[Any] | None = None


def _payload(arrays: dict[str, np.ndarray] | None) -> _Payload:
    """Encode arrays for one BLOB column: safetensors bytes, or a marker plus chunks when large."""
    if not arrays:
        return _Payload(None)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    # the same layout safetensors writes: 8-byte header length, JSON header, then the data
    header: dict[str, Any] = {}
    offset = 0
    names = sorted(arrays)
    for name in names:
        a = arrays[name]
        if a.dtype.byteorder == ">":
            a = arrays[name] = a.astype(a.dtype.newbyteorder("<"))
        kind = _ST_NAMES.get(a.dtype.newbyteorder("<"))
        if kind is None:
            raise ValueError(f"cannot store array '{name}' of dtype {a.dtype}")
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # aligned data, as safetensors pads its header
    head = np.uint64(len(text)).astype("<u8").tobytes() + text
    total = len(head) + offset
    if total <= BLOB_CHUNK_BYTES:
        return _Payload(encode_arrays(arrays))  # one value, exactly as it has always been stored
    parts = [memoryview(head)] + [memoryview(arrays[n].reshape(-1).view(np.uint8)) for n in names]
    n_chunks = -(-total // BLOB_CHUNK_BYTES)
    marker = CHUNK_MARK + json.dumps({"bytes": total, "chunks": n_chunks}).encode()
    return _Payload(marker, _chunk_pieces(parts, BLOB_CHUNK_BYTES))


def _chunk_pieces(parts: list[memoryview], size: int) -> Iterator[Any]:
    """The concatenation of ``parts`` cut into pieces of ``size`` bytes (the last may be shorter);
    a piece that lies inside one part is a view of it, not a copy."""
    pending = bytearray()
    for part in parts:
        pos, n = 0, len(part)
        while pos < n:
            if not pending and n - pos >= size:
                yield part[pos : pos + size]
                pos += size
                continue
            take = min(size - len(pending), n - pos)
            pending += part[pos : pos + take]
            pos += take
            if len(pending) == size:
                yield bytes(pending)
                pending = bytearray()
    if pending:
        yield bytes(pending)


def is_chunked(value: bytes | None) -> bool:
    return value is not None and bytes(value[: len(CHUNK_MARK)]) == CHUNK_MARK


def arrays_from_buffer(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays of safetensors bytes held in a uint8 numpy buffer, as views of it where aligned.
    Bytes that are not such a payload raise DamagedArrays (only a JSON header is parsed)."""
    if len(raw) == 0:
        return {}
    try:
        header_len = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
        if header_len > len(raw) - 8:
            raise ValueError("header longer than the payload")
        header = json.loads(raw[8 : 8 + header_len].tobytes())
        base = 8 + header_len
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, stop = entry["data_offsets"]
            if not 0 <= start <= stop <= len(raw) - base:
                raise ValueError(f"array '{name}' lies outside the payload")
            dtype = np.dtype(_ST_DTYPES[entry["dtype"]]).newbyteorder("<")
            array = raw[base + start : base + stop].view(dtype).reshape(entry["shape"])
            out[name] = array if array.flags.aligned else array.copy()
        return out
    except Exception as exc:  # any malformed header or layout
        raise DamagedArrays(f"not a safetensors payload ({len(raw):,} bytes: {exc})") from None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=json_default)


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for what the core writes: numpy scalars and arrays, paths."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.generic):  # numpy bools and the like
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _loads(text: str | None, default: Any = None) -> Any:
    return default if text in (None, "") else json.loads(text)
