"""Interleaved timing: candidates take turns, one run each per round, so drift in clock speed or
load hits all of them alike and their ratio is measured in the same conditions."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from edgeprune.contracts.results import LatencyStats


@dataclasses.dataclass
class Latency:
    """Per-run latencies in milliseconds."""

    samples: np.ndarray

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples, 50))

    def stats(self) -> LatencyStats:
        s = self.samples
        return LatencyStats(p50_ms=self.p50, p90_ms=float(np.percentile(s, 90)), p99_ms=float(np.percentile(s, 99)),
                            mean_ms=float(s.mean()), min_ms=float(s.min()), runs=int(s.size))  # fmt: skip


def interleaved(
    runs: dict[str, Callable[[], object]],
    *,
    warmup: int = 3,
    min_runs: int = 20,
    max_runs: int = 1000,
    budget_s: float = 5.0,
) -> dict[str, Latency]:
    """Time each callable in round robin until every one has ``min_runs`` samples and the
    time budget is spent (or ``max_runs``). Medians settle quickly; the budget buys p99."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    start = time.perf_counter()
    n = 0
    while n < max_runs and (n < min_runs or time.perf_counter() - start < budget_s):
        for key, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - t0) * 1e3)
        n += 1
    return {k: Latency(np.asarray(v)) for k, v in samples.items()}
