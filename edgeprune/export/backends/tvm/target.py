"""A board of ``targets/*.toml`` as a TVM target: LLVM for its CPU (triple, mcpu, features,
cores), and for a Jetson GPU a CUDA device target with that CPU as its host. The host target is
this machine's CPU as LLVM names it (``llvm_get_system_cpu``)."""

from __future__ import annotations

from typing import Any

from edgeprune.errors import UserError
from edgeprune.targets import Target

# targets/*.toml feature names -> LLVM's AArch64 attributes
_MATTR = {"neon": ["+neon"], "fp16": ["+fullfp16"], "dotprod": ["+dotprod"], "crypto": ["+aes", "+sha2"],
          "crc": ["+crc"], "i8mm": ["+i8mm"], "bf16": ["+bf16"], "sve": ["+sve"]}  # fmt: skip


def cpu_target(target: Target) -> dict[str, Any]:
    """The LLVM target dict of ``target``'s CPU (TVM 0.27 takes dicts, not strings)."""
    from tvm.target import codegen

    if target.cpu.arch == "native":
        return {"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(), "num-cores": target.threads}
    if target.cpu.arch != "aarch64" or not target.cpu.triple.startswith("aarch64"):
        raise UserError(f"target {target.name}: the TVM backend builds for this machine and aarch64 boards, "
                        f"not {target.cpu.arch} ({target.cpu.triple or 'no triple'})")  # fmt: skip
    if target.cpu.mcpu and not codegen.llvm_is_valid_cpu(target.cpu.mcpu, target.cpu.triple):
        raise UserError(f"target {target.name}: TVM's LLVM {codegen.llvm_version_major()} does not know CPU "
                        f"'{target.cpu.mcpu}' for {target.cpu.triple}; set cpu.mcpu in {target.path.name} to one "
                        "it knows (e.g. cortex-a72, cortex-a76, cortex-a78ae)")  # fmt: skip
    mattr = sorted({a for f in target.cpu.features for a in _MATTR.get(f, [])})
    return {"kind": "llvm", "mtriple": target.cpu.triple, "mcpu": target.cpu.mcpu, "mattr": mattr,
            "num-cores": target.cpu.cores or target.threads}  # fmt: skip


def tvm_target(target: Target) -> Any:
    """The TVM target ``edgeprune compile --backend tvm`` builds for (CPU only for now)."""
    import tvm

    return tvm.target.Target(cpu_target(target))


def vector_lanes(target: Any) -> int:
    """float32 lanes of the target CPU's vectors (16 with AVX-512, 8 with AVX2, 4 with NEON)."""
    from tvm.target import codegen

    with target:
        bits = int(codegen.llvm_get_vector_width(target))
    return max(4, bits // 32)
