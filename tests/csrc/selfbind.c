/* A program with no libc and no DT_NEEDED that binds a symbol of its own through its PLT.

Built by tests/test_oracle_kinds.py as an executable shared object:
  gcc -fPIC -nostdlib -shared -Wl,-e,_start -Wl,-z,lazy -o selfbind selfbind.c
ld.so loads it (PT_INTERP below), relocates it lazily and transfers control to _start; with
no libc, LD_DEBUG prints neither "initialize program" nor "transferring control" for it.
The exit status is answer()'s value, 7. */
#if defined(__x86_64__)
const char interp[] __attribute__((section(".interp"))) = "/lib64/ld-linux-x86-64.so.2";
#endif

__attribute__((noinline)) int answer(void) { return 7; }

void _start(void) {
    int r = answer();
    __asm__ volatile("mov $60, %%eax; syscall" :: "D"(r) : "rax", "rcx", "r11", "memory");
    for (;;) {
    }
}
