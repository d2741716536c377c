/* The resume half of a host stdio relay (docs/stdio-resume.md §2, host/iorelay.h): for output
 * streams the receiver (READY at the offset handed to the sink, bytes below it dropped, ACKs
 * of kernel-accepted bytes every 64 KiB or 5 ms, the final ACK after the guest's half-close),
 * for stdin the retained sender (1 MiB, rewound to each HELLO's offset, half-close after the
 * last byte), the parsing of HELLO/ACK/data on a resumed connection, and the migration view
 * (delivered offsets, unacknowledged stdin).  bridge/resume.h does the codec; iorelay.c the
 * connections and the local endpoint. */
#include <errno.h>
#include <string.h>

#include "bridge/resume.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/stream.h"
#include "common/xalloc.h"
#include "host/iorelay.h"
#include "host/iorelay_priv.h"

/* ---- FROM_GUEST (receiver) ---- */

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

void iorelay_arm_ack(struct iorelay *r)
{
	if (!iorelay_resume_live(r) || r->rc.state != RESUME_CONN_STREAM)
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
void iorelay_sync_sink(struct iorelay *r)
{
	if (!r->local)
		return;
	uint64_t out = stream_bytes_out(r->local);
	if (out > r->sink_seen) {
		resume_receiver_deliver(&r->rx, (size_t)(out - r->sink_seen), (uint64_t)mono_ns());
		r->sink_seen = out;
	}
}

void iorelay_maybe_close_resumed(struct iorelay *r)
{
	/* After the guest's half-close: ack the final offset once the sink has it all, close. */
	if (!iorelay_resume_live(r) || !r->rx.eof || r->closing)
		return;
	if (r->local && !r->local_failed && stream_pending(r->local) > 0)
		return;
	uint64_t off = r->rx.delivered;
	resume_receiver_take_ack(&r->rx, &off);
	send_ack_now(r, r->rx.delivered);
	r->closing = true;
	if (stream_pending(r->conn) == 0)
		iorelay_drop_conn(r);
}

void iorelay_maybe_finish_resume(struct iorelay *r)
{
	if (r->finish_requested)
		iorelay_finish_when_drained(r);
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
		iorelay_sync_sink(r);
		if (r->conn && stream_pending(r->local) > IORELAY_HIGH_WATER)
			stream_pause_read(r->conn);
	} else {
		resume_receiver_deliver(&r->rx, n, (uint64_t)mono_ns());
		if (r->ops.on_data)
			r->ops.on_data(r, p, n, r->ud);
	}
}

/* The rules of both ends (bridge/resume.h): the receiver has what the sink accepted plus what
 * the local stream still queues (bytes below that are dropped, never delivered twice). */
static struct resume_stream *end_of(struct iorelay *r)
{
	r->end.pending = r->dir == IORELAY_FROM_GUEST ? handed(r) - r->rx.delivered : 0;
	return &r->end;
}

/* Answer the HELLO in r->hello with READY.  0, or a negative errno when the connection is to
 * be dropped (the HELLO is not for this stream). */
static int answer_hello(struct iorelay *r, struct err *e)
{
	struct resume_ready rd;
	uint8_t m[RESUME_READY_LEN];
	int rc = resume_stream_hello(end_of(r), &r->hello, r->port, &r->auth, &rd, e);
	if (rc == -ERANGE)
		log_warn("stdio port %#x: %s", r->port, e->msg);
	else if (rc < 0)
		return rc;
	if (resume_conn_answer(&r->rc, &rd, m, e) < 0)
		return e->code;
	r->held = false;
	stream_write(r->conn, m, sizeof(m), e);
	return 0;
}

/* ---- TO_GUEST (sender) ---- */

void iorelay_pull_early(struct iorelay *r)
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

void iorelay_pump(struct iorelay *r)
{
	iorelay_pull_early(r);
	if (!iorelay_resume_live(r) || r->rc.state != RESUME_CONN_STREAM)
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

/* ---- a resumed connection ---- */

void iorelay_conn_read_resume(struct iorelay *r, struct buf *in)
{
	const uint8_t *p = buf_head(in);
	size_t n = buf_avail(in);
	size_t off = 0;
	while (off < n || r->rc.staged) {
		struct resume_event ev;
		size_t used = 0, skip = 0;
		struct err e;
		int rc = resume_conn_feed(&r->rc, p + off, n - off, &used, &ev, &e);
		if (rc < 0) {
			log_limited(&r->warn, LOG_LVL_WARN, "stdio port %#x: %s", r->port, e.msg);
			buf_consume(in, n);
			iorelay_drop_conn(r);
			return;
		}
		off += used;
		if (rc == 0)
			break;
		if (ev.type == RESUME_EV_HELLO) {
			r->hello = ev.hello;
			r->dialled = true;
			resume_stream_new_conn(&r->end);
			if (r->dir == IORELAY_FROM_GUEST && !r->offset_known) {
				r->held = true; /* READY when the offset arrives */
			} else if (answer_hello(r, &e) < 0) {
				log_limited(&r->warn, LOG_LVL_WARN, "stdio port %#x: %s", r->port,
				            e.msg);
				buf_consume(in, n);
				iorelay_drop_conn(r);
				return;
			} else if (r->dir == IORELAY_TO_GUEST) {
				iorelay_pump(r);
			}
		} else {
			rc = resume_stream_event(end_of(r), &ev, &skip, &e);
			if (rc < 0 && rc != -ERANGE) {
				log_limited(&r->warn, LOG_LVL_WARN,
				            "stdio port %#x: %s: closing the connection", r->port,
				            e.msg);
				buf_consume(in, n);
				iorelay_drop_conn(r);
				return;
			}
			if (rc == -ERANGE)
				log_limited(&r->warn, LOG_LVL_WARN, "stdio port %#x: %s", r->port,
				            e.msg);
			if (ev.type == RESUME_EV_ACK) {
				/* Done only when the guest closes after its final ACK: an ACK of
				 * everything may have been sent before it saw our half-close. */
				iorelay_pump(r);
			} else if (ev.type == RESUME_EV_DATA && ev.data.len > skip) {
				deliver(r, ev.data.p + skip, ev.data.len - skip);
			}
		}
		if (r->free_pending || !r->conn)
			return;
	}
	buf_consume(in, n);
	if (r->dir == IORELAY_FROM_GUEST)
		iorelay_arm_ack(r);
}

void iorelay_on_ack_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct iorelay *r = w->data;
	(void)loop;
	(void)revents;
	iorelay_enter(r);
	iorelay_arm_ack(r);
	iorelay_leave(r);
}

/* ---- public ---- */

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
		iorelay_enter(r);
		if (answer_hello(r, e) < 0)
			iorelay_drop_conn(r);
		else
			/* bytes that arrived with the HELLO were kept in the conn's input */
			iorelay_conn_read_resume(r, stream_input(r->conn));
		iorelay_leave(r);
	}
	return 0;
}

bool iorelay_held(const struct iorelay *r, uint64_t *hello_offset)
{
	if (r->dir != IORELAY_FROM_GUEST || !r->held || !r->conn)
		return false;
	if (hello_offset)
		*hello_offset = r->hello.offset;
	return true;
}

void iorelay_finish(struct iorelay *r)
{
	r->finish_requested = true;
	iorelay_enter(r);
	iorelay_maybe_finish_resume(r);
	iorelay_leave(r);
}

void iorelay_get_resume_state(struct iorelay *r, struct iorelay_resume_state *out)
{
	memset(out, 0, sizeof(*out));
	if (r->dir == IORELAY_FROM_GUEST) {
		iorelay_sync_sink(r);
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
