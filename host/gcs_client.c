/* The host GCS client: bridge listener + accept, negotiation (offering FerryStdioResume), the
 * container wait table and the call path (requests encoded and responses decoded with the
 * bridge/msg.h codecs, Result/ErrorMessage turned into a struct gcs_result).  The migration
 * verbs (cut, relisten, wake, adopt, adopted waits) are in gcs_migrate.c.  Framing, ids,
 * timeouts and the 64 KiB receive cap are bridge/client.h's job; this file gives them
 * meaning. */
#include "host/gcs_client.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "bridge/client.h"
#include "bridge/proto.h"
#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/gcs_client_priv.h"
#include "host/process.h"

#define DEFAULT_ACCEPT_TIMEOUT_MS 120000
#define MAX_CONTAINER_ID          256

/* ---- helpers ---- */

const char *gcs_hresult_name(int32_t hr)
{
	switch (hr) {
	case HR_OK:
		return "ok";
	case HR_NOTIMPL:
		return "not implemented";
	case HR_FAIL:
		return "failure";
	case HR_ERR_NOT_FOUND:
		return "not found";
	case HR_INVALIDARG:
		return "invalid argument";
	case HR_VMCOMPUTE_TIMEOUT:
		return "timeout";
	case HR_VMCOMPUTE_UNKNOWN_MESSAGE:
		return "unknown message";
	case HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL:
		return "unsupported protocol version";
	case HR_VMCOMPUTE_INVALID_JSON:
		return "invalid json";
	case HR_VMCOMPUTE_SYSTEM_NOT_FOUND:
		return "system not found";
	case HR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS:
		return "system already exists";
	case HR_VMCOMPUTE_INVALID_STATE:
		return "invalid state";
	case HR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED:
		return "system already stopped";
	default:
		return "hresult";
	}
}

void gcs_client_enter(struct gcs_client *c)
{
	c->depth++;
}

static void client_destroy(struct gcs_client *c);

bool gcs_client_leave(struct gcs_client *c)
{
	if (--c->depth == 0 && c->free_pending) {
		client_destroy(c);
		return true;
	}
	return false;
}

static void result_ok(struct gcs_result *r)
{
	memset(r, 0, sizeof(*r));
}

static void result_err(struct gcs_result *r, const struct err *e)
{
	memset(r, 0, sizeof(*r));
	r->status = e && e->code ? e->code : -EIO;
	if (e)
		r->err = *e;
	else
		err_set(&r->err, -EIO, "unknown error");
}

/* ---- wait table ---- */

static struct wait_entry **wait_find(struct gcs_client *c, const char *id)
{
	for (struct wait_entry **pp = &c->waits; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			return pp;
	return NULL;
}

static void wait_add(struct gcs_client *c, const char *id)
{
	if (wait_find(c, id))
		return;
	struct wait_entry *w = xcalloc(1, sizeof(*w));
	w->id = xstrdup(id);
	w->next = c->waits;
	c->waits = w;
}

static bool wait_remove(struct gcs_client *c, const char *id)
{
	struct wait_entry **pp = wait_find(c, id);
	if (!pp)
		return false;
	struct wait_entry *w = *pp;
	*pp = w->next;
	free(w->id);
	free(w);
	return true;
}

int gcs_client_register_container(struct gcs_client *c, const char *id, struct err *e)
{
	if (!id || !*id || strlen(id) > MAX_CONTAINER_ID)
		return err_set(e, -EINVAL, "register container: bad id");
	if (wait_find(c, id))
		return err_set(e, -EEXIST, "container id=%s already registered", id);
	wait_add(c, id);
	return 0;
}

bool gcs_client_unregister_container(struct gcs_client *c, const char *id)
{
	return id && wait_remove(c, id);
}

bool gcs_client_container_registered(struct gcs_client *c, const char *id)
{
	return id && wait_find(c, id) != NULL;
}

char **gcs_client_registered_containers(struct gcs_client *c, size_t *n)
{
	size_t k = 0;
	for (struct wait_entry *w = c->waits; w; w = w->next)
		k++;
	char **v = xcalloc(k + 1, sizeof(*v));
	k = 0;
	for (struct wait_entry *w = c->waits; w; w = w->next)
		v[k++] = xstrdup(w->id);
	*n = k;
	return v;
}

/* ---- calls ---- */

static void call_unlink(struct gcs_client *c, struct call *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
}

static void result_remote(struct gcs_result *r, uint32_t rpc, const struct bridge_resp_base *b)
{
	memset(r, 0, sizeof(*r));
	r->hresult = b->result;
	const char *m = b->error_message;
	r->status = err_set(&r->err, -EREMOTEIO, "%s: guest error 0x%08x (%s)%s%s",
	                    bridge_type_name(rpc), (uint32_t)r->hresult,
	                    gcs_hresult_name(r->hresult), m && *m ? ": " : "", m && *m ? m : "");
}

void gcs_client_on_call_done(struct bridge_client *bc, int status, const char *json, size_t len,
                             const struct err *why, void *ud)
{
	struct call *k = ud;
	struct gcs_client *c = k->c;
	struct gcs_result r;
	bool fatal = false;
	(void)bc;
	gcs_client_enter(c);
	call_unlink(c, k);
	enum bridge_msg_kind kind = k->resp_kind != BMSG_NONE ? k->resp_kind : BMSG_RESP_BASE;
	size_t sz = bridge_msg_struct_size(kind);
	void *resp = xcalloc(1, sz);
	json_t *raw = NULL;
	bool decoded = false;
	if (status < 0) {
		result_err(&r, why);
	} else if (bridge_msg_decode(kind, json, len, resp, &r.err) < 0) {
		int rc = r.err.code;
		struct err de = r.err;
		result_ok(&r);
		r.status =
		    err_set(&r.err, rc, "%s: bad response: %s", bridge_type_name(k->rpc), de.msg);
		/* Like the Go host: a response that does not decode kills the bridge. */
		fatal = true;
	} else {
		decoded = true;
		const struct bridge_resp_base *b = resp; /* every response struct starts with it */
		if (b->result != 0)
			result_remote(&r, k->rpc, b);
		else
			result_ok(&r);
		if (k->rdone)
			raw = json_loadb(json, len, 0, NULL);
	}
	bool usable = decoded && (r.status == 0 || r.status == -EREMOTEIO);
	if (k->mdone)
		k->mdone(c, &r, usable ? resp : NULL, k->ud);
	else if (k->rdone)
		k->rdone(c, &r, usable ? raw : NULL, k->ud);
	json_decref(raw);
	if (decoded)
		bridge_msg_fini(kind, resp);
	free(resp);
	free(k);
	if (fatal && !c->free_pending && c->bc)
		bridge_client_close(c->bc, &r.err);
	gcs_client_leave(c);
}

void gcs_client_call_link(struct gcs_client *c, struct call *k)
{
	k->next = c->calls;
	k->prev = NULL;
	if (c->calls)
		c->calls->prev = k;
	c->calls = k;
}

static bool bridge_usable(const struct gcs_client *c)
{
	return c->bc && c->state != ST_CLOSED && c->state != ST_FAILED &&
	       !bridge_client_closed(c->bc);
}

/* Send an encoded payload; `k` is linked on success and freed on failure. */
static int send_payload(struct gcs_client *c, struct call *k, const char *payload, size_t len,
                        int timeout_ms, uint64_t *id_out, struct err *e)
{
	int bt = timeout_ms == 0  ? BRIDGE_TIMEOUT_DEFAULT
	         : timeout_ms < 0 ? BRIDGE_TIMEOUT_NONE
	                          : timeout_ms;
	int rc = bridge_client_call_ex(c->bc, (enum bridge_rpc)k->rpc, payload, len, bt,
	                               gcs_client_on_call_done, k, &k->id, e);
	if (rc < 0) {
		uint32_t rpc = k->rpc;
		free(k);
		return err_prefix(e, "%s", bridge_type_name(rpc));
	}
	gcs_client_call_link(c, k);
	if (id_out)
		*id_out = (uint64_t)k->id;
	return 0;
}

static int send_msg(struct gcs_client *c, uint32_t rpc, const char *container_id,
                    enum bridge_msg_kind req_kind, const void *req, enum bridge_msg_kind resp_kind,
                    int timeout_ms, gcs_msg_fn done, void *ud, uint64_t *id_out, struct err *e)
{
	if (!bridge_usable(c))
		return err_set(e, -ENOTCONN, "%s: gcs bridge is closed", bridge_type_name(rpc));
	if (container_id && strlen(container_id) > MAX_CONTAINER_ID)
		return err_set(e, -EINVAL, "%s: container id too long", bridge_type_name(rpc));
	size_t sz = bridge_msg_struct_size(req_kind);
	if (sz == 0 || !req || resp_kind <= BMSG_NONE || resp_kind >= BMSG_KIND_COUNT)
		return err_set(e, -EINVAL, "%s: bad message kind", bridge_type_name(rpc));
	/* Encode a copy whose base carries the container id (borrowed pointer). */
	_cleanup_free_ void *copy = xmalloc(sz);
	memcpy(copy, req, sz);
	struct bridge_req_base *base = copy;
	base->container_id = (char *)(container_id ? container_id : "");
	_cleanup_free_ char *payload = NULL;
	size_t len = 0;
	if (bridge_msg_encode(req_kind, copy, &payload, &len, e) < 0)
		return err_prefix(e, "%s", bridge_type_name(rpc));
	struct call *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->rpc = rpc;
	k->resp_kind = resp_kind;
	k->mdone = done;
	k->ud = ud;
	return send_payload(c, k, payload, len, timeout_ms, id_out, e);
}

int gcs_client_call_msg(struct gcs_client *c, uint32_t rpc, const char *container_id,
                        enum bridge_msg_kind req_kind, const void *req,
                        enum bridge_msg_kind resp_kind, int timeout_ms, gcs_msg_fn done, void *ud,
                        uint64_t *id_out, struct err *e)
{
	if (c->state != ST_READY)
		return err_set(e, -ENOTCONN, "%s: gcs bridge not negotiated",
		               bridge_type_name(rpc));
	return send_msg(c, rpc, container_id, req_kind, req, resp_kind, timeout_ms, done, ud,
	                id_out, e);
}

/* The raw escape hatch (gcs_client_call): the base is encoded by msg.h, the body's own
 * members spliced in after it. */
static int send_body(struct gcs_client *c, uint32_t rpc, const char *container_id, json_t *body,
                     int timeout_ms, enum bridge_msg_kind resp_kind, gcs_msg_fn mdone,
                     gcs_raw_fn rdone, void *ud, uint64_t *id_out, struct err *e)
{
	if (!bridge_usable(c))
		return err_set(e, -ENOTCONN, "%s: gcs bridge is closed", bridge_type_name(rpc));
	if (body && !json_is_object(body))
		return err_set(e, -EINVAL, "%s: body is not an object", bridge_type_name(rpc));
	if (container_id && strlen(container_id) > MAX_CONTAINER_ID)
		return err_set(e, -EINVAL, "%s: container id too long", bridge_type_name(rpc));
	struct bridge_req_base base = {.container_id = (char *)(container_id ? container_id : "")};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (bridge_req_base_encode(&base, &text, &len, e) < 0)
		return err_prefix(e, "%s", bridge_type_name(rpc));
	json_t *req = json_loadb(text, len, 0, NULL);
	if (!req)
		return err_set(e, -EINVAL, "%s: cannot encode request", bridge_type_name(rpc));
	if (body)
		json_object_update_missing(req, body);
	char *out = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!out)
		return err_set(e, -EINVAL, "%s: cannot encode request", bridge_type_name(rpc));
	size_t n = strlen(out);
	_cleanup_free_ char *payload = xmalloc(n + 2);
	memcpy(payload, out, n);
	payload[n] = '\n'; /* as the Go host's json.Encoder */
	free(out);
	struct call *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->rpc = rpc;
	k->resp_kind = resp_kind;
	k->mdone = mdone;
	k->rdone = rdone;
	k->ud = ud;
	return send_payload(c, k, payload, n + 1, timeout_ms, id_out, e);
}

int gcs_client_call(struct gcs_client *c, uint32_t rpc, const char *container_id, json_t *body,
                    int timeout_ms, gcs_raw_fn done, void *ud, uint64_t *id_out, struct err *e)
{
	if (c->state != ST_READY)
		return err_set(e, -ENOTCONN, "%s: gcs bridge not negotiated",
		               bridge_type_name(rpc));
	return send_body(c, rpc, container_id, body, timeout_ms, BMSG_NONE, NULL, done, ud, id_out,
	                 e);
}

void gcs_client_cancel(struct gcs_client *c, uint64_t id)
{
	for (struct call *k = c->calls; k; k = k->next) {
		if ((uint64_t)k->id == id) {
			bridge_client_cancel(c->bc, k->id);
			call_unlink(c, k);
			free(k);
			return;
		}
	}
}

/* ---- negotiation ---- */

static void notify_links(struct gcs_client *c, bool reconnect)
{
	for (struct gcs_client_link *l = c->links.next; l != &c->links;) {
		struct gcs_client_link *next = l->next;
		if (l->on_negotiated)
			l->on_negotiated(l, reconnect);
		if (c->free_pending)
			return;
		l = next;
	}
}

static void ready(struct gcs_client *c, int status, const struct err *e)
{
	bool reconnect = c->negotiated_once;
	if (status < 0) {
		c->state = ST_FAILED;
		if (c->lfd >= 0) {
			ev_io_stop(c->loop, &c->accept_w);
			vsock_unlisten(&c->addr, GCS_BRIDGE_PORT, c->lfd);
			c->lfd = -1;
		}
		ev_timer_stop(c->loop, &c->accept_timer);
	} else {
		c->state = ST_READY;
		c->negotiated_once = true;
	}
	if (reconnect) {
		if (c->ops.on_reconnect)
			c->ops.on_reconnect(c, status, e, c->ud);
	} else if (c->ops.on_ready) {
		c->ops.on_ready(c, status, e, c->ud);
	}
	if (status == 0 && !c->free_pending)
		notify_links(c, reconnect || c->adopted);
	/* A connection that failed to set up is useless: drop it (no-op if already closed). */
	if (status < 0 && !c->free_pending && c->bc && !bridge_client_closed(c->bc)) {
		struct err why = e ? *e : (struct err){.code = status};
		bridge_client_close(c->bc, &why);
	}
}

static void on_null_start(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                          void *ud)
{
	(void)resp;
	(void)ud;
	if (r->status < 0) {
		struct err e = r->err;
		err_prefix(&e, "cold start: start null container");
		ready(c, e.code, &e);
		return;
	}
	ready(c, 0, NULL);
}

static void on_null_create(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                           void *ud)
{
	(void)resp;
	(void)ud;
	struct err e;
	if (r->status < 0) {
		e = r->err;
		err_prefix(&e, "cold start: create null container");
		ready(c, e.code, &e);
		return;
	}
	if (!c->caps.send_host_start_message) {
		ready(c, 0, NULL);
		return;
	}
	struct bridge_req_base req = {0};
	if (send_msg(c, RPC_START, GCS_NULL_CONTAINER_ID, BMSG_REQ_BASE, &req, BMSG_RESP_BASE, 0,
	             on_null_start, NULL, NULL, &e) < 0)
		ready(c, e.code, &e);
}

static int parse_caps(struct gcs_client *c, const struct bridge_negotiate_resp *resp, struct err *e)
{
	if (resp->version != GCS_PV_V4)
		return err_set(e, -EPROTO, "negotiate: guest selected protocol version %u, want 4",
		               resp->version);
	const struct bridge_gcs_caps *caps = &resp->caps;
	/* The Go host assumes "windows" when RuntimeOsType is empty. */
	const char *ost =
	    caps->runtime_os_type && *caps->runtime_os_type ? caps->runtime_os_type : "windows";
	if (strcasecmp(ost, "linux") != 0)
		return err_set(e, -EPROTO,
		               "negotiate: guest RuntimeOsType is \"%.40s\", want linux", ost);
	/* The Go host unmarshals it from raw JSON: a missing key fails Connect. */
	if (!caps->has_guest_defined)
		return err_set(e, -EPROTO, "negotiate: GuestDefinedCapabilities missing");
	struct gcs_caps *k = &c->caps;
	memset(k, 0, sizeof(*k));
	k->version = GCS_PV_V4;
	snprintf(k->runtime_os_type, sizeof(k->runtime_os_type), "%s", ost);
	k->send_host_create_message = caps->send_host_create_message;
	k->send_host_start_message = caps->send_host_start_message;
	k->hv_socket_config_on_startup = caps->hv_socket_config_on_startup;
	for (size_t i = 0; i < caps->n_supported_schema_versions; i++) {
		uint32_t a = caps->supported_schema_versions[i].major;
		uint32_t b = caps->supported_schema_versions[i].minor;
		if (a > k->schema_major || (a == k->schema_major && b > k->schema_minor)) {
			k->schema_major = a;
			k->schema_minor = b;
		}
	}
	const struct bridge_guest_caps *g = &caps->guest_defined;
	k->namespace_add_request_supported = g->namespace_add_request_supported;
	k->signal_process_supported = g->signal_process_supported;
	k->dump_stacks_supported = g->dump_stacks_supported;
	k->delete_container_state_supported = g->delete_container_state_supported;
	/* Used only when we offered it in this negotiation. */
	k->ferry_stdio_resume = g->ferry_stdio_resume && !c->cfg.no_stdio_resume;
	return 0;
}

static void close_listener(struct gcs_client *c)
{
	if (c->lfd >= 0) {
		ev_io_stop(c->loop, &c->accept_w);
		vsock_unlisten(&c->addr, GCS_BRIDGE_PORT, c->lfd);
		c->lfd = -1;
	}
	ev_timer_stop(c->loop, &c->accept_timer);
}

/* A re-dialled connection on probation could not prove the session: drop it (one log line),
 * forget its negotiation and take the next connection from the backlog.  The bridge, its
 * calls and the listener are untouched. */
static void refuse_candidate(struct gcs_client *c, const char *why, bool impostor)
{
	if (impostor)
		log_limited(&c->refused, LOG_LVL_WARN, "gcs bridge: refused a connection: %s", why);
	else /* the guest's own re-dial lost in a race with a wake: nothing to report */
		log_debug("gcs bridge: a re-dial went away before it proved the session: %s", why);
	c->probation = false;
	ev_timer_stop(c->loop, &c->cand_timer);
	gcs_client_cancel(c, c->neg_id); /* no-op once answered */
	bridge_client_detach(c->bc);
	c->state = ST_LISTENING;
	if (c->lfd >= 0)
		ev_io_start(c->loop, &c->accept_w);
}

static void on_cand_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gcs_client *c = w->data;
	(void)loop;
	(void)revents;
	gcs_client_enter(c);
	if (c->probation)
		refuse_candidate(c, "no proof of the session in time", true);
	gcs_client_leave(c);
}

/* The session part of a negotiation's answer (after parse_caps).  0 to go on; -EACCES when a
 * candidate was refused (nothing more to do); another negative errno fails the negotiation. */
static int check_session(struct gcs_client *c, const struct bridge_negotiate_resp *resp,
                         struct err *e)
{
	const char *proof = resp->caps.guest_defined.ferry_session_proof;
	bool ferry = c->caps.ferry_stdio_resume;
	bool proved =
	    ferry && c->challenged && session_bridge_verify(c->secret, c->challenge, proof);
	c->auth_on = false;
	if (c->session) {
		if (c->challenged && !proved) {
			refuse_candidate(c,
			                 ferry
			                     ? (proof ? "wrong session proof" : "no session proof")
			                     : "no ferry capability in a ferry session",
			                 true);
			return -EACCES;
		}
		if (c->probation) {
			c->probation = false;
			ev_timer_stop(c->loop, &c->cand_timer);
			bridge_client_trust(c->bc);
		}
	} else if (c->offered_session && ferry) {
		/* the first negotiation: a ferry guest that cannot even echo the proof is broken */
		if (!proved)
			return err_set(e, -EPROTO, "negotiate: the guest's session proof is wrong");
		c->session = true;
	}
	c->auth_on = c->session && proved;
	close_listener(c); /* the connection is ours: no more listening until it is lost */
	return 0;
}

static void on_negotiate(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                         void *ud)
{
	struct err e;
	(void)ud;
	if (c->probation && r->status < 0) {
		/* the candidate went away (or broke the rules) before it answered */
		refuse_candidate(c, r->err.msg, r->status == -EACCES);
		return;
	}
	if (r->status == -ECONNRESET && !bridge_client_closed(c->bc) &&
	    !bridge_client_attached(c->bc)) {
		/* Migrating: the connection went away under the negotiation; the next re-dial
		 * negotiates again. */
		if (c->lfd < 0 && gcs_client_listen_bridge(c, &e) < 0)
			ready(c, e.code, &e);
		return;
	}
	if (r->status < 0) {
		e = r->err;
		err_prefix(&e, "negotiate protocol");
		ready(c, e.code, &e);
		return;
	}
	if (parse_caps(c, resp, &e) < 0) {
		if (c->probation)
			refuse_candidate(c, e.msg, true);
		else
			ready(c, e.code, &e);
		return;
	}
	int sr = check_session(c, resp, &e);
	if (sr == -EACCES)
		return;
	if (sr < 0) {
		ready(c, e.code, &e);
		return;
	}
	if (c->cfg.cold_start && !c->negotiated_once && c->caps.send_host_create_message) {
		/* The null container's config is the Go host's uvmConfig, not a ContainerConfig. */
		struct bridge_null_create_req req = {.config.system_type = (char *)"Container"};
		int rc = send_msg(c, RPC_CREATE, GCS_NULL_CONTAINER_ID, BMSG_NULL_CREATE_REQ, &req,
		                  BMSG_CREATE_RESP, 0, on_null_create, NULL, NULL, &e);
		if (rc < 0)
			ready(c, rc, &e);
		return;
	}
	ready(c, 0, NULL);
}

/* ---- bridge callbacks ---- */

static void on_notify(struct bridge_client *bc, const char *json, size_t len, void *ud)
{
	struct gcs_client *c = ud;
	struct err e;
	struct bridge_notification n;
	gcs_client_enter(c);
	if (bridge_notification_decode(json, len, &n, &e) < 0) {
		err_prefix(&e, "container notification");
		bridge_client_close(bc, &e);
	} else if (!wait_remove(c, n.container_id)) {
		/* The Go host treats an unknown id as fatal for the bridge. */
		err_set(&e, -EPROTO, "container notification for unknown container id=%.80s",
		        n.container_id);
		bridge_client_close(bc, &e);
	} else if (c->ops.on_container_exit) {
		c->ops.on_container_exit(c, n.container_id, n.type ? n.type : "Unknown", c->ud);
	}
	bridge_notification_fini(&n);
	gcs_client_leave(c);
}

static void on_bridge_close(struct bridge_client *bc, const struct err *why, void *ud)
{
	struct gcs_client *c = ud;
	(void)bc;
	gcs_client_enter(c);
	enum client_state was = c->state;
	c->state = ST_CLOSED;
	if (was == ST_READY && c->ops.on_close)
		c->ops.on_close(c, why, c->ud);
	else if (was == ST_NEGOTIATING || was == ST_LISTENING)
		ready(c, why && why->code ? why->code : -ECONNRESET, why);
	gcs_client_leave(c);
}

/* Migrating mode: the transport went away; keep the calls and wait for a relisten. */
static void on_bridge_detach(struct bridge_client *bc, const struct err *why, void *ud)
{
	struct gcs_client *c = ud;
	(void)bc;
	if (c->probation) {
		gcs_client_enter(c);
		refuse_candidate(c, why ? why->msg : "connection lost",
		                 why && why->code == -EACCES);
		gcs_client_leave(c);
		return;
	}
	log_debug("gcs bridge lost while migrating, waiting for the re-dial: %s",
	          why ? why->msg : "?");
	/* Accept the guest's re-dial (e.g. it was woken after it had already dialled us). */
	struct err e;
	if (c->lfd < 0 && gcs_client_listen_bridge(c, &e) < 0) {
		c->state = ST_CUT;
		log_warn("%s", e.msg);
	}
}

static void send_negotiate(struct gcs_client *c)
{
	struct err e;
	char session[SESSION_HEX_LEN + 1], challenge[SESSION_HEX_LEN + 1];
	struct bridge_negotiate_req req = {
	    .minimum_version = GCS_PV_V4,
	    .maximum_version = GCS_PV_V4,
	    .ferry = {.stdio_resume = c->cfg.no_stdio_resume ? 0 : RESUME_VERSION},
	};
	c->challenged = c->offered_session = false;
	if (c->has_secret && !c->cfg.no_stdio_resume) {
		if (session_random(c->challenge, sizeof(c->challenge), &e) < 0) {
			ready(c, e.code, &e);
			return;
		}
		c->challenged = true;
		session_hex32_encode(c->challenge, challenge);
		req.ferry.challenge = challenge;
		if (!c->session) {
			/* the guest learns the secret here, the first time only */
			session_hex32_encode(c->secret, session);
			req.ferry.session = session;
			c->offered_session = true;
		}
	}
	c->state = ST_NEGOTIATING;
	/* The Go host leaves ContainerId "" here. */
	if (send_msg(c, RPC_NEGOTIATE_PROTOCOL, "", BMSG_NEGOTIATE_REQ, &req, BMSG_NEGOTIATE_RESP,
	             0, on_negotiate, NULL, &c->neg_id, &e) < 0) {
		ready(c, e.code, &e);
		return;
	}
	if (c->session) {
		/* a re-dial of a session: nothing it sends counts until it proved the secret */
		c->probation = true;
		bridge_client_probation(c->bc, (int64_t)c->neg_id);
		ev_timer_set(&c->cand_timer, GCS_CANDIDATE_TIMEOUT_MS / 1000.0, 0.);
		ev_timer_start(c->loop, &c->cand_timer);
	}
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gcs_client *c = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	int fd = vsock_accept_peer(&c->addr, c->lfd, &e);
	if (fd == IO_AGAIN)
		return;
	if (fd == -EACCES) {
		log_limited(&c->refused, LOG_LVL_WARN, "gcs bridge: %s", e.msg);
		return;
	}
	gcs_client_enter(c);
	if (c->session && fd >= 0) {
		/* A re-dial must prove the session: one candidate at a time, the listener stays
		 * (the next connections wait in its backlog) until one has proved it. */
		ev_io_stop(c->loop, &c->accept_w);
	} else {
		/* Exactly one connection: close the listener now (Go host: closeListener=true). */
		close_listener(c);
	}
	if (fd < 0) {
		err_prefix(&e, "accept gcs bridge connection");
		ready(c, e.code, &e);
		gcs_client_leave(c);
		return;
	}
	if (bridge_client_attach(c->bc, fd, &e) < 0) {
		ready(c, e.code, &e);
		gcs_client_leave(c);
		return;
	}
	if (!c->free_pending)
		send_negotiate(c);
	gcs_client_leave(c);
}

static void on_accept_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gcs_client *c = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	gcs_client_enter(c);
	err_set(&e, -ETIMEDOUT, "gcs did not connect within %d ms", c->cfg.accept_timeout_ms);
	ready(c, e.code, &e);
	gcs_client_leave(c);
}

int gcs_client_listen_bridge(struct gcs_client *c, struct err *e)
{
	c->lfd = vsock_listen(&c->addr, GCS_BRIDGE_PORT, e);
	if (c->lfd < 0) {
		c->lfd = -1;
		return err_prefix(e, "gcs client: listen on bridge port");
	}
	ev_io_init(&c->accept_w, on_accept, c->lfd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(c->loop, &c->accept_w);
	ev_timer_init(&c->accept_timer, on_accept_timeout, c->cfg.accept_timeout_ms / 1000.0, 0.);
	c->accept_timer.data = c;
	ev_timer_start(c->loop, &c->accept_timer);
	c->state = ST_LISTENING;
	return 0;
}

/* ---- lifecycle ---- */

struct gcs_client *gcs_client_new(struct ev_loop *loop, const struct gcs_client_config *cfg,
                                  const struct gcs_client_ops *ops, void *ud, struct err *e)
{
	struct gcs_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->cfg = *cfg;
	c->cfg.addr = NULL;
	if (c->cfg.accept_timeout_ms <= 0)
		c->cfg.accept_timeout_ms = DEFAULT_ACCEPT_TIMEOUT_MS;
	if (ops)
		c->ops = *ops;
	c->ud = ud;
	c->lfd = -1;
	c->next_port = GCS_FIRST_STDIO_PORT;
	c->links.next = c->links.prev = &c->links;
	ev_timer_init(&c->cand_timer, on_cand_timeout, 0., 0.);
	c->cand_timer.data = c;
	if (!c->cfg.no_stdio_resume && !c->cfg.no_session_auth) {
		if (session_random(c->secret, sizeof(c->secret), e) < 0) {
			free(c);
			return NULL;
		}
		c->has_secret = true;
	}
	if (!cfg->addr || vsock_addr_parse(cfg->addr, &c->addr, e) < 0) {
		if (!cfg->addr)
			err_set(e, -EINVAL, "gcs client: no transport address");
		free(c);
		return NULL;
	}
	struct bridge_client_cbs bcbs = {
	    .on_notify = on_notify, .on_close = on_bridge_close, .on_detach = on_bridge_detach};
	c->bc = bridge_client_new(loop, &bcbs, c);
	bridge_client_set_default_timeout(c->bc, c->cfg.rpc_timeout_ms > 0
	                                             ? (unsigned)c->cfg.rpc_timeout_ms
	                                             : BRIDGE_DEFAULT_TIMEOUT_MS);
	if (gcs_client_listen_bridge(c, e) < 0) {
		bridge_client_free(c->bc);
		free(c);
		return NULL;
	}
	return c;
}

static void client_destroy(struct gcs_client *c)
{
	/* Attached objects first: they cancel their own calls. */
	while (c->links.next != &c->links) {
		struct gcs_client_link *l = c->links.next;
		gcs_client_link_remove(c, l);
		if (l->on_client_free)
			l->on_client_free(l);
	}
	if (c->lfd >= 0) {
		ev_io_stop(c->loop, &c->accept_w);
		vsock_unlisten(&c->addr, GCS_BRIDGE_PORT, c->lfd);
	}
	ev_timer_stop(c->loop, &c->accept_timer);
	ev_timer_stop(c->loop, &c->cand_timer);
	bridge_client_free(c->bc);
	while (c->calls) {
		struct call *k = c->calls;
		c->calls = k->next;
		free(k);
	}
	while (c->waits)
		wait_remove(c, c->waits->id);
	free(c);
}

void gcs_client_free(struct gcs_client *c)
{
	if (!c)
		return;
	if (c->depth > 0) {
		c->free_pending = true;
		c->ops = (struct gcs_client_ops){0};
		return;
	}
	client_destroy(c);
}

void gcs_client_link_add(struct gcs_client *c, struct gcs_client_link *l)
{
	l->next = c->links.next;
	l->prev = &c->links;
	c->links.next->prev = l;
	c->links.next = l;
}

void gcs_client_link_remove(struct gcs_client *c, struct gcs_client_link *l)
{
	(void)c;
	if (!l->next)
		return;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = NULL;
}

struct gcs_client_link *gcs_client_link_first(struct gcs_client *c)
{
	return c->links.next == &c->links ? NULL : c->links.next;
}

struct gcs_client_link *gcs_client_link_next(struct gcs_client *c, struct gcs_client_link *l)
{
	return !l || l->next == &c->links ? NULL : l->next;
}

struct ev_loop *gcs_client_loop(const struct gcs_client *c)
{
	return c->loop;
}

const struct vsock_addr *gcs_client_addr(const struct gcs_client *c)
{
	return &c->addr;
}

const struct gcs_caps *gcs_client_caps(const struct gcs_client *c)
{
	/* Still available after the bridge closed, once negotiated. */
	return c->caps.version == GCS_PV_V4 && c->state != ST_FAILED ? &c->caps : NULL;
}

int gcs_client_stdio_dial_timeout_ms(const struct gcs_client *c)
{
	return c->cfg.stdio_dial_timeout_ms > 0 ? c->cfg.stdio_dial_timeout_ms
	                                        : GCS_STDIO_DIAL_TIMEOUT_MS;
}

bool gcs_client_is_ready(const struct gcs_client *c)
{
	return c->state == ST_READY;
}
