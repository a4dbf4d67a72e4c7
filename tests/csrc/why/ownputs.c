/* ownputs.c — libownputs.so, for dlopen (opener.c): defines a puts() of its own and calls puts() from
 * ownputs(): the call's lookup searches the global scope first, where libc.so.6's puts is, so the
 * plugin's own definition is passed over (interposed) and the real puts prints. Returns 'y' when the
 * call reached libc's puts (its own returns -7), 'n' when it reached its own. */
#include <stdio.h>

int puts(const char *s)
{
	(void)s;
	return -7;
}

int ownputs(void)
{
	return puts("from the plugin") == -7 ? 'n' : 'y';
}
