"""The Mach-O files of PyPI's macOS wheels that tests/fixtures/macho-wheels.json pins.

scripts/setup.sh fetches them (scripts/fetch-wheels.py) into
~/.cache/gotrace/fixtures; a test that needs one and does not find it skips
locally and fails under CI (conftest.require), like any missing capability.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import require

MANIFEST = Path(__file__).resolve().parent / "fixtures" / "macho-wheels.json"


def entries() -> dict[str, dict]:
    return {k: v for k, v in json.loads(MANIFEST.read_text()).items() if not k.startswith("_")}


def wheel_file(name: str) -> Path:
    """The unpacked member of the manifest's entry ``name``."""
    entry = entries()[name]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "gotrace" / "fixtures" / entry["wheel"] / entry["member"]
    require(path.is_file(), f"{entry['wheel']} is not fetched (bash scripts/setup.sh runs scripts/fetch-wheels.py)")
    return path
