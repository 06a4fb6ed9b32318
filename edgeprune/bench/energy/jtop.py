"""jetson-stats (``jtop``), the monitor Jetson users already run: its root service samples the
INA3221 rails and serves them on ``/run/jtop.sock``; ``jtop(interval=...)`` is the client.
Preferred on a Jetson where the service runs. Its ``tot`` is the total the service computes; its
``avg`` is a running (p+old)/2, not a mean, so only the instantaneous ``power`` (mW) is used."""

from __future__ import annotations

import contextlib
from typing import Any

from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError, sysfs_root

INTERVAL_S = 0.05
SOCKET = "run/jtop.sock"


class JtopSensor:
    """jetson-stats' reading of the target's rail, or its total."""

    backend = "jtop"
    kind: Kind = "power"
    max_rate_hz = 0.0  # read() waits for the service's next update

    def __init__(self, total_rail: str) -> None:
        sock = sysfs_root() / SOCKET
        try:
            from jtop import jtop  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise NotMeasured("not measured: jetson-stats is not installed (pip install jetson-stats)") from None
        if not sock.exists():
            raise NotMeasured(f"not measured: the jtop service is not running (no {sock})")
        self.client: Any = jtop(interval=INTERVAL_S)
        try:
            self.client.start()
        except Exception as exc:  # jtop raises its own JtopException, and OSError on the socket
            raise NotMeasured(f"not measured: jtop: {exc}") from None
        rails = self.client.power.get("rail", {})
        self.key = total_rail if total_rail in rails else None
        self.rail = self.key or str(self.client.power.get("tot", {}).get("name", "total"))
        self.source = f"jtop service ({sock}), interval {INTERVAL_S} s"

    def read(self) -> float:
        if not self.client.ok():
            raise SensorError("jtop: the service stopped answering")
        power = self.client.power
        entry = power.get("rail", {}).get(self.key) if self.key else power.get("tot")
        if not entry or "power" not in entry:
            raise SensorError(f"jtop: no power reading for {self.rail}")
        return float(entry["power"]) * 1e-3

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a client whose service died: nothing left to do
            self.client.close()
