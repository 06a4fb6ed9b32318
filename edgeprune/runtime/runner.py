"""The runner seam: one loaded model of an artifact, ready to run on NumPy inputs. Every backend
a compiled artifact can come from has a runner here (ONNX Runtime, a TVM module), so bench,
verify and the memory probe never branch on the backend. A board over the network runs the whole
bench with these runners (:mod:`edgeprune.device`).

Usage::

    manifest = Manifest.read(artifact)
    sparse = open_runner(artifact, manifest, "model", threads=4)
    outputs = sparse.run({sparse.input_name: x})     # one array per task, manifest order
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError
from edgeprune.plugins import load_reference
from edgeprune.runtime.artifact_files import checked_path

# backend (as the manifest names it) -> "module:factory"; the factory takes (artifact, manifest,
# role, threads) and returns a Runner. A new backend adds one line and one module.
RUNNERS = {"onnxruntime": "edgeprune.runtime.ort_runner:open_ort", "tvm": "edgeprune.runtime.tvm_runner:open_tvm"}


class Runner(Protocol):
    input_name: str
    isa: str  # the instruction set our kernels run on, or "none" when the model uses none

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class RunnerFactory(Protocol):
    """Opens the files it loads through :func:`~edgeprune.runtime.artifact_files.checked_path`."""

    def __call__(self, artifact: Path, manifest: Manifest, role: str, threads: int) -> Runner: ...


def open_runner(artifact: Path, manifest: Manifest, role: str, threads: int) -> Runner:
    """The model of ``role`` (``model``: the sparse one, ``dense``: its baseline), loaded."""
    if threads < 1:
        raise UserError(f"--threads must be at least 1, not {threads}")
    if manifest.backend not in RUNNERS:
        raise UserError(f"{artifact}: backend '{manifest.backend}' has no runner in this edgeprune "
                        f"(it runs: {', '.join(RUNNERS)})")  # fmt: skip
    for listed in manifest.files:  # every file checked before any is loaded, whatever the runner does
        checked_path(artifact, manifest, listed)
    factory: RunnerFactory = load_reference(RUNNERS[manifest.backend])
    return factory(artifact, manifest, role, threads)
