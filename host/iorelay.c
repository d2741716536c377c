/* Host end of one guest stdio stream: accept the guest's connection on a vsock port, then copy
 * between it and a local endpoint with common/stream.h on both sides, pausing the reading side
 * while the writing side holds more than IORELAY_HIGH_WATER bytes.  The local fd is dup'ed so
 * the caller's copy is untouched (apart from O_NONBLOCK, which is shared by the open file
 * description).  Regular files work too: libev treats them as always ready.
 * Two modes per connection: PLAIN (hcsshim: one connection, raw bytes, EOF ends the stream)
 * and RESUME (docs/stdio-resume.md §2: HELLO/READY, 8-byte ACKs, re-dials replace the
 * connection, offsets count from the start of the stream; bridge/resume.h does the codec and
 * the retained stdin buffer). */
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
	struct buf early;  /* TO_GUEST bytes not yet taken by the connection / the sender */
	bool close_write;  /* TO_GUEST: EOF requested */
	bool conn_eof;     /* FROM_GUEST: the guest finished sending (plain mode) */
	bool local_failed; /* the sink failed: discard further output */
	struct err local_err;
	bool done;
	unsigned depth; /* nesting of our callbacks, for deferred free */
	bool free_pending;
	uint64_t bytes;

	/* resume support */
	bool resumable; /* created by iorelay_new_resume */
	enum iorelay_mode (*mode_fn)(struct iorelay *r, void *ud);
	enum iorelay_mode mode; /* of the current connection */
	int parked_fd;          /* accepted, mode not known yet */
	bool cut;               /* iorelay_cut: not listening */
	struct resume_conn rc;
	struct resume_receiver rx; /* FROM_GUEST: rx.delivered = accepted by the sink */
	bool offset_known;
	bool held;                 /* HELLO received, READY waits for the offset */
	struct resume_hello hello; /* the held HELLO */
	uint64_t sink_seen;        /* stream_bytes_out(local) already counted in rx */
	bool closing;              /* final ack written: close once it drained */
	bool finish_requested;     /* iorelay_finish */
	struct resume_sender tx;   /* TO_GUEST */
	bool shut;                 /* TO_GUEST: this connection was half-closed */
	ev_timer ack_timer;
	uint8_t *export_buf;
};

static bool resume_conn_live(const struct iorelay *r)
{
	return r->conn && r->mode == IORELAY_MODE_RESUME;
}

static void drop_conn(struct iorelay *r)
{
	stream_free(r->conn);
	r->conn = NULL;
	r->held = false;
	r->closing = false;
	r->shut = false;
	ev_timer_stop(r->loop, &r->ack_timer);
}

static void stop_listen(struct iorelay *r)
{
	if (r->lfd >= 0) {
		ev_io_stop(r->loop, &r->accept_w);
		vsock_unlisten(&r->addr, r->port, r->lfd);
		r->lfd = -1;
	}
	if (r->parked_fd >= 0) {
		close(r->parked_fd);
		r->parked_fd = -1;
	}
}

static void relay_destroy(struct iorelay *r)
{
	stop_listen(r);
	drop_conn(r);
	stream_free(r->local);
	if (r->local_fd >= 0)
		close(r->local_fd);
	buf_fini(&r->early);
	resume_sender_fini(&r->tx);
	free(r->export_buf);
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
	if (r->resumable) {
		stop_listen(r);
		if (r->conn && r->mode == IORELAY_MODE_RESUME && r->dir == IORELAY_FROM_GUEST &&
		    stream_pending(r->conn) > 0) {
			/* let a final ack drain; the stream is freed with the relay */
		} else if (r->mode == IORELAY_MODE_RESUME) {
			drop_conn(r);
		}
	}
	if (r->ops.on_done)
		r->ops.on_done(r, status, e, r->ud);
}

/* ---- resume: FROM_GUEST (receiver) ---- */

/* Bytes handed to the sink, delivered or still queued in the local stream. */
static uint64_t handed(const struct iorelay *r)
{
	return r->rx.delivered + (r->local ? stream_pending(r->local) : 0);
}

static void send_ack_now(struct iorelay *r, uint64_t off)
{
	uint8_t m[RESUME_ACK_LEN];
	struct err e;
	resume_ack_encode(off, m);
	if (r->conn)
		stream_write(r->conn, m, sizeof(m), &e);
}

static void arm_ack(struct iorelay *r)
{
	if (!resume_conn_live(r) || r->rc.state != RESUME_CONN_STREAM)
		return;
	uint64_t now = (uint64_t)mono_ns();
	uint64_t off;
	if (resume_receiver_ack_due(&r->rx, now) && resume_receiver_take_ack(&r->rx, &off))
		send_ack_now(r, off);
	uint64_t dl = resume_receiver_ack_deadline(&r->rx);
	ev_timer_stop(r->loop, &r->ack_timer);
	if (dl != UINT64_MAX) {
		double d = dl > now ? (double)(dl - now) / 1e9 : 0.0;
		ev_timer_set(&r->ack_timer, d, 0.);
		ev_timer_start(r->loop, &r->ack_timer);
	}
}

/* Count sink progress (kernel-accepted bytes) into the receiver. */
static void sync_sink(struct iorelay *r)
{
	if (!r->local)
		return;
	uint64_t out = stream_bytes_out(r->local);
	if (out > r->sink_seen) {
		resume_receiver_deliver(&r->rx, (size_t)(out - r->sink_seen), (uint64_t)mono_ns());
		r->sink_seen = out;
	}
}

static void maybe_close_resumed(struct iorelay *r)
{
	/* After the guest's half-close: ack the final offset once the sink has it all, close. */
	if (!resume_conn_live(r) || !r->rx.eof || r->closing)
		return;
	if (r->local && !r->local_failed && stream_pending(r->local) > 0)
		return;
	uint64_t off = r->rx.delivered;
	resume_receiver_take_ack(&r->rx, &off);
	send_ack_now(r, r->rx.delivered);
	r->closing = true;
	if (stream_pending(r->conn) == 0)
		drop_conn(r);
}

static void maybe_finish_resume(struct iorelay *r)
{
	if (!r->finish_requested || r->done)
		return;
	if (r->local && !r->local_failed && stream_pending(r->local) > 0)
		return;
	if (r->local_failed)
		finish(r, r->local_err.code, &r->local_err);
	else
		finish(r, 0, NULL);
}

static void deliver(struct iorelay *r, const uint8_t *p, size_t n)
{
	r->bytes += n;
	if (r->local_failed) {
		/* discard, but count: the guest must be able to finish */
		resume_receiver_deliver(&r->rx, n, (uint64_t)mono_ns());
	} else if (r->local) {
		struct err e;
		if (stream_write(r->local, p, n, &e) < 0) {
			r->local_failed = true;
			r->local_err = e;
		}
		sync_sink(r);
		if (r->conn && stream_pending(r->local) > IORELAY_HIGH_WATER)
			stream_pause_read(r->conn);
	} else {
		resume_receiver_deliver(&r->rx, n, (uint64_t)mono_ns());
		if (r->ops.on_data)
			r->ops.on_data(r, p, n, r->ud);
	}
}

static int answer_output(struct iorelay *r, struct err *e)
{
	uint64_t have = handed(r);
	struct resume_ready rd = {.version = RESUME_VERSION, .offset = have};
	if (have < r->hello.offset) {
		/* The guest dropped bytes this host never delivered: cannot happen with the
		 * invariants; log and continue from its floor. */
		log_warn("stdio port %u: gap %llu..%llu", r->port, (unsigned long long)have,
		         (unsigned long long)r->hello.offset);
		rd.status = RESUME_STATUS_GAP;
		r->rx.gap_bytes += r->hello.offset - have;
		resume_receiver_deliver(&r->rx, (size_t)(r->hello.offset - have),
		                        (uint64_t)mono_ns());
	}
	uint8_t m[RESUME_READY_LEN];
	if (resume_conn_answer(&r->rc, &rd, m, e) < 0)
		return e->code;
	r->rx.acked = r->rx.delivered; /* READY implies it */
	r->held = false;
	stream_write(r->conn, m, sizeof(m), e);
	return 0;
}

/* ---- resume: TO_GUEST (sender) ---- */

static void pull_early(struct iorelay *r)
{
	size_t n = buf_avail(&r->early);
	if (n) {
		size_t took = resume_sender_append(&r->tx, buf_head(&r->early), n);
		buf_consume(&r->early, took);
	}
	if (r->close_write && buf_avail(&r->early) == 0 && !r->tx.eof)
		resume_sender_set_eof(&r->tx);
	if (r->local && buf_avail(&r->early) < IORELAY_HIGH_WATER)
		stream_resume_read(r->local);
}

static void pump(struct iorelay *r)
{
	pull_early(r);
	if (!resume_conn_live(r) || r->rc.state != RESUME_CONN_STREAM)
		return;
	struct err e;
	while (stream_pending(r->conn) < IORELAY_HIGH_WATER) {
		const uint8_t *p;
		size_t n;
		resume_sender_peek(&r->tx, &p, &n);
		if (n == 0)
			break;
		if (stream_write(r->conn, p, n, &e) < 0)
			return;
		r->bytes += n;
		resume_sender_advance(&r->tx, n, &e);
	}
	if (resume_sender_all_sent(&r->tx) && !r->shut) {
		r->shut = true;
		stream_shutdown_write(r->conn);
	}
}

/* ---- guest connection callbacks ---- */

static void conn_read_resume(struct iorelay *r, struct stream *s, struct buf *in)
{
	const uint8_t *p = buf_head(in);
	size_t n = buf_avail(in);
	size_t off = 0;
	while (off < n || r->rc.staged) {
		struct resume_event ev;
		size_t used = 0;
		struct err e;
		int rc = resume_conn_feed(&r->rc, p + off, n - off, &used, &ev, &e);
		if (rc < 0) {
			log_warn("stdio port %u: %s", r->port, e.msg);
			buf_consume(in, n);
			drop_conn(r);
			return;
		}
		off += used;
		if (rc == 0)
			break;
		switch (ev.type) {
		case RESUME_EV_HELLO:
			r->hello = ev.hello;
			if (r->dir == IORELAY_TO_GUEST) {
				struct resume_ready rd;
				uint8_t m[RESUME_READY_LEN];
				if (resume_sender_answer(&r->tx, &ev.hello, &rd, &e) < 0)
					log_warn("stdio port %u: %s", r->port, e.msg);
				resume_conn_answer(&r->rc, &rd, m, &e);
				stream_write(s, m, sizeof(m), &e);
				pump(r);
			} else if (r->offset_known) {
				if (answer_output(r, &e) < 0) {
					buf_consume(in, n);
					drop_conn(r);
					return;
				}
			} else {
				r->held = true; /* READY when the offset arrives */
			}
			break;
		case RESUME_EV_ACK:
			if (resume_sender_ack(&r->tx, ev.ack, &e) < 0) {
				log_warn("stdio port %u: %s", r->port, e.msg);
				buf_consume(in, n);
				drop_conn(r);
				return;
			}
			/* Done only when the guest closes after its final ACK: an ACK of
			 * everything may have been sent before it saw our half-close. */
			pump(r);
			break;
		case RESUME_EV_DATA: {
			uint64_t h = handed(r);
			size_t skip = 0;
			if (h > ev.data.offset)
				skip = h - ev.data.offset < ev.data.len
				           ? (size_t)(h - ev.data.offset)
				           : ev.data.len;
			if (ev.data.len > skip)
				deliver(r, ev.data.p + skip, ev.data.len - skip);
			if (r->free_pending || !r->conn)
				return;
			break;
		}
		case RESUME_EV_READY:
			break;
		}
		if (r->free_pending || !r->conn)
			return;
	}
	buf_consume(in, n);
	if (r->dir == IORELAY_FROM_GUEST)
		arm_ack(r);
}

static void conn_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		conn_read_resume(r, s, in);
		leave(r);
		return;
	}
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

/* FROM_GUEST plain: everything received and the sink has drained (or failed). */
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

static void conn_on_eof(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		if (r->dir == IORELAY_FROM_GUEST && r->rc.state == RESUME_CONN_STREAM) {
			resume_receiver_set_eof(&r->rx);
			maybe_close_resumed(r);
		} else if (r->dir == IORELAY_TO_GUEST && r->shut && resume_sender_done(&r->tx)) {
			/* The guest acknowledged our EOF and closed: stdin is complete. */
			drop_conn(r);
			finish(r, 0, NULL);
		} else {
			drop_conn(r); /* a cut or the process is gone: wait for a re-dial */
		}
		leave(r);
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
	if (r->mode == IORELAY_MODE_RESUME) {
		drop_conn(r); /* wait for the re-dial */
		leave(r);
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
	enter(r);
	if (r->mode == IORELAY_MODE_RESUME) {
		if (r->closing)
			drop_conn(r);
		else if (r->dir == IORELAY_TO_GUEST)
			pump(r);
	} else if (r->dir == IORELAY_TO_GUEST && r->local) {
		stream_resume_read(r->local);
	}
	leave(r);
}

static void on_ack_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct iorelay *r = w->data;
	(void)loop;
	(void)revents;
	enter(r);
	arm_ack(r);
	leave(r);
}

/* ---- local endpoint callbacks ---- */

static void local_on_read(struct stream *s, struct buf *in, void *ud)
{
	struct iorelay *r = ud;
	size_t n = buf_avail(in);
	if (r->resumable) {
		enter(r);
		buf_append(&r->early, buf_head(in), n);
		buf_consume(in, n);
		if (buf_avail(&r->early) > IORELAY_HIGH_WATER)
			stream_pause_read(s);
		if (r->mode == IORELAY_MODE_RESUME)
			pump(r);
		else if (r->conn && stream_write(r->conn, buf_head(&r->early), buf_avail(&r->early),
		                                 &(struct err){0}) == 0) {
			r->bytes += buf_avail(&r->early);
			buf_reset(&r->early);
		}
		leave(r);
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
	enter(r);
	r->close_write = true;
	if (r->mode == IORELAY_MODE_RESUME)
		pump(r);
	else if (r->conn && buf_avail(&r->early) == 0)
		stream_shutdown_write(r->conn);
	leave(r);
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
		if (r->mode == IORELAY_MODE_RESUME)
			pump(r);
		else if (r->conn)
			stream_shutdown_write(r->conn);
	} else if (r->conn) {
		stream_resume_read(r->conn); /* discard the rest, but read to EOF */
	}
	maybe_finish_from_guest(r);
	maybe_close_resumed(r);
	maybe_finish_resume(r);
	leave(r);
}

static void local_on_drain(struct stream *s, void *ud)
{
	struct iorelay *r = ud;
	(void)s;
	enter(r);
	if (r->dir == IORELAY_FROM_GUEST) {
		if (r->resumable) {
			sync_sink(r);
			arm_ack(r);
		}
		if (r->conn)
			stream_resume_read(r->conn);
		maybe_finish_from_guest(r);
		maybe_close_resumed(r);
		maybe_finish_resume(r);
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
	drop_conn(r);
	r->conn = stream_new(r->loop, fd, &cbs, r, &e);
	if (!r->conn) {
		err_prefix(&e, "stdio port %u", r->port);
		if (r->mode == IORELAY_MODE_RESUME)
			log_warn("%s", e.msg);
		else
			finish(r, e.code, &e);
		return;
	}
	if (r->mode == IORELAY_MODE_RESUME) {
		resume_conn_init(&r->rc, RESUME_LISTENER, r->dir == IORELAY_TO_GUEST);
		return;
	}
	/* PLAIN: one connection, as the Go host's ioChannel. */
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

static void take_parked(struct iorelay *r)
{
	if (r->parked_fd < 0)
		return;
	enum iorelay_mode m = r->mode_fn ? r->mode_fn(r, r->ud) : IORELAY_MODE_PLAIN;
	if (m == IORELAY_MODE_UNKNOWN)
		return;
	r->mode = m;
	int fd = steal_fd(&r->parked_fd);
	use_conn(r, fd);
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
			finish(r, e.code, &e);
		leave(r);
		return;
	}
	if (setup_local(r, &e) < 0) {
		close(fd);
		finish(r, e.code, &e);
		leave(r);
		return;
	}
	if (r->resumable) {
		/* A re-dial replaces whatever connection we had. */
		drop_conn(r);
		if (r->parked_fd >= 0)
			close(r->parked_fd);
		r->parked_fd = fd;
		take_parked(r);
	} else {
		r->mode = IORELAY_MODE_PLAIN;
		use_conn(r, fd);
	}
	leave(r);
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
	r->parked_fd = -1;
	r->mode = IORELAY_MODE_PLAIN;
	if (ops)
		r->ops = *ops;
	r->ud = ud;
	buf_init(&r->early);
	ev_timer_init(&r->ack_timer, on_ack_timer, 0., 0.);
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
			pull_early(r);
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
			pump(r);
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
		pump(r);
	else if (r->conn)
		stream_shutdown_write(r->conn);
	return 0;
}

void iorelay_mode_changed(struct iorelay *r)
{
	enter(r);
	take_parked(r);
	leave(r);
}

int iorelay_set_offset(struct iorelay *r, uint64_t offset, struct err *e)
{
	if (r->dir != IORELAY_FROM_GUEST)
		return err_set(e, -EINVAL, "stdio port %u: not an output stream", r->port);
	if (r->offset_known) {
		if (offset != r->rx.delivered && r->rx.delivered == r->rx.acked && offset > 0)
			return err_set(e, -EINVAL, "stdio port %u: offset already known (%llu)",
			               r->port, (unsigned long long)r->rx.delivered);
		return 0;
	}
	resume_receiver_init(&r->rx, offset);
	r->offset_known = true;
	if (r->held && r->conn) {
		enter(r);
		if (answer_output(r, e) < 0)
			drop_conn(r);
		else
			/* bytes that arrived with the HELLO were kept in the conn's input */
			conn_on_read(r->conn, stream_input(r->conn), r);
		leave(r);
	}
	return 0;
}

void iorelay_cut(struct iorelay *r)
{
	stop_listen(r);
	drop_conn(r);
	r->cut = true;
}

int iorelay_relisten(struct iorelay *r, struct err *e)
{
	if (r->done || r->lfd >= 0)
		return 0;
	r->cut = false;
	return start_listen(r, e);
}

void iorelay_finish(struct iorelay *r)
{
	r->finish_requested = true;
	enter(r);
	maybe_finish_resume(r);
	leave(r);
}

void iorelay_get_resume_state(struct iorelay *r, struct iorelay_resume_state *out)
{
	memset(out, 0, sizeof(*out));
	if (r->dir == IORELAY_FROM_GUEST) {
		sync_sink(r);
		out->offset = r->rx.delivered;
		out->offset_known = r->offset_known;
		out->eof = r->done;
		return;
	}
	/* stdin: acknowledged offset, then every byte after it (retained + not yet taken). */
	out->offset = r->tx.acked;
	out->offset_known = true;
	out->eof = r->close_write;
	size_t n = (size_t)(r->tx.produced - r->tx.floor) + buf_avail(&r->early);
	free(r->export_buf);
	r->export_buf = xmalloc(n + 1);
	size_t w = 0;
	uint64_t saved = r->tx.sent;
	struct err e;
	if (resume_sender_rewind(&r->tx, r->tx.floor, &e) == 0) {
		for (;;) {
			const uint8_t *p;
			size_t len;
			resume_sender_peek(&r->tx, &p, &len);
			if (len == 0)
				break;
			memcpy(r->export_buf + w, p, len);
			w += len;
			resume_sender_advance(&r->tx, len, &e);
		}
		resume_sender_rewind(&r->tx, saved, &e);
	}
	if (buf_avail(&r->early)) {
		memcpy(r->export_buf + w, buf_head(&r->early), buf_avail(&r->early));
		w += buf_avail(&r->early);
	}
	out->unacked = r->export_buf;
	out->n_unacked = w;
	out->offset = r->tx.floor;
}

bool iorelay_is_resume(const struct iorelay *r)
{
	return r->resumable && r->mode == IORELAY_MODE_RESUME;
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

int iorelay_describe(const struct iorelay *r, char *out, size_t n)
{
	return snprintf(out, n,
	                "port=%#x dir=%s mode=%d listening=%d parked=%d conn=%d rc=%d held=%d "
	                "done=%d fin=%d eof=%d delivered=%llu tx=%llu/%llu/%llu eof=%d",
	                r->port, r->dir == IORELAY_TO_GUEST ? "in" : "out", (int)r->mode,
	                r->lfd >= 0, r->parked_fd >= 0, r->conn != NULL, (int)r->rc.state, r->held,
	                r->done, r->finish_requested, r->rx.eof,
	                (unsigned long long)r->rx.delivered, (unsigned long long)r->tx.acked,
	                (unsigned long long)r->tx.sent, (unsigned long long)r->tx.produced,
	                r->tx.eof);
}
