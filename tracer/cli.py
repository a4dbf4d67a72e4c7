"""The gotrace command line: a thin Typer layer over the library."""
from __future__ import annotations

import typer

from . import __version__, lazy
from .commands.bind import HELP as BIND_HELP, bind_command
from .commands.aslr import HELP as ASLR_HELP, aslr_command
from .commands.doctor import doctor_command
from .commands.libcheck import HELP as LIBCHECK_HELP, libcheck_command
from .commands.lldb_init import lldb_init_command
from .commands.analysis import compare_command, export_command, plot_command
from .commands.bench_bind import bench_bind_command
from .commands.inspect import inspect_command, stubs_command
from .commands.report import report_command

app = typer.Typer(
    name="gotrace",
    help="See what the dynamic linker does when the Go toolchain and Go programs run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


app.command("bind", help=BIND_HELP, context_settings={"allow_interspersed_args": False})(bind_command)
app.command("report")(report_command)
app.command("compare")(compare_command)
app.command("plot")(plot_command)
app.command("export")(export_command)
app.command("bench-bind")(bench_bind_command)
app.command("inspect")(inspect_command)
app.command("stubs")(stubs_command)
app.command("doctor")(doctor_command)
app.command("libcheck", help=LIBCHECK_HELP, context_settings={"allow_interspersed_args": False})(libcheck_command)
app.command("lldb-init")(lldb_init_command)
app.command("aslr", help=ASLR_HELP, context_settings={"allow_interspersed_args": False})(aslr_command)


def main() -> None:
    lazy.after_import("pyarrow", lazy.system_allocator)  # not imported now: the command starts first
    app()
