/* deadtwo's libdtb.so: calls a function no object defines; linked -z now (see main.c) */
void nowhere_fn(void);

int b(void)
{
	nowhere_fn();
	return 0;
}
