"""Files: how every output is written, content hashes, and the cache directory. Standard library
only.

Every output (a checkpoint, an artifact directory, a results or metrics file) goes the same way:

- :func:`check_output` before any work: an existing output is refused without ``force`` (one
  wording for every command), a directory where a file is wanted (and the reverse) is refused,
  and the parent must be writable;
- then :func:`atomic_path` (a file) or :func:`staged_dir` (a directory) writes under a temporary
  name beside the output, ``.NAME.edgeprune-*``, and puts it in place only when it is complete:
  a file by ``rename``, a directory by an atomic exchange (``renameat2(RENAME_EXCHANGE)``), so
  a reader sees the old output or the new one, never none or half of one;
- two writers of one output are serialised by a lock (``.NAME.edgeprune.lock``, ``flock``): the
  second is refused with a message. Holding the lock, a writer removes the temporary names a
  killed earlier run left for the same output.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgeprune.errors import UserError

TEMP_TAG = ".edgeprune-"  # temporary names are .NAME.edgeprune-XXXX


def _umask_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def check_output(path: Path, force: bool, *, directory: bool = False, suffix: str | None = None) -> None:
    """Refuse, before any work, an output that could not or should not be written."""
    if suffix and path.suffix != suffix:
        raise UserError(f"output {path} should end in {suffix}")
    if path.exists() or path.is_symlink():
        if directory and not path.is_dir():
            raise UserError(f"output {path} exists and is not a directory")
        if not directory and path.is_dir():
            raise UserError(f"output {path} is a directory; give a file name")
        if not force:
            raise UserError(f"output {path} exists; use --force to replace it")
    parent = path.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise UserError(f"cannot write {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {existing} is not writable")
    try:  # access() says yes to root and on file systems that refuse new files (procfs): try one
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {existing}: {exc.strerror}") from None


@contextlib.contextmanager
def output_lock(target: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock of ``target`` and sweep the temporary names a killed run left for it. Another
    holder makes this wait up to ``wait_s`` (caches), then refuses (a user's output: at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}{TEMP_TAG}lock"
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise UserError(f"another edgeprune is writing {target}; wait for it or choose another "
                                "output") from None
            time.sleep(0.05)
            continue
        try:  # the holder before us may have removed the file we locked: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        sweep(target)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def sweep(target: Path) -> list[Path]:
    """Remove ``target``'s stale temporary files and directories (call it holding the lock)."""
    removed = []
    for stale in target.parent.glob(f".{target.name}{TEMP_TAG}*"):
        if stale.name.endswith(f"{TEMP_TAG}lock"):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()
        removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], wait_s: float = 0.0) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.
    ``wait_s``: how long to wait for another writer of ``target`` (a shared cache) before refusing."""
    target = Path(target)
    with output_lock(target, wait_s):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{TEMP_TAG}", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, _umask_mode(0o666))  # mkstemp makes 0600; outputs get normal permissions
            os.replace(tmp_path, target)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


@contextlib.contextmanager
def staged_dir(dest: Path, force: bool) -> Iterator[Path]:
    """A fresh temporary directory beside ``dest`` that becomes ``dest`` on success, so a failed
    or killed run leaves the old ``dest`` (or nothing) in place; an existing ``dest`` is replaced
    only with ``force``, by an atomic exchange, never leaving the path empty."""
    check_output(dest, force, directory=True)
    with output_lock(dest):
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}{TEMP_TAG}", dir=dest.parent))
        try:
            os.chmod(tmp, _umask_mode(0o777))  # mkdtemp makes 0700; the directory gets the files' mode
            yield tmp
            if not dest.exists():
                tmp.rename(dest)
            elif _exchange(tmp, dest):
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old output
            else:  # no atomic exchange here: the old output moves aside for the instant of one rename
                old = dest.with_name(f".{dest.name}{TEMP_TAG}old")
                dest.rename(old)
                tmp.rename(dest)
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where generated data sets are cached (``EDGEPRUNE_CACHE`` or ``~/.cache/edgeprune``)."""
    root = os.environ.get("EDGEPRUNE_CACHE") or Path.home() / ".cache" / "edgeprune"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
