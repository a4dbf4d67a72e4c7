// cgo-hello is the workload gotrace's quickstart traces: a small cgo program
// whose build runs the C toolchain (gcc, cc1, as, ld) and whose binary binds
// libm and libc symbols at run time.
//
// It links libm through #cgo LDFLAGS and imports net and os/user so that the
// cgo DNS and user-lookup resolvers are compiled in as well.
package main

/*
#cgo LDFLAGS: -lm
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static double hypotenuse(double a, double b) { return sqrt(a*a + b*b); }
static void greet(const char *who) { printf("hello from C, %s\n", who); fflush(stdout); }
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"unsafe"
)

func main() {
	name := "gopher"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	C.greet(cs)
	fmt.Printf("hypotenuse(3, 4) = %.1f\n", float64(C.hypotenuse(3, 4)))
	if addrs, err := net.LookupHost("localhost"); err == nil {
		fmt.Println("localhost resolves to", len(addrs), "address(es)")
	}
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		os.Exit(3)
	}
}
