/* libq, release 2: adds q_new at version Q_2, which prog.c calls. */
int q_old(void) { return 1; }
int q_new(void) { return 2; }
