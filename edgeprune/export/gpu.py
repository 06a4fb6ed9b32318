"""The board's GPU path as the manifest records it: a TensorRT engine built on the board from
the standard-op ONNX, with sparse tensor cores when every pruned layer is 2:4."""

from __future__ import annotations

from typing import Any

from edgeprune.contracts.manifest import GpuPath
from edgeprune.export.sites import ConvSite
from edgeprune.formats.compressed import is_nm
from edgeprune.targets import Target


def tensorrt_path(target: Target, sites: list[ConvSite], dense_file: str) -> GpuPath | None:
    gpu = target.gpu
    if gpu is None:
        return None
    pruned = [s for s in sites if s.density < 1.0]
    two_four = [s for s in pruned if is_nm(s.weight, 2, 4)]
    tensorrt: dict[str, Any]
    if pruned and len(two_four) == len(pruned):
        tensorrt = {
            "onnx": dense_file, "weights": "2:4 sparse (standard ops)", "layers_2to4": len(two_four),
            "build": f"trtexec --onnx={dense_file} --fp16 --sparsity=enable --saveEngine=model.plan",
            "run": "trtexec --loadEngine=model.plan",
            "sparse_tensor_cores": gpu.sparse_tensor_cores,
        }  # fmt: skip
        if not gpu.sparse_tensor_cores:
            tensorrt["note"] = f"{gpu.name} has no sparse tensor cores: TensorRT runs the 2:4 weights dense"
    else:
        tensorrt = {"skipped": f"{len(two_four)} of {len(pruned)} pruned layers are 2:4; sparse tensor "
                               "cores need all (prune with -m nm)"}  # fmt: skip
    return GpuPath(name=gpu.name, cuda_arch=gpu.cuda_arch, jetpack=gpu.jetpack, cuda=gpu.cuda,
                   device_compiler=gpu.device_compiler,
                   cuda_code="none: this version ships no CUDA kernels; TensorRT builds the engine on the board",
                   tensorrt=tensorrt)  # fmt: skip
