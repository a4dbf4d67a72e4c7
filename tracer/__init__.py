"""gotrace: what the dynamic linker does when the Go toolchain and Go programs run.

Library entry points (usable from notebooks without the CLI)::

    from tracer import bind, load_session, build_report
    result = bind(["go", "build", "./..."], out="sess")
    s = load_session("sess"); s.events.groupby("kind").size()

The rooms behind them (see the README's "Layout"): ``capture`` records a
command into a session, ``session`` stores and loads it, ``analysis`` reads
saved sessions, ``binary`` reads ELF and Mach-O files, ``goenv`` checks a Go
environment, ``render`` and ``commands`` are the command line.
"""
from .version import __version__


def __getattr__(name):  # lazy: keep `import tracer` (and every CLI start) cheap
    if name in ("Session", "load_session"):
        from .session import reader
        return getattr(reader, name)
    if name == "bind":
        from .capture.run import bind
        return bind
    if name == "build_report":
        from .analysis.report import build_report
        return build_report
    raise AttributeError(name)


__all__ = ["Session", "load_session", "bind", "build_report", "__version__"]
