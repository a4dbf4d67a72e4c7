"""gotrace inside lldb: `command script import …/gotrace_lldb.py` adds `gotrace aslr|stubs|bind`.

The UI only: gotrace_lldb.py bootstraps the module inside lldb's own Python,
commands.py parses and prints, live.py reads image slides and GOT slots of the
process lldb holds. Recording uses the lldb backend's recorder (capture/lldb/).
"""
