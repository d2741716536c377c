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

/* One read (wr false) or write, EINTR retried: > 0 bytes, IO_EOF (reads), IO_AGAIN, or -errno.
 * Writes go through send(MSG_NOSIGNAL) so a closed socket gives EPIPE, not SIGPIPE; files and
 * pipes (ENOTSOCK) fall back to write(2). */
static ssize_t fd_io(int fd, void *p, size_t n, bool wr, struct err *e)
{
	for (;;) {
		ssize_t r;
		if (!wr)
			r = read(fd, p, n);
		else if ((r = send(fd, p, n, MSG_NOSIGNAL)) < 0 && errno == ENOTSOCK)
			r = write(fd, p, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return err_sys(e, -errno, "%s fd=%d", wr ? "write" : "read", fd);
	}
}

ssize_t fd_read(int fd, void *p, size_t n, struct err *e)
{
	return fd_io(fd, p, n, false, e);
}

ssize_t fd_write(int fd, const void *p, size_t n, struct err *e)
{
	return fd_io(fd, (void *)p, n, true, e); /* not written to when wr */
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

/* Move exactly n bytes, polling while the fd would block. */
static int fd_io_all(int fd, char *c, size_t n, bool wr, struct err *e)
{
	while (n > 0) {
		ssize_t r = fd_io(fd, c, n, wr, e);
		if (r == IO_AGAIN) {
			if (wait_fd(fd, wr ? POLLOUT : POLLIN) < 0)
				return err_sys(e, -errno, "poll fd=%d", fd);
			continue;
		}
		if (r == IO_EOF && !wr)
			return err_set(e, -EPIPE, "read fd=%d: unexpected end of file", fd);
		if (r < 0)
			return (int)r;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int fd_write_all(int fd, const void *p, size_t n, struct err *e)
{
	return fd_io_all(fd, (char *)p, n, true, e); /* not written to when wr */
}

int fd_read_all(int fd, void *p, size_t n, struct err *e)
{
	return fd_io_all(fd, p, n, false, e);
}

long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
