"""The per-layer format chooser: predicted latency of each format relative to the dense
convolution of the same layer, from kernel timings measured on the target
(``edgeprune calibrate``). A table holds, per layer kind (``1x1`` or ``kxk``) and format,
ratio-versus-density points; predictions interpolate linearly between them, clamp below the
first and extend the last segment past the last. NumPy and JSON only.

The ratio depends on the layer's size as much as on its density (measured here, CSR at 10%:
0.33 of dense for 16 channels at 112x112, 1.12 for 128 channels at 7x7, where the per-call
cost and the part of a vector a 7-wide row leaves idle dominate). So a table may also hold
``shaped`` curves, each measured on one layer shape; given a layer's multiply-adds and output
width, :meth:`CostTable.ratio` weighs every curve of the kind and format (the reference one at
``device.layers`` included) by inverse squared distance in (log2 multiply-adds, log2 width):
exact at a measured shape, between them in between. A strided layer is predicted from the curves
measured at its stride where there are some (a stride-2 layer reads four times its output's
input, which the kernel first splits into phases). Tables without them predict as before.

Usage::

    table = CostTable.load(target.calibration_path)
    table.ratio("csr", "kxk", 0.1)                      # e.g. 0.42: CSR at 10% takes 0.42x dense
    table.ratio("csr", "kxk", 0.1, LayerShape(16 * 16 * 9 * 56 * 56, 56))   # that layer's own
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.contracts.base import NotJson, load_json
from edgeprune.errors import UserError, show
from edgeprune.fsio import write_text_atomic

FORMAT = "edgeprune.calibration/1"
Points = list[tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class LayerShape:
    """What a ratio depends on besides density: a layer's multiply-adds (dense, one image) and
    its output width."""

    macs: float
    width: int
    stride: int = 1

    @classmethod
    def of(cls, cin: int, cout: int, k: int, hw: int, stride: int = 1) -> LayerShape:
        """A square, 'same'-padded layer of input size ``hw`` (the shapes ``calibrate`` measures)."""
        out = (hw + stride - 1) // stride
        return cls(float(cin) * cout * k * k * out * out, out, stride)

    def position(self) -> tuple[float, float]:
        return math.log2(max(self.macs, 1.0)), math.log2(max(self.width, 1))


def _at(pts: Points, density: float) -> float:
    xs, ys = zip(*pts, strict=True)
    if density > xs[-1] and len(xs) > 1:  # past the measurements: extend the last segment
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(ys[-1] + slope * (density - xs[-1]))
    return float(np.interp(density, xs, ys))


@dataclasses.dataclass
class CostTable:
    target: str
    measured: bool
    device: dict[str, Any]
    threads: int
    # (kind, fmt) -> [(density, ratio), ...] sorted by density, measured at device["layers"][kind]
    curves: dict[tuple[str, str], Points]
    note: str = ""  # where an unmeasured table's numbers come from
    # (kind, fmt) -> [(shape measured at, points), ...]: the same at other layer shapes
    shaped: dict[tuple[str, str], list[tuple[LayerShape, Points]]] = dataclasses.field(default_factory=dict)

    def ratio(self, fmt: str, kind: str, density: float, layer: LayerShape | None = None) -> float | None:
        """Predicted latency of ``fmt`` over dense, or None when the table has no curve; for
        ``layer``'s shape where the table has shaped curves (see the module docstring)."""
        pts = self.curves.get((kind, fmt))
        if not pts:
            return None
        others = self.shaped.get((kind, fmt), [])
        reference = self._reference_shape(kind)
        if layer is None or not others or reference is None:
            return _at(pts, density)
        here = layer.position()
        weighted = total = 0.0
        candidates = [(reference, pts), *others]
        if any(shape.stride == layer.stride for shape, _ in candidates):  # a strided layer: strided curves
            candidates = [(shape, curve) for shape, curve in candidates if shape.stride == layer.stride]
        for shape, curve in candidates:
            there = shape.position()
            d2 = (here[0] - there[0]) ** 2 + (here[1] - there[1]) ** 2
            if d2 < 1e-12:
                return _at(curve, density)
            weighted += _at(curve, density) / d2
            total += 1 / d2
        return weighted / total

    def _reference_shape(self, kind: str) -> LayerShape | None:
        """The shape ``curves`` were measured at (``device.layers``), if the table says."""
        layer = self.device.get("layers", {}).get(kind) if isinstance(self.device.get("layers"), dict) else None
        if not isinstance(layer, dict):
            return None
        try:
            return LayerShape.of(*(int(layer[f]) for f in ("cin", "cout", "k", "hw")))
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "format": FORMAT, "target": self.target, "measured": self.measured, "device": self.device,
            "threads": self.threads, "note": self.note,
            "curves": [{"kind": k, "fmt": f, "points": [list(p) for p in pts]}
                       for (k, f), pts in sorted(self.curves.items())],
        }  # fmt: skip
        if self.shaped:
            doc["shaped"] = [{"kind": k, "fmt": f, "macs": shape.macs, "width": shape.width, "stride": shape.stride,
                              "points": [list(p) for p in pts]}
                             for (k, f), curves in sorted(self.shaped.items()) for shape, pts in curves]  # fmt: skip
        return doc

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> CostTable:
        """Read and validate a table: every field's type, each curve's kind, its densities in
        [0, 1] and strictly increasing, its ratios finite and positive; a problem is one
        :class:`UserError` line naming the file and the field."""
        if not path.is_file():
            raise UserError(f"calibration table not found: {path}; run edgeprune calibrate")
        try:
            doc = load_json(path.read_bytes())
        except OSError as exc:
            raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except NotJson as exc:
            raise UserError(f"{path}: not a valid calibration table ({exc})") from None
        return cls._from_doc(doc, path)

    @classmethod
    def _from_doc(cls, doc: object, path: Path) -> CostTable:
        def bad(field: str, what: str) -> UserError:
            return UserError(f"{path}: not a valid calibration table: field {field} {what}")

        if not isinstance(doc, dict):
            raise UserError(f"{path}: not a valid calibration table (not a JSON object)")
        if doc.get("format") != FORMAT:
            raise UserError(f"{path}: not a valid calibration table (format {show(doc.get('format'))}, "
                            f"this edgeprune reads {FORMAT})")  # fmt: skip
        unknown = sorted(set(doc) - FIELDS)
        if unknown:
            raise bad(show(unknown[0]), "is not known")
        for field, kind in (("target", str), ("measured", bool), ("threads", int), ("curves", list)):
            if field not in doc:
                raise bad(field, "is missing")
            if not isinstance(doc[field], kind) or (kind is int and isinstance(doc[field], bool)):
                raise bad(field, f"must be {_KINDS[kind]}, not {show(doc[field])}")
        device, note = doc.get("device", {}), doc.get("note", "")
        if not isinstance(device, dict):
            raise bad("device", f"must be an object, not {show(device)}")
        if not isinstance(note, str):
            raise bad("note", f"must be a string, not {show(note)}")
        if not 1 <= doc["threads"] <= MAX_THREADS:
            raise bad("threads", f"must be between 1 and {MAX_THREADS}, not {doc['threads']}")
        curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for i, curve in enumerate(doc["curves"]):
            if not isinstance(curve, dict) or set(curve) != {"kind", "fmt", "points"}:
                raise bad(f"curves.{i}", "must be an object of kind, fmt and points")
            kind, fmt, points = curve["kind"], curve["fmt"], curve["points"]
            if kind not in KINDS:
                raise bad(f"curves.{i}.kind", f"must be one of {', '.join(KINDS)}, not {show(kind)}")
            if not isinstance(fmt, str) or not fmt.isidentifier():
                raise bad(f"curves.{i}.fmt", f"must name a format, not {show(fmt)}")
            if (kind, fmt) in curves:
                raise bad(f"curves.{i}", f"repeats the curve of {kind} {fmt}")
            if not isinstance(points, list) or not points:
                raise bad(f"curves.{i}.points", "must be a non-empty list of [density, ratio]")
            pts = [_point(p, f"{path}: not a valid calibration table: field curves.{i}.points.{j}")
                   for j, p in enumerate(points)]  # fmt: skip
            pts.sort()
            if any(a[0] == b[0] for a, b in zip(pts, pts[1:], strict=False)):
                raise bad(f"curves.{i}.points", "has two points at one density")
            curves[(kind, fmt)] = pts
        shaped: dict[tuple[str, str], list[tuple[LayerShape, Points]]] = {}
        extra = doc.get("shaped", [])
        if not isinstance(extra, list):
            raise bad("shaped", f"must be a list, not {show(extra)}")
        for i, curve in enumerate(extra):
            field = f"shaped.{i}"
            if not isinstance(curve, dict) or set(curve) - {"stride"} != {"kind", "fmt", "macs", "width", "points"}:
                raise bad(field, "must be an object of kind, fmt, macs, width, stride (optional) and points")
            key = (curve["kind"], curve["fmt"])
            if not all(isinstance(v, str) for v in key) or key not in curves:
                raise bad(f"{field}", f"has no reference curve ({show(key[0])} {show(key[1])} is not in curves)")
            macs, width, points = curve["macs"], curve["width"], curve["points"]
            if isinstance(macs, bool) or not isinstance(macs, int | float) or not (math.isfinite(macs) and macs >= 1):
                raise bad(f"{field}.macs", f"must be a number of multiply-adds (at least 1), not {show(macs)}")
            if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 1 << 20:
                raise bad(f"{field}.width", f"must be an output width (a positive integer), not {show(width)}")
            stride = curve.get("stride", 1)
            if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= 64:
                raise bad(f"{field}.stride", f"must be a convolution stride (1 to 64), not {show(stride)}")
            if not isinstance(points, list) or not points:
                raise bad(f"{field}.points", "must be a non-empty list of [density, ratio]")
            pts = sorted(_point(p, f"{path}: not a valid calibration table: field {field}.points.{j}")
                         for j, p in enumerate(points))  # fmt: skip
            if any(a[0] == b[0] for a, b in zip(pts, pts[1:], strict=False)):
                raise bad(f"{field}.points", "has two points at one density")
            shaped.setdefault(key, []).append((LayerShape(float(macs), width, stride), pts))
        return cls(doc["target"], doc["measured"], device, doc["threads"], curves, note, shaped)


FIELDS = frozenset({"format", "target", "measured", "device", "threads", "note", "curves", "shaped"})
KINDS = ("1x1", "kxk")
MAX_THREADS = 256
_KINDS = {str: "a string", bool: "true or false", int: "an integer", list: "a list"}


def _point(point: object, field: str) -> tuple[float, float]:
    """One [density, ratio] point: a density in [0, 1] and a finite positive ratio."""
    if (not isinstance(point, list) or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)):  # fmt: skip
        raise UserError(f"{field} must be [density, ratio], not {show(point)}")
    try:
        density, ratio = float(point[0]), float(point[1])
    except OverflowError:  # an integer too large for a float
        raise UserError(f"{field} must be [density, ratio], not {show(point)}") from None
    if not 0.0 <= density <= 1.0:
        raise UserError(f"{field} has density {density}, outside [0, 1]")
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise UserError(f"{field} has ratio {ratio}, not a finite positive number")
    return density, ratio


def layer_kind(kernel_shape: tuple[int, int]) -> str:
    return "1x1" if tuple(kernel_shape) == (1, 1) else "kxk"


def conv_shape(weight_shape: tuple[int, ...] | list[int], out_h: int, out_w: int, stride: int = 1) -> LayerShape:
    """A convolution's :class:`LayerShape` from its weight (out, in, kh, kw), output size and
    stride (the larger of its two)."""
    return LayerShape(float(math.prod(weight_shape)) * out_h * out_w, out_w, stride)
