"""Raspberry Pi 5: the PMIC's ADCs through ``vcgencmd pmic_read_adc`` (one process per sample):
lines ``NAME_A current(N)=0.0512A`` and ``NAME_V volt(N)=3.3125V`` for 12 rails. The power is the
sum of V times I over the rails that have both (EXT5V, the input, has no current sensor): the
board's own rails, not what USB devices draw. A Pi 4 has no current sensing."""

from __future__ import annotations

import re
import shutil
import subprocess

from edgeprune.bench.energy.sensor import Kind, NotMeasured, SensorError
from edgeprune.errors import one_line

_VALUE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([0-9.eE+-]+)[AV]\s*$")


def parse_pmic(text: str) -> dict[str, float]:
    """Watts per rail that has both a current and a voltage."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _VALUE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    rails = {r: amps[r] * volts[r] for r in amps if r in volts}
    if not rails:
        raise SensorError(f"vcgencmd pmic_read_adc printed no rail current and voltage: {one_line(text, 120)!r}")
    return rails


class PmicSensor:
    """The Raspberry Pi 5's PMIC rails, summed."""

    backend = "rpi5-pmic"
    kind: Kind = "power"
    max_rate_hz = 50.0  # each sample is a process; faster would load the cores the model runs on

    def __init__(self) -> None:
        exe = shutil.which("vcgencmd")
        if exe is None:
            raise NotMeasured("not measured: vcgencmd is not on PATH (Raspberry Pi OS ships it)")
        self.command = [exe, "pmic_read_adc"]
        self.source = " ".join(self.command)
        try:
            rails = parse_pmic(self._run())
        except SensorError as exc:  # a vcgencmd without pmic_read_adc (a Pi 4, old firmware)
            raise NotMeasured(f"not measured: {exc}") from None
        self.rail = f"sum of {len(rails)} PMIC rails"

    def _run(self) -> str:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SensorError(f"{self.source}: {exc}") from None
        if done.returncode != 0:
            raise SensorError(f"{self.source} failed: {one_line(done.stderr or done.stdout, 120)}")
        return done.stdout

    def read(self) -> float:
        return sum(parse_pmic(self._run()).values())

    def close(self) -> None:
        pass
