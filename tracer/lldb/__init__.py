"""lldb: the debugger backend and gotrace's commands inside lldb.

loader.py finds lldb's Python bindings; recorder.py turns breakpoint stops on
ld.so's lookup into binding rows; driver.py launches or attaches a process
and runs the event loop for `gotrace bind --backend lldb`; live.py reads
image slides and GOT slots of the process lldb holds; lldb_commands.py and
gotrace_lldb.py are the `gotrace` command inside lldb.
"""
