/* Host-side process objects: build ExecuteProcess (container init, exec, or UVM process),
 * own the stdio relays of its ports, chain the infinite WaitForProcess right after the
 * ExecuteProcess response, and report the exit once the code is known and every output
 * stream has reached EOF and been flushed.  See host/process.h for the contract. */
#include "host/process.h"

#include <errno.h>
#include <string.h>

#include "bridge/proto.h"
#include "common/xalloc.h"
#include "host/iorelay.h"

#define DEFAULT_UVM_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum pcall_kind { PC_SIGNAL, PC_RESIZE, PC_WAIT };

/* An RPC issued for this process whose callback must not outlive it. */
struct pcall {
	struct pcall *next;
	struct gcs_process *p;
	enum pcall_kind kind;
	uint64_t id;
	gcs_process_done_fn done;
	gcs_process_wait_fn wait_done;
	void *ud;
};

struct gcs_process {
	struct gcs_client *c;
	struct gcs_client_link link;
	char *cid; /* GCS_NULL_CONTAINER_ID for UVM processes */
	struct gcs_process_ops ops;
	void *ud;
	struct iorelay *relay[3]; /* stdin, stdout, stderr */
	bool relay_done[3];
	uint32_t port[3];
	uint32_t pid;
	bool exec_pending, started, failed;
	uint64_t exec_id;
	bool wait_pending;
	uint64_t wait_id;
	bool have_exit, exit_reported;
	uint32_t exit_code;
	struct gcs_result exit_res;
	struct pcall *calls;
	unsigned depth;
	bool free_pending;
};

static void process_destroy(struct gcs_process *p)
{
	if (p->exec_pending)
		gcs_client_cancel(p->c, p->exec_id);
	if (p->wait_pending)
		gcs_client_cancel(p->c, p->wait_id);
	while (p->calls) {
		struct pcall *k = p->calls;
		p->calls = k->next;
		gcs_client_cancel(p->c, k->id);
		free(k);
	}
	for (int i = 0; i < 3; i++)
		iorelay_free(p->relay[i]);
	gcs_client_link_remove(p->c, &p->link);
	free(p->cid);
	free(p);
}

static void enter(struct gcs_process *p)
{
	p->depth++;
}

static bool leave(struct gcs_process *p)
{
	if (--p->depth == 0 && p->free_pending) {
		process_destroy(p);
		return true;
	}
	return false;
}

void gcs_process_free(struct gcs_process *p)
{
	if (!p)
		return;
	if (p->depth > 0) {
		p->free_pending = true;
		p->ops = (struct gcs_process_ops){0};
		return;
	}
	process_destroy(p);
}

static void on_client_free(struct gcs_client_link *l)
{
	struct gcs_process *p =
	    (struct gcs_process *)((char *)l - offsetof(struct gcs_process, link));
	if (p->depth > 0) {
		p->free_pending = true;
		p->ops = (struct gcs_process_ops){0};
		return;
	}
	process_destroy(p);
}

/* Report the exit once the code is known and stdout/stderr are finished; a failed wait
 * (bridge gone) is reported at once. */
static void maybe_report_exit(struct gcs_process *p)
{
	if (!p->have_exit || p->exit_reported || p->free_pending)
		return;
	if (p->exit_res.status == 0)
		for (int i = 1; i < 3; i++)
			if (p->relay[i] && !p->relay_done[i])
				return;
	p->exit_reported = true;
	/* stdin has no use any more. */
	iorelay_free(p->relay[0]);
	p->relay[0] = NULL;
	if (p->ops.on_exit)
		p->ops.on_exit(p, &p->exit_res, p->exit_code, p->ud);
}

/* Exit code from a WaitForProcess result: HrErrNotFound counts as exit code 0 (Go host). */
static uint32_t exit_code_of(struct gcs_result *r, json_t *resp)
{
	if (r->status == -EREMOTEIO && r->hresult == HR_ERR_NOT_FOUND) {
		memset(r, 0, sizeof(*r));
		return 0;
	}
	if (r->status != 0)
		return 0;
	json_t *code = gcs_json_get(resp, "ExitCode");
	return json_is_integer(code) ? (uint32_t)json_integer_value(code) : 0;
}

static void on_wait(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
{
	struct gcs_process *p = ud;
	(void)c;
	enter(p);
	p->wait_pending = false;
	p->exit_res = *r;
	p->exit_code = exit_code_of(&p->exit_res, resp);
	p->have_exit = true;
	maybe_report_exit(p);
	leave(p);
}

static void on_exec(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
{
	struct gcs_process *p = ud;
	struct gcs_result rr = *r;
	enter(p);
	p->exec_pending = false;
	if (rr.status == 0) {
		json_t *pid = gcs_json_get(resp, "ProcessId");
		if (!json_is_integer(pid) || json_integer_value(pid) <= 0)
			rr.status = err_set(&rr.err, -EBADMSG, "ExecuteProcess: no ProcessId");
		else
			p->pid = (uint32_t)json_integer_value(pid);
	}
	if (rr.status == 0) {
		/* Right away, with no timeout, as the Go host does. */
		json_t *body = json_pack("{s:I,s:I}", "ProcessId", (json_int_t)p->pid,
		                         "TimeoutInMs", (json_int_t)GCS_INFINITE_WAIT);
		if (gcs_client_call(c, RPC_WAIT_FOR_PROCESS, p->cid, body, -1, on_wait, p,
		                    &p->wait_id, &rr.err) < 0)
			rr.status = rr.err.code;
		else
			p->wait_pending = true;
		json_decref(body);
	}
	if (rr.status < 0) {
		p->failed = true;
		for (int i = 0; i < 3; i++) {
			iorelay_free(p->relay[i]);
			p->relay[i] = NULL;
		}
	} else {
		p->started = true;
	}
	if (p->ops.on_started)
		p->ops.on_started(p, &rr, p->ud);
	leave(p);
}

static void relay_data(struct iorelay *r, const void *data, size_t n, void *ud)
{
	struct gcs_process *p = ud;
	int stream = r == p->relay[1] ? 1 : 2;
	enter(p);
	if (p->ops.on_output)
		p->ops.on_output(p, stream, data, n, p->ud);
	leave(p);
}

static void relay_done(struct iorelay *r, int status, const struct err *e, void *ud)
{
	struct gcs_process *p = ud;
	(void)status;
	(void)e;
	enter(p);
	for (int i = 0; i < 3; i++)
		if (p->relay[i] == r)
			p->relay_done[i] = true;
	maybe_report_exit(p);
	leave(p);
}

static json_t *build_params(const struct gcs_process_config *cfg, bool uvm, struct err *e)
{
	json_t *pp = json_object();
	if (uvm) {
		json_t *args = json_array();
		for (const char *const *a = cfg->argv; *a; a++)
			json_array_append_new(args, json_string(*a));
		json_object_set_new(pp, "CommandArgs", args);
		json_object_set_new(pp, "WorkingDirectory", json_string(cfg->cwd ? cfg->cwd : "/"));
		json_t *env = json_object();
		const char *const dflt[] = {DEFAULT_UVM_PATH, NULL};
		for (const char *const *v = cfg->env ? cfg->env : dflt; *v; v++) {
			const char *eq = strchr(*v, '=');
			if (!eq || eq == *v) {
				json_decref(env);
				json_decref(pp);
				err_set(e, -EINVAL, "environment entry \"%.60s\" is not K=V", *v);
				return NULL;
			}
			_cleanup_free_ char *k = xstrndup(*v, (size_t)(eq - *v));
			/* The Go host drops entries with empty values. */
			if (eq[1])
				json_object_set_new(env, k, json_string(eq + 1));
		}
		json_object_set_new(pp, "Environment", env);
		if (cfg->emulate_console)
			json_object_set_new(pp, "EmulateConsole", json_true());
	}
	if (cfg->stdio.want_stdin)
		json_object_set_new(pp, "CreateStdInPipe", json_true());
	if (cfg->stdio.want_stdout)
		json_object_set_new(pp, "CreateStdOutPipe", json_true());
	if (cfg->stdio.want_stderr)
		json_object_set_new(pp, "CreateStdErrPipe", json_true());
	if (!uvm && cfg->oci_process)
		json_object_set(pp, "OciProcess", cfg->oci_process);
	return pp;
}

struct gcs_process *gcs_process_start(struct gcs_client *c, const struct gcs_process_config *cfg,
                                      const struct gcs_process_ops *ops, void *ud, struct err *e)
{
	bool uvm = !cfg->container_id || strcmp(cfg->container_id, GCS_NULL_CONTAINER_ID) == 0;
	if (!gcs_client_is_ready(c)) {
		err_set(e, -ENOTCONN, "exec: gcs bridge not negotiated");
		return NULL;
	}
	if (uvm && (!cfg->argv || !cfg->argv[0])) {
		err_set(e, -EINVAL, "exec: a UVM process needs argv");
		return NULL;
	}
	if (!uvm && cfg->oci_process && !json_is_object(cfg->oci_process)) {
		err_set(e, -EINVAL, "exec: OciProcess must be an object");
		return NULL;
	}
	if (cfg->stdio.stdin_fd >= 0 && !cfg->stdio.want_stdin) {
		err_set(e, -EINVAL, "exec: stdin_fd given but stdin not requested");
		return NULL;
	}
	json_t *pp = build_params(cfg, uvm, e);
	if (!pp)
		return NULL;

	struct gcs_process *p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->cid = xstrdup(uvm ? GCS_NULL_CONTAINER_ID : cfg->container_id);
	if (ops)
		p->ops = *ops;
	p->ud = ud;
	p->link.on_client_free = on_client_free;
	gcs_client_link_add(c, &p->link);

	/* Ports in stdin, stdout, stderr order, only for requested pipes; listen first. */
	const bool want[3] = {cfg->stdio.want_stdin, cfg->stdio.want_stdout,
	                      cfg->stdio.want_stderr};
	const int fds[3] = {cfg->stdio.stdin_fd, cfg->stdio.stdout_fd, cfg->stdio.stderr_fd};
	struct iorelay_ops rops = {.on_data = relay_data, .on_done = relay_done};
	json_t *vs = json_object();
	static const char *const names[3] = {"StdIn", "StdOut", "StdErr"};
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		p->port[i] = gcs_client_alloc_stdio_port(c);
		p->relay[i] = iorelay_new(gcs_client_loop(c), gcs_client_addr(c), p->port[i],
		                          i == 0 ? IORELAY_TO_GUEST : IORELAY_FROM_GUEST, fds[i],
		                          &rops, p, e);
		if (!p->relay[i])
			goto fail;
		json_object_set_new(vs, names[i], json_integer(p->port[i]));
	}
	char *ptext = json_dumps(pp, JSON_COMPACT);
	json_t *body = json_pack("{s:{s:s,s:O}}", "Settings", "ProcessParameters", ptext,
	                         "VsockStdioRelaySettings", vs);
	free(ptext);
	int rc =
	    gcs_client_call(c, RPC_EXECUTE_PROCESS, p->cid, body, 0, on_exec, p, &p->exec_id, e);
	json_decref(body);
	if (rc < 0)
		goto fail;
	p->exec_pending = true;
	json_decref(vs);
	json_decref(pp);
	return p;
fail:
	json_decref(vs);
	json_decref(pp);
	process_destroy(p);
	return NULL;
}

uint32_t gcs_process_pid(const struct gcs_process *p)
{
	return p->pid;
}

const char *gcs_process_container_id(const struct gcs_process *p)
{
	return p->cid;
}

struct gcs_client *gcs_process_client(const struct gcs_process *p)
{
	return p->c;
}

/* ---- per-process RPCs ---- */

static void on_pcall(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
{
	struct pcall *k = ud;
	struct gcs_process *p = k->p;
	struct gcs_result rr = *r;
	(void)c;
	for (struct pcall **pp = &p->calls; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	enter(p);
	if (k->kind == PC_WAIT) {
		uint32_t code = exit_code_of(&rr, resp);
		if (k->wait_done)
			k->wait_done(p, &rr, code, k->ud);
	} else {
		/* Signal: HrErrNotFound = not delivered, not an error. */
		if (k->kind == PC_SIGNAL && rr.status == -EREMOTEIO &&
		    rr.hresult == HR_ERR_NOT_FOUND) {
			rr.status = 0;
			err_clear(&rr.err);
		}
		if (k->done)
			k->done(p, &rr, k->ud);
	}
	free(k);
	leave(p);
}

static int pcall(struct gcs_process *p, enum pcall_kind kind, uint32_t rpc, json_t *body,
                 gcs_process_done_fn done, gcs_process_wait_fn wait_done, void *ud, struct err *e)
{
	if (!p->started) {
		json_decref(body);
		return err_set(e, -EINVAL, "%s: process not started", bridge_type_name(rpc));
	}
	struct pcall *k = xcalloc(1, sizeof(*k));
	k->p = p;
	k->kind = kind;
	k->done = done;
	k->wait_done = wait_done;
	k->ud = ud;
	json_object_set_new(body, "ProcessId", json_integer(p->pid));
	int rc = gcs_client_call(p->c, rpc, p->cid, body, kind == PC_WAIT ? -1 : 0, on_pcall, k,
	                         &k->id, e);
	json_decref(body);
	if (rc < 0) {
		free(k);
		return rc;
	}
	k->next = p->calls;
	p->calls = k;
	return 0;
}

int gcs_process_signal(struct gcs_process *p, int sig, gcs_process_done_fn done, void *ud,
                       struct err *e)
{
	if (sig < 0 || sig > 64)
		return err_set(e, -EINVAL, "signal %d out of range", sig);
	json_t *body = json_object();
	if (sig > 0)
		json_object_set_new(body, "Options", json_pack("{s:i}", "Signal", sig));
	return pcall(p, PC_SIGNAL, RPC_SIGNAL_PROCESS, body, done, NULL, ud, e);
}

int gcs_process_resize(struct gcs_process *p, uint16_t height, uint16_t width,
                       gcs_process_done_fn done, void *ud, struct err *e)
{
	json_t *body = json_pack("{s:i,s:i}", "Height", (int)height, "Width", (int)width);
	return pcall(p, PC_RESIZE, RPC_RESIZE_CONSOLE, body, done, NULL, ud, e);
}

int gcs_process_wait(struct gcs_process *p, uint32_t timeout_ms, gcs_process_wait_fn done, void *ud,
                     struct err *e)
{
	json_t *body = json_pack("{s:I}", "TimeoutInMs", (json_int_t)timeout_ms);
	return pcall(p, PC_WAIT, RPC_WAIT_FOR_PROCESS, body, NULL, done, ud, e);
}

int gcs_process_write_stdin(struct gcs_process *p, const void *data, size_t n, struct err *e)
{
	if (!p->relay[0])
		return err_set(e, -EPIPE, "process has no stdin");
	return iorelay_write(p->relay[0], data, n, e);
}

int gcs_process_close_stdin(struct gcs_process *p, struct err *e)
{
	if (!p->relay[0])
		return 0;
	return iorelay_close_write(p->relay[0], e);
}

void gcs_process_get_state(const struct gcs_process *p, struct gcs_process_state *out)
{
	memset(out, 0, sizeof(*out));
	out->pid = p->pid;
	out->stdin_port = p->port[0];
	out->stdout_port = p->port[1];
	out->stderr_port = p->port[2];
	out->wait_pending = p->wait_pending;
	out->wait_id = p->wait_id;
	out->stdin_bytes = p->relay[0] ? iorelay_bytes(p->relay[0]) : 0;
	out->stdout_bytes = p->relay[1] ? iorelay_bytes(p->relay[1]) : 0;
	out->stderr_bytes = p->relay[2] ? iorelay_bytes(p->relay[2]) : 0;
	out->exited = p->have_exit && p->exit_res.status == 0;
	out->exit_code = p->exit_code;
}
