"""The on-device commands: ``device serve`` (on a board), ``device tracker`` (on the machine
that coordinates the boards), ``devices`` (what a tracker has), and bench's ``--device`` and
fleet runs. TVM's RPC carries them all; nothing here imports PyTorch."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeprune.cli.common import JsonOpt, _print_json, app, err, out
from edgeprune.errors import UserError
from edgeprune.fsio import check_output

if TYPE_CHECKING:
    from edgeprune.bench.energy.measure import EnergyPlan
    from edgeprune.contracts.results import Results
    from edgeprune.device.fleet import Outcome

device_app = typer.Typer(help="Boards on the network, over Apache TVM's RPC: serve a board, run a tracker.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(device_app, name="device")

TrackerOpt = Annotated[str, typer.Option("--tracker", help="HOST:PORT of the TVM RPC tracker.", show_default=False)]
HostOpt = Annotated[str, typer.Option("--host", help="The address to listen on (required: there is no all-interfaces default; TVM's RPC has no authentication, so keep it on a private network).", show_default=False)]  # noqa: E501
KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _session_timeout(plan: EnergyPlan, seconds: float) -> float:
    """How long a board lets one bench session run: the timing and energy budgets, the memory
    probes and model loading, with a wide margin (an emulated board is slow)."""
    return 2 * seconds + plan.idle_s + 4 * plan.blocks * plan.block_s + 900.0


@device_app.command("serve")
def serve(
    host: HostOpt,
    tracker: TrackerOpt,
    key: Annotated[str, typer.Option("--key", help="The board's key at the tracker: its target's name (rpi5, jetson-orin-nano, ...), so fleet runs find it.", show_default=False)],  # noqa: E501
    port: Annotated[int, typer.Option(help="First port to try.")] = 9091,
    port_end: Annotated[int | None, typer.Option(help="Ports up to this one (excluded) are tried in turn (default: --port + 100).")] = None,  # noqa: E501
    max_upload_mb: Annotated[float, typer.Option(help="The largest upload (an artifact) this board takes, in MiB.")] = 512.0,  # noqa: E501
    emulate: Annotated[str | None, typer.Option("--emulate", help="Serve an emulated aarch64 board of this target instead (qemu-user, as verify runs it): its timings mean nothing, its protocol is the real one.")] = None,  # noqa: E501
) -> None:
    """Serve this board: a TVM RPC server registered with the tracker under KEY, with edgeprune's
    bench on it (artifacts whose files match their manifest's sha256). TVM's RPC has no
    authentication: whoever reaches HOST can run code here, so serve on a private network or
    through an SSH tunnel. Runs until stopped (Ctrl-C, SIGTERM)."""
    from edgeprune.device.client import parse_address
    from edgeprune.device.serve import check_tracker
    from edgeprune.device.serve import serve as run_server

    if not KEY.fullmatch(key):
        raise UserError(f"--key must be 1-64 letters, digits, '.', '_' or '-', not {key!r}")
    port_end = min(port + 100, 65536) if port_end is None else port_end
    if not 0 < max_upload_mb <= 65536:
        raise UserError(f"--max-upload-mb must be above 0 and at most 65536, got {max_upload_mb}")
    if not 0 < port < port_end <= 65536:
        raise UserError(f"ports must satisfy 0 < --port < --port-end <= 65536, got {port} and {port_end}")
    address = parse_address(tracker)
    if emulate is not None:
        from edgeprune.targets import load_target
        from edgeprune.verify.emulator import serve_emulated

        board = load_target(emulate)
        if board.arch != "aarch64":
            raise UserError(f"--emulate runs aarch64 boards; {board.name} is {board.arch}")
        check_tracker(*address)
        args = ["--host", host, "--tracker", tracker, "--key", key, "--port", str(port), "--port-end", str(port_end),
                "--max-upload-mb", str(max_upload_mb)]
        raise typer.Exit(serve_emulated(board.cpu.qemu_cpu, args))
    run_server(host, port, port_end, address, key, max_upload_mb,
               ready=lambda line: err.print(line, highlight=False, soft_wrap=True))


@device_app.command("tracker")
def tracker_command(
    host: HostOpt,
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 9190,
) -> None:
    """Run a TVM RPC tracker (Apache TVM's own) on HOST:PORT, for boards and callers to meet at.
    Runs until stopped."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {port}")
    try:
        import tornado  # noqa: F401 - TVM's tracker runs on it
    except ImportError:
        raise UserError("the tracker needs tornado: pip install tornado (or 'edgeprune[tvm]')") from None
    env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
    argv = [sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", host, "--port", str(port),
            "--port-end", str(port + 1)]  # fmt: skip
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


@app.command()
def devices(tracker: TrackerOpt, as_json: JsonOpt = False) -> None:
    """The boards a TVM RPC tracker knows, by key: their addresses, how many are free, and how
    many runs wait for one."""
    from rich.table import Table

    from edgeprune.device.client import Tracker, parse_address

    queues = Tracker.connect(*parse_address(tracker)).queues()
    if as_json:
        _print_json({"tracker": tracker, "keys": [{"key": q.key, "boards": [b.address for b in q.boards],
                                                   "free": q.free, "waiting": q.waiting} for q in queues]})  # fmt: skip
        return
    if not queues:
        out.print(f"no boards at the tracker {tracker}")
        return
    table = Table(title=f"Boards at {tracker}", title_justify="left")
    for col in ("key", "boards", "free", "busy", "runs waiting"):
        table.add_column(col)
    for q in queues:
        table.add_row(q.key, ", ".join(b.address for b in q.boards) or "-", str(q.free),
                      str(max(0, len(q.boards) - q.free)), str(q.waiting))  # fmt: skip
    out.print(table)


def bench_on_device(artifact: Path, url: str, options: dict[str, Any], plan: EnergyPlan, queue_timeout: float,
                    as_json: bool) -> Results:  # fmt: skip
    """bench --device rpc://HOST:PORT/KEY: one run on one board."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from edgeprune.contracts.manifest import Manifest
    from edgeprune.device.client import BoardLost, Tracker, parse_device

    host, port, key = parse_device(url)
    Manifest.read(artifact)  # a bad artifact is refused before any board is asked for
    tracker = Tracker.connect(host, port)
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task(f"waiting for a board of key {key}", total=None)
        try:
            with tracker.board(key, _session_timeout(plan, options["budget_s"]), queue_timeout) as board:
                progress.update(task, description=f"bench on {board.name}")
                return board.bench(artifact, options)
        except BoardLost as exc:
            raise UserError(f"the board of key {key} dropped mid-run ({exc})") from None


def bench_fleet(artifacts: list[Path], tracker_at: str, keys_text: str, options: dict[str, Any], plan: EnergyPlan,
                queue_timeout: float, as_json: bool) -> None:  # fmt: skip
    """bench --tracker --keys: every artifact on every key that names its target."""
    from edgeprune.device.client import Tracker, parse_address
    from edgeprune.device.fleet import Timeouts, plan_runs, run_fleet

    keys = [k for k in (part.strip() for part in keys_text.split(",")) if k]
    bad = [k for k in keys if not KEY.fullmatch(k)]
    if not keys or bad:
        raise UserError(f"--keys must be board keys separated by commas, not {keys_text!r}")
    jobs, skipped = plan_runs(artifacts, keys)
    if not jobs:
        raise UserError("no artifact was built for any of --keys: " + "; ".join(skipped))
    for job in jobs:  # each run's own results file, replaced on every run like results.json
        check_output(job.output, True)
    tracker = Tracker.connect(*parse_address(tracker_at))
    timeouts = Timeouts(_session_timeout(plan, options["budget_s"]), queue_timeout)
    outcomes = run_fleet(tracker, jobs, options, timeouts,
                         note=lambda line: err.print(line, highlight=False, soft_wrap=True))
    if as_json:
        _print_json({"runs": [_outcome_doc(o) for o in outcomes], "skipped": skipped})
    else:
        _print_fleet(outcomes, skipped)
    if any(o.status != "ok" for o in outcomes):
        raise typer.Exit(1)


def _outcome_doc(o: Outcome) -> dict[str, Any]:
    return {"artifact": str(o.job.artifact), "key": o.job.key, "status": o.status, "board": o.board,
            "attempts": o.attempts, "message": o.message,
            "results": str(o.job.output) if o.status == "ok" else None,
            "ratio_p50": o.results.ratio_p50 if o.results else None}  # fmt: skip


def _print_fleet(outcomes: list[Outcome], skipped: list[str]) -> None:
    from rich.table import Table

    table = Table(title="Fleet run", title_justify="left")
    for col in ("artifact", "key", "board", "status", "sparse/dense p50", "sparse/dense energy", "results"):
        table.add_column(col)
    for o in outcomes:
        r = o.results
        energy = "" if r is None else "not measured" if r.energy is None else _gross(r.energy.ratio_gross)
        status = o.status + (f" ({o.attempts} tries)" if o.attempts > 1 else "")
        table.add_row(str(o.job.artifact), o.job.key, o.board, status, f"{r.ratio_p50:.3f}" if r else "", energy,
                      str(o.job.output) if r else o.message)  # fmt: skip
    out.print(table)
    for line in skipped:
        out.print(f"skipped: {line}")


def _gross(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.3f} gross"
