"""Loader errors as data: what dyld and glibc's ld.so print when a program cannot start or a
library cannot load, read from whatever text a user holds (a log, a crash report, a Python
traceback, a traced command's stderr) into :class:`record.LoadError` rows.

A room of its own: capture/ reads errors out of the logs it imports, analysis/ explains
them, and neither may import the other.
"""
