"""``edgeprune compile``: a pruned checkpoint to an artifact directory for one target.

Steps: rebuild the extracted model with its masks applied, export the dense ONNX, measure
every convolution's input shape, choose each layer's format with the target's calibrated
cost model, rewrite the graph, check it (``onnx.checker`` full check; outputs against the
dense ONNX, with the kernel library and with the fallback) and write the artifact.

Usage::

    manifest = compile_artifact(CompileRequest(Path("p.ept"), "host", Path("out/")))
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeprune import __version__
from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.costmodel import CostTable
from edgeprune.errors import UserError
from edgeprune.export.artifact import FORMAT, MANIFEST, sha256, staged_dir
from edgeprune.export.choose import DEFAULT_BLOCKS, DEFAULT_NM, LayerChoice, choose
from edgeprune.export.crossbuild import cross_library
from edgeprune.export.rewrite import conv_sites, rewrite
from edgeprune.export.torch_onnx import dense_onnx
from edgeprune.formats import is_nm
from edgeprune.runtime.library import ABI_VERSION, check_library, elf_arch, host_library, session
from edgeprune.targets import load_target
from edgeprune.workload.registry import resolve_workload


@dataclasses.dataclass
class CompileRequest:
    checkpoint: Path
    target: str
    out: Path
    policy: str = "auto"
    force: bool = False
    input_size: tuple[int, int] | None = None  # deploy resolution (H, W); default: the workload's
    targets_dir: Path | None = None  # user target files, searched first


def _input_shapes(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, list[int]]:
    """Run the dense model once with the convolution inputs as extra outputs."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    extra = [n for n in dict.fromkeys(names) if n not in known]
    probe.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in extra)
    sess = session(probe.SerializeToString(), threads=1)
    outs = sess.run(extra, {probe.graph.input[0].name: x})
    return {n: list(v.shape) for n, v in zip(extra, outs, strict=True)}


def _max_rel_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    return max(float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12)) for g, w in zip(got, want, strict=True))


def _checkpoint_shapes(ckpt_masks: Any) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Block and N:M shapes the pruning used, tried before the defaults."""
    blocks = {(g.a, g.b) for g in ckpt_masks.granularity.values() if g.kind == "block"}
    nms = {(g.a, g.b) for g in ckpt_masks.granularity.values() if g.kind == "nm"}
    return tuple(sorted(blocks)) + DEFAULT_BLOCKS, tuple(sorted(nms)) + DEFAULT_NM


def compile_artifact(req: CompileRequest, on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    stage = on_stage or (lambda _s: None)
    target = load_target(req.target, req.targets_dir)
    table = CostTable.load(target.calibration_path)
    if req.out.exists() and not req.force:
        raise UserError(f"output directory {req.out} exists; use --force to replace it")
    native = target.library == "host"
    if native:
        library = host_library()
        check_library(library)
    else:
        stage(f"building the kernel library for {target.name}")
        library = cross_library(target)
    stage("loading checkpoint")
    ckpt = load_checkpoint(req.checkpoint)
    model = masked_model(ckpt)
    tasks = list(ckpt.meta["tasks"])
    if req.input_size is not None and min(req.input_size) < 8:
        raise UserError(f"--input-size {req.input_size[0]}x{req.input_size[1]} is too small (8x8 at least)")
    example = resolve_workload(ckpt.meta["workload"]).inputs_at(1, req.input_size)
    stage("exporting dense ONNX")
    dense = dense_onnx(model, example, tasks)
    x = example.numpy()
    sites = conv_sites(dense)
    shapes = _input_shapes(dense, [s.node.input[0] for s in sites], x)
    stage("choosing formats")
    blocks, nms = _checkpoint_shapes(ckpt.masks)
    choices: list[LayerChoice] = []
    replace = []
    for site in sites:
        choice, comp = choose(site, shapes[site.node.input[0]], table, req.policy, blocks, nms)
        choices.append(choice)
        if comp is not None:
            replace.append((site, comp))
    sparse = rewrite(dense, replace)
    try:
        onnx.checker.check_model(sparse, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise UserError(f"the sparse ONNX failed onnx.checker: {str(exc).splitlines()[0]}") from None
    stage("checking outputs")
    feed = {dense.graph.input[0].name: x}
    want = session(dense.SerializeToString()).run(None, feed)
    sparse_bytes = sparse.SerializeToString()
    # A library built for another CPU cannot run here: edgeprune verify runs it under emulation.
    with_lib = None
    if native:
        with_lib = _max_rel_error(session(sparse_bytes, library=library).run(None, feed), want)
    fallback = _max_rel_error(session(sparse_bytes).run(None, feed), want)
    stage("writing artifact")
    with staged_dir(req.out, req.force) as tmp:
        onnx.save(sparse, tmp / "model.onnx")
        onnx.save(dense, tmp / "dense.onnx")
        shutil.copy2(library, tmp / library.name)
        manifest = _manifest(req, target, ckpt.meta, tasks, dense, choices, tmp, library.name, x.shape, table.measured)
        manifest["check"] = {"input": "the workload's first calibration example, resized to the input shape",
                             "max_rel_error_with_library": with_lib, "max_rel_error_fallback": fallback}  # fmt: skip
        if not native:
            manifest["check"]["with_library"] = f"not run here (library for {target.cpu.arch}): run edgeprune verify"
        if target.gpu is not None:
            manifest["gpu"] = _gpu_section(target, sites)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _gpu_section(target: Any, sites: list[Any]) -> dict[str, Any]:
    """The board's GPU path: a TensorRT engine built on the board from the standard-op ONNX,
    with sparse tensor cores when every pruned layer is 2:4."""
    gpu = target.gpu
    pruned = [s for s in sites if s.density < 1.0]
    two_four = [s for s in pruned if is_nm(s.weight, 2, 4)]
    section: dict[str, Any] = {"name": gpu.name, "cuda_arch": gpu.cuda_arch, "jetpack": gpu.jetpack, "cuda": gpu.cuda,
                               "device_compiler": gpu.device_compiler,
                               "cuda_code": "none: this version ships no CUDA kernels; TensorRT builds the engine "
                                            "on the board"}  # fmt: skip
    if pruned and len(two_four) == len(pruned):
        section["tensorrt"] = {
            "onnx": "dense.onnx", "weights": "2:4 sparse (standard ops)", "layers_2to4": len(two_four),
            "build": "trtexec --onnx=dense.onnx --fp16 --sparsity=enable --saveEngine=model.plan",
            "run": "trtexec --loadEngine=model.plan",
            "sparse_tensor_cores": gpu.sparse_tensor_cores,
        }  # fmt: skip
        if not gpu.sparse_tensor_cores:
            section["tensorrt"]["note"] = f"{gpu.name} has no sparse tensor cores: TensorRT runs the 2:4 weights dense"
    else:
        section["tensorrt"] = {"skipped": f"{len(two_four)} of {len(pruned)} pruned layers are 2:4; sparse tensor "
                                          "cores need all (prune with -m nm)"}  # fmt: skip
    return section


def _manifest(
    req: CompileRequest, target: Any, meta: dict[str, Any], tasks: list[str], dense: onnx.ModelProto,
    choices: list[LayerChoice], tmp: Path, lib_name: str, in_shape: tuple[int, ...], table_measured: bool,
) -> dict[str, Any]:  # fmt: skip
    counts: dict[str, int] = {}
    for c in choices:
        counts[c.format] = counts.get(c.format, 0) + 1
    model_bytes = (tmp / "model.onnx").stat().st_size
    dense_bytes = (tmp / "dense.onnx").stat().st_size
    return {
        "format": FORMAT,
        "edgeprune_version": __version__,
        "target": {"name": target.name, "description": target.description, "arch": elf_arch(tmp / lib_name),
                   "cpu_flags": target.cpu.flags, "qemu_cpu": target.cpu.qemu_cpu, "threads": target.threads,
                   "calibration": {"file": target.calibration_path.name, "measured": table_measured}},  # fmt: skip
        "checkpoint": {"file": req.checkpoint.name, "path": str(req.checkpoint.resolve()),
                       "sha256": sha256(req.checkpoint), "workload": meta["workload"],
                       "model": meta["model"], "method": meta["method"]},  # fmt: skip
        "tasks": tasks,
        "inputs": [{"name": dense.graph.input[0].name, "shape": ["batch", *in_shape[1:]], "dtype": "float32"}],
        "outputs": [{"name": t, "task": t} for t in tasks],
        "files": {"model": "model.onnx", "dense": "dense.onnx", "library": lib_name},
        "library": {"file": lib_name, "abi": ABI_VERSION, "arch": elf_arch(tmp / lib_name),
                    "sha256": sha256(tmp / lib_name)},  # fmt: skip
        "format_policy": req.policy,
        "layers": [dataclasses.asdict(c) for c in choices],
        "summary": {"layers": len(choices), "formats": counts, "model_bytes": model_bytes, "dense_bytes": dense_bytes,
                    "size_ratio": model_bytes / dense_bytes},  # fmt: skip
    }
