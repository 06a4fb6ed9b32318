"""The TensorIR sparse convolutions of the Jetson GPU modules: built as loops for this CPU, each
format, stride, dilation, padding and activation against PyTorch's dense convolution; and the
CUDA-bound kernel lowers to CUDA code that NVRTC 12 compiles for every Jetson architecture."""

import numpy as np
import pytest
import torch

from edgeprune.formats.compressed import to_bsr, to_csr, to_nm

tvm = pytest.importorskip("tvm", reason="needs apache-tvm (pip install -e '.[dev]')")
from edgeprune.export.backends.tvm.tir_sparse import describe, prim_func  # noqa: E402

ACTS = {"none": lambda t: t, "relu": torch.relu, "relu6": lambda t: torch.clamp(t, 0, 6),
        "silu": torch.nn.functional.silu}  # fmt: skip


def _weight(rng, fmt, oc, ic, k):
    w = rng.standard_normal((oc, ic, k, k)).astype(np.float32)
    if fmt == "bsr":  # 4x1 blocks: whole groups of 4 output channels kept per column
        keep = rng.random((oc // 4, ic * k * k)) < 0.15
        w = w * np.repeat(keep, 4, axis=0).reshape(w.shape)
        return w, to_bsr(w, 4, 1)
    if fmt == "nm":  # 2:4 over channel-last groups of 4 input channels
        last = w.transpose(0, 2, 3, 1).reshape(-1, 4)
        last[np.arange(len(last))[:, None], np.argsort(rng.random(last.shape), axis=1)[:, :2]] = 0
        w = last.reshape(oc, k, k, ic).transpose(0, 3, 1, 2).copy()
        return w, to_nm(w, 2, 4)
    w = w * (rng.random(w.shape) < 0.1)
    w[0] = 0  # an output channel with no weight at all: bias only
    return w, to_csr(w)


def _run_loops(conv, x_padded, bias):
    f = prim_func(conv, gpu=False)
    lib = tvm.compile(tvm.IRModule({"main": f.with_attr("global_symbol", "main")}), target="llvm")
    y = tvm.runtime.tensor(np.zeros((conv.batch, *conv.out), np.float32))
    lib["main"](*[tvm.runtime.tensor(a) for a in (x_padded, *conv.arrays(), bias)], y)
    return y.numpy()


@pytest.mark.parametrize(
    ("fmt", "batch", "k", "stride", "pad", "dilation", "act"),
    [("csr", 1, 3, 1, (1, 1, 1, 1), 1, "relu"), ("csr", 2, 3, 2, (1, 1, 1, 1), 1, "silu"),
     ("csr", 1, 3, 1, (2, 2, 2, 2), 2, "relu6"), ("csr", 1, 3, 2, (0, 0, 1, 1), 1, "none"),
     ("bsr", 1, 3, 1, (1, 1, 1, 1), 1, "none"), ("bsr", 2, 1, 2, (0, 0, 0, 0), 1, "relu"),
     ("nm", 1, 3, 1, (1, 1, 1, 1), 1, "relu")],
)  # fmt: skip
def test_the_kernel_matches_the_dense_convolution(fmt, batch, k, stride, pad, dilation, act):
    rng = np.random.default_rng(0)
    w, comp = _weight(rng, fmt, 32, 16, k)
    bias = rng.standard_normal(32).astype(np.float32)
    x = rng.standard_normal((batch, 16, 13, 11)).astype(np.float32)
    conv = describe(comp, x.shape, pad, (stride, stride), (dilation, dilation), act)
    top, left, bottom, right = pad
    got = _run_loops(conv, np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), bias)
    xt = torch.nn.functional.pad(torch.tensor(x), (left, right, top, bottom))
    want = ACTS[act](torch.nn.functional.conv2d(xt, torch.tensor(w), torch.tensor(bias), stride=stride,
                                                dilation=dilation)).numpy()  # fmt: skip
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_all_zero_weight_gives_its_bias():
    rng = np.random.default_rng(1)
    comp = to_csr(np.zeros((8, 4, 3, 3), np.float32))
    bias = rng.standard_normal(8).astype(np.float32)
    conv = describe(comp, (1, 4, 6, 6), (1, 1, 1, 1), (1, 1), (1, 1), "relu")
    got = _run_loops(conv, np.zeros((1, 4, 8, 8), np.float32), bias)
    np.testing.assert_array_equal(got, np.broadcast_to(np.maximum(bias, 0)[None, :, None, None], got.shape))


@pytest.mark.parametrize("arch", ["sm_53", "sm_72", "sm_87"])
def test_the_cuda_kernel_builds_for_every_jetson_architecture(arch):
    from edgeprune.export.backends.tvm.cuda import _nvrtc

    rng = np.random.default_rng(2)
    _, comp = _weight(rng, "bsr", 32, 16, 3)
    conv = describe(comp, (1, 16, 14, 14), (1, 1, 1, 1), (1, 1), (1, 1), "silu")
    f = prim_func(conv, gpu=True)
    target = tvm.target.Target({"kind": "cuda", "arch": arch}, host={"kind": "llvm"})
    exe = tvm.compile(tvm.IRModule({"main": f.with_attr("global_symbol", "main")}), target=target)
    source = exe.mod.imports[0].inspect_source()
    assert "blockIdx.y" in source and "threadIdx.x" in source
    cubin = _nvrtc(source, arch)
    assert cubin[:4] == b"\x7fELF" and int.from_bytes(cubin[18:20], "little") == 190  # EM_CUDA
    assert int.from_bytes(cubin[48:52], "little") & 0xFF == int(arch.removeprefix("sm_"))  # e_flags: its SM
