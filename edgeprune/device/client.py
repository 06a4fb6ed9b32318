"""The caller's side of an on-device run: find a board of a key through the tracker, check it
runs edgeprune and has the artifact's architecture, upload the artifact and run bench on it.

Usage::

    tracker = Tracker.connect("127.0.0.1", 9190)
    with tracker.board("rpi5", session_timeout_s=900, queue_timeout_s=600) as board:
        results = board.bench(Path("artifact"), {"budget_s": 10.0})
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.contracts.base import decode, parse
from edgeprune.contracts.manifest import Manifest
from edgeprune.contracts.results import RESULTS_FORMAT, Results
from edgeprune.device.functions import BENCH, DESCRIBE, PROTOCOL
from edgeprune.device.serve import REFUSAL, check_tracker
from edgeprune.device.tvm_rpc import tvm_rpc
from edgeprune.errors import UserError, one_line


class BoardLost(Exception):
    """The board stopped answering mid-run (it went down, or its network did): a fleet run
    retries once on another board of the key."""


def parse_address(text: str, option: str = "--tracker") -> tuple[str, int]:
    """``HOST:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{option} must be HOST:PORT with a port from 1 to 65535, not {text!r}")
    return host.strip("[]"), int(port)


def parse_device(url: str) -> tuple[str, int, str]:
    """``rpc://HOST:PORT/KEY``: the tracker's address and the board's key."""
    m = re.fullmatch(r"rpc://([^/]+)/([A-Za-z0-9._-]+)", url)
    if not m:
        raise UserError(f"--device must be rpc://HOST:PORT/KEY (a tracker and a board's key), not {url!r}")
    host, port = parse_address(m.group(1), "--device")
    return host, port, m.group(2)


@dataclass(frozen=True)
class BoardEntry:
    key: str
    address: str  # host:port of the board's server


@dataclass(frozen=True)
class KeyQueue:
    key: str
    boards: list[BoardEntry]
    free: int
    waiting: int  # requests queued for a board of this key


def _archive(artifact: Path, manifest: Manifest) -> bytearray:
    """The manifest and the files it lists, as a tar in memory (artifacts are megabytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(artifact / "manifest.json", arcname="manifest.json")
        for f in manifest.files.values():
            tar.add(artifact / f.path, arcname=f.path)
    return bytearray(buf.getvalue())


def _bounded(work: Callable[[], Any], timeout_s: float, what: str) -> Any:  # noqa: ANN401
    """``work()`` on a daemon thread, waited for at most ``timeout_s``: a board that loses power
    or its network closes no connection, and a read from it would never return."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # the caller raises it
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="edgeprune-rpc")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise BoardLost(f"no answer from the board to {what} in {timeout_s:g} s")
    if "error" in box:
        raise box.pop("error")
    return box["value"]


def _call(session: Any, name: str, timeout_s: float, *args: Any) -> Any:  # noqa: ANN401 - a session, a reply
    """A remote edgeprune function's reply, or one line; a dropped connection is :class:`BoardLost`.
    No reference to the remote function outlives the call (each one keeps the session open)."""

    def work() -> Any:  # noqa: ANN401
        fn = session.get_function(name)
        try:
            return fn(*args)
        finally:
            del fn

    try:
        text = _bounded(work, timeout_s, name)
    except BoardLost:
        raise
    except Exception as exc:  # TVM raises its own error types for a dead session
        raise BoardLost(f"connection lost: {one_line(exc)}") from None
    try:
        reply = json.loads(text)
    except (TypeError, ValueError):
        raise UserError(f"the board's {name} replied with something other than edgeprune's JSON") from None
    if not isinstance(reply, dict) or not ({"ok", "error"} & set(reply)):
        raise UserError(f"the board's {name} replied with a document edgeprune does not know")
    if "error" in reply:
        raise UserError(str(reply["error"]))
    return reply["ok"]


class Board:
    """One board in an RPC session."""

    def __init__(self, session: Any, key: str, tracker: str, timeout_s: float) -> None:  # noqa: ANN401
        self.session, self.key, self.tracker, self.timeout_s = session, key, tracker, timeout_s
        self.info = self._describe()

    def _describe(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = _call(self.session, DESCRIBE, min(self.timeout_s, 120.0))
        except BoardLost as exc:
            if "has no function" not in str(exc):  # TVM's words for a function the server lacks
                raise
            raise UserError(f"the board of key {self.key} has no edgeprune runtime ({one_line(exc, 120)}): "
                            f"start it with edgeprune device serve") from None  # fmt: skip
        if info.get("protocol") != PROTOCOL:
            raise UserError(f"the board of key {self.key} runs edgeprune {info.get('edgeprune')}, device protocol "
                            f"{info.get('protocol')}; ours speaks {PROTOCOL}: install the same version")  # fmt: skip
        return info

    @property
    def name(self) -> str:
        return f"{self.info['hostname']} ({self.key})"

    def bench(self, artifact: Path, options: dict[str, Any]) -> Results:
        """Run bench on the board. The artifact is refused before upload if it is for another
        architecture than the board's."""
        manifest = Manifest.read(artifact)
        if manifest.target.arch != self.info["arch"]:
            raise UserError(f"{artifact} is built for {manifest.target.arch} (target {manifest.target.name}); "
                            f"the board of key {self.key} is {self.info['arch']}: not uploaded")  # fmt: skip
        data = _archive(artifact, manifest)
        failed = ""
        try:
            _bounded(lambda: self.session.upload(data, target="artifact.tar"), self.timeout_s, "the upload")
        except BoardLost:
            raise
        except Exception as exc:
            failed = one_line(exc)
        if REFUSAL in failed:
            raise UserError(f"the board of key {self.key} refused the upload of {artifact}: "
                            f"{failed.split('Error caught from RPC call:')[-1].strip()}")  # fmt: skip
        if failed:
            raise BoardLost(f"the upload failed: {failed}")
        text = _call(self.session, BENCH, self.timeout_s, "artifact.tar", json.dumps(options))
        results = parse(Results, decode(str(text).encode(), f"the results from {self.name}"),
                        f"the results from {self.name}", RESULTS_FORMAT)  # fmt: skip
        remote = f"rpc://{self.tracker}/{self.key}"
        return results.model_copy(update={"device": results.device.model_copy(update={"remote": remote}),
                                          "artifact": results.artifact.model_copy(update={"path": str(artifact)})})


class Tracker:
    """A TVM RPC tracker, checked to answer before anything waits on it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.address = f"{host}:{port}"

    @classmethod
    def connect(cls, host: str, port: int) -> Tracker:
        check_tracker(host, port)
        return cls(host, port)

    def _session(self) -> Any:  # noqa: ANN401
        rpc = tvm_rpc()
        try:
            return rpc.connect_tracker(self.host, self.port)
        except Exception as exc:
            raise UserError(f"cannot reach the tracker at {self.address}: {one_line(exc)}") from None

    def queues(self) -> list[KeyQueue]:
        """Each key's boards, how many are free, and how many requests wait."""
        session = self._session()
        try:
            summary = session.summary()
        finally:
            session.close()
        boards: dict[str, list[BoardEntry]] = {}
        for server in summary.get("server_info", []):
            key = str(server.get("key", "")).removeprefix("server:")
            host, port = server.get("addr", ["?", 0])
            boards.setdefault(key, []).append(BoardEntry(key, f"{host}:{port}"))
        queue = summary.get("queue_info", {})
        keys = sorted(set(boards) | set(queue))
        return [KeyQueue(k, boards.get(k, []), int(queue.get(k, {}).get("free", 0)),
                         int(queue.get(k, {}).get("pending", 0))) for k in keys]  # fmt: skip

    @contextlib.contextmanager
    def board(self, key: str, session_timeout_s: float, queue_timeout_s: float) -> Iterator[Board]:
        """The next free board of ``key`` (waiting in the tracker's queue at most
        ``queue_timeout_s``), in a session the board ends after ``session_timeout_s``."""
        known = {q.key: q for q in self.queues()}
        if key not in known or not known[key].boards:
            have = ", ".join(k for k, q in known.items() if q.boards) or "none"
            raise UserError(f"no board with key {key!r} at the tracker {self.address} (keys with boards: {have})")
        tracker = self._session()
        got: list[Any] = []
        failed: list[BaseException] = []
        lock = threading.Lock()
        gave_up = threading.Event()

        def request() -> None:
            try:
                session = tracker.request(key, priority=1, session_timeout=session_timeout_s, max_retry=1)
            except BaseException as exc:  # the thread reports, the caller raises
                failed.append(exc)
                return
            with lock:
                if gave_up.is_set():  # came too late: give the board back at once
                    _release(session)
                else:
                    got.append(session)

        waiter = threading.Thread(target=request, daemon=True, name="edgeprune-queue")
        waiter.start()
        waiter.join(queue_timeout_s)
        with lock:
            if not got and not failed:
                gave_up.set()
        if gave_up.is_set():
            _drop(tracker)  # the request leaves the tracker's queue with the connection
            raise BoardLost(f"no board of key {key} became free within {queue_timeout_s:g} s")
        tracker.close()
        if failed:
            raise BoardLost(f"the tracker could not connect to a board of key {key}: {one_line(failed[0])}")
        session = got.pop()
        try:
            yield Board(session, key, self.address, session_timeout_s + 60.0)
        finally:
            _release(session)


def _drop(tracker: Any) -> None:  # noqa: ANN401
    """Close a tracker connection another thread is blocked reading from (close alone does not
    wake that read)."""
    with contextlib.suppress(Exception):
        tracker._sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        tracker.close()


def _release(session: Any) -> None:  # noqa: ANN401
    """End an RPC session now: TVM closes it when the last reference to it goes, and a traceback
    that holds one (a refused artifact, in a process that goes on) would keep the board busy
    until the session's timeout."""
    with contextlib.suppress(Exception):
        session._remote_funcs.clear()
        session._sess = None
