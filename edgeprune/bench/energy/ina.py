"""Jetson's on-module power monitors, read from sysfs.

- INA3221, JetPack 5 and 6: ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/`` with ``inN_label``
  (the rail), ``inN_input`` (mV) and ``currN_input`` (mA). The hwmon number changes from boot to
  boot, so channels are found by label; an AGX Orin has a second chip, globbed alike.
- INA3221, JetPack 4: ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/`` with ``rail_name_N`` and
  ``in_powerN_input`` (mW).
- INA238 (Jetson Thor's module input): ``/sys/bus/i2c/drivers/ina238/*/hwmon/hwmon*/power1_input``
  (µW).

The total is the target's ``total_rail`` when it names one, else VIN, POM_5V_IN or VDD_IN, else
the sum of every rail found (an AGX Orin has no input rail on its monitors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench.energy.sensor import (
    Kind,
    NotMeasured,
    SensorError,
    choose_total,
    rail_name,
    read_number,
    sysfs_root,
)

HWMON_GLOB = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
IIO_GLOB = "sys/bus/i2c/drivers/ina3221x/*/iio:device*"
INA238_GLOB = "sys/bus/i2c/drivers/ina238/*/hwmon/hwmon*"


@dataclass
class Channel:
    """One rail: power is ``scale`` times the product of the files (or the one file)."""

    rail: str
    files: tuple[Path, ...]
    scale: float

    def watts(self) -> float:
        value = self.scale
        for f in self.files:
            value *= read_number(f, self.rail)
        return value


def _label(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except PermissionError:
        raise NotMeasured(f"not measured: permission denied reading {path}") from None
    except OSError:
        return None


def hwmon_channels(root: Path) -> list[Channel]:
    """Every labelled INA3221 channel under ``root`` (JetPack 5/6)."""
    found = []
    for d in sorted(root.glob(HWMON_GLOB)):
        for label_file in sorted(d.glob("in*_label")):
            n = label_file.name[2:-6]
            rail = _label(label_file)
            volt, curr = d / f"in{n}_input", d / f"curr{n}_input"
            if rail and volt.exists() and curr.exists():
                found.append(Channel(rail, (volt, curr), 1e-6))  # mV x mA
    return found


def iio_channels(root: Path) -> list[Channel]:
    """Every named INA3221 channel under ``root`` (JetPack 4)."""
    found = []
    for d in sorted(root.glob(IIO_GLOB)):
        for name_file in sorted(d.glob("rail_name_*")):
            n = name_file.name.rsplit("_", 1)[1]
            rail = _label(name_file)
            power = d / f"in_power{n}_input"
            if rail and power.exists():
                found.append(Channel(rail, (power,), 1e-3))  # mW
    return found


def ina238_channels(root: Path) -> list[Channel]:
    """Jetson Thor's module-input monitor under ``root`` (one channel)."""
    found = []
    for d in sorted(root.glob(INA238_GLOB)):
        power = d / "power1_input"
        if power.exists():
            label = d / "in1_label"
            rail = (_label(label) if label.exists() else None) or "INA238"
            found.append(Channel(rail, (power,), 1e-6))  # µW
    return found


class RailSensor:
    """Power of one rail, or of the sum of several, from sysfs channels: the INA3221 and INA238
    backends."""

    kind: Kind = "power"
    max_rate_hz = 100.0  # plenty for blocks of a second; faster costs the model time (benchmarks/energy_overhead.py)

    def __init__(self, backend: str, channels: list[Channel], total_rail: str, where: str) -> None:
        if not channels:
            raise NotMeasured(f"not measured: no {backend} channels under {where}")
        by_rail = {c.rail: c for c in channels}
        names = choose_total(list(by_rail), total_rail)
        if names is None:
            raise NotMeasured(f"not measured: {backend} has no rail {total_rail} under {where} "
                              f"(it has: {', '.join(sorted(by_rail))})")  # fmt: skip
        chosen = [by_rail[n] for n in names]
        self.backend = backend
        self.channels = chosen
        self.rail = rail_name(names)
        self.source = ", ".join(str(f) for c in chosen for f in c.files)
        sum(c.watts() for c in chosen)  # permission and garbled values show now, not in the sampling thread

    def read(self) -> float:
        try:
            return sum(c.watts() for c in self.channels)
        except NotMeasured as exc:  # readable at open, refused now: the files changed under us
            raise SensorError(str(exc)) from None

    def close(self) -> None:
        pass


def open_ina(backend: str, total_rail: str) -> RailSensor:
    """``ina3221-hwmon``, ``ina3221-iio`` or ``ina238``."""
    root = sysfs_root()
    finders = {"ina3221-hwmon": (hwmon_channels, HWMON_GLOB), "ina3221-iio": (iio_channels, IIO_GLOB),
               "ina238": (ina238_channels, INA238_GLOB)}  # fmt: skip
    find, glob = finders[backend]
    if total_rail and backend == "ina238":
        total_rail = ""  # the one channel is the module's input
    return RailSensor(backend, find(root), total_rail, str(root / glob))
