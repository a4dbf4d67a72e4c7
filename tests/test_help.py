"""`--help` reads well at 80 and at 120 columns: nothing wider than the terminal, every example
line intact, every command summarised on one line, and nothing eaten as rich markup."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tracer.commands import helptext

COMMANDS = ["bind", "report", "compare", "plot", "export", "bench-bind", "inspect", "stubs", "doctor",
            "libcheck", "lldb-init", "aslr", "import", "check", "why", "explain", "agent"]


def _help(*args: str, columns: int) -> str:
    env = dict(os.environ, COLUMNS=str(columns), TERM="dumb")
    env.pop("NO_COLOR", None)
    out = subprocess.run([sys.executable, "-m", "tracer", *args, "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _paragraphs(doc: str) -> list[str]:
    """The docstring's paragraphs as a reader sees them, split here with nothing from tracer: blank
    lines part them; after the summary line, a paragraph indented deeper than the docstring's prose
    is an example block, kept line by line (minus the prose's indentation); prose is its words."""
    lines = doc.expandtabs().splitlines()
    body = [line for line in lines[1:] if line.strip()]
    margin = min((len(line) - len(line.lstrip()) for line in body), default=0)
    paras, cur = [], []
    for line in [lines[0].strip()] + [line[margin:].rstrip() for line in lines[1:]] + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    return ["\n".join(p) if p[0].startswith(" ") else " ".join(" ".join(p).split()) for p in paras]


def _docs() -> dict[str, str]:
    from tracer.commands.app import app

    return {c.name: c.callback.__doc__ for c in app.registered_commands}


def test_helptext_unwraps_prose_and_keeps_blocks():
    doc = """Summary line.

    A paragraph wrapped
    by hand, with [default: x] in it.

      gotrace a   # an example
      gotrace b
    """
    assert helptext.paragraphs(doc) == ["Summary line.", "A paragraph wrapped by hand, with [default: x] in it.",
                                        "  gotrace a   # an example\n  gotrace b"]
    with pytest.raises(ValueError, match="prose paragraph"):  # Typer would flatten the block: refused
        helptext.help_text(doc)
    doc += "\n    A closing paragraph.\n"
    assert r"\[default: x]" in helptext.help_text(doc) and helptext.summary(doc) == "Summary line."


@pytest.mark.parametrize("columns", [80, 120])
def test_top_level_help_lists_each_command_on_one_line(columns):
    text = _help(columns=columns)
    docs = _docs()
    assert sorted(docs) == sorted(COMMANDS)
    for line in text.splitlines():
        assert len(line) <= columns, line
    for name, doc in docs.items():
        summary = _paragraphs(doc)[0]
        row = next(line for line in text.splitlines() if re.match(rf"^│ {re.escape(name)} ", line))
        assert summary in row, (name, row)  # the whole summary, unwrapped, on the command's own row


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_fits_and_keeps_its_examples(command, columns):
    text = _help(command, columns=columns)
    lines = [line.rstrip() for line in text.splitlines()]
    for line in lines:
        assert len(line) <= columns, line
    doc = _docs()[command]
    paras = _paragraphs(doc)
    assert len(paras) >= 2, (command, paras)
    for para in paras:
        if para.startswith(" "):  # an example block: every line as written, never rewrapped
            for example in para.splitlines():
                assert any(line == " " + example.rstrip() for line in lines), (example, text)
    prose = " ".join(" ".join(lines).split())
    for para in paras:
        if not para.startswith(" "):  # prose: every word, in order, wrapped to the terminal
            assert " ".join(para.split()) in prose, para


def test_defaults_and_argument_help_are_shown_not_taken_for_markup():
    text = " ".join(_help("bind", columns=120).split())
    assert "gotrace-sessions/<time>-<cmd>" in text
    assert "The command and its arguments, after --." in text
    assert "go env GOARCH" in " ".join(_help("libcheck", columns=120).split())
    assert "A session directory written by `gotrace bind`." in " ".join(_help("report", columns=120).split())
