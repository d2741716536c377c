/* Linked stdio streams (relay_hub.h): the hub that holds them, dialling and re-dialling a
 * stream's port with back-off while the hub is open, and the resume handshake on each new
 * connection (HELLO out; READY in; ACKs in both directions, bridge/resume.h).  The byte
 * copying itself stays in relay.c, which calls back here through relay_priv.h. */
#include "guest/relay_hub.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bridge/resume.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "guest/relay_priv.h"

#define RELAY_DIAL_TIMEOUT_MS 1000

/* ---- linking and dialling ---- */

void relay_hub_unlink(struct relay_stream *s)
{
	struct relay_hub *h = s->hub;
	if (!h)
		return;
	if (s->hprev)
		s->hprev->hnext = s->hnext;
	else
		h->streams = s->hnext;
	if (s->hnext)
		s->hnext->hprev = s->hprev;
	s->hprev = s->hnext = NULL;
	s->hub = NULL;
	resume_sender_set_budget(&s->tx, NULL);
	if (s->deep_pipe) {
		h->pipe_used -= RELAY_PIPE_SIZE;
		s->deep_pipe = false;
	}
}

/* Deeper stdout/stderr pipes: the process writes ahead in bigger runs and the relay reads them
 * in fewer, larger reads (fewer wake-ups on both sides).  Kernel memory, so only within the
 * hub's pipe budget; the others keep the default 64 KiB.  Best effort: EPERM (over the
 * unprivileged limit) or a non-pipe fd leave the fd as it was. */
static void pipe_deepen(struct relay_stream *s)
{
	struct relay_hub *h = s->hub;
	if (!s->output || s->proc_shared || s->proc_fd < 0 ||
	    h->pipe_used + RELAY_PIPE_SIZE > h->pipe_limit)
		return;
	if (fcntl(s->proc_fd, F_SETPIPE_SZ, RELAY_PIPE_SIZE) < 0) {
		log_debug("relay: fd=%d: F_SETPIPE_SZ: %s", s->proc_fd, strerror(errno));
		return;
	}
	h->pipe_used += RELAY_PIPE_SIZE;
	s->deep_pipe = true;
}

void relay_hub_backoff(struct relay_stream *s)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 1;
	if (s->backoff_ms > RELAY_REDIAL_MAX_MS)
		s->backoff_ms = RELAY_REDIAL_MAX_MS;
	ev_timer_stop(s->r->loop, &s->tm);
	ev_timer_set(&s->tm, s->backoff_ms / 1000.0, 0.0);
	ev_timer_start(s->r->loop, &s->tm);
}

/* A connected fd for a linked stream (first connection or re-dial). */
static int attach_conn(struct relay_stream *s, int fd)
{
	struct relay *r = s->r;
	s->conn_fd = fd;
	s->wr_shut = false;
	s->nack = 0;
	s->dials++;
	resume_stream_new_conn(&s->end);
	s->mode = s->hub ? s->hub->mode : RELAY_MODE_PLAIN;
	ev_io_set(&s->crd, fd, EV_READ);
	ev_io_set(&s->cwr, fd, EV_WRITE);
	if (s->output)
		resume_sender_set_fallback(&s->tx, !relay_resume_on(s));
	if (relay_resume_on(s)) {
		uint8_t m[RESUME_HELLO_LEN];
		struct resume_hello hello;
		uint16_t flags = s->first ? RESUME_FLAG_FIRST : 0;
		if (s->output)
			resume_sender_hello(&s->tx, s->port, flags, &hello);
		else
			resume_receiver_hello(&s->rx, s->port, flags, &hello);
		hello.dial = s->dials;
		resume_hello_sign(&hello, &s->hub->auth);
		struct err e;
		resume_conn_init(&s->rc, RESUME_DIALER, !s->output);
		resume_conn_hello(&s->rc, &hello, m, &e);
		ssize_t n = fd_write(fd, m, sizeof(m), &e);
		if (n != (ssize_t)sizeof(m))
			return n < 0 && n != IO_AGAIN ? (int)n : -EAGAIN;
		s->cs = C_HELLO;
		ev_io_start(r->loop, &s->crd);
	} else {
		s->cs = C_UP;
		if (s->output) {
			/* hcsshim's replay: whatever is still retained goes out again */
			if (s->hub && s->tx.sent > s->tx.floor)
				log_debug("relay: stream=%d port=%u replaying %llu bytes",
				          (int)s->which, s->port,
				          (unsigned long long)(s->tx.sent - s->tx.floor));
			resume_sender_replay_tail(&s->tx, RESUME_FALLBACK_TAIL);
		}
	}
	s->first = false;
	s->backoff_ms = 0;
	return 0;
}

static void on_dialled(struct vsock_dialer *d, int fd, const struct err *e, void *ud)
{
	struct relay_stream *s = ud;
	struct relay *r = s->r;
	relay_enter(r);
	if (fd < 0)
		log_debug("relay: stream=%d port=%u dial: %s", (int)s->which, s->port, e->msg);
	vsock_dialer_free(d);
	s->dial = NULL;
	s->cs = C_NONE;
	if (fd < 0) {
		if (s->no_redial)
			relay_stream_finish(s);
		else
			relay_hub_backoff(s);
	} else {
		relay_stream_pump_or_lost(s, attach_conn(s, fd));
	}
	relay_leave(r);
}

void relay_hub_connect(struct relay_stream *s)
{
	struct err e;
	if (s->done || s->cs != C_NONE || !s->hub)
		return;
	if (s->no_redial) {
		relay_stream_finish(s);
		return;
	}
	ev_timer_stop(s->r->loop, &s->tm);
	s->dial = vsock_dialer_new_host(s->r->loop, &s->hub->addr, s->port, RELAY_DIAL_TIMEOUT_MS,
	                                on_dialled, s, &e);
	if (!s->dial) {
		log_warn("relay: stream=%d port=%u: %s", (int)s->which, s->port, e.msg);
		relay_hub_backoff(s);
		return;
	}
	s->cs = C_DIAL;
}

/* ---- acknowledgements and READY ---- */

static void arm_ack_timer(struct relay_stream *s)
{
	uint64_t dl = resume_receiver_ack_deadline(&s->rx);
	if (dl == UINT64_MAX || ev_is_active(&s->tm))
		return;
	uint64_t now = (uint64_t)mono_ns();
	ev_timer_set(&s->tm, dl > now ? (double)(dl - now) / 1e9 : 0., 0.);
	ev_timer_start(s->r->loop, &s->tm);
}

int relay_hub_ack_send(struct relay_stream *s, bool force)
{
	struct err e;
	if (s->nack == 0) {
		uint64_t off = s->rx.delivered;
		if (resume_receiver_ack_due(&s->rx, (uint64_t)mono_ns()))
			resume_receiver_take_ack(&s->rx, &off);
		else if (!force) {
			arm_ack_timer(s);
			return 0;
		}
		resume_ack_encode(off, s->ackb);
		s->nack = RESUME_ACK_LEN;
		ev_timer_stop(s->r->loop, &s->tm);
	}
	while (s->nack > 0) {
		ssize_t n = fd_write(s->conn_fd, s->ackb + RESUME_ACK_LEN - s->nack, s->nack, &e);
		if (n == IO_AGAIN) {
			ev_io_start(s->r->loop, &s->cwr);
			return 0;
		}
		if (n < 0)
			return (int)n;
		s->nack -= (size_t)n;
	}
	ev_io_stop(s->r->loop, &s->cwr);
	return 0;
}

void relay_hub_trim(struct relay_stream *s)
{
	/* Only under pressure: an empty ring that is freed has to be grown again, which a busy
	 * stream should not pay for while memory is plentiful. */
	if (s->hub && s->hub->retain.used > s->hub->retain.limit / 2)
		resume_sender_trim(&s->tx);
}

/* Apply one event of the connection (bridge/resume.h has the rules): 0 to go on, a negative
 * errno to drop the connection, RELAY_GAVE_UP when the stream was given up. */
static int apply_event(struct relay_stream *s, const struct resume_event *ev, size_t *skip)
{
	struct err e;
	s->end.pending = s->output ? 0 : buf_avail(&s->buf);
	int rc = resume_stream_event(&s->end, ev, skip, &e);
	if (rc == RESUME_GIVE_UP) {
		/* A READY we cannot honour never gets better by re-dialling (the host would say
		 * the same again): give the stream up, once, cleanly. */
		log_error("relay: stream=%d port=%u: %s: giving up the stream", (int)s->which,
		          s->port, e.msg);
		relay_stream_finish(s);
		return RELAY_GAVE_UP;
	}
	if (rc < 0)
		log_limited(&s->warn, LOG_LVL_WARN, "relay: stream=%d port=%u: %s%s", (int)s->which,
		            s->port, e.msg, rc == -ERANGE ? "" : ": closing the connection");
	if (rc < 0 && rc != -ERANGE)
		return rc;
	if (ev->type == RESUME_EV_READY) {
		s->cs = C_UP;
		if (!s->output)
			s->nread = s->rx.delivered;
		log_debug("relay: stream=%d port=%u resumed at %llu", (int)s->which, s->port,
		          (unsigned long long)(s->output ? s->tx.sent : s->rx.delivered));
	}
	return 0;
}

/* Feed received bytes to the connection's splitter; every event goes through apply_event.
 * Data events are not expected here (output streams get none; stdin data has its own path). */
static int feed(struct relay_stream *s, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		struct resume_event ev;
		size_t used = 0, skip;
		struct err e;
		int r = resume_conn_feed(&s->rc, p + off, n - off, &used, &ev, &e);
		if (r < 0) {
			log_limited(&s->warn, LOG_LVL_WARN, "relay: stream=%d port=%u: %s",
			            (int)s->which, s->port, e.msg);
			return -EPROTO;
		}
		off += used;
		if (r == 0)
			break;
		int rc = apply_event(s, &ev, &skip);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int relay_hub_output_feed(struct relay_stream *s, const uint8_t *p, size_t n)
{
	int rc = feed(s, p, n);
	if (rc == 0)
		relay_hub_trim(s);
	return rc;
}

int relay_hub_ready_read(struct relay_stream *s)
{
	struct err e;
	while (s->cs == C_HELLO) {
		uint8_t m[RESUME_READY_LEN];
		size_t want = RESUME_READY_LEN - s->rc.staged;
		ssize_t n = fd_read(s->conn_fd, m, want, &e);
		if (n == IO_AGAIN)
			return 0;
		if (n == IO_EOF)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
		int rc = feed(s, m, (size_t)n);
		if (rc != 0)
			return rc < 0 ? rc : -EPROTO;
	}
	return 0;
}

ssize_t relay_hub_input_data(struct relay_stream *s, uint8_t *p, size_t n)
{
	struct resume_event ev;
	size_t used, skip = 0;
	struct err e;
	int r = resume_conn_feed(&s->rc, p, n, &used, &ev, &e);
	if (r < 0) {
		log_limited(&s->warn, LOG_LVL_WARN, "relay: stream=%d port=%u: %s", (int)s->which,
		            s->port, e.msg);
		return -EPROTO;
	}
	/* READY was read on its own (relay_hub_ready_read): these are all data, one event */
	int rc = apply_event(s, &ev, &skip);
	if (rc != 0)
		return rc < 0 ? rc : -EPROTO;
	if (skip)
		memmove(p, p + skip, n - skip);
	return (ssize_t)(n - skip);
}

void relay_hub_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct relay_stream *s = w->data;
	struct relay *r = s->r;
	relay_enter(r);
	if (s->cs == C_NONE) {
		/* back-off over */
		if (s->hub && s->hub->open)
			relay_hub_connect(s);
	} else if (!s->output && s->cs == C_UP) {
		relay_stream_pump_or_lost(s, relay_hub_ack_send(s, false));
	}
	relay_leave(r);
}

/* ---- the hub ---- */

struct relay_hub *relay_hub_new(struct ev_loop *loop, const struct vsock_addr *addr)
{
	struct relay_hub *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->addr = *addr;
	h->mode = RELAY_MODE_PLAIN;
	h->retain.limit = RELAY_RETAIN_BUDGET;
	h->pipe_limit = RELAY_PIPE_BUDGET;
	return h;
}

void relay_hub_free(struct relay_hub *h)
{
	if (!h)
		return;
	memset(&h->auth, 0, sizeof(h->auth));
	while (h->streams) {
		struct relay_stream *s = h->streams;
		vsock_dialer_free(s->dial);
		s->dial = NULL;
		ev_timer_stop(s->r->loop, &s->tm);
		relay_hub_unlink(s);
	}
	free(h);
}

bool relay_hub_is_open(const struct relay_hub *h)
{
	return h && h->open;
}

/* Run `fn` over every linked stream.  Every relay involved is held busy meanwhile, so a
 * stream that finishes (or whose relay is freed) during a call stays valid memory. */
static void hub_each(struct relay_hub *h, void (*fn)(struct relay_stream *s))
{
	size_t n = 0;
	for (struct relay_stream *s = h->streams; s; s = s->hnext)
		n++;
	if (!n)
		return;
	struct relay_stream **v = xcalloc(n, sizeof(*v));
	n = 0;
	for (struct relay_stream *s = h->streams; s; s = s->hnext) {
		relay_enter(s->r);
		v[n++] = s;
	}
	for (size_t i = 0; i < n; i++)
		if (!v[i]->done && v[i]->hub == h)
			fn(v[i]);
	for (size_t i = 0; i < n; i++)
		relay_leave(v[i]->r);
	free(v);
}

static void open_one(struct relay_stream *s)
{
	if (s->cs == C_NONE) {
		s->backoff_ms = 0;
		relay_hub_connect(s);
	}
}

void relay_hub_open(struct relay_hub *h, enum relay_mode mode, const struct session_auth *auth)
{
	h->open = true;
	h->mode = mode;
	if (auth)
		h->auth = *auth;
	else
		memset(&h->auth, 0, sizeof(h->auth));
	hub_each(h, open_one);
}

static void close_one(struct relay_stream *s)
{
	if (s->cs == C_DIAL || s->cs == C_HELLO) {
		vsock_dialer_free(s->dial);
		s->dial = NULL;
		relay_conn_stop(s);
		relay_close_fd(&s->conn_fd);
		s->cs = C_NONE;
		if (!s->output && relay_resume_on(s)) {
			buf_reset(&s->buf);
			s->nread = s->rx.delivered;
		}
	}
	if (s->cs == C_NONE)
		ev_timer_stop(s->r->loop, &s->tm);
}

void relay_hub_close(struct relay_hub *h)
{
	h->open = false;
	hub_each(h, close_one);
}

static void cut_one(struct relay_stream *s)
{
	if (s->cs != C_NONE)
		relay_stream_conn_lost(s, -ECONNABORTED);
}

void relay_hub_cut(struct relay_hub *h)
{
	hub_each(h, cut_one);
}

void relay_hub_stats(const struct relay_hub *h, struct relay_hub_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (const struct relay_stream *s = h ? h->streams : NULL; s; s = s->hnext) {
		st->streams++;
		if (s->cs == C_UP)
			st->attached++;
	}
}

void relay_link(struct relay *r, struct relay_hub *h, const uint32_t ports[3])
{
	if (!r || !h)
		return;
	for (int i = 0; i < 3; i++) {
		struct relay_stream *s = r->s[i];
		if (!s || s->done || s->conn_fd < 0 || !ports[i] || s->hub)
			continue;
		s->hub = h;
		s->port = ports[i];
		s->hnext = h->streams;
		if (h->streams)
			h->streams->hprev = s;
		h->streams = s;
		if (s->output) {
			/* re-dialled from now on: keep hcsshim's replay tail in plain mode */
			resume_sender_set_tail(&s->tx, RESUME_FALLBACK_TAIL);
			resume_sender_set_budget(&s->tx, &h->retain);
			pipe_deepen(s);
		}
		int fd = s->conn_fd;
		s->conn_fd = -1;
		int rc = attach_conn(s, fd);
		if (rc < 0) {
			/* from the loop: never report from inside this call */
			relay_close_fd(&s->conn_fd);
			s->cs = C_NONE;
			relay_hub_backoff(s);
		}
	}
}

void relay_stop_redial(struct relay *r)
{
	if (!r)
		return;
	relay_enter(r);
	for (int i = 0; i < 3; i++) {
		struct relay_stream *s = r->s[i];
		if (!s || s->done)
			continue;
		s->no_redial = true;
		if (s->hub && (s->cs == C_NONE || s->cs == C_DIAL))
			relay_stream_finish(s);
	}
	relay_leave(r);
}
