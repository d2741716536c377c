/* Pseudo-terminal and console-socket helpers (see pty.h).  Nothing here blocks: the console
 * socket is accepted and read with non-blocking calls once the runtime has sent the master. */
#include "guest/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/xalloc.h"

int pty_open(int *master, int *slave, struct err *e)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	char name[128];

	if (m < 0)
		return err_sys(e, -errno, "posix_openpt");
	if (grantpt(m) < 0 || unlockpt(m) < 0)
		return err_sys(e, -errno, "unlock pty");
	int rc = ptsname_r(m, name, sizeof(name));
	if (rc != 0)
		return err_sys(e, -rc, "ptsname");
	int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return err_sys(e, -errno, "open %s", name);
	*slave = s;
	*master = steal_fd(&m);
	return 0;
}

int pty_set_winsize(int fd, uint16_t rows, uint16_t cols, struct err *e)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
		return err_sys(e, -errno, "set window size");
	return 0;
}

int console_socket_listen(const char *path, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "console socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, -errno, "console socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_sys(e, -errno, "bind console socket %s", path);
	if (listen(fd, 4) < 0)
		return err_sys(e, -errno, "listen on console socket %s", path);
	return steal_fd(&fd);
}

int console_socket_recv(int listen_fd, struct err *e)
{
	_cleanup_close_ int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return err_sys(e, -errno, "accept on console socket");
	}
	char data[256];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = ctl.buf,
	    .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;
	do {
		n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return err_sys(e, -errno, "receive on console socket");
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
			return fd;
		}
	}
	return err_set(e, -EPROTO, "console socket message carried no fd");
}
