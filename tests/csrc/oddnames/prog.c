/* Calls libodd.so's oddly named functions through the PLT and prints their sum:
 * the program's own output says each call ran (1+1 + 1+2 + 1+3 = 9). */
#include <stdio.h>

int paren(int x) __asm__("\"odd(paren)\"");
int comma(int x) __asm__("\"odd,comma\"");
int both(int x) __asm__("\"odd, both\"");

int main(void)
{
    printf("%d\n", paren(1) + comma(1) + both(1));
    return 0;
}
