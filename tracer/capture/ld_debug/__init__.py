"""The no-root backend: glibc's own LD_DEBUG account of every binding, one log per process.

backend.py runs the command with LD_DEBUG and tails the logs; parse.py turns
a process's log into binding rows and its images.
"""
