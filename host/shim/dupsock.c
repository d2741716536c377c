/* CreateDuplicateSocket on Linux: decode the (pid, fd) protocol_info, check the owner's uids
 * and the socket, and take a copy with pidfd_getfd.  The owner is pinned with a pidfd before
 * its uids are read from /proc, and the pidfd is probed afterwards, so a pid recycled in
 * between is refused rather than trusted.  Layout and rules: dupsock.h. */
#include "host/shim/dupsock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"

void dupsock_info_encode(const struct dupsock_info *info, uint8_t out[DUPSOCK_INFO_LEN])
{
	memcpy(out, DUPSOCK_MAGIC, 4);
	le32_put(out + 4, DUPSOCK_VERSION);
	le32_put(out + 8, info->pid);
	le32_put(out + 12, info->fd);
}

int dupsock_info_decode(const uint8_t *p, size_t len, struct dupsock_info *out, struct err *e)
{
	if (len != DUPSOCK_INFO_LEN)
		return err_set(e, -EINVAL,
		               "protocol info is %zu bytes, want %d (\"FRYS\", version, pid, fd)",
		               len, DUPSOCK_INFO_LEN);
	if (memcmp(p, DUPSOCK_MAGIC, 4) != 0)
		return err_set(e, -EINVAL,
		               "protocol info magic is %02x%02x%02x%02x, want \"FRYS\" (a Linux "
		               "ferry socket descriptor)",
		               p[0], p[1], p[2], p[3]);
	uint32_t version = le32_get(p + 4);
	if (version != DUPSOCK_VERSION)
		return err_set(e, -EINVAL, "protocol info version %u is not supported (want %u)",
		               version, DUPSOCK_VERSION);
	uint32_t pid = le32_get(p + 8), fd = le32_get(p + 12);
	if (pid == 0 || pid > INT32_MAX)
		return err_set(e, -EINVAL, "protocol info pid %u is out of range", pid);
	if (fd > INT32_MAX)
		return err_set(e, -EINVAL, "protocol info fd %u is out of range", fd);
	out->pid = pid;
	out->fd = fd;
	return 0;
}

static bool uid_allowed(const struct dupsock_policy *policy, uid_t uid)
{
	if (!policy || policy->n_uids == 0)
		return uid == geteuid() || uid == 0;
	for (size_t i = 0; i < policy->n_uids; i++)
		if (policy->uids[i] == uid)
			return true;
	return false;
}

/* The real and effective uids of pid, from the "Uid:" line of /proc/PID/status. */
static int read_uids(uint32_t pid, uid_t *ruid, uid_t *euid, struct err *e)
{
	char path[64], text[8192];
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "read the owner of process %u", pid);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, text + n, sizeof(text) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(e, -errno, "read the owner of process %u", pid);
		if (r == 0 || (n += (size_t)r) == sizeof(text) - 1)
			break;
	}
	text[n] = '\0';
	const char *line = strstr(text, "\nUid:");
	unsigned long r = 0, ef = 0;
	char *end;
	if (line) {
		r = strtoul(line + 5, &end, 10);
		if (end != line + 5)
			ef = strtoul(end, &end, 10);
	}
	if (!line || r > UINT_MAX || ef > UINT_MAX)
		return err_set(e, -EIO, "no uid line in the status of process %u", pid);
	*ruid = (uid_t)r;
	*euid = (uid_t)ef;
	return 0;
}

static int sockopt_int(int fd, int opt, int *out)
{
	socklen_t len = sizeof(*out);
	return getsockopt(fd, SOL_SOCKET, opt, out, &len) < 0 ? -errno : 0;
}

/* What makes a copied fd acceptable as the migration socket. */
static int check_socket(int fd, const struct dupsock_info *info, struct err *e)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_sys(e, -errno, "stat fd %u of process %u", info->fd, info->pid);
	if (!S_ISSOCK(st.st_mode))
		return err_set(e, -EINVAL, "fd %u of process %u is not a socket", info->fd,
		               info->pid);
	int domain = 0, type = 0, listening = 0, soerr = 0;
	if (sockopt_int(fd, SO_DOMAIN, &domain) < 0 || sockopt_int(fd, SO_TYPE, &type) < 0 ||
	    sockopt_int(fd, SO_ACCEPTCONN, &listening) < 0 || sockopt_int(fd, SO_ERROR, &soerr) < 0)
		return err_sys(e, -errno, "inspect socket fd %u of process %u", info->fd,
		               info->pid);
	if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX && domain != AF_VSOCK)
		return err_set(
		    e, -EINVAL,
		    "socket fd %u of process %u has address family %d (want inet, inet6, "
		    "unix or vsock)",
		    info->fd, info->pid, domain);
	if (type != SOCK_STREAM)
		return err_set(e, -EINVAL,
		               "socket fd %u of process %u is not a stream socket (type %d)",
		               info->fd, info->pid, type);
	if (listening)
		return err_set(e, -EINVAL, "socket fd %u of process %u is listening, not connected",
		               info->fd, info->pid);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return err_set(e, -ENOTCONN, "socket fd %u of process %u is not connected",
		               info->fd, info->pid);
	if (soerr != 0)
		return err_set(e, -EINVAL, "socket fd %u of process %u has a pending error: %s",
		               info->fd, info->pid, strerror(soerr));
	return 0;
}

static int take(const struct dupsock_info *info, const struct dupsock_policy *policy, struct err *e)
{
	_cleanup_close_ int pidfd = pidfd_open((pid_t)info->pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? err_set(e, -ESRCH, "process %u does not exist", info->pid)
		                      : err_sys(e, -errno, "pidfd_open of process %u", info->pid);
	uid_t ruid, euid;
	int r = read_uids(info->pid, &ruid, &euid, e);
	if (r < 0)
		return r;
	if (!uid_allowed(policy, ruid) || !uid_allowed(policy, euid))
		return err_set(
		    e, -EPERM,
		    "process %u runs as uid %u (effective %u), which may not hand a socket "
		    "to this shim",
		    info->pid, (unsigned)ruid, (unsigned)euid);
	_cleanup_close_ int fd = pidfd_getfd(pidfd, (int)info->fd, 0);
	if (fd < 0) {
		if (errno == EBADF)
			return err_set(e, -EBADF, "process %u has no fd %u", info->pid, info->fd);
		if (errno == ESRCH)
			return err_set(e, -ESRCH, "process %u exited", info->pid);
		return err_sys(e, -errno, "take fd %u of process %u", info->fd, info->pid);
	}
	/* the uids read above belong to the pinned process only if it is still alive now */
	if (pidfd_send_signal(pidfd, 0, NULL, 0) < 0)
		return err_set(e, -ESRCH, "process %u exited while its socket was being taken",
		               info->pid);
	r = check_socket(fd, info, e);
	if (r < 0)
		return r;
	return steal_fd(&fd);
}

int dupsock_take(const struct dupsock_info *info, const struct dupsock_policy *policy,
                 struct err *e)
{
	int r = take(info, policy, e);
	if (r < 0 && e)
		e->code = -EINVAL; /* every refusal is the caller's bad argument */
	return r < 0 ? -EINVAL : r;
}

int dupsock_from_protocol_info(const uint8_t *p, size_t len, const struct dupsock_policy *policy,
                               struct err *e)
{
	struct dupsock_info info;
	int r = dupsock_info_decode(p, len, &info, e);
	if (r < 0)
		return r;
	return dupsock_take(&info, policy, e);
}
