"""Mutation testing, one module at a time, against the tests that cover it.

Each mutant is one small, realistic bug put into one module: a comparison turned
(``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=``, ``in`` ↔ ``not in``, ``is`` ↔ ``is not``), ``and``
↔ ``or``, a ``not`` dropped, ``+`` ↔ ``-``, ``*`` ↔ ``/`` (and ``//``), an augmented
assignment turned, an integer constant off by one, ``True`` ↔ ``False``, ``None`` for a value
a function returns, a ``continue`` or ``break`` dropped. Strings, docstrings, annotations and
f-strings are left alone: a changed message is no realistic bug. A mutant is killed when its
module's tests fail (or run past a time limit), and survives when they all pass.

Why not mutmut: mutmut 3 runs each test only against the mutants of the functions it saw
run in-process, and most of gotrace's tests drive the CLI in a child process (`gotrace
bind`, `report`, `why`): on analysis/budgets.py it ran 34 of 430 mutants and called 363
"not checked". Here every mutant is written into a private copy of the checkout
(PYTHONPATH points there, so a child `python -m tracer` and lldb's embedded Python
import the mutant too) and the mapped test modules run whole, fastest first, each in its own
pytest run, up to the first failure.

Usage (from the checkout; root, as the tests are):

  .venv/bin/python bench/mutation.py --module tracer/analysis/budgets.py
  .venv/bin/python bench/mutation.py --module tracer/capture/ld_debug/parse.py --json out.json
  .venv/bin/python bench/mutation.py --list              # the modules and the tests mapped to each
  .venv/bin/python bench/mutation.py --module M --only 12,40   # re-run some mutants by number
  .venv/bin/python bench/mutation.py --module M --lock /tmp/gotrace-trace.lock  # beside another run that traces

Output: one line per mutant (``killed``, ``SURVIVED``, ``timeout``) with its number, line and
change, then the score (killed / mutants) and the survivors again. A survivor is either a
test to write (an oracle the tests lack) or an equivalent mutant, argued in
bench/mutation-survivors.md.
"""
from __future__ import annotations

import argparse
import ast
import copy
import fcntl
import json
import os
import random
import shlex
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the checkout's parts a test may read (the copy holds these, the mutant's module replaced)
COPIED = ["tracer", "tests", "dscripts", "examples", "bench", "scripts", "notebooks", "docs", "pyproject.toml",
          "README.md"]

# module -> the test modules (or node ids) that check it; a run is minutes per module, not hours
TESTS: dict[str, list[str]] = {
    # analysis/: offline, from saved sessions
    "tracer/analysis/budgets.py": ["tests/test_oracle_budgets.py", "tests/test_budgets.py"],
    # loader errors: messages of every loader, their explanation, the files it checks
    "tracer/loaderrors/dyld_text.py": ["tests/test_loader_errors.py"],
    "tracer/loaderrors/glibc_text.py": ["tests/test_loader_errors.py"],
    "tracer/loaderrors/scan.py": ["tests/test_loader_errors.py"],
    "tracer/analysis/explain.py": ["tests/test_loader_errors.py"],
    "tracer/binary/load_facts.py": ["tests/test_loader_errors.py"],
    "tracer/capture/dyld_print/dyld2.py": ["tests/test_loader_errors.py"],
    "tracer/analysis/compare.py": ["tests/test_oracle_compare.py", "tests/test_budgets.py", "tests/test_analysis.py",
                                   "tests/test_session_io.py -k damaged", "tests/test_translate.py -k reports_show"],
    "tracer/analysis/export.py": ["tests/test_oracle_export.py", "tests/test_analysis.py",
                                  "tests/test_translate.py -k through_compare_plot_export"],
    "tracer/analysis/failures.py": ["tests/test_oracle_failures.py", "tests/test_failures.py"],
    "tracer/analysis/images.py": ["tests/test_oracle_images.py", "tests/test_images.py",
                                  "tests/test_aslr.py::test_session_fill"],
    "tracer/analysis/interposed.py": ["tests/test_oracle_interposed.py",
                                      "tests/test_why.py -k 'pick_candidates or files_gone'",
                                      "tests/test_translate.py -k reports_show"],
    "tracer/analysis/libsearch.py": ["tests/test_why.py -k 'not bpf'"],
    "tracer/analysis/methods.py": ["tests/test_analysis.py", "tests/test_lldb_dyld.py",
                                   "tests/test_translate.py -k reports_show",
                                   "tests/test_lldb_module.py -k without_calibration"],
    "tracer/analysis/naming.py": ["tests/test_oracle_naming.py", "tests/test_analysis.py", "tests/test_budgets.py"],
    "tracer/analysis/plot.py": ["tests/test_oracle_plot.py", "tests/test_lldb_dyld.py -k side_by_side",
                                "tests/test_oracle_plot_traced.py", "tests/test_analysis.py"],
    "tracer/analysis/report.py": ["tests/test_tally.py", "tests/test_oracle_report.py", "tests/test_failures.py",
                                  "tests/test_oracle_interposed.py", "tests/test_cli.py"],
    "tracer/analysis/scope.py": ["tests/test_oracle_scope.py", "tests/test_oracle_interposed.py",
                                 "tests/test_why.py -k 'not bpf'", "tests/test_oracle_report.py -k behind"],
    "tracer/analysis/tally.py": ["tests/test_tally.py", "tests/test_oracle_tally.py", "tests/test_cli.py"],
    "tracer/analysis/translator.py": ["tests/test_translate.py"],
    "tracer/analysis/why.py": ["tests/test_oracle_interposed.py", "tests/test_why.py -k 'not bpf'"],
    "tracer/analysis/why_library.py": ["tests/test_why.py -k 'not bpf'"],
    "tracer/analysis/why_macho.py": ["tests/test_why_macho.py", "tests/test_oracle_dyld.py"],
    # capture/: the parsers and decoders
    "tracer/capture/ld_debug/parse.py": ["tests/test_oracle_tangled.py", "tests/test_golden_parsers.py",
                                         "tests/test_oracle_kinds.py -k ld-debug",
                                         "tests/test_binding_modes.py -k ld-debug", "tests/test_import.py",
                                         "tests/test_oracle_fork.py -k ld-debug",
                                         "tests/test_why.py -k 'dlopen and ld-debug'",
                                         "tests/test_translate.py -k translated_c_program_matches_native"],
    "tracer/capture/dyld_print/lines.py": ["tests/test_dyld_print.py", "tests/test_oracle_dyld.py"],
    "tracer/capture/dyld_print/account.py": ["tests/test_dyld_print.py", "tests/test_dyld_print_backend.py",
                                             "tests/test_import.py"],
    # the agent: its lifecycle, a command through it, the bind server and its client
    "tracer/capture/bpf/agent.py": ["tests/test_agent.py"],
    "tracer/capture/bpf/via_agent.py": ["tests/test_agent.py"],
    "tracer/commands/bind_client.py": ["tests/test_agent.py"],
    "tracer/commands/bind_server.py": ["tests/test_agent.py"],
    "tracer/capture/bpftrace/decode.py": ["tests/test_golden_parsers.py", "tests/test_dscripts.py",
                                          "tests/test_oracle_kinds.py -k 'bpf or bpftrace'", "tests/test_odd_names.py",
                                          "tests/test_exec_facts.py -k bpf",
                                          "tests/test_failures.py -k 'died or unnamed or (told and bpftrace)'"],
    "tracer/capture/bpftrace/lines.py": ["tests/test_tracer_stream.py", "tests/test_oracle_kinds.py -k 'bpf or bpftrace'",
                                         "tests/test_bpf_backend.py", "tests/test_kept_objects.py -k 'deleted and bpf'"],
    "tracer/capture/dtrace/decode.py": ["tests/test_oracle_dtrace_records.py", "tests/test_dtrace.py"],
    "tracer/capture/dtrace/follow.py": ["tests/test_dtrace.py", "tests/test_oracle_scope.py -k kernel_names"],
    "tracer/capture/ifunc_kinds.py": ["tests/test_ifunc_kinds.py"],
    "tracer/capture/imported.py": ["tests/test_oracle_import.py", "tests/test_import.py", "tests/test_oracle_tangled.py"],
    # binary/: ELF and Mach-O files
    "tracer/binary/elf.py": ["tests/test_inspect.py", "tests/test_check.py", "tests/test_bad_binaries.py",
                             "tests/test_elf_corpus.py", "tests/test_dscripts.py -k function_ranges"],
    "tracer/binary/elf_dynsyms.py": ["tests/test_dynsyms.py", "tests/test_why.py", "tests/test_check.py"],
    "tracer/binary/elf_names.py": ["tests/test_inspect.py", "tests/test_check.py", "tests/test_elf_corpus.py"],
    "tracer/binary/elf_versions.py": ["tests/test_inspect.py", "tests/test_check.py",
                                      "tests/test_elf_corpus.py -k 'without_section_headers or 32_bit_library'"],
    "tracer/binary/facts.py": ["tests/test_facts.py", "tests/test_check.py", "tests/test_oracle_interposed.py",
                               "tests/test_why.py"],
    "tracer/binary/gates.py": ["tests/test_check.py"],
    "tracer/binary/goinfo.py": ["tests/test_inspect.py", "tests/test_check.py"],
    "tracer/binary/ldso_dirs.py": ["tests/test_ldso_dirs.py", "tests/test_why.py -k '32_bit or arm64_programs'"],
    "tracer/binary/ldcache.py": ["tests/test_ldcache.py", "tests/test_why.py", "tests/test_doctor_libcheck.py"],
    "tracer/binary/macho.py": ["tests/test_inspect.py", "tests/test_stubs.py", "tests/test_bad_binaries.py",
                                "tests/test_macho_real.py -k 'labels_name or every_bind'"],
    "tracer/binary/macho_indirect.py": ["tests/test_stubs.py", "tests/test_inspect.py", "tests/test_bad_binaries.py",
                                        "tests/test_macho_real.py"],
    "tracer/binary/macho_slices.py": ["tests/test_macho_slices.py", "tests/test_inspect.py", "tests/test_check.py"],
    "tracer/binary/model.py": ["tests/test_inspect.py", "tests/test_stubs.py"],
    "tracer/binary/sniff.py": ["tests/test_bad_binaries.py", "tests/test_inspect.py"],
    "tracer/binary/stubs.py": ["tests/test_stubs.py", "tests/test_macho_real.py", "tests/test_elf_corpus.py"],
    "tracer/binary/aslr.py": ["tests/test_aslr.py"],
    "tracer/binary/ptrace_launch.py": ["tests/test_aslr.py"],
    "tracer/binary/open.py": ["tests/test_bad_binaries.py", "tests/test_inspect.py"],
}

COMPARE_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in",
          ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
          ast.Div: "/", ast.FloorDiv: "//", ast.And: "and", ast.Or: "or"}


@dataclass
class Mutant:
    number: int
    line: int
    change: str
    source: str  # the original line, stripped
    status: str = ""
    seconds: float = 0.0
    failed: str = ""  # the first test that failed (what killed it)


def _skipped(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, f-strings and what is inside them."""
    out: set[int] = set()

    def mark(node):
        for n in ast.walk(node):
            out.add(id(n))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                mark(first)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            mark(node.returns)
        if isinstance(node, ast.arg) and node.annotation is not None:
            mark(node.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.JoinedStr):
            mark(node)
    return out


def mutations(text: str) -> list[tuple[int, str, object]]:
    """Every mutation of the module's source: (line, change, how) where how(tree_copy) mutates a
    deep copy of the module's tree at the same place (found again by its position in ast.walk)."""
    tree = ast.parse(text)
    skip = _skipped(tree)
    out = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in COMPARE_SWAP:
                    new = COMPARE_SWAP[type(op)]
                    out.append((line, f"{SYMBOL[type(op)]} -> {SYMBOL[new]}", ("cmp", index, k, new)))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            out.append((line, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", ("bool", index, new)))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((line, "not dropped", ("not", index)))
        elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
            if isinstance(node.op, ast.Add) and any(isinstance(x, ast.Constant) and isinstance(x.value, str)
                                                    for x in (node.left, node.right)):
                continue  # string concatenation: a message
            new = BINOP_SWAP[type(node.op)]
            out.append((line, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", ("binop", index, new)))
        elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAP:
            new = BINOP_SWAP[type(node.op)]
            out.append((line, f"{SYMBOL[type(node.op)]}= -> {SYMBOL[new]}=", ("aug", index, new)))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            out.append((line, f"{node.value} -> {not node.value}", ("const", index, not node.value)))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            out.append((line, f"{node.value} -> {node.value + 1}", ("const", index, node.value + 1)))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append((line, "return None", ("return", index)))
        elif isinstance(node, (ast.Continue, ast.Break)):
            out.append((line, f"{type(node).__name__.lower()} dropped", ("pass", index)))
    return out


def apply(text: str, how: tuple) -> str:
    """The module's source with one mutation: only the mutated statement (or, in a compound
    statement, its header expression) is rewritten by ast.unparse; the rest stays byte for byte,
    so line numbers and the other code are the original's."""
    tree = ast.parse(text)
    nodes = list(ast.walk(tree))
    kind, index = how[0], how[1]
    node = nodes[index]
    lines = text.splitlines(keepends=True)
    if kind == "pass":
        return _splice(lines, _span(node), "pass")
    stmt = next(s for s in nodes if isinstance(s, ast.stmt) and _within(node, s)
                and not any(isinstance(c, ast.stmt) and _within(node, c) for c in ast.iter_child_nodes(s)))
    header = None
    if any(isinstance(c, ast.stmt) for c in ast.iter_child_nodes(stmt)):  # compound: the header expression
        header = next((e for e in _header_exprs(stmt) if _within(node, e)), None)
        if header is None:
            raise ValueError("mutation in a header this script does not rewrite")
    span = _span(header if header is not None else stmt)
    holder = ast.Expression(body=header) if header is not None else stmt
    if kind == "cmp":
        node.ops[how[2]] = how[3]()
    elif kind in ("bool", "binop", "aug"):
        node.op = how[2]()
    elif kind == "not":
        _replace(holder, node, node.operand)
    elif kind == "const":
        node.value = how[2]
    elif kind == "return":
        node.value = ast.Constant(None)
    if header is not None:
        return _splice(lines, span, "(" + ast.unparse(holder.body) + ")")
    return _splice(lines, span, ast.unparse(stmt))


def _within(node, root) -> bool:
    return any(n is node for n in ast.walk(root))


def _span(node) -> tuple[int, int, int, int]:
    return node.lineno, node.col_offset, node.end_lineno, node.end_col_offset


def _header_exprs(stmt) -> list:
    """The expressions a compound statement's header holds (never its body)."""
    if isinstance(stmt, (ast.If, ast.While)):
        return [stmt.test]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in stmt.items]
    return []


def _replace(root, old, new) -> None:
    for parent in ast.walk(root):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return
    raise ValueError("node not found")


def _splice(lines: list[str], span: tuple[int, int, int, int], new: str) -> str:
    """Replace the source span (line, col, end line, end col, as ast gives them) with ``new``."""
    line, col, end_line, end_col = span
    start, end = line - 1, end_line - 1
    # ast's columns count UTF-8 bytes
    head = lines[start].encode()[:col].decode()
    tail = lines[end].encode()[end_col:].decode()
    return "".join(lines[:start]) + head + new + tail + "".join(lines[end + 1:])


def prepare_copy(dest: Path) -> None:
    (ROOT / ".cache").mkdir(exist_ok=True)
    (dest / ".cache").symlink_to(ROOT / ".cache")  # the tests' Go build cache: shared, never mutated
    if (ROOT / ".venv").exists():  # scripts the tests run call .venv/bin/python (PYTHONPATH still picks the copy)
        (dest / ".venv").symlink_to(ROOT / ".venv")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def run_tests(copy_root: Path, tests: list[str], timeout: float, lock: str | None = None,
              each: dict[str, float] | None = None) -> tuple[str, float, str]:
    """Each entry of ``tests`` in its own pytest run (an entry's ``-k`` selects in its file only), in
    order, up to the first failure: ("passed" | "failed" | "timeout" | "error …", seconds, what failed).
    With ``lock``, the whole run holds that file's exclusive flock: two mutation runs whose tests trace
    (bpftrace's uprobes on ld.so make lldb's and DTrace's probes refuse) then take turns, and no
    mutant is counted killed by another run's tracer. ``each``: a limit per entry (a test that takes a
    second unmutated and spins for minutes under a mutant is a timeout long before the mutant's whole
    limit). Each pytest runs in its own session: a mutant
    whose forked child signals its process group (ptrace_launch's `pid == 0` turned) ends that
    pytest, not this run."""
    if lock:
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            return run_tests(copy_root, tests, timeout, each=each)
    env = dict(os.environ, PYTHONPATH=str(copy_root), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)  # a missing capability skips, as it would locally
    t0 = time.monotonic()
    for entry in tests:
        left = timeout - (time.monotonic() - t0)
        if each and entry in each:
            left = min(left, each[entry])
        # a session of its own: on a timeout the whole group goes, not only pytest (a mutant that spins
        # leaves `gotrace bind` children behind otherwise, spinning on the shared cores for good)
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-x", "-q", "--tb=no", "-p", "no:cacheprovider",
                                 *shlex.split(entry)], cwd=copy_root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return "timeout", time.monotonic() - t0, entry
        out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if out.returncode == 0:
            continue
        failed = next((line.split(" ", 1)[1].split(" - ")[0] for line in out.stdout.splitlines()
                       if line.startswith(("FAILED ", "ERROR "))), entry)
        if out.returncode in (1, 2, 3):  # tests failed; collection (an import) failed; pytest's internal error
            return "failed", time.monotonic() - t0, failed
        tail = out.stdout.strip().splitlines()[-1:] or [out.stderr.strip()[-200:]]
        return f"error {out.returncode}: {tail[0]}", time.monotonic() - t0, failed
    return "passed", time.monotonic() - t0, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", help="a module of TESTS, e.g. tracer/analysis/budgets.py")
    ap.add_argument("--tests", nargs="*", help="the tests to run instead of the mapped ones")
    ap.add_argument("--only", help="mutant numbers to run, comma-separated")
    ap.add_argument("--sample", type=int, help="run this many of the mutants, drawn at random (seeded by the "
                    "module's name: the same draw every time), for a module too big to run whole")
    ap.add_argument("--json", help="write the mutants and their status here")
    ap.add_argument("--lock", help="hold this file's flock while tests run (e.g. /tmp/gotrace-trace.lock), so "
                    "concurrent mutation runs whose tests trace take turns instead of failing each other")
    ap.add_argument("--list", action="store_true", help="print the module -> tests mapping and the mutant counts")
    args = ap.parse_args(argv)
    if args.list:
        for mod, tests in TESTS.items():
            print(f"{mod}  ({len(mutations((ROOT / mod).read_text()))} mutants)  <- {' '.join(tests)}")
        return 0
    if not args.module:
        ap.error("--module is needed (or --list)")
    mod = args.module
    tests = args.tests or TESTS.get(mod)
    if not tests:
        ap.error(f"no tests mapped to {mod}: give --tests")
    text = (ROOT / mod).read_text()
    found = mutations(text)
    wanted = {int(x) for x in args.only.split(",")} if args.only else None
    if args.sample and wanted is None and args.sample < len(found):
        wanted = set(random.Random(mod).sample(range(1, len(found) + 1), args.sample))
    with tempfile.TemporaryDirectory(prefix="gotrace-mutation-") as tmp:
        root = Path(tmp)
        prepare_copy(root)
        target = root / mod
        # the tests, fastest first, each timed once on the unmutated code (they must pass there)
        timed = []
        for t in tests:
            status, took, _f = run_tests(root, [t], timeout=3600, lock=args.lock)
            if status != "passed":
                print(f"{mod}: {t} does not pass on the unmutated code ({status}): fix that first", file=sys.stderr)
                return 2
            timed.append((took, t))
        order = [t for _took, t in sorted(timed)]
        limit = 3 * sum(took for took, _t in timed) + 60
        each = {t: 10 * took + 30 for took, t in timed}  # a test ten times its own time (and 30 s) is spinning
        print(f"{mod}: {len(found)} mutants; tests {', '.join(f'{t} ({took:.0f} s)' for took, t in sorted(timed))}; "
              f"limit {limit:.0f} s a mutant", flush=True)
        results = []
        lines = text.splitlines()
        for number, (line, change, how) in enumerate(found, start=1):
            if wanted is not None and number not in wanted:
                continue
            m = Mutant(number, line, change, lines[line - 1].strip() if line else "")
            try:
                mutated = apply(text, how)
                compile(mutated, mod, "exec")
            except (SyntaxError, ValueError) as exc:
                m.status = f"not made ({exc.__class__.__name__})"
                results.append(m)
                print(f"  #{number:<4} skipped  {mod}:{line}  {change}  ({m.status})", flush=True)
                continue
            target.write_text(mutated)
            try:
                status, m.seconds, m.failed = run_tests(root, order, timeout=limit, lock=args.lock, each=each)
            finally:
                target.write_text(text)
            m.status = {"failed": "killed", "passed": "SURVIVED"}.get(status, status)
            results.append(m)
            print(f"  #{number:<4} {m.status:<9} {mod}:{line}  {change:<16} | {m.source[:80]}"
                  + (f"  [{m.failed}]" if m.failed else ""), flush=True)
    made = [m for m in results if not m.status.startswith("not made")]
    killed = [m for m in made if m.status in ("killed", "timeout")]
    survivors = [m for m in made if m.status == "SURVIVED"]
    errors = [m for m in made if m.status.startswith("error")]
    score = len(killed) / len(made) if made else 0.0
    print(f"{mod}: {len(killed)} of {len(made)} mutants killed ({score:.0%}), {len(survivors)} survived"
          + (f", {len(errors)} errors" if errors else "")
          + (f" (a sample of {len(wanted)} of the {len(found)} mutants)" if args.sample and wanted else ""))
    for m in survivors:
        print(f"  survived #{m.number} {mod}:{m.line}  {m.change} | {m.source}")
    if args.json:
        Path(args.json).write_text(json.dumps({"module": mod, "tests": order, "killed": len(killed),
                                               "mutants": len(made), "score": score,
                                               "results": [asdict(m) for m in results]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
