"""A 2-D array stored into the project block by block, never whole in memory.

:class:`StreamedArray` describes a float32 matrix by its shape and a function that yields its
rows in order, in blocks. ``ProjectStore.save_embedding_set`` accepts one in place of an
array: the payload is the same safetensors layout an in-memory array gets (a header, then the
raw numbers), so it reads back with ``read_arrays`` like any other. A payload over
``store.encoding.BLOB_CHUNK_BYTES`` (64 MB) is cut into ``blob_chunks`` rows as the blocks
arrive; a smaller one is assembled in memory (it is small) and stored exactly as before.

Used by the import of precomputed vectors (:mod:`.importing.embeddings`), where 10M x 384
vectors are 15 GB: memory stays at a block and a chunk, whatever the row count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .store import encoding as _encoding


@dataclass
class StreamedArray:
    """``shape`` rows x columns of float32, given by ``blocks()`` (row blocks, in order)."""

    shape: tuple[int, int]
    blocks: Callable[[], Iterator[np.ndarray]]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.shape[0]) * int(self.shape[1]) * 4

    def _checked_blocks(self) -> Iterator[np.ndarray]:
        """The blocks as contiguous little-endian float32, checked against ``shape``."""
        rows, cols = int(self.shape[0]), int(self.shape[1])
        seen = 0
        for block in self.blocks():
            block = np.ascontiguousarray(block, dtype="<f4")
            if block.ndim != 2 or block.shape[1] != cols:
                raise ValueError(f"a block of shape {block.shape} in a stream of {rows} x {cols}")
            seen += len(block)
            if seen > rows:
                raise ValueError(f"the stream holds more than its {rows} rows")
            yield block
        if seen != rows:
            raise ValueError(f"the stream ended after {seen} of its {rows} rows")

    def stream_payload(self, name: str) -> "_encoding._Payload":
        """The array as one BLOB column's payload, under array name ``name`` (see the module docstring)."""
        header = {name: {"dtype": "F32", "shape": [int(s) for s in self.shape], "data_offsets": [0, self.nbytes]}}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # aligned data, as safetensors pads its header
        head = np.uint64(len(text)).astype("<u8").tobytes() + text
        total = len(head) + self.nbytes
        limit = _encoding.BLOB_CHUNK_BYTES
        if total <= limit:
            blocks = list(self._checked_blocks())
            whole = np.concatenate(blocks) if blocks else np.zeros(self.shape, dtype=np.float32)
            return _encoding._payload({name: whole})
        parts = _parts(head, self._checked_blocks())
        n_chunks = -(-total // limit)
        marker = _encoding.CHUNK_MARK + json.dumps({"bytes": total, "chunks": n_chunks}).encode()
        return _encoding._Payload(marker, _encoding._chunk_pieces(parts, limit))


def _parts(head: bytes, blocks: Iterator[np.ndarray]) -> Iterator[memoryview]:
    yield memoryview(head)
    for block in blocks:
        yield memoryview(block.reshape(-1).view(np.uint8))
