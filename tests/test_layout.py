"""The layout's rules, read from the source: every import in tracer/, those inside functions too.

Rooms (README, "Layout"): commands/ and render/ are the command line;
capture/ records; session/ stores; analysis/ reads saved sessions; binary/
reads files; goenv/ checks a Go environment; lldb_plugin/ is gotrace inside
lldb; errors, arch, heavy, procfs, dispositions and version are shared by all. The checker
is tested on a small package of its own first, so a rule it could not see
broken cannot pass here unnoticed.
"""
from __future__ import annotations

import ast
from pathlib import Path

TRACER = Path(__file__).resolve().parent.parent / "tracer"
SHARED = {"tracer.errors", "tracer.arch", "tracer.heavy", "tracer.procfs", "tracer.dispositions", "tracer.version"}
ENTRY_POINTS = {"tracer.__main__"}  # the console script is tracer.commands.console itself


def modules(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in its body), by
    ``import``, ``from … import`` (relative or absolute) or a module name given
    as a string (importlib.import_module, preload lists)."""
    mods = modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in mods:
                targets = [node.value]
            for t in targets:
                while t and t not in mods:  # `import tracer.a.b` names tracer.a.b; an attribute names its module
                    t = t.rpartition(".")[0]
                if t and t != name:
                    found.add(t)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def room(module: str, package: str = "tracer") -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# room -> rooms it must never import
FORBIDDEN = {
    "binary": {"session", "capture", "analysis", "commands", "render", "goenv", "lldb_plugin"},
    "session": {"capture", "analysis", "binary", "commands", "render", "goenv", "lldb_plugin"},
    "analysis": {"capture", "commands", "render", "goenv", "lldb_plugin"},
    "render": {"capture", "analysis", "commands", "goenv", "lldb_plugin"},
    "capture": {"commands", "render", "lldb_plugin", "goenv"},
    "goenv": {"commands", "render", "session", "analysis", "lldb_plugin"},
    "lldb_plugin": {"commands", "render"},
    "loaderrors": {"session", "capture", "analysis", "commands", "render", "goenv", "lldb_plugin", "binary"},
}


def violations(graph: dict[str, set[str]], package: str = "tracer") -> list[str]:
    found = []
    for mod, targets in sorted(graph.items()):
        src = room(mod, package)
        for t in sorted(targets):
            dst = room(t, package)
            if dst == "commands" and src != "commands" and mod not in {e.replace("tracer", package, 1)
                                                                        for e in ENTRY_POINTS}:
                found.append(f"{mod} imports {t}: only the entry points import commands/")
            if dst in FORBIDDEN.get(src, ()):
                found.append(f"{mod} imports {t}: {src}/ must not import {dst}/")
            shared = {s.replace("tracer", package, 1) for s in SHARED}
            if mod in shared and t not in shared:
                found.append(f"{mod} imports {t}: shared modules import only each other")
    return found


def test_the_checker_sees_cycles_and_broken_rules(tmp_path):
    pkg = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "__main__.py": "from .commands import console\n",
        "errors.py": "",
        "commands/__init__.py": "",
        "commands/console.py": "from ..capture import run\n",
        "capture/__init__.py": "",
        "capture/run.py": "from . import sink\nfrom ..session import writer\n",
        "capture/sink.py": "def f():\n    from .run import g  # inside a function: still an import\n",
        "session/__init__.py": "",
        "session/writer.py": "from ..errors import E\n",
        "binary/__init__.py": "",
        "binary/aslr.py": "import importlib\nimportlib.import_module('pkg.session.writer')\n",
        "analysis/__init__.py": "",
        "analysis/report.py": "from pkg.commands.console import main\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    graph = imports(pkg, "pkg")
    assert "pkg.capture.run" in graph["pkg.capture.sink"]
    assert cycles(graph) == [["pkg.capture.run", "pkg.capture.sink"]]
    assert violations(graph, "pkg") == [
        "pkg.analysis.report imports pkg.commands.console: only the entry points import commands/",
        "pkg.analysis.report imports pkg.commands.console: analysis/ must not import commands/",
        "pkg.binary.aslr imports pkg.session.writer: binary/ must not import session/",
    ]


def test_tracer_has_no_import_cycles():
    graph = imports(TRACER, "tracer")
    assert len(graph) > 60 and "tracer.capture.prelaunch" in graph  # it read the real tree
    assert cycles(graph) == []


def test_tracer_keeps_its_rooms():
    assert violations(imports(TRACER, "tracer")) == []


def test_every_room_is_a_package_the_readme_names():
    readme = (TRACER.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    rooms = sorted(p.name for p in TRACER.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert rooms == ["analysis", "binary", "capture", "commands", "csrc", "goenv", "lldb_plugin", "loaderrors", "render",
                     "session"]
    for r in rooms:
        assert f"`{r}/`" in layout, f"README's Layout section does not name {r}/"
    shared = sorted(p.stem for p in TRACER.glob("*.py") if not p.name.startswith("__"))
    assert {f"tracer.{s}" for s in shared} == SHARED
    assert (TRACER.parent / "dscripts").is_dir() and not (TRACER.parent / "dscripts").is_symlink()


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists packages by hand: each directory of tracer/ with an __init__.py must be in
    that list, or a wheel would not carry it (tracer.capture.bpf was missing)."""
    import tomllib

    root = TRACER.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in TRACER.rglob("__init__.py")}
    assert found - listed == set()
