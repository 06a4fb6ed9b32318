"""The artifact's ``manifest.json``: everything a board needs to run and measure an artifact
without the machine that built it: the target (CPU, threads, power sensors), the backend that
wrote it, every file with its sha256, the inputs and outputs, the per-layer formats, and what
compile checked. Format ``edgeprune.artifact/2``; an ``/1`` artifact is refused by name.

Every file of an artifact is named relative to it and confined to it: ``ArtifactFile.path`` is
a plain relative name (no ``..``, no absolute path, no odd characters), and ``Manifest.path``
resolves it, links followed, to a regular file inside the artifact. Its sha256 is checked by
:func:`edgeprune.runtime.artifact_files.checked_path`, which every opener of a file uses.

Usage::

    manifest = Manifest.read(artifact_dir)            # validated; UserError names the field
    manifest.path(artifact_dir, "model")              # confined (not yet hashed: see above)
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from edgeprune.contracts.base import Contract, decode, parse
from edgeprune.errors import UserError

MANIFEST = "manifest.json"
ARTIFACT_FORMAT: Final = "edgeprune.artifact/2"
OLDER = {
    "edgeprune.artifact/1": "it predates file hashes, power sensors and backends in the manifest; "
    "compile the checkpoint again with this edgeprune",
}


class Calibration(Contract):
    file: str
    measured: bool


class PowerSensors(Contract):
    """The board's power sensors, as its target file names them (``targets show``)."""

    sensor: str
    interface: str
    total_rail: str
    rails: list[str]


class TargetInfo(Contract):
    name: str
    description: str
    arch: str  # the ELF machine of the built code: x86_64, aarch64
    cpu_flags: list[str]
    qemu_cpu: str
    threads: int = Field(ge=1)
    calibration: Calibration
    power: PowerSensors


class CheckpointRef(Contract):
    file: str
    path: str
    sha256: str
    workload: str
    model: str
    method: str


class TensorSpec(Contract):
    name: str
    shape: list[str | int]  # "batch" for the dynamic batch dimension
    dtype: str


class OutputSpec(Contract):
    name: str
    task: str


_NAME = re.compile(r"[A-Za-z0-9_+.-]+(/[A-Za-z0-9_+.-]+)*")


class ArtifactFile(Contract):
    path: str  # relative to the artifact directory
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(f"{value!r} is not a path inside the artifact")
        if not _NAME.fullmatch(value):  # the names reach command lines (qemu): plain characters only
            raise ValueError(f"{value!r} is not a plain file name (letters, digits, '_+.-' and '/')")
        return value


class KernelLibrary(Contract):
    file: str
    abi: int
    arch: str


class LayerRecord(Contract):
    """One convolution: its shape, density and the format chosen for it (and why)."""

    name: str
    kind: str  # 1x1 | kxk
    weight_shape: list[int]
    input_shape: list[int]
    activation: str
    density: float
    format: str  # dense | csr | bsr | nm | shrunk
    block: list[int] | None
    nm: list[int] | None
    predicted_ratio: float | None
    dense_bytes: int
    stored_bytes: int
    note: str = ""


class Summary(Contract):
    layers: int
    formats: dict[str, int]
    model_bytes: int
    dense_bytes: int
    size_ratio: float


class CompileCheck(Contract):
    """The compiled models' outputs against the dense ONNX model's, on one input."""

    input: str
    max_rel_error_with_library: float | None  # the sparse model running our kernels
    max_rel_error_fallback: float | None  # ONNX Runtime: the sparse model's standard fallback ops
    with_library: str | None = None  # why the models were not run at compile time
    max_rel_error_dense_module: float | None = None  # TVM: the dense baseline module
    # TVM for a GPU: the GPU module's graph with its sparse kernels built as loops for this CPU
    max_rel_error_gpu_graph: float | None = None


class CudaModule(Contract):
    """A TVM module for the GPU: its library and its CUDA code, compiled for the board."""

    library: str  # role of the module library in files
    code: str  # role of the compiled CUDA code in files
    kind: Literal["fatbin", "cubin"]
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the CUDA source in the library


class GpuPath(Contract):
    name: str
    cuda_arch: str
    jetpack: str
    cuda: str
    device_compiler: str
    cuda_code: str
    tensorrt: dict[str, Any]
    modules: dict[str, CudaModule] = {}  # TVM: sparse ("model") and dense ("dense") modules for the GPU


class Manifest(Contract):
    format: Literal["edgeprune.artifact/2"] = ARTIFACT_FORMAT
    edgeprune_version: str
    backend: str  # the compile backend that wrote the model files, e.g. onnxruntime
    target: TargetInfo
    checkpoint: CheckpointRef
    tasks: list[str] = Field(min_length=1)
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[OutputSpec]
    files: dict[str, ArtifactFile]  # role (model, dense, library) -> file
    library: KernelLibrary | None
    format_policy: str
    layers: list[LayerRecord]
    summary: Summary
    check: CompileCheck
    gpu: GpuPath | None = None
    tuning: str | None = None  # TVM: the tuning records applied, in words

    @classmethod
    def read(cls, artifact: Path) -> Manifest:
        """The validated manifest of an artifact directory whose files are all present."""
        if not artifact.is_dir():
            raise UserError(f"artifact directory not found: {artifact}")
        path = artifact / MANIFEST
        if not path.is_file():
            raise UserError(f"{artifact} is not an edgeprune artifact (no {MANIFEST})")
        manifest = parse(cls, decode(path.read_bytes(), str(path)), str(path), ARTIFACT_FORMAT, OLDER)
        for role in ("model", "dense"):
            if role not in manifest.files:
                raise UserError(f"{path}: field files.{role}: missing")
        for role in manifest.files:
            manifest.path(artifact, role)
        return manifest

    def path(self, artifact: Path, role: str) -> Path:
        """Where the file of ``role`` (model, dense, library) lies: its real path, links followed,
        which must be a regular file inside ``artifact``; a UserError naming the file otherwise.
        Nothing is opened here. To open or load the file, use
        :func:`edgeprune.runtime.artifact_files.checked_path`, which also checks its sha256."""
        if role not in self.files:
            raise UserError(f"{artifact}: the manifest lists no {role} file")
        name = self.files[role].path
        where = artifact / name
        try:
            root = artifact.resolve(strict=True)
            real = where.resolve(strict=True)
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            link = " (a link to nothing)" if where.is_symlink() else ""
            raise UserError(f"{artifact}: {name} is missing{link}") from None
        except (OSError, RuntimeError, ValueError) as exc:  # a loop of links, no permission
            raise UserError(f"{artifact}: {name} cannot be reached ({exc})") from None
        if not real.is_relative_to(root):
            raise UserError(f"{artifact}: {name} leads outside the artifact (to {real}); "
                            "an artifact's files must lie inside it")  # fmt: skip
        if not stat.S_ISREG(mode):
            raise UserError(f"{artifact}: {name} is not a regular file (it is {_kind(mode)})")
        return real


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}  # fmt: skip
    return next((what for test, what in kinds.items() if test(mode)), "not a file")
