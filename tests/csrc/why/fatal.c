/* fatal.c — a global reference (gone), a weak one (maybe: never defined, checked for NULL)
 * and one that stays defined (present). Linked -z now against liblost.so with gone(). */
#include <stdio.h>

extern int present(void);
extern int gone(void);
extern int maybe(void) __attribute__((weak));

int main(void)
{
	printf("%d %d %d\n", present(), gone(), maybe ? maybe() : 0);
	return 0;
}
