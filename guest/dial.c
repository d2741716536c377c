/* Event-driven guest->host connect for ferry-gcs (see dial.h): build the socket address the
 * vsock shim would use, connect(2) without blocking, and finish on the loop when the socket
 * becomes writable, on a timeout, or at once (immediate success or failure is still
 * reported from the loop so callers never see re-entrant callbacks). */
#include "guest/dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>
#include <linux/vm_sockets.h>

#include "common/xalloc.h"

struct gcs_dial {
	struct ev_loop *loop;
	struct vsock_addr addr;
	uint32_t port;
	int timeout_ms;
	int fd;
	bool fallback;  /* no non-blocking path: vsock_dial from the loop */
	struct err res; /* immediate result, delivered by `now` */
	ev_io io;
	ev_timer timer; /* timeout */
	ev_timer now;   /* deliver an immediate result from the loop */
	gcs_dial_cb cb;
	void *ud;
};

static void stop_all(struct gcs_dial *d)
{
	ev_io_stop(d->loop, &d->io);
	ev_timer_stop(d->loop, &d->timer);
	ev_timer_stop(d->loop, &d->now);
}

/* Hand the result over; the callee may free d. */
static void finish(struct gcs_dial *d, int fd, const struct err *e)
{
	stop_all(d);
	if (fd >= 0) {
		if (d->addr.kind == VSOCK_KIND_TCP) {
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		d->fd = -1;
	}
	d->cb(d, fd, e, d->ud);
}

static void fail(struct gcs_dial *d, const struct err *e)
{
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	finish(d, e->code, e);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gcs_dial *d = w->data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct err e;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == EINPROGRESS || soerr == EALREADY)
		return;
	if (soerr) {
		err_sys(&e, -soerr, "dial port %u", d->port);
		fail(d, &e);
		return;
	}
	finish(d, d->fd, NULL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gcs_dial *d = w->data;
	struct err e;
	err_set(&e, -ETIMEDOUT, "dial port %u: not connected within %d ms", d->port, d->timeout_ms);
	fail(d, &e);
}

static void on_now(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gcs_dial *d = w->data;
	if (d->fallback) {
		/* A tcp host name: resolution has no non-blocking path here. */
		struct err e;
		int fd =
		    vsock_dial(&d->addr, d->port, d->timeout_ms > 0 ? d->timeout_ms : 1000, &e);
		if (fd < 0)
			fail(d, &e);
		else
			finish(d, fd, NULL);
		return;
	}
	if (d->res.code < 0)
		fail(d, &d->res);
	else
		finish(d, d->fd, NULL);
}

/* Fill `ss` for the address; returns its length, 0 for "use the fallback", or -errno. */
static int build_sockaddr(const struct vsock_addr *a, uint32_t port, struct sockaddr_storage *ss,
                          struct err *e)
{
	memset(ss, 0, sizeof(*ss));
	switch (a->kind) {
	case VSOCK_KIND_VSOCK: {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)ss;
		vm->svm_family = AF_VSOCK;
		vm->svm_cid = a->cid;
		vm->svm_port = port;
		return sizeof(*vm);
	}
	case VSOCK_KIND_HYBRID:
	case VSOCK_KIND_UNIX: {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		int r = vsock_unix_path(a->path, port, un->sun_path, sizeof(un->sun_path), e);
		return r < 0 ? r : (int)sizeof(*un);
	}
	case VSOCK_KIND_TCP: {
		int tp = vsock_tcp_port(a->tcp_base, port, e);
		if (tp < 0)
			return tp;
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET, a->host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)tp);
			return sizeof(*in4);
		}
		if (inet_pton(AF_INET6, a->host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)tp);
			return sizeof(*in6);
		}
		return 0;
	}
	default:
		return err_set(e, -EAFNOSUPPORT, "%s transport cannot be dialled from the guest",
		               vsock_kind_name(a->kind));
	}
}

struct gcs_dial *gcs_dial_new(struct ev_loop *loop, const struct vsock_addr *a, uint32_t port,
                              int timeout_ms, gcs_dial_cb cb, void *ud, struct err *e)
{
	struct sockaddr_storage ss;
	int slen = build_sockaddr(a, port, &ss, e);
	if (slen < 0)
		return NULL;
	struct gcs_dial *d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->addr = *a;
	d->port = port;
	d->timeout_ms = timeout_ms;
	d->fd = -1;
	d->cb = cb;
	d->ud = ud;
	err_clear(&d->res);
	ev_io_init(&d->io, on_writable, -1, EV_WRITE);
	d->io.data = d;
	ev_timer_init(&d->timer, on_timeout, timeout_ms > 0 ? timeout_ms / 1000.0 : 0.0, 0.0);
	d->timer.data = d;
	ev_timer_init(&d->now, on_now, 0.0, 0.0);
	d->now.data = d;
	if (slen == 0) {
		d->fallback = true;
		ev_timer_start(loop, &d->now);
		return d;
	}
	d->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		err_sys(&d->res, -errno, "dial port %u: socket", port);
		ev_timer_start(loop, &d->now);
		return d;
	}
	if (connect(d->fd, (struct sockaddr *)&ss, (socklen_t)slen) == 0) {
		ev_timer_start(loop, &d->now);
		return d;
	}
	if (errno == EINPROGRESS && ss.ss_family != AF_UNIX) {
		ev_io_set(&d->io, d->fd, EV_WRITE);
		ev_io_start(loop, &d->io);
		if (timeout_ms > 0)
			ev_timer_start(loop, &d->timer);
		return d;
	}
	/* For unix sockets EAGAIN means a full backlog, not a pending connect: retry later. */
	char where[VSOCK_ADDR_STR_MAX];
	vsock_addr_format(a, where, sizeof(where));
	err_sys(&d->res, -errno, "dial %s port %u", where, port);
	ev_timer_start(loop, &d->now);
	return d;
}

void gcs_dial_free(struct gcs_dial *d)
{
	if (!d)
		return;
	stop_all(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}
