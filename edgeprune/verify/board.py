"""``edgeprune verify``, the board side: run an artifact on sample inputs for its own target
(natively, or under qemu-aarch64 with the board's CPU model) and compare every task output with a
reference: PASS when every value is within 1e-4 relative (1e-5 absolute floor). It measures no
time: emulated timings mean nothing. No torch here: the PyTorch reference is made by
:mod:`edgeprune.verify.reference` on a machine that has it; without it the reference is the
artifact's dense ONNX, which compile checked against PyTorch."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.runtime import tvm_module
from edgeprune.runtime.artifact_files import checked_path
from edgeprune.runtime.elf import host_arch
from edgeprune.runtime.runner import open_runner
from edgeprune.runtime.tvm_runner import cuda_runtime_library, cuda_unavailable, runtime_library
from edgeprune.verify.emulator import emulated_python, emulated_tvm_runtime, run_emulated

RTOL, ATOL = 1e-4, 1e-5


@dataclasses.dataclass
class Reference:
    inputs: np.ndarray  # samples x C x H x W
    outputs: dict[str, np.ndarray]  # task -> samples x ...
    description: str


@dataclasses.dataclass
class OutputCheck:
    sample: int
    task: str
    passed: bool
    max_abs: float
    of_tolerance: float  # worst |error| / (rtol*|reference| + atol): PASS when at most 1


@dataclasses.dataclass
class Verification:
    ran: str  # "native" or "qemu-aarch64 -cpu X"
    reference: str
    checks: list[OutputCheck]
    gpu: str = ""  # for an artifact with GPU modules: whether its sparse one ran, and where, or why not


def dense_reference(artifact: Path, manifest: Manifest, samples: int) -> Reference:
    """Seeded inputs through the artifact's dense model on this machine."""
    shape = [samples, *(int(d) for d in manifest.inputs[0].shape[1:])]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    dense = open_runner(artifact, manifest, "dense", threads=1)
    # one sample at a time, as the artifact's model runs them (a TVM module has a fixed batch of 1)
    runs = [dense.run({manifest.inputs[0].name: x[i : i + 1]}) for i in range(samples)]
    want = {t: np.concatenate([r[k] for r in runs]) for k, t in enumerate(manifest.tasks)}
    why = "PyTorch is not installed; compile checked it against PyTorch"
    return Reference(x, want, f"{manifest.files['dense'].path} on {manifest.backend} ({why})")


def _run(artifact: Path, manifest: Manifest, x: np.ndarray, gpu: bool = False) -> tuple[str, dict[str, np.ndarray]]:
    """The sparse model's outputs on each sample, keyed ``s<i>/<task>``, and how it ran; with
    ``gpu``, those of the GPU's sparse module (natively, on a machine with a CUDA device)."""
    arch = manifest.library.arch if manifest.library else manifest.target.arch
    native = arch in (host_arch(), "native")
    if not native and arch != "aarch64":
        raise UserError(f"cannot run an artifact for {arch} on {host_arch()}, natively or emulated")
    env = None if native else emulated_python()
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", allow_pickle=False, **{f"s{i}": x[i : i + 1] for i in range(x.shape[0])})
        files = [str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz")]
        # only checked paths reach the subprocess (native or under qemu)
        model = str(checked_path(artifact, manifest, "gpu_model" if gpu else "model"))
        if manifest.backend == "tvm":
            runtime = runtime_library() if env is None else emulated_tvm_runtime(env)
            script, args = Path(tvm_module.__file__), [model, str(runtime), *files, *manifest.tasks]
            if gpu and manifest.gpu is not None:
                spec = manifest.gpu.modules["model"]
                code = checked_path(artifact, manifest, spec.code)
                args = ["--cuda", str(cuda_runtime_library()), str(code), spec.source_sha256, *args]
        else:
            library = str(checked_path(artifact, manifest, "library"))
            # its path only: importing it would import onnxruntime, which a TVM board need not have
            script, args = Path(tvm_module.__file__).with_name("run_npz.py"), [model, library, *files]
        if env is None:
            how = "native, on the GPU" if gpu else "native"
            try:
                done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                                      timeout=1800)  # fmt: skip
            except subprocess.TimeoutExpired:
                raise UserError("the artifact did not finish running the samples in 30 minutes") from None
        else:
            qemu_cpu = manifest.target.qemu_cpu or "cortex-a57"
            how = f"qemu-aarch64 -cpu {qemu_cpu}"
            done = run_emulated(env, qemu_cpu, script, args)
        if done.returncode != 0:
            said = failure_summary(done.returncode, done.stderr, done.stdout)
            raise UserError(f"the artifact failed to run ({how}): {said}")
        return how, dict(np.load(Path(tmp) / "out.npz"))


_TRACEBACK_NOISE = ("Traceback (most recent call last)", "During handling of the above exception",
                    "The above exception was the direct cause")


def failure_summary(returncode: int, stderr: str, stdout: str = "", keep: int = 3) -> str:
    """What a failed run said, on one line: its last ``keep`` meaningful lines joined by " | "
    (no traceback frames, no blank lines, no cpuinfo warnings), or the signal that killed it."""
    meaningful = [ln.strip() for ln in (stderr + "\n" + stdout).splitlines()
                  if ln.strip() and not ln[:1].isspace() and "cpuinfo" not in ln
                  and not ln.startswith(_TRACEBACK_NOISE)]  # fmt: skip
    if returncode < 0:
        try:
            meaningful.append(f"killed by {signal.Signals(-returncode).name}")
        except ValueError:
            meaningful.append(f"killed by signal {-returncode}")
    return " | ".join(meaningful[-keep:]) or f"exit code {returncode}, no output"


def verify_artifact(artifact: Path, manifest: Manifest, reference: Reference) -> Verification:
    """One check per sample and task; for an artifact with GPU modules on a machine with a CUDA
    device, one more per sample and task for the GPU's module (its task named ``<task> (gpu)``)."""
    how, got = _run(artifact, manifest, reference.inputs)
    checks = _compare(got, manifest.tasks, reference, "")
    gpu = ""
    if manifest.gpu is not None and manifest.gpu.modules:
        why = cuda_unavailable() if how == "native" else f"run {how}, with no GPU"
        if why is None:
            gpu, on_gpu = _run(artifact, manifest, reference.inputs, gpu=True)
            checks += _compare(on_gpu, manifest.tasks, reference, " (gpu)")
        else:
            gpu = f"not run: {why}"
    return Verification(how, reference.description, checks, gpu)


def _compare(got: dict[str, np.ndarray], tasks: list[str], reference: Reference, label: str) -> list[OutputCheck]:
    checks = []
    for i in range(reference.inputs.shape[0]):
        for task in tasks:
            a, b = got[f"s{i}/{task}"], reference.outputs[task][i : i + 1]
            if a.shape != b.shape:
                checks.append(OutputCheck(i, task + label, False, float("inf"), float("inf")))
                continue
            err = np.abs(a - b)
            worst = float((err / (RTOL * np.abs(b) + ATOL)).max())
            checks.append(OutputCheck(i, task + label, worst <= 1.0, float(err.max()), worst))
    return checks
