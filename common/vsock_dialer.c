/* The libev dialer: the non-blocking state machine behind struct vsock_dialer, for both
 * directions (host->guest: vsock_dialer_new; guest->host, what ferry-gcs dials:
 * vsock_dialer_new_host; they differ only in the target vsock_priv_target builds).
 * connect (in progress) -> [hybrid host->guest: write "CONNECT <port>\n" once, read the reply
 * one byte at a time up to "\n" and check it] -> completion callback with the fd.  A timer bounds the whole
 * dial; outcomes known at once (ENOENT, ECONNREFUSED from a unix connect) are delivered from a
 * zero-delay timer so the callback never runs inside vsock_dialer_new. */
#include "common/vsock.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/vsock_priv.h"
#include "common/xalloc.h"

struct vsock_dialer {
	struct ev_loop *loop;
	struct vsock_target t;
	uint32_t port;
	int fd;
	bool reading; /* hybrid: CONNECT sent, waiting for OK */
	char line[VSOCK_HYBRID_LINE_MAX];
	size_t have;
	struct err pending; /* error to deliver from the kick timer */
	ev_io io;
	ev_timer timeout;
	ev_timer kick; /* zero-delay delivery and unix-backlog retry */
	vsock_dial_cb cb;
	void *data;
};

static void stop_all(struct vsock_dialer *d)
{
	ev_io_stop(d->loop, &d->io);
	ev_timer_stop(d->loop, &d->timeout);
	ev_timer_stop(d->loop, &d->kick);
}

/* Deliver the outcome; d must not be touched afterwards (the callback may free it). */
static void finish(struct vsock_dialer *d, int r, struct err *e)
{
	stop_all(d);
	int fd = d->fd;
	d->fd = -1;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fd = r;
	}
	d->cb(d, fd, e, d->data);
}

/* d->pending holds the error; deliver it from the loop. */
static void fail_later(struct vsock_dialer *d)
{
	ev_io_stop(d->loop, &d->io);
	ev_timer_stop(d->loop, &d->kick);
	ev_timer_set(&d->kick, 0., 0.);
	ev_timer_start(d->loop, &d->kick);
}

static void connected(struct vsock_dialer *d)
{
	struct err e;
	err_clear(&e);
	if (d->t.tcp)
		vsock_priv_nodelay(d->fd);
	if (!d->t.handshake) {
		finish(d, 0, &e);
		return;
	}
	char cmd[VSOCK_HYBRID_LINE_MAX];
	int n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", d->port);
	ssize_t w = fd_write(d->fd, cmd, (size_t)n, &e);
	if (w == IO_AGAIN || (w >= 0 && w != n)) {
		finish(d, err_set(&e, -EIO, "%s: short write of the CONNECT line", d->t.desc), &e);
		return;
	}
	if (w < 0) {
		finish(d, err_prefix(&e, "%s: send CONNECT", d->t.desc), &e);
		return;
	}
	d->reading = true;
	ev_io_stop(d->loop, &d->io);
	ev_io_set(&d->io, d->fd, EV_READ);
	ev_io_start(d->loop, &d->io);
}

static void on_read(struct vsock_dialer *d)
{
	struct err e;
	err_clear(&e);
	for (;;) {
		ssize_t r = fd_read(d->fd, d->line + d->have, 1, &e);
		if (r == IO_AGAIN)
			return;
		if (r == IO_EOF) {
			finish(
			    d,
			    err_set(&e, -ECONNREFUSED,
			            "%s: guest refused the connection (closed without OK; is the "
			            "guest listening on port %u?)",
			            d->t.desc, d->port),
			    &e);
			return;
		}
		if (r < 0) {
			finish(d, err_prefix(&e, "%s: read OK", d->t.desc), &e);
			return;
		}
		d->have++;
		uint32_t hp;
		size_t ll;
		int p = vsock_hybrid_parse_ok(d->line, d->have, &hp, &ll, &e);
		if (p < 0) {
			finish(d, err_prefix(&e, "%s", d->t.desc), &e);
			return;
		}
		if (p == 1) {
			finish(d, 0, &e);
			return;
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct vsock_dialer *d = w->data;
	struct err e;
	err_clear(&e);
	if (d->reading) {
		on_read(d);
		return;
	}
	int r = vsock_priv_connect_result(d->fd, &d->t, &e);
	if (r < 0) {
		finish(d, r, &e);
		return;
	}
	connected(d);
}

/* Start (or retry) the connect; arms io, or kick for a retry or a pending error. */
static void try_connect(struct vsock_dialer *d)
{
	int r = vsock_priv_connect(d->fd, &d->t, &d->pending);
	if (r < 0) {
		fail_later(d);
		return;
	}
	if (r == 2) { /* unix backlog full: retry in 5 ms */
		ev_timer_set(&d->kick, 0.005, 0.);
		ev_timer_start(d->loop, &d->kick);
		return;
	}
	/* Connected at once (unix) or in progress: the fd turns writable either way. */
	ev_io_set(&d->io, d->fd, EV_WRITE);
	ev_io_start(d->loop, &d->io);
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct vsock_dialer *d = w->data;
	if (d->pending.code < 0) {
		struct err e = d->pending;
		finish(d, e.code, &e);
		return;
	}
	try_connect(d);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct vsock_dialer *d = w->data;
	struct err e;
	finish(
	    d,
	    err_set(&e, -ETIMEDOUT, "%s: %s", d->t.desc,
	            d->reading ? "no OK from the hybrid vsock muxer in time" : "connect timed out"),
	    &e);
}

static struct vsock_dialer *dialer_start(struct ev_loop *loop, const struct vsock_addr *a,
                                         uint32_t port, bool to_guest, int timeout_ms,
                                         vsock_dial_cb cb, void *data, struct err *e)
{
	struct vsock_target t;
	if (vsock_priv_target(a, port, to_guest, &t, e) < 0)
		return NULL;
	int fd = vsock_priv_socket(t.ss.ss_family, e);
	if (fd < 0)
		return NULL;
	struct vsock_dialer *d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->t = t;
	d->port = port;
	d->fd = fd;
	d->cb = cb;
	d->data = data;
	err_clear(&d->pending);
	ev_io_init(&d->io, io_cb, fd, EV_WRITE);
	d->io.data = d;
	ev_timer_init(&d->kick, kick_cb, 0., 0.);
	d->kick.data = d;
	ev_timer_init(&d->timeout, timeout_cb, timeout_ms / 1000., 0.);
	d->timeout.data = d;
	if (timeout_ms > 0)
		ev_timer_start(loop, &d->timeout);
	try_connect(d);
	return d;
}

struct vsock_dialer *vsock_dialer_new(struct ev_loop *loop, const struct vsock_addr *a,
                                      uint32_t port, int timeout_ms, vsock_dial_cb cb, void *data,
                                      struct err *e)
{
	return dialer_start(loop, a, port, true, timeout_ms, cb, data, e);
}

struct vsock_dialer *vsock_dialer_new_host(struct ev_loop *loop, const struct vsock_addr *a,
                                           uint32_t port, int timeout_ms, vsock_dial_cb cb,
                                           void *data, struct err *e)
{
	return dialer_start(loop, a, port, false, timeout_ms, cb, data, e);
}

void vsock_dialer_free(struct vsock_dialer *d)
{
	if (!d)
		return;
	stop_all(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}
