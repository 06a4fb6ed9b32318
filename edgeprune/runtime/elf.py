"""Which CPU architecture this machine is, and which one a shared library was built for (read
from its ELF header, without loading it): a library for another CPU is refused by name before
anything loads it."""

from __future__ import annotations

import platform
from pathlib import Path

from edgeprune.errors import UserError

_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 40: "arm"}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def host_arch() -> str:
    m = platform.machine().lower()
    return _MACHINE_ALIASES.get(m, m)


def elf_arch(path: Path) -> str:
    """The architecture an ELF shared library was built for."""
    with path.open("rb") as fh:
        head = fh.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise UserError(f"{path} is not a shared library (no ELF header)")
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINES.get(machine, f"elf-machine-{machine}")
