/* Stdio relays: each stream moves bytes between the process side (a pipe or the pty master)
 * and a host connection through a bounded buffer, driven by ev_io watchers that are armed
 * only while they can make progress (the source is not read while the buffer is full; a sink
 * is watched only after a short write).  An output stream's bytes live in a struct
 * resume_sender (bridge/resume.h), read straight into its ring from the process: offsets
 * [floor, produced) are retained, `sent` marks what the current connection was given, so that
 * a replaced connection can continue exactly where the host says (resume mode) or replay a
 * tail (plain mode); an unlinked stream keeps no tail.  Output streams finish with the GCS
 * clean close (flush, shutdown(SHUT_WR), wait for the host's EOF, and in resume mode its final
 * ACK); the relay reports "done" once every output stream finished, which is what lets the
 * runtime report a process's exit only after the host saw all of its output.  Linked streams
 * re-dial their port and speak the resume handshake through relay_hub.c; this file only calls
 * into it when a connection is lost, bytes arrive on a resume-mode connection, or an ACK is
 * due.  Callbacks may free the relay: a busy counter defers the destruction until the
 * outermost callback frame unwinds. */
#include "guest/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge/resume.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "guest/relay_priv.h"

#define RELAY_CHUNK    16384        /* stdin: bytes per read from the host */
#define RELAY_READ_MAX (256 * 1024) /* output: bytes per read from the process */

_Static_assert(RESUME_SENDER_CAP >= RESUME_FALLBACK_TAIL + RELAY_BUF_MAX,
               "the retained buffer holds the fallback tail plus the unsent bound");

/* ---- watchers ---- */

void relay_conn_stop(struct relay_stream *s)
{
	ev_io_stop(s->r->loop, &s->crd);
	ev_io_stop(s->r->loop, &s->cwr);
}

static void stream_stop(struct relay_stream *s)
{
	ev_io_stop(s->r->loop, &s->prd);
	ev_io_stop(s->r->loop, &s->pwr);
	relay_conn_stop(s);
	ev_timer_stop(s->r->loop, &s->tm);
}

static void stream_close_fds(struct relay_stream *s)
{
	stream_stop(s);
	vsock_dialer_free(s->dial);
	s->dial = NULL;
	if (!s->proc_shared)
		relay_close_fd(&s->proc_fd);
	s->proc_fd = -1;
	relay_close_fd(&s->conn_fd);
	s->cs = C_NONE;
}

static bool all_outputs_finished(const struct relay *r)
{
	for (int i = RELAY_STDOUT; i <= RELAY_STDERR; i++)
		if (r->s[i] && !r->s[i]->done)
			return false;
	return true;
}

/* Fire "done" if due (the callback may free the relay: callers return right after). */
static void maybe_fire_done(struct relay *r)
{
	if (r->done_fired || r->free_pending || !all_outputs_finished(r))
		return;
	r->done_fired = true;
	ev_timer_stop(r->loop, &r->kick);
	if (r->done)
		r->done(r, r->ud);
}

void relay_stream_finish(struct relay_stream *s)
{
	stream_close_fds(s);
	relay_hub_unlink(s);
	buf_reset(&s->buf);
	resume_sender_fini(&s->tx);
	s->done = true;
	if (s->output)
		maybe_fire_done(s->r);
}

static void relay_destroy(struct relay *r)
{
	for (int i = 0; i < 3; i++) {
		struct relay_stream *s = r->s[i];
		if (!s)
			continue;
		stream_close_fds(s);
		relay_hub_unlink(s);
		buf_fini(&s->buf);
		resume_sender_fini(&s->tx);
		free(s);
	}
	ev_timer_stop(r->loop, &r->kick);
	relay_close_fd(&r->pty);
	relay_close_fd(&r->spare_fd);
	free(r);
}

void relay_enter(struct relay *r)
{
	r->busy++;
}

void relay_leave(struct relay *r)
{
	if (--r->busy == 0 && r->free_pending)
		relay_destroy(r);
}

/* ---- connection loss ---- */

/* The connection failed or was cut: pause for a new one (lost callback), re-dial (linked), or
 * give up on the stream. */
void relay_stream_conn_lost(struct relay_stream *s, int code)
{
	relay_conn_stop(s);
	ev_timer_stop(s->r->loop, &s->tm);
	vsock_dialer_free(s->dial);
	s->dial = NULL;
	relay_close_fd(&s->conn_fd);
	s->cs = C_NONE;
	s->wr_shut = false;
	s->nack = 0;
	if (s->hub && !s->no_redial) {
		log_debug("relay: stream=%d port=%u connection lost: %s (re-dialling)",
		          (int)s->which, s->port, strerror(-code));
		if (!s->output) {
			/* stdin: the host sends again from what reached the process */
			if (relay_resume_on(s)) {
				buf_reset(&s->buf);
				s->nread = s->rx.delivered;
			}
			s->src_eof = false;
		}
		/* 1 ms, not at once: when the whole host went away the bridge's loss is seen
		 * within that time and closes the hub, so no stream re-dials in the old
		 * connection's mode; relay_hub_open then dials every waiting stream at once */
		s->backoff_ms = 0;
		relay_hub_backoff(s);
		relay_stream_pump(s); /* keep reading the process into the retained buffer */
		return;
	}
	if (s->lost_cb && !s->hub) {
		s->lost_cb(s, code, s->lost_ud);
		relay_stream_pump(s);
		return;
	}
	log_debug("relay: stream=%d connection lost: %s", (int)s->which, strerror(-code));
	relay_stream_finish(s);
}

/* ---- the pumps ---- */

static bool output_can_read(const struct relay_stream *s)
{
	if (s->src_eof || s->done)
		return false;
	if (s->tx.produced - s->tx.sent >= RELAY_BUF_MAX)
		return false;
	return resume_sender_free(&s->tx) > 0;
}

/* Output: the end (EOF from the host after our half-close, and in resume mode the final ACK). */
static bool output_complete(const struct relay_stream *s)
{
	return s->wr_shut && (!relay_resume_on(s) || s->tx.acked == s->tx.produced);
}

/* Output: read the process once into the ring.  True when bytes came (*drained: fewer than
 * asked, so the pipe is empty for now and another read would only say EAGAIN). */
static bool output_read(struct relay_stream *s, bool *drained)
{
	struct err e;
	size_t want = RELAY_READ_MAX;
	size_t unsent_room = RELAY_BUF_MAX - (size_t)(s->tx.produced - s->tx.sent);
	if (want > unsent_room)
		want = unsent_room;
	size_t room;
	uint8_t *p = resume_sender_reserve(&s->tx, want, s->rfull, &room);
	if (room == 0)
		return false;
	ssize_t n = fd_read(s->proc_fd, p, room, &e);
	s->rfull = n == (ssize_t)room;
	if (n > 0) {
		resume_sender_commit(&s->tx, (size_t)n);
		if (s->discard) {
			/* no connection to give them to: drop (the tail is 0) */
			resume_sender_advance(&s->tx, (size_t)n, &e);
			s->nwritten = s->tx.produced;
		}
		*drained = (size_t)n < room;
		return true;
	}
	if (n != IO_AGAIN) {
		/* EOF, or EIO from a pty master whose slaves are all closed, or a broken source:
		 * nothing more will come. */
		if (n != IO_EOF && n != -EIO)
			log_debug("relay: stream=%d read: %s", (int)s->which, e.msg);
		s->src_eof = true;
		resume_sender_set_eof(&s->tx);
	}
	*drained = true;
	return false;
}

/* Output: give the connection everything unsent, until it would block (*blocked).  0, or a
 * negative errno when the connection failed. */
static int output_write(struct relay_stream *s, bool *progress, bool *blocked)
{
	struct err e;
	while (s->tx.sent < s->tx.produced) {
		const uint8_t *p;
		size_t len;
		resume_sender_peek(&s->tx, &p, &len);
		ssize_t n = fd_write(s->conn_fd, p, len, &e);
		if (n == IO_AGAIN) {
			*blocked = true;
			break;
		}
		if (n < 0)
			return (int)n;
		/* fallback mode: the floor follows `sent`, keeping the tail */
		resume_sender_advance(&s->tx, (size_t)n, &e);
		if (s->tx.sent > s->nwritten)
			s->nwritten = s->tx.sent;
		*progress = true;
		if ((size_t)n < len) {
			*blocked = true; /* the socket buffer is full: wait for writable */
			break;
		}
	}
	relay_hub_trim(s);
	return 0;
}

static void pump_output(struct relay_stream *s)
{
	struct ev_loop *loop = s->r->loop;
	bool sink_blocked = false, drained = false;

	for (;;) {
		bool progress = false;
		if (!drained && output_can_read(s))
			progress = output_read(s, &drained);
		if (s->cs == C_UP && !s->wr_shut && s->tx.sent < s->tx.produced && !sink_blocked) {
			int rc = output_write(s, &progress, &sink_blocked);
			if (rc < 0) {
				relay_stream_conn_lost(s, rc);
				return;
			}
		}
		if (!progress)
			break;
	}
	if (s->src_eof && s->tx.sent == s->tx.produced) {
		if (s->discard || (s->conn_fd < 0 && !s->hub && !s->lost_cb)) {
			relay_stream_finish(s);
			return;
		}
		if (s->cs == C_UP && !s->wr_shut) {
			if (shutdown(s->conn_fd, SHUT_WR) < 0) {
				if (errno == ENOTSOCK) {
					relay_stream_finish(s);
					return;
				}
				relay_stream_conn_lost(s, -errno);
				return;
			}
			s->wr_shut = true;
		}
	}
	if (output_can_read(s))
		ev_io_start(loop, &s->prd);
	else
		ev_io_stop(loop, &s->prd);
	if (sink_blocked)
		ev_io_start(loop, &s->cwr);
	else
		ev_io_stop(loop, &s->cwr);
	if (s->cs == C_UP || s->cs == C_HELLO)
		ev_io_start(loop, &s->crd);
}

/* Output: the connection is readable (READY, ACKs, stray bytes, EOF, errors). */
static void output_conn_read(struct relay_stream *s)
{
	struct err e;
	uint8_t scratch[512];
	for (int i = 0; i < 16; i++) {
		ssize_t n = fd_read(s->conn_fd, scratch, sizeof(scratch), &e);
		if (n == IO_AGAIN)
			break;
		if (n > 0) {
			if (!relay_resume_on(s))
				continue; /* the host should not write here: ignore */
			int rc = relay_hub_output_feed(s, scratch, (size_t)n);
			if (rc == RELAY_GAVE_UP)
				return;
			if (rc < 0) {
				relay_stream_conn_lost(s, rc);
				return;
			}
			if ((size_t)n < sizeof(scratch))
				break; /* drained: the next read would only say EAGAIN */
			continue;
		}
		if (n == IO_EOF && output_complete(s)) {
			relay_stream_finish(s);
			return;
		}
		relay_stream_conn_lost(s, n == IO_EOF ? -ECONNRESET : (int)n);
		return;
	}
	relay_stream_pump(s);
}

static void pump_input(struct relay_stream *s)
{
	struct ev_loop *loop = s->r->loop;
	struct err e;
	bool sink_blocked = false;

	for (;;) {
		bool progress = false;
		if (s->cs == C_UP && !s->src_eof && buf_avail(&s->buf) < RELAY_BUF_MAX) {
			size_t room = RELAY_BUF_MAX - buf_avail(&s->buf);
			if (room > RELAY_CHUNK)
				room = RELAY_CHUNK;
			uint8_t *p = buf_reserve(&s->buf, room);
			ssize_t n = fd_read(s->conn_fd, p, room, &e);
			if (n > 0) {
				s->nread += (uint64_t)n;
				ssize_t keep =
				    relay_resume_on(s) ? relay_hub_input_data(s, p, (size_t)n) : n;
				if (keep < 0) {
					relay_stream_conn_lost(s, (int)keep);
					return;
				}
				buf_commit(&s->buf, (size_t)keep);
				progress = true;
			} else if (n == IO_EOF) {
				s->src_eof = true;
			} else if (n != IO_AGAIN) {
				if (s->hub) {
					relay_stream_conn_lost(s, (int)n);
					return;
				}
				s->src_eof = true;
			}
		}
		if (buf_avail(&s->buf) > 0 && !sink_blocked) {
			ssize_t n = fd_write(s->proc_fd, buf_head(&s->buf), buf_avail(&s->buf), &e);
			if (n > 0) {
				buf_consume(&s->buf, (size_t)n);
				resume_receiver_deliver(&s->rx, (size_t)n, (uint64_t)mono_ns());
				progress = true;
			} else if (n == IO_AGAIN) {
				sink_blocked = true;
			} else {
				/* the process closed its stdin (EPIPE): drop the stream */
				relay_stream_finish(s);
				return;
			}
		}
		if (!progress)
			break;
	}
	if (relay_resume_on(s) && s->cs == C_UP) {
		bool final = s->src_eof && buf_avail(&s->buf) == 0;
		if (final)
			resume_receiver_set_eof(&s->rx);
		int rc = relay_hub_ack_send(s, final);
		if (rc < 0) {
			/* the final ACK cannot be written: the host did not half-close, it went
			 * away (a cut that looks like EOF): re-dial */
			relay_stream_conn_lost(s, rc);
			return;
		}
		if (final && s->nack > 0)
			return; /* finish once the ACK is out (cwr) */
	}
	if (s->src_eof && buf_avail(&s->buf) == 0) {
		/* host closed stdin: close the pipe so the process sees EOF */
		relay_stream_finish(s);
		return;
	}
	if (s->cs == C_HELLO ||
	    (s->cs == C_UP && !s->src_eof && buf_avail(&s->buf) < RELAY_BUF_MAX))
		ev_io_start(loop, &s->crd);
	else
		ev_io_stop(loop, &s->crd);
	if (sink_blocked)
		ev_io_start(loop, &s->pwr);
	else
		ev_io_stop(loop, &s->pwr);
}
void relay_stream_pump(struct relay_stream *s)
{
	if (s->done)
		return;
	if (s->output)
		pump_output(s);
	else
		pump_input(s);
}

void relay_stream_pump_or_lost(struct relay_stream *s, int rc)
{
	if (rc < 0)
		relay_stream_conn_lost(s, rc);
	else
		relay_stream_pump(s);
}

static void on_proc_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	relay_enter(r);
	relay_stream_pump(s);
	relay_leave(r);
}

static void on_conn_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	relay_enter(r);
	if (s->output)
		output_conn_read(s);
	else
		relay_stream_pump_or_lost(s, s->cs == C_HELLO ? relay_hub_ready_read(s) : 0);
	relay_leave(r);
}

static void on_conn_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	relay_enter(r);
	/* input: a partial ACK goes out before more data is taken from the host */
	relay_stream_pump_or_lost(s, !s->output && s->nack > 0 ? relay_hub_ack_send(s, false) : 0);
	relay_leave(r);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay *r = w->data;
	relay_enter(r);
	maybe_fire_done(r);
	relay_leave(r);
}

static struct relay_stream *stream_new(struct relay *r, enum relay_which which, int proc_fd,
                                       int conn_fd)
{
	struct relay_stream *s = xcalloc(1, sizeof(*s));
	s->r = r;
	s->which = which;
	s->output = which != RELAY_STDIN;
	s->proc_fd = proc_fd;
	s->conn_fd = conn_fd;
	s->cs = conn_fd >= 0 ? C_UP : C_NONE;
	s->first = true;
	buf_init(&s->buf);
	resume_sender_init(&s->tx, 0, 0);
	/* not re-dialled (yet): nothing to keep once sent; relay_link sets the tail */
	resume_sender_set_tail(&s->tx, 0);
	resume_sender_set_fallback(&s->tx, true);
	resume_receiver_init(&s->rx, 0);
	if (s->output)
		s->end.tx = &s->tx;
	else
		s->end.rx = &s->rx;
	ev_io_init(&s->prd, on_proc_io, proc_fd, EV_READ);
	ev_io_init(&s->pwr, on_proc_io, proc_fd, EV_WRITE);
	ev_io_init(&s->crd, on_conn_read, conn_fd, EV_READ);
	ev_io_init(&s->cwr, on_conn_write, conn_fd, EV_WRITE);
	ev_timer_init(&s->tm, relay_hub_on_timer, 0., 0.);
	s->prd.data = s->pwr.data = s->crd.data = s->cwr.data = s->tm.data = s;
	return s;
}

/* Start a stream from the loop. */
static void stream_start(struct relay_stream *s)
{
	if (s->output)
		ev_io_start(s->r->loop, &s->prd);
	else if (s->conn_fd >= 0)
		ev_io_start(s->r->loop, &s->crd);
}

static struct relay *relay_alloc(struct ev_loop *loop, relay_done_cb done, void *ud)
{
	struct relay *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->pty = -1;
	r->spare_fd = -1;
	r->done = done;
	r->ud = ud;
	ev_timer_init(&r->kick, on_kick, 0., 0.);
	r->kick.data = r;
	return r;
}

static int prep_fds(int *fds, int n, struct err *e)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] < 0)
			continue;
		int rc = fd_set_flags(fds[i], true, e);
		if (rc < 0) {
			for (int j = 0; j < n; j++)
				relay_close_fd(&fds[j]);
			return err_prefix(e, "relay");
		}
	}
	return 0;
}

struct relay *relay_new_pipes(struct ev_loop *loop, int in_w, int out_r, int err_r, int conn_in,
                              int conn_out, int conn_err, relay_done_cb done, void *ud,
                              struct err *e)
{
	int fds[6] = {in_w, out_r, err_r, conn_in, conn_out, conn_err};
	if (prep_fds(fds, 6, e) < 0)
		return NULL;
	struct relay *r = relay_alloc(loop, done, ud);
	for (int i = 0; i < 3; i++) {
		int pfd = fds[i], cfd = fds[3 + i];
		if (pfd >= 0 && cfd >= 0) {
			r->s[i] = stream_new(r, (enum relay_which)i, pfd, cfd);
		} else {
			relay_close_fd(&pfd);
			relay_close_fd(&cfd);
		}
	}
	/* streams start from the loop, so that "done" is never reported from inside this call */
	for (int i = 0; i < 3; i++)
		if (r->s[i])
			stream_start(r->s[i]);
	if (all_outputs_finished(r))
		ev_timer_start(loop, &r->kick);
	return r;
}

struct relay *relay_new_pty(struct ev_loop *loop, int master, int conn_in, int conn_out,
                            int conn_err, relay_done_cb done, void *ud, struct err *e)
{
	int fds[4] = {master, conn_in, conn_out, conn_err};
	if (master < 0) {
		int none[3] = {conn_in, conn_out, conn_err};
		for (int i = 0; i < 3; i++)
			relay_close_fd(&none[i]);
		err_set(e, -EINVAL, "relay: no pty master");
		return NULL;
	}
	if (prep_fds(fds, 4, e) < 0)
		return NULL;
	struct relay *r = relay_alloc(loop, done, ud);
	r->pty = master;
	r->spare_fd = conn_err;
	if (conn_in >= 0) {
		r->s[RELAY_STDIN] = stream_new(r, RELAY_STDIN, master, conn_in);
		r->s[RELAY_STDIN]->proc_shared = true;
	}
	/* always drain the pty, even without a stdout connection: otherwise the process blocks
	 * on a full tty buffer and the end of output (EIO) is never seen */
	r->s[RELAY_STDOUT] = stream_new(r, RELAY_STDOUT, master, conn_out);
	r->s[RELAY_STDOUT]->proc_shared = true;
	r->s[RELAY_STDOUT]->discard = conn_out < 0;
	for (int i = 0; i < 2; i++)
		if (r->s[i])
			stream_start(r->s[i]);
	return r;
}

void relay_close_input(struct relay *r)
{
	if (!r || !r->s[RELAY_STDIN])
		return;
	struct relay_stream *s = r->s[RELAY_STDIN];
	if (!s->done)
		relay_stream_finish(s);
}

bool relay_finished(const struct relay *r)
{
	return r && all_outputs_finished(r);
}

int relay_pty_fd(const struct relay *r)
{
	return r ? r->pty : -1;
}

struct relay_stream *relay_get_stream(struct relay *r, enum relay_which which)
{
	if (!r || (int)which < 0 || which > RELAY_STDERR)
		return NULL;
	return r->s[which];
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	if (r->busy > 0) {
		/* inside one of our callbacks: silence everything now, free on unwind */
		r->free_pending = true;
		for (int i = 0; i < 3; i++)
			if (r->s[i]) {
				stream_close_fds(r->s[i]);
				relay_hub_unlink(r->s[i]);
				r->s[i]->done = true;
			}
		ev_timer_stop(r->loop, &r->kick);
		return;
	}
	relay_destroy(r);
}

int relay_stream_set_conn(struct relay_stream *s, int conn_fd, struct err *e)
{
	if (s->done) {
		relay_close_fd(&conn_fd);
		return err_set(e, -EINVAL, "relay: stream=%d already finished", (int)s->which);
	}
	int rc = fd_set_flags(conn_fd, true, e);
	if (rc < 0) {
		relay_close_fd(&conn_fd);
		return err_prefix(e, "relay: new connection");
	}
	struct relay *r = s->r;
	relay_conn_stop(s);
	vsock_dialer_free(s->dial);
	s->dial = NULL;
	relay_close_fd(&s->conn_fd);
	s->conn_fd = conn_fd;
	s->discard = false;
	s->wr_shut = false;
	s->cs = C_UP;
	ev_io_set(&s->crd, conn_fd, EV_READ);
	ev_io_set(&s->cwr, conn_fd, EV_WRITE);
	/* resume from the loop: the caller may be in the middle of its own bookkeeping */
	ev_io_start(r->loop, &s->cwr);
	return 0;
}

void relay_stream_on_conn_lost(struct relay_stream *s, relay_conn_lost_cb cb, void *ud)
{
	s->lost_cb = cb;
	s->lost_ud = ud;
}

uint64_t relay_stream_bytes_read(const struct relay_stream *s)
{
	return s->output ? s->tx.produced : s->nread;
}

uint64_t relay_stream_bytes_written(const struct relay_stream *s)
{
	return s->output ? s->nwritten : s->rx.delivered;
}

bool relay_stream_finished(const struct relay_stream *s)
{
	return s->done;
}
