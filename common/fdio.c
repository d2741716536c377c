/* fd helpers shared by transports, relays and tests. */
#include "common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int fd_set_flags(int fd, bool nonblock, struct err *e)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return err_sys(e, -errno, "fcntl(F_GETFL) fd=%d", fd);
	if (nonblock && !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return err_sys(e, -errno, "fcntl(F_SETFL) fd=%d", fd);
	int fdf = fcntl(fd, F_GETFD);
	if (fdf < 0 || fcntl(fd, F_SETFD, fdf | FD_CLOEXEC) < 0)
		return err_sys(e, -errno, "fcntl(FD_CLOEXEC) fd=%d", fd);
	return 0;
}

ssize_t fd_read(int fd, void *p, size_t n, struct err *e)
{
	for (;;) {
		ssize_t r = read(fd, p, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return err_sys(e, -errno, "read fd=%d", fd);
	}
}

ssize_t fd_write(int fd, const void *p, size_t n, struct err *e)
{
	for (;;) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = write(fd, p, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return err_sys(e, -errno, "write fd=%d", fd);
	}
}

static int wait_fd(int fd, short ev)
{
	struct pollfd pfd = {.fd = fd, .events = ev};
	int r;
	do
		r = poll(&pfd, 1, -1);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int fd_write_all(int fd, const void *p, size_t n, struct err *e)
{
	const char *c = p;
	while (n > 0) {
		ssize_t r = fd_write(fd, c, n, e);
		if (r == IO_AGAIN) {
			if (wait_fd(fd, POLLOUT) < 0)
				return err_sys(e, -errno, "poll fd=%d", fd);
			continue;
		}
		if (r < 0)
			return (int)r;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int fd_read_all(int fd, void *p, size_t n, struct err *e)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = fd_read(fd, c, n, e);
		if (r == IO_AGAIN) {
			if (wait_fd(fd, POLLIN) < 0)
				return err_sys(e, -errno, "poll fd=%d", fd);
			continue;
		}
		if (r == IO_EOF)
			return err_set(e, -EPIPE, "read fd=%d: unexpected end of file", fd);
		if (r < 0)
			return (int)r;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
