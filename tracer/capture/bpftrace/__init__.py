"""The bpftrace backend (root): uprobes on ld.so through dscripts/bindsnoop.bt, the whole process tree.

backend.py runs a capture; launch.py starts the script (one way, for every
caller); ../prelaunch.py starts it while the CLI still loads; decode.py turns its
records into session tables; bpf_map.py empties its binding map straight from
the kernel; btf.py finds the one kernel struct offset the script needs.
"""
