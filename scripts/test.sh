#!/usr/bin/env bash
# test.sh — set up, then run the whole test suite (pytest arguments pass through).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest -ra "$@"
