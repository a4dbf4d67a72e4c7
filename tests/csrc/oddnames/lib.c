/* Functions whose ELF names hold the punctuation bpftrace's print of @b uses between fields:
 * "(" and ")" (deleted by the fast path's translate), "," without a space (turned into a tab),
 * ", " (both). Legal in ELF; gcc writes them with __asm__, quoted for gas (tests/test_odd_names.py). */
int paren(int x) __asm__("\"odd(paren)\"");
int comma(int x) __asm__("\"odd,comma\"");
int both(int x) __asm__("\"odd, both\"");

int paren(int x) { return x + 1; }
int comma(int x) { return x + 2; }
int both(int x) { return x + 3; }
