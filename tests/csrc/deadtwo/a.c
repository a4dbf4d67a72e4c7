/* deadtwo's libdta.so: reads a variable the program defines (see main.c) */
extern int main_value;

int a(void)
{
	return main_value;
}
