/* Host-side process objects: build ExecuteProcess (container init, exec, or UVM process) with
 * the bridge/msg.h structs, own the stdio relays of its ports (resume-capable, see
 * host/iorelay.h), chain the infinite WaitForProcess right after the ExecuteProcess response,
 * and report the exit once the code is known and every output stream has been flushed.  For
 * migration: export the per-process state, open a process "with IO" on a host taking over
 * (saved ports, adopted wait id, re-subscribed wait with ferry-gcs or a 50 ms exit probe), and
 * follow cut / relisten / renegotiation.
 * See host/process.h for the contract. */
#include "host/process.h"

#include <errno.h>
#include <string.h>

#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/iorelay.h"

#define EXIT_PROBE_TIMEOUT_MS 50 /* hcsshim exitProbeTimeoutMs */

#define DEFAULT_UVM_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum pcall_kind { PC_SIGNAL, PC_RESIZE, PC_WAIT, PC_PROBE };

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
	bool adopted;      /* opened with gcs_process_open */
	ev_timer dial_tmo; /* after ExecuteProcess: every stdio port must have been dialled */
	unsigned depth;
	bool free_pending;
};

static void process_destroy(struct gcs_process *p)
{
	ev_timer_stop(gcs_client_loop(p->c), &p->dial_tmo);
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
static uint32_t exit_code_of(struct gcs_result *r, const struct bridge_wait_resp *resp)
{
	if (r->status == -EREMOTEIO && r->hresult == HR_ERR_NOT_FOUND) {
		memset(r, 0, sizeof(*r));
		return 0;
	}
	if (r->status != 0 || !resp)
		return 0;
	return resp->exit_code;
}

/* In resume mode output streams end with the exit (the guest reports it after their final
 * acknowledgement): let them finish once their sinks drained. */
static void finish_output(struct gcs_process *p)
{
	for (int i = 1; i < 3; i++)
		if (p->relay[i] && iorelay_is_resume(p->relay[i]))
			iorelay_finish(p->relay[i]);
}

static void on_wait(struct gcs_client *c, const struct gcs_result *r, const void *resp, void *ud)
{
	struct gcs_process *p = ud;
	(void)c;
	enter(p);
	p->wait_pending = false;
	p->exit_res = *r;
	p->exit_code = exit_code_of(&p->exit_res, resp);
	p->have_exit = true;
	if (p->exit_res.status == 0)
		finish_output(p);
	maybe_report_exit(p);
	leave(p);
}

/* A re-subscribed wait (on_negotiated) lost with the connection before it was sent is not an
 * exit: keep it as the process's wait (exported as such) and send it again after the next
 * renegotiation; ferry-gcs answers a re-sent wait from the retained code. */
static void on_resub_wait(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                          void *ud)
{
	struct gcs_process *p = ud;
	if (r->status == -ECONNRESET && gcs_client_resumable(c)) {
		log_debug("re-subscribe wait pid=%u: %s (again after the re-dial)", p->pid,
		          r->err.msg);
		return;
	}
	on_wait(c, r, resp, ud);
}

static int send_wait_cb(struct gcs_process *p, gcs_msg_fn cb, struct err *e)
{
	struct bridge_wait_req req = {.process_id = p->pid, .timeout_in_ms = GCS_INFINITE_WAIT};
	uint64_t id = 0;
	int rc = gcs_client_call_msg(p->c, RPC_WAIT_FOR_PROCESS, p->cid, BMSG_WAIT_REQ, &req,
	                             BMSG_WAIT_RESP, -1, cb, p, &id, e);
	if (rc == 0) {
		p->wait_pending = true;
		p->wait_id = id;
	}
	return rc;
}

static int send_wait(struct gcs_process *p, struct err *e)
{
	return send_wait_cb(p, on_wait, e);
}

static void on_exec(struct gcs_client *c, const struct gcs_result *r, const void *resp, void *ud)
{
	struct gcs_process *p = ud;
	struct gcs_result rr = *r;
	(void)c;
	enter(p);
	p->exec_pending = false;
	if (rr.status == 0) {
		const struct bridge_exec_resp *x = resp;
		if (x->process_id == 0)
			rr.status = err_set(&rr.err, -EBADMSG, "ExecuteProcess: no ProcessId");
		else
			p->pid = x->process_id;
	}
	/* Right away, with no timeout, as the Go host does. */
	if (rr.status == 0 && send_wait(p, &rr.err) < 0)
		rr.status = rr.err.code;
	if (rr.status < 0) {
		p->failed = true;
		for (int i = 0; i < 3; i++) {
			iorelay_free(p->relay[i]);
			p->relay[i] = NULL;
		}
	} else {
		p->started = true;
		ev_timer_set(&p->dial_tmo, gcs_client_stdio_dial_timeout_ms(p->c) / 1000.0, 0.);
		ev_timer_start(gcs_client_loop(p->c), &p->dial_tmo);
	}
	if (p->ops.on_started)
		p->ops.on_started(p, &rr, p->ud);
	leave(p);
}

/* The guest answered ExecuteProcess (it dials every stdio port before answering) and some port
 * still has not been dialled: fail the process, naming it and the port, instead of waiting for
 * the stream for ever. */
static void on_dial_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gcs_process *p = w->data;
	(void)loop;
	(void)revents;
	static const char *const names[3] = {"stdin", "stdout", "stderr"};
	int missing = -1;
	for (int i = 0; i < 3 && missing < 0; i++)
		if (p->relay[i] && !iorelay_dialled(p->relay[i]))
			missing = i;
	if (missing < 0 || p->exit_reported)
		return;
	enter(p);
	if (p->wait_pending) {
		gcs_client_cancel(p->c, p->wait_id);
		p->wait_pending = false;
	}
	memset(&p->exit_res, 0, sizeof(p->exit_res));
	p->exit_res.status = err_set(&p->exit_res.err, -ETIMEDOUT,
	                             "process pid=%u: the guest did not connect its %s (stdio port "
	                             "%#x) within %d ms of starting it",
	                             p->pid, names[missing], p->port[missing],
	                             gcs_client_stdio_dial_timeout_ms(p->c));
	p->have_exit = true;
	for (int i = 0; i < 3; i++) {
		iorelay_free(p->relay[i]);
		p->relay[i] = NULL;
	}
	maybe_report_exit(p);
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

static enum iorelay_mode relay_mode(struct iorelay *r, struct session_auth *auth, void *ud)
{
	struct gcs_process *p = ud;
	(void)r;
	if (!gcs_client_is_ready(p->c))
		return IORELAY_MODE_UNKNOWN;
	if (!gcs_client_stdio_resume(p->c))
		return IORELAY_MODE_PLAIN;
	gcs_client_stdio_auth(p->c, auth);
	return IORELAY_MODE_RESUME;
}

/* ---- client hooks ---- */

static void on_probe(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	(void)ud;
	if (r->status != 0 || p->have_exit)
		return; /* still running (timeout) or not found: the adopted wait will answer */
	/* Exited in the blackout: the probe got the retained code. */
	if (p->wait_pending) {
		gcs_client_cancel(p->c, p->wait_id);
		p->wait_pending = false;
	}
	p->exit_res = *r;
	p->exit_code = code;
	p->have_exit = true;
	finish_output(p);
	maybe_report_exit(p);
}

static int pcall(struct gcs_process *p, enum pcall_kind kind, uint32_t rpc,
                 enum bridge_msg_kind req_kind, void *req, gcs_process_done_fn done,
                 gcs_process_wait_fn wait_done, void *ud, struct err *e);

static void on_negotiated(struct gcs_client_link *l, bool reconnect)
{
	struct gcs_process *p =
	    (struct gcs_process *)((char *)l - offsetof(struct gcs_process, link));
	enter(p);
	for (int i = 0; i < 3; i++)
		if (p->relay[i])
			iorelay_mode_changed(p->relay[i]);
	if (reconnect && p->started && !p->have_exit && !p->free_pending) {
		struct err e;
		if (p->wait_pending && gcs_client_stdio_resume(p->c)) {
			/* ferry-gcs: re-subscribe.  The adopted (or our own) wait may never have
			 * reached the guest: a request written just before the cut can die unread
			 * with the connection, and a 50 ms probe only covers exits that happen
			 * within 50 ms.  An infinite wait sent now replaces it (an exit of the
			 * blackout is answered at once from the retained code); the old id becomes
			 * an orphan whose answer is dropped, and ferry-gcs answers that old wait
			 * with a timeout as soon as this one arrives (guest/handlers.c). */
			uint64_t old = p->wait_id;
			if (send_wait_cb(p, on_resub_wait, &e) < 0)
				log_warn("re-subscribe wait pid=%u: %s", p->pid, e.msg);
			else
				gcs_client_orphan_call(p->c, old);
		} else {
			/* hcsshim's exitProbeTimeoutMs: a plain Linux GCS keeps the source's
			 * wait across the transport swap. */
			struct bridge_wait_req req = {.timeout_in_ms = EXIT_PROBE_TIMEOUT_MS};
			if (pcall(p, PC_PROBE, RPC_WAIT_FOR_PROCESS, BMSG_WAIT_REQ, &req, NULL,
			          on_probe, NULL, &e) < 0)
				log_warn("exit probe pid=%u: %s", p->pid, e.msg);
		}
	}
	leave(p);
}

static void on_cut(struct gcs_client_link *l)
{
	struct gcs_process *p =
	    (struct gcs_process *)((char *)l - offsetof(struct gcs_process, link));
	for (int i = 0; i < 3; i++)
		if (p->relay[i])
			iorelay_cut(p->relay[i]);
}

static int on_relisten(struct gcs_client_link *l, struct err *e)
{
	struct gcs_process *p =
	    (struct gcs_process *)((char *)l - offsetof(struct gcs_process, link));
	for (int i = 0; i < 3; i++)
		if (p->relay[i] && !p->relay_done[i] && iorelay_relisten(p->relay[i], e) < 0)
			return e->code;
	return 0;
}

static struct gcs_process *process_new(struct gcs_client *c, const char *cid,
                                       const struct gcs_process_ops *ops, void *ud)
{
	struct gcs_process *p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->cid = xstrdup(cid);
	if (ops)
		p->ops = *ops;
	p->ud = ud;
	p->link.kind = GCS_LINK_PROCESS;
	p->link.on_client_free = on_client_free;
	p->link.on_negotiated = on_negotiated;
	p->link.on_cut = on_cut;
	p->link.on_relisten = on_relisten;
	ev_timer_init(&p->dial_tmo, on_dial_timeout, 0., 0.);
	p->dial_tmo.data = p;
	gcs_client_link_add(c, &p->link);
	return p;
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
	struct bridge_exec_req req;
	memset(&req, 0, sizeof(req));
	struct bridge_process_params *pp = &req.params;
	size_t nargs = 0, nenv = 0;
	const char *const dflt[] = {DEFAULT_UVM_PATH, NULL};
	const char *const *envv = cfg->env ? cfg->env : dflt;
	if (uvm) {
		while (cfg->argv[nargs])
			nargs++;
		while (envv[nenv])
			nenv++;
	}
	_cleanup_free_ char **args = xcalloc(nargs + 1, sizeof(*args));
	_cleanup_free_ struct bridge_kv *env = xcalloc(nenv + 1, sizeof(*env));
	_cleanup_free_ char *envbuf = NULL;
	if (uvm) {
		for (size_t i = 0; i < nargs; i++)
			args[i] = (char *)cfg->argv[i];
		pp->command_args = args;
		pp->n_command_args = nargs;
		pp->working_directory = (char *)(cfg->cwd ? cfg->cwd : "/");
		size_t total = 0;
		for (size_t i = 0; i < nenv; i++)
			total += strlen(envv[i]) + 1;
		envbuf = xmalloc(total + 1);
		char *w = envbuf;
		for (size_t i = 0; i < nenv; i++) {
			const char *eq = strchr(envv[i], '=');
			if (!eq || eq == envv[i]) {
				err_set(e, -EINVAL, "environment entry \"%.60s\" is not K=V",
				        envv[i]);
				return NULL;
			}
			size_t len = strlen(envv[i]);
			memcpy(w, envv[i], len + 1);
			w[eq - envv[i]] = '\0';
			/* The Go host drops entries with empty values. */
			if (eq[1]) {
				env[pp->n_environment].key = w;
				env[pp->n_environment].value = w + (eq - envv[i]) + 1;
				pp->n_environment++;
			}
			w += len + 1;
		}
		pp->environment = env;
		pp->emulate_console = cfg->emulate_console;
	} else {
		pp->oci_process = cfg->oci_process;
	}
	pp->create_std_in_pipe = cfg->stdio.want_stdin;
	pp->create_std_out_pipe = cfg->stdio.want_stdout;
	pp->create_std_err_pipe = cfg->stdio.want_stderr;

	struct gcs_process *p =
	    process_new(c, uvm ? GCS_NULL_CONTAINER_ID : cfg->container_id, ops, ud);
	/* Ports in stdin, stdout, stderr order, only for requested pipes; listen first. */
	const bool want[3] = {cfg->stdio.want_stdin, cfg->stdio.want_stdout,
	                      cfg->stdio.want_stderr};
	const int fds[3] = {cfg->stdio.stdin_fd, cfg->stdio.stdout_fd, cfg->stdio.stderr_fd};
	struct iorelay_ops rops = {.on_data = relay_data, .on_done = relay_done};
	uint32_t *vs[3] = {&req.stdio.std_in, &req.stdio.std_out, &req.stdio.std_err};
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		p->port[i] = gcs_client_alloc_stdio_port(c);
		struct iorelay_resume_config rc = {.mode = relay_mode, .offset_known = true};
		p->relay[i] = iorelay_new_resume(gcs_client_loop(c), gcs_client_addr(c), p->port[i],
		                                 i == 0 ? IORELAY_TO_GUEST : IORELAY_FROM_GUEST,
		                                 fds[i], &rops, p, &rc, e);
		if (!p->relay[i])
			goto fail;
		*vs[i] = p->port[i];
	}
	if (gcs_client_call_msg(c, RPC_EXECUTE_PROCESS, p->cid, BMSG_EXEC_REQ, &req, BMSG_EXEC_RESP,
	                        0, on_exec, p, &p->exec_id, e) < 0)
		goto fail;
	p->exec_pending = true;
	return p;
fail:
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

static void on_pcall(struct gcs_client *c, const struct gcs_result *r, const void *resp, void *ud)
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
	if (k->kind == PC_WAIT || k->kind == PC_PROBE) {
		if (k->kind == PC_PROBE && rr.status == -EREMOTEIO &&
		    rr.hresult == HR_ERR_NOT_FOUND) {
			/* Already delivered to the adopted wait: not an exit code. */
		} else {
			uint32_t code = exit_code_of(&rr, resp);
			if (k->wait_done)
				k->wait_done(p, &rr, code, k->ud);
		}
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

static int pcall(struct gcs_process *p, enum pcall_kind kind, uint32_t rpc,
                 enum bridge_msg_kind req_kind, void *req, gcs_process_done_fn done,
                 gcs_process_wait_fn wait_done, void *ud, struct err *e)
{
	if (!p->started)
		return err_set(e, -EINVAL, "%s: process not started", bridge_type_name(rpc));
	struct pcall *k = xcalloc(1, sizeof(*k));
	k->p = p;
	k->kind = kind;
	k->done = done;
	k->wait_done = wait_done;
	k->ud = ud;
	/* Every per-process request has ProcessId right after the base. */
	switch (req_kind) {
	case BMSG_WAIT_REQ:
		((struct bridge_wait_req *)req)->process_id = p->pid;
		break;
	case BMSG_SIGNAL_REQ:
		((struct bridge_signal_req *)req)->process_id = p->pid;
		break;
	case BMSG_RESIZE_REQ:
		((struct bridge_resize_req *)req)->process_id = p->pid;
		break;
	default:
		break;
	}
	enum bridge_msg_kind rk = req_kind == BMSG_WAIT_REQ ? BMSG_WAIT_RESP : BMSG_RESP_BASE;
	int rc = gcs_client_call_msg(p->c, rpc, p->cid, req_kind, req, rk, kind == PC_WAIT ? -1 : 0,
	                             on_pcall, k, &k->id, e);
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
	struct bridge_signal_req req = {.has_options = sig > 0, .signal = sig};
	return pcall(p, PC_SIGNAL, RPC_SIGNAL_PROCESS, BMSG_SIGNAL_REQ, &req, done, NULL, ud, e);
}

int gcs_process_resize(struct gcs_process *p, uint16_t height, uint16_t width,
                       gcs_process_done_fn done, void *ud, struct err *e)
{
	struct bridge_resize_req req = {.height = height, .width = width};
	return pcall(p, PC_RESIZE, RPC_RESIZE_CONSOLE, BMSG_RESIZE_REQ, &req, done, NULL, ud, e);
}

int gcs_process_wait(struct gcs_process *p, uint32_t timeout_ms, gcs_process_wait_fn done, void *ud,
                     struct err *e)
{
	struct bridge_wait_req req = {.timeout_in_ms = timeout_ms};
	return pcall(p, PC_WAIT, RPC_WAIT_FOR_PROCESS, BMSG_WAIT_REQ, &req, NULL, done, ud, e);
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

/* ---- migration ---- */

bool gcs_process_finished(const struct gcs_process *p)
{
	return p->exit_reported || p->failed;
}

void gcs_process_export(const struct gcs_process *p, struct gcs_process_mstate *out)
{
	memset(out, 0, sizeof(*out));
	out->container_id = xstrdup(p->cid);
	out->pid = p->pid;
	out->wait_pending = p->wait_pending;
	out->wait_id = p->wait_id;
	for (int i = 0; i < 3; i++) {
		struct gcs_stream_state *s = &out->stdio[i];
		s->port = p->port[i];
		if (!p->relay[i]) {
			s->offset_known = true;
			s->eof = p->port[i] != 0;
			continue;
		}
		struct iorelay_resume_state rs;
		iorelay_get_resume_state(p->relay[i], &rs);
		s->offset = rs.offset;
		s->offset_known = rs.offset_known;
		s->eof = rs.eof;
		if (rs.n_unacked) {
			s->unacked = xmalloc(rs.n_unacked);
			memcpy(s->unacked, rs.unacked, rs.n_unacked);
			s->n_unacked = rs.n_unacked;
		}
	}
}

void gcs_process_mstate_fini(struct gcs_process_mstate *s)
{
	if (!s)
		return;
	free(s->container_id);
	for (int i = 0; i < 3; i++)
		free(s->stdio[i].unacked);
	memset(s, 0, sizeof(*s));
}

struct gcs_process *gcs_process_open(struct gcs_client *c, const struct gcs_process_mstate *st,
                                     const struct gcs_stdio_config *stdio,
                                     const struct gcs_process_ops *ops, void *ud, struct err *e)
{
	if (!st->wait_pending || st->pid == 0) {
		err_set(e, -EINVAL, "open process: a pid and an outstanding wait id are required");
		return NULL;
	}
	if (!st->container_id || !*st->container_id) {
		err_set(e, -EINVAL, "open process: no container id");
		return NULL;
	}
	struct gcs_process *p = process_new(c, st->container_id, ops, ud);
	p->pid = st->pid;
	p->started = true;
	p->adopted = true;
	const int fds[3] = {stdio ? stdio->stdin_fd : -1, stdio ? stdio->stdout_fd : -1,
	                    stdio ? stdio->stderr_fd : -1};
	struct iorelay_ops rops = {.on_data = relay_data, .on_done = relay_done};
	for (int i = 0; i < 3; i++) {
		const struct gcs_stream_state *s = &st->stdio[i];
		if (!s->port)
			continue;
		p->port[i] = s->port;
		struct iorelay_resume_config rc = {
		    .mode = relay_mode,
		    .offset = s->offset,
		    .offset_known = i == 0 || s->offset_known,
		    .unacked = s->unacked,
		    .n_unacked = s->n_unacked,
		    .eof = i == 0 && s->eof,
		};
		p->relay[i] = iorelay_new_resume(gcs_client_loop(c), gcs_client_addr(c), s->port,
		                                 i == 0 ? IORELAY_TO_GUEST : IORELAY_FROM_GUEST,
		                                 fds[i], &rops, p, &rc, e);
		if (!p->relay[i]) {
			err_prefix(e, "open process pid=%u", st->pid);
			goto fail;
		}
	}
	if (gcs_client_preregister_wait(c, st->wait_id, on_wait, p, e) < 0)
		goto fail;
	p->wait_pending = true;
	p->wait_id = st->wait_id;
	return p;
fail:
	process_destroy(p);
	return NULL;
}

int gcs_process_set_stream_offsets(struct gcs_process *p, uint64_t stdout_off, uint64_t stderr_off,
                                   struct err *e)
{
	const uint64_t offs[3] = {UINT64_MAX, stdout_off, stderr_off};
	for (int i = 1; i < 3; i++) {
		if (offs[i] == UINT64_MAX || !p->relay[i])
			continue;
		if (iorelay_set_offset(p->relay[i], offs[i], e) < 0)
			return err_prefix(e, "pid=%u", p->pid);
	}
	return 0;
}

bool gcs_process_stdio_held(const struct gcs_process *p, int stream, uint64_t *hello_offset)
{
	if (stream < 1 || stream > 2 || !p->relay[stream])
		return false;
	return iorelay_held(p->relay[stream], hello_offset);
}

bool gcs_process_stdio_attached(const struct gcs_process *p)
{
	for (int i = 0; i < 3; i++)
		if (p->relay[i] && !iorelay_attached(p->relay[i]))
			return false;
	return true;
}

int gcs_process_describe(const struct gcs_process *p, char *out, size_t n)
{
	int w = snprintf(out, n,
	                 "pid=%u cid=%s started=%d wait_pending=%d wait_id=%llu "
	                 "have_exit=%d reported=%d relay_done=%d%d%d",
	                 p->pid, p->cid, p->started, p->wait_pending,
	                 (unsigned long long)p->wait_id, p->have_exit, p->exit_reported,
	                 p->relay_done[0], p->relay_done[1], p->relay_done[2]);
	for (int i = 0; i < 3; i++) {
		if (!p->relay[i] || w < 0 || (size_t)w >= n)
			continue;
		out[w++] = '\n';
		w += iorelay_describe(p->relay[i], out + w, n - (size_t)w);
	}
	return w;
}

static struct gcs_process *from_link(struct gcs_client_link *l)
{
	if (l->kind != GCS_LINK_PROCESS)
		return NULL;
	return (struct gcs_process *)((char *)l - offsetof(struct gcs_process, link));
}

struct gcs_process *gcs_client_find_process(struct gcs_client *c, const char *container_id,
                                            uint32_t pid)
{
	for (struct gcs_client_link *l = gcs_client_link_first(c); l;
	     l = gcs_client_link_next(c, l)) {
		struct gcs_process *p = from_link(l);
		if (p && !p->free_pending && p->pid == pid &&
		    (!container_id || strcmp(container_id, p->cid) == 0))
			return p;
	}
	return NULL;
}

size_t gcs_client_processes(struct gcs_client *c, struct gcs_process **out, size_t max)
{
	size_t n = 0;
	for (struct gcs_client_link *l = gcs_client_link_first(c); l;
	     l = gcs_client_link_next(c, l)) {
		struct gcs_process *p = from_link(l);
		if (p && !p->free_pending) {
			if (n < max)
				out[n] = p;
			n++;
		}
	}
	return n < max ? n : max;
}

int gcs_client_set_stream_offsets(struct gcs_client *c, const char *container_id, uint32_t pid,
                                  uint64_t stdout_off, uint64_t stderr_off, struct err *e)
{
	struct gcs_process *p = gcs_client_find_process(c, container_id, pid);
	if (!p)
		return err_set(e, -ENOENT, "set stream offsets: no process pid=%u", pid);
	return gcs_process_set_stream_offsets(p, stdout_off, stderr_off, e);
}
