/* The vsock shim: the blocking listen/accept/dial calls for every transport.  Address parsing
 * and formatting, the tcp: port rule and the Hyper-V service GUID rule live in vsock_addr.c
 * (pure, also built for Windows), the hybrid handshake line parsers in vsock_hybrid.c, the libev
 * dialer in vsock_dialer.c and the test muxer in vsock_muxer.c; the latter two reuse the
 * target/connect helpers defined here (common/vsock_priv.h). */
#include "common/vsock.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "common/fdio.h"
#include "common/vsock_priv.h"
#include "common/xalloc.h"

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define HV_UNSUPPORTED_MSG "hvsock transport is only available on Windows hosts"

/* ---- sockets ---- */

int vsock_priv_socket(int family, struct err *e)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (family == AF_VSOCK && (errno == EAFNOSUPPORT || errno == EINVAL))
			return err_sys(e, -EAFNOSUPPORT,
			               "AF_VSOCK socket (is the vsock module loaded?)");
		return err_sys(e, -errno, "socket");
	}
	return fd;
}

void vsock_priv_nodelay(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int unix_sockaddr(const char *path, struct sockaddr_storage *ss, socklen_t *len,
                         struct err *e)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sun->sun_path))
		return err_set(e, -ENAMETOOLONG, "unix socket path `%.60s` empty or too long",
		               path);
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/* tcp endpoints are IP literals (or "localhost"): ferry's tcp peers are QEMU's user-network
 * gateway and loopback, and without a name service the static ferry-gcs does not pull in
 * glibc's NSS (about 150 KiB; see docs/transports.md). */
struct tcp_ep {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static int tcp_resolve(const char *host, int tport, struct tcp_ep *ep, struct err *e)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->ss;
	memset(ep, 0, sizeof(*ep));
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)tport);
		ep->len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)tport);
		ep->len = sizeof(*in6);
	} else {
		return err_set(e, -ENXIO,
		               "resolve tcp host `%.100s`: not an IP address (the tcp transport "
		               "takes IPv4/IPv6 literals or localhost)",
		               host);
	}
	ep->family = ep->ss.ss_family;
	return 0;
}

int vsock_priv_target(const struct vsock_addr *a, uint32_t port, bool to_guest,
                      struct vsock_target *t, struct err *e)
{
	char as[VSOCK_ADDR_STR_MAX];
	char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int r;
	memset(t, 0, sizeof(*t));
	vsock_addr_format(a, as, sizeof(as));
	snprintf(t->desc, sizeof(t->desc), "%s port=%u", as, port);
	switch (a->kind) {
	case VSOCK_KIND_VSOCK: {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&t->ss;
		vm->svm_family = AF_VSOCK;
		vm->svm_cid = a->cid;
		vm->svm_port = port;
		t->len = sizeof(*vm);
		return 0;
	}
	case VSOCK_KIND_HVSOCK:
		return err_set(e, -EAFNOSUPPORT, "dial %s: " HV_UNSUPPORTED_MSG, t->desc);
	case VSOCK_KIND_HYBRID:
		if (to_guest) {
			t->handshake = true;
			return unix_sockaddr(a->path, &t->ss, &t->len, e);
		}
		r = vsock_unix_path(a->path, port, p, sizeof(p), e);
		return r < 0 ? r : unix_sockaddr(p, &t->ss, &t->len, e);
	case VSOCK_KIND_UNIX:
		r = to_guest ? vsock_unix_guest_path(a->path, port, p, sizeof(p), e)
		             : vsock_unix_path(a->path, port, p, sizeof(p), e);
		return r < 0 ? r : unix_sockaddr(p, &t->ss, &t->len, e);
	case VSOCK_KIND_TCP: {
		struct tcp_ep ep;
		int tport = vsock_tcp_port(a->tcp_base, port, e);
		if (tport < 0)
			return err_prefix(e, "dial %s", t->desc);
		if ((r = tcp_resolve(a->host, tport, &ep, e)) < 0)
			return r;
		memcpy(&t->ss, &ep.ss, ep.len);
		t->len = ep.len;
		t->tcp = true;
		return 0;
	}
	}
	return err_set(e, -EINVAL, "dial: bad address kind %d", (int)a->kind);
}

int vsock_priv_connect(int fd, const struct vsock_target *t, struct err *e)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == 0)
			return 0;
		switch (errno) {
		case EINTR:
			continue;
		case EINPROGRESS:
		case EALREADY:
			return 1;
		case EAGAIN:
			return 2;
		case ENOENT:
			return err_set(e, -ENOENT,
			               "connect %s: no such socket (not listening yet?)", t->desc);
		case ECONNREFUSED:
			return err_set(e, -ECONNREFUSED, "connect %s: connection refused", t->desc);
		default:
			return err_sys(e, -errno, "connect %s", t->desc);
		}
	}
}

int vsock_priv_connect_result(int fd, const struct vsock_target *t, struct err *e)
{
	int so = 0;
	socklen_t sl = sizeof(so);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
		return err_sys(e, -errno, "connect %s: getsockopt", t->desc);
	if (so == ECONNREFUSED)
		return err_set(e, -ECONNREFUSED, "connect %s: connection refused", t->desc);
	if (so != 0)
		return err_sys(e, -so, "connect %s", t->desc);
	return 0;
}

static long long deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : mono_ns() + (long long)timeout_ms * 1000000LL;
}

/* Milliseconds left before deadline (-1: none), 0 when passed. */
static int left_ms(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long d = deadline - mono_ns();
	return d <= 0 ? 0 : (int)((d + 999999) / 1000000);
}

/* Wait for ev on fd until deadline: 1 ready, 0 timed out, -errno. */
static int wait_until(int fd, short ev, long long deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = ev};
		int ms = left_ms(deadline);
		if (ms == 0)
			return 0;
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 1;
	}
}

/* Connect a fresh socket to t before deadline; returns the fd or -errno. */
static int connect_deadline(const struct vsock_target *t, long long deadline, struct err *e)
{
	_cleanup_close_ int fd = vsock_priv_socket(t->ss.ss_family, e);
	if (fd < 0)
		return fd;
	for (;;) {
		int r = vsock_priv_connect(fd, t, e);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		if (r == 2) { /* unix backlog full: retry shortly */
			if (left_ms(deadline) == 0)
				return err_set(e, -ETIMEDOUT,
				               "connect %s: timed out (backlog full)", t->desc);
			poll(NULL, 0, 5);
			continue;
		}
		int w = wait_until(fd, POLLOUT, deadline);
		if (w < 0)
			return err_sys(e, w, "connect %s: poll", t->desc);
		if (w == 0)
			return err_set(e, -ETIMEDOUT, "connect %s: timed out", t->desc);
		if ((r = vsock_priv_connect_result(fd, t, e)) < 0)
			return r;
		break;
	}
	if (t->tcp)
		vsock_priv_nodelay(fd);
	return steal_fd(&fd);
}

static int tcp_dial(const struct vsock_addr *a, uint32_t port, long long deadline, struct err *e)
{
	struct vsock_target t;
	int r = vsock_priv_target(a, port, false, &t, e);
	if (r < 0)
		return r;
	return connect_deadline(&t, deadline, e);
}

int vsock_dial(const struct vsock_addr *a, uint32_t port, int timeout_ms, struct err *e)
{
	struct vsock_target t;
	long long deadline = deadline_of(timeout_ms);
	if (a->kind == VSOCK_KIND_TCP)
		return tcp_dial(a, port, deadline, e);
	int r = vsock_priv_target(a, port, false, &t, e);
	return r < 0 ? r : connect_deadline(&t, deadline, e);
}

static int hybrid_handshake(int fd, const struct vsock_target *t, uint32_t port, long long deadline,
                            uint32_t *host_port, struct err *e)
{
	char line[VSOCK_HYBRID_LINE_MAX];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	/* One write: Firecracker reads the command with read_exact and drops partial ones. */
	ssize_t w = fd_write(fd, line, (size_t)n, e);
	if (w == IO_AGAIN || (w >= 0 && w != n))
		return err_set(e, -EIO, "%s: short write of the CONNECT line", t->desc);
	if (w < 0)
		return err_prefix(e, "%s: send CONNECT", t->desc);
	size_t have = 0;
	for (;;) {
		/* One byte at a time: whatever follows "\n" is the guest's payload. */
		ssize_t r = fd_read(fd, line + have, 1, e);
		if (r == IO_AGAIN) {
			int wr = wait_until(fd, POLLIN, deadline);
			if (wr < 0)
				return err_sys(e, wr, "%s: poll", t->desc);
			if (wr == 0)
				return err_set(e, -ETIMEDOUT,
				               "%s: no OK from the hybrid vsock muxer in time",
				               t->desc);
			continue;
		}
		if (r == IO_EOF)
			return err_set(
			    e, -ECONNREFUSED,
			    "%s: guest refused the connection (closed without OK; is the guest "
			    "listening on port %u?)",
			    t->desc, port);
		if (r < 0)
			return err_prefix(e, "%s: read OK", t->desc);
		have++;
		size_t ll;
		uint32_t hp;
		int p = vsock_hybrid_parse_ok(line, have, &hp, &ll, e);
		if (p < 0)
			return err_prefix(e, "%s", t->desc);
		if (p == 1) {
			if (host_port)
				*host_port = hp;
			return 0;
		}
	}
}

int vsock_dial_guest(const struct vsock_addr *a, uint32_t port, int timeout_ms, uint32_t *host_port,
                     struct err *e)
{
	struct vsock_target t;
	long long deadline = deadline_of(timeout_ms);
	if (host_port)
		*host_port = 0;
	if (a->kind == VSOCK_KIND_TCP)
		return tcp_dial(a, port, deadline, e);
	int r = vsock_priv_target(a, port, true, &t, e);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = connect_deadline(&t, deadline, e);
	if (fd < 0)
		return fd;
	if (t.handshake && (r = hybrid_handshake(fd, &t, port, deadline, host_port, e)) < 0)
		return r;
	return steal_fd(&fd);
}

int vsock_priv_listen_unix(const char *path, struct err *e)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct stat st;
	int r = unix_sockaddr(path, &ss, &len, e);
	if (r < 0)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, -EEXIST, "listen %.100s: exists and is not a socket",
			               path);
		if (unlink(path) < 0 && errno != ENOENT)
			return err_sys(e, -errno, "listen %.100s: unlink stale socket", path);
	}
	_cleanup_close_ int fd = vsock_priv_socket(AF_UNIX, e);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return err_sys(e, -errno, "bind %.100s", path);
	/* Only our user may connect (connect needs write permission on the socket file).  Done
	 * before listen: until then a connect is refused, so nobody slips in under the umask. */
	if (chmod(path, 0600) < 0) {
		r = err_sys(e, -errno, "chmod %.100s", path);
		unlink(path);
		return r;
	}
	if (listen(fd, 128) < 0) {
		r = err_sys(e, -errno, "listen %.100s", path);
		unlink(path);
		return r;
	}
	return steal_fd(&fd);
}

static int listen_tcp(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	struct tcp_ep ep;
	int tport = vsock_tcp_port(a->tcp_base, port, e);
	if (tport < 0)
		return err_prefix(e, "listen tcp:%s", a->host);
	int r = tcp_resolve(a->host, tport, &ep, e);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = vsock_priv_socket(ep.family, e);
	if (fd < 0)
		return fd;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	vsock_priv_nodelay(fd);
	r = bind(fd, (struct sockaddr *)&ep.ss, ep.len);
	if (r < 0 || listen(fd, 128) < 0)
		return err_sys(e, -errno, "listen tcp %.100s:%d (vsock port %u)", a->host, tport,
		               port);
	return steal_fd(&fd);
}

static int listen_vsock(uint32_t port, struct err *e)
{
	struct sockaddr_vm vm = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	_cleanup_close_ int fd = vsock_priv_socket(AF_VSOCK, e);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&vm, sizeof(vm)) < 0 || listen(fd, 128) < 0)
		return err_sys(e, -errno, "listen vsock port %u", port);
	return steal_fd(&fd);
}

static int listen_any(const struct vsock_addr *a, uint32_t port, bool guest, struct err *e)
{
	char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int r;
	switch (a->kind) {
	case VSOCK_KIND_VSOCK:
		return listen_vsock(port, e);
	case VSOCK_KIND_HVSOCK:
		return err_set(e, -EAFNOSUPPORT, "listen hvsock port %u: " HV_UNSUPPORTED_MSG,
		               port);
	case VSOCK_KIND_HYBRID:
	case VSOCK_KIND_UNIX:
		r = guest ? vsock_unix_guest_path(a->path, port, p, sizeof(p), e)
		          : vsock_unix_path(a->path, port, p, sizeof(p), e);
		return r < 0 ? r : vsock_priv_listen_unix(p, e);
	case VSOCK_KIND_TCP:
		return listen_tcp(a, port, e);
	}
	return err_set(e, -EINVAL, "listen: bad address kind %d", (int)a->kind);
}

int vsock_listen(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	return listen_any(a, port, false, e);
}

int vsock_listen_guest(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	return listen_any(a, port, true, e);
}

int vsock_accept(int lfd, struct err *e)
{
	struct sockaddr_storage ss;
	for (;;) {
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
				vsock_priv_nodelay(fd);
			return fd;
		}
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
		case ECONNABORTED:
		case EPROTO:
			return IO_AGAIN;
		default:
			return err_sys(e, -errno, "accept fd=%d", lfd);
		}
	}
}

/* Is the peer of a just-accepted fd one that may talk to us at all (vsock_accept_peer)? */
static int peer_allowed(const struct vsock_addr *a, int fd, struct err *e)
{
	switch (a->kind) {
	case VSOCK_KIND_HYBRID:
	case VSOCK_KIND_UNIX: {
		struct ucred cr;
		socklen_t n = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &n) < 0)
			return err_sys(e, -errno, "peer credentials");
		if (cr.uid != geteuid() && cr.uid != 0)
			return err_set(e, -EACCES, "refused a connection from uid %u (pid %d)",
			               (unsigned)cr.uid, (int)cr.pid);
		return 0;
	}
	case VSOCK_KIND_VSOCK: {
		struct sockaddr_vm vm;
		socklen_t n = sizeof(vm);
		if (getpeername(fd, (struct sockaddr *)&vm, &n) < 0)
			return err_sys(e, -errno, "peer address");
		if (vm.svm_cid != a->cid)
			return err_set(e, -EACCES, "refused a connection from cid %u (want %u)",
			               vm.svm_cid, a->cid);
		return 0;
	}
	case VSOCK_KIND_HVSOCK:
	case VSOCK_KIND_TCP:
		break;
	}
	return 0;
}

int vsock_accept_peer(const struct vsock_addr *a, int lfd, struct err *e)
{
	int fd = vsock_accept(lfd, e);
	if (fd < 0)
		return fd;
	int r = peer_allowed(a, fd, e);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static void unlisten_any(const struct vsock_addr *a, uint32_t port, int lfd, bool guest)
{
	char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
	if (lfd >= 0)
		close(lfd);
	if (a->kind != VSOCK_KIND_HYBRID && a->kind != VSOCK_KIND_UNIX)
		return;
	int r = guest ? vsock_unix_guest_path(a->path, port, p, sizeof(p), NULL)
	              : vsock_unix_path(a->path, port, p, sizeof(p), NULL);
	if (r == 0)
		unlink(p);
}

void vsock_unlisten(const struct vsock_addr *a, uint32_t port, int lfd)
{
	unlisten_any(a, port, lfd, false);
}

void vsock_unlisten_guest(const struct vsock_addr *a, uint32_t port, int lfd)
{
	unlisten_any(a, port, lfd, true);
}
