/* deadtwo: a program that dies of a symbol lookup error while two of its providers are still
 * unrelocated. ld.so relocates the objects in reverse load order, itself last: libdta.so
 * (linked after libdtb.so, so relocated before it) binds main_value to this program and
 * libc binds to ld.so; then libdtb.so, linked -z now, fails on nowhere_fn: exit 127 before
 * this program or ld.so are relocated (tests/test_failures.py). */
int main_value = 7;
int a(void);
int b(void);

int main(void)
{
	return a() + b();
}
