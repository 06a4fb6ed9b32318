"""The artifact's ``manifest.json``: everything a board needs to run and measure an artifact
without the machine that built it: the target (CPU, threads, power sensors), the backend that
wrote it, every file with its sha256, the inputs and outputs, the per-layer formats, and what
compile checked. Format ``edgeprune.artifact/2``; an ``/1`` artifact is refused by name.

Usage::

    manifest = Manifest.read(artifact_dir)            # validated; UserError names the field
    artifact_dir / manifest.files["model"].path
"""

from __future__ import annotations

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


class ArtifactFile(Contract):
    path: str  # relative to the artifact directory
    sha256: str
    bytes: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(f"{value!r} is not a path inside the artifact")
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
    input: str
    max_rel_error_with_library: float | None
    max_rel_error_fallback: float
    with_library: str | None = None  # why the library was not run at compile time


class GpuPath(Contract):
    name: str
    cuda_arch: str
    jetpack: str
    cuda: str
    device_compiler: str
    cuda_code: str
    tensorrt: dict[str, Any]


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
        for entry in manifest.files.values():
            if not (artifact / entry.path).is_file():
                raise UserError(f"{artifact}: {entry.path} is missing")
        return manifest

    def path(self, artifact: Path, role: str) -> Path:
        """Where the file of ``role`` (model, dense, library) lies in ``artifact``."""
        if role not in self.files:
            raise UserError(f"{artifact}: the manifest lists no {role} file")
        return artifact / self.files[role].path
