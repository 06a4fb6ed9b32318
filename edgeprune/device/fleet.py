"""Fleets: every artifact on every board key it was built for, through one tracker. A board's
key is its target's name (``device serve --key rpi5`` on a Raspberry Pi 5), so an artifact
compiled for ``rpi5`` runs on the boards of key ``rpi5``. Runs of different keys go at once;
runs of one key wait in the tracker's queue for the next free board of that key. A board that
drops mid-run is retried once on another board of its key, else the run is reported failed;
every other run completes. Each run's results go to ``ARTIFACT/results-KEY.json``, written
whole or not at all.

Usage::

    jobs, skipped = plan_runs([Path("a"), Path("b")], ["rpi5", "jetson-orin-nano"])
    outcomes = run_fleet(tracker, jobs, options, timeouts)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import Results
from edgeprune.device.client import BoardLost, Tracker
from edgeprune.errors import UserError, one_line
from edgeprune.fsio import write_text_atomic


@dataclass(frozen=True)
class Job:
    artifact: Path
    key: str

    @property
    def output(self) -> Path:
        return self.artifact / f"results-{self.key}.json"


@dataclass(frozen=True)
class Timeouts:
    session_s: float  # the board ends a session that runs longer
    queue_s: float  # how long a run waits for a free board of its key


@dataclass
class Outcome:
    job: Job
    status: Literal["ok", "failed"]
    board: str = ""
    message: str = ""
    attempts: int = 0
    results: Results | None = None


def plan_runs(artifacts: list[Path], keys: list[str]) -> tuple[list[Job], list[str]]:
    """The runs: each artifact on each of ``keys`` that names its target; and, in words, the
    artifacts no key was given for."""
    jobs, skipped = [], []
    for artifact in artifacts:
        target = Manifest.read(artifact).target.name
        matched = [Job(artifact, k) for k in keys if k == target]
        jobs += matched
        if not matched:
            skipped.append(f"{artifact}: built for {target}, which is not among --keys {','.join(keys)}")
    return jobs, skipped


def run_on_board(tracker: Tracker, job: Job, options: dict[str, Any], timeouts: Timeouts,
                 note: Callable[[str], None] = lambda _: None) -> Outcome:  # fmt: skip
    """One run, retried once on another board of the key if its board drops."""
    outcome = Outcome(job, "failed")
    for attempt in (1, 2):
        outcome.attempts = attempt
        try:
            with tracker.board(job.key, timeouts.session_s, timeouts.queue_s) as board:
                outcome.board = board.name
                note(f"{job.artifact} on {board.name}")
                results = board.bench(job.artifact, options)
            write_text_atomic(job.output, results.to_json())
            outcome.status, outcome.results, outcome.message = "ok", results, ""
            return outcome
        except BoardLost as exc:
            outcome.message = f"board {outcome.board or job.key} dropped: {exc}"
            if attempt == 1:
                note(f"{job.artifact}: {outcome.message}; retrying on another board of {job.key}")
        except UserError as exc:
            outcome.message = str(exc)
            return outcome
        except OSError as exc:  # writing the results on this side
            outcome.message = f"cannot write {job.output}: {exc.strerror or one_line(exc)}"
            return outcome
        except Exception as exc:  # anything else fails this run, not the fleet's report
            outcome.message = f"failed: {type(exc).__name__}: {one_line(exc)}"
            return outcome
    return outcome


def run_fleet(tracker: Tracker, jobs: list[Job], options: dict[str, Any], timeouts: Timeouts,
              note: Callable[[str], None] = lambda _: None) -> list[Outcome]:  # fmt: skip
    """Every job, each key's runs queued at the tracker, all keys at once. The threads are
    daemons: an interrupt ends the process at once, and the boards see their sessions close."""
    outcomes: list[Outcome | None] = [None] * len(jobs)

    def run(i: int) -> None:
        outcomes[i] = run_on_board(tracker, jobs[i], dict(options), timeouts, note)

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"edgeprune-fleet-{i}")
               for i in range(len(jobs))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # in slices, so SIGINT reaches the main thread
    return [o if o is not None else Outcome(j, "failed", message="the run ended without a result")
            for o, j in zip(outcomes, jobs, strict=True)]  # fmt: skip
