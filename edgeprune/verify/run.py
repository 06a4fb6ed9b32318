"""``edgeprune verify``: run an artifact on sample inputs for its own target (natively, or under
qemu-aarch64 with the board's CPU model) and compare every task output with the masked PyTorch
model of its checkpoint on this machine: PASS when every value is within 1e-4 relative
(1e-5 absolute floor). It measures no time: emulated timings mean nothing.

On a board with only the runtime installed (no PyTorch), the reference is the artifact's
dense ONNX run by onnxruntime, which compile checked against PyTorch; the output says which."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeprune.errors import UserError
from edgeprune.export.artifact import read_manifest, sha256
from edgeprune.runtime import run_npz
from edgeprune.runtime.library import host_arch, session
from edgeprune.verify.emulator import emulated_python, run_emulated

RTOL, ATOL = 1e-4, 1e-5


@dataclasses.dataclass
class OutputCheck:
    sample: int
    task: str
    passed: bool
    max_abs: float
    of_tolerance: float  # worst |error| / (rtol*|reference| + atol): PASS when at most 1


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _reference(ckpt_path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    from edgeprune.checkpoint import load_checkpoint, masked_model

    ckpt = load_checkpoint(ckpt_path)
    with torch.no_grad():
        out = masked_model(ckpt)(torch.from_numpy(x))
    return {t: out[t].numpy() for t in ckpt.meta["tasks"]}


def _inputs(workload: str, shape: list, samples: int) -> np.ndarray:
    from edgeprune.workload.registry import resolve_workload

    return resolve_workload(workload).inputs_at(samples, tuple(shape[2:])).numpy()


@dataclasses.dataclass
class Verification:
    ran: str  # "native" or "qemu-aarch64 -cpu X"
    reference: str
    checks: list[OutputCheck]


def verify_artifact(artifact: Path, checkpoint: Path | None = None, samples: int = 2) -> Verification:
    """One check per sample and task."""
    manifest = read_manifest(artifact)
    if samples < 1:
        raise UserError(f"--samples must be at least 1, got {samples}")
    arch = manifest["library"]["arch"]
    if _have_torch():
        ckpt_path = checkpoint or Path(manifest["checkpoint"].get("path", manifest["checkpoint"]["file"]))
        if not ckpt_path.is_file():
            raise UserError(f"checkpoint {ckpt_path} (the artifact's source) not found; pass --checkpoint")
        if sha256(ckpt_path) != manifest["checkpoint"]["sha256"]:
            raise UserError(f"{ckpt_path} is not the checkpoint this artifact was compiled from (sha256 differs)")
        x = _inputs(manifest["checkpoint"]["workload"], manifest["inputs"][0]["shape"], samples)
        want = _reference(ckpt_path, x)
        reference = "the masked PyTorch model of the checkpoint"
    else:
        shape = [samples, *manifest["inputs"][0]["shape"][1:]]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        dense = session(artifact / manifest["files"]["dense"])
        want = dict(zip(manifest["tasks"], dense.run(None, {manifest["inputs"][0]["name"]: x}), strict=True))
        reference = "dense.onnx on onnxruntime (PyTorch is not installed; compile checked it against PyTorch)"
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **{f"s{i}": x[i : i + 1] for i in range(samples)})
        args = [str(artifact / manifest["files"]["model"]), str(artifact / manifest["files"]["library"]),
                str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz")]  # fmt: skip
        script = Path(run_npz.__file__)
        if arch == host_arch():
            how = "native"
            done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
        elif arch == "aarch64":
            qemu_cpu = manifest["target"].get("qemu_cpu") or "cortex-a57"
            how = f"qemu-aarch64 -cpu {qemu_cpu}"
            done = run_emulated(emulated_python(), qemu_cpu, script, args)
        else:
            raise UserError(f"cannot run an artifact for {arch} on {host_arch()}, natively or emulated")
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).strip().splitlines() if "cpuinfo" not in ln]
            raise UserError(f"the artifact failed to run ({how}): {(lines or ['no output'])[-1]}")
        got = dict(np.load(Path(tmp) / "out.npz"))
    checks = []
    for i in range(samples):
        for task in manifest["tasks"]:
            a, b = got[f"s{i}/{task}"], want[task][i : i + 1]
            if a.shape != b.shape:
                checks.append(OutputCheck(i, task, False, float("inf"), float("inf")))
                continue
            err = np.abs(a - b)
            worst = float((err / (RTOL * np.abs(b) + ATOL)).max())
            checks.append(OutputCheck(i, task, worst <= 1.0, float(err.max()), worst))
    return Verification(how, reference, checks)

