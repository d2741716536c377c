/* ferry-gcs's bridge core: the dial / serve / redial life cycle, dispatch of each request by
 * (exact type, negotiated version) as the Go GCS's mux does, NegotiateProtocol, DumpStacks,
 * the container-exit notification queue (FIFO while disconnected, drained on every new
 * connection) and the helpers that answer a request exactly once.  The per-RPC handlers live
 * in handlers.c and settings.c. */
#include "guest/gcs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/conn.h"
#include "bridge/msg.h"
#include "bridge/proto.h"
#include "bridge/resume.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "guest/gcs_priv.h"
#include "guest/relay.h"
#include "guest/relay_hub.h"
#include "guest/runtime.h"

/* Connect timeout of one bridge dial attempt (the Go transport retries ETIMEDOUT 10x100ms). */
#define BRIDGE_DIAL_TIMEOUT_MS 1000
/* DumpStacks text budget: the whole response must stay under BRIDGE_MAX_MSG once escaped. */
#define DUMP_MAX 32768

static void schedule_dial(struct gcs *g);

bool gcs_is_null_id(const char *id)
{
	return id && strcmp(id, GCS_NULL_CONTAINER_ID) == 0;
}

bool gcs_route(uint32_t type, uint32_t pv, bool v4)
{
	if ((type & BRIDGE_MT_MASK) != BRIDGE_MT_REQUEST || !v4)
		return false;
	uint32_t rpc = type & ~BRIDGE_MT_MASK;
	if (pv == GCS_PV_INVALID)
		return rpc == RPC_NEGOTIATE_PROTOCOL;
	if (pv != GCS_PV_V4)
		return false;
	switch (rpc) {
	case RPC_CREATE:
	case RPC_START:
	case RPC_SHUTDOWN_GRACEFUL:
	case RPC_SHUTDOWN_FORCED:
	case RPC_EXECUTE_PROCESS:
	case RPC_WAIT_FOR_PROCESS:
	case RPC_SIGNAL_PROCESS:
	case RPC_RESIZE_CONSOLE:
	case RPC_GET_PROPERTIES:
	case RPC_MODIFY_SETTINGS:
	case RPC_DUMP_STACKS:
	case RPC_DELETE_CONTAINER_STATE:
		return true;
	default:
		return false;
	}
}

/* ---- pending frames ---- */

static void pending_push(struct gcs_pending **head, struct gcs_pending **tail, uint32_t type,
                         uint64_t id, char *json, size_t len)
{
	struct gcs_pending *p = xcalloc(1, sizeof(*p));
	p->type = type;
	p->id = id;
	p->json = json;
	p->len = len;
	if (*tail)
		(*tail)->next = p;
	else
		*head = p;
	*tail = p;
}

static void pending_free_all(struct gcs_pending **head, struct gcs_pending **tail)
{
	while (*head) {
		struct gcs_pending *p = *head;
		*head = p->next;
		free(p->json);
		free(p);
	}
	*tail = NULL;
}

/* Send queued frames in order while a negotiated connection takes them. */
static void pending_flush(struct gcs *g, struct gcs_pending **head, struct gcs_pending **tail)
{
	while (*head && g->conn && g->pv != GCS_PV_INVALID) {
		struct gcs_pending *p = *head;
		struct err e;
		int r = p->type ? bridge_conn_respond(g->conn, p->type, p->id, p->json, p->len, &e)
		                : bridge_conn_notify(g->conn, p->json, p->len, &e);
		if (r == -EPIPE)
			return;
		if (r < 0)
			log_error("drop queued frame type=0x%08x id=%llu: %s", p->type,
			          (unsigned long long)p->id, e.msg);
		*head = p->next;
		if (!*head)
			*tail = NULL;
		free(p->json);
		free(p);
	}
}

/* ---- answering requests ---- */

static void req_free(struct gcs_req *r)
{
	struct gcs *g = r->g;
	if (r->cleanup)
		r->cleanup(r);
	if (r->prev)
		r->prev->next = r->next;
	else
		g->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	g->n_reqs--;
	free(r);
}

/* Send an encoded response (taking ownership of json).  A response to a request of an
 * earlier connection goes out on the current one once it is negotiated (the host seeds and
 * pre-registers such ids after a migration, gcs-bridge.md §7.4); until then a WaitForProcess
 * answer is queued (an exit code must not be lost) and anything else is dropped, as the Go
 * guest loses it.  Exit codes stay retrievable after this (guest/runtime.h retain_exits):
 * bytes written just before a cut may never be read by the old host. */
static void send_response(struct gcs *g, uint64_t gen, uint32_t type, uint64_t id, char *json,
                          size_t len)
{
	struct err e;
	bool stale = gen != g->conn_gen;
	if (!g->conn || (stale && (g->pv == GCS_PV_INVALID || g->pend_head))) {
		if ((type & ~BRIDGE_MT_MASK) == RPC_WAIT_FOR_PROCESS) {
			log_info("queue wait response id=%llu until the next negotiated connection",
			         (unsigned long long)id);
			pending_push(&g->pend_head, &g->pend_tail, type, id, json, len);
			return;
		}
		log_warn("drop response %s id=%llu: its connection is gone", bridge_type_name(type),
		         (unsigned long long)id);
		free(json);
		return;
	}
	int r = bridge_conn_respond(g->conn, type, id, json, len, &e);
	if (r == -EMSGSIZE) {
		char *small;
		size_t slen;
		bridge_msg_error_response(HR_FAIL, "response exceeds the 64 KiB message limit",
		                          NULL, &small, &slen);
		r = bridge_conn_respond(g->conn, type, id, small, slen, &e);
		free(small);
	}
	if (r < 0)
		log_warn("response %s id=%llu: %s", bridge_type_name(type), (unsigned long long)id,
		         e.msg);
	free(json);
}

static void req_send(struct gcs_req *r, char *json, size_t len)
{
	send_response(r->g, r->conn_gen, r->type, r->id, json, len);
}

void gcs_req_respond(struct gcs_req *r, enum bridge_msg_kind k, void *msg)
{
	struct bridge_resp_base *base = msg; /* every response struct starts with its base */
	snprintf(base->activity_id, sizeof(base->activity_id), "%s", r->activity_id);
	char *json = NULL;
	size_t len = 0;
	struct err e;
	if (bridge_msg_encode(k, msg, &json, &len, &e) < 0) {
		gcs_req_fail(r, HR_FAIL, "encode response: %s", e.msg);
		return;
	}
	req_send(r, json, len);
	req_free(r);
}

void gcs_req_fail(struct gcs_req *r, int32_t hr, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("%s id=%llu failed: hr=0x%08x %s", bridge_type_name(r->type),
	         (unsigned long long)r->id, (uint32_t)hr, msg);
	char *json;
	size_t len;
	bridge_msg_error_response(hr, msg, r->activity_id, &json, &len);
	req_send(r, json, len);
	req_free(r);
}

void gcs_req_ok(struct gcs_req *r)
{
	struct bridge_resp_base base = {0};
	gcs_req_respond(r, BMSG_RESP_BASE, &base);
}

void gcs_req_drop(struct gcs_req *r)
{
	req_free(r);
}

/* ---- containers and notifications ---- */

struct gcs_container *gcs_container_find(struct gcs *g, const char *id)
{
	for (struct gcs_container *c = g->containers; c; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

void gcs_container_add(struct gcs *g, const char *id, const char *activity_id, const char *bundle)
{
	struct gcs_container *c = xcalloc(1, sizeof(*c));
	c->id = xstrdup(id);
	snprintf(c->activity_id, sizeof(c->activity_id), "%s",
	         activity_id && *activity_id ? activity_id : GCS_NULL_CONTAINER_ID);
	c->bundle = xstrdup(bundle);
	c->next = g->containers;
	g->containers = c;
}

void gcs_container_remove(struct gcs *g, const char *id)
{
	for (struct gcs_container **pp = &g->containers; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			struct gcs_container *c = *pp;
			*pp = c->next;
			free(c->id);
			free(c->bundle);
			free(c);
			return;
		}
	}
}

void gcs_notify_exit(struct gcs *g, const char *id, const char *type)
{
	struct gcs_container *c = gcs_container_find(g, id);
	struct bridge_notification n = {
	    .container_id = (char *)id,
	    .type = (char *)type,
	    .operation = "None",
	    .result = 0,
	};
	snprintf(n.activity_id, sizeof(n.activity_id), "%s",
	         c ? c->activity_id : GCS_NULL_CONTAINER_ID);
	char *json;
	size_t len;
	struct err e;
	if (bridge_notification_encode(&n, &json, &len, &e) < 0) {
		log_error("notification id=%s: %s", id, e.msg);
		return;
	}
	log_info("container exit id=%s type=%s%s", id, type,
	         g->conn && g->pv != GCS_PV_INVALID ? "" : " (queued)");
	pending_push(&g->pend_head, &g->pend_tail, 0, 0, json, len);
	pending_flush(g, &g->pend_head, &g->pend_tail);
}

static void on_container_exit(struct rt *rt, const char *id, enum rt_exit_type type, void *ud)
{
	(void)rt;
	gcs_notify_exit(ud, id, rt_exit_type_name(type));
}

/* ---- NegotiateProtocol, DumpStacks ---- */

/* The "Ferry" object of a NegotiateProtocol: adopt an offered session, prove it, and fill
 * `auth` for this negotiation's stdio HELLOs.  A malformed field is ignored (logged): such a
 * host then simply gets no proof, and a ferry host refuses the connection. */
static void negotiate_session(struct gcs *g, const struct bridge_ferry_offer *f,
                              struct bridge_guest_caps *caps, struct session_auth *auth)
{
	struct err e;
	uint8_t s[SESSION_SECRET_LEN];
	memset(auth, 0, sizeof(*auth));
	if (f->session) {
		if (session_hex32(f->session, s, &e) < 0) {
			log_warn("negotiate: Ferry.Session: %s", e.msg);
		} else {
			if (g->has_secret && memcmp(s, g->secret, sizeof(s)) != 0)
				log_info("negotiate: a host without our session started a new one");
			memcpy(g->secret, s, sizeof(s));
			g->has_secret = true;
			gcs_wake_set_secret(g->wake, s);
		}
	}
	if (!f->challenge || !g->has_secret)
		return;
	if (session_hex32(f->challenge, auth->challenge, &e) < 0) {
		log_warn("negotiate: Ferry.Challenge: %s", e.msg);
		return;
	}
	uint8_t proof[SESSION_PROOF_LEN];
	char hex[SESSION_HEX_LEN + 1];
	session_bridge_proof(g->secret, auth->challenge, proof);
	session_hex32_encode(proof, hex);
	caps->ferry_session_proof = xstrdup(hex);
	memcpy(auth->secret, g->secret, sizeof(auth->secret));
	auth->on = true;
}

static void handle_negotiate(struct gcs_req *r, const char *json, size_t len)
{
	struct gcs *g = r->g;
	struct bridge_negotiate_req q;
	struct err e;
	int rc = bridge_negotiate_req_decode(json, len, &q, &e);
	if (rc < 0) {
		gcs_req_fail(r, bridge_msg_hresult(rc), "%s", e.msg);
		return;
	}
	uint32_t lo = q.minimum_version, hi = q.maximum_version;
	bool resume = q.ferry.stdio_resume >= RESUME_VERSION;
	if (hi < GCS_PV_V4 || lo > GCS_PV_V4) {
		bridge_negotiate_req_fini(&q);
		gcs_req_fail(r, HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL,
		             "bridge: unsupported protocol version range %u..%u (want 4)", lo, hi);
		return;
	}
	struct bridge_negotiate_resp resp = {.version = GCS_PV_V4};
	bridge_gcs_caps_init_linux(&resp.caps);
	/* Answered only when offered, so a plain hcsshim host sees the Linux GCS's bytes. */
	resp.caps.guest_defined.ferry_stdio_resume = resume;
	struct session_auth auth = {0};
	if (resume)
		negotiate_session(g, &q.ferry, &resp.caps.guest_defined, &auth);
	bridge_negotiate_req_fini(&q);
	g->resume = resume;
	log_info("negotiated protocol version=4 conn=%llu stdio_resume=%d session=%d",
	         (unsigned long long)g->conn_gen, resume, auth.on);
	/* The response goes first (pv is still invalid: it is not a queued frame), then what
	 * waited for a negotiated connection, in order (docs/stdio-resume.md §1). */
	gcs_req_respond(r, BMSG_NEGOTIATE_RESP, &resp);
	bridge_gcs_caps_fini(&resp.caps);
	if (!g->conn)
		return;
	g->pv = GCS_PV_V4;
	if (g->has_secret && gcs_wake_listen(g->wake, &g->local, &e) < 0)
		log_warn("no wake port (idle loss detection relies on the transport): %s", e.msg);
	pending_flush(g, &g->pend_head, &g->pend_tail);
	relay_hub_open(g->hub, resume ? RELAY_MODE_RESUME : RELAY_MODE_PLAIN, &auth);
	memset(&auth, 0, sizeof(auth));
}

static void dump_add(char *buf, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dump_add(char *buf, size_t *n, const char *fmt, ...)
{
	if (*n >= DUMP_MAX - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *n, DUMP_MAX - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n += (size_t)w < DUMP_MAX - *n ? (size_t)w : DUMP_MAX - 1 - *n;
}

static void handle_dump_stacks(struct gcs_req *r)
{
	struct gcs *g = r->g;
	char *buf = xmalloc(DUMP_MAX);
	size_t n = 0;
	buf[0] = '\0';
	dump_add(buf, &n, "ferry-gcs pid=%d uptime_ms=%lld transport=%s\n", (int)getpid(),
	         (mono_ns() - g->started_ns) / 1000000, g->opt.transport);
	dump_add(buf, &n, "connection=%llu protocol=%u requests_served=%llu in_flight=%u\n",
	         (unsigned long long)g->conn_gen, g->pv, (unsigned long long)g->requests_served,
	         g->n_reqs);
	for (struct gcs_req *q = g->reqs; q; q = q->next)
		dump_add(buf, &n, "  request %s id=%llu%s\n", bridge_type_name(q->type),
		         (unsigned long long)q->id, q->wait ? " (waiting for exit)" : "");
	unsigned nn = 0, nl = 0;
	for (struct gcs_pending *p = g->pend_head; p; p = p->next) {
		if (p->type)
			nl++;
		else
			nn++;
	}
	struct relay_hub_stats hs;
	relay_hub_stats(g->hub, &hs);
	dump_add(buf, &n,
	         "queued notifications=%u queued responses=%u stdio_resume=%d wakes=%llu "
	         "stdio_streams=%u attached=%u\n",
	         nn, nl, g->resume, (unsigned long long)g->wakes, hs.streams, hs.attached);
	for (struct gcs_container *c = g->containers; c; c = c->next) {
		pid_t pid = 0;
		rt_container_pid(g->rt, c->id, &pid, NULL);
		dump_add(buf, &n, "container id=%s init_pid=%d bundle=%s\n", c->id, (int)pid,
		         c->bundle);
	}
	FILE *f = fopen("/proc/self/status", "re");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "VmRSS:", 6) == 0 || strncmp(line, "VmHWM:", 6) == 0 ||
			    strncmp(line, "Threads:", 8) == 0)
				dump_add(buf, &n, "%s", line);
		fclose(f);
	}
	if (n >= DUMP_MAX - 1) {
		static const char tail[] = "\n(truncated)\n";
		memcpy(buf + DUMP_MAX - sizeof(tail), tail, sizeof(tail));
	}
	struct bridge_dump_stacks_resp resp = {.guest_stacks = buf};
	gcs_req_respond(r, BMSG_DUMP_STACKS_RESP, &resp);
	free(buf);
}

/* ---- the connection ---- */

static void not_supported(struct gcs_req *r)
{
	const char *name = bridge_type_name(r->type);
	if (strcmp(name, "unknown") == 0)
		gcs_req_fail(r, HR_NOTIMPL, "bridge: function not supported, header type: 0x%08x",
		             r->type);
	else
		gcs_req_fail(r, HR_NOTIMPL, "bridge: function not supported, header type: %s",
		             name);
}

static void refuse_over_cap(struct gcs *g, const struct bridge_hdr *h)
{
	char *json;
	size_t len;
	char msg[96];
	struct err e;
	snprintf(msg, sizeof(msg), "too many requests in flight (%u)", GCS_MAX_REQUESTS);
	log_limited(&g->cap_log, LOG_LVL_WARN, "%s id=%llu: %s", bridge_type_name(h->type),
	            (unsigned long long)h->id, msg);
	bridge_msg_error_response(HR_FAIL, msg, NULL, &json, &len);
	if (bridge_conn_respond(g->conn, h->type, h->id, json, len, &e) < 0)
		log_warn("response %s id=%llu: %s", bridge_type_name(h->type),
		         (unsigned long long)h->id, e.msg);
	free(json);
}

static void on_request(struct bridge_conn *c, const struct bridge_hdr *h, const char *json,
                       size_t len, void *ud)
{
	(void)c;
	struct gcs *g = ud;
	uint32_t rpc = h->type & ~BRIDGE_MT_MASK;
	if (g->n_reqs >= GCS_MAX_REQUESTS && rpc != RPC_NEGOTIATE_PROTOCOL &&
	    rpc != RPC_WAIT_FOR_PROCESS) {
		/* answered here, without a request record (waits are checked by their handler,
		 * after superseding) */
		refuse_over_cap(g, h);
		return;
	}
	struct gcs_req *r = xcalloc(1, sizeof(*r));
	r->g = g;
	r->type = h->type;
	r->id = h->id;
	r->conn_gen = g->conn_gen;
	r->next = g->reqs;
	if (g->reqs)
		g->reqs->prev = r;
	g->reqs = r;
	g->n_reqs++;
	g->requests_served++;
	log_debug("request %s id=%llu len=%zu", bridge_type_name(h->type),
	          (unsigned long long)h->id, len);

	struct bridge_req_base base;
	struct err e;
	int rc = bridge_msg_peek_base(json, len, &base, &e);
	if (rc < 0) {
		gcs_req_fail(r, bridge_msg_hresult(rc), "%s", e.msg);
		return;
	}
	snprintf(r->activity_id, sizeof(r->activity_id), "%s", base.activity_id);
	bridge_req_base_fini(&base);

	if (!gcs_route(h->type, g->pv, g->opt.v4)) {
		not_supported(r);
		return;
	}
	switch ((enum bridge_rpc)(h->type & ~BRIDGE_MT_MASK)) {
	case RPC_NEGOTIATE_PROTOCOL:
		handle_negotiate(r, json, len);
		break;
	case RPC_CREATE:
		gcs_handle_create(r, json, len);
		break;
	case RPC_START:
		gcs_handle_start(r, json, len);
		break;
	case RPC_SHUTDOWN_GRACEFUL:
		gcs_handle_shutdown(r, json, len, true);
		break;
	case RPC_SHUTDOWN_FORCED:
		gcs_handle_shutdown(r, json, len, false);
		break;
	case RPC_EXECUTE_PROCESS:
		gcs_handle_exec(r, json, len);
		break;
	case RPC_WAIT_FOR_PROCESS:
		gcs_handle_wait(r, json, len);
		break;
	case RPC_SIGNAL_PROCESS:
		gcs_handle_signal(r, json, len);
		break;
	case RPC_RESIZE_CONSOLE:
		gcs_handle_resize(r, json, len);
		break;
	case RPC_GET_PROPERTIES:
		gcs_handle_properties(r, json, len);
		break;
	case RPC_MODIFY_SETTINGS:
		gcs_handle_modify(r, json, len);
		break;
	case RPC_DUMP_STACKS:
		handle_dump_stacks(r);
		break;
	case RPC_DELETE_CONTAINER_STATE:
		gcs_handle_delete(r, json, len);
		break;
	default:
		not_supported(r);
		break;
	}
}

static void finish(struct gcs *g)
{
	g->finished = true;
	g->stopping = true;
	ev_timer_stop(g->loop, &g->redial);
	gcs_wake_free(g->wake);
	g->wake = NULL;
	relay_hub_close(g->hub);
	vsock_dialer_free(g->dial);
	g->dial = NULL;
	bridge_conn_free(g->conn);
	g->conn = NULL;
	/* The runtime's child and relay watchers would keep the loop alive. */
	ev_break(g->loop, EVBREAK_ALL);
}

static void on_close(struct bridge_conn *c, const struct err *why, void *ud)
{
	struct gcs *g = ud;
	log_info("bridge connection %llu closed: %s", (unsigned long long)g->conn_gen,
	         why ? why->msg : "?");
	bridge_conn_free(c);
	g->conn = NULL;
	g->pv = GCS_PV_INVALID;
	g->resume = false;
	relay_hub_close(g->hub);
	if (g->opt.once || g->stopping) {
		finish(g);
		return;
	}
	g->backoff_ms = 0;
	schedule_dial(g);
}

static void on_dialled(struct vsock_dialer *d, int fd, const struct err *e, void *ud)
{
	struct gcs *g = ud;
	if (fd < 0) {
		if (g->dial_failures++ == 0)
			log_warn("dial bridge: %s (retrying)", e->msg);
		else
			log_debug("dial bridge: %s", e->msg);
	}
	vsock_dialer_free(d); /* e is only valid until then */
	g->dial = NULL;
	if (fd < 0) {
		g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : 1;
		if (g->backoff_ms > GCS_REDIAL_MAX_MS)
			g->backoff_ms = GCS_REDIAL_MAX_MS;
		schedule_dial(g);
		return;
	}
	struct bridge_conn_cbs cbs = {.on_request = on_request, .on_close = on_close};
	struct err ce;
	g->conn = bridge_conn_new(g->loop, fd, &cbs, g, &ce);
	if (!g->conn) {
		log_error("bridge connection: %s", ce.msg);
		g->backoff_ms = GCS_REDIAL_MAX_MS;
		schedule_dial(g);
		return;
	}
	g->conn_gen++;
	g->pv = GCS_PV_INVALID;
	g->dial_failures = 0;
	socklen_t ll = sizeof(g->local);
	if (getsockname(fd, (struct sockaddr *)&g->local, &ll) < 0)
		memset(&g->local, 0, sizeof(g->local));
	log_info("bridge connection %llu established", (unsigned long long)g->conn_gen);
	/* Queued frames wait for the NegotiateProtocol response (unlike the Go guest, which
	 * drains before negotiation; hcsshim-lm.md §10). */
}

static void on_redial(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gcs *g = w->data;
	struct err e;
	g->dial = vsock_dialer_new_host(g->loop, &g->addr, GCS_BRIDGE_PORT, BRIDGE_DIAL_TIMEOUT_MS,
	                                on_dialled, g, &e);
	if (!g->dial) {
		log_error("dial bridge: %s", e.msg);
		g->backoff_ms = GCS_REDIAL_MAX_MS;
		schedule_dial(g);
	}
}

static void schedule_dial(struct gcs *g)
{
	if (g->stopping)
		return;
	ev_timer_set(&g->redial, g->backoff_ms / 1000.0, 0.0);
	ev_timer_start(g->loop, &g->redial);
}

void gcs_shutdown_uvm(struct gcs *g)
{
	log_info("uvm shutdown requested%s", g->opt.no_poweroff ? " (no power-off)" : "");
	if (!g->opt.no_poweroff)
		g->poweroff = true;
	finish(g);
}

/* ---- wake ---- */

/* A proven wake (guest/gcs_wake.h): the host changed (a TCP connection through QEMU user
 * networking is not reset until we send, qemu-harness.md §4).  Drop every connection and dial
 * again at once. */
static void on_wake(void *ud)
{
	struct gcs *g = ud;
	if (g->stopping)
		return;
	g->wakes++;
	log_info("wake: re-dialling the bridge and every stdio stream");
	if (g->conn) {
		bridge_conn_free(g->conn);
		g->conn = NULL;
		g->pv = GCS_PV_INVALID;
		g->resume = false;
	}
	relay_hub_close(g->hub);
	relay_hub_cut(g->hub);
	if (!g->dial) {
		ev_timer_stop(g->loop, &g->redial);
		g->backoff_ms = 0;
		schedule_dial(g);
	}
}

/* ---- public API ---- */

struct gcs *gcs_new(struct ev_loop *loop, const struct gcs_options *opt, struct err *e)
{
	struct vsock_addr addr;
	const char *transport = opt->transport ? opt->transport : GCS_DEFAULT_TRANSPORT;
	if (vsock_addr_parse(transport, &addr, e) < 0) {
		err_prefix(e, "--transport");
		return NULL;
	}
	struct gcs *g = xcalloc(1, sizeof(*g));
	g->loop = loop;
	g->addr = addr;
	g->opt = *opt;
	g->opt.transport = xstrdup(transport);
	g->opt.runtime_path = xstrdup(opt->runtime_path ? opt->runtime_path : GCS_DEFAULT_RUNTIME);
	g->opt.root_dir = xstrdup(opt->root_dir ? opt->root_dir : GCS_DEFAULT_ROOT);
	g->opt.state_dir = xstrdup(opt->state_dir ? opt->state_dir : GCS_DEFAULT_STATE_DIR);
	g->started_ns = mono_ns();
	ev_timer_init(&g->redial, on_redial, 0.0, 0.0);
	g->redial.data = g;
	g->hub = relay_hub_new(loop, &addr);
	g->wake = gcs_wake_new(loop, &addr, on_wake, g);

	_cleanup_free_ char *rt_root = xasprintf("%s/runtime", g->opt.state_dir);
	_cleanup_free_ char *rt_state = xasprintf("%s/gcsrunc", g->opt.state_dir);
	struct rt_config rc = {
	    .runtime = g->opt.runtime_path,
	    .runtime_root = rt_root,
	    .state_dir = rt_state,
	    .on_container_exit = on_container_exit,
	    .ud = g,
	    .retain_exits = true,
	    .hub = g->hub,
	    .child_nofile = g->opt.child_nofile,
	};
	g->rt = rt_new(loop, &rc, e);
	if (!g->rt) {
		err_prefix(e, "runtime");
		gcs_free(g);
		return NULL;
	}
	return g;
}

void gcs_free(struct gcs *g)
{
	if (!g)
		return;
	ev_timer_stop(g->loop, &g->redial);
	vsock_dialer_free(g->dial);
	bridge_conn_free(g->conn);
	g->conn = NULL;
	/* First the runtime (no callback runs after this), then the requests it referenced. */
	rt_free(g->rt);
	g->rt = NULL;
	relay_hub_free(g->hub);
	g->hub = NULL;
	gcs_wake_free(g->wake);
	g->wake = NULL;
	memset(g->secret, 0, sizeof(g->secret));
	while (g->reqs) {
		g->reqs->wait = NULL;
		req_free(g->reqs);
	}
	gcs_waits_fini(&g->waits);
	pending_free_all(&g->pend_head, &g->pend_tail);
	while (g->containers)
		gcs_container_remove(g, g->containers->id);
	free((char *)g->opt.transport);
	free((char *)g->opt.runtime_path);
	free((char *)g->opt.root_dir);
	free((char *)g->opt.state_dir);
	free(g);
}

int gcs_start(struct gcs *g, struct err *e)
{
	(void)e;
	g->backoff_ms = 0;
	schedule_dial(g);
	return 0;
}

void gcs_stop(struct gcs *g)
{
	finish(g);
}

bool gcs_finished(const struct gcs *g)
{
	return g->finished;
}

bool gcs_poweroff_requested(const struct gcs *g)
{
	return g->poweroff;
}
