"""Very sparse random projection, generated block by block from a seed.

The projection matrix ``R`` (p features x k components) follows Li, Hastie & Church
(2006): each entry is non-zero with probability ``density`` (default ``1 / sqrt(p)``) and
then equals ``+-1 / sqrt(k * density)`` with equal probability, so that
``E[||x R||^2] = ||x||^2``.

``R`` is never held in memory as a whole, let alone densely. It is cut into fixed blocks
of :data:`BLOCK_ROWS` feature rows; block ``j`` is drawn from a Philox generator keyed on
``(seed, j)``. Any feature range can therefore be generated on its own, and the same seed
gives the same projection whatever chunk or batch sizes the caller streams with.

Inside a block the non-zero cells are drawn exactly (each cell independently with
probability ``density``) by sampling geometric gaps between consecutive non-zero cells,
which needs no sorting and no de-duplication.

Projections of one seed are nested: cells are enumerated component by component and the
signs come from a stream of their own, so the first k' components of the k-component
matrix hold exactly the non-zero cells and signs of the k'-component one; only the value
differs (``1 / sqrt(k density)``). One product with the largest k therefore gives every
smaller k of a request (:meth:`ProjectionAccumulator.result` rescales the leading rows),
and the projections of different sizes are sub-projections of each other.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from brainrank.core.errors import InputError

#: Feature rows per generated block. Part of the definition of the projection: changing it
#: changes the matrix a seed gives (the feature cache key includes it).
BLOCK_ROWS = 4096

#: Version of the generation scheme (part of the feature cache key).
SCHEME = f"li-hastie-church-philox-v2-block{BLOCK_ROWS}"


def jl_dimension(n_samples: int, eps: float = 0.1) -> int:
    """Johnson-Lindenstrauss dimension that keeps ``n_samples`` points' pairwise distances
    within a factor ``1 +- eps`` (scikit-learn's ``johnson_lindenstrauss_min_dim``
    convention: ``4 log(n) / (eps^2 / 2 - eps^3 / 3)``; 5920 for n = 1000, eps = 0.1)."""
    if n_samples < 1:
        raise InputError(f"n_samples must be positive, got {n_samples}.")
    if not 0 < eps < 1:
        raise InputError(f"eps must be in (0, 1), got {eps}.")
    denominator = eps**2 / 2 - eps**3 / 3
    return int(4 * math.log(n_samples) / denominator)


@dataclass(frozen=True)
class SparseRandomProjection:
    """The projection of ``n_features`` inputs to ``n_components`` outputs for a seed.

    >>> proj = SparseRandomProjection(n_features=10_000, n_components=256, seed=0)
    >>> Y = proj.transform(X)                # X: (n, 10_000) -> (n, 256)
    >>> Y = proj.transform_chunks(chunks)    # the same, from column chunks of X
    >>> R = proj.dense()                     # small sizes only: Y == X @ R
    """

    n_features: int
    n_components: int
    seed: int = 0
    density: float | None = None

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.n_components < 1:
            raise InputError(
                f"n_features and n_components must be positive, got {self.n_features} and "
                f"{self.n_components}."
            )
        if not 0 <= self.seed < 2**64:
            raise InputError(f"seed must be in [0, 2**64), got {self.seed}.")
        d = self.density
        if d is not None and not 0 < d <= 1:
            raise InputError(f"density must be in (0, 1], got {d}.")

    @property
    def s(self) -> float:
        """The density actually used."""
        return self.density if self.density is not None else 1.0 / math.sqrt(self.n_features)

    @property
    def value(self) -> float:
        return 1.0 / math.sqrt(self.n_components * self.s)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_features // BLOCK_ROWS)

    def block_transposed(self, j: int) -> sp.csr_matrix:
        """``R[j * BLOCK_ROWS:(j + 1) * BLOCK_ROWS].T`` as CSR ``(k, rows)`` float32 (memoised:
        layers of the same size share their projection)."""
        return _block(self, j)

    def _draw_block(self, j: int) -> sp.csr_matrix:
        """``R[j * BLOCK_ROWS:(j + 1) * BLOCK_ROWS].T`` as CSR ``(k, rows)`` float32.

        Cells are enumerated component-major, so the draw directly yields the transposed
        block, the layout the product ``R^T X^T`` needs.
        """
        if not 0 <= j < self.n_blocks:
            raise IndexError(f"block {j} out of range 0..{self.n_blocks - 1}")
        rows = min(BLOCK_ROWS, self.n_features - j * BLOCK_ROWS)
        k = self.n_components
        cells = rows * k
        s = self.s
        key = np.array([self.seed, j], dtype=np.uint64)
        rng = np.random.Generator(np.random.Philox(key=key))
        if s >= 1.0:
            positions = np.arange(cells, dtype=np.int64)
        else:
            # Gaps between successive non-zero cells are geometric(s); draw a few more than
            # needed, extend in the rare case they fall short, then cut at the block end.
            expected = cells * s
            draw = int(expected + 6 * math.sqrt(expected) + 16)
            positions = np.cumsum(rng.geometric(s, size=draw), dtype=np.int64) - 1
            while positions[-1] < cells - 1:
                more = np.cumsum(rng.geometric(s, size=draw), dtype=np.int64) + positions[-1]
                positions = np.concatenate([positions, more])
            positions = positions[: np.searchsorted(positions, cells)]
        # The signs' stream starts 2**64 Philox blocks on (the positions' stream would need
        # that many draws to reach it), so both are prefixes whatever the number of cells:
        # the first k' components of this block are those of the k'-component draw.
        signs = np.random.Generator(np.random.Philox(key=key, counter=2**64)).integers(
            0, 2, size=positions.size, dtype=np.int8
        )
        data = np.where(signs == 1, np.float32(self.value), np.float32(-self.value))
        component = positions // rows
        indptr = np.searchsorted(component, np.arange(k + 1)).astype(np.int64)
        features = (positions - component * rows).astype(np.int64)
        return sp.csr_matrix((data, features, indptr), shape=(k, rows))

    def columns_transposed(self, start: int, stop: int) -> sp.csr_matrix:
        """``R[start:stop].T`` as CSR ``(k, stop - start)`` float32, joined from the blocks
        the range overlaps (memoised, up to :data:`CACHE_NONZEROS` in all: layers of one
        size share their projection)."""
        if not 0 <= start <= stop <= self.n_features:
            raise IndexError(f"rows [{start}, {stop}) outside [0, {self.n_features})")
        key = (self, start, stop)
        if key in _joined:
            _joined.move_to_end(key)
            return _joined[key]
        parts = []
        for j in range(start // BLOCK_ROWS, -(-stop // BLOCK_ROWS)):
            lo = j * BLOCK_ROWS
            block = self._draw_block(j)
            a, b = max(start, lo) - lo, min(stop, lo + BLOCK_ROWS) - lo
            parts.append(block if (a, b) == (0, block.shape[1]) else block[:, a:b].tocsr())
        matrix = _join_columns(parts, self.n_components)
        if matrix.nnz <= CACHE_NONZEROS:
            global _joined_nonzeros
            _joined[key] = matrix
            _joined_nonzeros += matrix.nnz  # a running total: summing every entry on each
            while _joined_nonzeros > CACHE_NONZEROS:  # insertion was quadratic in entries
                _joined_nonzeros -= _joined.popitem(last=False)[1].nnz
        return matrix

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``[start, stop)`` of R (any range, assembled from the blocks it overlaps)."""
        if not 0 <= start <= stop <= self.n_features:
            raise IndexError(f"rows [{start}, {stop}) outside [0, {self.n_features})")
        parts = []
        for j in range(start // BLOCK_ROWS, -(-stop // BLOCK_ROWS)):
            lo = j * BLOCK_ROWS
            block = self.block_transposed(j).T.tocsr()
            parts.append(block[max(start, lo) - lo : min(stop, lo + block.shape[0]) - lo])
        if not parts:
            return sp.csr_matrix((0, self.n_components), dtype=np.float32)
        return sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]

    def dense(self) -> np.ndarray:
        """The whole matrix, dense (for tests on small sizes only)."""
        return self.rows(0, self.n_features).toarray()

    def accumulator(self, n_samples: int, device: Any = None) -> ProjectionAccumulator:
        """An accumulator that sums the projections of column chunks of an input (on the
        torch ``device``, default the CPU)."""
        return ProjectionAccumulator(self, n_samples, device)

    def transform(self, X: np.ndarray, chunk_features: int = 16 * BLOCK_ROWS) -> np.ndarray:
        """Project ``X`` ``(n, n_features)`` to ``(n, n_components)`` float32."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"X has shape {X.shape}; expected (n_samples, {self.n_features}).")
        acc = self.accumulator(X.shape[0])
        for start in range(0, self.n_features, chunk_features):
            acc.add(X[:, start : start + chunk_features], start)
        return acc.result()

    def transform_chunks(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Project from consecutive column chunks ``(n, m_i)`` of X (in order)."""
        acc = None
        start = 0
        for chunk in chunks:
            if acc is None:
                acc = self.accumulator(np.shape(chunk)[0])
            acc.add(chunk, start)
            start += np.shape(chunk)[1]
        if acc is None or start != self.n_features:
            raise InputError(f"chunks cover {start} features; expected {self.n_features}.")
        return acc.result()


#: Non-zeros of joined projection matrices kept for reuse: about 12 bytes each, so 2**23
#: holds at most ~100 MB.
CACHE_NONZEROS = 2**23

_joined: OrderedDict[tuple[SparseRandomProjection, int, int], sp.csr_matrix] = OrderedDict()
_joined_nonzeros = 0  # sum of the cached matrices' nnz


def _join_columns(parts: list[sp.csr_matrix], k: int) -> sp.csr_matrix:
    """CSR matrices ``(k, m_j)`` side by side as one CSR ``(k, sum m_j)``, in one vectorised
    scatter per part (much faster than ``scipy.sparse.hstack`` for many small blocks)."""
    if len(parts) == 1:
        return sp.csr_matrix(
            (parts[0].data, parts[0].indices.astype(np.int64, copy=False), parts[0].indptr),
            shape=parts[0].shape,
        )
    counts = np.stack([np.diff(part.indptr) for part in parts])  # (parts, k)
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(counts.sum(axis=0), out=indptr[1:])
    before = np.cumsum(counts, axis=0) - counts  # entries of earlier parts in each row
    indices = np.empty(indptr[-1], dtype=np.int64)
    data = np.empty(indptr[-1], dtype=np.float32)
    offset = 0
    for j, part in enumerate(parts):
        rows = np.repeat(np.arange(k), counts[j])
        dest = indptr[rows] + before[j, rows] + np.arange(part.nnz) - part.indptr[rows]
        indices[dest] = part.indices + offset
        data[dest] = part.data
        offset += part.shape[1]
    return sp.csr_matrix((data, indices, indptr), shape=(k, offset))


@functools.lru_cache(maxsize=256)
def _block(projection: SparseRandomProjection, j: int) -> sp.csr_matrix:
    return projection._draw_block(j)


#: Up to this many samples, CPU products use scipy's sparse kernel instead of torch's.
SCIPY_ROWS = 32

#: Feature rows of one sparse-dense product, at least (see :meth:`ProjectionAccumulator.add`).
PIECE_ROWS = BLOCK_ROWS

#: Input bytes of one product: pieces have more rows than PIECE_ROWS when few samples make
#: them this small (fewer calls; the piece still stays in cache).
PIECE_BYTES = 2 * 2**20


class ProjectionAccumulator:
    """Sums ``X[:, a:b] @ R[a:b]`` over column chunks of X, in any order and chunking.

    The sum is kept transposed, ``(k, n)``, on ``device`` (a torch device; default the CPU).
    Each chunk contributes one sparse-dense product ``R[a:b]^T @ X[:, a:b]^T`` added in place
    (torch's CSR kernel: multi-threaded on the CPU, cuSPARSE on a GPU), the blocks of ``R``
    the chunk overlaps joined into one sparse matrix: one product per chunk, not per block.
    Chunks are numpy arrays or torch tensors; a GPU's chunks never leave it.
    """

    def __init__(self, projection: SparseRandomProjection, n_samples: int, device: Any = None):
        import torch

        self.projection = projection
        self.n_samples = int(n_samples)
        self.device = torch.device(device if device is not None else "cpu")
        self._out_t = torch.zeros(
            (projection.n_components, self.n_samples), dtype=torch.float32, device=self.device
        )

    def add(self, X: Any, start: int, rows: slice | None = None) -> None:
        """Add the projection of ``X``: columns ``start..`` of the input, for all samples, or
        for the samples ``rows`` (a slice) when the input is streamed in batches of images."""
        import torch

        if isinstance(X, torch.Tensor):
            x = X.detach()
            x = x if x.dtype == torch.float32 else x.float()
        else:
            x = torch.from_numpy(np.asarray(X, dtype=np.float32))
        x = x.to(self.device)  # no copy when already there
        target = self._out_t if rows is None else self._out_t[:, rows]
        if x.ndim != 2 or x.shape[0] != target.shape[1]:
            raise InputError(
                f"chunk has shape {tuple(x.shape)}; expected ({target.shape[1]}, n_columns)."
            )
        proj = self.projection
        stop = start + int(x.shape[1])
        if start < 0 or stop > proj.n_features:
            raise InputError(
                f"columns {start}..{stop} exceed the projection's {proj.n_features} features."
            )
        # The sparse kernels want the chunk transposed and contiguous (the extraction's
        # feature-major buffers are; anything else is copied piece by piece). The columns go
        # through in pieces of PIECE_ROWS (more when the samples are few: PIECE_BYTES),
        # aligned on multiples of it so that layers of one size reuse the joined matrices.
        # Pieces that fit in cache are much faster: every non-zero of R adds a whole input
        # row (n floats) to an output row, and a piece that stays in cache serves those reads
        # from it (measured on 2 cores, one 193,600-feature layer x 1000 images -> 5920:
        # 1.5-1.7 s in pieces of 16,384 rows, 0.32-0.34 s in pieces of 4096).
        n = int(x.shape[0])
        width = max(PIECE_ROWS, PIECE_BYTES // (4 * max(1, n)) // PIECE_ROWS * PIECE_ROWS)
        a = start
        while a < stop:
            b = min(stop, (a // width + 1) * width)
            matrix = proj.columns_transposed(a, b)
            piece = x[:, a - start : b - start]
            if self.device.type == "cpu" and n <= SCIPY_ROWS:
                # few samples: scipy's single-threaded kernel has far less overhead per call
                target += torch.from_numpy(matrix @ np.ascontiguousarray(piece.numpy().T))
            else:
                target.addmm_(_torch_csr(matrix).to(self.device), piece.T.contiguous())
            a = b

    def result(self, n_components: int | None = None) -> np.ndarray:
        """The ``(n, k)`` float32 projection of what was added, or its projection to
        ``n_components`` < k: the leading components, rescaled (projections of one seed are
        nested; see the module docstring)."""
        k = self.projection.n_components
        if n_components is None or n_components == k:
            return np.ascontiguousarray(self._out_t.T.cpu().numpy())
        if not 0 < n_components < k:
            raise InputError(f"n_components must be in 1..{k}, got {n_components}.")
        scale = math.sqrt(k / n_components)
        return np.ascontiguousarray((self._out_t[:n_components] * scale).T.cpu().numpy())


def _torch_csr(matrix: sp.csr_matrix):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64, copy=False)),
            torch.from_numpy(matrix.indices.astype(np.int64, copy=False)),
            torch.from_numpy(matrix.data.astype(np.float32, copy=False)),
            size=matrix.shape,
        )
