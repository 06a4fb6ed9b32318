"""Intel RAPL (and AMD's, through the same powercap interface): the packages' energy counters
``/sys/class/powercap/intel-rapl:N/energy_uj`` (µJ), which roll over at ``max_energy_range_uj``.
Since CVE-2020-8694 the counters are readable by root only. The sensor sums the ``package-N``
domains (a laptop's ``psys`` domain, the whole platform, already holds them: it is used alone
only where there is no package domain) and unwraps each counter, so what it returns never
decreases."""

from __future__ import annotations

import re
from pathlib import Path

from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError, read_number, sysfs_root

POWERCAP = "sys/class/powercap"


class Counter:
    """One wrapping µJ counter, unwrapped: assumes fewer than one roll-over between two reads
    (the range is tens of seconds of a package's full power at least)."""

    def __init__(self, name: str, path: Path, range_uj: float) -> None:
        self.name, self.path, self.range_uj = name, path, range_uj
        self.last = read_number(path, name)
        self.offset = 0.0

    def joules(self) -> float:
        raw = read_number(self.path, self.name)
        if raw < self.last:
            self.offset += self.range_uj
        self.last = raw
        return (raw + self.offset) * 1e-6


class RaplSensor:
    """The package domains' energy, in joules since the sensor opened."""

    backend = "rapl"
    kind: Kind = "energy"
    max_rate_hz = 100.0  # the counters update about every millisecond; faster costs the model (energy_overhead.py)

    def __init__(self) -> None:
        base = sysfs_root() / POWERCAP
        domains = sorted(d for d in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", d.name))
        if not domains:
            raise NotMeasured(f"not measured: no RAPL package domains under {base}")
        named = {d: (d / "name").read_text().strip() if (d / "name").is_file() else d.name for d in domains}
        packages = [d for d in domains if named[d].startswith("package")]
        chosen = packages or [d for d in domains if named[d] == "psys"] or domains
        self.counters = []
        try:
            for d in chosen:
                wrap = read_number(d / "max_energy_range_uj", named[d])
                self.counters.append(Counter(named[d], d / "energy_uj", wrap))
        except SensorError as exc:
            raise NotMeasured(f"not measured: {exc}") from None
        self.rail = "+".join(c.name for c in self.counters)
        self.source = ", ".join(str(c.path) for c in self.counters)

    def read(self) -> float:
        try:
            return sum(c.joules() for c in self.counters)
        except NotMeasured as exc:
            raise SensorError(str(exc)) from None

    def close(self) -> None:
        pass
