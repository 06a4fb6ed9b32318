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
    # every manylinux tag a Debian bookworm arm64 Python takes (pydantic-core ships manylinux2014 only)
    platforms = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
    wheels = [*(f"--platform={p}" for p in platforms), "--python-version", PYTHON, "--only-binary=:all:"]
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


def _emulated_command(env: Path, qemu_cpu: str, args: list[str]) -> list[str]:
    """``args`` run by the emulated Python under ``qemu-aarch64 -cpu qemu_cpu``, in a mount
    namespace where ``/sys/devices/system/cpu`` is hidden."""
    root = env / "root"
    command = ["qemu-aarch64", "-cpu", qemu_cpu, "-L", str(root), f"{root}/usr/bin/python{PYTHON}", *args]
    qemu = " ".join(shlex.quote(part) for part in command)  # paths with spaces or shell characters stay one word
    return ["unshare", "-m", "sh", "-c", f"mount -t tmpfs none /sys/devices/system/cpu && exec {qemu}"]


def run_emulated(env: Path, qemu_cpu: str, script: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the emulated Python under ``qemu-aarch64 -cpu qemu_cpu`` (with the TVM
    runtime's packages on its path once :func:`emulated_tvm_runtime` has made them)."""
    paths = [env / "site", *[p for p in [env / "tvm" / "site"] if p.is_dir()]]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    return subprocess.run(_emulated_command(env, qemu_cpu, [str(script), *args]), capture_output=True, text=True,
                          env=environ, timeout=1800)  # fmt: skip


def emulated_device_site(env: Path) -> Path:
    """What ``edgeprune device serve`` adds to ``env`` (made on first use): the CLI's packages
    (typer, rich, pydantic, at this machine's versions), tvm-ffi, and TVM's Python package from
    the aarch64 apache-tvm wheel without its compiler library (240 MB, never loaded: the server
    imports TVM with its runtime library only). Returns the site directory."""
    from importlib.metadata import version

    def make(work: Path) -> None:
        site = work / "site"
        pins = [f"{name}=={version(name)}" for name in ("typer", "rich", "pydantic")]
        _pip(["install", "--target", str(site), TVM_FFI, *pins], "the aarch64 wheels of device serve")
        _pip(["download", "--dest", str(work / "wheel"), "--no-deps", TVM], "the aarch64 apache-tvm wheel")
        with zipfile.ZipFile(next((work / "wheel").glob("*.whl"))) as zf:
            for item in zf.infolist():
                if not item.filename.startswith(("tvm/lib/libtvm_compiler", "tvm/3rdparty/")):
                    zf.extract(item, site)
        shutil.rmtree(work / "wheel")
        for slow in ("ml_dtypes", "numpy"):  # ml_dtypes takes 4 s to import under qemu; numpy is in env/site
            for path in site.glob(f"{slow}*"):
                shutil.rmtree(path, ignore_errors=True)

    return _made_once(env / "device", make) / "site"


def _package_copy(dest: Path) -> Path:
    """edgeprune's Python sources (no native libraries, no weights) copied under ``dest``: the
    emulated Python imports them from there."""
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(package, dest / "edgeprune", ignore=shutil.ignore_patterns("*.so", "__pycache__", "weights"))
    return dest


def serve_emulated(qemu_cpu: str, serve_args: list[str]) -> int:
    """``edgeprune device serve SERVE_ARGS`` in the emulated aarch64 Python (timings mean nothing
    there; the protocol is the real one). Returns its exit code; SIGINT or SIGTERM stops it."""
    import signal

    from edgeprune.errors import Interrupted

    env = emulated_python()
    site = emulated_device_site(env)
    with tempfile.TemporaryDirectory(prefix="edgeprune-emulated-") as tmp:
        src = _package_copy(Path(tmp))
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [src, site, env / "site"])),
                   "TVM_USE_RUNTIME_LIB": "1", "PYTHONDONTWRITEBYTECODE": "", "EDGEPRUNE_EMULATED": qemu_cpu,
                   "PYTHONPYCACHEPREFIX": str(cache_dir() / "emulated-pycache")}  # fmt: skip
        command = _emulated_command(env, qemu_cpu, ["-m", "edgeprune", "device", "serve", *serve_args])
        proc = subprocess.Popen(command, env=environ)
        try:
            return proc.wait()
        except Interrupted:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
