/* timeifunc.c — calls time() and gettimeofday(): x86-64 glibc's are IFUNCs whose resolvers ask the vDSO
 * for __vdso_time and __vdso_gettimeofday (dl_vdso_vsym, from libc) while ld.so makes the binding of
 * time or gettimeofday: lazily at the first call, or at load when linked -z now. It calls no dlsym. */
#include <sys/time.h>
#include <time.h>

int main(void)
{
	struct timeval tv;
	time_t t = time(NULL);
	gettimeofday(&tv, NULL);
	return t > 0 && tv.tv_sec > 0 ? 0 : 1;
}
