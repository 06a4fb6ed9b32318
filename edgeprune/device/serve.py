"""``edgeprune device serve``: a TVM RPC server on a board, registered with a tracker under a
key, with edgeprune's functions (:mod:`edgeprune.device.functions`) registered on it.

TVM's RPC has no authentication: whoever reaches the server can upload files and call any
function registered in it, and TVM's runtime registers functions that load a shared library, so
whoever reaches it can run code on the board. The server listens only on the address it is given
(there is no all-interfaces default), takes uploads as plain file names within a size limit,
refuses TVM's ``load_module`` (so a client does not do it by habit), and edgeprune's bench runs
only artifacts whose files match their manifest's sha256. None of that is a security boundary:
keep the tracker and the boards on a private network or reach them through an SSH tunnel (the
README shows how).

The server runs in this process (TVM's ``PopenRPCServerState``: a listening thread, one forked
process per session), so it needs no second Python executable: it also runs in an emulated
board's Python, where a process cannot start another."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from edgeprune.device.functions import BENCH, DESCRIBE, bench, describe, reply
from edgeprune.device.tvm_rpc import tvm_rpc
from edgeprune.errors import Interrupted, UserError, one_line

REFUSED = ("tvm.rpc.server.load_module", "tvm.rpc.server.download_linked_module")
REFUSAL = "refused by edgeprune device serve"  # in every refusal's message: the caller tells it from a lost board
TRACKER_MAGIC = 0x2F271  # TVM's RPC_TRACKER_MAGIC: what a tracker answers on connect


def check_tracker(host: str, port: int, timeout_s: float = 5.0) -> None:
    """A TVM RPC tracker answers at ``host:port``, within ``timeout_s``; else one line."""
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(struct.pack("<i", TRACKER_MAGIC))
            answer = sock.recv(4)
    except OSError as exc:
        raise UserError(f"cannot reach the tracker at {where}: {exc.strerror or one_line(exc)}") from None
    if len(answer) != 4 or struct.unpack("<i", answer)[0] != TRACKER_MAGIC:
        raise UserError(f"{where} answers, but not as a TVM RPC tracker")


def _plain(name: str) -> str:
    """A file name in the session's directory, nothing else (no directories, no ``..``)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise RuntimeError(f"{name!r} is {REFUSAL}: uploads are plain file names")
    return name


def _register(tvm_ffi: Any, rpc: Any, max_upload_bytes: int) -> None:  # noqa: ANN401 - the tvm modules
    def workpath(name: str) -> Path:
        return Path(tvm_ffi.get_global_func("tvm.rpc.server.workpath")(_plain(name)))

    def upload(name: str, blob: bytes) -> None:
        if len(blob) > max_upload_bytes:
            raise RuntimeError(f"an upload of {len(blob) / 2**20:.1f} MiB is {REFUSAL}: this board takes at most "
                               f"{max_upload_bytes / 2**20:.3g} MiB (--max-upload-mb)")  # fmt: skip
        path = workpath(name)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(bytes(blob))
        os.replace(tmp, path)

    def download(name: str) -> bytearray:
        return bytearray(workpath(name).read_bytes())

    def remove(name: str) -> None:
        workpath(name).unlink(missing_ok=True)

    def bench_entry(archive: str, options: str) -> str:
        return reply(lambda: bench(workpath(archive), _options(options)))

    tvm_ffi.register_global_func(DESCRIBE, lambda: reply(describe), override=True)
    tvm_ffi.register_global_func(BENCH, bench_entry, override=True)

    def refuse(name: str) -> Callable[..., NoReturn]:
        def refused(*_: object) -> NoReturn:
            raise RuntimeError(f"{name} is {REFUSAL}: it runs artifacts through {BENCH} only")

        return refused

    server_env = getattr(rpc.server, "_server_env", None)
    serving = getattr(rpc.server, "_serving", None)
    if server_env is None or serving is None:  # the hooks every session goes through (module docstring)
        raise UserError("this TVM's RPC server has no session setup edgeprune knows; install apache-tvm 0.27")

    def surviving(sock: Any, addr: Any, *rest: Any) -> None:  # noqa: ANN401 - TVM's arguments
        """One session, whatever becomes of it: TVM raises when a session's process dies (killed,
        out of memory), which would end the listening thread and take the board off the tracker."""
        cwd = os.getcwd()
        try:
            serving(sock, addr, *rest)
        except Exception as exc:
            print(f"session from {addr} ended abnormally: {one_line(exc)}", file=sys.stderr, flush=True)
            os.chdir(cwd)
            with contextlib.suppress(OSError):
                sock.close()

    rpc.server._serving = surviving

    def guarded_env(*args: object, **kwargs: object) -> object:
        temp = server_env(*args, **kwargs)
        for name in REFUSED:
            tvm_ffi.register_global_func(name, refuse(name), override=True)
        for name, fn in (("upload", upload), ("download", download), ("remove", remove)):
            tvm_ffi.register_global_func(f"tvm.rpc.server.{name}", fn, override=True)
        return temp

    rpc.server._server_env = guarded_env


def _options(text: str) -> dict[str, Any]:
    import json

    allowed = {"threads", "budget_s", "on", "energy", "energy_plan"}
    options = json.loads(text)
    if not isinstance(options, dict) or set(options) - allowed:
        raise UserError(f"bench options must be an object with keys among {sorted(allowed)}")
    return options


def serve(host: str, port: int, port_end: int, tracker: tuple[str, int], key: str, max_upload_mb: float = 512.0,
          ready: Callable[[str], None] = print) -> NoReturn:  # fmt: skip
    """Serve until a signal stops the process. Uploads are plain file names in the session's
    directory, at most ``max_upload_mb`` each."""
    check_tracker(*tracker)
    rpc = tvm_rpc(runtime_only=True)
    import tvm_ffi

    _register(tvm_ffi, rpc, int(max_upload_mb * 2**20))
    # Sessions are forked from this process, so they inherit what _register set up (a spawned
    # or forkserver child, Python 3.14's default, would start without it).
    multiprocessing.set_start_method("fork", force=True)
    # Sessions work in temporary directories; a session killed with the server leaves its own,
    # so they all go under one that the server removes when it stops.
    scratch = tempfile.mkdtemp(prefix="edgeprune-serve-")
    tempfile.tempdir = scratch
    try:
        state = rpc.server.PopenRPCServerState(host, port, port_end, False, tracker, key, None, None, False)
    except (OSError, ValueError) as exc:
        tempfile.tempdir = None
        shutil.rmtree(scratch, ignore_errors=True)
        raise UserError(f"cannot listen on {host}:{port}-{port_end}: {one_line(exc)}") from None
    ready(f"serving key {key} on {host}:{state.port}, registered with the tracker at {tracker[0]}:{tracker[1]}")
    code = 0
    try:
        while state.thread.is_alive():
            state.thread.join(1.0)
        code = 1  # the listening thread died: TVM logged why
    except Interrupted as stop:
        code = 128 + stop.signum
    finally:  # TVM's listening thread never ends by itself: end the sessions, then the process
        for child in multiprocessing.active_children():
            child.terminate()
            child.join(5.0)
        shutil.rmtree(scratch, ignore_errors=True)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
