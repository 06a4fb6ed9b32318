"""``edgeprune bench``: latency of an artifact's sparse model against its dense baseline, on
the machine it runs on, in the same run (interleaved), with percentiles, peak memory (each
model in its own process), how closely the two agree, and energy per inference in block mode
(:mod:`edgeprune.bench.energy.measure`) where a power sensor is found; where none is, the record
says why instead of holding a number. The models are loaded through the
runner of the artifact's backend (:mod:`edgeprune.runtime.runner`), which checks every file
against the manifest (sha256 and size) before loading it; the sizes and the model's sha256 in
the results are the manifest's, so checked, not read again."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from edgeprune.bench.energy.detect import open_sensor
from edgeprune.bench.energy.measure import EnergyPlan, measure_energy
from edgeprune.bench.energy.sensor import NotMeasured, Sensor, SensorError
from edgeprune.bench.timing import interleaved
from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import (
    Agreement,
    ArtifactRun,
    DeviceInfo,
    Energy,
    ModelBytes,
    PeakMemory,
    Results,
)
from edgeprune.errors import UserError
from edgeprune.runtime.runner import open_runner

EMULATED_ENV = "EDGEPRUNE_EMULATED"  # set by an emulated board's launcher: the CPU it emulates


def cpu_model() -> str:
    emulated = os.environ.get(EMULATED_ENV)
    if emulated:
        return f"{emulated}, emulated by qemu-user (its timings mean nothing)"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


PROBE = "VmHWM of a fresh process that loads the model and runs it 3 times"


def _peak_rss(artifact: Path, role: str, threads: int, shape: list[int]) -> float | None:
    cmd = [sys.executable, "-m", "edgeprune.bench.memprobe", str(artifact), role, str(threads), json.dumps(shape)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):  # an emulated board cannot start another Python
        return None
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


PROCESSORS = ("auto", "cpu", "gpu")


def choose_processor(artifact: Path, manifest: Manifest, asked: str) -> tuple[Literal["cpu", "gpu"], str]:
    """Which modules to time (``cpu`` or ``gpu``) and, when an artifact's GPU modules are not
    the ones, why. ``auto``: the GPU modules where the artifact has them and this machine has
    a CUDA device the TVM runtime can use."""
    if asked not in PROCESSORS:
        raise UserError(f"--on must be one of {', '.join(PROCESSORS)}, not {asked!r}")
    has_gpu = manifest.gpu is not None and bool(manifest.gpu.modules)
    if asked == "cpu":
        return "cpu", "the artifact's GPU modules were not run (--on cpu)" if has_gpu else ""
    if not has_gpu:
        if asked == "gpu":
            raise UserError(f"{artifact} has no GPU modules: compile it with --backend tvm for a board with a GPU")
        return "cpu", ""
    from edgeprune.runtime.elf import host_arch
    from edgeprune.runtime.tvm_runner import cuda_unavailable

    if manifest.target.arch != host_arch():  # the runner refuses it, naming the architecture
        return ("gpu" if asked == "gpu" else "cpu"), ""
    why = cuda_unavailable()
    if why is None:
        return "gpu", ""
    if asked == "gpu":
        raise UserError(f"--on gpu: {why}")
    return "cpu", f"the artifact's GPU modules were not run: {why}"


def _sensor(manifest: Manifest, asked: str, processor: str) -> Sensor | str:
    """The energy sensor, or why there is none (``not measured: ...``); a sensor that fails as it
    opens is a reason for ``auto`` and an error when named (:func:`open_sensor`)."""
    power = manifest.target.power
    try:
        return open_sensor(asked, power.sensor, power.interface, power.total_rail, processor)
    except NotMeasured as exc:
        return str(exc)


def bench_artifact(artifact: Path, threads: int | None = None, budget_s: float = 10.0, batch: int = 1,
                   on: str = "auto", energy: str = "auto", plan: EnergyPlan | None = None,
                   status: Callable[[str], None] = lambda _: None) -> Results:  # fmt: skip
    """Bench ``artifact`` on this machine; ``on``: auto, cpu or gpu (:func:`choose_processor`);
    ``energy``: auto, none or a sensor backend (:mod:`edgeprune.bench.energy.detect`)."""
    manifest = Manifest.read(artifact)
    threads = manifest.target.threads if threads is None else threads  # open_runner refuses fewer than 1
    processor, note = choose_processor(artifact, manifest, on)
    sensor = _sensor(manifest, energy, processor)  # before the models load: a bad --energy costs nothing
    try:
        return _bench(artifact, manifest, threads, budget_s, batch, processor, note, sensor, plan or EnergyPlan(),
                      status)  # fmt: skip
    finally:
        if not isinstance(sensor, str):
            sensor.close()


def _bench(artifact: Path, manifest: Manifest, threads: int, budget_s: float, batch: int,
           processor: Literal["cpu", "gpu"], note: str, sensor: Sensor | str, plan: EnergyPlan,
           status: Callable[[str], None]) -> Results:  # fmt: skip
    roles = ("gpu_model", "gpu_dense") if processor == "gpu" else ("model", "dense")
    sparse = open_runner(artifact, manifest, roles[0], threads)
    dense = open_runner(artifact, manifest, roles[1], threads)
    inp = manifest.inputs[0]
    shape = [batch, *(int(d) for d in inp.shape[1:])]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {inp.name: x}
    got, want = sparse.run(feed), dense.run(feed)
    agreement = {t: float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12))
                 for t, g, w in zip(manifest.tasks, got, want, strict=True)}  # fmt: skip
    runs: dict[str, Callable[[], object]] = {"sparse": lambda: sparse.run(feed), "dense": lambda: dense.run(feed)}
    status("timing sparse vs dense")
    lat = interleaved(runs, warmup=5, min_runs=30, budget_s=budget_s)
    energy: Energy | None = None
    reason = sensor if isinstance(sensor, str) else ""
    if not isinstance(sensor, str):
        try:
            energy = measure_energy(sensor, runs, {k: lat[k].p50 for k in runs}, plan, status)
        except (SensorError, NotMeasured) as exc:
            raise UserError(f"energy sensor {sensor.backend} failed during the run: "
                            f"{str(exc).removeprefix('not measured: ')}") from None  # fmt: skip
    status("peak memory")
    peaks = [_peak_rss(artifact, role, threads, shape) for role in roles]
    model, dense_file = manifest.files[roles[0]], manifest.files[roles[1]]  # checked by open_runner
    return Results(
        time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        target=manifest.target.name,
        device=DeviceInfo(machine=platform.machine(), cpu=cpu_model(), isa=sparse.isa, hostname=platform.node(),
                          processor=processor, processor_note=note),  # fmt: skip
        artifact=ArtifactRun(path=str(artifact), model_sha256=model.sha256, tasks=manifest.tasks),
        threads=threads,
        batch=batch,
        latency={k: lat[k].stats() for k in ("sparse", "dense")},
        ratio_p50=lat["sparse"].p50 / lat["dense"].p50,
        speedup_p50=lat["dense"].p50 / lat["sparse"].p50,
        memory=PeakMemory(sparse_peak_rss_mib=peaks[0], dense_peak_rss_mib=peaks[1],
                          method=(PROBE if None not in peaks else f"{PROBE}: none where it could not run")
                          + (" (host memory; the GPU's is not counted)" if processor == "gpu" else "")),  # fmt: skip
        model_bytes=ModelBytes(sparse=model.bytes, dense=dense_file.bytes),
        energy=energy,
        energy_reason=reason,
        agreement=Agreement(input="seeded standard normal", max_rel_error_vs_dense=agreement),
    )
