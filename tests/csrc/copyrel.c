/* copyrel.c — a program that reads libc's variable stdout. Built -no-pie by the tests, the
 * executable holds a copy of stdout (readelf -r: R_X86_64_COPY), and libc's own references
 * to stdout bind to that copy (LD_DEBUG=bindings: libc.so.6 to the program). The copy is
 * libc's variable moved, not another definition taking its place: no interposition. */
#include <stdio.h>

int main(void)
{
	fputs("copy\n", stdout);
	return 0;
}
