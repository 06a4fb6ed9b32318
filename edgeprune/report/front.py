"""The accuracy-latency front: a configuration is Pareto-optimal when no other is at least as
accurate (ΔT) and at least as fast, and better in one; the accuracy budget picks the fastest
configuration whose ΔT stays within it.

"As fast" compares each configuration's sparse p50 relative to the dense p50 of the same bench
run (the two are timed interleaved), not absolute times from different runs: on a shared or
throttling machine the dense model's own p50 moves by 10-70% between runs, which would reorder
the front by noise. The dense model is the point (ΔT 0, ratio 1)."""

from __future__ import annotations

import dataclasses
import re

from edgeprune.errors import UserError
from edgeprune.report.rows import Row


@dataclasses.dataclass(frozen=True)
class Point:
    """A row with what the front needs: its ΔT and its bench."""

    row: Row
    delta_t: float
    p50_ms: float
    p90_ms: float
    dense_p50_ms: float

    @property
    def ratio(self) -> float:
        """Sparse p50 over the dense p50 of the same run (below 1: faster than dense)."""
        return self.p50_ms / self.dense_p50_ms


def measured(rows: list[Row]) -> list[Point]:
    """The rows with a ΔT and a bench."""
    points = []
    for r in rows:
        if r.results is not None and r.cell.delta_t is not None:
            sparse, dense = r.results.latency["sparse"], r.results.latency["dense"]
            points.append(Point(r, r.cell.delta_t, sparse.p50_ms, sparse.p90_ms, dense.p50_ms))
    return points


def dense_p50(points: list[Point]) -> float:
    """The dense model's p50: the median over the benches (each timed it beside a sparse model)."""
    return sorted(p.dense_p50_ms for p in points)[len(points) // 2]


def pareto(points: list[Point]) -> list[Point]:
    """The Pareto-optimal points (of one target and backend), fastest first. The dense model
    (ΔT 0, ratio 1) competes too: a configuration it beats is not on the front."""

    def beats(dt: float, ratio: float, p: Point) -> bool:
        return dt >= p.delta_t and ratio <= p.ratio and (dt > p.delta_t or ratio < p.ratio)

    best = [p for p in points if not beats(0.0, 1.0, p)
            and not any(beats(o.delta_t, o.ratio, p) for o in points if o is not p)]  # fmt: skip
    return sorted(best, key=lambda p: p.ratio)


def parse_budget(text: str) -> float:
    """``dT=-2%`` (or ``dT=-2``): the lowest ΔT, in percent, a configuration may have."""
    m = re.fullmatch(r"\s*(?:dT|ΔT|delta_t)\s*=\s*([-+]?\d+(?:\.\d+)?)\s*%?\s*", text)
    if m is None:
        raise UserError(f"--budget {text!r} is not dT=<percent>, e.g. dT=-2% (ΔT may drop by at most 2%)")
    return float(m.group(1))


def within_budget(points: list[Point], budget: float) -> Point | None:
    """The fastest point whose ΔT is at least ``budget``; None when there is none or the dense
    model (ΔT 0, within any budget of at most 0) is at least as fast."""
    best = min((p for p in points if p.delta_t >= budget), key=lambda p: p.ratio, default=None)
    if best is None or (budget <= 0 and best.ratio >= 1.0):
        return None
    return best
