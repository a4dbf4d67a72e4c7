/* hi.c — calls puts(): under LD_PRELOAD=libnext.so, libnext's puts. */
#include <stdio.h>

int main(void)
{
	puts("hi");
	return 0;
}
