"""Runs an ONNX Runtime artifact: the sparse model with the artifact's kernel library registered
(its ``edgeprune`` ops run our kernels), the dense baseline in stock onnxruntime."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeprune.contracts.manifest import Manifest
from edgeprune.runtime.kernel_library import check_library, session


@dataclasses.dataclass
class OrtRunner:
    session: ort.InferenceSession
    isa: str

    @property
    def input_name(self) -> str:
        return str(self.session.get_inputs()[0].name)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(None, feed))


def open_ort(artifact: Path, manifest: Manifest, role: str, threads: int) -> OrtRunner:
    model = manifest.path(artifact, role)
    if role == "dense" or "library" not in manifest.files:
        return OrtRunner(session(model, threads), "none")
    library = manifest.path(artifact, "library")
    isa = check_library(library)
    return OrtRunner(session(model, threads, library), isa)
