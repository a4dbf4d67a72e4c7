"""Result dicts and objects as rich text, one module per command family.

Library calls return plain data; commands hand it here. report.py (report and
bind's summary), compare.py, bench_bind.py, binary.py (inspect, stubs),
aslr.py, checks.py (doctor, libcheck), live.py (the status line while a
command runs); format.py holds the shared number and table rules.
"""
