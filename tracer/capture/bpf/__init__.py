"""The bpf backend (root): gotrace's own BPF program on ld.so, loaded with libbpf, the whole process tree.

csrc/bindsnoop.bpf.c records what dscripts/bindsnoop.bt records, compiled once
(clang -target bpf, CO-RE); csrc/bindload.c loads it with libbpf and prints
the records in bindsnoop.bt's own format, so bpftrace's decoder reads them.
backend.py builds both (cached), starts the loader for the gated command,
and streams its output.
"""
