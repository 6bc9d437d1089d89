/* The C-init baseline of `cargo xtask bench`: the init people write by
 * hand for a boot test. Prints a line and ends the VM: a restart, which
 * qemu -no-reboot turns into an exit on any kernel (a power-off needs ACPI,
 * which tinyconfig kernels lack). */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	printf("baseline: ok\n");
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
