"""Runs an ONNX Runtime artifact: the sparse model with the artifact's kernel library registered
(its ``edgeprune`` ops run our kernels), the dense baseline in stock onnxruntime. Every file is
checked against the manifest (:func:`~edgeprune.runtime.artifact_files.checked_path`) before
onnxruntime or ctypes sees it, and a file onnxruntime refuses is one UserError line naming it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.runtime.artifact_files import checked_path
from edgeprune.runtime.kernel_library import check_library, session_options

# onnxruntime's own exceptions (Fail, InvalidGraph, InvalidProtobuf, NoSuchFile, ...), whatever
# this version of it defines
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    v for v in vars(_ort_state).values() if isinstance(v, type) and issubclass(v, Exception)
)


def ort_message(exc: BaseException) -> str:
    """onnxruntime's first line, without its ``[ONNXRuntimeError] : 7 :`` prefix."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", first)


@dataclasses.dataclass
class OrtRunner:
    session: ort.InferenceSession
    isa: str
    model: Path

    @property
    def input_name(self) -> str:
        return str(self.session.get_inputs()[0].name)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return list(self.session.run(None, feed))
        except ORT_ERRORS as exc:
            raise UserError(f"{self.model} failed to run: {ort_message(exc)}") from None


def _session(model: Path, threads: int, library: Path | None) -> ort.InferenceSession:
    try:
        so = session_options(threads, library)
    except ORT_ERRORS as exc:
        raise UserError(f"{library}: onnxruntime cannot register it: {ort_message(exc)}") from None
    try:
        return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    except ORT_ERRORS as exc:
        raise UserError(f"{model} is not a valid ONNX model: {ort_message(exc)}") from None


def open_ort(artifact: Path, manifest: Manifest, role: str, threads: int) -> OrtRunner:
    model = checked_path(artifact, manifest, role)
    if role == "dense" or "library" not in manifest.files:
        return OrtRunner(_session(model, threads, None), "none", model)
    library = checked_path(artifact, manifest, "library")
    isa = check_library(library)
    return OrtRunner(_session(model, threads, library), isa, model)
