#!/usr/bin/env bash
# Install steps of the cross-compile image (x86-64): everything `edgeprune compile --target
# <any board>` and `edgeprune verify` need. CI runs this same script as its install step, so a
# broken step breaks CI.
#   docker/install-cross.sh [REPO]     (PYTHON selects the interpreter, default python3)
set -euo pipefail
repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
python="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v g++ >/dev/null 2>&1 || need+=(g++ make)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v "$python" >/dev/null 2>&1 || need+=(python3 python3-pip python3-venv)
if (( ${#need[@]} )); then
    apt-get update -q
    apt-get install -y -q --no-install-recommends ca-certificates "${need[@]}"
fi

# edgeprune with its host kernel library (pip install builds it; see setup.py); the dev extra holds
# the jetson one, NVRTC 12 for the Jetson GPUs nvcc 13 no longer targets (Xavier sm_72, Nano sm_53).
"$python" -m pip install --quiet -c "$repo/constraints.txt" -e "$repo[dev]"
