"""The lldb backend: breakpoints on ld.so's lookup through lldb's SB API, one process.

loader.py finds lldb's Python bindings; recorder.py turns breakpoint stops
into binding rows (the lldb command module in lldb_plugin/ drives the same
recorder); driver.py launches or attaches and runs the event loop;
backend.py is the capture backend; tables.py the session rows.
"""
