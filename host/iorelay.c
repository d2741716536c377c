/* Host end of one guest stdio stream: accept the guest's single connection on a vsock port,
 * then copy between it and a local endpoint with common/stream.h on both sides, pausing the
 * reading side while the writing side holds more than IORELAY_HIGH_WATER bytes.  The local fd
 * is dup'ed so the caller's copy is untouched (apart from O_NONBLOCK, which is shared by the
 * open file description).  Regular files work too: libev treats them as always ready. */
#include "host/iorelay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/stream.h"
#include "common/vsock.h"
#include "common/xalloc.h"

struct iorelay {
	struct ev_loop *loop;
	struct vsock_addr addr;
	uint32_t port;
	enum iorelay_dir dir;
	int lfd;
	ev_io accept_w;
	int local_fd; /* our dup, until the local stream owns it */
	struct stream *conn;
	struct stream *local;
	struct iorelay_ops ops;
	void *ud;
	struct buf early;  /* TO_GUEST bytes queued before the guest connected */
	bool close_write;  /* TO_GUEST: EOF requested */
	bool conn_eof;     /* FROM_GUEST: the guest finished sending */
	bool local_failed; /* the sink failed: discard further output */
	struct err local_err;
	bool done;
	unsigned depth; /* nesting of our callbacks, for deferred free */
	bool free_pending;
	uint64_t bytes;
};

static void relay_destroy(struct iorelay *r)
{
	if (r->lfd >= 0) {
		ev_io_stop(r->loop, &r->accept_w);
		vsock_unlisten(&r->addr, r->port, r->lfd);
		r->lfd = -1;
	}
	stream_free(r->conn);
	stream_free(r->local);
	if (r->local_fd >= 0)
		close(r->local_fd);
	buf_fini(&r->early);
	free(r);
}

/* Enter/leave one of our callbacks; leave returns true when the relay is gone. */
static void enter(struct iorelay *r)
{
	r->depth++;
}
static bool leave(struct iorelay *r)
{
	if (--r->depth == 0 && r->free_pending) {
		relay_destroy(r);
		return true;
	}
	return false;
}

static void finish(struct iorelay *r, int status, const struct err *e)
{
	if (r->done)
		return;
	r->done = true;
	if (r->ops.on_done)
		r->ops.on_done(r, status, e, r->ud);
}

/* FROM_GUEST: everything received and the sink has drained (or failed). */
static void maybe_finish_from_guest(struct iorelay *r)
{
	if (!r->conn_eof || r->done)
		return;
	if (r->local && !r->local_failed && stream_pending(r->local) > 0)
		return;
	if (r->local_failed)
		finish(r, r->local_err.code, &r->local_err);
	else
		finish(r, 0, NULL);
}

/* ---- guest connection callbacks ---- */

static void conn_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	enter(r);
	if (r->dir == IORELAY_TO_GUEST) {
		buf_consume(in, n); /* the guest never writes on stdin; ignore */
		leave(r);
		return;
	}
	r->bytes += n;
	if (r->local_failed) {
		/* keep draining so the guest can finish */
	} else if (r->local) {
		struct err e;
		if (stream_write(r->local, buf_head(in), n, &e) < 0) {
			r->local_failed = true;
			r->local_err = e;
		} else if (stream_pending(r->local) > IORELAY_HIGH_WATER) {
			stream_pause_read(s);
		}
	} else if (r->ops.on_data) {
		r->ops.on_data(r, buf_head(in), n, r->ud);
	}
	if (!r->free_pending)
		buf_consume(in, n);
	leave(r);
}

static void conn_on_eof(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	if (r->dir == IORELAY_FROM_GUEST) {
		/* Close at once: the guest waits for our close before reporting the exit. */
		stream_free(r->conn);
		r->conn = NULL;
		r->conn_eof = true;
		maybe_finish_from_guest(r);
	} else {
		/* The guest closed stdin (process gone): nothing more to send. */
		stream_free(r->local);
		r->local = NULL;
		finish(r, 0, NULL);
	}
	leave(r);
}

static void conn_on_error(struct stream *s, const struct err *why, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	struct err e = *why;
	stream_free(r->conn);
	r->conn = NULL;
	if (r->dir == IORELAY_FROM_GUEST) {
		r->conn_eof = true;
		if (!r->local_failed) {
			r->local_failed = true;
			r->local_err = e;
		}
		maybe_finish_from_guest(r);
	} else {
		stream_free(r->local);
		r->local = NULL;
		/* EPIPE/ECONNRESET on stdin just means the process no longer reads it. */
		if (e.code == -EPIPE || e.code == -ECONNRESET)
			finish(r, 0, NULL);
		else
			finish(r, e.code, &e);
	}
	leave(r);
}

static void conn_on_drain(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	if (r->dir == IORELAY_TO_GUEST && r->local)
		stream_resume_read(r->local);
}

/* ---- local endpoint callbacks ---- */

static void local_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	if (!r->conn) {
		buf_consume(in, n);
		return;
	}
	struct err e;
	if (stream_write(r->conn, buf_head(in), n, &e) == 0)
		r->bytes += n;
	buf_consume(in, n);
	if (r->conn && stream_pending(r->conn) > IORELAY_HIGH_WATER)
		stream_pause_read(s);
}

static void local_on_eof(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	r->close_write = true;
	if (r->conn)
		stream_shutdown_write(r->conn);
}

static void local_on_error(struct stream *s, const struct err *why, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	if (!r->local_failed) {
		r->local_failed = true;
		r->local_err = *why;
	}
	if (r->dir == IORELAY_TO_GUEST) {
		/* A broken source ends stdin. */
		r->close_write = true;
		if (r->conn)
			stream_shutdown_write(r->conn);
	} else if (r->conn) {
		stream_resume_read(r->conn); /* discard the rest, but read to EOF */
	}
	maybe_finish_from_guest(r);
	leave(r);
}

static void local_on_drain(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	if (r->dir == IORELAY_FROM_GUEST) {
		if (r->conn)
			stream_resume_read(r->conn);
		maybe_finish_from_guest(r);
	}
	leave(r);
}

static int setup_local(struct iorelay *r, struct err *e)
{
	if (r->local_fd < 0)
		return 0;
	struct stream_cbs cbs = {
	    .on_read = r->dir == IORELAY_TO_GUEST ? local_on_read : NULL,
	    .on_eof = local_on_eof,
	    .on_error = local_on_error,
	    .on_drain = local_on_drain,
	};
	int fd = steal_fd(&r->local_fd);
	r->local = stream_new(r->loop, fd, &cbs, r, e);
	if (!r->local)
		return err_prefix(e, "stdio port %u: local fd", r->port);
	return 0;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct iorelay *r = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	int fd = vsock_accept(r->lfd, &e);
	if (fd == IO_AGAIN)
		return;
	enter(r);
	ev_io_stop(r->loop, &r->accept_w);
	vsock_unlisten(&r->addr, r->port, r->lfd);
	r->lfd = -1;
	if (fd < 0) {
		err_prefix(&e, "stdio port %u: accept", r->port);
		finish(r, e.code, &e);
		leave(r);
		return;
	}
	struct stream_cbs cbs = {
	    .on_read = conn_on_read,
	    .on_eof = conn_on_eof,
	    .on_error = conn_on_error,
	    .on_drain = conn_on_drain,
	};
	r->conn = stream_new(r->loop, fd, &cbs, r, &e);
	if (!r->conn || setup_local(r, &e) < 0) {
		err_prefix(&e, "stdio port %u", r->port);
		finish(r, e.code, &e);
		leave(r);
		return;
	}
	if (r->dir == IORELAY_TO_GUEST) {
		if (buf_avail(&r->early) > 0) {
			r->bytes += buf_avail(&r->early);
			stream_write(r->conn, buf_head(&r->early), buf_avail(&r->early), &e);
			buf_reset(&r->early);
		}
		if (r->close_write)
			stream_shutdown_write(r->conn);
	}
	leave(r);
}

struct iorelay *iorelay_new(struct ev_loop *loop, const struct vsock_addr *addr, uint32_t port,
                            enum iorelay_dir dir, int local_fd, const struct iorelay_ops *ops,
                            void *ud, struct err *e)
{
	struct iorelay *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->addr = *addr;
	r->port = port;
	r->dir = dir;
	r->lfd = -1;
	r->local_fd = -1;
	if (ops)
		r->ops = *ops;
	r->ud = ud;
	buf_init(&r->early);
	if (local_fd >= 0) {
		r->local_fd = fcntl(local_fd, F_DUPFD_CLOEXEC, 3);
		if (r->local_fd < 0) {
			err_sys(e, -errno, "stdio port %u: dup local fd %d", port, local_fd);
			relay_destroy(r);
			return NULL;
		}
	}
	r->lfd = vsock_listen(addr, port, e);
	if (r->lfd < 0) {
		err_prefix(e, "stdio port %u: listen", port);
		r->lfd = -1;
		relay_destroy(r);
		return NULL;
	}
	ev_io_init(&r->accept_w, on_accept, r->lfd, EV_READ);
	r->accept_w.data = r;
	ev_io_start(loop, &r->accept_w);
	return r;
}

void iorelay_free(struct iorelay *r)
{
	if (!r)
		return;
	if (r->depth > 0) {
		/* Inside one of our callbacks: quiesce now, free on the way out. */
		r->free_pending = true;
		r->done = true;
		if (r->lfd >= 0) {
			ev_io_stop(r->loop, &r->accept_w);
			vsock_unlisten(&r->addr, r->port, r->lfd);
			r->lfd = -1;
		}
		return;
	}
	relay_destroy(r);
}

int iorelay_write(struct iorelay *r, const void *data, size_t n, struct err *e)
{
	if (r->dir != IORELAY_TO_GUEST)
		return err_set(e, -EINVAL, "stdio port %u: not an input stream", r->port);
	if (r->close_write || r->done)
		return err_set(e, -EPIPE, "stdio port %u: stdin closed", r->port);
	if (!r->conn) {
		buf_append(&r->early, data, n);
		return 0;
	}
	int rc = stream_write(r->conn, data, n, e);
	if (rc == 0)
		r->bytes += n;
	return rc;
}

int iorelay_close_write(struct iorelay *r, struct err *e)
{
	if (r->dir != IORELAY_TO_GUEST)
		return err_set(e, -EINVAL, "stdio port %u: not an input stream", r->port);
	r->close_write = true;
	if (r->conn)
		stream_shutdown_write(r->conn);
	return 0;
}

uint32_t iorelay_port(const struct iorelay *r)
{
	return r->port;
}

bool iorelay_connected(const struct iorelay *r)
{
	return r->lfd < 0 && (r->conn != NULL || r->conn_eof);
}

bool iorelay_done(const struct iorelay *r)
{
	return r->done;
}

uint64_t iorelay_bytes(const struct iorelay *r)
{
	return r->bytes;
}
