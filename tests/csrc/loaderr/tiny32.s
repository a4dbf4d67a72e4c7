/* An i386 shared object for "wrong ELF class": assembled and linked without a 32-bit libc. */
    .text
    .globl q_old
q_old:
    movl $1, %eax
    ret
