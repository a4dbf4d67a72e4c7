/* libq, release 1: defines q_old only (version Q_1). */
int q_old(void) { return 1; }
