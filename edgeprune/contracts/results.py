"""``results.json``: one bench run of an artifact on one device: the sparse model against the
dense baseline of the same checkpoint, timed in the same run, with peak memory, agreement and
energy (``null`` with the reason when it was not measured). Format ``edgeprune.results/1``.

Usage::

    results = Results.read(Path("artifact/results.json"))
    results.speedup_p50, results.latency["sparse"].p99_ms
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

from edgeprune.contracts.base import Contract, decode, parse
from edgeprune.errors import UserError

RESULTS_FORMAT: Final = "edgeprune.results/1"


class LatencyStats(Contract):
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    runs: int


class DeviceInfo(Contract):
    machine: str
    cpu: str
    isa: str
    hostname: str
    processor: Literal["cpu", "gpu"] = "cpu"  # what ran the models
    processor_note: str = ""  # why the GPU modules of an artifact were not the ones timed


class ArtifactRun(Contract):
    path: str
    model_sha256: str
    tasks: list[str]


class PeakMemory(Contract):
    sparse_peak_rss_mib: float | None  # None when the probe could not run
    dense_peak_rss_mib: float | None
    method: str


class ModelBytes(Contract):
    sparse: int
    dense: int


class Agreement(Contract):
    input: str
    max_rel_error_vs_dense: dict[str, float]


class Results(Contract):
    format: Literal["edgeprune.results/1"] = RESULTS_FORMAT
    time: str  # ISO 8601, UTC
    target: str
    device: DeviceInfo
    artifact: ArtifactRun
    threads: int
    batch: int
    latency: dict[str, LatencyStats]  # sparse, dense
    ratio_p50: float
    speedup_p50: float
    memory: PeakMemory
    model_bytes: ModelBytes
    energy: dict[str, Any] | None  # None: not measured, and energy_reason says why
    energy_reason: str
    agreement: Agreement

    @classmethod
    def read(cls, path: Path) -> Results:
        if not path.is_file():
            raise UserError(f"results file not found: {path}")
        return parse(cls, decode(path.read_bytes(), str(path)), str(path), RESULTS_FORMAT)
