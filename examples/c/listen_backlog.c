/*
 * The listen_backlog repro as a plain C program, for `--exec`:
 * with tcp_syncookies=0, a TCP connect to a listen(fd, 0) socket must be
 * established within 3 s (Linux 4.4, "tcp: remove max_qlen_log").
 *
 *   cc -static -O2 -o listen_backlog examples/c/listen_backlog.c
 *   cargo xtask run --exec listen_backlog
 *
 * Exit status: 0 pass, 1 fail (the bug), 4 skip (KSFT_SKIP).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/proc/sys/net/ipv4/tcp_syncookies", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "0", 1) != 1)
			perror("listen_backlog: tcp_syncookies=0");
		close(fd);
	} /* no such sysctl: the kernel has no syncookies, which is what we want */

	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0) {
		perror("listen_backlog: socket");
		return 4;
	}
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) || listen(l, 0) ||
	    getsockname(l, (struct sockaddr *)&addr, &len)) {
		perror("listen_backlog: bind/listen");
		return 4;
	}

	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c, (struct sockaddr *)&addr, sizeof(addr))) {
		printf("listen_backlog: connect to a listen(fd, 0) socket failed: %s\n", strerror(errno));
		return 1;
	}
	printf("listen_backlog: connected to port %d with backlog 0\n", ntohs(addr.sin_port));
	return 0;
}
