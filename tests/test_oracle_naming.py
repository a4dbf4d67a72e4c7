"""Objects named as compare, budgets and the report line them up: by file name, ld.so as one name.

The oracle is the definition: a missing object (None, or pandas' NaN for a missing value) has
no name; any other path is its last component; glibc's dynamic linker, whatever its file is
called on the architecture (ld-linux-x86-64.so.2, ld-linux-aarch64.so.1, ld64.so.2), is ld.so.
"""
from __future__ import annotations

import pytest

from tracer.analysis.naming import object_name


@pytest.mark.parametrize("path, name", [
    (None, None), (float("nan"), None),
    ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6"), ("libm.so.6", "libm.so.6"),
    ("/lib64/ld-linux-x86-64.so.2", "ld.so"), ("/lib/ld-linux-aarch64.so.1", "ld.so"), ("/lib64/ld64.so.2", "ld.so"),
    ("/usr/lib/libSystem.B.dylib", "libSystem.B.dylib"),
])
def test_an_object_is_named_by_its_file(path, name):
    assert object_name(path) == name
