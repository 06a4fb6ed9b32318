"""The report's figures, drawn with matplotlib (Agg, no display) and saved as PNG and SVG, each
800x450 pixels. One colour per method line, the dense model in black."""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen before pyplot is imported
from matplotlib.figure import Figure  # noqa: E402

from edgeprune.contracts.manifest import Manifest  # noqa: E402
from edgeprune.report.front import Point, dense_p50, pareto  # noqa: E402
from edgeprune.report.rows import Row  # noqa: E402

SIZE_IN, DPI = (8.0, 4.5), 100  # 800 x 450 pixels
P = ParamSpec("P")


def plain_text(draw: Callable[P, list[str]]) -> Callable[P, list[str]]:
    """Labels come from result files: draw them as text, never as mathtext (``$...$``)."""

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> list[str]:
        with plt.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def save(fig: Figure, out: Path, name: str) -> list[str]:
    """``name``.png and ``name``.svg in ``out``; the file names."""
    files = []
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=DPI, format=ext)
        files.append(f"{name}.{ext}")
    plt.close(fig)
    return files


def _lines(cells: list[Row]) -> dict[str, list[Row]]:
    """Cells grouped into one line per method (and granularity), by sparsity."""
    by: dict[str, list[Row]] = defaultdict(list)
    for r in cells:
        name = r.method if r.granularity == "element" else f"{r.method} {r.granularity}"
        by[name].append(r)
    return {k: sorted(v, key=lambda r: r.cell.sparsity or 0.0) for k, v in sorted(by.items())}


@plain_text
def accuracy(cells: list[Row], dense: Row | None, out: Path) -> list[str]:
    """ΔT and each task's first metric against sparsity, one line per method, dense marked."""
    tasks = [t for t, ms in cells[0].cell.metrics.items() if ms] if cells else []
    panels = 1 + len(tasks)
    fig, axes = plt.subplots(1, panels, figsize=SIZE_IN, squeeze=False)
    lines = _lines(cells)
    ax = axes[0][0]
    for name, rows in lines.items():
        pts = [(100 * (r.cell.sparsity or 0), r.cell.delta_t) for r in rows if r.cell.delta_t is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.axhline(0.0, color="black", linestyle="--", linewidth=1, label="dense")
    ax.set(title="ΔT (%)", xlabel="sparsity (%)")
    for i, task in enumerate(tasks, start=1):
        ax = axes[0][i]
        metric = next(iter(cells[0].cell.metrics[task]))
        for name, rows in lines.items():
            values = [(100 * (r.cell.sparsity or 0), r.cell.metrics.get(task, {}).get(metric)) for r in rows]
            pts = [(x, y) for x, y in values if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=name)
        value = dense.cell.metrics.get(task, {}).get(metric) if dense else None
        if value is not None:
            ax.axhline(value, color="black", linestyle="--", linewidth=1, label="dense")
        ax.set(title=f"{task} {metric}", xlabel="sparsity (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, "accuracy")


@plain_text
def latency(points: list[Point], energy_note: str, where: str, out: Path, name: str) -> list[str]:
    """Sparse p50 (p50-p90 band) against sparsity per method; the dense baseline; energy, or
    why it was not measured."""
    fig, (ax, ax_e) = plt.subplots(1, 2, figsize=SIZE_IN, gridspec_kw={"width_ratios": [3, 1]})
    by: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        by[p.row.method if p.row.granularity == "element" else f"{p.row.method} {p.row.granularity}"].append(p)
    for label, pts in sorted(by.items()):
        pts.sort(key=lambda p: p.row.cell.sparsity or 0.0)
        xs = [100 * (p.row.cell.sparsity or 0) for p in pts]
        (line,) = ax.plot(xs, [p.p50_ms for p in pts], marker="o", label=label)
        ax.fill_between(xs, [p.p50_ms for p in pts], [p.p90_ms for p in pts], color=line.get_color(), alpha=0.2)
    if points:
        dense = dense_p50(points)
        ax.axhline(dense, color="black", linestyle="--", linewidth=1, label=f"dense (median of {len(points)} runs)")
    ax.set(title=f"latency on {where} (p50, band to p90)", xlabel="sparsity (%)", ylabel="ms per inference")
    ax.legend(fontsize=7)
    ax_e.axis("off")
    ax_e.text(0.0, 0.5, "energy per inference:\n" + _wrap(energy_note, 28), fontsize=8, va="center")
    fig.tight_layout()
    return save(fig, out, name)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width and line:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join([*lines, line])


@plain_text
def front(points: list[Point], where: str, out: Path, name: str) -> list[str]:
    """ΔT against the sparse p50 relative to the dense p50 of the same run: the Pareto-optimal
    configurations coloured and joined, the others grey, the dense model at (1, 0)."""
    fig, ax = plt.subplots(figsize=SIZE_IN)
    best = pareto(points)
    others = [p for p in points if p not in best]
    ax.scatter([p.ratio for p in others], [p.delta_t for p in others], color="0.7", label="dominated")
    ax.plot([p.ratio for p in best], [p.delta_t for p in best], color="tab:red", marker="o", label="Pareto-optimal")
    for p in best:
        ax.annotate(p.row.label, (p.ratio, p.delta_t), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.scatter([1.0], [0.0], color="black", marker="s", label="dense")
    ax.set(title=f"accuracy against latency on {where}", ylabel="ΔT (%)",
           xlabel="sparse p50 / dense p50 of the same run (lower is faster)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out, name)


@plain_text
def layers(manifest: Manifest, label: str, out: Path) -> list[str]:
    """Per-layer sparsity and the cost model's predicted speedup of the layer's format."""
    names = [layer.name.replace("/Conv", "").lstrip("/") or layer.name for layer in manifest.layers]
    fig, ax = plt.subplots(figsize=SIZE_IN)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * (1 - layer.density) for layer in manifest.layers], width=0.4,
           label="sparsity (%)")  # fmt: skip
    ax2 = ax.twinx()
    speed = [1 / layer.predicted_ratio if layer.predicted_ratio else math.nan for layer in manifest.layers]
    ax2.bar([x + 0.2 for x in xs], speed, width=0.4, color="tab:orange", label="predicted speedup (x)")
    ax2.axhline(1.0, color="tab:orange", linestyle=":", linewidth=1)
    ax.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=6)
    ax.set(title=f"per layer: {label} ({manifest.target.name})", ylabel="sparsity (%)")
    ax2.set_ylabel("predicted speedup vs dense (x)")
    fig.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return save(fig, out, "layers")
