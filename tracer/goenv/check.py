"""One check's verdict, shared by doctor's Linux and macOS checks."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    name: str
    status: str  # pass | warn | fail
    message: str
    fix: str | None = None
