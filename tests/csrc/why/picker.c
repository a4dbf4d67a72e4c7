/* picker.c — calls pick() and liba's a_pick(); linked against libb.so before liba.so, so
 * the global scope is: picker, [LD_PRELOAD objects], libb.so, liba.so, libc.so.6 … */
#include <stdio.h>

extern int pick(void);
extern int a_pick(void);

int main(void)
{
	printf("pick=%c a_pick=%c\n", pick(), a_pick());
	return 0;
}
