/* The host GCS client: bridge listener + one accept, negotiation, the container RPCs, the
 * container wait table and the generic call path (request JSON built with jansson, response
 * Result/ErrorMessage turned into a struct gcs_result).  Framing, ids, timeouts and the
 * 64 KiB receive cap are bridge/client.h's job; this file gives them meaning. */
#include "host/gcs_client.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "bridge/client.h"
#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "common/xalloc.h"

#define DEFAULT_ACCEPT_TIMEOUT_MS 120000
#define MAX_CONTAINER_ID          256

enum client_state { ST_LISTENING, ST_NEGOTIATING, ST_READY, ST_FAILED, ST_CLOSED };

/* One outstanding call made through gcs_client_call. */
struct call {
	struct call *prev, *next;
	struct gcs_client *c;
	int64_t id;
	uint32_t rpc;
	gcs_raw_fn done;
	void *ud;
};

/* Wait table entry: a container this host created, waiting for its exit notification. */
struct wait_entry {
	struct wait_entry *next;
	char *id;
};

struct gcs_client {
	struct ev_loop *loop;
	struct vsock_addr addr;
	struct gcs_client_config cfg;
	struct gcs_client_ops ops;
	void *ud;
	int lfd;
	ev_io accept_w;
	ev_timer accept_timer;
	struct bridge_client *bc;
	enum client_state state;
	struct gcs_caps caps;
	uint32_t next_port;
	struct call *calls;
	struct wait_entry *waits;
	struct gcs_client_link links; /* list head (sentinel) */
	unsigned depth;
	bool free_pending;
};

/* ---- helpers ---- */

json_t *gcs_json_get(const json_t *obj, const char *key)
{
	if (!json_is_object(obj))
		return NULL;
	json_t *v = json_object_get(obj, key);
	if (v)
		return v;
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)obj, k, val)
	{
		if (strcasecmp(k, key) == 0)
			return val;
	}
	return NULL;
}

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

static void enter(struct gcs_client *c)
{
	c->depth++;
}

static void client_destroy(struct gcs_client *c);

static bool leave(struct gcs_client *c)
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

static void on_call_done(struct bridge_client *bc, int status, const char *json, size_t len,
                         const struct err *why, void *ud)
{
	struct call *k = ud;
	struct gcs_client *c = k->c;
	struct gcs_result r;
	json_t *resp = NULL;
	bool fatal = false;
	(void)bc;
	enter(c);
	call_unlink(c, k);
	if (status < 0) {
		result_err(&r, why);
	} else {
		json_error_t je;
		resp = json_loadb(json, len, 0, &je);
		json_t *res = gcs_json_get(resp, "Result");
		if (!json_is_object(resp) || !json_is_integer(res)) {
			result_ok(&r);
			r.status =
			    err_set(&r.err, -EBADMSG, "%s: bad response: %s",
			            bridge_type_name(k->rpc), resp ? "no integer Result" : je.text);
			/* Like the Go host: a response that does not decode kills the bridge. */
			fatal = true;
		} else if (json_integer_value(res) != 0) {
			result_ok(&r);
			r.hresult = (int32_t)(uint32_t)json_integer_value(res);
			json_t *m = gcs_json_get(resp, "ErrorMessage");
			r.status =
			    err_set(&r.err, -EREMOTEIO, "%s: guest error 0x%08x (%s)%s%s",
			            bridge_type_name(k->rpc), (uint32_t)r.hresult,
			            gcs_hresult_name(r.hresult), json_is_string(m) ? ": " : "",
			            json_is_string(m) ? json_string_value(m) : "");
		} else {
			result_ok(&r);
		}
	}
	if (k->done)
		k->done(c, &r, r.status == 0 || r.status == -EREMOTEIO ? resp : NULL, k->ud);
	json_decref(resp);
	free(k);
	if (fatal && !c->free_pending && c->bc)
		bridge_client_close(c->bc, &r.err);
	leave(c);
}

static int send_call(struct gcs_client *c, uint32_t rpc, const char *container_id, json_t *body,
                     int timeout_ms, gcs_raw_fn done, void *ud, uint64_t *id_out, struct err *e)
{
	if (!c->bc || c->state == ST_CLOSED || c->state == ST_FAILED)
		return err_set(e, -ENOTCONN, "%s: gcs bridge is closed", bridge_type_name(rpc));
	if (container_id && strlen(container_id) > MAX_CONTAINER_ID)
		return err_set(e, -EINVAL, "%s: container id too long", bridge_type_name(rpc));
	/* Base fields first, in Go struct order, then the body's own members. */
	json_t *req = json_object();
	if (container_id)
		json_object_set_new(req, "ContainerId", json_string(container_id));
	json_object_set_new(req, "ActivityId", json_string(GCS_NULL_CONTAINER_ID));
	if (body && json_object_update_missing(req, body) < 0) {
		json_decref(req);
		return err_set(e, -EINVAL, "%s: body is not an object", bridge_type_name(rpc));
	}
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return err_set(e, -EINVAL, "%s: cannot encode request", bridge_type_name(rpc));
	/* The Go host writes with json.Encoder: the payload ends with '\n'. */
	size_t len = strlen(text);
	char *payload = xmalloc(len + 2);
	memcpy(payload, text, len);
	payload[len] = '\n';
	free(text);
	struct call *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->rpc = rpc;
	k->done = done;
	k->ud = ud;
	int bt = timeout_ms == 0  ? BRIDGE_TIMEOUT_DEFAULT
	         : timeout_ms < 0 ? BRIDGE_TIMEOUT_NONE
	                          : timeout_ms;
	int rc = bridge_client_call_ex(c->bc, (enum bridge_rpc)rpc, payload, len + 1, bt,
	                               on_call_done, k, &k->id, e);
	free(payload);
	if (rc < 0) {
		free(k);
		return err_prefix(e, "%s", bridge_type_name(rpc));
	}
	k->next = c->calls;
	if (c->calls)
		c->calls->prev = k;
	c->calls = k;
	if (id_out)
		*id_out = (uint64_t)k->id;
	return 0;
}

int gcs_client_call(struct gcs_client *c, uint32_t rpc, const char *container_id, json_t *body,
                    int timeout_ms, gcs_raw_fn done, void *ud, uint64_t *id_out, struct err *e)
{
	if (c->state != ST_READY)
		return err_set(e, -ENOTCONN, "%s: gcs bridge not negotiated",
		               bridge_type_name(rpc));
	return send_call(c, rpc, container_id, body, timeout_ms, done, ud, id_out, e);
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

static void ready(struct gcs_client *c, int status, const struct err *e)
{
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
	}
	if (c->ops.on_ready)
		c->ops.on_ready(c, status, e, c->ud);
	/* A connection that failed to set up is useless: drop it (no-op if already closed). */
	if (status < 0 && !c->free_pending && c->bc && !bridge_client_closed(c->bc)) {
		struct err why = e ? *e : (struct err){.code = status};
		bridge_client_close(c->bc, &why);
	}
}

static void on_null_start(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
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

static void on_null_create(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
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
	if (send_call(c, RPC_START, GCS_NULL_CONTAINER_ID, NULL, 0, on_null_start, NULL, NULL, &e) <
	    0)
		ready(c, e.code, &e);
}

static bool jbool(const json_t *o, const char *k)
{
	return json_is_true(gcs_json_get(o, k));
}

static int parse_caps(struct gcs_client *c, json_t *resp, struct err *e)
{
	json_t *ver = gcs_json_get(resp, "Version");
	if (!json_is_integer(ver) || json_integer_value(ver) != GCS_PV_V4)
		return err_set(e, -EPROTO,
		               "negotiate: guest selected protocol version %lld, want 4",
		               json_is_integer(ver) ? (long long)json_integer_value(ver) : 0LL);
	json_t *caps = gcs_json_get(resp, "Capabilities");
	if (!json_is_object(caps))
		return err_set(e, -EPROTO, "negotiate: no Capabilities object");
	json_t *os = gcs_json_get(caps, "RuntimeOsType");
	/* The Go host assumes "windows" when RuntimeOsType is empty. */
	const char *ost =
	    json_is_string(os) && json_string_length(os) > 0 ? json_string_value(os) : "windows";
	if (strcasecmp(ost, "linux") != 0)
		return err_set(e, -EPROTO,
		               "negotiate: guest RuntimeOsType is \"%.40s\", want linux", ost);
	json_t *gdc = gcs_json_get(caps, "GuestDefinedCapabilities");
	if (!json_is_object(gdc))
		return err_set(e, -EPROTO, "negotiate: GuestDefinedCapabilities missing");
	struct gcs_caps *k = &c->caps;
	k->version = GCS_PV_V4;
	snprintf(k->runtime_os_type, sizeof(k->runtime_os_type), "%s", ost);
	k->send_host_create_message = jbool(caps, "SendHostCreateMessage");
	k->send_host_start_message = jbool(caps, "SendHostStartMessage");
	k->hv_socket_config_on_startup = jbool(caps, "HvSocketConfigOnStartup");
	json_t *sv = gcs_json_get(caps, "SupportedSchemaVersions");
	size_t i;
	json_t *v;
	json_array_foreach(sv, i, v)
	{
		json_t *ma = gcs_json_get(v, "Major"), *mi = gcs_json_get(v, "Minor");
		uint32_t a = json_is_integer(ma) ? (uint32_t)json_integer_value(ma) : 0;
		uint32_t b = json_is_integer(mi) ? (uint32_t)json_integer_value(mi) : 0;
		if (a > k->schema_major || (a == k->schema_major && b > k->schema_minor)) {
			k->schema_major = a;
			k->schema_minor = b;
		}
	}
	k->namespace_add_request_supported = jbool(gdc, "NamespaceAddRequestSupported");
	k->signal_process_supported = jbool(gdc, "SignalProcessSupported");
	k->dump_stacks_supported = jbool(gdc, "DumpStacksSupported");
	k->delete_container_state_supported = jbool(gdc, "DeleteContainerStateSupported");
	json_decref(k->raw);
	k->raw = json_incref(caps);
	return 0;
}

static void on_negotiate(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
{
	struct err e;
	(void)ud;
	if (r->status < 0) {
		e = r->err;
		err_prefix(&e, "negotiate protocol");
		ready(c, e.code, &e);
		return;
	}
	if (parse_caps(c, resp, &e) < 0) {
		ready(c, e.code, &e);
		return;
	}
	if (c->cfg.cold_start && c->caps.send_host_create_message) {
		json_t *body =
		    json_pack("{s:s}", "ContainerConfig", "{\"SystemType\":\"Container\"}");
		int rc = send_call(c, RPC_CREATE, GCS_NULL_CONTAINER_ID, body, 0, on_null_create,
		                   NULL, NULL, &e);
		json_decref(body);
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
	json_error_t je;
	enter(c);
	json_t *n = json_loadb(json, len, 0, &je);
	json_t *id = gcs_json_get(n, "ContainerId");
	json_t *type = gcs_json_get(n, "Type");
	if (!json_is_string(id)) {
		err_set(&e, -EBADMSG, "container notification: %s", n ? "no ContainerId" : je.text);
		bridge_client_close(bc, &e);
	} else if (!wait_remove(c, json_string_value(id))) {
		/* The Go host treats an unknown id as fatal for the bridge. */
		err_set(&e, -EPROTO, "container notification for unknown container id=%.80s",
		        json_string_value(id));
		bridge_client_close(bc, &e);
	} else if (c->ops.on_container_exit) {
		c->ops.on_container_exit(c, json_string_value(id),
		                         json_is_string(type) ? json_string_value(type) : "Unknown",
		                         c->ud);
	}
	json_decref(n);
	leave(c);
}

static void on_bridge_close(struct bridge_client *bc, const struct err *why, void *ud)
{
	struct gcs_client *c = ud;
	(void)bc;
	enter(c);
	enum client_state was = c->state;
	c->state = ST_CLOSED;
	if (was == ST_READY && c->ops.on_close)
		c->ops.on_close(c, why, c->ud);
	else if (was == ST_NEGOTIATING || was == ST_LISTENING)
		ready(c, why && why->code ? why->code : -ECONNRESET, why);
	leave(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gcs_client *c = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	int fd = vsock_accept(c->lfd, &e);
	if (fd == IO_AGAIN)
		return;
	enter(c);
	/* Exactly one connection: close the listener now (Go host: closeListener=true). */
	ev_io_stop(c->loop, &c->accept_w);
	ev_timer_stop(c->loop, &c->accept_timer);
	vsock_unlisten(&c->addr, GCS_BRIDGE_PORT, c->lfd);
	c->lfd = -1;
	if (fd < 0) {
		err_prefix(&e, "accept gcs bridge connection");
		ready(c, e.code, &e);
		leave(c);
		return;
	}
	if (bridge_client_attach(c->bc, fd, &e) < 0) {
		ready(c, e.code, &e);
		leave(c);
		return;
	}
	c->state = ST_NEGOTIATING;
	json_t *body =
	    json_pack("{s:i,s:i}", "MinimumVersion", GCS_PV_V4, "MaximumVersion", GCS_PV_V4);
	/* The Go host leaves ContainerId "" here. */
	if (send_call(c, RPC_NEGOTIATE_PROTOCOL, "", body, 0, on_negotiate, NULL, NULL, &e) < 0)
		ready(c, e.code, &e);
	json_decref(body);
	leave(c);
}

static void on_accept_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gcs_client *c = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	enter(c);
	err_set(&e, -ETIMEDOUT, "gcs did not connect within %d ms", c->cfg.accept_timeout_ms);
	ready(c, e.code, &e);
	leave(c);
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
	if (!cfg->addr || vsock_addr_parse(cfg->addr, &c->addr, e) < 0) {
		if (!cfg->addr)
			err_set(e, -EINVAL, "gcs client: no transport address");
		free(c);
		return NULL;
	}
	struct bridge_client_cbs bcbs = {.on_notify = on_notify, .on_close = on_bridge_close};
	c->bc = bridge_client_new(loop, &bcbs, c);
	bridge_client_set_default_timeout(c->bc, c->cfg.rpc_timeout_ms > 0
	                                             ? (unsigned)c->cfg.rpc_timeout_ms
	                                             : BRIDGE_DEFAULT_TIMEOUT_MS);
	c->lfd = vsock_listen(&c->addr, GCS_BRIDGE_PORT, e);
	if (c->lfd < 0) {
		c->lfd = -1;
		err_prefix(e, "gcs client: listen on bridge port");
		bridge_client_free(c->bc);
		free(c);
		return NULL;
	}
	ev_io_init(&c->accept_w, on_accept, c->lfd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(loop, &c->accept_w);
	ev_timer_init(&c->accept_timer, on_accept_timeout, c->cfg.accept_timeout_ms / 1000.0, 0.);
	c->accept_timer.data = c;
	ev_timer_start(loop, &c->accept_timer);
	c->state = ST_LISTENING;
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
	bridge_client_free(c->bc);
	while (c->calls) {
		struct call *k = c->calls;
		c->calls = k->next;
		free(k);
	}
	while (c->waits)
		wait_remove(c, c->waits->id);
	json_decref(c->caps.raw);
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

bool gcs_client_is_ready(const struct gcs_client *c)
{
	return c->state == ST_READY;
}

/* ---- migration counters ---- */

uint32_t gcs_client_next_stdio_port(const struct gcs_client *c)
{
	return c->next_port;
}

int gcs_client_set_next_stdio_port(struct gcs_client *c, uint32_t port, struct err *e)
{
	if (port < c->next_port)
		return err_set(e, -EINVAL, "next stdio port %#x is below the current %#x", port,
		               c->next_port);
	c->next_port = port;
	return 0;
}

uint32_t gcs_client_alloc_stdio_port(struct gcs_client *c)
{
	return c->next_port++;
}

uint64_t gcs_client_next_bridge_id(const struct gcs_client *c)
{
	return (uint64_t)bridge_client_next_id(c->bc);
}

int gcs_client_set_next_bridge_id(struct gcs_client *c, uint64_t id, struct err *e)
{
	if (id < gcs_client_next_bridge_id(c) || id > (uint64_t)INT64_MAX)
		return err_set(e, -EINVAL, "next bridge id %llu is below the current %llu",
		               (unsigned long long)id,
		               (unsigned long long)gcs_client_next_bridge_id(c));
	bridge_client_seed_next_id(c->bc, (int64_t)id);
	return 0;
}
