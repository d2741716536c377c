/* The server's call half: a call's life from its Request to its end, the ttrpc_call_* API,
 * deadlines, client-stream delivery and cancellation by the library.
 *
 * A call is in its connection's table while it is live.  It leaves the table when the
 * handler ends it (the end frame is queued and the call freed) or when the library ends it
 * (detached: `c` NULL, `cancelled` set; freed when the handler ends it in turn).  Every
 * place that runs a user callback re-finds the call by stream id afterwards, because the
 * callback may have ended it; ids are never reused on a connection, so a hit is the same
 * call. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "ttrpc/server_priv.h"

/* Status messages from handlers are cut here (a frame must stay under 4 MiB). */
#define MAX_STATUS_MSG (64u << 10)

static void free_call(struct ttrpc_call *call)
{
	ttrpc_msg_free(call->input);
	ttrpc_msg_free(call->req ? &call->req->base : NULL);
	free(call->md);
	free(call);
}

static struct ttrpc_server *call_server(const struct ttrpc_call *call)
{
	return call->c->s;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ttrpc_call *call = w->data;
	struct ttrpc_server *s = call_server(call);
	server_enter(s);
	call_cancel(call, TTRPC_DEADLINE_EXCEEDED, true, "context deadline exceeded");
	server_leave(s);
}

static bool still_live(struct conn *c, uint32_t id)
{
	return !c->dead && ttrpc_idmap_get(&c->calls, id) != NULL;
}

void call_cancel(struct ttrpc_call *call, int code, bool answer, const char *msg)
{
	struct conn *c = call->c;
	if (!c)
		return;
	ttrpc_idmap_del(&c->calls, call->id);
	if (call->timed)
		ev_timer_stop(call->loop, &call->deadline);
	call->c = NULL;
	call->cancelled = true;
	c->s->stats.calls_cancelled++;
	if (answer)
		conn_send_status(c, call->id, code, "%s", msg);
	if (call->on_cancel)
		call->on_cancel(call, code, call->cancel_ud); /* may free the call */
	conn_call_gone(c);
}

/* Deliver one client-stream message (payload bytes of the method's input type); returns
 * false when the call ended meanwhile. */
static bool deliver(struct ttrpc_call *call, const uint8_t *p, size_t n)
{
	struct conn *c = call->c;
	uint32_t id = call->id;
	if (!call->recv.on_msg) {
		call_cancel(call, TTRPC_INTERNAL, true,
		            "ttrpc: the handler takes no stream messages (no receive callback)");
		return false;
	}
	struct err e;
	err_clear(&e);
	ProtobufCMessage *msg = ttrpc_msg_unpack(call->m->input, p, n, &e);
	if (!msg) {
		char text[ERR_MSG_MAX + 32];
		snprintf(text, sizeof(text), "data handling error: %s", e.msg);
		call_cancel(call,
		            e.code == -EMSGSIZE ? TTRPC_RESOURCE_EXHAUSTED : TTRPC_INVALID_ARGUMENT,
		            true, text);
		return false;
	}
	call->recv.on_msg(call, msg, call->recv_ud);
	ttrpc_msg_free(msg);
	return still_live(c, id);
}

static void remote_end(struct ttrpc_call *call)
{
	call->remote_closed = true;
	if (call->recv.on_end)
		call->recv.on_end(call, call->recv_ud);
}

void call_start(struct conn *c, uint32_t id, uint8_t flags, const struct reg *r,
                const struct ttrpc_method *m, Ttrpc__Request *req, ProtobufCMessage *input)
{
	struct ttrpc_server *s = c->s;
	struct ttrpc_call *call = xcalloc(1, sizeof(*call));
	call->c = c;
	call->loop = s->loop;
	call->id = id;
	call->m = m;
	call->req = req;
	call->input = input;
	call->peer = c->cred;
	call->md = xcalloc(req->n_metadata ? req->n_metadata : 1, sizeof(*call->md));
	for (size_t i = 0; i < req->n_metadata; i++)
		call->md[i] = (struct ttrpc_kv){req->metadata[i]->key, req->metadata[i]->value};
	bool client_stream = m->flags & TTRPC_STREAMING_CLIENT;
	if (!client_stream) {
		/* Unpacked into `input` already: release the copy early. */
		free(req->payload.data);
		req->payload.data = NULL;
		req->payload.len = 0;
	}
	/* A client-streaming call stays open for data only when the client said so. */
	call->remote_closed = !client_stream || !(flags & TTRPC_FLAG_REMOTE_OPEN);
	if (req->timeout_nano > 0) {
		ev_timer_init(&call->deadline, on_deadline, (double)req->timeout_nano / 1e9, 0.);
		call->deadline.data = call;
		ev_timer_start(s->loop, &call->deadline);
		call->timed = true;
	}
	ttrpc_idmap_put(&c->calls, id, call);
	s->stats.calls_started++;
	if (c->calls.n > s->stats.max_in_flight)
		s->stats.max_in_flight = c->calls.n;

	m->handler(call, input, r->ud);
	if (!client_stream || !still_live(c, id))
		return;
	/* The Request's payload, when there is one, is the first message of a client stream
	 * (an empty message encodes to nothing and so cannot travel there, as in Go). */
	if (req->payload.len > 0 && !deliver(call, req->payload.data, req->payload.len))
		return;
	if (call->remote_closed)
		remote_end(call);
}

void call_data(struct ttrpc_call *call, const struct ttrpc_frame *f)
{
	if (!(call->m->flags & TTRPC_STREAMING_CLIENT)) {
		call_cancel(call, TTRPC_INVALID_ARGUMENT, true,
		            "ttrpc: data frame on a stream whose method takes no client stream");
		return;
	}
	if (call->remote_closed) {
		call_cancel(call, TTRPC_INVALID_ARGUMENT, true,
		            "data handling error: ttrpc: stream closed");
		return;
	}
	if (!(f->h.flags & TTRPC_FLAG_NO_DATA) && !deliver(call, f->data, f->h.length))
		return;
	if (f->h.flags & TTRPC_FLAG_REMOTE_CLOSED)
		remote_end(call);
}

void call_drain_all(struct conn *c)
{
	size_t n = 0;
	uint32_t *ids = NULL;
	/* Collect first: drain callbacks may end calls and so change the table. */
	for (size_t i = 0; i < c->calls.cap; i++) {
		const struct ttrpc_idmap_slot *sl = &c->calls.slots[i];
		if (sl->id && ((struct ttrpc_call *)sl->val)->on_drain) {
			ids = xrealloc(ids, (n + 1) * sizeof(*ids));
			ids[n++] = sl->id;
		}
	}
	for (size_t i = 0; i < n && !c->dead; i++) {
		struct ttrpc_call *call = ttrpc_idmap_get(&c->calls, ids[i]);
		if (call && call->on_drain)
			call->on_drain(call, call->drain_ud);
	}
	free(ids);
}

/* ---- ending a call ---- */

/* The end frame has been queued (or could not be): free the call and flush. */
static void finish(struct ttrpc_call *call)
{
	struct conn *c = call->c;
	ttrpc_idmap_del(&c->calls, call->id);
	if (call->timed)
		ev_timer_stop(call->loop, &call->deadline);
	free_call(call);
	if (!c->dead) {
		struct err e;
		conn_flush(c, &e); /* a failed stream reports itself through on_error */
	}
	conn_call_gone(c);
}

/* Whether the connection can take frames now. */
static struct buf *out_buf(struct ttrpc_call *call)
{
	struct conn *c = call->c;
	return c->dead || !stream_writable(c->st) ? NULL : stream_wbuf(c->st);
}

/* Replace invalid UTF-8 bytes with '?' (Go clients would otherwise reject the response). */
static void sanitize(char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = 1;
		while (k < 4 && i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80)
			k++;
		/* Longest valid prefix starting at i: try the sequence lengths 1..k. */
		size_t ok = 0;
		for (size_t len = k; len > 0 && !ok; len--)
			if (ttrpc_utf8_valid(s + i, len))
				ok = len;
		if (!ok) {
			s[i] = '?';
			ok = 1;
		}
		i += ok;
	}
}

/* The end frame was queued (r == 0), or did not fit in a frame (r == -EMSGSIZE, `e` says
 * why: a ResourceExhausted status takes its place).  Frees the call; returns r. */
static int finish_with(struct ttrpc_call *call, struct buf *out, int r, const struct err *e)
{
	if (out && r < 0) {
		struct err e2;
		ttrpc_wire_put_response(out, call->id, TTRPC_RESOURCE_EXHAUSTED, e->msg, 0, NULL,
		                        NULL, &e2);
	}
	finish(call);
	return r;
}

static int end_with_status(struct ttrpc_call *call, int code, const char *message, size_t n_details,
                           Google__Protobuf__Any *const *details)
{
	struct buf *out = out_buf(call);
	struct err e;
	int r = out ? ttrpc_wire_put_response(out, call->id, code, message, n_details, details,
	                                      NULL, &e)
	            : 0;
	return finish_with(call, out, r, &e);
}

static int end_detached(struct ttrpc_call *call)
{
	free_call(call);
	return -ECANCELED;
}

int ttrpc_call_fail_status(struct ttrpc_call *call, int code, const char *message, size_t n_details,
                           Google__Protobuf__Any *const *details)
{
	if (!call->c)
		return end_detached(call);
	if (code == TTRPC_OK)
		code = TTRPC_UNKNOWN; /* a failure must not read as success */
	size_t n = message ? strnlen(message, MAX_STATUS_MSG) : 0;
	char *msg = xstrndup(message ? message : "", n);
	sanitize(msg);
	int r = end_with_status(call, code, msg, n_details, details);
	free(msg);
	return r;
}

int ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...)
{
	if (!call->c)
		return end_detached(call);
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg = NULL;
	int r = ttrpc_call_fail_status(call, code, msg ? msg : "", 0, NULL);
	free(msg);
	return r;
}

int ttrpc_call_fail_err(struct ttrpc_call *call, const struct err *e)
{
	int code = ttrpc_code_from_errno(e->code);
	return ttrpc_call_fail_status(call, code == TTRPC_OK ? TTRPC_UNKNOWN : code, e->msg, 0,
	                              NULL);
}

int ttrpc_call_respond(struct ttrpc_call *call, const ProtobufCMessage *reply)
{
	if (!call->c)
		return end_detached(call);
	const struct ttrpc_method *m = call->m;
	bool server_stream = m->flags & TTRPC_STREAMING_SERVER;
	if ((reply && reply->descriptor != m->output) || (!reply && !server_stream)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "ttrpc: handler of %s replied with %s, want %s", m->name,
		         reply ? reply->descriptor->name : "no message", m->output->name);
		end_with_status(call, TTRPC_INTERNAL, msg, 0, NULL);
		return -EINVAL;
	}
	struct buf *out = out_buf(call);
	struct err e;
	int r = 0;
	if (out && server_stream)
		r = ttrpc_wire_put_data(out, call->id, TTRPC_FLAG_REMOTE_CLOSED, reply, &e);
	else if (out)
		r = ttrpc_wire_put_response(out, call->id, TTRPC_OK, "", 0, NULL, reply, &e);
	return finish_with(call, out, r, &e);
}

int ttrpc_call_send(struct ttrpc_call *call, const ProtobufCMessage *msg, struct err *e)
{
	if (!call->c)
		return err_set(e, -ECANCELED, "ttrpc: call already ended");
	const struct ttrpc_method *m = call->m;
	if (!(m->flags & TTRPC_STREAMING_SERVER))
		return err_set(e, -EINVAL, "ttrpc: %s is not a server-streaming method", m->name);
	if (!msg || msg->descriptor != m->output)
		return err_set(e, -EINVAL, "ttrpc: %s streams %s, not %s", m->name, m->output->name,
		               msg ? msg->descriptor->name : "nothing");
	struct buf *out = out_buf(call);
	if (!out)
		return err_set(e, -EPIPE, "ttrpc: connection cannot write");
	int r = ttrpc_wire_put_data(out, call->id, 0, msg, e);
	if (r < 0)
		return r;
	return conn_flush(call->c, e);
}

/* ---- accessors ---- */

void ttrpc_call_set_recv(struct ttrpc_call *call, const struct ttrpc_call_recv *cbs, void *ud)
{
	call->recv = *cbs;
	call->recv_ud = ud;
}

void ttrpc_call_set_cancel(struct ttrpc_call *call,
                           void (*on_cancel)(struct ttrpc_call *call, int code, void *ud), void *ud)
{
	call->on_cancel = on_cancel;
	call->cancel_ud = ud;
}

void ttrpc_call_set_drain(struct ttrpc_call *call,
                          void (*on_drain)(struct ttrpc_call *call, void *ud), void *ud)
{
	call->on_drain = on_drain;
	call->drain_ud = ud;
}

size_t ttrpc_call_queued(const struct ttrpc_call *call)
{
	return call->c && !call->c->dead ? stream_pending(call->c->st) : 0;
}

bool ttrpc_call_cancelled(const struct ttrpc_call *call)
{
	return call->cancelled;
}

const struct ttrpc_kv *ttrpc_call_metadata(const struct ttrpc_call *call, size_t *n)
{
	*n = call->req->n_metadata;
	return call->md;
}

const char *ttrpc_call_metadata_get(const struct ttrpc_call *call, const char *key)
{
	for (size_t i = 0; i < call->req->n_metadata; i++)
		if (strcasecmp(call->md[i].key, key) == 0)
			return call->md[i].value;
	return NULL;
}

int64_t ttrpc_call_timeout_ns(const struct ttrpc_call *call)
{
	return call->req->timeout_nano;
}

uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call)
{
	return call->id;
}

const char *ttrpc_call_service(const struct ttrpc_call *call)
{
	return call->req->service;
}

const char *ttrpc_call_method(const struct ttrpc_call *call)
{
	return call->req->method;
}

const struct ucred *ttrpc_call_peer(const struct ttrpc_call *call)
{
	return &call->peer;
}
