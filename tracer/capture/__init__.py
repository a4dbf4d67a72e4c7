"""Record: run a command under a backend and stream its bindings into a session.

run.py is the library's ``bind()``; choose.py picks the backend; backend.py is
the interface every backend package (bpftrace/, ld_debug/, lldb/) implements;
child.py starts the traced command held at a gate; sink.py writes the event
chunks; translated/ runs a command as another architecture. Nothing here is
needed to read a saved session (that is session/ and analysis/).
"""
