/*
 * A kselftest-style test that cannot run here: it prints TAP and exits
 * with KSFT_SKIP (4), which krepro reports as skip (exit 125).
 *
 *   cc -static -o ksft_skip examples/c/ksft_skip.c && cargo xtask run --exec ksft_skip
 */
#include <stdio.h>

#define KSFT_SKIP 4

int main(void)
{
	printf("TAP version 13\n1..1\nok 1 # SKIP this example always skips\n");
	return KSFT_SKIP;
}
