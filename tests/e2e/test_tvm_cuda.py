"""`compile --backend tvm` for a board with a GPU: GPU modules beside the CPU ones, their CUDA code
compiled here for the board's architecture (nvcc for sm_87, NVRTC 12 for sm_72 and sm_53), the
GPU graph checked on this CPU at compile time; and on a machine without a CUDA device, bench and
verify say so and run the CPU modules."""

import json
import shutil
import struct
from pathlib import Path

import pytest
from helpers import DIGITS_90, RESNET90, run_cli

import edgeprune.targets
from edgeprune.contracts.manifest import Manifest
from edgeprune.export.compile import CompileRequest, compile_artifact

pytest.importorskip("tvm", reason="the TVM backend's tests need apache-tvm (pip install -e '.[dev]')")
BOARDS_DIR = Path(edgeprune.targets.__file__).parent
FATBIN_MAGIC = 0xBA55ED50
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="sm_87 is built with nvcc (the CUDA toolkit)")


def _check_code(path: Path, kind: str, arch: str) -> None:
    data = path.read_bytes()
    if kind == "fatbin":
        assert struct.unpack_from("<I", data)[0] == FATBIN_MAGIC
        return
    assert data[:4] == b"\x7fELF" and struct.unpack_from("<H", data, 18)[0] == 190  # EM_CUDA
    assert struct.unpack_from("<I", data, 48)[0] & 0xFF == int(arch.removeprefix("sm_"))


@pytest.mark.parametrize(
    ("board", "arch", "kind"),
    [pytest.param("jetson-orin-nano", "sm_87", "fatbin", marks=needs_nvcc), ("jetson-xavier-nx", "sm_72", "cubin"),
     ("jetson-nano", "sm_53", "cubin")],
)  # fmt: skip
def test_a_jetson_artifact_carries_gpu_modules_built_for_its_architecture(board, arch, kind, checkpoints, tmp_path):
    art = tmp_path / "art"
    m = compile_artifact(CompileRequest(checkpoints(**DIGITS_90), board, art, backend="tvm"))
    assert m.gpu is not None and m.gpu.cuda_arch == arch and set(m.gpu.modules) == {"model", "dense"}
    for role, module in m.gpu.modules.items():
        assert m.files[module.library].path == f"gpu_{role}.so" and module.kind == kind
        _check_code(art / m.files[module.code].path, kind, arch)
    assert {"model", "dense"} <= set(m.files)  # the CPU's modules are still there (verify runs them)
    # the GPU graph, its kernels built as loops for this CPU, against ONNX Runtime's dense model
    assert m.check.max_rel_error_gpu_graph is not None and m.check.max_rel_error_gpu_graph < 1e-5
    assert "skipped" in m.gpu.tensorrt  # TensorRT takes ONNX: a TVM artifact has none


@pytest.mark.slow
def test_the_gpu_graph_of_a_workload_model_matches_onnx_runtime(checkpoints, tmp_path):
    m = compile_artifact(CompileRequest(checkpoints(**{**RESNET90, "model": "mtl-lite0"}), "jetson-xavier-nx",
                                        tmp_path / "art", backend="tvm"))  # fmt: skip
    assert {r.format for r in m.layers} & {"csr", "bsr", "nm"}
    assert m.check.max_rel_error_gpu_graph is not None and m.check.max_rel_error_gpu_graph < 1e-4


@pytest.fixture(scope="module")
def host_with_gpu(tmp_path_factory, checkpoints):
    """This machine described with a GPU: an artifact whose GPU modules are for this CPU, so bench
    and verify reach the point where a CUDA device is needed."""
    targets = tmp_path_factory.mktemp("targets")
    (targets / "calibration").mkdir()
    shutil.copy(BOARDS_DIR / "calibration" / "host.json", targets / "calibration")
    gpu = '\n[gpu]\nname = "test"\ncuda_arch = "sm_72"\njetpack = "-"\ncuda = "12"\ndevice_compiler = "nvrtc-12"\n' \
          "sparse_tensor_cores = false\n"  # fmt: skip
    (targets / "gpuhost.toml").write_text((BOARDS_DIR / "host.toml").read_text().replace('name = "host"',
                                          'name = "gpuhost"') + gpu)  # fmt: skip
    art = tmp_path_factory.mktemp("gpuhost") / "art"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_90), "gpuhost", art, backend="tvm", targets_dir=targets))
    return art


def test_bench_on_gpu_without_a_cuda_device_is_one_line(host_with_gpu, tmp_path, capsys):
    code, _, err = run_cli(["bench", host_with_gpu, "--on", "gpu", "--seconds", "0.1", "-o", tmp_path / "r.json"],
                           capsys)  # fmt: skip
    assert code == 2 and "--on gpu:" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_bench_falls_back_to_the_cpu_modules_and_says_why(host_with_gpu, tmp_path, capsys):
    code, out, err = run_cli(["bench", host_with_gpu, "--seconds", "0.1", "--json", "-o", tmp_path / "r.json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["device"]["processor"] == "cpu" and "GPU modules were not run" in res["device"]["processor_note"]
    code, out, _ = run_cli(["bench", host_with_gpu, "--seconds", "0.1", "--on", "cpu", "--json", "-o",
                            tmp_path / "r2.json"], capsys)  # fmt: skip
    assert code == 0 and "--on cpu" in json.loads(out)["device"]["processor_note"]


def test_verify_runs_the_cpu_modules_and_says_the_gpu_ones_did_not_run(host_with_gpu, capsys):
    code, out, err = run_cli(["verify", host_with_gpu, "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["passed"] and doc["ran"] == "native", err
    assert doc["gpu"].startswith("not run:")


def test_an_artifact_without_gpu_modules_refuses_on_gpu(digits_host_artifact, capsys):
    code, _, err = run_cli(["bench", digits_host_artifact, "--on", "gpu", "--seconds", "0.1"], capsys)
    assert code == 2 and "has no GPU modules" in err
    code, _, err = run_cli(["bench", digits_host_artifact, "--on", "tpu", "--seconds", "0.1"], capsys)
    assert code == 2 and "--on must be one of auto, cpu, gpu" in err


def test_nvrtc_refuses_code_with_a_clear_line():
    from edgeprune.errors import UserError
    from edgeprune.export.backends.tvm.cuda import _nvrtc

    with pytest.raises(UserError, match="NVRTC could not compile the GPU module for sm_53"):
        _nvrtc('extern "C" __global__ void k() { undefined_thing(); }', "sm_53")


@needs_nvcc
def test_without_the_boards_gpu_compiler_its_cpu_modules_are_made_and_it_says_why(checkpoints, tmp_path, monkeypatch,
                                                                                    capsys):  # fmt: skip
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no /usr/local/bin: no nvcc
    code, out, err = run_cli(["compile", checkpoints(**DIGITS_90), "--backend", "tvm", "--target", "jetson-orin-nano",
                              "-o", tmp_path / "art"], capsys)  # fmt: skip
    assert code == 0, err
    m = Manifest.read(tmp_path / "art")
    assert m.gpu is not None and m.gpu.modules == {} and not any(r.startswith("gpu_") for r in m.files)
    assert m.gpu.cuda_code.startswith("GPU modules not built: nvcc") and "GPU modules not built" in out
