"""The one way to open a file of an artifact: :func:`checked_path` confines it to the artifact
(:meth:`Manifest.path <edgeprune.contracts.manifest.Manifest.path>`) and compares its size and
sha256 with the manifest before anything opens or loads it (onnxruntime, ctypes, a subprocess),
so a file changed after compile, or swapped for another, is refused by name and never loaded.

Each file is hashed once per process: a later call for the same file, unchanged on disk (same
inode, size and times), returns at once.

Usage::

    model = checked_path(artifact, manifest, "model")   # the real path, checked; hand it to the loader
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from edgeprune.contracts.manifest import Manifest
from edgeprune.errors import UserError

# real path -> (what stat said when it was hashed, the sha256 it was checked against)
_checked: dict[Path, tuple[tuple[int, ...], str]] = {}


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash(path: Path) -> tuple[os.stat_result, str]:
    """The file's sha256, read from one descriptor that is checked to be a regular file (never
    follows a link swapped in, never blocks on a FIFO)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
        return st, h.hexdigest()


def checked_path(artifact: Path, manifest: Manifest, role: str) -> Path:
    """The real path of the file of ``role``, inside ``artifact`` and as the manifest describes
    it (size and sha256); a UserError naming the file otherwise."""
    real = manifest.path(artifact, role)  # confined: a regular file inside the artifact
    entry = manifest.files[role]
    try:
        seen = _checked.get(real)
        if seen is not None and seen == (_identity(os.stat(real)), entry.sha256):
            return real
        st, digest = _hash(real)
    except OSError as exc:
        raise UserError(f"{artifact}: {entry.path} cannot be read ({exc.strerror or exc})") from None
    if st.st_size != entry.bytes:
        why = f"size differs: {st.st_size} bytes, the manifest says {entry.bytes}"
    elif digest != entry.sha256:
        why = "sha256 differs"
    else:
        _checked[real] = (_identity(st), entry.sha256)
        return real
    raise UserError(f"{artifact}: {entry.path} does not match the manifest ({why}): the artifact was changed "
                    "after compile; compile it again")  # fmt: skip
