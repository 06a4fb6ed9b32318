"""A timestamped sampling thread and the integral of what it recorded.

The thread reads the sensor as often as the sensor allows (``Sensor.max_rate_hz``, or back to
back for sensors whose ``read()`` waits for the next value) and stamps each value on the
monotonic clock the bench's blocks are timed with: the midpoint of a polled read, the end of a
read that waited for its value. Energy over a
window is then the integral of the piecewise-linear power between the samples (trapezoids, the
window's edges interpolated) or, for an energy counter, the counter interpolated at the two
edges. Sampling a window of many inferences this way, not at 1 Hz, is what keeps short runs
honest (Roeder et al., arXiv 2206.10377: 1 Hz sampling can be off by up to 80%)."""

from __future__ import annotations

import threading
import time

import numpy as np

from edgeprune.bench.energy.sensor import NotMeasured, Sensor, SensorError


class Sampler:
    """Samples ``sensor`` on a daemon thread from :meth:`start` to :meth:`stop`.

    Usage::

        with Sampler(sensor) as s:
            t0 = time.perf_counter(); run_block(); t1 = time.perf_counter()
            joules = s.energy(t0, t1)
    """

    def __init__(self, sensor: Sensor) -> None:
        self.sensor = sensor
        self._t: list[float] = []
        self._v: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="edgeprune-energy", daemon=True)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start sampling; returns once the first value is in, so any window opened after it is
        covered from its start."""
        self._thread.start()
        try:
            self.wait_past(float("-inf"))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop sampling (the sensor stays open: whoever opened it closes it)."""
        self._stop.set()
        self._thread.join(timeout=10.0)

    def _loop(self) -> None:
        period = 1.0 / self.sensor.max_rate_hz if self.sensor.max_rate_hz > 0 else 0.0
        next_at = time.perf_counter()
        try:
            while not self._stop.is_set():
                before = time.perf_counter()
                value = self.sensor.read()
                after = time.perf_counter()
                with self._lock:  # a read that waited for the value was handed it at its end
                    self._t.append(after if not period else (before + after) / 2)
                    self._v.append(value)
                if period:
                    next_at = max(next_at + period, after)
                    self._stop.wait(max(0.0, next_at - time.perf_counter()))
        except (SensorError, NotMeasured) as exc:
            self._failure = exc
        except Exception as exc:  # a backend's own bug: kept, and raised where it is asked for
            self._failure = SensorError(f"{self.sensor.backend}: {type(exc).__name__}: {exc}")

    def check(self) -> None:
        """Raise what stopped the thread, if something did."""
        if self._failure is not None:
            raise self._failure

    def wait_past(self, t: float, timeout_s: float = 10.0) -> None:
        """Block until a sample later than ``t`` is in (the window's end must be bracketed)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            self.check()
            with self._lock:
                if self._t and self._t[-1] >= t:
                    return
            if time.perf_counter() > deadline:
                raise SensorError(f"{self.sensor.backend}: no new value from {self.sensor.source} "
                                  f"in {timeout_s:.0f} s")  # fmt: skip
            time.sleep(0.002)

    def trace(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return np.asarray(self._t), np.asarray(self._v)

    def rate_hz(self, t0: float, t1: float) -> float:
        """Samples per second achieved inside [t0, t1]."""
        t, _ = self.trace()
        inside = int(((t >= t0) & (t <= t1)).sum())
        return inside / (t1 - t0) if t1 > t0 else 0.0

    def energy(self, t0: float, t1: float) -> float:
        """Joules between ``t0`` and ``t1`` (``time.perf_counter`` values), waiting for the
        sample that closes the window."""
        self.wait_past(t1)
        t, v = self.trace()
        return integrate(t, v, t0, t1, self.sensor.kind)

    def power_stats(self, t0: float, t1: float) -> tuple[float, float]:
        """Mean power over [t0, t1] and its standard error (from the samples' spread; for an
        energy counter, the spread of the power between consecutive samples)."""
        self.wait_past(t1)
        t, v = self.trace()
        mean = integrate(t, v, t0, t1, self.sensor.kind) / (t1 - t0)
        inside = (t >= t0) & (t <= t1)
        if self.sensor.kind == "energy":
            tt, vv = t[inside], v[inside]
            samples = np.diff(vv) / np.diff(tt) if tt.size > 2 else np.array([mean])
        else:
            samples = v[inside]
        stderr = float(samples.std(ddof=1) / np.sqrt(samples.size)) if samples.size > 1 else 0.0
        return mean, stderr


def integrate(t: np.ndarray, v: np.ndarray, t0: float, t1: float, kind: str) -> float:
    """Energy in [t0, t1] from samples ``v`` at times ``t`` (sorted): power integrated as
    trapezoids of the linear interpolation, or an energy counter's difference."""
    if t.size < 2 or t[0] > t0 or t[-1] < t1:
        raise SensorError(f"the samples ({t.size}) do not cover the measured window")
    if kind == "energy":
        return float(np.interp(t1, t, v) - np.interp(t0, t, v))
    inside = (t > t0) & (t < t1)
    tt = np.concatenate([[t0], t[inside], [t1]])
    vv = np.concatenate([[np.interp(t0, t, v)], v[inside], [np.interp(t1, t, v)]])
    return float(np.sum((vv[1:] + vv[:-1]) * np.diff(tt)) / 2)
