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
plugin times every guest lookup (tracer/guest_latency.py).

Which process ran translated is decided afterwards from each program image's
ELF header against the host: a foreign one ran under the handler for its
machine. macOS (`arch -x86_64`, Rosetta 2, sysctl.proc_translated) is not
implemented: there is no macOS here to verify it on.
"""
from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GotraceError

BINFMT = Path("/proc/sys/fs/binfmt_misc")
ALIASES = {"arm64": "arm64", "aarch64": "arm64", "amd64": "x86_64", "x86_64": "x86_64", "x86-64": "x86_64"}
E_MACHINE = {"x86_64": 62, "arm64": 183}
QEMU = {"arm64": "aarch64", "x86_64": "x86_64"}
GOARCH = {"arm64": "arm64", "x86_64": "amd64"}
GUEST_PREFIX = {"arm64": "/usr/aarch64-linux-gnu"}
CROSS_CC = {"arm64": "aarch64-linux-gnu-gcc"}
TOOLCHAIN_ENV = "GOTRACE_GOROOT_{}"  # e.g. GOTRACE_GOROOT_ARM64: a Go toolchain built for that arch


def normalize(arch: str) -> str:
    a = ALIASES.get(arch.lower())
    if a is None:
        raise GotraceError(f"unknown architecture {arch!r}; use one of: {', '.join(sorted(set(ALIASES.values())))}")
    return a


def host_arch() -> str:
    return ALIASES.get(platform.machine().lower(), platform.machine().lower())


@functools.lru_cache(maxsize=4096)
def elf_arch(path: str) -> str | None:
    """The architecture an ELF file is built for, from e_machine; None if not ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _arch_of_machine(machine) or f"e_machine {machine}"


def _arch_of_machine(machine: int) -> str | None:
    return next((a for a, m in E_MACHINE.items() if m == machine), None)


@dataclass
class Handler:
    name: str
    interpreter: str
    flags: str
    magic: bytes

    @property
    def translator(self) -> str:
        """What runs the code: the interpreter's real name (qemu-aarch64, rosetta)."""
        return os.path.basename(os.path.realpath(self.interpreter))


def handlers() -> list[Handler]:
    """Enabled binfmt_misc entries (empty when binfmt_misc is not mounted)."""
    out = []
    if not (BINFMT / "status").exists():
        return out
    for entry in sorted(BINFMT.iterdir()):
        if entry.name in ("register", "status"):
            continue
        try:
            text = entry.read_text()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        if not text.startswith("enabled") or "magic" not in fields:
            continue
        try:
            magic = bytes.fromhex(fields["magic"].strip())
        except ValueError:
            continue
        out.append(Handler(entry.name, fields.get("interpreter", "").strip(), fields.get("flags:", "").strip(),
                           magic))
    return out


def handler_for_machine(machine: int) -> Handler | None:
    """The handler that runs little-endian ELF whose e_machine is ``machine``."""
    want = machine.to_bytes(2, "little")
    for h in handlers():
        if h.magic[:4] == b"\x7fELF" and len(h.magic) >= 20 and h.magic[18:20] == want:
            return h
    return None


def handler_for(arch: str) -> Handler | None:
    """The handler that runs 64-bit little-endian ELF of ``arch``."""
    return handler_for_machine(E_MACHINE[arch])


def _qemu_conf(arch: str) -> Path:
    return Path("/usr/lib/binfmt.d") / f"qemu-{QEMU[arch]}.conf"


def register_qemu(arch: str) -> Handler:
    """Register qemu-user's handler for ``arch`` (root; needs qemu-user-binfmt)."""
    conf = _qemu_conf(arch)
    if not conf.exists():
        raise GotraceError(f"{conf} is missing: apt-get install qemu-user qemu-user-binfmt")
    if os.geteuid() != 0:
        raise GotraceError("--register-binfmt needs root (it writes /proc/sys/fs/binfmt_misc/register)")
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, check=False)
        if not (BINFMT / "register").exists():
            raise GotraceError(f"cannot mount binfmt_misc at {BINFMT}: mount -t binfmt_misc binfmt_misc {BINFMT}")
    line = next((l for l in conf.read_text().splitlines() if l.startswith(":")), None)
    if line is None:
        raise GotraceError(f"{conf} holds no binfmt_misc registration line")
    try:
        (BINFMT / "register").write_text(line)
    except OSError as exc:
        raise GotraceError(f"binfmt_misc refused the qemu-{QEMU[arch]} registration: {exc.strerror}") from None
    h = handler_for(arch)
    if h is None:
        raise GotraceError(f"registered qemu-{QEMU[arch]}, but binfmt_misc does not list it")
    return h


def unregister(handler: Handler) -> None:
    try:
        (BINFMT / handler.name).write_text("-1")
    except OSError:
        pass


def go_toolchain(arch: str) -> Path | None:
    """A GOROOT whose `go` is built for ``arch``: $GOTRACE_GOROOT_<ARCH>, else the one
    scripts/setup.sh unpacks into the venv (<venv>/go-<arch>/go)."""
    env = os.environ.get(TOOLCHAIN_ENV.format(arch.upper()))
    cands = [Path(env)] if env else [Path(sys.prefix) / f"go-{arch}" / "go"]
    for c in cands:
        if (c / "bin" / "go").exists() and elf_arch(str(c / "bin" / "go")) == arch:
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
    if arch not in E_MACHINE:
        raise GotraceError(f"translated runs as {arch} are not supported")
    h = handler_for(arch)
    registered = False
    if h is None:
        if not register:
            mounted = (BINFMT / "status").exists()
            raise GotraceError(
                f"no binfmt_misc handler runs {arch} programs here"
                + ("" if mounted else f" ({BINFMT} is not mounted)")
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
        t.env.setdefault("GOARCH", GOARCH[arch])
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
    t.notes.append("guest lookups timed by a QEMU plugin (tracer/guest_latency.py)")


def _guest_arch(h: Handler) -> str | None:
    if h.magic[:4] != b"\x7fELF" or len(h.magic) < 20:
        return None
    return _arch_of_machine(int.from_bytes(h.magic[18:20], "little"))


def annotate(processes: list[dict], cwd: str, translation: Translation | None) -> list[dict]:
    """The processes rows with their arch and translator columns filled.

    A program image that is a binfmt_misc interpreter (qemu-aarch64 …) is a
    translated process: arch is its guest's, translator the interpreter —
    static guests (the arm64 Go toolchain) are only ever seen this way; the
    guest image that follows it in the same pid is the guest program even if
    its file is gone. A foreign ELF image ran under the handler for its
    machine. Native: null.
    """
    host = host_arch()
    hs = handlers() + ([translation.handler] if translation is not None else [])
    by_interp = {os.path.realpath(h.interpreter): h for h in hs if h.interpreter}
    by_arch = {a: h for h in hs if (a := _guest_arch(h))}
    if translation is not None:
        by_arch[translation.arch] = translation.handler
    hosted: dict[int, Handler] = {}  # pid -> the translator its earlier image was
    out = []
    for row in processes:
        pid, exe = row["pid"], row.get("exe")
        path = None if exe is None else str(exe)
        full = path if path is None or os.path.isabs(path) else os.path.join(cwd, path)
        h = by_interp.get(os.path.realpath(full)) if full else None
        if h is not None:
            hosted[int(pid)] = h
            out.append({**row, "arch": _guest_arch(h), "translator": h.translator})
            continue
        a = elf_arch(full) if full else None
        if a is None and int(pid) in hosted:  # the guest program, gone from disk (go test's pkg.test)
            a = _guest_arch(hosted[int(pid)])
        tr = None if a is None or a == host else by_arch[a].translator if a in by_arch else "unknown"
        out.append({**row, "arch": a, "translator": tr})
    return out
