/* Host half of the bridge.  Outstanding calls live in a small hash table keyed by id, each
 * with an optional ev_timer.  Each call remembers the connection generation it was sent on
 * and the absolute output offset at which its request frame ends, so that when a connection
 * is dropped we know which requests never fully reached the kernel (those fail; the others
 * stay parked for a re-attached connection).  Calls are always unlinked from the table
 * before their callback runs, and batches (close, detach) are moved to a private list first,
 * so callbacks may cancel, call, attach or free the client freely. */
#include "bridge/client.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "common/stream.h"
#include "common/xalloc.h"

#define NBUCKETS   128u
#define NCANCELLED 256u

struct call {
	struct call *next;
	struct bridge_client *cl;
	int64_t id;
	uint32_t type;
	bridge_call_cb cb;
	void *ud;
	ev_timer timer;
	bool timed;
	uint64_t gen;     /* connection generation the request was queued on (0: none) */
	uint64_t end_off; /* stream output offset just past the request frame */
};

struct bridge_client {
	struct ev_loop *loop;
	struct bridge_client_cbs cbs;
	void *ud;
	struct stream *s;
	uint64_t gen; /* generation of the attached connection; starts at 1 */
	int64_t next_id;
	unsigned default_timeout_ms;
	bool migrating;
	bool probation; /* only the response to probation_id may come in */
	int64_t probation_id;
	bool closed;
	bool free_pending;
	int depth;
	size_t ncalls;
	struct call *tab[NBUCKETS];
	struct {
		int64_t id;
		bool used;
	} cancelled[NCANCELLED]; /* ring: the oldest entry is overwritten */
	size_t cancel_pos;       /* next slot to (over)write */
};

static struct call **slot(struct bridge_client *cl, int64_t id)
{
	struct call **pp = &cl->tab[(uint64_t)id % NBUCKETS];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static void insert(struct bridge_client *cl, struct call *c)
{
	struct call **head = &cl->tab[(uint64_t)c->id % NBUCKETS];
	c->next = *head;
	*head = c;
	cl->ncalls++;
}

/* Unlink call `id` from the table and stop its timer; NULL if not outstanding. */
static struct call *take(struct bridge_client *cl, int64_t id)
{
	struct call **pp = slot(cl, id);
	struct call *c = *pp;
	if (!c)
		return NULL;
	*pp = c->next;
	c->next = NULL;
	cl->ncalls--;
	if (c->timed)
		ev_timer_stop(cl->loop, &c->timer);
	return c;
}

/* Unlink every call matching `pred` into a private list (order unspecified). */
static struct call *take_all(struct bridge_client *cl,
                             bool (*pred)(const struct call *, uint64_t, uint64_t), uint64_t gen,
                             uint64_t flushed)
{
	struct call *list = NULL;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct call **pp = &cl->tab[i];
		while (*pp) {
			struct call *c = *pp;
			if (!pred(c, gen, flushed)) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			cl->ncalls--;
			if (c->timed)
				ev_timer_stop(cl->loop, &c->timer);
			c->next = list;
			list = c;
		}
	}
	return list;
}

static bool pred_any(const struct call *c, uint64_t gen, uint64_t flushed)
{
	(void)c;
	(void)gen;
	(void)flushed;
	return true;
}

static bool pred_unsent(const struct call *c, uint64_t gen, uint64_t flushed)
{
	return c->gen == gen && c->end_off > flushed;
}

static void free_list(struct call *list)
{
	while (list) {
		struct call *n = list->next;
		free(list);
		list = n;
	}
}

/* Complete every call of `list` with `status`/`why`; stops early (freeing the rest silently)
 * if a callback frees the client. */
static void fail_list(struct bridge_client *cl, struct call *list, int status,
                      const struct err *why)
{
	while (list) {
		struct call *c = list;
		list = c->next;
		if (!cl->free_pending && c->cb)
			c->cb(cl, status, NULL, 0, why, c->ud);
		free(c);
	}
}

static void destroy(struct bridge_client *cl)
{
	free_list(take_all(cl, pred_any, 0, 0));
	stream_free(cl->s);
	free(cl);
}

static void enter(struct bridge_client *cl)
{
	cl->depth++;
}

static void leave(struct bridge_client *cl)
{
	if (--cl->depth == 0 && cl->free_pending)
		destroy(cl);
}

/* Close the current stream; requests not fully written on it fail with -ECONNRESET. */
static void drop_stream(struct bridge_client *cl)
{
	cl->probation = false;
	if (!cl->s)
		return;
	uint64_t flushed = stream_bytes_out(cl->s);
	uint64_t gen = cl->gen++;
	stream_free(cl->s);
	cl->s = NULL;
	struct call *list = take_all(cl, pred_unsent, gen, flushed);
	if (list) {
		struct err e;
		err_set(&e, -ECONNRESET, "bridge: connection lost before the request was sent");
		fail_list(cl, list, -ECONNRESET, &e);
	}
}

static void kill_bridge(struct bridge_client *cl, const struct err *why)
{
	if (cl->closed)
		return;
	cl->closed = true;
	stream_free(cl->s);
	cl->s = NULL;
	cl->gen++;
	struct err e;
	err_set(&e, -ECONNRESET, "bridge closed: %s", why->msg);
	fail_list(cl, take_all(cl, pred_any, 0, 0), -ECONNRESET, &e);
	if (cl->cbs.on_close && !cl->free_pending)
		cl->cbs.on_close(cl, why, cl->ud);
}

static void transport_lost(struct bridge_client *cl, const struct err *why)
{
	if (!cl->migrating && !cl->probation) {
		kill_bridge(cl, why);
		return;
	}
	drop_stream(cl);
	if (cl->cbs.on_detach && !cl->free_pending && !cl->closed)
		cl->cbs.on_detach(cl, why, cl->ud);
}

/* One frame from the guest; protocol violations kill the bridge. */
static void handle_frame(struct bridge_client *cl, const struct bridge_hdr *h, const char *p,
                         size_t len)
{
	struct err e;
	if (cl->probation && ((h->type & BRIDGE_MT_MASK) != BRIDGE_MT_RESPONSE ||
	                      (int64_t)h->id != cl->probation_id)) {
		err_set(&e, -EACCES,
		        "bridge: type=0x%08" PRIx32 " id=%" PRIu64 " before the session proof",
		        h->type, h->id);
		transport_lost(cl, &e);
		return;
	}
	if (h->type == BRIDGE_NOTIFY_CONTAINER) {
		if (cl->cbs.on_notify)
			cl->cbs.on_notify(cl, p, len, cl->ud);
		return;
	}
	if ((h->type & BRIDGE_MT_MASK) != BRIDGE_MT_RESPONSE) {
		err_set(&e, -EPROTO, "bridge: unexpected message type 0x%08" PRIx32 " id=%" PRIu64,
		        h->type, h->id);
		kill_bridge(cl, &e);
		return;
	}
	int64_t id = (int64_t)h->id;
	struct call *c = take(cl, id);
	if (c) {
		if (c->cb)
			c->cb(cl, 0, p, len, NULL, c->ud);
		free(c);
		return;
	}
	for (size_t i = 0; i < NCANCELLED; i++) {
		if (cl->cancelled[i].used && cl->cancelled[i].id == id) {
			/* cancelled earlier: drop quietly, once */
			cl->cancelled[i].used = false;
			return;
		}
	}
	err_set(&e, -EPROTO, "bridge: unknown rpc response id=%" PRId64 " type=0x%08" PRIx32, id,
	        h->type);
	kill_bridge(cl, &e);
}

static void on_read(struct stream *s, struct buf *in, void *ud)
{
	struct bridge_client *cl = ud;
	enter(cl);
	while (cl->s == s && !cl->free_pending) {
		struct bridge_hdr h;
		const uint8_t *p;
		size_t len;
		struct err e;
		err_clear(&e);
		int r = bridge_frame_peek(in, BRIDGE_MAX_MSG, &h, &p, &len, &e);
		if (r == 0)
			break;
		if (r < 0) {
			err_prefix(&e, "bridge");
			kill_bridge(cl, &e);
			break;
		}
		handle_frame(cl, &h, (const char *)p, len);
		if (cl->s != s || cl->free_pending)
			break;
		buf_consume(in, h.size);
	}
	leave(cl);
}

static void on_eof(struct stream *s, void *ud)
{
	(void)s;
	struct bridge_client *cl = ud;
	struct err e;
	err_set(&e, -ECONNRESET, "bridge: connection closed by the guest");
	enter(cl);
	transport_lost(cl, &e);
	leave(cl);
}

static void on_error(struct stream *s, const struct err *why, void *ud)
{
	(void)s;
	struct bridge_client *cl = ud;
	struct err e = *why;
	err_prefix(&e, "bridge");
	enter(cl);
	transport_lost(cl, &e);
	leave(cl);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct call *c = w->data;
	struct bridge_client *cl = c->cl;
	struct err e;
	err_set(&e, -ETIMEDOUT, "bridge: message timeout: %s id=%" PRId64,
	        bridge_type_name(c->type), c->id);
	enter(cl);
	c = take(cl, c->id);
	if (c && c->cb)
		c->cb(cl, -ETIMEDOUT, NULL, 0, &e, c->ud);
	free(c);
	if (!cl->free_pending)
		kill_bridge(cl, &e);
	leave(cl);
}

struct bridge_client *bridge_client_new(struct ev_loop *loop, const struct bridge_client_cbs *cbs,
                                        void *ud)
{
	struct bridge_client *cl = xcalloc(1, sizeof(*cl));
	cl->loop = loop;
	if (cbs)
		cl->cbs = *cbs;
	cl->ud = ud;
	cl->gen = 1;
	cl->default_timeout_ms = BRIDGE_DEFAULT_TIMEOUT_MS;
	return cl;
}

void bridge_client_free(struct bridge_client *cl)
{
	if (!cl || cl->free_pending)
		return;
	stream_free(cl->s);
	cl->s = NULL;
	if (cl->depth > 0) {
		cl->free_pending = true;
		return;
	}
	destroy(cl);
}

void bridge_client_close(struct bridge_client *cl, const struct err *why)
{
	struct err e;
	if (!why || why->code == 0) {
		err_set(&e, -ECONNRESET, "bridge: closed by the host");
		why = &e;
	}
	enter(cl);
	kill_bridge(cl, why);
	leave(cl);
}

int bridge_client_attach(struct bridge_client *cl, int fd, struct err *e)
{
	static const struct stream_cbs scbs = {
	    .on_read = on_read,
	    .on_eof = on_eof,
	    .on_error = on_error,
	};
	if (cl->closed || cl->free_pending) {
		if (fd >= 0)
			close(fd);
		return err_set(e, -ECONNRESET, "bridge: closed, cannot attach a connection");
	}
	enter(cl);
	drop_stream(cl);
	int r = 0;
	if (cl->closed || cl->free_pending) {
		close(fd);
		r = err_set(e, -ECONNRESET, "bridge: closed, cannot attach a connection");
	} else {
		cl->s = stream_new(cl->loop, fd, &scbs, cl, e);
		if (!cl->s)
			r = err_prefix(e, "bridge: attach");
	}
	leave(cl);
	return r;
}

void bridge_client_detach(struct bridge_client *cl)
{
	enter(cl);
	drop_stream(cl);
	leave(cl);
}

bool bridge_client_attached(const struct bridge_client *cl)
{
	return cl->s != NULL;
}

bool bridge_client_closed(const struct bridge_client *cl)
{
	return cl->closed;
}

void bridge_client_set_migrating(struct bridge_client *cl, bool migrating)
{
	cl->migrating = migrating;
}

void bridge_client_set_default_timeout(struct bridge_client *cl, unsigned timeout_ms)
{
	cl->default_timeout_ms = timeout_ms;
}

static struct call *call_new(struct bridge_client *cl, int64_t id, uint32_t type, bridge_call_cb cb,
                             void *ud, unsigned timeout_ms)
{
	struct call *c = xcalloc(1, sizeof(*c));
	c->cl = cl;
	c->id = id;
	c->type = type;
	c->cb = cb;
	c->ud = ud;
	if (timeout_ms > 0) {
		ev_timer_init(&c->timer, on_timeout, timeout_ms / 1000.0, 0.);
		c->timer.data = c;
		c->timed = true;
		ev_timer_start(cl->loop, &c->timer);
	}
	insert(cl, c);
	return c;
}

int bridge_client_call_ex(struct bridge_client *cl, enum bridge_rpc rpc, const void *json,
                          size_t len, int timeout_ms, bridge_call_cb cb, void *ud, int64_t *id_out,
                          struct err *e)
{
	uint32_t type = bridge_request_type(rpc);
	if (cl->closed || cl->free_pending)
		return err_set(e, -ECONNRESET, "bridge: closed, %s not sent",
		               bridge_type_name(type));
	if (!cl->s)
		return err_set(e, -ENOTCONN, "bridge: not connected, %s not sent",
		               bridge_type_name(type));
	if (!stream_writable(cl->s))
		return err_set(e, -EPIPE, "bridge: connection failing, %s not sent",
		               bridge_type_name(type));
	int64_t id = cl->next_id;
	int r = bridge_frame_append(stream_wbuf(cl->s), type, (uint64_t)id, json, len, 0, e);
	if (r < 0)
		return err_prefix(e, "bridge");
	uint64_t end_off = stream_bytes_out(cl->s) + stream_pending(cl->s);
	r = stream_flush(cl->s, e);
	if (r < 0)
		return err_prefix(e, "bridge: %s", bridge_type_name(type));
	unsigned tmo;
	if (timeout_ms == BRIDGE_TIMEOUT_DEFAULT)
		tmo = rpc == RPC_WAIT_FOR_PROCESS ? 0 : cl->default_timeout_ms;
	else
		tmo = timeout_ms > 0 ? (unsigned)timeout_ms : 0;
	struct call *c = call_new(cl, id, type, cb, ud, tmo);
	c->gen = cl->gen;
	c->end_off = end_off;
	cl->next_id++;
	if (id_out)
		*id_out = id;
	return 0;
}

int bridge_client_call(struct bridge_client *cl, enum bridge_rpc rpc, const void *json, size_t len,
                       bridge_call_cb cb, void *ud, int64_t *id_out, struct err *e)
{
	return bridge_client_call_ex(cl, rpc, json, len, BRIDGE_TIMEOUT_DEFAULT, cb, ud, id_out, e);
}

int bridge_client_cancel(struct bridge_client *cl, int64_t id)
{
	struct call *c = take(cl, id);
	if (!c)
		return -ENOENT;
	free(c);
	cl->cancelled[cl->cancel_pos].id = id;
	cl->cancelled[cl->cancel_pos].used = true;
	cl->cancel_pos = (cl->cancel_pos + 1) % NCANCELLED;
	return 0;
}

int64_t bridge_client_next_id(const struct bridge_client *cl)
{
	return cl->next_id;
}

void bridge_client_seed_next_id(struct bridge_client *cl, int64_t n)
{
	if (n > cl->next_id)
		cl->next_id = n;
}

int bridge_client_preregister(struct bridge_client *cl, int64_t id, bridge_call_cb cb, void *ud,
                              struct err *e)
{
	if (cl->closed || cl->free_pending)
		return err_set(e, -ECONNRESET, "bridge: closed, cannot preregister id=%" PRId64,
		               id);
	if (*slot(cl, id))
		return err_set(e, -EEXIST, "bridge: rpc id=%" PRId64 " already outstanding", id);
	call_new(cl, id, bridge_request_type(RPC_WAIT_FOR_PROCESS), cb, ud, 0);
	if (id < INT64_MAX)
		bridge_client_seed_next_id(cl, id + 1);
	return 0;
}

void bridge_client_probation(struct bridge_client *cl, int64_t id)
{
	cl->probation = cl->s != NULL;
	cl->probation_id = id;
}

void bridge_client_trust(struct bridge_client *cl)
{
	cl->probation = false;
}

size_t bridge_client_outstanding(const struct bridge_client *cl)
{
	return cl->ncalls;
}
