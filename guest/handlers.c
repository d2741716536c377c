/* ferry-gcs handlers for the container and process RPCs: Create, Start, Shutdown*,
 * ExecuteProcess (container init, exec, or a UVM process for the null id; the requested
 * stdio ports are dialled first, stdin then stdout then stderr, without blocking the loop),
 * WaitForProcess, SignalProcess, ResizeConsole, GetProperties and DeleteContainerState.
 * Each decodes its body (failures -> HR_VMCOMPUTE_INVALID_JSON), calls the runtime layer
 * (guest/runtime.h) and answers exactly once, mapping runtime errors to the HRESULTs of
 * gcs-bridge.md §5.5. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "guest/gcs_priv.h"
#include "guest/runtime.h"

/* Connect timeout for one stdio port (the host listens before it sends ExecuteProcess). */
#define STDIO_DIAL_TIMEOUT_MS 5000
/* GetProperties: at most this many pids, so that the response stays under 64 KiB. */
#define PROCESS_LIST_MAX 1500

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Decode the body of r into `out` (kind k); on failure answer r and return false. */
static bool decode(struct gcs_req *r, enum bridge_msg_kind k, const char *json, size_t len,
                   void *out)
{
	struct err e;
	int rc = bridge_msg_decode(k, json, len, out, &e);
	if (rc < 0) {
		gcs_req_fail(r, bridge_msg_hresult(rc), "%s", e.msg);
		return false;
	}
	return true;
}

/* Answer r from a runtime status (0 -> success base). */
static void answer_status(struct gcs_req *r, int status, const struct err *e)
{
	if (status == 0)
		gcs_req_ok(r);
	else
		gcs_req_fail(r, rt_err_hresult(status), "%s", e ? e->msg : "runtime error");
}

/* Container ids become path components (default bundle dir). */
static bool valid_id(const char *id)
{
	return id && *id && strlen(id) <= 255 && !strchr(id, '/') && strcmp(id, ".") != 0 &&
	       strcmp(id, "..") != 0;
}

/* ---- Create ---- */

struct create_state {
	char *id;
	char *bundle;
	char activity_id[GUID_STR_LEN + 1];
};

static void create_cleanup(struct gcs_req *r)
{
	struct create_state *s = r->state;
	free(s->id);
	free(s->bundle);
	free(s);
}

static void create_done(struct rt *rt, const char *id, int status, const struct err *e, pid_t pid,
                        void *ud)
{
	(void)rt;
	(void)pid;
	struct gcs_req *r = ud;
	struct create_state *s = r->state;
	if (status < 0) {
		gcs_req_fail(r, rt_err_hresult(status), "create container %s: %s", id, e->msg);
		return;
	}
	gcs_container_add(r->g, s->id, s->activity_id, s->bundle);
	log_info("container created id=%s bundle=%s", s->id, s->bundle);
	struct bridge_create_resp resp = {.selected_protocol_version = 0};
	gcs_req_respond(r, BMSG_CREATE_RESP, &resp);
}

void gcs_handle_create(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_create_req q;
	if (!decode(r, BMSG_CREATE_REQ, json, len, &q))
		return;
	const struct bridge_container_settings *c = &q.config;
	const char *id = q.base.container_id;
	struct err e;
	if (c->schema_version.major < 2 ||
	    (c->schema_version.major == 2 && c->schema_version.minor < 1)) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON,
		             "Create: unsupported SchemaVersion %u.%u (need >= 2.1)",
		             c->schema_version.major, c->schema_version.minor);
	} else if (!valid_id(id) || gcs_is_null_id(id)) {
		gcs_req_fail(r, HR_FAIL, "Create: invalid container id `%s`", id);
	} else if (!c->oci_specification || !json_is_object(c->oci_specification)) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "Create: OciSpecification missing");
	} else {
		struct create_state *s = xcalloc(1, sizeof(*s));
		s->id = xstrdup(id);
		s->bundle = c->oci_bundle_path && *c->oci_bundle_path
		                ? xstrdup(c->oci_bundle_path)
		                : xasprintf("%s/c/%s", r->g->opt.root_dir, id);
		snprintf(s->activity_id, sizeof(s->activity_id), "%s", r->activity_id);
		r->state = s;
		r->cleanup = create_cleanup;
		int rc = rt_container_create(r->g->rt, id, s->bundle, c->oci_specification,
		                             create_done, r, &e);
		if (rc < 0)
			gcs_req_fail(r, rt_err_hresult(rc), "create container %s: %s", id, e.msg);
	}
	bridge_create_req_fini(&q);
}

/* ---- Start, Shutdown, Delete ---- */

void gcs_handle_start(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_req_base q;
	if (!decode(r, BMSG_REQ_BASE, json, len, &q))
		return;
	/* A no-op for Linux containers (init starts with the first ExecuteProcess), but the
	 * container must exist. */
	pid_t pid;
	struct err e;
	int rc = gcs_is_null_id(q.container_id)
	             ? err_set(&e, -ENOENT, "Start: the UVM is not a container")
	             : rt_container_pid(r->g->rt, q.container_id, &pid, &e);
	answer_status(r, rc, &e);
	bridge_req_base_fini(&q);
}

static void done_status(struct rt *rt, const char *id, int status, const struct err *e, pid_t pid,
                        void *ud)
{
	(void)rt;
	(void)id;
	(void)pid;
	answer_status(ud, status, e);
}

void gcs_handle_shutdown(struct gcs_req *r, const char *json, size_t len, bool graceful)
{
	struct bridge_req_base q;
	if (!decode(r, BMSG_REQ_BASE, json, len, &q))
		return;
	if (gcs_is_null_id(q.container_id)) {
		/* The whole UVM: stop the bridge, power off, never answer (§4.4). */
		struct gcs *g = r->g;
		bridge_req_base_fini(&q);
		gcs_req_drop(r);
		gcs_shutdown_uvm(g);
		return;
	}
	struct err e;
	int rc = rt_shutdown(r->g->rt, q.container_id, graceful, done_status, r, &e);
	if (rc < 0)
		answer_status(r, rc, &e);
	bridge_req_base_fini(&q);
}

void gcs_handle_delete(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_req_base q;
	if (!decode(r, BMSG_REQ_BASE, json, len, &q))
		return;
	struct err e;
	int rc = gcs_is_null_id(q.container_id)
	             ? err_set(&e, -ENOENT, "DeleteContainerState: the UVM is not a container")
	             : rt_delete(r->g->rt, q.container_id, done_status, r, &e);
	if (rc < 0)
		answer_status(r, rc, &e);
	else
		gcs_container_remove(r->g, q.container_id);
	bridge_req_base_fini(&q);
}

/* ---- ExecuteProcess ---- */

struct exec_state {
	struct bridge_exec_req q;
	bool external;
	uint32_t ports[3];
	int fds[3];
	int next; /* next stdio slot to dial */
	struct vsock_dialer *dial;
};

static void exec_cleanup(struct gcs_req *r)
{
	struct exec_state *s = r->state;
	vsock_dialer_free(s->dial);
	for (int i = 0; i < 3; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	bridge_exec_req_fini(&s->q);
	free(s);
}

static void exec_done(struct rt *rt, const char *id, int status, const struct err *e, pid_t pid,
                      void *ud)
{
	(void)rt;
	struct gcs_req *r = ud;
	if (status < 0) {
		gcs_req_fail(r, rt_err_hresult(status), "exec in %s: %s", id, e->msg);
		return;
	}
	log_info("process started container=%s pid=%d", id, (int)pid);
	struct bridge_exec_resp resp = {.process_id = (uint32_t)pid};
	gcs_req_respond(r, BMSG_EXEC_RESP, &resp);
}

/* Hand the dialled connections to the runtime (it owns them from here, in every case). */
static struct rt_stdio take_conns(struct exec_state *s)
{
	struct rt_stdio c = {.in = s->fds[0],
	                     .out = s->fds[1],
	                     .err = s->fds[2],
	                     .ports = {s->ports[0], s->ports[1], s->ports[2]}};
	s->fds[0] = s->fds[1] = s->fds[2] = -1;
	return c;
}

static void exec_external(struct gcs_req *r, struct exec_state *s)
{
	const struct bridge_process_params *p = &s->q.params;
	struct err e;
	char **argv = NULL;
	if (p->n_command_args > 0) {
		argv = xcalloc(p->n_command_args + 1, sizeof(*argv));
		for (size_t i = 0; i < p->n_command_args; i++)
			argv[i] = xstrdup(p->command_args[i]);
	} else if (!(argv = gcs_split_command_line(p->command_line ? p->command_line : "", &e))) {
		gcs_req_fail(r, HR_FAIL, "ExecuteProcess: %s", e.msg);
		return;
	}
	size_t n_env = p->n_environment ? p->n_environment : 1;
	char **env = xcalloc(n_env + 1, sizeof(*env));
	for (size_t i = 0; i < p->n_environment; i++)
		env[i] = xasprintf("%s=%s", p->environment[i].key, p->environment[i].value);
	if (!p->n_environment)
		env[0] = xstrdup(DEFAULT_PATH_ENV);
	const char *cwd =
	    p->working_directory && *p->working_directory ? p->working_directory : "/";
	pid_t pid = 0;
	int rc =
	    rt_exec_external(r->g->rt, argv, env, cwd, p->emulate_console, take_conns(s), &pid, &e);
	gcs_argv_free(argv);
	gcs_argv_free(env);
	if (rc < 0) {
		gcs_req_fail(r, HR_FAIL, "ExecuteProcess in the UVM: %s", e.msg);
		return;
	}
	log_info("uvm process started pid=%d", (int)pid);
	struct bridge_exec_resp resp = {.process_id = (uint32_t)pid};
	gcs_req_respond(r, BMSG_EXEC_RESP, &resp);
}

static void exec_launch(struct gcs_req *r)
{
	struct exec_state *s = r->state;
	if (s->external) {
		exec_external(r, s);
		return;
	}
	const char *id = s->q.base.container_id;
	struct err e;
	int rc =
	    s->q.params.oci_process
	        ? rt_exec(r->g->rt, id, s->q.params.oci_process, take_conns(s), exec_done, r, &e)
	        : rt_container_start(r->g->rt, id, take_conns(s), exec_done, r, &e);
	if (rc < 0)
		gcs_req_fail(r, rt_err_hresult(rc), "ExecuteProcess in %s: %s", id, e.msg);
}

static void exec_dial_next(struct gcs_req *r);

static void on_stdio_dialled(struct vsock_dialer *d, int fd, const struct err *e, void *ud)
{
	struct gcs_req *r = ud;
	struct exec_state *s = r->state;
	if (fd < 0) {
		/* e is only valid during the callback: report now (the cleanup frees the dial). */
		gcs_req_fail(r, HR_FAIL, "ExecuteProcess: stdio port %u: %s", s->ports[s->next],
		             e->msg);
		return;
	}
	vsock_dialer_free(d);
	s->dial = NULL;
	s->fds[s->next++] = fd;
	exec_dial_next(r);
}

static void exec_dial_next(struct gcs_req *r)
{
	struct exec_state *s = r->state;
	while (s->next < 3 && s->ports[s->next] == 0)
		s->next++;
	if (s->next == 3) {
		exec_launch(r);
		return;
	}
	struct err e;
	s->dial = vsock_dialer_new_host(r->g->loop, &r->g->addr, s->ports[s->next],
	                                STDIO_DIAL_TIMEOUT_MS, on_stdio_dialled, r, &e);
	if (!s->dial)
		gcs_req_fail(r, HR_FAIL, "ExecuteProcess: stdio port %u: %s", s->ports[s->next],
		             e.msg);
}

void gcs_handle_exec(struct gcs_req *r, const char *json, size_t len)
{
	struct exec_state *s = xcalloc(1, sizeof(*s));
	s->fds[0] = s->fds[1] = s->fds[2] = -1;
	if (!decode(r, BMSG_EXEC_REQ, json, len, &s->q)) {
		free(s);
		return;
	}
	r->state = s;
	r->cleanup = exec_cleanup;
	const struct bridge_process_params *p = &s->q.params;
	const char *id = s->q.base.container_id;
	s->external = gcs_is_null_id(id) || p->create_in_utility_vm;
	if (!s->external) {
		pid_t pid;
		struct err e;
		int rc = rt_container_pid(r->g->rt, id, &pid, &e);
		if (rc < 0) {
			gcs_req_fail(r, rt_err_hresult(rc), "ExecuteProcess: %s", e.msg);
			return;
		}
	}
	const bool want[3] = {p->create_std_in_pipe, p->create_std_out_pipe,
	                      p->create_std_err_pipe};
	const uint32_t port[3] = {s->q.stdio.std_in, s->q.stdio.std_out, s->q.stdio.std_err};
	static const char *const names[3] = {"StdIn", "StdOut", "StdErr"};
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		if (!port[i]) {
			gcs_req_fail(
			    r, HR_FAIL,
			    "ExecuteProcess: Create%sPipe set but no VsockStdioRelaySettings.%s "
			    "port",
			    names[i], names[i]);
			return;
		}
		s->ports[i] = port[i];
	}
	exec_dial_next(r);
}

/* ---- WaitForProcess, SignalProcess, ResizeConsole ---- */

static void wait_done(struct rt *rt, int32_t hresult, uint32_t exit_code, void *ud)
{
	(void)rt;
	struct gcs_req *r = ud;
	r->wait = NULL;
	if (hresult != HR_OK) {
		gcs_req_fail(r, hresult, "HRESULT: 0x%08x", (uint32_t)hresult);
		return;
	}
	/* the code stays retrievable (retain_exits): a later wait, e.g. a new host's probe
	 * after this answer was lost in a cut, gets it again */
	struct bridge_wait_resp resp = {.exit_code = exit_code};
	gcs_req_respond(r, BMSG_WAIT_RESP, &resp);
}

static void wait_unindex(struct gcs_req *r)
{
	gcs_waits_remove(&r->g->waits, &r->wlink);
}

static struct gcs_req *req_of_link(struct gcs_wait_link *l)
{
	return (struct gcs_req *)(void *)((char *)l - offsetof(struct gcs_req, wlink));
}

/* A ferry host re-subscribes after every reconnect (host/process.c): its new infinite wait
 * replaces the waits for the same process that arrived on earlier connections, whose ids
 * that host has made orphans (it drops their answers).  Answer those now, with the timeout
 * HRESULT, so re-subscriptions do not pile up over many migrations.  Only with the ferry
 * capability on the current connection: a plain hcsshim host keeps relying on the source's
 * wait and never re-sends an infinite one.  The index keeps each process's waits in arrival
 * (hence connection) order, so this only ever looks at waits it answers, plus one. */
static void supersede_waits(struct gcs_req *r, const char *cid, pid_t pid)
{
	struct gcs *g = r->g;
	struct gcs_wait_link *l;
	while ((l = gcs_waits_oldest(&g->waits, cid, pid))) {
		struct gcs_req *o = req_of_link(l);
		if (o->conn_gen >= r->conn_gen)
			break;
		log_debug("WaitForProcess id=%llu superseded by id=%llu", (unsigned long long)o->id,
		          (unsigned long long)r->id);
		rt_wait_cancel(g->rt, o->wait);
		o->wait = NULL;
		gcs_req_fail(o, HR_VMCOMPUTE_TIMEOUT, "superseded by WaitForProcess id=%llu",
		             (unsigned long long)r->id);
	}
}

void gcs_handle_wait(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_wait_req q;
	if (!decode(r, BMSG_WAIT_REQ, json, len, &q))
		return;
	const char *id = gcs_is_null_id(q.base.container_id) ? NULL : q.base.container_id;
	if (q.timeout_in_ms == GCS_INFINITE_WAIT && r->g->resume)
		supersede_waits(r, id, (pid_t)q.process_id);
	/* after superseding: a host re-subscribing at the limit replaces, it does not add */
	if (r->g->n_reqs > GCS_MAX_REQUESTS) {
		gcs_req_fail(r, HR_FAIL, "too many requests in flight (%u)", GCS_MAX_REQUESTS);
		bridge_wait_req_fini(&q);
		return;
	}
	if (q.timeout_in_ms == GCS_INFINITE_WAIT) {
		gcs_waits_add(&r->g->waits, &r->wlink, id, (pid_t)q.process_id);
		r->cleanup = wait_unindex;
	}
	/* The handle stays valid until wait_done runs (or rt_free). */
	r->wait = rt_wait(r->g->rt, id, (pid_t)q.process_id, q.timeout_in_ms, wait_done, r);
	bridge_wait_req_fini(&q);
}

void gcs_handle_signal(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_signal_req q;
	if (!decode(r, BMSG_SIGNAL_REQ, json, len, &q))
		return;
	int sig = q.has_options && q.signal != 0 ? q.signal : SIGKILL;
	const char *id = gcs_is_null_id(q.base.container_id) ? NULL : q.base.container_id;
	struct err e;
	int rc = rt_signal(r->g->rt, id, (pid_t)q.process_id, sig, &e);
	answer_status(r, rc, &e);
	bridge_signal_req_fini(&q);
}

void gcs_handle_resize(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_resize_req q;
	if (!decode(r, BMSG_RESIZE_REQ, json, len, &q))
		return;
	const char *id = gcs_is_null_id(q.base.container_id) ? NULL : q.base.container_id;
	struct err e;
	int rc = rt_resize(r->g->rt, id, (pid_t)q.process_id, q.height, q.width, &e);
	answer_status(r, rc, &e);
	bridge_resize_req_fini(&q);
}

/* ---- GetProperties ---- */

void gcs_handle_properties(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_props_req q;
	if (!decode(r, BMSG_PROPS_REQ, json, len, &q))
		return;
	const char *id = q.base.container_id;
	struct err e;
	pid_t init;
	int rc;
	if (gcs_is_null_id(id)) {
		gcs_req_fail(r, HR_FAIL, "GetProperties: not supported for the UVM");
		goto out;
	}
	if ((rc = rt_container_pid(r->g->rt, id, &init, &e)) < 0) {
		answer_status(r, rc, &e);
		goto out;
	}
	struct bridge_props_resp resp = {0};
	pid_t *pids = NULL;
	for (size_t i = 0; i < q.n_property_types; i++) {
		const char *t = q.property_types[i];
		if (strcmp(t, "ProcessList") != 0) {
			log_info("GetProperties: property type %s ignored", t);
			continue;
		}
		if (pids)
			continue;
		pids = xcalloc(PROCESS_LIST_MAX, sizeof(*pids));
		rc = rt_ps(r->g->rt, id, pids, PROCESS_LIST_MAX, &e);
		if (rc < 0) {
			free(pids);
			answer_status(r, rc, &e);
			goto out;
		}
		size_t n = (size_t)rc < PROCESS_LIST_MAX ? (size_t)rc : PROCESS_LIST_MAX;
		if ((size_t)rc > n)
			log_warn("GetProperties id=%s: %d processes, listing the first %zu", id, rc,
			         n);
		resp.props.process_list = xcalloc(n ? n : 1, sizeof(*resp.props.process_list));
		for (size_t k = 0; k < n; k++)
			resp.props.process_list[k].process_id = (uint32_t)pids[k];
		resp.props.n_process_list = n;
	}
	gcs_req_respond(r, BMSG_PROPS_RESP, &resp);
	free(resp.props.process_list);
	free(pids);
out:
	bridge_props_req_fini(&q);
}

/* ---- command lines ---- */

void gcs_argv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **gcs_split_command_line(const char *s, struct err *e)
{
	size_t cap = 8, n = 0;
	char **v = xcalloc(cap, sizeof(*v));
	char *word = xmalloc(strlen(s) + 1);
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		size_t w = 0;
		char quote = 0;
		for (; *s && (quote || (*s != ' ' && *s != '\t' && *s != '\n')); s++) {
			if (quote == '\'') {
				if (*s == '\'')
					quote = 0;
				else
					word[w++] = *s;
			} else if (*s == '\\' && s[1] && (!quote || strchr("\"\\$`", s[1]))) {
				word[w++] = *++s;
			} else if (quote == '"') {
				if (*s == '"')
					quote = 0;
				else
					word[w++] = *s;
			} else if (*s == '\'' || *s == '"') {
				quote = *s;
			} else {
				word[w++] = *s;
			}
		}
		if (quote) {
			free(word);
			gcs_argv_free(v);
			err_set(e, -EINVAL, "command line: unterminated %c quote", quote);
			return NULL;
		}
		if (n + 2 > cap) {
			cap *= 2;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = xstrndup(word, w);
		v[n] = NULL;
	}
	free(word);
	if (n == 0) {
		gcs_argv_free(v);
		err_set(e, -EINVAL, "empty command line");
		return NULL;
	}
	return v;
}
