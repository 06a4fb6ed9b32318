"""An emulated aarch64 Python with onnxruntime, made once and cached (``EDGEPRUNE_CACHE``):
a Debian bookworm arm64 root from ``mmdebstrap --variant=extract`` (python3.11, libstdc++)
plus numpy and onnxruntime wheels for manylinux aarch64 installed into a directory with
``pip install --target``. It runs under ``qemu-aarch64 -cpu <the board's model>`` in a private
mount namespace where ``/sys/devices/system/cpu`` is hidden, without which onnxruntime's CPU
detection crashes under qemu."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from edgeprune.errors import UserError
from edgeprune.fsio import cache_dir

SUITE = "bookworm"
PYTHON = "3.11"
PACKAGES = ("python3", "python3-minimal", f"libpython{PYTHON}-stdlib", "libstdc++6", "libgomp1")
WHEELS = ("numpy", "onnxruntime")
# The TVM runtime for TVM modules: tvm-ffi, and libtvm_runtime.so taken from the apache-tvm wheel
# (the rest of that wheel is the compiler, which a board does not need). The pyproject's pins.
TVM_FFI, TVM = "apache-tvm-ffi==0.1.14.post1", "apache-tvm==0.27.0.post1"
_TOOLS = {"qemu-aarch64": "qemu-user", "mmdebstrap": "mmdebstrap", "unshare": "util-linux"}


def _mirror() -> str:
    for src in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if src.is_file():
            for line in src.read_text().splitlines():
                if not line.startswith(("URIs:", "deb ")):
                    continue  # comments may hold other mirrors
                for word in line.split():
                    if word.startswith(("http://", "https://")) and word.rstrip("/").endswith("/debian"):
                        return word
    return "http://deb.debian.org/debian"


def _need_tools() -> None:
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({_TOOLS[t] for t in missing}))
        raise UserError(f"verify needs {', '.join(missing)}; install them: apt-get install {packages}")


def emulated_python() -> Path:
    """The cached aarch64 environment (made on first use, about half a minute)."""
    _need_tools()
    home = cache_dir() / f"emulated-aarch64-py{PYTHON}"

    def make(work: Path) -> None:
        root = subprocess.run(["mmdebstrap", "--variant=extract", "--architectures=arm64",
                               f"--include={','.join(PACKAGES)}", SUITE, str(work / "root"), _mirror()],
                              capture_output=True, text=True)  # fmt: skip
        if root.returncode != 0:
            raise UserError(f"mmdebstrap could not make the arm64 root: {root.stderr.strip().splitlines()[-1:]}")
        _pip(["install", "--target", str(work / "site"), *WHEELS], "aarch64 wheels")

    return _made_once(home, make)


def _made_once(home: Path, make: Callable[[Path], None]) -> Path:
    """``home``, made by ``make`` in a temporary directory beside it and renamed into place with
    a ``ready`` mark, unless it is already there: an interrupted make leaves nothing half-made."""
    if (home / "ready").is_file():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{home.name}.", dir=home.parent))
    try:
        make(work)
        (work / "ready").write_text("ok\n")
        if home.exists():
            shutil.rmtree(home)
        work.rename(home)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return home


def _pip(args: list[str], what: str) -> None:
    wheels = ["--platform", "manylinux_2_28_aarch64", "--python-version", PYTHON, "--only-binary=:all:"]
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", *wheels], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"pip could not fetch {what}: {done.stderr.strip().splitlines()[-1:]}")


def emulated_tvm_runtime(env: Path) -> Path:
    """The aarch64 TVM runtime for ``env`` (made on first use): tvm-ffi installed beside the
    other wheels, and ``libtvm_runtime.so``. Returns the library's path."""

    def make(work: Path) -> None:
        _pip(["install", "--target", str(work / "site"), TVM_FFI], "the aarch64 tvm-ffi wheel")
        _pip(["download", "--dest", str(work / "wheel"), "--no-deps", TVM], "the aarch64 apache-tvm wheel")
        wheel = next((work / "wheel").glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            (work / "libtvm_runtime.so").write_bytes(zf.read("tvm/lib/libtvm_runtime.so"))
        shutil.rmtree(work / "wheel")

    return _made_once(env / "tvm", make) / "libtvm_runtime.so"


def run_emulated(env: Path, qemu_cpu: str, script: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the emulated Python under ``qemu-aarch64 -cpu qemu_cpu`` (with the TVM
    runtime's packages on its path once :func:`emulated_tvm_runtime` has made them)."""
    root = env / "root"
    command = ["qemu-aarch64", "-cpu", qemu_cpu, "-L", str(root), f"{root}/usr/bin/python{PYTHON}", str(script), *args]
    qemu = " ".join(shlex.quote(part) for part in command)  # paths with spaces or shell characters stay one word
    inner = f"mount -t tmpfs none /sys/devices/system/cpu && exec {qemu}"
    paths = [env / "site", *[p for p in [env / "tvm" / "site"] if p.is_dir()]]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    return subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, env=environ,
                          timeout=1800)  # fmt: skip
