"""Translated runs: a command run as another architecture (qemu-user, Rosetta for Linux) and timed inside the guest.

binfmt.py finds (or registers) the translator, translation.py prepares a run
and tells afterwards which processes ran translated, guest_latency.py times
lookups inside the guest with a QEMU plugin.
"""
