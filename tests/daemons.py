"""Servers the tests start (a TVM RPC tracker, boards): each in its own session, listening on
127.0.0.1 only, every wait bounded, and stopped with its whole process group (TVM's servers
leave worker processes behind otherwise)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.argv, self.log = argv, log
        self.env = env
        self.proc: subprocess.Popen | None = None

    def started(self, needle: str, timeout_s: float) -> Daemon:
        """Start, and wait for ``needle`` in the log; a daemon that does not get there is
        stopped before the failure is raised."""
        self.start()
        try:
            self.wait_for(needle, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=self.env)  # fmt: skip
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, needle: str, timeout_s: float, after: int = 0) -> None:
        """Until ``needle`` shows in the log (past offset ``after``); a daemon that exits or
        times out fails the test with its log."""
        deadline = time.monotonic() + timeout_s
        while needle not in self.text()[after:]:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.argv} exited ({self.proc.returncode}):\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the log of {self.argv} in {timeout_s} s:\n"
                                     f"{self.text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # what the leader left (forked sessions, TVM's workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


def edgeprune(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeprune", *args]


def tracker(log: Path) -> tuple[Daemon, str]:
    port = free_port()
    d = Daemon(edgeprune("device", "tracker", "--host", "127.0.0.1", "--port", str(port)), log)
    return d.started("bind to 127.0.0.1", 60), f"127.0.0.1:{port}"


def board(tracker_at: str, key: str, log: Path, *extra: str, timeout_s: float = 60,
          env: dict[str, str] | None = None) -> Daemon:  # fmt: skip
    port = free_port()
    d = Daemon(edgeprune("device", "serve", "--host", "127.0.0.1", "--tracker", tracker_at, "--key", key,
                         "--port", str(port), "--port-end", str(port + 1), *extra), log, env)  # fmt: skip
    return d.started("serving key", timeout_s)


class Client:
    """A command the test runs beside its daemons (a bench), in its own session, so that a
    failing test still stops it with its group."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate(timeout=30)

    def finish(self, timeout_s: float) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout_s)
        return self.proc.returncode, out, err


def wait_registered(tracker_at: str, key: str, boards: int = 1, timeout_s: float = 60) -> None:
    """Until the tracker lists ``boards`` free boards of ``key``."""
    from edgeprune.device.client import Tracker, parse_address

    t = Tracker(*parse_address(tracker_at))
    deadline = time.monotonic() + timeout_s
    while True:
        q = {q.key: q for q in t.queues()}.get(key)
        if q is not None and len(q.boards) >= boards and q.free >= boards:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{boards} free board(s) of key {key} not at {tracker_at} in {timeout_s} s: {q}")
        time.sleep(0.2)
