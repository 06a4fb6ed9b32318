"""Our kernels for a TVM module: ``kernels/`` built with its TVM glue (``kernels/tvm/
edgeprune_tvm.cpp``, which registers ``edgeprune_sparse_conv2d`` with tvm-ffi) for the target's
CPU, as static archives that ``export_library`` links into the module library. The module then
carries its kernels, and a board needs the TVM runtime only. Builds are cached like the ONNX
Runtime library's (:func:`edgeprune.export.kernel_build.cmake_build`)."""

from __future__ import annotations

from edgeprune.export.kernel_build import cmake_build
from edgeprune.targets import Target

GLUE, KERNELS = "libedgeprune_tvm.a", "libedgeprune_kernels.a"


def link_options(target: Target) -> list[str]:
    """Linker options for ``export_library`` that put the kernels into the module library: the
    glue whole (nothing in the module names the function; the VM looks it up), the kernels as
    needed, and none of their symbols exported but the glue's."""
    import tvm.libinfo
    import tvm_ffi.libinfo

    includes = f"{tvm_ffi.libinfo.find_include_path()};{tvm.libinfo.find_include_path()}"
    built = cmake_build(None if target.library == "host" else target,
                        ["-DEP_BUILD_ORT=OFF", "-DEP_BUILD_TVM=ON", f"-DTVM_INCLUDE_DIRS={includes}"],
                        [GLUE, KERNELS], "the kernels for TVM")  # fmt: skip
    return ["-Wl,--whole-archive", str(built / GLUE), "-Wl,--no-whole-archive", str(built / KERNELS),
            f"-Wl,--exclude-libs,{KERNELS}"]  # fmt: skip
