"""Which sensor backend measures a bench: the one ``--energy`` names, or (``auto``) the first that
opens among those the artifact's target lists in its ``[power]`` section, jetson-stats first on a
Jetson where its service runs. When none opens, the reasons of each say why, in one line."""

from __future__ import annotations

from collections.abc import Callable

from edgeprune.bench.energy.sensor import NotMeasured, Sensor, SensorError
from edgeprune.errors import UserError

# --energy NAME -> how it opens, given the target's total rail
BACKENDS: dict[str, Callable[[str], Sensor]] = {}


def _register() -> None:
    from edgeprune.bench.energy.ina import open_ina
    from edgeprune.bench.energy.jtop import JtopSensor
    from edgeprune.bench.energy.nvml import NvmlSensor
    from edgeprune.bench.energy.rapl import RaplSensor
    from edgeprune.bench.energy.rpi import PmicSensor
    from edgeprune.bench.energy.tegrastats import TegrastatsSensor

    BACKENDS.update({
        "jtop": JtopSensor,
        "ina3221-hwmon": lambda rail: open_ina("ina3221-hwmon", rail),
        "ina3221-iio": lambda rail: open_ina("ina3221-iio", rail),
        "ina238": lambda rail: open_ina("ina238", rail),
        "tegrastats": TegrastatsSensor,
        "rpi5-pmic": lambda rail: PmicSensor(),
        "rapl": lambda rail: RaplSensor(),
        "nvml": lambda rail: NvmlSensor(),
    })  # fmt: skip


_register()
CHOICES = ("auto", "none", *BACKENDS)


def candidates(sensor: str, interface: str, processor: str) -> list[str]:
    """The backends ``auto`` tries, in order, for a target's ``[power]`` section."""
    if sensor in ("ina3221", "ina238", "tegrastats", "jtop"):  # a Jetson
        sysfs = {"hwmon": ["ina3221-hwmon"], "iio": ["ina3221-iio"]}.get(interface, ["ina3221-hwmon", "ina3221-iio"])
        return ["jtop", *sysfs, "ina238", "tegrastats"]
    if sensor == "pmic":
        return ["rpi5-pmic"]
    return ["nvml", "rapl"] if processor == "gpu" else ["rapl"]  # a PC or server, or a board without sensors


def open_sensor(asked: str, sensor: str, interface: str, total_rail: str, processor: str = "cpu") -> Sensor:
    """The sensor to measure with. An unknown name or a backend asked for by name that cannot
    open is a :class:`UserError`; ``none``, or ``auto`` finding nothing, is :class:`NotMeasured`
    with the reason (a permission refused is always a reason, not an error: it is the machine's
    policy, and the run is still worth its latency)."""
    if asked not in CHOICES:
        raise UserError(f"--energy must be one of {', '.join(CHOICES)}, not {asked!r}")
    if asked == "none":
        raise NotMeasured("not measured: --energy none")
    names = [asked] if asked != "auto" else candidates(sensor, interface, processor)
    reasons = []
    for name in names:
        try:
            return BACKENDS[name](total_rail)
        except NotMeasured as exc:
            if "permission denied" in str(exc):
                raise
            reasons.append(str(exc).removeprefix("not measured: "))
        except SensorError as exc:  # it is there but failed at once: a reason for auto, an error if asked for
            reasons.append(f"{name}: {exc}")
    if asked != "auto":
        raise UserError(f"--energy {asked}: {reasons[0]}")
    raise NotMeasured("not measured: no power sensor found (" + "; ".join(reasons) + ")")
