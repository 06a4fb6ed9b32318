"""The per-layer format chooser: predicted latency of each format relative to the dense
convolution of the same layer, from kernel timings measured on the target
(``edgeprune calibrate``). A table holds, per layer kind (``1x1`` or ``kxk``) and format,
ratio-versus-density points; predictions interpolate linearly between them, clamp below the
first and extend the last segment past the last. NumPy and JSON only.

Usage::

    table = CostTable.load(target.calibration_path)
    table.ratio("csr", "kxk", 0.1)    # e.g. 0.42: CSR at 10% density takes 0.42x dense
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import UserError
from edgeprune.fsio import write_text_atomic

FORMAT = "edgeprune.calibration/1"


@dataclasses.dataclass
class CostTable:
    target: str
    measured: bool
    device: dict[str, Any]
    threads: int
    # (kind, fmt) -> [(density, ratio), ...] sorted by density
    curves: dict[tuple[str, str], list[tuple[float, float]]]
    note: str = ""  # where an unmeasured table's numbers come from

    def ratio(self, fmt: str, kind: str, density: float) -> float | None:
        """Predicted latency of ``fmt`` over dense, or None when the table has no curve."""
        pts = self.curves.get((kind, fmt))
        if not pts:
            return None
        xs, ys = zip(*pts, strict=True)
        if density > xs[-1] and len(xs) > 1:  # past the measurements: extend the last segment
            slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
            return float(ys[-1] + slope * (density - xs[-1]))
        return float(np.interp(density, xs, ys))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "target": self.target, "measured": self.measured, "device": self.device,
            "threads": self.threads, "note": self.note,
            "curves": [{"kind": k, "fmt": f, "points": [list(p) for p in pts]}
                       for (k, f), pts in sorted(self.curves.items())],
        }  # fmt: skip

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> CostTable:
        if not path.is_file():
            raise UserError(f"calibration table not found: {path}; run edgeprune calibrate")
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            curves = {(c["kind"], c["fmt"]): sorted((float(d), float(r)) for d, r in c["points"])
                      for c in doc["curves"]}  # fmt: skip
            return cls(doc["target"], bool(doc["measured"]), doc.get("device", {}), int(doc["threads"]), curves,
                       str(doc.get("note", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a valid calibration table ({exc})") from None


def layer_kind(kernel_shape: tuple[int, int]) -> str:
    return "1x1" if tuple(kernel_shape) == (1, 1) else "kxk"
