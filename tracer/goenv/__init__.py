"""The Go/cgo environment: doctor (go env against the machine), libcheck (the libraries a cgo
build links, and their architecture), bindbench (what binding costs per symbol, native and
translated, without a tracer)."""
