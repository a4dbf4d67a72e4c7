"""gotrace: what the dynamic linker does when the Go toolchain and Go programs run.

Library entry points (usable from notebooks without the CLI)::

    from tracer import bind, load_session, build_report
    result = bind(["go", "build", "./..."], out="sess")
    s = load_session("sess"); s.events.groupby("kind").size()
"""
__version__ = "0.1.0"



def __getattr__(name):  # lazy: keep `import tracer` (and every CLI start) cheap
    if name in ("Session", "load_session"):
        from . import session
        return getattr(session, name)
    if name == "bind":
        from .capture import bind
        return bind
    if name == "build_report":
        from .report import build_report
        return build_report
    raise AttributeError(name)


__all__ = ["Session", "load_session", "bind", "build_report", "__version__"]
