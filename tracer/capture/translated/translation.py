"""Running a workload as another architecture, and telling which processes were translated.

Linux runs a foreign ELF through the binfmt_misc handler registered for its
e_machine (qemu-user from qemu-user-binfmt, or Rosetta for Linux in a VM).
`gotrace bind --arch ARCH` checks that such a handler exists — or, with
--register-binfmt (root), registers qemu's from /usr/lib/binfmt.d for the
session only and removes it afterwards — and sets what a translated run
needs: the guest's libraries (the multiarch libc6:ARCH when it is installed,
else QEMU_LD_PREFIX at the cross-compiler's sysroot) and, when the command is
`go`, an ARCH toolchain (run translated), GOARCH and the cross C compiler.
With qemu and the multiarch libc's debug symbols (libc6-dbg:ARCH), a QEMU
plugin times every guest lookup (guest_latency.py).

Which process ran translated is decided afterwards from each program image's
ELF header against the host: a foreign one ran under the handler for its
machine. macOS runs are rosetta.py's (`arch -x86_64`); the dyld-print backend
names each process's architecture and translator itself.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ... import arch as archs
from ...binary.facts import file_arch
from ...errors import GotraceError
from .binfmt import BINFMT, QEMU, Handler, handler_for, handlers, mounted, register_qemu, unregister

GUEST_PREFIX = {"arm64": "/usr/aarch64-linux-gnu"}
CROSS_CC = {"arm64": "aarch64-linux-gnu-gcc"}
TOOLCHAIN_ENV = "GOTRACE_GOROOT_{}"  # e.g. GOTRACE_GOROOT_ARM64: a Go toolchain built for that arch


def normalize(name: str) -> str:
    """gotrace's name for ``--arch NAME``, one a translated run supports, or a one-line error."""
    a = archs.canonical(name)
    if a not in QEMU:
        raise GotraceError(f"unknown architecture {name!r}; use one of: {', '.join(sorted(QEMU))}")
    return a


host_arch = archs.host_arch


def translator_filter(translation: Translation | None = None):
    """Which programs are translators (analysis/translator.py), from every
    binfmt_misc handler registered now and the run's own."""
    from ...analysis.translator import TranslatorFilter

    hs = handlers() + ([translation.handler] if translation is not None else [])
    return TranslatorFilter({h.translator for h in hs}, [h.interpreter for h in hs])


def check_program(arch: str, argv: list[str], env: dict[str, str]) -> None:
    """Refuse ``--arch ARCH`` for a program built for another architecture: it
    would run as what it is (natively, or by another translator), never as ARCH.
    Scripts and `go` (which becomes ARCH's toolchain) are not judged here."""
    if not argv or os.path.basename(argv[0]) == "go":
        return
    path = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    built = file_arch(path) if path else None
    if built is not None and built != arch:
        raise GotraceError(f"{argv[0]} is built for {built}, not {arch}: --arch {arch} runs {arch} programs "
                           f"(build it for {arch}, e.g. GOARCH={archs.goarch(arch)}, or drop --arch)")


def go_toolchain(arch: str) -> Path | None:
    """A GOROOT whose `go` is built for ``arch``: $GOTRACE_GOROOT_<ARCH>, else the one
    scripts/setup.sh unpacks into the venv (<venv>/go-<arch>/go)."""
    env = os.environ.get(TOOLCHAIN_ENV.format(arch.upper()))
    cands = [Path(env)] if env else [Path(sys.prefix) / f"go-{arch}" / "go"]
    for c in cands:
        if (c / "bin" / "go").exists() and file_arch(str(c / "bin" / "go")) == arch:
            return c
    return None


@dataclass
class Translation:
    """What a run as ``arch`` needs, and what to undo afterwards."""

    arch: str
    handler: Handler
    registered: bool = False  # we registered the handler: remove it when done
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing_dir: str | None = None  # where the qemu plugin writes guest lookup times

    def meta(self) -> dict:
        return {"arch": self.arch, "handler": self.handler.name, "translator": self.handler.translator,
                "interpreter": self.handler.interpreter, "registered_for_session": self.registered,
                "env": self.env, "notes": self.notes}

    def host_exe(self, exe: str | None) -> bool:
        """Whether a program image is the translator itself (its own start-up, same pid)."""
        if not exe:
            return False
        names = {f"qemu-{QEMU[self.arch]}", f"qemu-{QEMU[self.arch]}-static"}
        if self.handler.interpreter:
            names.add(os.path.basename(self.handler.interpreter))
        return os.path.basename(exe) in names

    def close(self) -> None:
        if self.registered:
            unregister(self.handler)
        if self.timing_dir:
            shutil.rmtree(self.timing_dir, ignore_errors=True)
            self.timing_dir = None


def prepare(arch: str, argv: list[str], env: dict[str, str], register: bool = False,
            time_guest: bool = False) -> Translation | None:
    """Check (or register) the translator for ``arch`` and extend ``env`` for the run.

    ``time_guest`` loads the qemu timing plugin into every translated process
    (capture asks for it; a benchmark of the bare translator must not).
    Returns None when ``arch`` is the host's own (a native run).
    """
    arch = normalize(arch)
    if arch == host_arch():
        return None
    h = handler_for(arch)
    registered = False
    if h is None:
        if not register:
            raise GotraceError(
                f"no binfmt_misc handler runs {arch} programs here"
                + ("" if mounted() else f" ({BINFMT} is not mounted)")
                + f"; install qemu-user-binfmt and pass --register-binfmt (root) to register qemu-{QEMU[arch]} "
                  "for this run")
        h = register_qemu(arch)
        registered = True
    t = Translation(arch, h, registered)
    if "qemu" in h.translator and "QEMU_LD_PREFIX" not in env:
        _guest_libraries(t, env, time_guest)
    if argv and os.path.basename(argv[0]) == "go":
        root = go_toolchain(arch)
        if root is None:
            t.close()
            raise GotraceError(f"no Go toolchain built for {arch}: run scripts/setup.sh (it unpacks one into the "
                               f"venv) or set {TOOLCHAIN_ENV.format(arch.upper())} to its GOROOT")
        t.env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
        t.env["GOROOT"] = str(root)
        t.env.setdefault("GOARCH", archs.goarch(arch))
        t.env["GOTOOLCHAIN"] = "local"
        cc = CROSS_CC.get(arch)
        if "CC" not in env and cc and shutil.which(cc, path=env.get("PATH")):
            t.env["CC"] = cc
        t.notes.append(f"go is the {arch} toolchain at {root} (runs translated); C compilers run natively")
    env.update(t.env)
    return t


def _guest_libraries(t: Translation, env: dict[str, str], time_guest: bool) -> None:
    """The multiarch libc6:ARCH if installed (its ld.so has a debug package, so
    the plugin can time lookups), else the cross sysroot through QEMU_LD_PREFIX."""
    from . import guest_latency

    if guest_latency.guest_ldso(t.arch) is None:
        prefix = GUEST_PREFIX.get(t.arch)
        if prefix and os.path.isdir(prefix):
            t.env["QEMU_LD_PREFIX"] = prefix
    if not time_guest:
        return
    layout = guest_latency.guest_layout(t.arch)
    if layout is None:
        need = guest_latency.GUEST_PACKAGES.get(t.arch, "the guest libc and its debug symbols")
        t.notes.append(f"guest lookups are not timed: install {need}")
        return
    if guest_latency.PLUGIN_ENV in env:
        t.notes.append(f"guest lookups are not timed: {guest_latency.PLUGIN_ENV} is already set")
        return
    import tempfile

    t.timing_dir = tempfile.mkdtemp(prefix="gotrace-qemu-timing-")
    try:
        t.env[guest_latency.PLUGIN_ENV] = guest_latency.plugin_value(t.arch, layout, os.path.join(t.timing_dir, "qt"))
    except GotraceError as exc:  # the run still works, untimed
        shutil.rmtree(t.timing_dir, ignore_errors=True)
        t.timing_dir = None
        t.notes.append(f"guest lookups are not timed: {exc}")
        return
    t.notes.append("guest lookups timed by a QEMU plugin (tracer/capture/translated/guest_latency.py)")


def annotate(processes: list[dict], cwd: str, translation: Translation | None) -> list[dict]:
    """The processes rows with their arch and translator columns filled.

    A program image that is a binfmt_misc interpreter (qemu-aarch64 …) is a
    translated process: arch is its guest's, translator the interpreter —
    static guests (the arm64 Go toolchain) are only ever seen this way; the
    guest image that follows it in the same pid is the guest program even if
    its file is gone. A foreign ELF image ran under the handler for its
    machine. Native: null — also the CPU's own 32-bit programs (arch.COMPAT:
    i386 on x86_64) when no handler claims them: the kernel ran them.
    """
    host = host_arch()
    hs = handlers() + ([translation.handler] if translation is not None else [])
    by_interp = {os.path.realpath(h.interpreter): h for h in hs if h.interpreter}
    by_arch = {a: h for h in hs if (a := h.guest_arch)}
    if translation is not None:
        by_arch[translation.arch] = translation.handler
    hosted: dict[int, Handler] = {}  # pid -> the translator its earlier image was
    out = []
    for row in processes:
        if row.get("arch") is not None:  # the backend knew already (dyld-print: the shared region, Rosetta)
            out.append(row)
            continue
        pid, exe = row["pid"], row.get("exe")
        path = None if exe is None else str(exe)
        full = path if path is None or os.path.isabs(path) else os.path.join(cwd, path)
        h = by_interp.get(os.path.realpath(full)) if full else None
        if h is not None:
            hosted[int(pid)] = h
            out.append({**row, "arch": h.guest_arch, "translator": h.translator})
            continue
        a = file_arch(full) if full else None
        if a is None and int(pid) in hosted:  # the guest program, gone from disk (go test's pkg.test)
            a = hosted[int(pid)].guest_arch
        if a is None or a == host or (a in archs.COMPAT.get(host, ()) and a not in by_arch):
            tr = None  # native, or the CPU's own 32-bit mode (no handler claims it: the kernel ran it)
        else:
            tr = by_arch[a].translator if a in by_arch else "unknown"
        out.append({**row, "arch": a, "translator": tr})
    return out
