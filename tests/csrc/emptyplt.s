# Empty .plt and .got.plt sections (nothing called through them), as an assembler writes them when
# asked: ld.lld-16 keeps both in its output at size 0 (readelf -SW), for tests/test_stubs.py.
	.section .plt,"ax",@progbits
	.section .got.plt,"aw",@progbits
	.text
	.globl _start
_start:
	ret
