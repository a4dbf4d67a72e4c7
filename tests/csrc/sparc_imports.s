! A SPARC library's imports of every dynamic kind that names a symbol, for tests/test_elf_corpus.py:
! a GOT word for ext (-KPIC turns %hi/%lo into GOT relocations: R_SPARC_GLOB_DAT in the library),
! a general-dynamic TLS variable tv (R_SPARC_TLS_DTPMOD32/DTPOFF32, or the 64-bit pair), the
! __tls_get_addr call (R_SPARC_JMP_SLOT), and a pointer to a local ifunc (R_SPARC_IRELATIVE, which
! GNU ld writes with no symbol). Assembled by sparc64-linux-gnu-as -32 / -64, linked ld -shared.
	.text
	.align 4
	.globl get
	.type get, #function
get:
	save %sp, -96, %sp
	sethi %hi(ext), %g1
	or %g1, %lo(ext), %g1
	ld [%l7 + %g1], %g1
	sethi %tgd_hi22(tv), %l1
	add %l1, %tgd_lo10(tv), %l1
	add %l7, %l1, %o0, %tgd_add(tv)
	call __tls_get_addr, %tgd_call(tv)
	nop
	ret
	restore
	.type sel, #function
sel:
	retl
	nop
	.type ifn, %gnu_indirect_function
	.set ifn, sel
	.data
	.align 4
	.globl ptr
ptr:
	.word ifn
