"""The Typer app: every command, its help, and how a command line runs through it.

Commands are thin: parse options, call the library once, hand the result to
render/, raise or ``typer.Exit(code)``. They never catch errors; failures
travel to the console's one handler (console.py). Library modules are
imported inside each command: every millisecond before a traced command
starts is overhead on its wall time (and on `gotrace --help`).
"""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from .. import heavy
from ..errors import GotraceError
from ..version import __version__
from .helptext import help_text, summary


class Interrupted(GotraceError):
    """Ctrl-C inside a command: one line, exit 130."""

    def __init__(self):
        super().__init__("interrupted", 130)


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would make it a silent exit 130: let the console say so
            raise Interrupted() from None


app = typer.Typer(
    name="gotrace",
    cls=_Group,
    help="See what the dynamic linker does when the Go toolchain and Go programs run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    suggest_commands=False,  # click suggests already: with Typer's too, a typo got two "Did you mean"
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gotrace {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """See what the dynamic linker does when the Go toolchain and Go programs run."""


def _register() -> None:
    from .agent import agent_command
    from .analysis import compare_command, export_command, plot_command
    from .aslr import aslr_command
    from .bench_bind import bench_bind_command
    from .bind import bind_command
    from .check import check_command
    from .doctor import doctor_command
    from .explain import explain_command
    from .importlog import import_command
    from .inspect import inspect_command, stubs_command
    from .libcheck import libcheck_command
    from .lldb_init import lldb_init_command
    from .report import report_command
    from .why import why_command

    passthrough = {"allow_interspersed_args": False}  # everything after the first argument is the command's
    for name, func, settings in (
            ("bind", bind_command, passthrough), ("report", report_command, None),
            ("compare", compare_command, None), ("plot", plot_command, None), ("export", export_command, None),
            ("bench-bind", bench_bind_command, None), ("inspect", inspect_command, None),
            ("stubs", stubs_command, None), ("doctor", doctor_command, None),
            ("libcheck", libcheck_command, passthrough), ("lldb-init", lldb_init_command, None),
            ("aslr", aslr_command, passthrough), ("import", import_command, None),
            ("check", check_command, None), ("why", why_command, None), ("explain", explain_command, None),
            ("agent", agent_command, None)):
        app.command(name, help=help_text(func.__doc__), short_help=summary(func.__doc__),
                    context_settings=settings)(func)


_register()


def run_app(argv: list[str]) -> int:
    """Run one command line through Typer; the exit code (failures propagate to the console)."""
    heavy.after_import("pyarrow", heavy.system_allocator)  # not imported now: the command starts first
    try:
        app(args=argv, prog_name="gotrace")
    except SystemExit as exc:
        return exc.code  # an int, or None for 0; anything else the console prints
    return 0
