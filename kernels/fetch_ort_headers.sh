#!/usr/bin/env bash
# Puts the ONNX Runtime C/C++ headers (API 21, from Debian trixie's libonnxruntime-dev; no PyPI
# wheel ships them) under kernels/third_party/onnxruntime. The download uses a private apt
# state whose source list is this machine's own Debian source with the suite set to trixie,
# so the system's apt configuration is not touched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/third_party/onnxruntime"
if [[ -f "$dest/onnxruntime_lite_custom_op.h" ]]; then exit 0; fi
uri=$(grep -rhoE '^(URIs:|deb) +[a-z]+://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -E '/debian/?$' | head -n1 | awk '{print $2}' || true)
[[ -n "$uri" ]] || { echo "fetch_ort_headers: no Debian source in /etc/apt; set ORT_INCLUDE_DIR instead" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb $uri trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Get::List-Cleanup=0
          -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update
(cd "$work" && apt-get "${apt_opts[@]}" -qq download libonnxruntime-dev)
dpkg -x "$work"/libonnxruntime-dev_*.deb "$work/x"
mkdir -p "$dest"
cp "$work"/x/usr/include/onnxruntime/*.h "$dest/"
echo "onnxruntime headers in $dest"
