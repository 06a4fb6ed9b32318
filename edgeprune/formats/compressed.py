"""Masked dense weights to the storage formats the kernels run: CSR, BSR (r x c blocks) and
N:M, all over a convolution weight seen as ``out x (in*kh*kw)`` (N:M over channel-last
columns, the layout sparse tensor cores use). NumPy only: the compile side and the board
share it. The arrays match ``kernels/include/edgeprune/kernels.h`` one for one.

Usage::

    csr = to_csr(w)                 # w: float32 [out, in, kh, kw], zeros pruned
    csr.values, csr.indices, csr.ptr
    nm = to_nm(w, 2, 4)             # None when w is not 2:4 sparse
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Compressed:
    """One weight in one format: the arrays the kernel reads and what they amount to."""

    fmt: str  # "csr" | "bsr" | "nm"
    arrays: dict[str, np.ndarray]
    shape: tuple[int, ...]
    block: tuple[int, int] = (1, 1)
    nm: tuple[int, int] = (0, 0)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    @property
    def stored_values(self) -> int:
        return int(self.arrays["values"].size)


def as_matrix(w: np.ndarray) -> np.ndarray:
    """The weight as out x (in*kh*kw), PyTorch column order (ci, r, s)."""
    return w.reshape(w.shape[0], -1)


def to_csr(w: np.ndarray) -> Compressed:
    m = as_matrix(w)
    rows, cols = np.nonzero(m)
    ptr = np.zeros(m.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=ptr[1:])
    arrays = {"values": m[rows, cols].astype(np.float32), "indices": cols.astype(np.int32), "ptr": ptr}
    return Compressed("csr", arrays, tuple(w.shape))


def bsr_fits(w: np.ndarray, r: int, c: int) -> bool:
    m = as_matrix(w)
    return m.shape[0] % r == 0 and m.shape[1] % c == 0


def to_bsr(w: np.ndarray, r: int, c: int) -> Compressed:
    """Blocks with any non-zero are stored whole (zeros inside a kept block are computed)."""
    m = as_matrix(w)
    if not bsr_fits(w, r, c):
        raise ValueError(f"block {r}x{c} does not tile a {m.shape[0]}x{m.shape[1]} weight")
    blocks = m.reshape(m.shape[0] // r, r, m.shape[1] // c, c).transpose(0, 2, 1, 3)  # br, bc, r, c
    keep = np.abs(blocks).sum(axis=(2, 3)) != 0
    brow, bcol = np.nonzero(keep)
    ptr = np.zeros(blocks.shape[0] + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=ptr[1:])
    arrays = {"values": np.ascontiguousarray(blocks[brow, bcol], dtype=np.float32),
              "indices": bcol.astype(np.int32), "ptr": ptr}  # fmt: skip
    return Compressed("bsr", arrays, tuple(w.shape), block=(r, c))


def channel_last(w: np.ndarray) -> np.ndarray:
    """out x (kh*kw*in): the N:M column order (groups of M consecutive input channels)."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def is_nm(w: np.ndarray, n: int, m: int) -> bool:
    if w.ndim != 4 or w.shape[1] % m:
        return False
    groups = channel_last(w).reshape(-1, m)
    return bool(((groups != 0).sum(axis=1) <= n).all())


def to_nm(w: np.ndarray, n: int, m: int) -> Compressed | None:
    """N:M packing: per group of M, N values and their positions (uint8). Groups with fewer
    than N non-zeros store explicit zeros. None when the weight is not N:M sparse."""
    if not is_nm(w, n, m):
        return None
    groups = channel_last(w).reshape(-1, m)
    # Non-zeros first, stable, so each group's N slots hold its kept positions in order.
    order = np.argsort(groups == 0, axis=1, kind="stable")[:, :n]
    values = np.take_along_axis(groups, order, axis=1)
    out = w.shape[0]
    arrays: dict[str, np.ndarray] = {"values": values.reshape(out, -1).astype(np.float32),
                                     "nm_idx": order.reshape(out, -1).astype(np.uint8)}  # fmt: skip
    return Compressed("nm", arrays, tuple(w.shape), nm=(n, m))


def densify(c: Compressed) -> np.ndarray:
    """Back to the dense weight (tests and the fallback's definition)."""
    out = c.shape[0]
    k = int(np.prod(c.shape[1:]))
    a = c.arrays
    if c.fmt == "csr":
        m = np.zeros((out, k), np.float32)
        rows = np.repeat(np.arange(out), np.diff(a["ptr"]))
        m[rows, a["indices"]] = a["values"]
        return m.reshape(c.shape)
    if c.fmt == "bsr":
        r, cc = c.block
        blocks = np.zeros((out // r, k // cc, r, cc), np.float32)
        brow = np.repeat(np.arange(out // r), np.diff(a["ptr"]))
        blocks[brow, a["indices"]] = a["values"]
        return blocks.transpose(0, 2, 1, 3).reshape(c.shape)
    n, m_ = c.nm
    cols = (np.arange(a["values"].shape[1]) // n) * m_ + a["nm_idx"].astype(np.int64)
    last = np.zeros((out, k), np.float32)
    np.put_along_axis(last, cols, a["values"], axis=1)
    o, i, kh, kw = c.shape
    return last.reshape(o, kh, kw, i).transpose(0, 3, 1, 2).copy()
