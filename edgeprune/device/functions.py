"""The functions ``device serve`` registers on its TVM RPC server, as the caller reaches them
with ``session.get_function(NAME)``. Each takes and returns JSON text, and a failure is an
``{"error": "..."}`` reply (one line, as the CLI prints it), never a traceback through TVM.

- ``edgeprune.device.describe()``: the board (architecture, CPU, host name, edgeprune and
  runtime versions, the energy sensor it would use);
- ``edgeprune.device.bench(archive, options)``: unpack an artifact the caller uploaded as a tar
  into the session's work directory, run ``edgeprune bench``'s protocol on it (every file checked
  against the manifest's sha256 before anything loads) and reply with its results.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import tarfile
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError, one_line

DESCRIBE, BENCH = "edgeprune.device.describe", "edgeprune.device.bench"
PROTOCOL = 1  # bumped when the caller and the board must both change


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    from edgeprune.bench.run import cpu_model
    from edgeprune.runtime.elf import host_arch

    return {"protocol": PROTOCOL, "arch": host_arch(), "machine": platform.machine(), "cpu": cpu_model(),
            "hostname": platform.node(), "edgeprune": _version("edgeprune") or "source tree",
            "onnxruntime": _version("onnxruntime"),
            "tvm": _version("apache-tvm") or _version("apache-tvm-ffi")}  # fmt: skip


def unpack(archive: Path, dest: Path) -> Path:
    """The artifact directory of an uploaded tar: plain files only, each inside ``dest`` (no
    links, devices, absolute paths or ``..``; tarfile's own ``data`` filter is not in every
    Python 3.11 a board has)."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if not m.isfile() or not parts or Path(m.name).is_absolute() or ".." in parts:
                    raise UserError(f"the uploaded artifact holds {m.name!r}, which is not a plain file inside it")
            dest.mkdir()
            tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"the uploaded artifact is not a readable tar: {one_line(exc)}") from None
    if not (dest / "manifest.json").is_file():
        raise UserError("the uploaded artifact has no manifest.json")
    return dest


def bench(archive: Path, options: dict[str, Any]) -> str:
    from edgeprune.bench.energy.measure import EnergyPlan
    from edgeprune.bench.run import bench_artifact

    artifact = unpack(archive, archive.with_suffix(".d"))
    plan = EnergyPlan(**options.pop("energy_plan", {}))
    return bench_artifact(artifact, plan=plan, **options).to_json()


def reply(call: Any, *args: Any) -> str:  # noqa: ANN401 - the functions' own arguments
    """``call(*args)`` as a JSON reply: ``{"ok": value}`` or ``{"error": "one line"}``."""
    try:
        return json.dumps({"ok": call(*args)})
    except UserError as exc:
        return json.dumps({"error": str(exc)})
    except Exception as exc:  # a bug on the board: the caller gets one line, the board's log the rest
        import traceback

        traceback.print_exc()
        return json.dumps({"error": f"the board failed: {type(exc).__name__}: {one_line(exc)}"})
