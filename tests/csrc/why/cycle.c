/* cycle.c — libcycone.so (-DONE) and libcyctwo.so, each needing the other (DT_NEEDED both ways, a
 * cycle glibc loads: elf/dl-deps.c loads a name once). one() lives in libcycone.so and calls two(),
 * two() in libcyctwo.so and calls one(): each one's lookup binds in the other. */
#ifdef ONE
extern int two(void);
int one(void) { return 1; }
int one_and_two(void) { return one() + two(); }
#else
extern int one(void);
int two(void) { return one() + 1; }
#endif
