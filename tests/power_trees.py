"""Recorded sensor trees for the energy tests: sysfs layouts of the boards' power monitors, in a
temporary root (``EDGEPRUNE_SYSFS_ROOT``), whose values a thread changes along a known power
trace, so what the sampler integrates can be checked against the trace's exact integral."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


def write_value(path: Path, value: float | int | str) -> None:
    """Replace a file's content at once (a reader never sees half a number)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def wavy(base: float = 4.0, swing: float = 2.0, period: float = 0.8) -> Callable[[float], float]:
    return lambda t: base + swing * math.sin(2 * math.pi * t / period)


def wavy_integral(t0: float, t1: float, base: float = 4.0, swing: float = 2.0, period: float = 0.8) -> float:
    k = 2 * math.pi / period
    return base * (t1 - t0) + swing / k * (math.cos(k * t0) - math.cos(k * t1))


class Trace:
    """Writes ``power(t)`` (watts, t in seconds since start, on ``time.perf_counter``) through
    ``put(watts)`` every ``period_s`` on a thread; ``energy_so_far`` integrates what it wrote."""

    def __init__(self, put: Callable[[float], None], power: Callable[[float], float], period_s: float = 0.001):
        self.put, self.power, self.period = put, power, period_s
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self.put(power(0.0))
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Trace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.put(self.power(time.perf_counter() - self.start))
            self._stop.wait(self.period)


def hwmon_tree(root: Path, rails: dict[str, float], chips: int = 1) -> dict[str, Callable[[float], None]]:
    """INA3221 under hwmon (JetPack 5/6): 5 V on every rail, the current set from watts. Returns
    a setter per rail."""
    setters = {}
    names = list(rails)
    per_chip = math.ceil(len(names) / chips)
    for c in range(chips):
        d = root / f"sys/bus/i2c/drivers/ina3221/1-004{c}/hwmon/hwmon{3 + c}"
        d.mkdir(parents=True)
        for n, rail in enumerate(names[c * per_chip:(c + 1) * per_chip], start=1):
            write_value(d / f"in{n}_label", rail)
            write_value(d / f"in{n}_input", 5000)

            def put(watts: float, f: Path = d / f"curr{n}_input") -> None:
                write_value(f, int(round(watts / 5.0 * 1000)))

            put(rails[rail])
            setters[rail] = put
    return setters


def iio_tree(root: Path, rails: dict[str, float]) -> dict[str, Callable[[float], None]]:
    """INA3221 under iio (JetPack 4): power in mW."""
    d = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    d.mkdir(parents=True)
    setters = {}
    for n, (rail, watts) in enumerate(rails.items()):
        write_value(d / f"rail_name_{n}", rail)

        def put(w: float, f: Path = d / f"in_power{n}_input") -> None:
            write_value(f, int(round(w * 1000)))

        put(watts)
        setters[rail] = put
    return setters


def ina238_tree(root: Path) -> Callable[[float], None]:
    d = root / "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon7"
    d.mkdir(parents=True)
    return lambda w: write_value(d / "power1_input", int(round(w * 1e6)))


class RaplTree:
    """A RAPL package counter (µJ) that rolls over at ``range_uj``; ``put`` is power in watts,
    integrated by the writer into the counter."""

    def __init__(self, root: Path, range_uj: int = 262_143_328_850) -> None:
        self.dir = root / "sys/class/powercap/intel-rapl:0"
        self.dir.mkdir(parents=True)
        (root / "sys/class/powercap/intel-rapl:0:0").mkdir()  # a subdomain (core): not summed
        write_value(self.dir / "name", "package-0")
        write_value(self.dir / "max_energy_range_uj", range_uj)
        self.range = range_uj
        self.uj = 0.0
        self.last: float | None = None
        self.removed = False
        write_value(self.dir / "energy_uj", 0)

    def remove(self) -> None:
        """The counter file disappears (a driver unloaded) and is not written again."""
        self.removed = True
        (self.dir / "energy_uj").unlink()

    def put(self, watts: float) -> None:
        if self.removed:
            return
        now = time.perf_counter()
        if self.last is not None:
            self.uj += watts * (now - self.last) * 1e6
        self.last = now
        write_value(self.dir / "energy_uj", int(self.uj) % self.range)
