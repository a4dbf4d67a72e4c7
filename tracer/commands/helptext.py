"""Command docstrings as help that reads well in any terminal width.

Typer's rich help keeps every line break of a docstring, so paragraphs
wrapped by hand at ~100 columns come out ragged in an 80-column terminal,
and rich takes ``[word ...]`` for markup and drops it. Here prose paragraphs
become single lines that rich wraps to the terminal; indented blocks
(examples) keep their lines exactly; brackets are escaped. The first
paragraph is the command's one-line summary in ``gotrace --help``.
"""
from __future__ import annotations

import inspect
import re

_MARKUP = re.compile(r"(?<!\\)\[(?=[a-zA-Z#/@])")  # what rich would read as the start of a tag


def escape(text: str) -> str:
    return _MARKUP.sub(r"\[", text)


def paragraphs(doc: str) -> list[str]:
    """Prose paragraphs joined into one line each; indented blocks kept line by line."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc or "")):
        lines = para.splitlines()
        if all(line.startswith((" ", "\t")) for line in lines):  # an example block
            out.append("\n".join(line.rstrip() for line in lines))
        else:
            out.append(" ".join(line.strip() for line in lines))
    return [p for p in out if p.strip()]


def help_text(doc: str) -> str:
    """The command's help: its summary, then every other paragraph as written.

    Typer dedents everything after the summary by the smallest indentation
    below its first line, so an example block keeps its indentation only if a
    prose paragraph follows the first one: a docstring without one is refused
    here, when the app is built, rather than shown flattened."""
    paras = paragraphs(doc)
    if any(p.startswith(" ") for p in paras) and not any(not p.startswith(" ") for p in paras[2:]):
        raise ValueError(f"help text {paras[0]!r}: its examples need a prose paragraph after the second one")
    return escape("\n\n".join(paras))


def summary(doc: str) -> str:
    """The first paragraph: the line `gotrace --help` lists the command with."""
    paras = paragraphs(doc)
    return escape(paras[0]) if paras else ""
