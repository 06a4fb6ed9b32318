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
from pathlib import Path

from edgeprune.errors import UserError
from edgeprune.fsio import cache_dir

SUITE = "bookworm"
PYTHON = "3.11"
PACKAGES = ("python3", "python3-minimal", f"libpython{PYTHON}-stdlib", "libstdc++6", "libgomp1")
WHEELS = ("numpy", "onnxruntime")
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
    if (home / "ready").is_file():
        return home
    work = Path(tempfile.mkdtemp(prefix=".emulated.", dir=cache_dir()))
    try:
        root = subprocess.run(["mmdebstrap", "--variant=extract", "--architectures=arm64",
                               f"--include={','.join(PACKAGES)}", SUITE, str(work / "root"), _mirror()],
                              capture_output=True, text=True)  # fmt: skip
        if root.returncode != 0:
            raise UserError(f"mmdebstrap could not make the arm64 root: {root.stderr.strip().splitlines()[-1:]}")
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(work / "site"),
                              "--platform", "manylinux_2_28_aarch64", "--python-version", PYTHON,
                              "--only-binary=:all:", *WHEELS], capture_output=True, text=True)  # fmt: skip
        if pip.returncode != 0:
            raise UserError(f"pip could not fetch aarch64 wheels: {pip.stderr.strip().splitlines()[-1:]}")
        (work / "ready").write_text("ok\n")
        if home.exists():
            shutil.rmtree(home)
        work.rename(home)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return home


def run_emulated(env: Path, qemu_cpu: str, script: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the emulated Python under ``qemu-aarch64 -cpu qemu_cpu``."""
    root = env / "root"
    command = ["qemu-aarch64", "-cpu", qemu_cpu, "-L", str(root), f"{root}/usr/bin/python{PYTHON}", str(script), *args]
    qemu = " ".join(shlex.quote(part) for part in command)  # paths with spaces or shell characters stay one word
    inner = f"mount -t tmpfs none /sys/devices/system/cpu && exec {qemu}"
    environ = {**os.environ, "PYTHONPATH": str(env / "site")}
    return subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, env=environ,
                          timeout=1800)  # fmt: skip
