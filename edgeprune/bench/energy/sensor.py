"""What every power sensor backend shares: the :class:`Sensor` protocol the sampler reads, the
errors it raises, and where the file-system readers look (``EDGEPRUNE_SYSFS_ROOT``, so a recorded
tree can stand in for a board).

A sensor reads one quantity for one rail (or a named sum of rails):

- ``power``: watts now (INA3221, INA238, tegrastats, jetson-stats, the Raspberry Pi 5 PMIC);
- ``energy``: joules since some origin, never decreasing (RAPL and NVML counters; the sensor
  unwraps a counter that rolls over).

Usage::

    power = manifest.target.power
    sensor = open_sensor("auto", power.sensor, power.interface, power.total_rail)   # detect.py
    value = sensor.read()                                                           # W or J, per sensor.kind
    sensor.close()                                                                  # whoever opened it
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Protocol

Kind = Literal["power", "energy"]
SYSFS_ROOT_ENV = "EDGEPRUNE_SYSFS_ROOT"


class SensorError(Exception):
    """The sensor failed while it was read (a file vanished, a tool printed a line it should
    not have): the measurement is void, and bench stops with this message."""


class NotMeasured(Exception):
    """No energy can be measured here; the message is the reason, as the results record it."""


TOTALS = ("VIN", "POM_5V_IN", "VDD_IN")  # a board's input rail, by the names Jetsons give it


def choose_total(rails: list[str], total_rail: str) -> list[str] | None:
    """The rails whose sum is the total: the target's ``total_rail``, else the input rail, else
    all of them; ``None`` when the target's rail is not among ``rails``."""
    if total_rail:
        return [total_rail] if total_rail in rails else None
    first = next((r for r in TOTALS if r in rails), None)
    return [first] if first else list(rails)


def rail_name(chosen: list[str]) -> str:
    return chosen[0] if len(chosen) == 1 else "sum(" + ",".join(chosen) + ")"


class Sensor(Protocol):
    """One rail's power or energy; closed by whoever opened it."""

    backend: str  # the backend's name, as --energy takes it
    rail: str  # what is measured: a rail, a named sum of rails, a counter domain
    source: str  # where the numbers come from: files, a command, a service
    kind: Kind
    max_rate_hz: float  # the sampler polls at most this often; 0: read() blocks until a new value

    def read(self) -> float: ...

    def close(self) -> None: ...


def sysfs_root() -> Path:
    """The file-system root the readers look under (``/`` on a board)."""
    return Path(os.environ.get(SYSFS_ROOT_ENV, "/"))


def read_number(path: Path, what: str) -> float:
    """A number from a sysfs file; a vanished file or a garbled value is a :class:`SensorError`
    naming the path, a permission problem is :class:`NotMeasured` (the files are root-only on
    some kernels, and that is the machine's policy, not a failure)."""
    try:
        text = path.read_text()
    except PermissionError:
        raise NotMeasured(f"not measured: permission denied reading {path}") from None
    except OSError as exc:
        raise SensorError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return float(text.strip())
    except ValueError:
        raise SensorError(f"{what}: {path} holds {text.strip()[:40]!r}, not a number") from None
