"""C programs gotrace ships as source and builds where they run (build.py caches them per source version):
the bench-bind probe (bindbench.c) and the QEMU plugin timing guest lookups (qemu_bindtime.c)."""
