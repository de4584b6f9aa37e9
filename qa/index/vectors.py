"""The index's vector stores: `VectorSpool` collects vectors on disk while an index is built;
`Vectors` is the searchable FAISS index made from it, exact (`IndexFlatIP`) up to
`ann_threshold` vectors and HNSW over 8-bit quantised vectors above. Inner product of unit
vectors = cosine. Nothing here knows about chunks or documents.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HNSW_M = 32  # graph degree; recall@10 0.986 on 115k real chunk vectors, 8-bit (scripts/bench_scale.py)
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # raised to the number of results asked for when that is larger
SQ_TRAINING_SAMPLE = 65_536  # vectors sampled to learn the 8-bit quantiser's per-dimension range


class Vectors:
    """A FAISS index of unit vectors, row i = the i-th vector added."""

    def __init__(self, faiss_index: object) -> None:
        self._index = faiss_index

    @classmethod
    def load(cls, path: Path) -> Vectors:
        import faiss

        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        """The FAISS index type: "IndexFlatIP" or "IndexHNSWSQ"."""
        return type(self._index).__name__

    def search(self, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest rows per query row, among `rows` only when given (a
        filter inside the search: k results whenever `rows` holds k); an HNSW index explores at
        least k."""
        import faiss

        k = min(k, self.count, len(rows) if rows is not None else k)  # none when the index is empty
        if k <= 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        selector = None if rows is None else faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
        if isinstance(self._index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return self._index.search(query, k, params=params)

    def get(self, first: int, count: int) -> np.ndarray:
        """Rows [first, first + count) as float32 (de-quantised for an HNSW index)."""
        return self._index.reconstruct_n(first, count)


def hnsw(dim: int, training: np.ndarray) -> object:
    """An empty HNSW index over 8-bit scalar-quantised vectors, its quantiser trained on `training`."""
    import faiss

    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.train(training)
    return index


class VectorSpool:
    """Vectors appended in batches to a raw float32 file; `build` makes the FAISS index from it at
    the end, so a build holds one copy of the vectors (the index's), not a growing list as well."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim, self.count = path, dim, 0
        self.file = path.open("wb")

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        vectors.tofile(self.file)
        self.count += len(vectors)

    def _sample(self, size: int) -> np.ndarray:
        """About `size` evenly spaced rows, read one by one (mapping the file would count it all as resident)."""
        rows = range(0, self.count, max(1, self.count // size))
        sample = np.empty((len(rows), self.dim), dtype=np.float32)
        with self.path.open("rb") as f:
            for i, row in enumerate(rows):
                f.seek(row * self.dim * 4)
                sample[i] = np.fromfile(f, dtype=np.float32, count=self.dim)
        return sample

    def build(self, ann_threshold: int, keep_as: Path | None = None, batch: int = 16_384) -> Vectors:
        """Exact up to `ann_threshold` vectors, HNSW above (a quarter of float32's memory). Deletes
        the spool file, or moves it to `keep_as` (benchmarks compare against the exact vectors)."""
        import faiss

        self.file.close()
        index = hnsw(self.dim, self._sample(SQ_TRAINING_SAMPLE)) if self.count > ann_threshold else faiss.IndexFlatIP(self.dim)
        with self.path.open("rb") as f:
            for _ in range(0, self.count, batch):
                index.add(np.fromfile(f, dtype=np.float32, count=batch * self.dim).reshape(-1, self.dim))
        if keep_as is None:
            self.path.unlink()
        else:
            shutil.move(self.path, keep_as)
        return Vectors(index)

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """The vectors in order, `size` rows at a time (for a store that takes them over the network)."""
        self.file.close()
        with self.path.open("rb") as f:
            for _ in range(0, self.count, size):
                yield np.fromfile(f, dtype=np.float32, count=size * self.dim).reshape(-1, self.dim)

    def close(self) -> None:
        self.file.close()
