#!/usr/bin/env bash
# Install steps of the device runtime image (an aarch64 board, or any machine that only runs
# artifacts): edgeprune's runtime dependencies only (no PyTorch, no compiler); artifacts carry
# their own kernel library, so none is built. `edgeprune bench` and `edgeprune verify` run.
# WITH_TVM=1 installs edgeprune[runtime]: what TVM modules (compile --backend tvm) and `edgeprune
# device serve` run with, tvm-ffi and the apache-tvm wheel, of which edgeprune loads
# libtvm_runtime.so only (never the compiler).
#   docker/install-runtime.sh [REPO]   (PYTHON selects the interpreter, default python3)
set -euo pipefail
repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
python="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive

if ! command -v "$python" >/dev/null 2>&1; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends ca-certificates python3 python3-pip python3-venv
fi
# The base install is the runtime (no PyTorch, no compiler); the runtime extra adds TVM's runtime and RPC.
extra=""
if [[ "${WITH_TVM:-0}" == "1" ]]; then
    extra="[runtime]"
fi
EDGEPRUNE_SKIP_KERNELS=1 "$python" -m pip install --quiet "$repo$extra"
if [[ -n "$extra" ]]; then
    # The apache-tvm wheel is the compiler too: its LLVM library (about 250 MB) is never loaded on a board.
    tvm_dir="$("$python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("tvm").origin))')"
    rm -f "$tvm_dir"/lib/libtvm_compiler*
fi
