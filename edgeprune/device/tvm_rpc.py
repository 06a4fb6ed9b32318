"""``tvm.rpc``, the RPC engine. A board's server imports it with TVM's runtime library only (the
compiler library, 260 MB of LLVM, is never loaded there); the caller's side imports TVM as this
process otherwise would, since the same process may compile too."""

from __future__ import annotations

import os
from types import ModuleType

from edgeprune.errors import UserError


def tvm_rpc(runtime_only: bool = False) -> ModuleType:
    """``runtime_only``: for a process that never compiles (``device serve``)."""
    if runtime_only:
        os.environ.setdefault("TVM_USE_RUNTIME_LIB", "1")  # read by tvm's first import only
    try:
        import tvm.rpc
    except ImportError as exc:
        raise UserError(f"on-device runs need Apache TVM's RPC: pip install 'edgeprune[tvm]' ({exc})") from None
    return tvm.rpc
