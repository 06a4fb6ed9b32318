"""``tegrastats``, the power readout every JetPack ships: one line per interval with each rail's
``NAME cur/avg``, in the formats of JetPack 4 to 7:

- JetPack 4, Nano: ``POM_5V_IN 933/933`` (mW, no unit); Xavier: ``VDD_IN 1038/1134``;
- JetPack 5 and 6 (Orin): a date first, ``VDD_GPU_SOC 2390mW/2390mW VIN_SYS_5V0 3522mW/3522mW``;
- JetPack 7 (Thor): ``VDD_GPU 0mW/0mW/0mW``, a third value (the maximum), ``GR3D_FREQ @[...]``.

Its own timestamps resolve to a second, so each line is stamped when it arrives. The value used
is ``cur``; the total is the target's ``total_rail``, else VIN, POM_5V_IN or VDD_IN, else the sum
of the rails on the line."""

from __future__ import annotations

import re
import shutil
import subprocess

from edgeprune.bench.energy.ina import TOTALS
from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError
from edgeprune.errors import one_line

INTERVAL_MS = 10
# NAME cur[mW]/avg[mW][/max[mW]], followed by a space or the end (RAM 1234/3956MB is not a rail)
_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")


def parse_line(line: str) -> dict[str, float]:
    """Each rail's current power in watts; a line with no rail is a :class:`SensorError`."""
    rails = {m.group(1): int(m.group(2)) * 1e-3 for m in _RAIL.finditer(line)}
    if not rails:
        raise SensorError(f"malformed tegrastats line (no rail NAME cur/avg in it): {one_line(line, 120)!r}")
    return rails


def total(rails: dict[str, float], total_rail: str) -> tuple[str, float]:
    """(what is measured, watts) of one parsed line."""
    if total_rail:
        if total_rail not in rails:
            raise SensorError(f"tegrastats line has no rail {total_rail} (it has: {', '.join(sorted(rails))})")
        return total_rail, rails[total_rail]
    first = next((r for r in TOTALS if r in rails), None)
    if first:
        return first, rails[first]
    return "sum(" + ",".join(rails) + ")", sum(rails.values())


class TegrastatsSensor:
    backend = "tegrastats"
    kind: Kind = "power"
    max_rate_hz = 0.0  # read() waits for tegrastats' next line

    def __init__(self, total_rail: str) -> None:
        exe = shutil.which("tegrastats")
        if exe is None:
            raise NotMeasured("not measured: tegrastats is not on PATH")
        self.total_rail = total_rail
        self.source = f"{exe} --interval {INTERVAL_MS}"
        self.proc = subprocess.Popen([exe, "--interval", str(INTERVAL_MS)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
        try:
            self.rail, _ = total(parse_line(self._line()), total_rail)
        except SensorError:
            self.close()
            raise

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SensorError(f"tegrastats stopped (exit code {self.proc.poll()})")
        return line

    def read(self) -> float:
        return total(parse_line(self._line()), self.total_rail)[1]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
