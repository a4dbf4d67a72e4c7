/* libhelper.so: one function, called by libnest.so through a lazily bound PLT slot */
int helper_calls;
void helper(void) { helper_calls++; }
