/* Guest half of the bridge: frames requests off a stream and queues responses and
 * notifications.  Whatever ends the connection (peer EOF, transport error, host protocol
 * violation) frees the stream at once and reports on_close once; the conn then only answers
 * -EPIPE until the owner frees it.  While the output queue is over BRIDGE_CONN_OUT_MAX the
 * conn stops reading and serving requests (`throttled`) until the queue drains.  `depth`
 * defers a bridge_conn_free issued from inside a callback until the frame loop has
 * unwound. */
#include "bridge/conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "common/stream.h"
#include "common/xalloc.h"

struct bridge_conn {
	struct stream *s;
	struct bridge_conn_cbs cbs;
	void *ud;
	int depth;
	bool closed;
	bool free_pending;
	bool throttled; /* the host does not read: requests wait until the queue drained */
};

/* Input buffer capacity kept between frames; more is given back once a large frame is done. */
#define KEEP_INPUT (256u * 1024u)

static void leave(struct bridge_conn *c)
{
	if (--c->depth == 0 && c->free_pending)
		free(c);
}

/* Called from stream callbacks only (depth > 0). */
static void close_with(struct bridge_conn *c, const struct err *why)
{
	if (c->closed)
		return;
	c->closed = true;
	stream_free(c->s);
	c->s = NULL;
	if (c->cbs.on_close && !c->free_pending)
		c->cbs.on_close(c, why, c->ud);
}

/* Serve the complete frames in `in` (depth > 0). */
static void serve(struct bridge_conn *c, struct stream *s, struct buf *in)
{
	while (c->s == s && !c->free_pending) {
		if (stream_pending(s) > BRIDGE_CONN_OUT_MAX) {
			c->throttled = true;
			stream_pause_read(s);
			break;
		}
		struct bridge_hdr h;
		const uint8_t *p;
		size_t len;
		struct err e;
		err_clear(&e);
		int r = bridge_frame_peek(in, BRIDGE_GUEST_MAX_MSG, &h, &p, &len, &e);
		if (r == 0)
			break;
		if (r < 0) {
			err_prefix(&e, "bridge");
			close_with(c, &e);
			break;
		}
		if ((h.type & BRIDGE_MT_MASK) != BRIDGE_MT_REQUEST) {
			err_set(&e, -EPROTO,
			        "bridge: unexpected message type 0x%08" PRIx32 " id=%" PRIu64
			        " from the host",
			        h.type, h.id);
			close_with(c, &e);
			break;
		}
		if (c->cbs.on_request)
			c->cbs.on_request(c, &h, (const char *)p, len, c->ud);
		if (c->s != s || c->free_pending)
			break;
		buf_consume(in, h.size);
	}
	if (c->s == s && !c->free_pending)
		buf_trim(in, KEEP_INPUT);
}

static void on_read(struct stream *s, struct buf *in, void *ud)
{
	struct bridge_conn *c = ud;
	c->depth++;
	serve(c, s, in);
	leave(c);
}

static void on_drain(struct stream *s, void *ud)
{
	struct bridge_conn *c = ud;
	if (!c->throttled)
		return;
	c->depth++;
	c->throttled = false;
	stream_resume_read(s);
	serve(c, s, stream_input(s));
	leave(c);
}

static void on_eof(struct stream *s, void *ud)
{
	(void)s;
	struct bridge_conn *c = ud;
	struct err e;
	err_set(&e, -ECONNRESET, "bridge closed by peer");
	c->depth++;
	close_with(c, &e);
	leave(c);
}

static void on_error(struct stream *s, const struct err *why, void *ud)
{
	(void)s;
	struct bridge_conn *c = ud;
	struct err e = *why;
	err_prefix(&e, "bridge");
	c->depth++;
	close_with(c, &e);
	leave(c);
}

struct bridge_conn *bridge_conn_new(struct ev_loop *loop, int fd, const struct bridge_conn_cbs *cbs,
                                    void *ud, struct err *e)
{
	struct bridge_conn *c = xcalloc(1, sizeof(*c));
	static const struct stream_cbs scbs = {
	    .on_read = on_read,
	    .on_eof = on_eof,
	    .on_error = on_error,
	    .on_drain = on_drain,
	};
	c->s = stream_new(loop, fd, &scbs, c, e);
	if (!c->s) {
		free(c);
		err_prefix(e, "bridge");
		return NULL;
	}
	if (cbs)
		c->cbs = *cbs;
	c->ud = ud;
	return c;
}

void bridge_conn_free(struct bridge_conn *c)
{
	if (!c || c->free_pending)
		return;
	stream_free(c->s);
	c->s = NULL;
	c->closed = true;
	if (c->depth > 0) {
		c->free_pending = true;
		return;
	}
	free(c);
}

static int send_frame(struct bridge_conn *c, uint32_t type, uint64_t id, const void *json,
                      size_t len, struct err *e)
{
	if (!c->s || c->closed || !stream_writable(c->s))
		return err_set(e, -EPIPE, "bridge: connection closed, %s id=%" PRIu64 " not sent",
		               bridge_type_name(type), id);
	int r = bridge_frame_append(stream_wbuf(c->s), type, id, json, len, BRIDGE_MAX_MSG, e);
	if (r < 0)
		return err_prefix(e, "bridge");
	return stream_flush(c->s, e);
}

int bridge_conn_respond(struct bridge_conn *c, uint32_t req_type, uint64_t id, const void *json,
                        size_t len, struct err *e)
{
	return send_frame(c, bridge_response_type(req_type), id, json, len, e);
}

int bridge_conn_notify(struct bridge_conn *c, const void *json, size_t len, struct err *e)
{
	return send_frame(c, BRIDGE_NOTIFY_CONTAINER, 0, json, len, e);
}

size_t bridge_conn_pending(const struct bridge_conn *c)
{
	return c->s ? stream_pending(c->s) : 0;
}
