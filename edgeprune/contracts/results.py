"""``results.json``: one bench run of an artifact on one device: the sparse model against the
dense baseline of the same checkpoint, timed in the same run, with peak memory, agreement and
energy per inference (``null`` with the reason when it was not measured). Format
``edgeprune.results/2``; a ``/1`` file (which never held energy) reads as the same document.

Usage::

    results = Results.read(Path("artifact/results.json"))
    results.speedup_p50, results.latency["sparse"].p99_ms
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from edgeprune.contracts.base import Contract, decode, parse
from edgeprune.errors import UserError

RESULTS_FORMAT: Final = "edgeprune.results/2"
_V1: Final = "edgeprune.results/1"


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
    remote: str = ""  # rpc://TRACKER/KEY when the board was reached over TVM RPC; empty: this machine


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


class EnergyPerInference(Contract):
    """One model's energy per inference over its blocks (:mod:`edgeprune.bench.energy.measure`)."""

    gross_j: float  # what the rail drew, per inference
    net_j: float  # gross less the idle power over the same time
    uncertainty_j: float  # one standard error of net_j
    mean_power_w: float
    blocks: int
    inferences_per_block: int
    seconds_per_block: float


class Energy(Contract):
    """Energy per inference of one bench run, sparse and dense (:mod:`edgeprune.bench.energy`)."""

    backend: str  # the sensor backend (--energy names)
    rail: str  # the rail or named sum of rails measured
    source: str  # the files, command or service read
    sampling_hz: float  # achieved over the measurement
    requested_hz: float | None  # None: as fast as the sensor delivers values
    idle_power_w: float
    idle_uncertainty_w: float
    idle_seconds: float
    sparse: EnergyPerInference
    dense: EnergyPerInference  # the baseline, measured in the same run
    ratio_net: float | None  # sparse/dense net; None when a net energy is not above zero
    ratio_gross: float | None  # None when the dense gross energy is not above zero
    method: str


class Results(Contract):
    format: Literal["edgeprune.results/2"] = RESULTS_FORMAT
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
    energy: Energy | None  # None: not measured, and energy_reason says why
    energy_reason: str  # empty when measured
    agreement: Agreement

    @classmethod
    def read(cls, path: Path) -> Results:
        if not path.is_file():
            raise UserError(f"results file not found: {path}")
        doc = decode(path.read_bytes(), str(path))
        if isinstance(doc, dict) and doc.get("format") == _V1:
            doc = {**doc, "format": RESULTS_FORMAT}  # /2 only added fields that /1 left null
        return parse(cls, doc, str(path), RESULTS_FORMAT)
