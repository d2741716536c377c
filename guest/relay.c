/* Stdio relays: each stream copies one source fd to one sink fd through a bounded struct buf,
 * driven by ev_io watchers that are armed only while they can make progress (the source is
 * not read while the buffer is full; the sink is watched only after a short write).  Output
 * streams finish with the GCS clean close (flush, shutdown(SHUT_WR), wait for the host's EOF,
 * close); the relay reports "done" once every output stream finished, which is what lets the
 * runtime report a process's exit only after the host saw all of its output.  Callbacks may
 * free the relay: a busy counter defers the destruction until the outermost callback frame
 * unwinds. */
#include "guest/relay.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"

#define RELAY_CHUNK 16384

enum stream_state {
	ST_COPY,     /* moving bytes; src_eof may be set while the buffer drains */
	ST_WAIT_EOF, /* output: shut down for writing, waiting for the host's EOF */
	ST_PAUSED,   /* output: connection lost, waiting for relay_stream_set_conn */
	ST_DONE,
};

struct relay_stream {
	struct relay *r;
	enum relay_which which;
	bool output;      /* process -> connection */
	bool discard;     /* output without a connection (pty): read and drop */
	bool proc_shared; /* proc_fd is the relay's pty master: never closed here */
	int proc_fd;
	int conn_fd;
	struct buf buf;
	ev_io rd;  /* source readable */
	ev_io wr;  /* sink writable */
	ev_io eof; /* output: connection readable while waiting for the host's EOF */
	enum stream_state state;
	bool src_eof;
	uint64_t nread;
	uint64_t nwritten;
	relay_conn_lost_cb lost_cb;
	void *lost_ud;
};

struct relay {
	struct ev_loop *loop;
	struct relay_stream *s[3];
	int pty;      /* owned pty master, or -1 */
	int spare_fd; /* pty relay: the unused stderr connection, or -1 */
	relay_done_cb done;
	void *ud;
	bool done_fired;
	ev_timer kick; /* reports "done" from the loop when there is no output stream */
	int busy;
	bool free_pending;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int src_fd(const struct relay_stream *s)
{
	return s->output ? s->proc_fd : s->conn_fd;
}

static int sink_fd(const struct relay_stream *s)
{
	return s->output ? s->conn_fd : s->proc_fd;
}

static void stream_stop(struct relay_stream *s)
{
	ev_io_stop(s->r->loop, &s->rd);
	ev_io_stop(s->r->loop, &s->wr);
	ev_io_stop(s->r->loop, &s->eof);
}

static void stream_close_fds(struct relay_stream *s)
{
	stream_stop(s);
	if (!s->proc_shared)
		close_fd(&s->proc_fd);
	s->proc_fd = -1;
	close_fd(&s->conn_fd);
}

static bool all_outputs_finished(const struct relay *r)
{
	for (int i = RELAY_STDOUT; i <= RELAY_STDERR; i++)
		if (r->s[i] && r->s[i]->state != ST_DONE)
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

static void stream_finish(struct relay_stream *s)
{
	stream_close_fds(s);
	buf_reset(&s->buf);
	s->state = ST_DONE;
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
		buf_fini(&s->buf);
		free(s);
	}
	ev_timer_stop(r->loop, &r->kick);
	close_fd(&r->pty);
	close_fd(&r->spare_fd);
	free(r);
}

static void relay_enter(struct relay *r)
{
	r->busy++;
}

static void relay_leave(struct relay *r)
{
	if (--r->busy == 0 && r->free_pending)
		relay_destroy(r);
}

/* Output connection failed: pause for a new connection, or give up on the stream. */
static void stream_conn_lost(struct relay_stream *s, int code)
{
	stream_stop(s);
	if (s->lost_cb) {
		s->state = ST_PAUSED;
		s->lost_cb(s, code, s->lost_ud);
		return;
	}
	log_debug("relay: stream=%d connection lost: %s", (int)s->which, strerror(-code));
	stream_finish(s);
}

/* Source at EOF and buffer empty: end the stream. */
static void stream_end(struct relay_stream *s)
{
	if (!s->output) {
		/* host closed stdin: close the pipe so the process sees EOF */
		stream_finish(s);
		return;
	}
	if (s->conn_fd < 0) {
		stream_finish(s);
		return;
	}
	if (shutdown(s->conn_fd, SHUT_WR) < 0) {
		if (errno == ENOTSOCK) {
			stream_finish(s);
			return;
		}
		stream_conn_lost(s, -errno);
		return;
	}
	s->state = ST_WAIT_EOF;
	ev_io_stop(s->r->loop, &s->rd);
	ev_io_stop(s->r->loop, &s->wr);
	ev_io_set(&s->eof, s->conn_fd, EV_READ);
	ev_io_start(s->r->loop, &s->eof);
}

/* Move as many bytes as possible, then arm the watchers that can make progress.  May invoke
 * callbacks as its last action. */
static void stream_pump(struct relay_stream *s)
{
	struct ev_loop *loop = s->r->loop;
	struct err e;
	bool sink_blocked = false;

	if (s->state != ST_COPY)
		return;
	for (;;) {
		bool progress = false;
		if (!s->src_eof && buf_avail(&s->buf) < RELAY_BUF_MAX) {
			size_t room = RELAY_BUF_MAX - buf_avail(&s->buf);
			if (room > RELAY_CHUNK)
				room = RELAY_CHUNK;
			uint8_t *p = buf_reserve(&s->buf, room);
			ssize_t n = fd_read(src_fd(s), p, room, &e);
			if (n > 0) {
				s->nread += (uint64_t)n;
				if (s->discard)
					s->nwritten += (uint64_t)n;
				else
					buf_commit(&s->buf, (size_t)n);
				progress = true;
			} else if (n == IO_EOF || (n != IO_AGAIN)) {
				/* EOF, or EIO from a pty master whose slaves are all closed, or a
				 * broken source: nothing more will come. */
				if (n != IO_EOF && n != -EIO)
					log_debug("relay: stream=%d read: %s", (int)s->which,
					          e.msg);
				s->src_eof = true;
			}
		}
		if (buf_avail(&s->buf) > 0 && !sink_blocked) {
			ssize_t n = fd_write(sink_fd(s), buf_head(&s->buf), buf_avail(&s->buf), &e);
			if (n > 0) {
				buf_consume(&s->buf, (size_t)n);
				s->nwritten += (uint64_t)n;
				progress = true;
			} else if (n == IO_AGAIN) {
				sink_blocked = true;
			} else if (s->output) {
				stream_conn_lost(s, (int)n);
				return;
			} else {
				/* the process closed its stdin (EPIPE): drop the stream */
				stream_finish(s);
				return;
			}
		}
		if (!progress)
			break;
	}
	if (s->src_eof && buf_avail(&s->buf) == 0) {
		stream_end(s);
		return;
	}
	if (!s->src_eof && buf_avail(&s->buf) < RELAY_BUF_MAX)
		ev_io_start(loop, &s->rd);
	else
		ev_io_stop(loop, &s->rd);
	if (sink_blocked)
		ev_io_start(loop, &s->wr);
	else
		ev_io_stop(loop, &s->wr);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	relay_enter(r);
	stream_pump(s);
	relay_leave(r);
}

static void on_eof(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	uint8_t scratch[512];
	struct err e;

	relay_enter(r);
	for (int i = 0; i < 16; i++) {
		ssize_t n = fd_read(s->conn_fd, scratch, sizeof(scratch), &e);
		if (n == IO_AGAIN)
			break;
		if (n > 0)
			continue; /* the host should not write here: ignore */
		if (n == IO_EOF)
			stream_finish(s);
		else
			stream_conn_lost(s, (int)n);
		break;
	}
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
	buf_init(&s->buf);
	ev_io_init(&s->rd, on_io, src_fd(s), EV_READ);
	ev_io_init(&s->wr, on_io, sink_fd(s), EV_WRITE);
	ev_init(&s->eof, on_eof);
	s->rd.data = s->wr.data = s->eof.data = s;
	s->state = ST_COPY;
	return s;
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
				close_fd(&fds[j]);
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
			close_fd(&pfd);
			close_fd(&cfd);
		}
	}
	/* streams start from the loop, so that "done" is never reported from inside this call */
	for (int i = 0; i < 3; i++)
		if (r->s[i])
			ev_io_start(loop, &r->s[i]->rd);
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
			close_fd(&none[i]);
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
			ev_io_start(loop, &r->s[i]->rd);
	return r;
}

void relay_close_input(struct relay *r)
{
	if (!r || !r->s[RELAY_STDIN])
		return;
	struct relay_stream *s = r->s[RELAY_STDIN];
	if (s->state != ST_DONE)
		stream_finish(s);
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
				r->s[i]->state = ST_DONE;
			}
		ev_timer_stop(r->loop, &r->kick);
		return;
	}
	relay_destroy(r);
}

int relay_stream_set_conn(struct relay_stream *s, int conn_fd, struct err *e)
{
	if (s->state == ST_DONE) {
		close_fd(&conn_fd);
		return err_set(e, -EINVAL, "relay: stream=%d already finished", (int)s->which);
	}
	int rc = fd_set_flags(conn_fd, true, e);
	if (rc < 0) {
		close_fd(&conn_fd);
		return err_prefix(e, "relay: new connection");
	}
	struct relay *r = s->r;
	stream_stop(s);
	close_fd(&s->conn_fd);
	s->conn_fd = conn_fd;
	s->discard = false;
	ev_io_set(&s->rd, src_fd(s), EV_READ);
	ev_io_set(&s->wr, sink_fd(s), EV_WRITE);
	s->state = ST_COPY;
	/* resume from the loop: the caller may be in the middle of its own bookkeeping */
	ev_io_start(r->loop, &s->wr);
	return 0;
}

void relay_stream_on_conn_lost(struct relay_stream *s, relay_conn_lost_cb cb, void *ud)
{
	s->lost_cb = cb;
	s->lost_ud = ud;
}

uint64_t relay_stream_bytes_read(const struct relay_stream *s)
{
	return s->nread;
}

uint64_t relay_stream_bytes_written(const struct relay_stream *s)
{
	return s->nwritten;
}

bool relay_stream_finished(const struct relay_stream *s)
{
	return s->state == ST_DONE;
}
