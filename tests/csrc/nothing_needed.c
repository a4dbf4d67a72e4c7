/* A dynamically linked program that needs nothing: no libc, no DT_NEEDED, no undefined symbol.
 * It has PT_INTERP (a PIE: the kernel maps ld.so, which relocates it and starts it) and exits 0
 * by a system call. Nothing asks for ld.so by name, so the interpreter is in the process only
 * because the kernel mapped it.
 *
 * Built by tests/test_oracle_scope.py:
 *   gcc -nostdlib -fPIE -pie -o nothing_needed nothing_needed.c */
void _start(void) {
#if defined(__x86_64__)
    __asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
#elif defined(__aarch64__)
    __asm__ volatile("mov x8, #93\n\tmov x0, #0\n\tsvc #0");
#else
#error "exit(0) by a system call: x86_64 and aarch64 only"
#endif
}
