"""How the lldb backend starts a program: natively, or as x86_64 under Rosetta 2 on Apple Silicon.

Inside a Rosetta-translated process only lldb can time a binding (DTrace refuses translated
processes; dyld-print has no clock). lldb's debugserver sees the inferior is translated and
hands it over to Rosetta's own debugserver (/Library/Apple/usr/libexec/oah/debugserver);
LLDB_DEBUGSERVER_PATH makes lldb start a named server instead, and the hand-off never
happens (lldb tools/debugserver/source/DNB.cpp) — so on macOS gotrace never sets it
(loader.py), and refuses to run with it set rather than trace the wrong thing.

The program is not wrapped in `arch -x86_64` as the dyld-print backend does: lldb would
then follow `arch`, an arm64e system binary, across its exec. The launch shim is built for
x86_64 instead (clang ``-arch x86_64``) and the target created with an x86_64 triple, so the
process is translated from its first instruction and stays so across the shim's exec of the
program (which must have an x86_64 slice: rosetta.check_program).

Not run on macOS: the plan (triple, the shim's compiler flags, the refusals) is tested here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...errors import GotraceError

ROSETTA_DEBUGSERVER = "/Library/Apple/usr/libexec/oah/debugserver"
SERVER_ENV = "LLDB_DEBUGSERVER_PATH"
ROSETTA_TRIPLE = "x86_64-apple-macosx"


@dataclass
class LaunchPlan:
    """The target's triple and the launch shim's build, for one architecture."""

    arch: str | None = None  # None: the host's own, as lldb picks it
    triple: str | None = None
    shim_flags: list[str] = field(default_factory=lambda: ["-O2"])
    translated: bool = False

    @property
    def platform(self) -> str | None:
        """lldb's host platform whenever a triple is named: left to itself, lldb picks a remote
        platform for a triple (remote-linux, remote-macosx) and cannot launch locally. The macOS
        host platform lists x86_64 among its architectures on Apple Silicon (Rosetta)."""
        return "host" if self.triple else None

    @property
    def shim_stem(self) -> str:
        return f"execdefault-{self.arch}" if self.arch else "execdefault"

    def meta(self) -> dict:
        if not self.translated:
            return {"arch": self.arch, "triple": self.triple}
        return {"arch": self.arch, "triple": self.triple, "translated": True,
                "debugserver": f"Rosetta's ({ROSETTA_DEBUGSERVER}), by debugserver's hand-off; "
                               f"{SERVER_ENV} left unset",
                "launch": f"x86_64 launch shim (cc {' '.join(self.shim_flags)}), target triple {self.triple}"}


NATIVE = LaunchPlan()


def rosetta_plan(environ: dict[str, str] | None = None, command_env: dict[str, str] | None = None,
                 exists=os.path.exists) -> LaunchPlan:
    """The plan for an x86_64 program under Rosetta 2 (Apple Silicon), or a one-line refusal."""
    environ = os.environ if environ is None else environ
    for where, env in (("gotrace's environment", environ), ("the command's environment", command_env or {})):
        if env.get(SERVER_ENV):
            raise GotraceError(f"{SERVER_ENV} is set in {where} ({env[SERVER_ENV]}): lldb would start that server "
                               f"and a translated process would never be handed to Rosetta's debugserver; "
                               f"unset {SERVER_ENV} for --arch x86_64")
    if not exists(ROSETTA_DEBUGSERVER):
        raise GotraceError(f"Rosetta's debugserver is missing ({ROSETTA_DEBUGSERVER}), so lldb cannot debug a "
                           "translated process: softwareupdate --install-rosetta --agree-to-license")
    return LaunchPlan(arch="x86_64", triple=ROSETTA_TRIPLE, shim_flags=["-arch", "x86_64", "-O2"],
                      translated=True)
