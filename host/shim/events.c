/* The task event publisher of events.h: a ring of packed events numbered in publish order,
 * a forwarder that keeps one Events/Forward call in flight to containerd and retries the head
 * of the line on a new connection after a back-off, subscriber cursors into the same ring, and
 * a flush for the shim's exit.  Everything that calls out (replies, subscribers, flush) runs
 * between enter() and leave(), so a callback may free the publisher and a record handed to a
 * subscriber is never evicted while it runs. */
#include "host/shim/events.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/services/ttrpc/events/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "host/shim/events_order.h"
#include "ttrpc/ttrpc.h"

/* The table of task events: descriptor, topic (containerd runtime/events.go) and the name of
 * the field holding the process id that the order rules look at (NULL: none). */
static const struct {
	const ProtobufCMessageDescriptor *desc;
	const char *topic;
	const char *proc_field;
} types[EVENTS_N_TYPES] = {
    [EVENTS_TASK_CREATE] = {&containerd__events__task_create__descriptor, "/tasks/create", NULL},
    [EVENTS_TASK_START] = {&containerd__events__task_start__descriptor, "/tasks/start", NULL},
    [EVENTS_TASK_DELETE] = {&containerd__events__task_delete__descriptor, "/tasks/delete", "id"},
    [EVENTS_TASK_EXIT] = {&containerd__events__task_exit__descriptor, "/tasks/exit", "id"},
    [EVENTS_TASK_OOM] = {&containerd__events__task_oom__descriptor, "/tasks/oom", NULL},
    [EVENTS_TASK_EXEC_ADDED] = {&containerd__events__task_exec_added__descriptor,
                                "/tasks/exec-added", "exec_id"},
    [EVENTS_TASK_EXEC_STARTED] = {&containerd__events__task_exec_started__descriptor,
                                  "/tasks/exec-started", "exec_id"},
    [EVENTS_TASK_PAUSED] = {&containerd__events__task_paused__descriptor, "/tasks/paused", NULL},
    [EVENTS_TASK_RESUMED] = {&containerd__events__task_resumed__descriptor, "/tasks/resumed", NULL},
    [EVENTS_TASK_CHECKPOINTED] = {&containerd__events__task_checkpointed__descriptor,
                                  "/tasks/checkpointed", NULL},
};

/* One packed event; the container id follows the value in the same allocation. */
struct rec {
	enum events_type type;
	int64_t sec;
	int32_t nsec;
	const char *cid;
	size_t len;
	uint8_t value[];
};

struct events_sub {
	struct events_publisher *p;
	uint64_t next; /* the next sequence number to deliver */
	events_sub_cb cb;
	void *ud;
	bool paused;
	bool dead; /* unsubscribed while callbacks run; unlinked by leave() */
	struct events_sub *link;
};

struct events_publisher {
	struct ev_loop *loop;
	char *ns;
	char *address; /* the socket path ("unix://" removed); NULL: not forwarding */
	size_t max_pending, max_pending_bytes, retain;
	double call_timeout_s, backoff_min_s, backoff_max_s;

	/* The ring: ring[(head + i) % cap] holds sequence number first_seq() + i. */
	struct rec **ring;
	size_t cap, head, count;
	uint64_t next_seq; /* the next number handed out (the first is 1) */
	uint64_t fwd_seq;  /* the next to forward; == next_seq when all are delivered */
	size_t pending_bytes;

	struct events_order *order;

	struct ttrpc_client *cl;
	bool in_flight;
	bool outage; /* a failure was logged; the next success says so */
	double backoff;
	ev_timer backoff_timer;
	ev_timer kick; /* runs pump() from the loop */

	struct events_sub *subs;

	events_flush_cb flush_cb;
	void *flush_ud;
	ev_timer flush_timer;

	int depth;
	bool free_pending;
	struct events_stats st;
};

static void pump(struct events_publisher *p);

/* ---- the type table ---- */

const char *events_topic(enum events_type t)
{
	return (unsigned)t < EVENTS_N_TYPES ? types[t].topic : NULL;
}

const char *events_type_url(enum events_type t)
{
	/* containerd 1.6's typeurl: the proto registry's full name, no URL prefix. */
	return (unsigned)t < EVENTS_N_TYPES ? types[t].desc->name : NULL;
}

const ProtobufCMessageDescriptor *events_descriptor(enum events_type t)
{
	return (unsigned)t < EVENTS_N_TYPES ? types[t].desc : NULL;
}

int events_type_of(const ProtobufCMessageDescriptor *d)
{
	for (int t = 0; t < EVENTS_N_TYPES; t++)
		if (types[t].desc == d)
			return t;
	return -1;
}

bool events_valid_identifier(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 76)
		return false;
	bool need_alnum = true; /* at the start and after a separator */
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			need_alnum = false;
		else if ((c == '.' || c == '_' || c == '-') && !need_alnum)
			need_alnum = true;
		else
			return false;
	}
	return !need_alnum;
}

/* A string field of `m` by name (NULL when absent or not a string). */
static const char *string_field(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const char *const *)((const char *)m + f->offset);
}

/* ---- the ring ---- */

static uint64_t first_seq(const struct events_publisher *p)
{
	return p->next_seq - p->count;
}

static struct rec *rec_at(const struct events_publisher *p, uint64_t seq)
{
	return p->ring[(p->head + (size_t)(seq - first_seq(p))) & (p->cap - 1)];
}

static size_t pending(const struct events_publisher *p)
{
	return (size_t)(p->next_seq - p->fwd_seq);
}

static void ring_push(struct events_publisher *p, struct rec *r)
{
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct rec **ring = xcalloc(cap, sizeof(*ring));
		for (size_t i = 0; i < p->count; i++)
			ring[i] = p->ring[(p->head + i) & (p->cap - 1)];
		free(p->ring);
		p->ring = ring;
		p->cap = cap;
		p->head = 0;
	}
	p->ring[(p->head + p->count) & (p->cap - 1)] = r;
	p->count++;
	p->next_seq++;
}

/* Drop delivered events beyond the retained window (never while callbacks run: a subscriber
 * may hold the record being delivered). */
static void trim(struct events_publisher *p)
{
	if (p->depth > 0)
		return;
	while (p->count > 0 && first_seq(p) < p->fwd_seq && p->count - pending(p) > p->retain) {
		free(p->ring[p->head]);
		p->ring[p->head] = NULL;
		p->head = (p->head + 1) & (p->cap - 1);
		p->count--;
		p->st.evicted++;
	}
}

/* The head of the line is done (forwarded or rejected). */
static void advance(struct events_publisher *p)
{
	p->pending_bytes -= rec_at(p, p->fwd_seq)->len;
	p->fwd_seq++;
	trim(p);
}

/* ---- callbacks bracket ---- */

static void really_free(struct events_publisher *p)
{
	while (p->subs) {
		struct events_sub *s = p->subs;
		p->subs = s->link;
		free(s);
	}
	for (size_t i = 0; i < p->count; i++)
		free(p->ring[(p->head + i) & (p->cap - 1)]);
	free(p->ring);
	events_order_free(p->order);
	free(p->address);
	free(p->ns);
	free(p);
}

static void enter(struct events_publisher *p)
{
	p->depth++;
}

/* Returns false when the publisher was freed. */
static bool leave(struct events_publisher *p)
{
	if (--p->depth > 0)
		return true;
	if (p->free_pending) {
		really_free(p);
		return false;
	}
	for (struct events_sub **l = &p->subs; *l;) {
		struct events_sub *s = *l;
		if (s->dead) {
			*l = s->link;
			free(s);
		} else {
			l = &s->link;
		}
	}
	trim(p);
	return true;
}

static void schedule(struct events_publisher *p)
{
	if (!ev_is_active(&p->kick)) {
		ev_timer_set(&p->kick, 0., 0.);
		ev_timer_start(p->loop, &p->kick);
	}
}

/* ---- the forwarder ---- */

static void drop_connection(struct events_publisher *p)
{
	if (p->cl) {
		ttrpc_client_free(p->cl); /* drops a call in flight without its callback */
		p->cl = NULL;
	}
	p->in_flight = false;
	p->st.connected = false;
}

static void retry_later(struct events_publisher *p, const char *why)
{
	if (!p->outage)
		log_warn("events: cannot forward to containerd at %s: %s; retrying (%zu pending)",
		         p->address, why, pending(p));
	else
		log_debug("events: forward to %s failed: %s", p->address, why);
	p->outage = true;
	drop_connection(p);
	ev_timer_stop(p->loop, &p->backoff_timer);
	ev_timer_set(&p->backoff_timer, p->backoff, 0.);
	ev_timer_start(p->loop, &p->backoff_timer);
	p->backoff = p->backoff * 2 < p->backoff_max_s ? p->backoff * 2 : p->backoff_max_s;
}

static bool retryable(int code)
{
	switch (code) {
	case TTRPC_CANCELLED:
	case TTRPC_UNKNOWN:
	case TTRPC_DEADLINE_EXCEEDED:
	case TTRPC_RESOURCE_EXHAUSTED:
	case TTRPC_ABORTED:
	case TTRPC_INTERNAL:
	case TTRPC_UNAVAILABLE:
		return true;
	default:
		return false;
	}
}

static void on_reply(struct ttrpc_client *cl, const struct ttrpc_status *st,
                     const ProtobufCMessage *reply, void *ud)
{
	(void)cl;
	(void)reply;
	struct events_publisher *p = ud;
	enter(p);
	p->in_flight = false;
	if (st->code == TTRPC_OK) {
		if (p->outage)
			log_info("events: forwarding to containerd at %s again", p->address);
		p->outage = false;
		p->backoff = p->backoff_min_s;
		p->st.forwarded++;
		advance(p);
	} else if (retryable(st->code)) {
		p->st.resent++;
		char why[320];
		snprintf(why, sizeof(why), "%s: %s", ttrpc_code_name(st->code), st->message);
		retry_later(p, why);
	} else {
		struct rec *r = rec_at(p, p->fwd_seq);
		log_error("events: containerd refused %s for container %s (seq %llu): %s: %s; "
		          "skipped",
		          types[r->type].topic, r->cid, (unsigned long long)p->fwd_seq,
		          ttrpc_code_name(st->code), st->message);
		p->st.rejected++;
		advance(p);
	}
	pump(p);
	leave(p);
}

static void on_close(struct ttrpc_client *cl, const struct err *why, void *ud)
{
	(void)why;
	struct events_publisher *p = ud;
	if (p->cl == cl)
		drop_connection(p); /* the call in flight, if any, already failed Unavailable */
}

/* Connect to containerd and check who listens there.  0 or a negative errno with `e`. */
static int connect_containerd(struct events_publisher *p, struct err *e)
{
	int fd = ttrpc_dial_unix(p->address, e);
	if (fd < 0)
		return fd;
	struct ucred peer;
	socklen_t len = sizeof(peer);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0) {
		int rc = err_sys(e, -errno, "SO_PEERCRED");
		close(fd);
		return rc;
	}
	if (peer.uid != 0 && peer.uid != geteuid()) {
		close(fd);
		return err_set(e, -EPERM, "the socket belongs to uid=%u pid=%d, not root or us",
		               (unsigned)peer.uid, (int)peer.pid);
	}
	struct ttrpc_client_cbs cbs = {.on_close = on_close};
	p->cl = ttrpc_client_new(p->loop, fd, &cbs, p, e);
	if (!p->cl)
		return e->code;
	p->st.connects++;
	p->st.connected = true;
	return 0;
}

static void forward_next(struct events_publisher *p)
{
	if (!p->address || p->in_flight || ev_is_active(&p->backoff_timer) ||
	    p->fwd_seq == p->next_seq || p->free_pending)
		return;
	struct err e;
	err_clear(&e);
	if (!p->cl && connect_containerd(p, &e) < 0) {
		p->st.connect_failures++;
		retry_later(p, e.msg);
		return;
	}
	const struct rec *r = rec_at(p, p->fwd_seq);
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = r->sec;
	ts.nanos = r->nsec;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = (char *)events_type_url(r->type);
	any.value.data = (uint8_t *)r->value;
	any.value.len = r->len;
	Containerd__Services__Events__Ttrpc__V1__Envelope env =
	    CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
	env.timestamp = &ts;
	env.namespace_ = p->ns;
	env.topic = (char *)types[r->type].topic;
	env.event = &any;
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
	    CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
	req.envelope = &env;
	struct ttrpc_call_opts opts = {.timeout_ns = (int64_t)(p->call_timeout_s * 1e9)};
	if (ttrpc_client_call(p->cl, EVENTS_SERVICE, EVENTS_METHOD, &req.base,
	                      &google__protobuf__empty__descriptor, &opts, on_reply, p, NULL,
	                      &e) < 0) {
		p->st.resent++;
		retry_later(p, e.msg);
		return;
	}
	p->in_flight = true;
}

/* ---- subscribers and flush ---- */

static void deliver(struct events_publisher *p, struct events_sub *s)
{
	while (!s->dead && !s->paused && !p->free_pending && s->next < p->next_seq) {
		uint64_t missed = 0;
		if (s->next < first_seq(p)) {
			missed = first_seq(p) - s->next;
			s->next = first_seq(p);
		}
		const struct rec *r = rec_at(p, s->next);
		struct events_record out = {
		    .seq = s->next,
		    .type = r->type,
		    .topic = types[r->type].topic,
		    .type_url = events_type_url(r->type),
		    .namespace_ = p->ns,
		    .container_id = r->cid,
		    .ts_sec = r->sec,
		    .ts_nsec = r->nsec,
		    .value = r->value,
		    .len = r->len,
		};
		s->next++;
		s->cb(s, &out, missed, s->ud);
	}
}

static void finish_flush(struct events_publisher *p)
{
	events_flush_cb cb = p->flush_cb;
	p->flush_cb = NULL;
	ev_timer_stop(p->loop, &p->flush_timer);
	cb(p, p->address ? pending(p) : 0, p->flush_ud);
}

static void pump(struct events_publisher *p)
{
	enter(p);
	forward_next(p);
	/* Subscribers added during delivery are linked at the head and start at next_seq or
	 * earlier; they are served on the next pump. */
	for (struct events_sub *s = p->subs; s && !p->free_pending; s = s->link)
		deliver(p, s);
	if (p->flush_cb && !p->free_pending && (!p->address || pending(p) == 0))
		finish_flush(p);
	leave(p);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	pump(w->data);
}

static void on_flush_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct events_publisher *p = w->data;
	enter(p);
	if (p->flush_cb)
		finish_flush(p);
	leave(p);
}

/* ---- the API ---- */

static int set_path(struct events_publisher *p, const char *address, struct err *e)
{
	if (!address) {
		free(p->address);
		p->address = NULL;
		return 0;
	}
	const char *path = strncmp(address, "unix://", 7) == 0 ? address + 7 : address;
	if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return err_set(e, -EINVAL, "events: bad containerd address `%s`", address);
	free(p->address);
	p->address = xstrdup(path);
	return 0;
}

struct events_publisher *events_publisher_new(struct ev_loop *loop, const struct events_opts *opts,
                                              struct err *e)
{
	if (!opts || !opts->namespace_ || !events_valid_identifier(opts->namespace_)) {
		err_set(e, -EINVAL, "events: namespace `%s` is not a containerd identifier",
		        opts && opts->namespace_ ? opts->namespace_ : "");
		return NULL;
	}
	struct events_publisher *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->ns = xstrdup(opts->namespace_);
	if (set_path(p, opts->address, e) < 0) {
		free(p->ns);
		free(p);
		return NULL;
	}
	p->max_pending = opts->max_pending ? opts->max_pending : EVENTS_DEFAULT_MAX_PENDING;
	p->max_pending_bytes =
	    opts->max_pending_bytes ? opts->max_pending_bytes : EVENTS_DEFAULT_MAX_PENDING_BYTES;
	p->retain = opts->retain ? opts->retain : EVENTS_DEFAULT_RETAIN;
	p->call_timeout_s =
	    opts->call_timeout_s > 0 ? opts->call_timeout_s : EVENTS_DEFAULT_CALL_TIMEOUT_S;
	p->backoff_min_s =
	    opts->backoff_min_s > 0 ? opts->backoff_min_s : EVENTS_DEFAULT_BACKOFF_MIN_S;
	p->backoff_max_s =
	    opts->backoff_max_s > 0 ? opts->backoff_max_s : EVENTS_DEFAULT_BACKOFF_MAX_S;
	if (p->backoff_max_s < p->backoff_min_s)
		p->backoff_max_s = p->backoff_min_s;
	p->backoff = p->backoff_min_s;
	p->next_seq = p->fwd_seq = 1;
	p->order = events_order_new();
	ev_timer_init(&p->kick, on_kick, 0., 0.);
	p->kick.data = p;
	ev_timer_init(&p->backoff_timer, on_kick, 0., 0.);
	p->backoff_timer.data = p;
	ev_timer_init(&p->flush_timer, on_flush_timeout, 0., 0.);
	p->flush_timer.data = p;
	return p;
}

void events_publisher_free(struct events_publisher *p)
{
	if (!p || p->free_pending)
		return;
	ev_timer_stop(p->loop, &p->kick);
	ev_timer_stop(p->loop, &p->backoff_timer);
	ev_timer_stop(p->loop, &p->flush_timer);
	drop_connection(p);
	if (p->depth > 0) {
		p->free_pending = true;
		return;
	}
	really_free(p);
}

int events_publish(struct events_publisher *p, const ProtobufCMessage *event, uint64_t *seq,
                   struct err *e)
{
	int t = event ? events_type_of(event->descriptor) : -1;
	if (t < 0)
		return err_set(e, -EINVAL, "events: %s is not a task event",
		               event ? event->descriptor->name : "(null)");
	const char *cid = string_field(event, "container_id");
	if (!cid || !*cid)
		return err_set(e, -EINVAL, "events: %s without a container_id", types[t].topic);
	size_t len = protobuf_c_message_get_packed_size(event);
	size_t cid_len = strlen(cid);
	if (len > EVENTS_MAX_EVENT_BYTES)
		return err_set(e, -EMSGSIZE, "events: %s of container %s is %zu bytes (at most %u)",
		               types[t].topic, cid, len, EVENTS_MAX_EVENT_BYTES);
	if (p->address &&
	    (pending(p) + 1 > p->max_pending || p->pending_bytes + len > p->max_pending_bytes)) {
		p->st.refused++;
		log_error("events: queue full (%zu events, %zu bytes pending for containerd): %s "
		          "of container %s refused",
		          pending(p), p->pending_bytes, types[t].topic, cid);
		return err_set(e, -ENOBUFS, "events: queue full (%zu pending): %s refused",
		               pending(p), types[t].topic);
	}

	struct err oe;
	err_clear(&oe);
	const char *proc = types[t].proc_field ? string_field(event, types[t].proc_field) : NULL;
	if (events_order_apply(p->order, (enum events_type)t, cid, proc, &oe) < 0) {
		p->st.order_violations++;
		size_t n = strnlen(oe.msg, sizeof(p->st.last_violation) - 1);
		memcpy(p->st.last_violation, oe.msg, n);
		p->st.last_violation[n] = '\0';
		log_error("events: out of order (published anyway): %s", oe.msg);
	}

	struct rec *r = xmalloc(sizeof(*r) + len + cid_len + 1);
	r->type = (enum events_type)t;
	r->len = protobuf_c_message_pack(event, r->value);
	memcpy(r->value + len, cid, cid_len + 1);
	r->cid = (const char *)r->value + len;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	r->sec = now.tv_sec;
	r->nsec = (int32_t)now.tv_nsec;
	ring_push(p, r);
	if (seq)
		*seq = p->next_seq - 1;
	p->st.published++;
	if (p->address) {
		p->pending_bytes += len;
		if (pending(p) > p->st.max_pending_seen)
			p->st.max_pending_seen = pending(p);
	} else {
		p->fwd_seq = p->next_seq;
		trim(p);
	}
	schedule(p);
	return 0;
}

bool events_congested(const struct events_publisher *p)
{
	return p->address && (pending(p) * 4 > p->max_pending * 3 ||
	                      p->pending_bytes * 4 > p->max_pending_bytes * 3);
}

int events_set_address(struct events_publisher *p, const char *address, struct err *e)
{
	bool was = p->address != NULL;
	if (set_path(p, address, e) < 0)
		return e->code;
	drop_connection(p);
	ev_timer_stop(p->loop, &p->backoff_timer);
	p->backoff = p->backoff_min_s;
	p->outage = false;
	if (!p->address) {
		p->fwd_seq = p->next_seq;
		p->pending_bytes = 0;
		trim(p);
	} else if (!was) {
		p->fwd_seq = first_seq(p);
		p->pending_bytes = 0;
		for (uint64_t s = p->fwd_seq; s < p->next_seq; s++)
			p->pending_bytes += rec_at(p, s)->len;
	}
	schedule(p);
	return 0;
}

void events_forget(struct events_publisher *p, const char *container_id)
{
	events_order_forget(p->order, container_id);
}

struct events_sub *events_subscribe(struct events_publisher *p, uint64_t from, events_sub_cb cb,
                                    void *ud)
{
	struct events_sub *s = xcalloc(1, sizeof(*s));
	s->p = p;
	s->cb = cb;
	s->ud = ud;
	s->next = from == 0 ? first_seq(p) : from > p->next_seq ? p->next_seq : from;
	s->link = p->subs;
	p->subs = s;
	schedule(p);
	return s;
}

void events_unsubscribe(struct events_sub *s)
{
	if (!s)
		return;
	struct events_publisher *p = s->p;
	s->dead = true;
	if (p->depth > 0)
		return; /* unlinked by leave() */
	for (struct events_sub **l = &p->subs; *l; l = &(*l)->link) {
		if (*l == s) {
			*l = s->link;
			free(s);
			return;
		}
	}
}

void events_sub_pause(struct events_sub *s)
{
	s->paused = true;
}

void events_sub_resume(struct events_sub *s)
{
	s->paused = false;
	schedule(s->p);
}

int events_flush(struct events_publisher *p, double timeout_s, events_flush_cb done, void *ud,
                 struct err *e)
{
	if (p->flush_cb)
		return err_set(e, -EBUSY, "events: a flush is already waiting");
	p->flush_cb = done;
	p->flush_ud = ud;
	ev_timer_set(&p->flush_timer, timeout_s > 0 ? timeout_s : 0., 0.);
	ev_timer_start(p->loop, &p->flush_timer);
	schedule(p);
	return 0;
}

void events_stats(const struct events_publisher *p, struct events_stats *out)
{
	*out = p->st;
	out->pending = p->address ? pending(p) : 0;
	out->pending_bytes = p->address ? p->pending_bytes : 0;
	out->tracked = events_order_tracked(p->order);
}
