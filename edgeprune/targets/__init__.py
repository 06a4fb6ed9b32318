"""Targets: one TOML file per board (``targets/*.toml`` in the repository, the single source of
truth about a board); this module reads and validates them, and nothing about a board is
written in Python.

A target names its CPU (architecture, GNU triple, ``-mcpu``/``-march``, features, cores, default
threads, the cross compiler and its Debian package, the qemu CPU model that traps what the board
lacks), its GPU where it has one (CUDA architecture, the JetPack and CUDA it ships, how device
code is compiled for it), its power sensors, and where its kernel library and calibration table
come from. Users add boards by dropping TOML files in a directory named by ``--targets-dir`` or
``EDGEPRUNE_TARGETS_PATH`` (colon-separated; searched before the shipped ones). ``--target
jetson`` (a family) means the family's default board.

Usage::

    t = load_target("jetson-orin-nano")
    t.cpu.mcpu, t.gpu.cuda_arch, t.calibration_path
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import tomllib

from edgeprune.errors import UserError, named, one_line, show

SHIPPED = Path(__file__).resolve().parent  # the board files ship inside the package


@dataclasses.dataclass(frozen=True)
class Cpu:
    arch: str  # "aarch64", or "native" for the machine running edgeprune
    threads: int
    triple: str = ""
    mcpu: str = ""
    march: str = ""
    features: tuple[str, ...] = ()
    cores: int = 0
    cross_compiler: str = ""
    cross_package: str = ""
    qemu_cpu: str = ""

    @property
    def flags(self) -> list[str]:
        """Compiler flags for the board's CPU (-mcpu when gcc knows it, else -march)."""
        return [f"-mcpu={self.mcpu}"] if self.mcpu else [f"-march={self.march}"] if self.march else []


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    cuda_arch: str
    jetpack: str
    cuda: str
    device_compiler: str  # "nvcc" or "nvrtc-12"
    sparse_tensor_cores: bool


# power.sensor: what the board measures with (the bench's energy backends detect the interface);
# "none": no sensor on the board, and bench looks for the host's own (RAPL, NVML)
SENSORS = ("none", "ina3221", "ina238", "tegrastats", "jtop", "pmic", "rapl", "nvml")


@dataclasses.dataclass(frozen=True)
class Power:
    sensor: str
    interface: str
    total_rail: str
    rails: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    description: str
    family: str
    family_default: bool
    cpu: Cpu
    gpu: Gpu | None
    power: Power
    library: str  # "host" (built by pip install) or "cross" (built at compile time)
    calibration_path: Path
    path: Path

    @property
    def threads(self) -> int:
        return self.cpu.threads

    @property
    def arch(self) -> str:
        return self.cpu.arch

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["calibration_path"] = str(self.calibration_path)
        d["path"] = str(self.path)
        return d


def search_path(extra: Path | None = None) -> list[Path]:
    dirs = [extra] if extra else []
    dirs += [Path(p) for p in os.environ.get("EDGEPRUNE_TARGETS_PATH", "").split(":") if p]
    return [*dirs, SHIPPED]


def _files(extra: Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in search_path(extra):
        if extra is not None and d == extra and not d.is_dir():
            raise UserError(f"targets directory not found: {d}")
        for f in sorted(d.glob("*.toml")) if d.is_dir() else []:
            found.setdefault(f.stem, f)  # earlier directories win
    return found


_SCALAR = {str: "a string", int: "an integer", bool: "true or false"}
MAX_THREADS = 256  # cores and threads a board file may name
# The fields a board file may have; any other is refused (a misspelt field is not ignored).
FIELDS = {
    "": {"name", "description", "family", "family_default", "cpu", "gpu", "power", "kernels"},
    "cpu": {"arch", "threads", "triple", "mcpu", "march", "features", "cores", "cross_compiler", "cross_package",
            "qemu_cpu"},
    "gpu": {"name", "cuda_arch", "jetpack", "cuda", "device_compiler", "sparse_tensor_cores"},
    "power": {"sensor", "interface", "total_rail", "rails"},
    "kernels": {"library", "calibration"},
}  # fmt: skip


def _get(doc: dict, path: Path, dotted: str, kind: type, default: Any = ...) -> Any:  # noqa: ANN401
    node: Any = doc
    keys = dotted.split(".")
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            if default is not ...:
                return default
            raise UserError(f"{path}: missing field {dotted}")
        node = node[k]
    if kind is list:
        if not isinstance(node, list) or not all(isinstance(x, str) and x.isprintable() for x in node):
            raise UserError(f"{path}: field {dotted} must be a list of strings, not {show(node)}")
        return tuple(node)
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        raise UserError(f"{path}: field {dotted} must be {_SCALAR[kind]}, not {show(node)}")
    if isinstance(node, str) and not node.isprintable():
        raise UserError(f"{path}: field {dotted} must be printable text, not {show(node)}")
    return node


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise UserError(f"{path}: not valid TOML (nested too deeply)") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of thousands of digits
        raise UserError(f"{path}: not valid TOML ({one_line(exc)})") from None
    for table, fields in FIELDS.items():
        node = doc.get(table) if table else doc
        if table and table in doc and not isinstance(node, dict):
            raise UserError(f"{path}: field {table} must be a table, not {show(node)}")
        unknown = sorted(set(node or {}) - fields)
        if unknown:
            where = f"{table}.{unknown[0]}" if table else unknown[0]
            shown = named(where)
            raise UserError(f"{path}: unknown field {shown}")
    return doc


def _count(doc: dict, path: Path, dotted: str, most: int) -> int:
    value: int = _get(doc, path, dotted, int)
    if not 1 <= value <= most:
        raise UserError(f"{path}: field {dotted} must be between 1 and {most}, not {value}")
    return value


def parse_target(path: Path) -> Target:
    """Read and validate one target file; errors name the file and the field."""
    doc = _read_toml(path)
    name = _get(doc, path, "name", str)
    if name != path.stem:
        raise UserError(f"{path}: field name is {show(name)} but the file is {path.name}")
    arch = _get(doc, path, "cpu.arch", str)
    library = _get(doc, path, "kernels.library", str)
    if library not in ("host", "cross"):
        raise UserError(f"{path}: field kernels.library must be 'host' or 'cross', not {show(library)}")
    if arch == "native":
        cpu = Cpu(arch, _count(doc, path, "cpu.threads", MAX_THREADS))
    elif arch == "aarch64":
        strings = ("triple", "mcpu", "march", "cross_compiler", "cross_package", "qemu_cpu")
        cores = _count(doc, path, "cpu.cores", MAX_THREADS)
        cpu = Cpu(arch, _count(doc, path, "cpu.threads", cores), features=_get(doc, path, "cpu.features", list),
                  cores=cores, **{f: _get(doc, path, f"cpu.{f}", str) for f in strings})  # fmt: skip
        if not cpu.mcpu and not cpu.march:
            raise UserError(f"{path}: field cpu.mcpu or cpu.march must name the board's CPU")
        for f in ("mcpu", "march", "cross_compiler"):
            if getattr(cpu, f).startswith("-"):
                raise UserError(f"{path}: field cpu.{f} must not start with '-'")
    else:
        raise UserError(f"{path}: field cpu.arch must be 'aarch64' or 'native', not {show(arch)}")
    gpu = None
    if "gpu" in doc:
        fields = ("name", "cuda_arch", "jetpack", "cuda", "device_compiler")
        gpu = Gpu(**{f: _get(doc, path, f"gpu.{f}", str) for f in fields},
                  sparse_tensor_cores=_get(doc, path, "gpu.sparse_tensor_cores", bool))  # fmt: skip
        if gpu.device_compiler not in ("nvcc", "nvrtc-12"):
            raise UserError(f"{path}: field gpu.device_compiler must be 'nvcc' or 'nvrtc-12'")
        if not re.fullmatch(r"sm_\d+[a-z]?", gpu.cuda_arch):
            raise UserError(f"{path}: field gpu.cuda_arch must name a CUDA architecture like sm_87, not "
                            f"{gpu.cuda_arch!r}")  # fmt: skip
    power = Power(**{f: _get(doc, path, f"power.{f}", str) for f in ("sensor", "interface", "total_rail")},
                  rails=_get(doc, path, "power.rails", list))  # fmt: skip
    if power.sensor not in SENSORS:
        raise UserError(f"{path}: field power.sensor {show(power.sensor)} is not one of {', '.join(SENSORS)}")
    if power.total_rail and power.total_rail not in power.rails:
        raise UserError(f"{path}: field power.total_rail {show(power.total_rail)} is not one of power.rails")
    family, default = _get(doc, path, "family", str, name), _get(doc, path, "family_default", bool, False)
    if not family:
        raise UserError(f"{path}: field family must not be empty")
    calibration = _get(doc, path, "kernels.calibration", str)
    if not calibration:
        raise UserError(f"{path}: field kernels.calibration must name the calibration table")
    return Target(name, _get(doc, path, "description", str, ""), family, default, cpu, gpu, power, library,
                  path.parent / calibration, path)  # fmt: skip


def known_targets(extra: Path | None = None) -> list[str]:
    return sorted(_files(extra))


def load_target(name: str, extra: Path | None = None) -> Target:
    """The target called ``name``, or the default board of the family ``name``."""
    files = _files(extra)
    if name in files:
        return parse_target(files[name])
    family = [t for t in _parsed(files) if t.family == name and t.family_default]
    if family:
        return family[0]
    raise UserError(f"unknown target '{name}'; known targets: {', '.join(sorted(files)) or 'none'} "
                    f"(families: {', '.join(_families(files))})")  # fmt: skip


def _parsed(files: dict[str, Path]) -> list[Target]:
    """The files that parse; a broken one is reported when asked for by name, not here."""
    out = []
    for f in files.values():
        try:
            out.append(parse_target(f))
        except UserError:
            continue
    return out


def _families(files: dict[str, Path]) -> list[str]:
    return sorted({t.family for t in _parsed(files)} - set(files))
