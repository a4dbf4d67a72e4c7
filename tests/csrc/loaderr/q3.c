/* libq, a broken release: names version Q_2 but gives q_new at Q_1 (glibc's "relocation error"). */
int q_old(void) { return 1; }
int q_new(void) { return 2; }
int q_other(void) { return 3; }
