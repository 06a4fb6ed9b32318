"""``edgeprune bench``: latency of an artifact's sparse model against its dense baseline, on
the machine it runs on, in the same run (interleaved), with percentiles, peak memory (each
model in its own process) and how closely the two agree. Energy is not measured in this
version: the record says so instead of holding a number."""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.timing import interleaved
from edgeprune.errors import UserError
from edgeprune.export.artifact import read_manifest, sha256
from edgeprune.runtime.library import check_library, session

FORMAT = "edgeprune.results/1"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_rss(model: Path, threads: int, library: Path | None, shape: list[int]) -> float | None:
    cmd = [sys.executable, "-m", "edgeprune.bench.memprobe", str(model), str(threads)]
    cmd += [str(library) if library else "", json.dumps(shape)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def bench_artifact(
    artifact: Path, threads: int | None = None, budget_s: float = 10.0, batch: int = 1
) -> dict[str, Any]:
    manifest = read_manifest(artifact)
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, not {threads}")
    threads = threads or int(manifest["target"].get("threads", 1))
    library = artifact / manifest["files"]["library"]
    isa = check_library(library)
    model, dense_path = artifact / manifest["files"]["model"], artifact / manifest["files"]["dense"]
    sparse = session(model, threads, library)
    dense = session(dense_path, threads)
    inp = manifest["inputs"][0]
    shape = [batch, *inp["shape"][1:]]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {inp["name"]: x}
    got, want = sparse.run(None, feed), dense.run(None, feed)
    agreement = {t: float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12))
                 for t, g, w in zip(manifest["tasks"], got, want, strict=True)}  # fmt: skip
    lat = interleaved({"sparse": lambda: sparse.run(None, feed), "dense": lambda: dense.run(None, feed)},
                      warmup=5, min_runs=30, budget_s=budget_s)  # fmt: skip
    mem_sparse = _peak_rss(model, threads, library, shape)
    mem_dense = _peak_rss(dense_path, threads, None, shape)
    return {
        "format": FORMAT,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "target": manifest["target"]["name"],
        "device": {"machine": platform.machine(), "cpu": _cpu_model(), "isa": isa, "hostname": platform.node()},
        "artifact": {"path": str(artifact), "model_sha256": sha256(model), "tasks": manifest["tasks"]},
        "threads": threads,
        "batch": batch,
        "latency": {"sparse": lat["sparse"].to_dict(), "dense": lat["dense"].to_dict()},
        "ratio_p50": lat["sparse"].p50 / lat["dense"].p50,
        "speedup_p50": lat["dense"].p50 / lat["sparse"].p50,
        "memory": {"sparse_peak_rss_mib": mem_sparse, "dense_peak_rss_mib": mem_dense,
                   "method": "VmHWM of a fresh process that loads the model and runs it 3 times"},  # fmt: skip
        "model_bytes": {"sparse": model.stat().st_size, "dense": dense_path.stat().st_size},
        "energy": None,
        "energy_reason": "not measured: this version has no energy sensor backend",
        "agreement": {"input": "seeded standard normal", "max_rel_error_vs_dense": agreement},
    }
