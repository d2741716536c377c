/* The ttrpc client: a table of streams in flight keyed by id over one common/stream.  Unary
 * calls are streams without flags whose end delivers the reply.  A stream leaves the table
 * before its end callback runs; after any other user callback the stream is re-found by id
 * (ids are never reused on a connection), because the callback may have cancelled it or
 * closed the client.  `depth` defers ttrpc_client_free inside callbacks. */
#include "ttrpc/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/stream.h"
#include "common/xalloc.h"
#include "ttrpc/frame.h"
#include "ttrpc/idmap.h"

struct ttrpc_cstream {
	struct ttrpc_client *cl;
	uint32_t id;
	unsigned flags; /* TTRPC_STREAMING_*; 0 for a unary call */
	const ProtobufCMessageDescriptor *reply_desc;
	ttrpc_reply_cb reply_cb;      /* unary calls */
	struct ttrpc_cstream_cbs cbs; /* streams */
	void *ud;
	ev_timer deadline;
	bool timed;
	bool local_closed; /* client streams: close-send was sent */
	bool ending;       /* on_end is running */
};

struct ttrpc_client {
	struct ev_loop *loop;
	struct stream *st;
	struct ttrpc_framer fr;
	struct ttrpc_idmap calls;
	uint64_t next_id; /* odd; past UINT32_MAX the ids are used up */
	struct ttrpc_client_cbs cbs;
	void *ud;
	int depth;
	bool free_pending;
	bool closed;
	uint64_t ignored;
};

static void destroy(struct ttrpc_client *cl)
{
	size_t n;
	void **v = ttrpc_idmap_take_all(&cl->calls, &n);
	for (size_t i = 0; i < n; i++) {
		struct ttrpc_cstream *cs = v[i];
		if (cs->timed)
			ev_timer_stop(cl->loop, &cs->deadline);
		free(cs);
	}
	free(v);
	ttrpc_idmap_fini(&cl->calls);
	stream_free(cl->st);
	free(cl);
}

static void enter(struct ttrpc_client *cl)
{
	cl->depth++;
}

static void leave(struct ttrpc_client *cl)
{
	if (--cl->depth == 0 && cl->free_pending)
		destroy(cl);
}

static bool live(const struct ttrpc_client *cl, uint32_t id)
{
	return !cl->free_pending && ttrpc_idmap_get(&cl->calls, id) != NULL;
}

/* Take the stream out of the table and end it with a status (and, for a unary call, the
 * reply).  Frees it. */
static void end(struct ttrpc_cstream *cs, int code, const char *message, size_t n_details,
                Google__Protobuf__Any *const *details, const ProtobufCMessage *reply)
{
	struct ttrpc_client *cl = cs->cl;
	ttrpc_idmap_del(&cl->calls, cs->id);
	if (cs->timed)
		ev_timer_stop(cl->loop, &cs->deadline);
	struct ttrpc_status st = {.code = code,
	                          .message = message ? message : "",
	                          .n_details = n_details,
	                          .details = details};
	cs->ending = true;
	if (!cl->free_pending) {
		if (cs->reply_cb)
			cs->reply_cb(cl, &st, code == TTRPC_OK ? reply : NULL, cs->ud);
		else if (cs->cbs.on_end)
			cs->cbs.on_end(cs, &st, cs->ud);
	}
	free(cs);
}

static void endf(struct ttrpc_cstream *cs, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void endf(struct ttrpc_cstream *cs, int code, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	end(cs, code, msg, 0, NULL, NULL);
}

/* End every stream with `code`, one at a time (callbacks may cancel others). */
static void end_all(struct ttrpc_client *cl, int code, const char *msg)
{
	uint32_t id;
	struct ttrpc_cstream *cs;
	while ((cs = ttrpc_idmap_any(&cl->calls, &id)))
		end(cs, code, msg, 0, NULL, NULL);
}

static void lose(struct ttrpc_client *cl, const struct err *why, int code, const char *prefix)
{
	if (cl->closed)
		return;
	cl->closed = true;
	stream_free(cl->st);
	cl->st = NULL;
	char msg[ERR_MSG_MAX + 64];
	snprintf(msg, sizeof(msg), "%s: %s", prefix, why->msg);
	end_all(cl, code, msg);
	if (cl->cbs.on_close && !cl->free_pending)
		cl->cbs.on_close(cl, why, cl->ud);
}

/* ---- receiving ---- */

/* Decode and hand over one server message; false when the stream ended meanwhile. */
static bool deliver(struct ttrpc_cstream *cs, const uint8_t *p, size_t n)
{
	struct ttrpc_client *cl = cs->cl;
	uint32_t id = cs->id;
	struct err e;
	err_clear(&e);
	ProtobufCMessage *msg = ttrpc_msg_unpack(cs->reply_desc, p, n, &e);
	if (!msg) {
		endf(cs, e.code == -EMSGSIZE ? TTRPC_RESOURCE_EXHAUSTED : TTRPC_INTERNAL,
		     "ttrpc: bad reply: %s", e.msg);
		return false;
	}
	if (cs->reply_cb) {
		end(cs, TTRPC_OK, "", 0, NULL, msg);
		ttrpc_msg_free(msg);
		return false;
	}
	if (cs->cbs.on_msg)
		cs->cbs.on_msg(cs, msg, cs->ud);
	ttrpc_msg_free(msg);
	return live(cl, id);
}

static void on_response(struct ttrpc_cstream *cs, const struct ttrpc_frame *f)
{
	struct err e;
	err_clear(&e);
	Ttrpc__Response *resp = ttrpc_response_decode(f->data, f->h.length, &e);
	if (!resp) {
		endf(cs, TTRPC_INTERNAL, "ttrpc: bad response: %s", e.msg);
		return;
	}
	const Google__Rpc__Status *st = resp->status;
	if (st && st->code != TTRPC_OK) {
		end(cs, st->code, st->message, st->n_details, st->details, NULL);
	} else if (!(cs->flags & TTRPC_STREAMING_SERVER) || resp->payload.len > 0) {
		/* A unary or client-stream answer always carries the reply (an empty message
		 * encodes to nothing); a server stream's final Response only when not empty. */
		if (deliver(cs, resp->payload.data, resp->payload.len))
			end(cs, TTRPC_OK, "", 0, NULL, NULL);
	} else {
		end(cs, TTRPC_OK, "", 0, NULL, NULL);
	}
	ttrpc_msg_free(&resp->base);
}

static void on_data(struct ttrpc_cstream *cs, const struct ttrpc_frame *f)
{
	if (!(cs->flags & TTRPC_STREAMING_SERVER)) {
		endf(cs, TTRPC_INTERNAL, "ttrpc: data frame on a call without a server stream");
		return;
	}
	if (!(f->h.flags & TTRPC_FLAG_NO_DATA) && !deliver(cs, f->data, f->h.length))
		return;
	if (f->h.flags & TTRPC_FLAG_REMOTE_CLOSED)
		end(cs, TTRPC_OK, "", 0, NULL, NULL);
}

static void handle_frame(struct ttrpc_client *cl, const struct ttrpc_frame *f)
{
	struct ttrpc_cstream *cs = ttrpc_idmap_get(&cl->calls, f->h.stream_id);
	if (!cs) {
		cl->ignored++;
		return;
	}
	if (f->oversized)
		endf(cs, TTRPC_RESOURCE_EXHAUSTED,
		     "message length %u exceed maximum message size of %u", f->h.length,
		     TTRPC_MAX_DATA);
	else if (f->h.type == TTRPC_MSG_RESPONSE)
		on_response(cs, f);
	else if (f->h.type == TTRPC_MSG_DATA)
		on_data(cs, f);
	/* Requests from a server and unknown types are ignored. */
}

static void on_read(struct stream *st, struct buf *in, void *ud)
{
	(void)st;
	struct ttrpc_client *cl = ud;
	enter(cl);
	while (!cl->closed && !cl->free_pending) {
		struct ttrpc_frame f;
		if (ttrpc_framer_next(&cl->fr, in, &f) == 0)
			break;
		handle_frame(cl, &f);
	}
	leave(cl);
}

static void on_eof(struct stream *st, void *ud)
{
	(void)st;
	struct ttrpc_client *cl = ud;
	struct err e;
	err_set(&e, -ECONNRESET, "ttrpc: connection closed by the server");
	enter(cl);
	lose(cl, &e, TTRPC_UNAVAILABLE, "ttrpc: closed");
	leave(cl);
}

static void on_error(struct stream *st, const struct err *why, void *ud)
{
	(void)st;
	struct ttrpc_client *cl = ud;
	enter(cl);
	lose(cl, why, TTRPC_UNAVAILABLE, "ttrpc: closed");
	leave(cl);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ttrpc_cstream *cs = w->data;
	struct ttrpc_client *cl = cs->cl;
	enter(cl);
	end(cs, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded", 0, NULL, NULL);
	leave(cl);
}

/* ---- the client ---- */

struct ttrpc_client *ttrpc_client_new(struct ev_loop *loop, int fd,
                                      const struct ttrpc_client_cbs *cbs, void *ud, struct err *e)
{
	struct ttrpc_client *cl = xcalloc(1, sizeof(*cl));
	static const struct stream_cbs scbs = {
	    .on_read = on_read,
	    .on_eof = on_eof,
	    .on_error = on_error,
	};
	cl->st = stream_new(loop, fd, &scbs, cl, e);
	if (!cl->st) {
		free(cl);
		err_prefix(e, "ttrpc");
		return NULL;
	}
	cl->loop = loop;
	ttrpc_framer_init(&cl->fr, TTRPC_MAX_DATA);
	ttrpc_idmap_init(&cl->calls);
	cl->next_id = 1;
	if (cbs)
		cl->cbs = *cbs;
	cl->ud = ud;
	return cl;
}

int ttrpc_dial_unix(const char *path, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "ttrpc: socket path `%.80s` empty or too long",
		               path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, -errno, "ttrpc: socket");
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		err_sys(e, -errno, "ttrpc: connect %s", path);
		close(fd);
		return e->code;
	}
	return fd;
}

void ttrpc_client_close(struct ttrpc_client *cl)
{
	if (cl->closed || cl->free_pending)
		return;
	struct err e;
	err_set(&e, -ECANCELED, "ttrpc: client closed");
	enter(cl);
	lose(cl, &e, TTRPC_CANCELLED, "ttrpc: client closed");
	leave(cl);
}

void ttrpc_client_free(struct ttrpc_client *cl)
{
	if (!cl || cl->free_pending)
		return;
	cl->free_pending = true;
	if (cl->depth == 0)
		destroy(cl);
}

bool ttrpc_client_closed(const struct ttrpc_client *cl)
{
	return cl->closed;
}

size_t ttrpc_client_outstanding(const struct ttrpc_client *cl)
{
	return cl->calls.n;
}

size_t ttrpc_client_queued(const struct ttrpc_client *cl)
{
	return cl->st ? stream_pending(cl->st) : 0;
}

uint64_t ttrpc_client_ignored_frames(const struct ttrpc_client *cl)
{
	return cl->ignored;
}

/* ---- starting calls ---- */

static struct ttrpc_cstream *start(struct ttrpc_client *cl, const char *service, const char *method,
                                   unsigned flags, uint8_t wire_flags, const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *reply_desc,
                                   const struct ttrpc_call_opts *opts, struct err *e)
{
	if (cl->closed || cl->free_pending || !stream_writable(cl->st)) {
		err_set(e, -EPIPE, "ttrpc: connection closed");
		return NULL;
	}
	if (cl->next_id > UINT32_MAX) {
		err_set(e, -EOVERFLOW, "ttrpc: stream ids of this connection are used up");
		return NULL;
	}
	uint32_t id = (uint32_t)cl->next_id;
	const struct ttrpc_call_opts none = {0};
	if (!opts)
		opts = &none;
	const struct ttrpc_request_out rq = {
	    .service = service,
	    .method = method,
	    .payload = req,
	    .timeout_nano = opts->timeout_ns > 0 ? opts->timeout_ns : 0,
	    .metadata = opts->metadata,
	    .n_metadata = opts->n_metadata,
	};
	if (ttrpc_wire_put_request(stream_wbuf(cl->st), id, wire_flags, &rq, e) < 0) {
		err_prefix(e, "ttrpc: %s/%s", service, method);
		return NULL;
	}
	cl->next_id += 2;
	struct ttrpc_cstream *cs = xcalloc(1, sizeof(*cs));
	cs->cl = cl;
	cs->id = id;
	cs->flags = flags;
	cs->reply_desc = reply_desc;
	if (opts->timeout_ns > 0) {
		/* Calls are often started outside loop callbacks, when the loop's idea of now may
		 * be old: the deadline counts from the real now. */
		ev_now_update(cl->loop);
		ev_timer_init(&cs->deadline, on_deadline, (double)opts->timeout_ns / 1e9, 0.);
		cs->deadline.data = cs;
		ev_timer_start(cl->loop, &cs->deadline);
		cs->timed = true;
	}
	/* A server-only stream has nothing more to send. */
	cs->local_closed = !(flags & TTRPC_STREAMING_CLIENT);
	ttrpc_idmap_put(&cl->calls, id, cs);
	stream_flush(cl->st, e); /* writable was checked: only deferred errors, via on_error */
	return cs;
}

int ttrpc_client_call(struct ttrpc_client *cl, const char *service, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
                      const struct ttrpc_call_opts *opts, ttrpc_reply_cb cb, void *ud,
                      uint32_t *id_out, struct err *e)
{
	struct ttrpc_cstream *cs = start(cl, service, method, 0, 0, req, reply_desc, opts, e);
	if (!cs)
		return e->code;
	cs->reply_cb = cb;
	cs->ud = ud;
	if (id_out)
		*id_out = cs->id;
	return 0;
}

int ttrpc_client_cancel(struct ttrpc_client *cl, uint32_t id)
{
	struct ttrpc_cstream *cs = ttrpc_idmap_get(&cl->calls, id);
	if (!cs || cs->ending)
		return -ENOENT;
	ttrpc_cstream_cancel(cs);
	return 0;
}

struct ttrpc_cstream *ttrpc_client_stream(struct ttrpc_client *cl, const char *service,
                                          const char *method, unsigned flags,
                                          const ProtobufCMessage *req,
                                          const ProtobufCMessageDescriptor *reply_desc,
                                          const struct ttrpc_call_opts *opts,
                                          const struct ttrpc_cstream_cbs *cbs, void *ud,
                                          struct err *e)
{
	if (flags == 0 || (flags & ~(TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER))) {
		err_set(e, -EINVAL, "ttrpc: %s/%s: bad stream flags 0x%x", service, method, flags);
		return NULL;
	}
	if (!(flags & TTRPC_STREAMING_CLIENT) && !req) {
		err_set(e, -EINVAL, "ttrpc: %s/%s: a server stream needs its request", service,
		        method);
		return NULL;
	}
	uint8_t wire_flags =
	    flags & TTRPC_STREAMING_CLIENT ? TTRPC_FLAG_REMOTE_OPEN : TTRPC_FLAG_REMOTE_CLOSED;
	struct ttrpc_cstream *cs =
	    start(cl, service, method, flags, wire_flags, req, reply_desc, opts, e);
	if (!cs)
		return NULL;
	if (cbs)
		cs->cbs = *cbs;
	cs->ud = ud;
	return cs;
}

static int stream_out(struct ttrpc_cstream *cs, const char *what, struct err *e)
{
	struct ttrpc_client *cl = cs->cl;
	if (!(cs->flags & TTRPC_STREAMING_CLIENT) || cs->local_closed)
		return err_set(e, -EINVAL, "ttrpc: stream %u: cannot %s: %s", cs->id, what,
		               cs->local_closed ? "closed for sending" : "not a client stream");
	if (cl->closed || !stream_writable(cl->st))
		return err_set(e, -EPIPE, "ttrpc: connection closed");
	return 0;
}

int ttrpc_cstream_send(struct ttrpc_cstream *cs, const ProtobufCMessage *msg, struct err *e)
{
	int r = stream_out(cs, "send", e);
	if (r < 0)
		return r;
	struct stream *st = cs->cl->st;
	if (!msg)
		return err_set(e, -EINVAL, "ttrpc: stream %u: no message to send", cs->id);
	r = ttrpc_wire_put_data(stream_wbuf(st), cs->id, 0, msg, e);
	return r < 0 ? r : stream_flush(st, e);
}

int ttrpc_cstream_close_send(struct ttrpc_cstream *cs, struct err *e)
{
	int r = stream_out(cs, "close", e);
	if (r < 0)
		return r;
	struct stream *st = cs->cl->st;
	r = ttrpc_wire_put_data(stream_wbuf(st), cs->id, TTRPC_FLAG_REMOTE_CLOSED, NULL, e);
	if (r < 0)
		return r;
	cs->local_closed = true;
	return stream_flush(st, e);
}

void ttrpc_cstream_cancel(struct ttrpc_cstream *cs)
{
	if (cs->ending)
		return; /* on_end is running: the stream is freed when it returns */
	ttrpc_idmap_del(&cs->cl->calls, cs->id);
	if (cs->timed)
		ev_timer_stop(cs->cl->loop, &cs->deadline);
	free(cs);
}

uint32_t ttrpc_cstream_id(const struct ttrpc_cstream *cs)
{
	return cs->id;
}
