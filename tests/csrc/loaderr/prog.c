/* Needs libq.so.1's q_new@Q_2: run against release 1 it meets each of glibc's loader errors. */
#include <stdio.h>
int q_old(void);
int q_new(void);
int main(int argc, char **argv) {
    printf("%d\n", argc > 1 ? q_old() : q_new());
    return 0;
}
