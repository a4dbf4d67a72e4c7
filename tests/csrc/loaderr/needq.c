/* A library that needs libq's q_new@Q_2 and an undefined function: dlopen'ed, each of glibc's dlerror forms. */
int q_new(void);
int nowhere(void);
int use_q(void) { return q_new(); }
int use_nowhere(void) { return nowhere(); }
