/* user.c — libuser.so: needs gone() from liblost.so (a global reference). */
extern int gone(void);
int use_gone(void) { return gone(); }
