#!/usr/bin/env bash
# Build the cross-compile image without a Docker engine (buildah, runc), from a Debian base
# made by mmdebstrap, then run `edgeprune compile --target rpi4` inside it on a checkpoint
# made on the host. The opt-in CI job (EDGEPRUNE_CI_DOCKER=1 .ci/run) runs this.
#   docker/build-cross-buildah.sh CHECKPOINT.ept [WHEELS_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
ckpt="$(realpath "$1")"
wheels="${2:-}"
export DEBIAN_FRONTEND=noninteractive
need=()
for tool in buildah runc mmdebstrap; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if (( ${#need[@]} )); then apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mirror="$(grep -rhE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -oE 'https?://[^ ]+/debian/?$' | head -n1 || true)"
mmdebstrap --variant=minbase --format=tar bookworm "$work/base.tar" ${mirror:+"$mirror"}
base=$(buildah from scratch)
buildah add "$base" "$work/base.tar" /
buildah commit --rm "$base" localhost/edgeprune-debian-base

opts=(--runtime runc --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --isolation chroot --build-arg BASE=localhost/edgeprune-debian-base)
if [[ -n "$wheels" ]]; then opts+=(-v "$wheels:$wheels:ro" --build-arg "PIP_FIND_LINKS=$wheels"); fi
# This machine's CA bundle, for pip behind a TLS-inspecting proxy.
opts+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
buildah bud "${opts[@]}" -f "$repo/docker/Dockerfile.cross" -t localhost/edgeprune-cross "$repo"

ctr=$(buildah from localhost/edgeprune-cross)
trap 'buildah rm "$ctr" >/dev/null; rm -rf "$work"' EXIT
buildah copy "$ctr" "$ckpt" /work/model.ept
buildah run --isolation chroot "$ctr" -- edgeprune compile /work/model.ept --target rpi4 -o /work/artifact
buildah run --isolation chroot "$ctr" -- python -c \
    "import json; m = json.load(open('/work/artifact/manifest.json')); print('manifest:', m['target']['name'], m['library']['arch'], m['summary']['formats'])"
