"""Energy per inference, the bench's block mode: a single inference is too short for any sensor
to attribute, so each model runs in blocks of many inferences (about ``block_s`` each) while a
sampling thread records the sensor, and the energy of each block is the integral over its
window. Before the blocks, ``idle_s`` of idle are measured, and their mean power subtracted: the
*net* energy is what running the model added over the board sitting still, the *gross* what the
rail drew. Blocks of the sparse and the dense model alternate, so drift in temperature and clock
hits both alike, and their ratio is measured in the same run (the rule MLPerf Power keeps:
power and performance in the same run).

The uncertainty is one standard error of the mean net energy per inference: the spread over the
blocks combined with the idle baseline's standard error."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeprune.bench.energy.sampler import Sampler
from edgeprune.bench.energy.sensor import Sensor
from edgeprune.contracts.results import Energy, EnergyPerInference

METHOD = ("blocks of back-to-back inferences, sparse and dense alternating; energy integrated over each block "
          "from timestamped samples; idle power measured first and subtracted for net; uncertainty: one "
          "standard error (spread over blocks and the idle baseline's)")  # fmt: skip


@dataclass(frozen=True)
class EnergyPlan:
    idle_s: float = 2.0
    block_s: float = 1.0
    blocks: int = 3


def _per_inference(rows: list[tuple[float, float]], n: int, idle_w: float, idle_se: float) -> EnergyPerInference:
    joules = np.array([e for e, _ in rows])
    secs = np.array([s for _, s in rows])
    gross = joules / n
    net = (joules - idle_w * secs) / n
    spread = float(net.std(ddof=1) / math.sqrt(net.size)) if net.size > 1 else 0.0
    baseline = idle_se * float(secs.mean()) / n
    return EnergyPerInference(gross_j=float(gross.mean()), net_j=float(net.mean()),
                              uncertainty_j=math.hypot(spread, baseline),
                              mean_power_w=float(joules.sum() / secs.sum()), blocks=len(rows),
                              inferences_per_block=n, seconds_per_block=float(secs.mean()))  # fmt: skip


def measure_energy(sensor: Sensor, runs: dict[str, Callable[[], object]], latency_ms: dict[str, float],
                   plan: EnergyPlan, status: Callable[[str], None] = lambda _: None) -> Energy:  # fmt: skip
    """Energy per inference of each of ``runs`` (``sparse`` and ``dense``), blocks sized from
    their measured ``latency_ms``. Raises the sensor's :class:`SensorError` if it fails."""
    n = {k: max(1, math.ceil(plan.block_s * 1e3 / max(latency_ms[k], 1e-6))) for k in runs}
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    with Sampler(sensor) as sampler:
        start = time.perf_counter()
        status(f"energy: idle baseline ({plan.idle_s:g} s)")
        t0 = time.perf_counter()
        time.sleep(plan.idle_s)
        t1 = time.perf_counter()
        idle_w, idle_se = sampler.power_stats(t0, t1)
        for b in range(plan.blocks):
            for key, fn in runs.items():
                status(f"energy: block {b + 1}/{plan.blocks}, {key} ({n[key]} inferences)")
                t0 = time.perf_counter()
                for _ in range(n[key]):
                    fn()
                t1 = time.perf_counter()
                rows[key].append((sampler.energy(t0, t1), t1 - t0))
        end = time.perf_counter()
        rate = sampler.rate_hz(start, end)
    per = {k: _per_inference(rows[k], n[k], idle_w, idle_se) for k in runs}
    sparse, dense = per["sparse"], per["dense"]
    return Energy(backend=sensor.backend, rail=sensor.rail, source=sensor.source, sampling_hz=rate,
                  requested_hz=sensor.max_rate_hz or None, idle_power_w=idle_w, idle_uncertainty_w=idle_se,
                  idle_seconds=plan.idle_s, sparse=sparse, dense=dense,
                  ratio_net=sparse.net_j / dense.net_j if dense.net_j > 0 and sparse.net_j > 0 else None,
                  ratio_gross=sparse.gross_j / dense.gross_j if dense.gross_j > 0 else None, method=METHOD)  # fmt: skip
