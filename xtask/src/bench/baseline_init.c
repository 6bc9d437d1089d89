/* The C-init baseline of `cargo xtask bench`: the init people write by
 * hand for a boot test. Prints a line and powers off. */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	printf("baseline: ok\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
