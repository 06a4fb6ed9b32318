# ruff: noqa: ANN001, ANN202 - TVMScript: the parser reads these annotations as buffer declarations
# mypy: disable-error-code="valid-type, no-untyped-def"
"""Sparse convolutions as TensorIR, for the Jetson GPUs: one kernel per layer shape, with the
pattern turned into address offsets when the module is built. Every stored weight carries the
offset of the input element it multiplies, relative to the output position, so the inner loop
is one load of a value, one of an offset, one of the input and one multiply-add, with no index
decoding. The values and offsets are constants of the module, read at run time; SparseRT (Wang,
arXiv 2008.11849, section 3) goes further and writes them into the code itself, which this
kernel does not.

The weight is block-sparse with r x c blocks over ``out x (in*kh*kw)`` (CSR is 1 x 1; N:M
weights are stored as their CSR here); the input arrives padded. Each output position of a
block row is one thread: the threads of a warp share the block row, so they walk the same
weights (one broadcast load each) and read neighbouring input elements, and each thread keeps
r accumulators, one per output channel of its block. Bias and activation are fused.

The same computation is built with plain loops for the CPU (``gpu=False``), which is how it is
checked here, on a machine without a GPU, against the dense convolution."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgeprune.formats.compressed import Compressed, densify, to_csr
from edgeprune.formats.onnx_ops import ConvAttrs

THREADS = 128  # per CUDA block: output positions of one block row


@dataclasses.dataclass
class SparseConv:
    """One sparse convolution, described for :func:`prim_func`."""

    batch: int
    channels: int
    padded: tuple[int, int]  # input height and width after padding
    out: tuple[int, int, int]  # output channels, height, width
    stride: tuple[int, int]
    block: tuple[int, int]  # r x c
    activation: str  # none | relu | relu6 | silu
    values: np.ndarray  # float32 [blocks * r * c]: each block's r x c values, row-major
    offsets: np.ndarray  # int32 [blocks * c]: the input offset of each block column
    ptr: np.ndarray  # int32 [out / r + 1]: where each block row's blocks start

    def arrays(self) -> list[np.ndarray]:
        """values, offsets, ptr as the PrimFunc takes them (an empty weight stores one zero)."""
        return [self.values if self.values.size else np.zeros(1, np.float32),
                self.offsets if self.offsets.size else np.zeros(1, np.int32), self.ptr]  # fmt: skip


def describe(comp: Compressed, x_shape: tuple[int, ...], pad: tuple[int, int, int, int],
             stride: tuple[int, int], dilation: tuple[int, int], activation: str) -> SparseConv:  # fmt: skip
    """The kernel's arrays for the convolution ``comp`` on an input of ``x_shape`` (NCHW),
    padded by ``pad`` (top, left, bottom, right)."""
    if comp.fmt == "nm":
        comp = to_csr(densify(comp))
    r, c = comp.block if comp.fmt == "bsr" else (1, 1)
    oc, ic, kh, kw = comp.shape
    n, _, h, w = x_shape
    hp, wp = h + pad[0] + pad[2], w + pad[1] + pad[3]
    oh, ow = ConvAttrs((kh, kw), stride, pad, dilation).output_size(h, w)
    columns = (comp.arrays["indices"].astype(np.int64)[:, None] * c + np.arange(c)).reshape(-1)
    ci, rest = np.divmod(columns, kh * kw)
    ky, kx = np.divmod(rest, kw)
    offsets = ci * hp * wp + ky * dilation[0] * wp + kx * dilation[1]
    values = comp.arrays["values"].reshape(-1, r, c) if comp.fmt == "bsr" else comp.arrays["values"]
    return SparseConv(n, ic, (hp, wp), (oc, oh, ow), stride, (r, c), activation,
                      np.ascontiguousarray(values, np.float32).reshape(-1), offsets.astype(np.int32),
                      comp.arrays["ptr"].astype(np.int32))  # fmt: skip


def _activate(v: Any, activation: str) -> Any:
    from tvm import tirx

    zero, six, one = tirx.const(0.0, "float32"), tirx.const(6.0, "float32"), tirx.const(1.0, "float32")
    if activation == "relu":
        return tirx.max(v, zero)
    if activation == "relu6":
        return tirx.min(tirx.max(v, zero), six)
    if activation == "silu":
        return v / (one + tirx.exp(zero - v))
    return v


def prim_func(conv: SparseConv, gpu: bool) -> Any:
    """The layer's PrimFunc ``(x_padded, values, offsets, ptr, bias) -> y``: bound to CUDA
    blocks and threads when ``gpu``, plain loops otherwise."""
    from tvm.script import tirx as T

    n, ic, (hp, wp) = conv.batch, conv.channels, conv.padded
    oc, oh, ow = conv.out
    sy, sx = conv.stride
    r, c = conv.block
    rows, plane = oc // r, oh * ow
    total = n * plane
    threads = min(THREADS, -(-total // 32) * 32)
    grid = -(-total // threads)
    nv, no = max(int(conv.values.size), 1), max(int(conv.offsets.size), 1)
    act = conv.activation

    @T.macro
    def one_position(xf, yf, values, offsets, ptr, bias, rb, q):  # q: this thread's output (image, y, x)
        acc = T.alloc_local((r,), "float32")
        img = q // plane
        p = q % plane
        base = img * ic * hp * wp + (p // ow) * sy * wp + (p % ow) * sx
        for i in T.unroll(r):
            acc[i] = bias[rb * r + i]
        for j in range(ptr[rb], ptr[rb + 1]):
            for k in T.unroll(c):
                xv = xf[base + offsets[j * c + k]]
                for i in T.unroll(r):
                    acc[i] = acc[i] + values[(j * r + i) * c + k] * xv
        for i in T.unroll(r):
            yf[(img * oc + rb * r + i) * plane + p] = _activate(acc[i], act)

    if gpu:

        @T.prim_func(private=True)
        def kernel(x: T.Buffer((n, ic, hp, wp), "float32"), values: T.Buffer((nv,), "float32"),
                   offsets: T.Buffer((no,), "int32"), ptr: T.Buffer((rows + 1,), "int32"),
                   bias: T.Buffer((oc,), "float32"), y: T.Buffer((n, oc, oh, ow), "float32")):  # fmt: skip
            T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
            xf = T.decl_buffer((n * ic * hp * wp,), "float32", data=x.data)
            yf = T.decl_buffer((n * oc * plane,), "float32", data=y.data)
            for rb in T.thread_binding(rows, thread="blockIdx.y"):
                for b in T.thread_binding(grid, thread="blockIdx.x"):
                    for t in T.thread_binding(threads, thread="threadIdx.x"):
                        if b * threads + t < total:
                            one_position(xf, yf, values, offsets, ptr, bias, rb, b * threads + t)

        return kernel

    @T.prim_func(private=True)
    def loops(x: T.Buffer((n, ic, hp, wp), "float32"), values: T.Buffer((nv,), "float32"),
              offsets: T.Buffer((no,), "int32"), ptr: T.Buffer((rows + 1,), "int32"),
              bias: T.Buffer((oc,), "float32"), y: T.Buffer((n, oc, oh, ow), "float32")):  # fmt: skip
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
        xf = T.decl_buffer((n * ic * hp * wp,), "float32", data=x.data)
        yf = T.decl_buffer((n * oc * plane,), "float32", data=y.data)
        for rb in range(rows):
            for q in range(total):
                one_position(xf, yf, values, offsets, ptr, bias, rb, q)

    return loops
