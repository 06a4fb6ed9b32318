"""The edgeprune ONNX ops: with the kernel library and through the standard-ONNX fallback, each
format and fused activation gives the PyTorch convolution's result; the file passes the ONNX
checker; the library's kernel is what runs when it is registered."""

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from edgeprune.formats.compressed import to_bsr, to_csr, to_nm
from edgeprune.formats.onnx_ops import DOMAIN, OPSET, ConvAttrs, functions_for, sparse_conv_node
from edgeprune.runtime.kernel_library import host_library, session_options

ACTS = {"none": lambda t: t, "relu": torch.relu, "relu6": F.relu6, "silu": F.silu}


def weight(fmt, rng):
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    if fmt == "nm":
        g = w.transpose(0, 2, 3, 1).reshape(-1, 4)
        np.put_along_axis(g, np.argsort(np.abs(g), axis=1)[:, :2], 0.0, axis=1)
        return g.reshape(8, 3, 3, 16).transpose(0, 3, 1, 2).copy(), lambda w: to_nm(w, 2, 4)
    w[rng.random(w.shape) < 0.8] = 0
    return w, (to_csr if fmt == "csr" else lambda w: to_bsr(w, 4, 2))


def model_for(comp, bias, conv, act):
    node, inits = sparse_conv_node("L", "x", "y", comp, bias, conv, act)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 13, 11])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, 1)],
                             ir_version=10, functions=functions_for({node.op_type}))  # fmt: skip


def run(model, library, profile=None):
    import onnxruntime as ort

    so = session_options(1, host_library() if library else None)
    if profile is not None:
        so.enable_profiling = True
        so.profile_file_prefix = str(profile / "ort")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("fmt", ["csr", "bsr", "nm"])
def test_op_matches_torch_with_and_without_library(fmt, act):
    rng = np.random.default_rng(0)
    w, pack = weight(fmt, rng)
    b = rng.standard_normal(8).astype(np.float32)
    conv = ConvAttrs((3, 3), strides=(2, 1), pads=(1, 0, 1, 2), dilations=(1, 2))
    model = model_for(pack(w), b, conv, act)
    onnx.checker.check_model(model, full_check=True)
    x = rng.standard_normal((1, 16, 13, 11)).astype(np.float32)
    padded = F.pad(torch.tensor(x), (0, 2, 1, 1))
    ref = F.conv2d(padded, torch.tensor(w), torch.tensor(b), stride=(2, 1), dilation=(1, 2))
    ref = ACTS[act](ref).numpy()
    for library in (True, False):
        got = run(model, library).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_library_kernel_runs_when_registered(tmp_path):
    rng = np.random.default_rng(0)
    w, pack = weight("csr", rng)
    model = model_for(pack(w), np.zeros(8, np.float32), ConvAttrs((3, 3), pads=(1, 1, 1, 1)), "relu")
    x = rng.standard_normal((1, 16, 13, 11)).astype(np.float32)
    for library in (True, False):
        sess = run(model, library, profile=tmp_path)
        sess.run(None, {"x": x})
        with open(sess.end_profiling()) as fh:
            ops = {e["args"]["op_name"] for e in json.load(fh) if e.get("cat") == "Node"}
        # Without the library onnxruntime runs the fallback: a (folded) dense Conv.
        assert ("CsrConvRelu" in ops) == library
        assert library or any("Conv" in op for op in ops)
