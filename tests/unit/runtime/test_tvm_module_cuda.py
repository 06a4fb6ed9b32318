"""The device-side pieces of a GPU module run, which work without a GPU: the compiled code TVM is
handed at load (only for the source it was compiled from), and the copies to and from a device."""

import hashlib

import numpy as np
import pytest

pytest.importorskip("tvm_ffi", reason="needs tvm-ffi (pip install -e '.[dev]')")
from edgeprune.runtime import tvm_module  # noqa: E402
from edgeprune.runtime.tvm_runner import runtime_library  # noqa: E402


def test_tvm_gets_the_code_compiled_for_its_source_and_nothing_else():
    source = 'extern "C" __global__ void k() {}'
    tvm_module.use_cuda_code(hashlib.sha256(source.encode()).hexdigest(), b"\x7fELF compiled")
    assert tvm_module._compiled_code(source) == b"\x7fELF compiled"
    with pytest.raises(RuntimeError, match="no compiled code for this module's CUDA source"):
        tvm_module._compiled_code(source + " // changed")


def test_a_tensor_copied_to_a_device_and_back_is_unchanged():
    import tvm_ffi

    tvm_module.load_runtime(str(runtime_library()))
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    there = tvm_module.copied(tvm_ffi.from_dlpack(tvm_module.aligned(x)), tvm_module.CPU)
    back = np.from_dlpack(tvm_module.copied(there, tvm_module.CPU))
    np.testing.assert_array_equal(back, x)
