/* needy.c — needs libnothere.so (found through DT_RUNPATH $ORIGIN/run when built), which the
 * tests then delete: ld.so searches every place in its order, finds it nowhere and stops the
 * program ("error while loading shared libraries", exit 127) before any lookup. */
extern int nothere(void);
int main(void) { return nothere(); }
