"""The backend seam of ``edgeprune compile``. The orchestrator (:mod:`edgeprune.export.compile`)
does everything that does not depend on the output format: it loads the checkpoint, exports the
dense graph, measures shapes, chooses each layer's format with the target's cost model, stages
the artifact directory and writes the manifest. A backend turns that plan into files.

A new backend is one module with a class that has this shape, and one line in
:data:`edgeprune.export.backends.BACKENDS`; the orchestrator does not change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx

from edgeprune.contracts.manifest import CompileCheck, GpuPath, KernelLibrary
from edgeprune.export.plan import PlannedLayer
from edgeprune.targets import Target


@dataclasses.dataclass
class Tuning:
    """``compile --tune-trials N --tuning-db DIR`` (backends that tune: ``tunes = True``)."""

    trials: int = 0
    database: Path | None = None  # None: the target's database in the cache


@dataclasses.dataclass
class BuildJob:
    target: Target
    dense: onnx.ModelProto  # standard ops, BatchNorm folded, one output per task
    layers: list[PlannedLayer]
    example: np.ndarray  # one input at the deploy resolution, for the output checks
    out: Path  # the staged artifact directory to write into
    stage: Callable[[str], None]  # progress: a step started
    tuning: Tuning = dataclasses.field(default_factory=Tuning)


@dataclasses.dataclass
class BuildOutput:
    files: dict[str, str]  # role -> file name in ``out``: model, dense (the baseline), library...
    library: KernelLibrary | None
    check: CompileCheck
    gpu: GpuPath | None = None
    batch: int | None = None  # the batch the model was compiled for; None: any (ONNX's dynamic batch)
    tuning: str | None = None  # what tuning records were applied, in words


def max_rel_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """The worst output's largest difference, relative to that output's largest magnitude."""
    return max(float(np.abs(g - w).max() / (np.abs(w).max() + 1e-12)) for g, w in zip(got, want, strict=True))


class Backend(Protocol):
    name: str
    tunes: bool  # whether it takes --tune-trials / --tuning-db

    def prepare(self, target: Target, stage: Callable[[str], None]) -> None:
        """Check and build what the target needs (a kernel library, a toolchain) before the slow
        steps, so a missing cross compiler fails first."""

    def build(self, job: BuildJob) -> BuildOutput: ...
