/* Linked stdio streams (relay_hub.h): the hub that holds them, dialling and re-dialling a
 * stream's port with back-off while the hub is open, and the resume handshake on each new
 * connection (HELLO out; READY in; ACKs in both directions, bridge/resume.h).  The byte
 * copying itself stays in relay.c, which calls back here through relay_priv.h. */
#include "guest/relay_hub.h"

#include <errno.h>
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
	s->npre = s->nack = 0;
	s->mode = s->hub ? s->hub->mode : RELAY_MODE_PLAIN;
	ev_io_set(&s->crd, fd, EV_READ);
	ev_io_set(&s->cwr, fd, EV_WRITE);
	if (relay_resume_on(s)) {
		uint8_t m[RESUME_HELLO_LEN];
		struct resume_hello hello = {
		    .version = RESUME_VERSION,
		    .flags = (uint16_t)((s->output ? 0 : RESUME_FLAG_INPUT) |
		                        (s->first ? RESUME_FLAG_FIRST : 0)),
		    .port = s->port,
		    .offset = s->output ? s->floor : s->nwritten,
		};
		resume_hello_encode(&hello, m);
		struct err e;
		ssize_t n = fd_write(fd, m, sizeof(m), &e);
		if (n != (ssize_t)sizeof(m))
			return n < 0 && n != IO_AGAIN ? (int)n : -EAGAIN;
		s->cs = C_HELLO;
		ev_io_start(r->loop, &s->crd);
	} else {
		s->cs = C_UP;
		if (s->output) {
			/* hcsshim's replay: whatever is still retained goes out again */
			if (s->hub && s->sent > s->floor)
				log_debug("relay: stream=%d port=%u replaying %llu bytes",
				          (int)s->which, s->port,
				          (unsigned long long)(s->sent - s->floor));
			s->sent = s->sent - s->floor > RESUME_FALLBACK_TAIL
			              ? s->sent - RESUME_FALLBACK_TAIL
			              : s->floor;
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

int relay_hub_ack_send(struct relay_stream *s, bool force)
{
	struct err e;
	if (s->nack == 0) {
		if (!force && s->nwritten == s->acked)
			return 0;
		resume_ack_encode(s->nwritten, s->ackb);
		s->acked = s->nwritten;
		s->nack = RESUME_ACK_LEN;
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

/* Output stream: apply ACK offsets (cumulative). */
void relay_hub_ack_apply(struct relay_stream *s, uint64_t off)
{
	if (off < s->acked || off > s->nread) {
		log_warn("relay: stream=%d port=%u: bad ack %llu (acked %llu, produced %llu)",
		         (int)s->which, s->port, (unsigned long long)off,
		         (unsigned long long)s->acked, (unsigned long long)s->nread);
		return;
	}
	s->acked = off;
	if (off > s->floor) {
		relay_out_drop(s, off);
		if (s->sent < off)
			s->sent = off;
	}
}

/* READY received (16 bytes in s->pre). */
static int ready_apply(struct relay_stream *s)
{
	struct resume_ready rd;
	struct err e;
	if (resume_ready_decode(s->pre, RESUME_READY_LEN, &rd, &e) != RESUME_READY_LEN) {
		log_warn("relay: stream=%d port=%u: %s", (int)s->which, s->port, e.msg);
		return -EPROTO;
	}
	uint16_t status = rd.status;
	uint64_t off = rd.offset;
	if (s->output) {
		if (status == RESUME_STATUS_OK && off >= s->floor && off <= s->nread) {
			relay_hub_ack_apply(s, off);
			s->sent = off;
		} else {
			log_warn("relay: stream=%d port=%u: READY status=%u offset=%llu outside "
			         "[%llu, %llu]: continuing from %llu",
			         (int)s->which, s->port, status, (unsigned long long)off,
			         (unsigned long long)s->floor, (unsigned long long)s->nread,
			         (unsigned long long)s->floor);
			s->sent = s->floor;
		}
	} else if (status != RESUME_STATUS_OK || off != s->nwritten) {
		log_warn("relay: stream=%d port=%u: READY status=%u offset=%llu, delivered %llu",
		         (int)s->which, s->port, status, (unsigned long long)off,
		         (unsigned long long)s->nwritten);
	}
	if (!s->output)
		s->acked = s->nwritten;
	s->cs = C_UP;
	return 0;
}

/* Read the rest of READY (never beyond it: data may follow). */
int relay_hub_ready_read(struct relay_stream *s)
{
	struct err e;
	while (s->npre < RESUME_READY_LEN) {
		ssize_t n = fd_read(s->conn_fd, s->pre + s->npre, RESUME_READY_LEN - s->npre, &e);
		if (n == IO_AGAIN)
			return 0;
		if (n == IO_EOF)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
		s->npre += (size_t)n;
	}
	return ready_apply(s);
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
		int rc = relay_hub_ack_send(s, false);
		if (rc < 0)
			relay_stream_conn_lost(s, rc);
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
	return h;
}

void relay_hub_free(struct relay_hub *h)
{
	if (!h)
		return;
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

void relay_hub_open(struct relay_hub *h, enum relay_mode mode)
{
	h->open = true;
	h->mode = mode;
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
		s->npre = 0;
		if (!s->output && relay_resume_on(s)) {
			buf_reset(&s->buf);
			s->nread = s->nwritten;
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
