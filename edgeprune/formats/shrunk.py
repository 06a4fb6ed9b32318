"""Physically shrunk layers: a convolution whose pruning removed whole output filters (and so,
perhaps, whole input channels for every filter) becomes a smaller standard Conv.

Exactness: a removed filter's output is not zero but the constant act(bias) (BatchNorm folded
into the bias), so it is restored as a constant plane and the channels are put back in their
order. Removed input channels are gathered away before the smaller Conv. NumPy only; the
standard ONNX nodes of a shrunk layer are :func:`edgeprune.formats.onnx_ops.shrunk_nodes`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeprune.formats.activations import apply


@dataclasses.dataclass
class Shrunk:
    keep_out: np.ndarray  # int64 indices of the filters kept
    keep_in: np.ndarray  # int64 indices of the input channels some kept filter reads
    weight: np.ndarray  # kept_out x kept_in x kh x kw
    bias: np.ndarray  # kept_out
    constant: np.ndarray  # act(bias) of each removed filter, in channel order
    shape: tuple[int, ...]  # the original weight's shape

    @property
    def fraction(self) -> float:
        """Share of the dense layer's multiply-adds that remain."""
        return self.weight.size / float(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return int(self.weight.nbytes + self.bias.nbytes + self.constant.nbytes + 8 * self.keep_in.size)


def shrink(w: np.ndarray, bias: np.ndarray, act: str) -> Shrunk | None:
    """None when no whole filter can go (or every filter went). Input channels no kept filter
    reads go too, but alone they are not worth a copy of the input."""
    keep_out = np.flatnonzero(np.abs(w).reshape(w.shape[0], -1).sum(axis=1) != 0)
    if keep_out.size in (0, w.shape[0]):
        return None
    keep_in = np.flatnonzero(np.abs(w[keep_out]).sum(axis=(0, 2, 3)) != 0)
    if keep_in.size == 0:
        return None
    small = np.ascontiguousarray(w[np.ix_(keep_out, keep_in)])
    removed = np.setdiff1d(np.arange(w.shape[0]), keep_out)
    constant = apply(act, bias[removed].astype(np.float32)).astype(np.float32)
    return Shrunk(keep_out.astype(np.int64), keep_in.astype(np.int64), small, bias[keep_out].astype(np.float32),
                  constant, tuple(w.shape))  # fmt: skip
