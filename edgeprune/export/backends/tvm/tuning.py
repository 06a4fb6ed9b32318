"""MetaSchedule tuning for the TVM backend (``compile --tune-trials N``): the dense module's
convolution functions are tuned on this machine, the records kept in a JSON database per target (by default
under ``EDGEPRUNE_CACHE``, ``--tuning-db DIR`` to choose), and every later compile for the same
target applies them, to the sparse and the dense module alike; a function the database does not
hold keeps the schedule templates. A database records the target it was tuned for
(``target.json``) and is refused for any other: a schedule tuned for one CPU can be wrong-sized
or illegal on another. Tuning measures on the machine that compiles, so a board's database is made
by compiling for it on the board and passed with ``--tuning-db`` where its modules are
cross-compiled."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError, one_line
from edgeprune.fsio import cache_dir

TARGET_FILE = "target.json"
RECORDS = ("database_workload.json", "database_tuning_record.json")  # MetaSchedule's JSON database
TUNED = "conv2d"  # the functions tuned: those whose name holds this
BUILD_TIMEOUT_S, RUN_TIMEOUT_S = 300.0, 60.0  # per candidate


def target_json(target: Any) -> str:
    return json.dumps(json.loads(str(target)), sort_keys=True)


def database_dir(target: Any, name: str, explicit: Path | None) -> Path:
    """``explicit``, or this target's database in the cache."""
    if explicit is not None:
        return explicit
    digest = hashlib.sha256(target_json(target).encode()).hexdigest()[:12]
    return cache_dir() / "tvm-tuning" / f"{name}-{digest}"


def check_database(path: Path, target: Any) -> bool:
    """Whether ``path`` holds records for ``target``; a database for another target, or a
    directory that is not a tuning database, is refused."""
    if not path.exists():
        return False
    if not path.is_dir():
        raise UserError(f"tuning database {path} is not a directory")
    recorded = path / TARGET_FILE
    if not recorded.is_file():
        if any(path.iterdir()):
            raise UserError(f"{path} is not an edgeprune tuning database (no {TARGET_FILE})")
        return False
    try:
        theirs = json.loads(recorded.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise UserError(f"{recorded} cannot be read as JSON; delete the database or choose another "
                        "--tuning-db") from None
    ours = json.loads(target_json(target))
    if not isinstance(theirs, dict) or json.dumps(theirs, sort_keys=True) != target_json(target):
        kind = _cpu(theirs) if isinstance(theirs, dict) else "an unreadable target"
        raise UserError(f"tuning database {path} was tuned for another target ({kind}); this compile is for "
                        f"{_cpu(ours)}: choose another --tuning-db")  # fmt: skip
    return all((path / r).is_file() for r in RECORDS)


def _cpu(target: dict[str, Any]) -> str:
    return " ".join(str(target[k]) for k in ("mtriple", "mcpu") if k in target) or str(target.get("kind", "?"))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """MetaSchedule prints its tables on stdout, which --json keeps for the result."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # what Python code prints, and what C++ does
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def tune(mod: Any, target: Any, path: Path, trials: int, stage: Callable[[str], None]) -> None:
    """Tune ``mod``'s functions (legalised, unscheduled) on this machine for ``trials`` trials in
    all, adding the records to the database at ``path``."""
    from tvm import tirx
    from tvm.s_tir import meta_schedule as ms

    path.mkdir(parents=True, exist_ok=True)
    (path / TARGET_FILE).write_text(target_json(target) + "\n")
    # the convolutions: where the time goes (the rest is elementwise, and cheap to schedule)
    convs = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc) and TUNED in gv.name_hint]
    if not convs:
        stage("nothing to tune: the dense module has no convolution left")
        return
    stage(f"tuning {len(convs)} convolutions with MetaSchedule ({trials} trials; records in {path})")
    with _stdout_to_stderr():
        # a builder worker starts by importing TVM: on a loaded 2-core machine that alone passed
        # MetaSchedule's 30 s default, and every candidate was recorded as a failed build
        ms.relax_integration.tune_relax(mod, {}, target, str(path), max_trials_global=trials, op_names=[TUNED],
                                        num_trials_per_iter=min(64, trials), builder=ms.builder.LocalBuilder(
                                            timeout_sec=BUILD_TIMEOUT_S),
                                        runner=ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_S))  # fmt: skip


def apply(mod: Any, target: Any, path: Path) -> Any:
    """``mod`` (legalised) with the database's best schedule for every function it holds."""
    from tvm import relax

    try:
        with target:
            return relax.transform.MetaScheduleApplyDatabase(str(path))(mod)
    except Exception as exc:  # noqa: BLE001 - a damaged JSON database fails inside TVM with a RuntimeError
        raise UserError(f"tuning database {path} cannot be read ({one_line(exc, 120)}); delete it, or tune again "
                        "into another --tuning-db") from None
