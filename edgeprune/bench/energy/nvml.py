"""NVML's total energy counter of a desktop or server NVIDIA GPU (Volta and newer;
``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver loaded, updated every 20-100 ms),
through ``nvidia-ml-py`` (``import pynvml``). Jetson boards have no NVML. Only the GPU's energy:
the host's CPU and memory are not in it."""

from __future__ import annotations

import contextlib
from typing import Any

from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError


class NvmlSensor:
    """A GPU's total energy counter, in joules."""

    backend = "nvml"
    kind: Kind = "energy"
    max_rate_hz = 100.0

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise NotMeasured("not measured: NVML needs nvidia-ml-py (pip install nvidia-ml-py)") from None
        self.nvml: Any = pynvml
        try:
            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self.handle)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)  # NOT_SUPPORTED before Volta
        except pynvml.NVMLError as exc:
            raise NotMeasured(f"not measured: NVML: {exc}") from None
        self.rail = f"GPU {index} ({name if isinstance(name, str) else name.decode()}) total energy"
        self.source = "nvmlDeviceGetTotalEnergyConsumption"

    def read(self) -> float:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) * 1e-3
        except self.nvml.NVMLError as exc:
            raise SensorError(f"NVML: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()
