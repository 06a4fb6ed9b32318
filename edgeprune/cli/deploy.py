"""The deploy stage's commands: ``targets``, ``compile``, ``calibrate``, ``bench``, ``verify``.
Thin like the rest of the CLI: parse, call the library, print. rich's progress bars and tables
are imported by the commands that show them: building the app must stay fast on a board."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeprune.cli.common import (
    ForceOpt,
    JsonOpt,
    _print_json,
    _size,
    app,
    check_samples,
    check_seconds,
    check_threads,
    err,
    out,
    writing,
)
from edgeprune.errors import UserError
from edgeprune.fsio import check_output

if TYPE_CHECKING:  # the contracts import pydantic: only the commands that read a file pay for it
    from edgeprune.bench.energy.measure import EnergyPlan
    from edgeprune.contracts.manifest import CompileCheck, Manifest
    from edgeprune.contracts.results import Results

TargetOpt = Annotated[str, typer.Option("--target", help="Target board or family (edgeprune targets lists them).")]
TargetsDirOpt = Annotated[Path | None, typer.Option("--targets-dir", help="Directory of your own target files (.toml), searched first; also EDGEPRUNE_TARGETS_PATH.")]  # noqa: E501

targets_app = typer.Typer(help="Target boards: one TOML file each.", invoke_without_command=True)
app.add_typer(targets_app, name="targets")


@targets_app.callback()
def targets_list(ctx: typer.Context, targets_dir: TargetsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the known targets (shipped and your own)."""
    from rich.table import Table

    from edgeprune.targets import known_targets, load_target

    if ctx.invoked_subcommand is not None:
        return
    targets = [load_target(n, targets_dir) for n in known_targets(targets_dir)]
    if as_json:
        _print_json({"targets": [t.to_dict() for t in targets]})
        return
    table = Table(title="Targets", title_justify="left")
    for col in ("name", "family", "cpu", "gpu", "description"):
        table.add_column(col)
    for t in targets:
        family = t.family + (" (default)" if t.family_default and t.family != t.name else "")
        cpu = t.cpu.arch + (f" {' '.join(t.cpu.flags)}" if t.cpu.flags else "")
        table.add_row(t.name, family, cpu, t.gpu.cuda_arch if t.gpu else "", t.description)
    out.print(table)


@targets_app.command("show")
def targets_show(
    name: Annotated[str, typer.Argument(help="Target or family name.")],
    targets_dir: TargetsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one target: CPU, GPU, power sensors, kernel library and calibration table."""
    from edgeprune.targets import load_target

    t = load_target(name, targets_dir)
    if as_json:
        _print_json(t.to_dict())
        return
    out.print(f"[bold]{t.name}[/]: {t.description} ({t.path})")
    for section, value in (("cpu", t.cpu), ("gpu", t.gpu), ("power", t.power)):
        if value is not None:
            fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(value).items() if v not in ("", (), 0))
            out.print(f"  {section}: {fields}")
    out.print(f"  kernels: library={t.library}, calibration={t.calibration_path}")


@app.command("compile")
def compile_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Pruned checkpoint (.ept).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Artifact directory to write.")],
    target: TargetOpt = "host",
    format_policy: Annotated[str, typer.Option(help="auto (cost model), or force dense, csr, bsr or nm.")] = "auto",
    input_size: Annotated[str | None, typer.Option(help="Deploy resolution HxW, e.g. 224x224 (default: the workload's, which the checkpoint's graph was exported at).")] = None,  # noqa: E501
    force: Annotated[bool, typer.Option("--force", help="Replace the output directory if it exists.")] = False,
    backend: Annotated[str, typer.Option(help="Compile backend: onnxruntime (sparse ONNX + our kernel library), or tvm (a TVM module with our kernels linked in, and a dense TVM module; needs pip install 'edgeprune[tvm]').")] = "onnxruntime",  # noqa: E501
    tune_trials: Annotated[int, typer.Option(min=0, help="--backend tvm: tune the dense convolutions with MetaSchedule for N trials in all, on this machine, adding to the target's tuning database (0: apply the database if there is one).")] = 0,  # noqa: E501
    tuning_db: Annotated[Path | None, typer.Option(help="--backend tvm: the tuning database directory (default: the target's, under EDGEPRUNE_CACHE); one tuned for another target is refused.")] = None,  # noqa: E501
    targets_dir: TargetsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a pruned checkpoint into an artifact for a target: sparse ONNX (runs in stock
    onnxruntime, faster with the kernel library), dense baseline, kernel library, manifest;
    with --backend tvm, TVM module libraries instead (run by the TVM runtime alone).
    It reads the model graph the checkpoint carries: no workload code is needed."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    check_output(output, force, directory=True)  # before PyTorch is imported: an unwritable output fails at once
    size = _size(input_size)

    from edgeprune.export.backends.base import Tuning
    from edgeprune.export.compile import CompileRequest, compile_artifact

    req = CompileRequest(checkpoint, target, output, format_policy, force, size, targets_dir, backend,
                         Tuning(tune_trials, tuning_db))  # fmt: skip
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                  transient=True) as progress:  # fmt: skip
        stage = progress.add_task("starting", total=None)
        manifest = compile_artifact(req, lambda name: progress.update(stage, description=name))
    if as_json:
        _print_json(manifest.model_dump(mode="json"))
        return
    _print_layers(manifest)
    s, chk = manifest.summary, manifest.check
    out.print(f"formats: {s.formats}; {manifest.files['model'].path} {s.model_bytes / 1e6:.2f} MB vs dense "
              f"{s.dense_bytes / 1e6:.2f} MB ({s.size_ratio:.2f}x)")  # fmt: skip
    out.print(f"outputs vs dense ONNX: max relative error {_check_text(chk)}")
    if manifest.gpu is not None and manifest.gpu.modules:
        g = manifest.gpu
        names = " and ".join(manifest.files[m.library].path for m in g.modules.values())
        out.print(f"GPU ({g.cuda_arch}): {names}, their CUDA code compiled here with {g.device_compiler}; "
                  "edgeprune bench on the board times them")  # fmt: skip
    elif manifest.gpu is not None and manifest.backend == "tvm":
        out.print(f"GPU ({manifest.gpu.cuda_arch}): {manifest.gpu.cuda_code}")
    elif manifest.gpu is not None:
        trt = manifest.gpu.tensorrt
        out.print(f"GPU ({manifest.gpu.cuda_arch}): " + (trt["skipped"] if "skipped" in trt else
                  f"TensorRT-ready {trt['onnx']} with 2:4 weights; on the board: {trt['build']}"))  # fmt: skip
    if manifest.tuning:
        out.print(f"tuning: {manifest.tuning}")
    out.print(f"wrote {output}/ (target {manifest.target.name}, {manifest.target.arch})")


def _check_text(chk: CompileCheck) -> str:
    """The compile-time output checks in words: each model that ran, or why none did."""
    parts = [f"{err:.2e} {what}" for err, what in ((chk.max_rel_error_with_library, "with our kernels"),
                                                     (chk.max_rel_error_fallback, "with the standard fallback ops"),
                                                     (chk.max_rel_error_dense_module, "for the dense module"),
                                                     (chk.max_rel_error_gpu_graph,
                                                      "for the GPU module's graph, its kernels run on this CPU"))
             if err is not None]  # fmt: skip
    return "; ".join(parts + ([chk.with_library] if chk.with_library else []))


def _print_layers(manifest: Manifest) -> None:
    from rich.table import Table

    table = Table(title="Per-layer formats", title_justify="left")
    for col in ("layer", "weight", "density", "format", "predicted vs dense"):
        table.add_column(col)
    for layer in manifest.layers:
        fmt = layer.format + (f" {layer.block[0]}x{layer.block[1]}" if layer.block else "")
        fmt += f" {layer.nm[0]}:{layer.nm[1]}" if layer.nm else ""
        fmt += f" +{layer.activation}" if layer.format != "dense" and layer.activation != "none" else ""
        pred = "" if layer.predicted_ratio is None else f"{layer.predicted_ratio:.2f}x"
        table.add_row(layer.name, "x".join(map(str, layer.weight_shape)), f"{layer.density:.3f}", fmt,
                      pred + (f" ({layer.note})" if layer.note else ""))  # fmt: skip
    out.print(table)


@app.command()
def calibrate(
    target: TargetOpt = "host",
    kernel_library: Annotated[Path | None, typer.Option(help="Kernel library (.so) to time (default: the host build; on a board, an artifact's).")] = None,  # noqa: E501
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the table (default: the target's, replaced on every run; an existing -o file only with --force).")] = None,  # noqa: E501
    threads: Annotated[int | None, typer.Option(help="Threads (default: the target's; at most 4 per core).")] = None,
    targets_dir: TargetsDirOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure each sparse format against onnxruntime's dense Conv on this machine and write the
    cost table the compiler's format chooser reads. Run it on the target itself."""
    if output is not None:
        check_output(output, force)
    check_threads(threads)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgeprune.costmodel.calibrate import calibrate as run_calibration
    from edgeprune.runtime.elf import host_arch
    from edgeprune.runtime.kernel_library import host_library
    from edgeprune.targets import load_target

    t = load_target(target, targets_dir)
    if t.arch not in ("native", host_arch()):
        raise UserError(f"calibrate measures the machine it runs on: run it on the {t.name} board ({t.arch}), "
                        f"not on this {host_arch()} machine")  # fmt: skip
    path = output or t.calibration_path
    check_output(path, True)  # the target's own table is recalibrated in place: only writability is checked
    with Progress(TextColumn("timing kernels"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=as_json, transient=True) as progress:  # fmt: skip
        bar = progress.add_task("calibrate", total=None)
        table = run_calibration(t.name, kernel_library or host_library(), threads or t.threads,
                                progress=lambda i, n: progress.update(bar, completed=i, total=n))  # fmt: skip
    with writing(path):
        table.save(path)
    if as_json:
        _print_json(table.to_dict())
        return
    for (kind, fmt), pts in sorted(table.curves.items()):
        out.print(f"{kind:4s} {fmt:6s} " + "  ".join(f"{d:.2f}:{r:.2f}" for d, r in pts))
    out.print(f"wrote {path}")


@app.command()
def bench(
    artifacts: Annotated[list[Path], typer.Argument(help="Artifact directories made by edgeprune compile (several only with --tracker).", show_default=False)],  # noqa: E501
    threads: Annotated[int | None, typer.Option(help="Threads (default: the target's; at most 4 per core).")] = None,
    seconds: Annotated[float, typer.Option(help="Timing budget, at most 3600; more seconds, steadier tails.")] = 10.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="results.json path (default: ARTIFACT/results.json, replaced on every run; an existing -o file only with --force).")] = None,  # noqa: E501
    on: Annotated[str, typer.Option("--on", help="auto, cpu or gpu: which modules of a TVM artifact for a Jetson to time. auto: the GPU's where this machine has a CUDA device the TVM runtime can use, else the CPU's.")] = "auto",  # noqa: E501
    energy: Annotated[str, typer.Option("--energy", help="Power sensor: auto (from the target's [power] section, else detected), none, or one of jtop, ina3221-hwmon, ina3221-iio, ina238, tegrastats, rpi5-pmic, rapl, nvml.")] = "auto",  # noqa: E501
    idle_seconds: Annotated[float, typer.Option(help="Idle power measured for this long before the energy blocks, and subtracted for the net energy.")] = 2.0,  # noqa: E501
    block_seconds: Annotated[float, typer.Option(help="Length of one energy block of back-to-back inferences.")] = 1.0,
    energy_blocks: Annotated[int, typer.Option(help="Energy blocks per model (sparse and dense alternate), 2 to 100.")] = 3,  # noqa: E501
    device: Annotated[str | None, typer.Option("--device", help="Run on a board instead: rpc://HOST:PORT/KEY, a TVM RPC tracker and the key of a board that runs edgeprune device serve.")] = None,  # noqa: E501
    tracker: Annotated[str | None, typer.Option("--tracker", help="A fleet run: HOST:PORT of a TVM RPC tracker; with --keys.")] = None,  # noqa: E501
    keys: Annotated[str | None, typer.Option("--keys", help="Board keys of a fleet run, comma-separated: each artifact runs on the keys that name its target; results in ARTIFACT/results-KEY.json.")] = None,  # noqa: E501
    queue_timeout: Annotated[float, typer.Option(help="On boards: how long a run waits for a free board of its key, in seconds.")] = 600.0,  # noqa: E501
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Time the sparse model against the dense baseline of the same checkpoint, interleaved in
    the same run: p50/p90/p99 latency, peak memory, ratio; and, where a power sensor is found,
    energy per inference (gross and net of idle) in blocks of many inferences. On this machine,
    on one board (--device) or on a fleet (--tracker, --keys)."""
    from edgeprune.bench.energy.detect import CHOICES

    check_threads(threads)
    check_seconds(seconds)
    check_seconds(idle_seconds, "--idle-seconds")
    check_seconds(block_seconds, "--block-seconds")
    check_seconds(queue_timeout, "--queue-timeout")
    if not 2 <= energy_blocks <= 100:
        raise UserError(f"--energy-blocks must be between 2 and 100 (two for an uncertainty), got {energy_blocks}")
    if energy not in CHOICES:
        raise UserError(f"--energy must be one of {', '.join(CHOICES)}, not {energy!r}")
    if device and tracker:
        raise UserError("--device runs on one board, --tracker with --keys on a fleet: give one of them")
    if (tracker is None) != (keys is None):
        raise UserError("a fleet run needs both --tracker HOST:PORT and --keys KEY,...")
    if len(artifacts) > 1 and tracker is None:
        raise UserError("several artifacts are benched on a fleet only (--tracker, --keys); give one artifact")
    if output is not None and tracker is not None:
        raise UserError("-o names one results file; a fleet run writes ARTIFACT/results-KEY.json for each run")
    from edgeprune.bench.energy.measure import EnergyPlan

    plan = EnergyPlan(idle_s=idle_seconds, block_s=block_seconds, blocks=energy_blocks)
    options = {"threads": threads, "budget_s": seconds, "on": on, "energy": energy, "energy_plan": vars(plan)}
    if tracker is not None and keys is not None:  # its outputs are checked once its runs are known
        from edgeprune.cli.devices import bench_fleet

        bench_fleet(artifacts, tracker, keys, options, plan, queue_timeout, as_json)
        return
    artifact = artifacts[0]
    # Re-benching an artifact is the normal loop, so its own results.json is replaced without
    # --force; a file named with -o is the user's and is replaced only with --force.
    if output is not None:
        check_output(output, force)
    elif artifact.is_dir():
        check_output(artifact / "results.json", True)
    path = output or artifact / "results.json"
    if device is not None:
        from edgeprune.cli.devices import bench_on_device

        results = bench_on_device(artifact, device, options, plan, queue_timeout, as_json)
    else:
        results = _bench_here(artifact, threads, seconds, on, energy, plan, as_json)

    from edgeprune.fsio import write_text_atomic

    with writing(path):
        write_text_atomic(path, results.to_json())
    if as_json:
        _print_json(results.model_dump(mode="json"))
        return
    _print_bench(results)
    out.print(f"wrote {path}")


def _bench_here(artifact: Path, threads: int | None, seconds: float, on: str, energy: str, plan: EnergyPlan,
                as_json: bool) -> Results:  # fmt: skip
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from edgeprune.bench.run import bench_artifact

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=as_json,
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task("loading the models", total=None)
        return bench_artifact(artifact, threads, seconds, on=on, energy=energy, plan=plan,
                              status=lambda what: progress.update(task, description=what))  # fmt: skip


def _print_bench(r: Results) -> None:
    from rich.table import Table

    where = (f"the GPU ({r.device.isa}) of {r.device.hostname}" if r.device.processor == "gpu"
             else f"{r.device.cpu} ({r.device.isa}, {r.threads} thread(s))")  # fmt: skip
    if r.device.remote:
        where += f" on {r.device.hostname}, {r.device.remote}"
    table = Table(title=f"Latency on {where}", title_justify="left")
    for col in ("model", "p50 ms", "p90 ms", "p99 ms", "runs", "peak RSS MiB"):
        table.add_column(col)
    peaks = {"dense": r.memory.dense_peak_rss_mib, "sparse": r.memory.sparse_peak_rss_mib}
    for name in ("dense", "sparse"):
        lat, mem = r.latency[name], peaks[name]
        table.add_row(name, f"{lat.p50_ms:.3f}", f"{lat.p90_ms:.3f}", f"{lat.p99_ms:.3f}", str(lat.runs),
                      "n/a" if mem is None else f"{mem:.0f}")  # fmt: skip
    out.print(table)
    out.print(f"sparse/dense p50: {r.ratio_p50:.3f} ({r.speedup_p50:.2f}x faster)")
    _print_energy(r)
    if r.device.processor_note:
        out.print(f"note: {r.device.processor_note}")


def _print_energy(r: Results) -> None:
    e = r.energy
    if e is None:
        out.print(f"energy: {r.energy_reason}")
        return
    rate = f"{e.sampling_hz:.0f} Hz" + (f" of {e.requested_hz:.0f} asked" if e.requested_hz else "")
    out.print(f"energy ({e.backend}, {e.rail}, sampled at {rate}; idle {e.idle_power_w:.3f} W):")
    for name, m in (("dense", e.dense), ("sparse", e.sparse)):
        out.print(f"  {name:6s} {m.gross_j * 1e3:.4f} mJ gross, {m.net_j * 1e3:.4f} ± {m.uncertainty_j * 1e3:.4f} mJ "
                  f"net per inference ({m.blocks} blocks of {m.inferences_per_block})")  # fmt: skip
    net = "n/a (a net energy is not above zero)" if e.ratio_net is None else f"{e.ratio_net:.3f}"
    gross = "n/a (the dense gross energy is not above zero)" if e.ratio_gross is None else f"{e.ratio_gross:.3f}"
    out.print(f"  sparse/dense energy: net {net}, gross {gross}")


@app.command()
def verify(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory made by edgeprune compile.")],
    checkpoint: Annotated[Path | None, typer.Option(help="The source checkpoint (default: the path in the manifest).")] = None,  # noqa: E501
    samples: Annotated[int, typer.Option(help="Sample inputs to run (the checkpoint carries 8).")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Run the artifact for its own target (under qemu-aarch64 with the board's CPU model for an
    ARM board) and compare every task output with the checkpoint's own graph (checked against
    PyTorch when it was pruned), on the inputs the checkpoint carries: PASS/FAIL per output.
    Without PyTorch installed (a board) the artifact's dense model is the reference. Exit code 1
    when any output fails."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from edgeprune.contracts.manifest import Manifest
    from edgeprune.verify.board import ATOL, RTOL, dense_reference, verify_artifact

    check_samples(samples)
    manifest = Manifest.read(artifact)
    with Progress(TextColumn("running the artifact (an emulated board takes a while)"), TimeElapsedColumn(),
                  console=err, disable=as_json, transient=True) as progress:  # fmt: skip
        progress.add_task("verify", total=None)
        if _have_torch():
            from edgeprune.verify.reference import checkpoint_reference

            reference = checkpoint_reference(manifest, checkpoint, samples)
        else:  # a board's runtime install: the artifact's dense model is the reference
            reference = dense_reference(artifact, manifest, samples)
        result = verify_artifact(artifact, manifest, reference)
    checks = result.checks
    ok = all(c.passed for c in checks)
    if as_json:
        _print_json({"artifact": str(artifact), "ran": result.ran, "reference": result.reference, "passed": ok,
                     "rtol": RTOL, "outputs": [dataclasses.asdict(c) for c in checks],
                     **({"gpu": result.gpu} if result.gpu else {})})  # fmt: skip
    else:
        out.print(f"ran {artifact} with {result.ran}; each output against {result.reference} "
                  f"(tolerance {RTOL:g} relative + {ATOL:g} absolute):")  # fmt: skip
        if result.gpu:
            out.print(f"the GPU's sparse module: {result.gpu}")
        for c in checks:
            mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
            out.print(f"  {mark} sample {c.sample} {c.task}: max abs err {c.max_abs:.2e}, worst error "
                      f"{c.of_tolerance:.3f} of the tolerance")  # fmt: skip
        out.print("PASS" if ok else "FAIL")
    if not ok:
        raise typer.Exit(1)


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
