/* The program that copies copylib.c's data: position-dependent code reads shared_var and
 * shared_arr directly, so the linker reserves them in the program (readelf -r: R_ARM_COPY). */
extern int shared_var;
extern int shared_arr[4];

int _start(void) { return shared_var + shared_arr[1]; }
