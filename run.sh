#!/usr/bin/env bash
# One command for each job, on a fresh Debian/Ubuntu machine or a developer's:
#   ./run.sh demo [ARGS]   install what is missing, then `edgeprune demo ARGS`
#   ./run.sh test [ARGS]   install what is missing, then the checks CI runs and the tests (`pytest ARGS`)
#   ./run.sh install       install only
# Installing is docker/install-cross.sh (apt: compilers, cmake, the aarch64 cross compiler, qemu-user,
# mmdebstrap; pip: edgeprune with its dev extra, which builds the host kernel library), and chromium
# for the report's browser test. It runs again
# when pyproject.toml, setup.py, kernels/ or the install script changed since the last install
# (EDGEPRUNE_REINSTALL=1 forces it). PYTHON selects the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python3}"
stamp=".install-stamp"

install() {
    local sources
    sources="$(cat pyproject.toml setup.py run.sh docker/install-cross.sh; find kernels -path kernels/third_party -prune -o -type f -print0 | sort -z | xargs -0 cat)"
    local want
    want="$("$python" --version 2>&1) $(printf '%s' "$sources" | sha256sum | cut -c1-16)"
    if [[ "${EDGEPRUNE_REINSTALL:-0}" != "1" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && "$python" -c 'import edgeprune.cli.main' 2>/dev/null; then
        return
    fi
    PYTHON="$python" bash docker/install-cross.sh
    # The report test opens the HTML page in a real headless browser (a test tool, not in the images).
    if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -q --no-install-recommends chromium || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }
    fi
    echo "$want" > "$stamp"
}

checks() {
    # Console scripts are called from the interpreter's scripts directory (a pyenv shim may not exist yet).
    local scripts
    scripts="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    "$python" -m ruff check .
    "$scripts/lint-imports" --no-cache | sed -n '/^Contracts: /p;/BROKEN/,$p'   # import rules: pyproject.toml
    "$python" -m mypy                                                         # types: edgeprune/
    "$scripts/hadolint" docker/Dockerfile.*
}

job="${1:-}"
shift || true
case "$job" in
    install) install ;;
    demo) install; "$python" -m edgeprune demo "$@" ;;
    test) install; checks; "$python" -m pytest -q "$@" ;;
    *) echo "usage: ./run.sh demo|test|install [ARGS]" >&2; exit 2 ;;
esac
