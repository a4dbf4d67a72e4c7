/* A program with no libc and no DT_NEEDED that binds symbols of its own: answer() through its PLT
 * (R_X86_64_JUMP_SLOT), counter through its GOT (R_X86_64_GLOB_DAT).
 *
 * Built by tests/test_oracle_kinds.py as an executable shared object:
 *   gcc -fPIC -nostdlib -shared -Wl,-e,_start -Wl,-z,lazy -o selfbind selfbind.c
 * ld.so loads it (PT_INTERP below), relocates it and transfers control to _start; with no libc,
 * LD_DEBUG prints neither "initialize program" nor "transferring control" for it. It writes
 * "MARK call" on stderr just before calling answer(): with LD_DEBUG=bindings on the same stderr,
 * a binding printed before the mark was made while ld.so relocated the program, one after it by
 * the call. The exit status is answer() + counter, 10. */
#if defined(__x86_64__)
const char interp[] __attribute__((section(".interp"))) = "/lib64/ld-linux-x86-64.so.2";
#endif

int counter = 3;

__attribute__((noinline)) int answer(void) { return 7; }

static void mark(void) {
    static const char text[] = "MARK call\n";
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(1), "D"(2), "S"(text), "d"(sizeof text - 1) : "rcx", "r11", "memory");
}

void _start(void) {
    mark();
    int r = answer() + counter;
    __asm__ volatile("mov $60, %%eax; syscall" :: "D"(r) : "rax", "rcx", "r11", "memory");
    for (;;) {
    }
}
