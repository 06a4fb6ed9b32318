"""``edgeprune bench``: latency of an artifact's sparse model against its dense baseline, on
the machine it runs on, in the same run (interleaved), with percentiles, peak memory (each
model in its own process) and how closely the two agree. Energy is not measured in this
version: the record says so instead of holding a number. The models are loaded through the
runner of the artifact's backend (:mod:`edgeprune.runtime.runner`), which checks every file
against the manifest (sha256 and size) before loading it; the sizes and the model's sha256 in
the results are the manifest's, so checked, not read again."""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgeprune.bench.timing import interleaved
from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import (
    Agreement,
    ArtifactRun,
    DeviceInfo,
    ModelBytes,
    PeakMemory,
    Results,
)
from edgeprune.runtime.runner import open_runner


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_rss(artifact: Path, role: str, threads: int, shape: list[int]) -> float | None:
    cmd = [sys.executable, "-m", "edgeprune.bench.memprobe", str(artifact), role, str(threads), json.dumps(shape)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def bench_artifact(artifact: Path, threads: int | None = None, budget_s: float = 10.0, batch: int = 1) -> Results:
    manifest = Manifest.read(artifact)
    threads = manifest.target.threads if threads is None else threads  # open_runner refuses fewer than 1
    sparse = open_runner(artifact, manifest, "model", threads)
    dense = open_runner(artifact, manifest, "dense", threads)
    inp = manifest.inputs[0]
    shape = [batch, *(int(d) for d in inp.shape[1:])]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {inp.name: x}
    got, want = sparse.run(feed), dense.run(feed)
    agreement = {t: float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12))
                 for t, g, w in zip(manifest.tasks, got, want, strict=True)}  # fmt: skip
    lat = interleaved({"sparse": lambda: sparse.run(feed), "dense": lambda: dense.run(feed)},
                      warmup=5, min_runs=30, budget_s=budget_s)  # fmt: skip
    model, dense_file = manifest.files["model"], manifest.files["dense"]  # checked by open_runner
    return Results(
        time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        target=manifest.target.name,
        device=DeviceInfo(machine=platform.machine(), cpu=_cpu_model(), isa=sparse.isa, hostname=platform.node()),
        artifact=ArtifactRun(path=str(artifact), model_sha256=model.sha256, tasks=manifest.tasks),
        threads=threads,
        batch=batch,
        latency={k: lat[k].stats() for k in ("sparse", "dense")},
        ratio_p50=lat["sparse"].p50 / lat["dense"].p50,
        speedup_p50=lat["dense"].p50 / lat["sparse"].p50,
        memory=PeakMemory(sparse_peak_rss_mib=_peak_rss(artifact, "model", threads, shape),
                          dense_peak_rss_mib=_peak_rss(artifact, "dense", threads, shape),
                          method="VmHWM of a fresh process that loads the model and runs it 3 times"),  # fmt: skip
        model_bytes=ModelBytes(sparse=model.bytes, dense=dense_file.bytes),
        energy=None,
        energy_reason="not measured: this version has no energy sensor backend",
        agreement=Agreement(input="seeded standard normal", max_rel_error_vs_dense=agreement),
    )
