"""gotrace bind: run a command and record every dynamic-linker binding."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .bind_run import run_bind
from .options import JsonOpt, JsonOutOpt


def bind_command(
    command: Annotated[Optional[list[str]], typer.Argument(help="The command and its arguments, after --.",
                                                           show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Session directory to create.",
                      show_default="gotrace-sessions/<time>-<cmd>")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="Which tracer records the bindings.",
                       metavar="auto|bpf|bpftrace|ld-debug|lldb|dyld-print|dtrace")] = "auto",
    arch: Annotated[Optional[str], typer.Option("--arch", help="Run the command as this architecture (arm64, "
                    "x86_64) through its binfmt_misc translator (macOS: Rosetta 2); `go` becomes that arch's "
                    "toolchain. Backend: ld-debug (macOS: dyld-print, or lldb for latency in one process).",
                    show_default=False)] = None,
    register_binfmt: Annotated[bool, typer.Option("--register-binfmt", help="With --arch: register qemu-user's "
                               "binfmt_misc handler for this run if none is (root; removed afterwards).")] = False,
    attach: Annotated[Optional[int], typer.Option("--pid", "-p", "--attach", help="Trace this running process from "
                      "now on (lldb backend) instead of starting a command; Ctrl-C detaches.", show_default=False,
                      metavar="PID")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing session directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live status line.")] = False,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    """Run a command and every process it spawns; record each binding.

    Every symbol binding the dynamic linker makes: who asked, for which symbol
    and version, who provided it, eager, lazy or dlsym, and (bpf, bpftrace,
    lldb, dtrace; qemu's plugin under --arch) how long the lookup took. Put the command after `--`. Examples:

      gotrace bind -- go build ./...
      gotrace bind -o sess --backend ld-debug -- go test ./pkg
      gotrace bind -b bpftrace -- go test ./...   # through bindsnoop.bt
      gotrace bind --backend lldb -- ./hello      # one process, through lldb
      gotrace bind --pid 4242                     # a running process, from now
      gotrace bind --arch arm64 -- ./hello-arm64  # translated, by qemu-user
      gotrace bind --arch arm64 --register-binfmt -- go build
      gotrace bind --arch x86_64 -- go build      # macOS: under Rosetta 2
      gotrace bind --arch x86_64 -b lldb -- ./hello-amd64  # Rosetta, timed

    Backends: bpf (root, BTF; gotrace's own BPF program: latency, failed
    lookups, full process tree, at little more than the probes' cost),
    bpftrace (the same through dscripts/bindsnoop.bt, which you can read and
    run by hand; ~0.3 s more per run), ld-debug (no root; glibc's LD_DEBUG), lldb (one process, no descendants;
    latency corrected for lldb's own stop cost, calibrated in the same run;
    works where uprobes cannot), dyld-print (macOS, no root: dyld's own
    account of every process, Rosetta included), dtrace (root: one dtrace
    per process; Linux: dlsym/dlopen only; macOS: every bind target with its
    latency), auto (bpf, else bpftrace, else ld-debug, saying why; on macOS dtrace,
    else dyld-print, and dyld-print under Rosetta, which DTrace refuses; never
    lldb, except for --attach). Under Rosetta only lldb times a binding (its
    stop cost calibrated inside the translated process). macOS paths are not
    run on macOS.

    The command's exit code becomes gotrace's; Ctrl-C goes to the command, and
    if it dies of it the session is saved marked incomplete. The session is analysed with `gotrace report DIR`. Scripts take
    the summary as JSON with --json-out FILE: the command's own stdout stays
    the command's (--json shares stdout with it).
    """
    raise typer.Exit(run_bind(command, output, backend, arch, register_binfmt, attach, force, quiet, as_json,
                              json_out))
