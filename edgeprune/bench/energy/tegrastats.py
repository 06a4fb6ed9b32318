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
import select
import shutil
import subprocess

from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError, choose_total, rail_name
from edgeprune.errors import one_line

INTERVAL_MS = 10
LINE_TIMEOUT_S = 5.0  # a tegrastats that prints nothing for this long has failed
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
    names = choose_total(list(rails), total_rail)
    if names is None:
        raise SensorError(f"tegrastats line has no rail {total_rail} (it has: {', '.join(sorted(rails))})")
    return rail_name(names), sum(rails[n] for n in names)


class TegrastatsSensor:
    """tegrastats run for the sampling only: started by the first read (in the sampling thread),
    so no backlog of lines from before the measurement is read as if it were now; opening runs it
    once to check it prints a rail."""

    backend = "tegrastats"
    kind: Kind = "power"
    max_rate_hz = 0.0  # read() waits for tegrastats' next line

    def __init__(self, total_rail: str) -> None:
        exe = shutil.which("tegrastats")
        if exe is None:
            raise NotMeasured("not measured: tegrastats is not on PATH")
        self.command = [exe, "--interval", str(INTERVAL_MS)]
        self.total_rail = total_rail
        self.source = " ".join(self.command)
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self.rail, _ = total(parse_line(self._line()), total_rail)
        finally:
            self.close()

    def _line(self) -> str:
        if self.proc is None:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         start_new_session=True)  # fmt: skip
        out = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], LINE_TIMEOUT_S)
        if not ready:
            raise SensorError(f"tegrastats printed nothing in {LINE_TIMEOUT_S:g} s")
        line = out.readline().decode(errors="replace")
        if not line:
            raise SensorError(f"tegrastats stopped (exit code {self.proc.poll()})")
        return line

    def read(self) -> float:
        return total(parse_line(self._line()), self.total_rail)[1]

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
