/* Host end of one guest stdio stream: accept the guest's connection on a vsock port, then copy
 * between it and a local endpoint with common/stream.h on both sides, pausing the reading side
 * while the writing side holds more than IORELAY_HIGH_WATER bytes.  The local fd is dup'ed so
 * the caller's copy is untouched (apart from O_NONBLOCK, which is shared by the open file
 * description).  Regular files work too: libev treats them as always ready.
 * Two modes per connection: PLAIN (hcsshim: one connection, raw bytes, EOF ends the stream)
 * and RESUME (docs/stdio-resume.md §2: HELLO/READY, 8-byte ACKs, re-dials replace the
 * connection, offsets count from the start of the stream; bridge/resume.h does the codec and
 * the retained stdin buffer).  The resume half (receiver, sender, HELLO/ACK parsing) is in
 * iorelay_resume.c. */
#include "host/iorelay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bridge/resume.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/stream.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/iorelay_priv.h"

void iorelay_drop_conn(struct iorelay *r)
{
	stream_free(r->conn);
	r->conn = NULL;
	r->held = false;
	r->closing = false;
	r->shut = false;
	ev_timer_stop(r->loop, &r->ack_timer);
}

/* ---- candidates: accepted connections that have not proven themselves ---- */

static void cand_close(struct iorelay_cand *c)
{
	if (c->fd < 0)
		return;
	ev_io_stop(c->r->loop, &c->w);
	ev_timer_stop(c->r->loop, &c->tmo);
	close(c->fd);
	c->fd = -1;
	c->reading = false;
	c->n = 0;
	/* a slot is free again: take the next connection from the backlog */
	if (c->r->lfd >= 0 && !c->r->done)
		ev_io_start(c->r->loop, &c->r->accept_w);
}

static void stop_listen(struct iorelay *r)
{
	if (r->lfd >= 0) {
		ev_io_stop(r->loop, &r->accept_w);
		vsock_unlisten(&r->addr, r->port, r->lfd);
		r->lfd = -1;
	}
	for (int i = 0; i < IORELAY_MAX_CANDIDATES; i++)
		cand_close(&r->cand[i]);
}

static void relay_destroy(struct iorelay *r)
{
	stop_listen(r);
	iorelay_drop_conn(r);
	stream_free(r->local);
	if (r->local_fd >= 0)
		close(r->local_fd);
	buf_fini(&r->early);
	resume_sender_fini(&r->tx);
	free(r->export_buf);
	free(r);
}

/* Enter/leave one of our callbacks; leave returns true when the relay is gone. */
void iorelay_enter(struct iorelay *r)
{
	r->depth++;
}
bool iorelay_leave(struct iorelay *r)
{
	if (--r->depth == 0 && r->free_pending) {
		relay_destroy(r);
		return true;
	}
	return false;
}

void iorelay_finish_stream(struct iorelay *r, int status, const struct err *e)
{
	if (r->done)
		return;
	r->done = true;
	if (r->resumable) {
		stop_listen(r);
		if (r->conn && r->mode == IORELAY_MODE_RESUME && r->dir == IORELAY_FROM_GUEST &&
		    stream_pending(r->conn) > 0) {
			/* let a final ack drain; the stream is freed with the relay */
		} else if (r->mode == IORELAY_MODE_RESUME) {
			iorelay_drop_conn(r);
		}
	}
	if (r->ops.on_done)
		r->ops.on_done(r, status, e, r->ud);
}

/* ---- guest connection callbacks ---- */

static void conn_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	iorelay_enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		iorelay_conn_read_resume(r, in);
		iorelay_leave(r);
		return;
	}
	if (r->dir == IORELAY_TO_GUEST) {
		buf_consume(in, n); /* the guest never writes on stdin; ignore */
		iorelay_leave(r);
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
	iorelay_leave(r);
}

void iorelay_finish_when_drained(struct iorelay *r)
{
	if (r->done)
		return;
	if (r->local && !r->local_failed && stream_pending(r->local) > 0)
		return;
	if (r->local_failed)
		iorelay_finish_stream(r, r->local_err.code, &r->local_err);
	else
		iorelay_finish_stream(r, 0, NULL);
}

/* FROM_GUEST plain: everything received and the sink has drained (or failed). */
static void maybe_finish_from_guest(struct iorelay *r)
{
	if (r->conn_eof)
		iorelay_finish_when_drained(r);
}

static void conn_on_eof(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	iorelay_enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		if (r->dir == IORELAY_FROM_GUEST && r->rc.state == RESUME_CONN_STREAM) {
			resume_receiver_set_eof(&r->rx);
			iorelay_maybe_close_resumed(r);
		} else if (r->dir == IORELAY_TO_GUEST && r->shut && resume_sender_done(&r->tx)) {
			/* The guest acknowledged our EOF and closed: stdin is complete. */
			iorelay_drop_conn(r);
			iorelay_finish_stream(r, 0, NULL);
		} else {
			iorelay_drop_conn(r); /* a cut or the process is gone: wait for a re-dial */
		}
		iorelay_leave(r);
		return;
	}
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
		iorelay_finish_stream(r, 0, NULL);
	}
	iorelay_leave(r);
}

static void conn_on_error(struct stream *s, const struct err *why, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	iorelay_enter(r);
	struct err e = *why;
	if (r->mode == IORELAY_MODE_RESUME) {
		iorelay_drop_conn(r); /* wait for the re-dial */
		iorelay_leave(r);
		return;
	}
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
			iorelay_finish_stream(r, 0, NULL);
		else
			iorelay_finish_stream(r, e.code, &e);
	}
	iorelay_leave(r);
}

static void conn_on_drain(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	iorelay_enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		if (r->closing)
			iorelay_drop_conn(r);
		else if (r->dir == IORELAY_TO_GUEST)
			iorelay_pump(r);
	} else if (r->dir == IORELAY_TO_GUEST && r->local) {
		stream_resume_read(r->local);
	}
	iorelay_leave(r);
}

/* ---- local endpoint callbacks ---- */

static void local_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	if (r->resumable) {
		iorelay_enter(r);
		buf_append(&r->early, buf_head(in), n);
		buf_consume(in, n);
		if (buf_avail(&r->early) > IORELAY_HIGH_WATER)
			stream_pause_read(s);
		if (r->mode == IORELAY_MODE_RESUME)
			iorelay_pump(r);
		else if (r->conn && stream_write(r->conn, buf_head(&r->early), buf_avail(&r->early),
		                                 &(struct err){0}) == 0) {
			r->bytes += buf_avail(&r->early);
			buf_reset(&r->early);
		}
		iorelay_leave(r);
		return;
	}
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
	iorelay_enter(r);
	r->close_write = true;
	if (r->mode == IORELAY_MODE_RESUME)
		iorelay_pump(r);
	else if (r->conn && buf_avail(&r->early) == 0)
		stream_shutdown_write(r->conn);
	iorelay_leave(r);
}

static void local_on_error(struct stream *s, const struct err *why, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	iorelay_enter(r);
	if (!r->local_failed) {
		r->local_failed = true;
		r->local_err = *why;
	}
	if (r->dir == IORELAY_TO_GUEST) {
		/* A broken source ends stdin. */
		r->close_write = true;
		if (r->mode == IORELAY_MODE_RESUME)
			iorelay_pump(r);
		else if (r->conn)
			stream_shutdown_write(r->conn);
	} else if (r->conn) {
		stream_resume_read(r->conn); /* discard the rest, but read to EOF */
	}
	maybe_finish_from_guest(r);
	iorelay_maybe_close_resumed(r);
	iorelay_maybe_finish_resume(r);
	iorelay_leave(r);
}

static void local_on_drain(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	iorelay_enter(r);
	if (r->dir == IORELAY_FROM_GUEST) {
		if (r->resumable) {
			iorelay_sync_sink(r);
			iorelay_arm_ack(r);
		}
		if (r->conn)
			stream_resume_read(r->conn);
		maybe_finish_from_guest(r);
		iorelay_maybe_close_resumed(r);
		iorelay_maybe_finish_resume(r);
	}
	iorelay_leave(r);
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

/* Start using connection fd in the relay's (known) mode. */
static void use_conn(struct iorelay *r, int fd)
{
	struct err e;
	struct stream_cbs cbs = {
	    .on_read = conn_on_read,
	    .on_eof = conn_on_eof,
	    .on_error = conn_on_error,
	    .on_drain = conn_on_drain,
	};
	iorelay_drop_conn(r);
	r->conn = stream_new(r->loop, fd, &cbs, r, &e);
	if (!r->conn) {
		err_prefix(&e, "stdio port %u", r->port);
		if (r->mode == IORELAY_MODE_RESUME)
			log_warn("%s", e.msg);
		else
			iorelay_finish_stream(r, e.code, &e);
		return;
	}
	if (r->mode == IORELAY_MODE_RESUME) {
		resume_conn_init(&r->rc, RESUME_LISTENER, r->dir == IORELAY_TO_GUEST);
		return;
	}
	/* PLAIN: one connection, as the Go host's ioChannel. */
	r->dialled = true;
	if (r->resumable)
		stop_listen(r);
	if (r->dir == IORELAY_TO_GUEST) {
		if (buf_avail(&r->early) > 0) {
			r->bytes += buf_avail(&r->early);
			stream_write(r->conn, buf_head(&r->early), buf_avail(&r->early), &e);
			buf_reset(&r->early);
		}
		if (r->close_write)
			stream_shutdown_write(r->conn);
	}
}

/* One line per refused candidate, rate-limited (impostors can connect in a loop). */
static void refuse(struct iorelay_cand *c, const char *why)
{
	struct iorelay *r = c->r;
	log_limited(&r->refused, LOG_LVL_WARN, "stdio port %#x: refused a connection: %s", r->port,
	            why);
	cand_close(c);
}

static enum iorelay_mode ask_mode(struct iorelay *r, struct session_auth *auth)
{
	memset(auth, 0, sizeof(*auth));
	return r->mode_fn ? r->mode_fn(r, auth, r->ud) : IORELAY_MODE_PLAIN;
}

/* The candidate proved itself (or the mode is plain): it becomes the connection, replacing
 * the current one (the guest re-dialled: its old connection is dead, whatever we think). */
static void promote(struct iorelay_cand *c, enum iorelay_mode m, const struct session_auth *a)
{
	struct iorelay *r = c->r;
	uint8_t hello[RESUME_HELLO_LEN];
	size_t n = c->n;
	memcpy(hello, c->hello, n);
	int fd = c->fd;
	ev_io_stop(r->loop, &c->w);
	ev_timer_stop(r->loop, &c->tmo);
	c->fd = -1;
	c->n = 0;
	c->reading = false;
	r->mode = m;
	if (a)
		r->auth = *a;
	if (m == IORELAY_MODE_PLAIN) {
		/* hcsshim's one connection: the others go */
		for (int i = 0; i < IORELAY_MAX_CANDIDATES; i++)
			cand_close(&r->cand[i]);
	}
	use_conn(r, fd);
	if (m != IORELAY_MODE_RESUME)
		return;
	if (r->lfd >= 0 && !r->done)
		ev_io_start(r->loop, &r->accept_w); /* the slot is free again */
	if (r->conn && !r->free_pending) {
		/* the HELLO read while proving: as if the stream had read it */
		buf_append(stream_input(r->conn), hello, n);
		iorelay_conn_read_resume(r, stream_input(r->conn));
	}
}

static void cand_examine(struct iorelay_cand *c);

static void on_cand_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct iorelay_cand *c = w->data;
	struct iorelay *r = c->r;
	struct err e;
	(void)loop;
	(void)revents;
	ssize_t n = fd_read(c->fd, c->hello + c->n, sizeof(c->hello) - c->n, &e);
	if (n == IO_AGAIN)
		return;
	iorelay_enter(r);
	if (n <= 0) {
		log_debug("stdio port %#x: candidate closed before its hello", r->port);
		cand_close(c);
	} else {
		c->n += (size_t)n;
		struct resume_hello h;
		int d = resume_hello_decode(c->hello, c->n, &h, &e);
		if (d < 0) {
			refuse(c, e.msg);
		} else if (d > 0) {
			struct session_auth a;
			if (ask_mode(r, &a) != IORELAY_MODE_RESUME)
				refuse(c, "the session changed");
			else if (resume_stream_hello_check(&r->end, &h, r->port, &a, &e) < 0)
				refuse(c, e.msg);
			else
				promote(c, IORELAY_MODE_RESUME, &a);
		}
	}
	iorelay_leave(r);
}

static void on_cand_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct iorelay_cand *c = w->data;
	(void)loop;
	(void)revents;
	iorelay_enter(c->r);
	refuse(c, "no hello in time");
	iorelay_leave(c->r);
}

/* Decide about a candidate once the mode is known: plain takes it, resume reads its HELLO. */
static void cand_examine(struct iorelay_cand *c)
{
	struct iorelay *r = c->r;
	if (c->fd < 0 || c->reading)
		return;
	struct session_auth a;
	enum iorelay_mode m = ask_mode(r, &a);
	if (m == IORELAY_MODE_UNKNOWN)
		return; /* parked until iorelay_mode_changed */
	if (m == IORELAY_MODE_PLAIN) {
		promote(c, m, NULL);
		return;
	}
	c->reading = true;
	ev_io_init(&c->w, on_cand_read, c->fd, EV_READ);
	c->w.data = c;
	ev_io_start(r->loop, &c->w);
	ev_timer_init(&c->tmo, on_cand_timeout, IORELAY_HELLO_TIMEOUT_MS / 1000.0, 0.);
	c->tmo.data = c;
	ev_timer_start(r->loop, &c->tmo);
}

static void examine_all(struct iorelay *r)
{
	for (int i = 0; i < IORELAY_MAX_CANDIDATES && !r->free_pending && !r->done; i++)
		cand_examine(&r->cand[i]);
}

static struct iorelay_cand *free_cand(struct iorelay *r)
{
	for (int i = 0; i < IORELAY_MAX_CANDIDATES; i++)
		if (r->cand[i].fd < 0)
			return &r->cand[i];
	return NULL;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct iorelay *r = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	struct iorelay_cand *slot = r->resumable ? free_cand(r) : NULL;
	if (r->resumable && !slot) {
		/* every slot holds a candidate: the next ones wait in the backlog */
		ev_io_stop(r->loop, &r->accept_w);
		return;
	}
	int fd = vsock_accept_peer(&r->addr, r->lfd, &e);
	if (fd == IO_AGAIN)
		return;
	if (fd == -EACCES) {
		log_limited(&r->refused, LOG_LVL_WARN, "stdio port %#x: %s", r->port, e.msg);
		return;
	}
	iorelay_enter(r);
	if (!r->resumable) {
		ev_io_stop(r->loop, &r->accept_w);
		vsock_unlisten(&r->addr, r->port, r->lfd);
		r->lfd = -1;
	}
	if (fd < 0) {
		err_prefix(&e, "stdio port %u: accept", r->port);
		if (r->resumable)
			log_warn("%s", e.msg);
		else
			iorelay_finish_stream(r, e.code, &e);
		iorelay_leave(r);
		return;
	}
	if (setup_local(r, &e) < 0) {
		close(fd);
		iorelay_finish_stream(r, e.code, &e);
		iorelay_leave(r);
		return;
	}
	if (r->resumable) {
		slot->fd = fd;
		slot->n = 0;
		slot->reading = false;
		cand_examine(slot);
	} else {
		r->mode = IORELAY_MODE_PLAIN;
		use_conn(r, fd);
	}
	iorelay_leave(r);
}

static int start_listen(struct iorelay *r, struct err *e)
{
	r->lfd = vsock_listen(&r->addr, r->port, e);
	if (r->lfd < 0) {
		r->lfd = -1;
		return err_prefix(e, "stdio port %u: listen", r->port);
	}
	ev_io_init(&r->accept_w, on_accept, r->lfd, EV_READ);
	r->accept_w.data = r;
	ev_io_start(r->loop, &r->accept_w);
	return 0;
}

struct iorelay *iorelay_new_resume(struct ev_loop *loop, const struct vsock_addr *addr,
                                   uint32_t port, enum iorelay_dir dir, int local_fd,
                                   const struct iorelay_ops *ops, void *ud,
                                   const struct iorelay_resume_config *rc, struct err *e)
{
	struct iorelay *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->addr = *addr;
	r->port = port;
	r->dir = dir;
	r->lfd = -1;
	r->local_fd = -1;
	for (int i = 0; i < IORELAY_MAX_CANDIDATES; i++) {
		r->cand[i].r = r;
		r->cand[i].fd = -1;
	}
	r->mode = IORELAY_MODE_PLAIN;
	if (ops)
		r->ops = *ops;
	r->ud = ud;
	buf_init(&r->early);
	if (dir == IORELAY_TO_GUEST)
		r->end.tx = &r->tx;
	else
		r->end.rx = &r->rx;
	ev_timer_init(&r->ack_timer, iorelay_on_ack_timer, 0., 0.);
	r->ack_timer.data = r;
	if (rc) {
		r->resumable = true;
		r->mode_fn = rc->mode;
		r->offset_known = rc->offset_known;
		resume_receiver_init(&r->rx, dir == IORELAY_FROM_GUEST ? rc->offset : 0);
		resume_sender_init(&r->tx, 0, dir == IORELAY_TO_GUEST ? rc->offset : 0);
		if (dir == IORELAY_TO_GUEST) {
			if (rc->n_unacked)
				buf_append(&r->early, rc->unacked, rc->n_unacked);
			r->close_write = rc->eof;
			iorelay_pull_early(r);
		}
	} else {
		resume_receiver_init(&r->rx, 0);
		resume_sender_init(&r->tx, 0, 0);
	}
	if (local_fd >= 0) {
		r->local_fd = fcntl(local_fd, F_DUPFD_CLOEXEC, 3);
		if (r->local_fd < 0) {
			err_sys(e, -errno, "stdio port %u: dup local fd %d", port, local_fd);
			relay_destroy(r);
			return NULL;
		}
	}
	if (start_listen(r, e) < 0) {
		relay_destroy(r);
		return NULL;
	}
	return r;
}

struct iorelay *iorelay_new(struct ev_loop *loop, const struct vsock_addr *addr, uint32_t port,
                            enum iorelay_dir dir, int local_fd, const struct iorelay_ops *ops,
                            void *ud, struct err *e)
{
	return iorelay_new_resume(loop, addr, port, dir, local_fd, ops, ud, NULL, e);
}

void iorelay_free(struct iorelay *r)
{
	if (!r)
		return;
	if (r->depth > 0) {
		/* Inside one of our callbacks: quiesce now, free on the way out. */
		r->free_pending = true;
		r->done = true;
		stop_listen(r);
		ev_timer_stop(r->loop, &r->ack_timer);
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
	if (r->resumable) {
		buf_append(&r->early, data, n);
		if (r->mode == IORELAY_MODE_RESUME) {
			iorelay_pump(r);
			return 0;
		}
		if (!r->conn)
			return 0;
		int rc = stream_write(r->conn, buf_head(&r->early), buf_avail(&r->early), e);
		if (rc == 0)
			r->bytes += buf_avail(&r->early);
		buf_reset(&r->early);
		return rc;
	}
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
	if (r->mode == IORELAY_MODE_RESUME)
		iorelay_pump(r);
	else if (r->conn)
		stream_shutdown_write(r->conn);
	return 0;
}

void iorelay_mode_changed(struct iorelay *r)
{
	iorelay_enter(r);
	examine_all(r);
	iorelay_leave(r);
}

void iorelay_cut(struct iorelay *r)
{
	stop_listen(r);
	iorelay_drop_conn(r);
	r->cut = true;
}

int iorelay_relisten(struct iorelay *r, struct err *e)
{
	if (r->done || r->lfd >= 0)
		return 0;
	r->cut = false;
	return start_listen(r, e);
}

bool iorelay_dialled(const struct iorelay *r)
{
	return r->dialled || r->done;
}

uint32_t iorelay_port(const struct iorelay *r)
{
	return r->port;
}

bool iorelay_connected(const struct iorelay *r)
{
	return r->conn != NULL || r->conn_eof || (r->lfd < 0 && !r->cut && !r->resumable);
}

bool iorelay_done(const struct iorelay *r)
{
	return r->done;
}

uint64_t iorelay_bytes(const struct iorelay *r)
{
	return r->bytes;
}

bool iorelay_attached(const struct iorelay *r)
{
	if (r->done)
		return true;
	if (!r->conn)
		return false;
	return r->mode != IORELAY_MODE_RESUME || r->rc.state == RESUME_CONN_STREAM;
}

static int count_cand(const struct iorelay *r)
{
	int n = 0;
	for (int i = 0; i < IORELAY_MAX_CANDIDATES; i++)
		n += r->cand[i].fd >= 0;
	return n;
}

int iorelay_describe(const struct iorelay *r, char *out, size_t n)
{
	return snprintf(
	    out, n,
	    "port=%#x dir=%s mode=%d listening=%d candidates=%d conn=%d rc=%d held=%d "
	    "done=%d fin=%d eof=%d delivered=%llu tx=%llu/%llu/%llu eof=%d",
	    r->port, r->dir == IORELAY_TO_GUEST ? "in" : "out", (int)r->mode, r->lfd >= 0,
	    count_cand(r), r->conn != NULL, (int)r->rc.state, r->held, r->done, r->finish_requested,
	    r->rx.eof, (unsigned long long)r->rx.delivered, (unsigned long long)r->tx.acked,
	    (unsigned long long)r->tx.sent, (unsigned long long)r->tx.produced, r->tx.eof);
}
