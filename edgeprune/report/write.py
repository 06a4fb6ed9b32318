"""The report directory: the plots (PNG and SVG), ``report.md`` (which links the PNGs) and
``index.html`` (one self-contained page: the PNGs inlined, no script, nothing fetched).

Usage::

    written = write_report([Path("results/")], Path("report/"), budget=-2.0)
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import json
import re
from collections import defaultdict
from pathlib import Path

import markdown  # type: ignore[import-untyped]

from edgeprune import __version__
from edgeprune.errors import UserError
from edgeprune.fsio import check_output, staged_dir
from edgeprune.report import plots
from edgeprune.report.front import Point, measured, pareto, within_budget
from edgeprune.report.rows import Found, Row, load_rows

REPORT_FORMAT = "edgeprune.report/1"
MARKER = "report.json"  # what a report directory holds besides its pages: what made it


def is_report(directory: Path) -> bool:
    """Whether ``directory`` is a report edgeprune wrote (which a demo may replace)."""
    try:
        return json.loads((directory / MARKER).read_text()).get("format") == REPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


@dataclasses.dataclass
class Written:
    out: Path
    plots: list[str]
    pareto: dict[str, list[Point]]  # target/backend -> the front, fastest first
    chosen: dict[str, Point | None]  # target/backend -> the fastest within the budget
    bad: list[str]


@dataclasses.dataclass
class _Doc:
    """The report as blocks: (kind, content) with kind md (Markdown text) or img (a PNG)."""

    blocks: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def text(self, md: str) -> None:
        self.blocks.append(("md", md))

    def image(self, png: str) -> None:
        self.blocks.append(("img", png))


def write_report(inputs: list[Path], out: Path, force: bool = False, budget: float | None = None,
                 config: str | None = None) -> Written:  # fmt: skip
    """``config``: the cell key (or a prefix) whose per-layer plot is drawn (default: the
    fastest Pareto-optimal configuration of the first target)."""
    check_output(out, force, directory=True)
    found = load_rows(inputs)
    with staged_dir(out, force) as tmp:
        written = _write(found, tmp, budget, config)
    written.out = out
    return written


def _groups(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows by target and backend, and by machine and model where the results hold several (a
    front compares configurations measured on one machine, of one model)."""

    def parts(r: Row) -> tuple[str, str, str]:
        host = r.results.device.hostname if r.results is not None else ""
        return r.where, host, f"{r.cell.settings.workload} {r.cell.settings.model or ''}".strip()

    hosts = {parts(r)[1] for r in rows if parts(r)[1]}
    models = {parts(r)[2] for r in rows}
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        where, host, model = parts(r)
        label = where + (f" on {host}" if len(hosts) > 1 and host else "") + (f" ({model})" if len(models) > 1 else "")
        by[label].append(r)
    return dict(sorted(by.items()))


def _write(found: Found, tmp: Path, budget: float | None, config: str | None) -> Written:
    doc, files = _Doc(), []
    cells = list({r.cell.key: r for r in found.rows}.values())
    dense = found.dense[0] if found.dense else None
    sweeps = ", ".join(str(s) for s in found.sweeps)
    doc.text(f"# edgeprune report\n\n{len(cells)} pruned configurations from {len(found.sweeps)} sweep(s) "
             f"({sweeps}), written {_now()} by edgeprune {__version__}.\n")  # fmt: skip
    doc.text("## Accuracy against sparsity\n\nΔT is the mean relative change of every task's metrics against "
             "the dense model (negative: worse). The dashed line is the dense model.\n")  # fmt: skip
    png = plots.accuracy(cells, dense, tmp)
    files += png
    doc.image(png[0])
    fronts, chosen = {}, {}
    for where, rows in _groups(found.rows).items():
        points = measured(rows)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", where).strip("-")
        not_benched = sorted({r.note for r in rows if r.status == "not benched"})
        doc.text(f"## {where}\n")
        if not points:
            why = "; ".join(not_benched or ["no bench results"])
            doc.text(f"Not benched on the machine that ran the sweep: {why}\n")
            continue
        files += (png := plots.latency(points, _energy_note(points), where, tmp, f"latency-{name}"))
        doc.image(png[0])
        files += (png := plots.front(points, where, tmp, f"front-{name}"))
        doc.image(png[0])
        fronts[where] = pareto(points)
        chosen[where] = within_budget(points, budget) if budget is not None else None
        doc.text(_front_table(points, fronts[where], budget, chosen[where]))
    pick = _pick(found.rows, fronts, config)
    if pick is not None and pick.manifest is not None:
        doc.text(f"## Per layer: {pick.label} on {pick.where}\n\nSparsity of each convolution and the speedup "
                 "the cost model predicts for the format compile chose (1x: kept dense).\n")  # fmt: skip
        files += (png := plots.layers(pick.manifest, pick.label, tmp))
        doc.image(png[0])
    doc.text(_provenance(found))
    (tmp / "report.md").write_text(_markdown(doc))
    marker = {"format": REPORT_FORMAT, "edgeprune_version": __version__, "sweeps": [str(p) for p in found.sweeps],
              "plots": files}  # fmt: skip
    (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    (tmp / "index.html").write_text(_html(doc, tmp))
    return Written(tmp, files, fronts, chosen, found.bad)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _energy_note(points: list[Point]) -> str:
    reasons = sorted({p.row.results.energy_reason for p in points
                      if p.row.results is not None and p.row.results.energy is None})  # fmt: skip
    if not reasons:
        return "measured (see results.json)"
    text = "; ".join(r.removeprefix("not measured: ").removeprefix("not measured") for r in reasons).strip(" :;")
    return f"not measured: {text}" if text else "not measured"


def _pick(rows: list[Row], fronts: dict[str, list[Point]], config: str | None) -> Row | None:
    if config is not None:
        hits = [r for r in rows if r.cell.key.startswith(config) and r.manifest is not None]
        if not hits:
            raise UserError(f"--config {config}: no cell of the results has that key (see the Pareto table)")
        return hits[0]
    for front in fronts.values():
        if front:
            return front[0].row
    return next((r for r in rows if r.manifest is not None), None)


def _front_table(points: list[Point], front: list[Point], budget: float | None, chosen: Point | None) -> str:
    """Every configuration, fastest first (against the dense model of its own bench run), the
    Pareto-optimal ones marked, each with the commands that reproduce it."""
    lead = (f"{len(front)} Pareto-optimal" if front else "No pruned configuration is on the front: the dense model "
            "is at least as fast as every one as accurate")  # fmt: skip
    lines = [f"{lead} (**Pareto**: no other, the dense model included, is both as accurate and as fast). "
             "Speedup is the dense p50 over the sparse p50 of the same bench run; fastest first:\n",
             "| configuration | Pareto | key | ΔT | sparse p50 (ms) | dense p50 (ms) | speedup | command |",
             "|---|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for p in sorted(points, key=lambda p: p.ratio):
        mark = "**Pareto**" if p in front else ""
        lines.append(f"| {p.row.label} | {mark} | `{p.row.cell.key[:8]}` | {p.delta_t:+.2f}% | {p.p50_ms:.3f} | "
                     f"{p.dense_p50_ms:.3f} | {p.dense_p50_ms / p.p50_ms:.2f}x | `{p.row.command()}` |")  # fmt: skip
    if budget is not None:
        lines.append("")
        pick = "none is faster than the dense model." if chosen is None else (
            f"**{chosen.row.label}** (`{chosen.row.cell.key[:8]}`), ΔT {chosen.delta_t:+.2f}%, "
            f"{chosen.dense_p50_ms / chosen.p50_ms:.2f}x the dense model's speed ({chosen.p50_ms:.3f} ms)")  # fmt: skip
        lines.append(f"Within the budget ΔT ≥ {budget:g}%: {pick}")
    return "\n".join(lines) + "\n"


def _provenance(found: Found) -> str:
    results = [r.results for r in found.rows if r.results is not None]
    devices = sorted({f"{x.device.hostname}: {x.device.machine}, {x.device.cpu} ({x.device.isa})" for x in results})
    times = sorted(x.time for x in results)
    versions = sorted({r.cell.edgeprune_version for r in found.rows + found.dense})
    lines = ["## Provenance\n",
             f"- edgeprune versions of the sweeps: {', '.join(versions)}",
             f"- benched on: {'; '.join(devices) or 'nothing benched'}",
             f"- bench runs from {times[0]} to {times[-1]}" if times else "- no bench runs",
             "- energy: " + (_energy_note(measured(found.rows)) if results else "not measured (nothing benched)"),
             ]  # fmt: skip
    for r in found.rows:
        if r.status == "not benched":
            lines.append(f"- {r.label} on {r.where}: not benched ({r.note})")
        elif r.status == "failed":
            lines.append(f"- {r.label} on {r.where}: failed ({r.note})")
    lines.append("\n| configuration | target | sparse model sha256 | manifest sha256 |\n|---|---|---|---|")
    for r in found.rows:
        if r.results is not None:
            lines.append(f"| {r.label} | {r.where} | `{r.results.artifact.model_sha256[:16]}` | "
                         f"`{(r.manifest_sha or '')[:16]}` |")  # fmt: skip
    if found.bad:
        lines.append("\nFiles that could not be read (left out):\n")
        lines += [f"- {b}" for b in found.bad]
    return "\n".join(lines) + "\n"


def _markdown(doc: _Doc) -> str:
    return "\n".join(text if kind == "md" else f"![{text}]({text})\n" for kind, text in doc.blocks)


def _html(doc: _Doc, where: Path) -> str:
    body = []
    for kind, text in doc.blocks:
        if kind == "img":
            data = base64.b64encode((where / text).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(text)}" src="data:image/png;base64,{data}" width="800" '
                        'height="450"></p>')  # fmt: skip
        else:
            # Text from result files (errors, names) must not become markup: no raw HTML passes.
            safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            body.append(markdown.markdown(safe, extensions=["tables"]))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "code{font-size:12px;background:#f4f4f4}")  # fmt: skip
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgeprune report</title>"
            f"<style>{style}</style></head><body>\n{''.join(body)}\n</body></html>\n")  # fmt: skip
