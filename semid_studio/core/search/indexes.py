"""The two retrieval indexes the search baselines rank with.

- :class:`BM25Index` wraps the maintained ``bm25s`` package (Lucene BM25, k1 = 1.5,
  b = 0.75, English stop words, no stemming). Items whose score is 0 (no query term in common)
  are not returned: a ranking may be shorter than K, or empty.
- :class:`DenseIndex` is an exact inner-product FAISS index over L2-normalised item vectors
  (cosine similarity).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SemidError
from .text import STOP_WORDS


class BM25Index:
    """BM25 over item texts with the ``bm25s`` package (Lucene variant).

    Parameters
    ----------
    texts
        One text per item, aligned to item idx.
    k1, b
        BM25 parameters (the usual 1.5 and 0.75).
    """

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s
        from bm25s.tokenization import Tokenizer

        self.n_items = len(texts)
        self.k1, self.b = k1, b
        self._tokenizer = Tokenizer(lower=True, stopwords=sorted(STOP_WORDS))
        ids = self._tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=False)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._bm25.index(ids, show_progress=False)

    def settings(self) -> dict:
        return {"package": "bm25s", "method": "lucene", "k1": self.k1, "b": self.b, "stopwords": "semid English list",
                "stemmer": None}

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query: ``(idx (n, k) int64, -1 = empty slot; scores (n, k))``.

        Items that share no term with the query are never returned.
        """
        n = len(queries)
        k_eff = max(1, min(k, self.n_items))
        out = np.full((n, k), -1, dtype=np.int64)
        scores = np.zeros((n, k), dtype=np.float32)
        if n == 0:
            return out, scores
        q_ids = self._tokenizer.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=False)
        docs, sc = self._bm25.retrieve(q_ids, k=k_eff, show_progress=False, n_threads=1)
        docs = np.asarray(docs, dtype=np.int64)
        sc = np.asarray(sc, dtype=np.float32)
        keep = sc > 0  # bm25s fills the list with arbitrary zero-score items
        out[:, :k_eff] = np.where(keep, docs, -1)
        scores[:, :k_eff] = np.where(keep, sc, 0.0)
        return out, scores


class DenseIndex:
    """Exact cosine search: FAISS ``IndexFlatIP`` over L2-normalised vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        import faiss

        vecs = normalize(vectors)
        self.n_items, self.dim = vecs.shape
        self._index = faiss.IndexFlatIP(self.dim)
        self._index.add(vecs)

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query vector: ``(idx (n, k) int64, scores (n, k))``."""
        q = normalize(query_vectors)
        if q.shape[1] != self.dim:
            raise SemidError(f"query vectors have {q.shape[1]} dims, the item vectors {self.dim}")
        k_eff = max(1, min(k, self.n_items))
        scores, idx = self._index.search(q, k_eff)
        out = np.full((len(q), k), -1, dtype=np.int64)
        sc = np.zeros((len(q), k), dtype=np.float32)
        out[:, :k_eff] = idx
        sc[:, :k_eff] = scores
        return out, sc


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)
