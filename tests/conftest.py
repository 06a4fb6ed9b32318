"""Fixtures for the whole suite.

Layout: ``tests/unit/<package>/`` follows ``edgeprune/<package>/`` (top-level modules such as
masks.py have their test in ``tests/unit/``), ``tests/kernels/`` tests the C++ kernels and
``tests/e2e/`` runs whole commands. There are no ``__init__.py`` files: pytest imports each test
file by its basename, so basenames must stay unique across the tree (a duplicate fails collection
with "import file mismatch"). Helpers are in ``helpers.py`` (``from helpers import run_cli``).

``checkpoints`` is the one place the suite prunes a checkpoint it shares: each distinct request is
pruned once per session, on first use.
"""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import DIGITS_90

from edgeprune.prune.pipeline import PruneRequest, PruneResult, prune, write_checkpoint
from edgeprune.train.finetune import FinetuneConfig
from edgeprune.workload.registry import resolve_workload


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@dataclasses.dataclass
class _Built:
    path: Path
    result: PruneResult
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Checkpoints:
    """Pruned checkpoints (.ept), each built once per session and cached by its arguments.

    ``checkpoints(workload, method, sparsity, model=None, tasks=None, finetune_steps=0,
    evaluate_before=False, **options)`` returns the path; ``options`` are the method's options
    (``scope="global"``). ``checkpoints.result(...)`` with the same arguments returns the in-memory
    ``PruneResult`` the file was written from. The files are shared: a test that changes its
    checkpoint takes ``checkpoints.copy(dest, ...)`` instead. Every build runs with torch seeded
    at 0 and leaves the caller's random state as it was, so a checkpoint does not depend on which
    test asked first. At the end of the session a shared file that changed is an error.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.built: dict[str, _Built] = {}

    def _get(self, workload, method, sparsity, *, model=None, tasks=None, finetune_steps=0, evaluate_before=False,
             **options) -> _Built:  # fmt: skip
        model = model or resolve_workload(workload).default_model
        key = json.dumps([workload, model, method, sparsity, tasks, finetune_steps, evaluate_before, options],
                         sort_keys=True)  # fmt: skip
        if key not in self.built:
            path = self.directory / f"{len(self.built):02d}-{workload}-{model}-{method}-{sparsity}.ept"
            finetune = FinetuneConfig(steps=finetune_steps)
            req = PruneRequest(workload, method, sparsity, tasks=tasks, model=model, options=options, finetune=finetune,
                               evaluate_before=evaluate_before)  # fmt: skip
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                result = prune(req)
            write_checkpoint(result, path)
            self.built[key] = _Built(path, result, _sha256(path))
        return self.built[key]

    def __call__(self, *args, **kwargs) -> Path:
        return self._get(*args, **kwargs).path

    def result(self, *args, **kwargs) -> PruneResult:
        return self._get(*args, **kwargs).result

    def copy(self, dest: Path, *args, **kwargs) -> Path:
        """A private copy at ``dest`` for a test that modifies the file."""
        return Path(shutil.copyfile(self._get(*args, **kwargs).path, dest))

    def changed(self) -> list[str]:
        return [b.path.name for b in self.built.values() if _sha256(b.path) != b.sha256]


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """The suite's shared pruned checkpoints; see :class:`Checkpoints`."""
    factory = Checkpoints(tmp_path_factory.mktemp("checkpoints"))
    yield factory
    changed = factory.changed()
    assert not changed, f"a test modified shared checkpoints {changed}; use checkpoints.copy(...)"


@pytest.fixture(scope="session")
def digits_host_artifact(tmp_path_factory, checkpoints):
    """The 90% digits checkpoint compiled for this machine, shared; a test that changes the
    artifact works on a copy (shutil.copytree)."""
    from edgeprune.export.compile import CompileRequest, compile_artifact

    art = tmp_path_factory.mktemp("digits-host") / "art"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_90), "host", art))
    return art


@pytest.fixture(scope="session")
def tvm_artifact(tmp_path_factory, checkpoints):
    """The 90% digits checkpoint as a TVM module for this machine, shared (read only)."""
    from edgeprune.export.compile import CompileRequest, compile_artifact

    art = tmp_path_factory.mktemp("digits-tvm") / "art"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_90), "host", art, backend="tvm"))
    return art


DIGITS_SWEEP = """
workload = "digits"
tasks = ["digit", "ge5"]
sparsities = [0.5, 0.7, 0.9]
[bench]
seconds = 0.1
threads = 1
[methods.magnitude]
scope = "global"
[methods.snip]
"""


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory):
    """One small real sweep, shared by the sweep and report tests: digits, magnitude and SNIP at
    three sparsities, the host. (config path, results directory, its SweepSummary)."""
    from edgeprune.contracts.sweep import SweepConfig
    from edgeprune.sweep.run import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    config = root / "sweep.toml"
    config.write_text(DIGITS_SWEEP)
    out = root / "results"
    return config, out, run_sweep(SweepConfig.from_toml(config), out)
