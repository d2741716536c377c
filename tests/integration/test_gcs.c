/* Integration test of the host GCS client against the real ferry-gcs binary: the test
 * enters a private mount namespace with a pure cgroup2 mount (so crun works), starts
 * $BUILD/ferry-gcs as a child dialling hybrid:<tmp>/v.sock, and drives it with
 * host/gcs_client.h + host/process.h over a real libev loop: echo (exact bytes, > 64 KiB),
 * stdin, exit codes, exec, signals, wait timeout, terminal + resize, process list, delete,
 * exit notifications, UVM processes, and the 64 KiB cap (the client kills the bridge on any
 * bigger guest message, so "bridge still up" is the assertion). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <jansson.h>

#include "bridge/frame.h"
#include "bridge/proto.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"
#include "tests/lib/hostenv.h"
#include "tests/lib/testenv.h"

#define STEP_TIMEOUT_S 20.0

struct env {
	struct hostenv h; /* loop, tmp dir, client, the agent */
	bool closed;
	struct err close_err;
	int seq;
	char exit_ids[64][64];
	char exit_types[64][32];
	int nexits;
};

static struct env *E;

/* ---- loop helpers ---- */

/* Run the loop until *flag or the timeout; returns *flag. */
static bool run_until(const bool *flag, double timeout_s)
{
	return hostenv_run_until(E->h.loop, flag, timeout_s);
}

/* ---- client callbacks ---- */

static void on_container_exit(struct gcs_client *c, const char *id, const char *type, void *ud)
{
	struct env *env = ud;
	(void)c;
	if (env->nexits < 64) {
		snprintf(env->exit_ids[env->nexits], sizeof(env->exit_ids[0]), "%s", id);
		snprintf(env->exit_types[env->nexits], sizeof(env->exit_types[0]), "%s", type);
		env->nexits++;
	}
}

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	struct env *env = ud;
	(void)c;
	env->closed = true;
	env->close_err = *why;
	fprintf(stderr, "bridge closed: %s\n", why->msg);
}

/* ---- simple RPC completion ---- */

static struct gcs_result wait_done(struct hostenv_done *d)
{
	assert_true(run_until(&d->done, STEP_TIMEOUT_S));
	if (d->r.status < 0)
		print_message("rpc failed: %s\n", d->r.err.msg); /* context for the assertion */
	return d->r;
}

/* ---- processes ---- */

struct proc {
	struct gcs_process *p;
	bool started, exited;
	struct gcs_result start_res, exit_res;
	uint32_t code;
	struct buf out, err;
};

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct proc *x = ud;
	(void)p;
	x->started = true;
	x->start_res = *r;
	if (r->status < 0)
		fprintf(stderr, "exec failed: %s\n", r->err.msg);
}

static void p_output(struct gcs_process *p, int stream, const void *data, size_t n, void *ud)
{
	struct proc *x = ud;
	(void)p;
	buf_append(stream == 1 ? &x->out : &x->err, data, n);
}

static void p_exit(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct proc *x = ud;
	(void)p;
	x->exited = true;
	x->exit_res = *r;
	x->code = code;
}

static const struct gcs_process_ops proc_ops = {
    .on_started = p_started, .on_output = p_output, .on_exit = p_exit};

static void proc_start(struct proc *x, const struct gcs_process_config *cfg)
{
	struct err e;
	memset(x, 0, sizeof(*x));
	buf_init(&x->out);
	buf_init(&x->err);
	x->p = gcs_process_start(E->h.c, cfg, &proc_ops, x, &e);
	if (!x->p)
		fail_msg("gcs_process_start: %s", e.msg);
	assert_true(run_until(&x->started, STEP_TIMEOUT_S));
	assert_int_equal(x->start_res.status, 0);
	assert_true(gcs_process_pid(x->p) > 0);
}

static uint32_t proc_wait_exit(struct proc *x)
{
	assert_true(run_until(&x->exited, STEP_TIMEOUT_S));
	if (x->exit_res.status != 0)
		fail_msg("wait: %s", x->exit_res.err.msg);
	return x->code;
}

static void proc_fini(struct proc *x)
{
	gcs_process_free(x->p);
	buf_fini(&x->out);
	buf_fini(&x->err);
}

static bool buf_eq(const struct buf *b, const char *s)
{
	size_t n = strlen(s);
	return buf_avail(b) == n && (n == 0 || memcmp(buf_head(b), s, n) == 0);
}

static bool buf_has(const struct buf *b, const char *s)
{
	return buf_avail(b) > 0 && memmem(buf_head(b), buf_avail(b), s, strlen(s)) != NULL;
}

/* ---- per-call results ---- */

struct waitres {
	bool done;
	struct gcs_result r;
	uint32_t code;
};

static void wait_cb(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct waitres *w = ud;
	(void)p;
	w->done = true;
	w->r = *r;
	w->code = code;
}

#define PS_MAX 8192
struct psres {
	bool done;
	struct gcs_result r;
	uint32_t pids[PS_MAX];
	size_t n;
};

static void ps_cb(struct gcs_client *c, const struct gcs_result *r, const uint32_t *pids, size_t n,
                  void *ud)
{
	struct psres *ps = ud;
	(void)c;
	ps->done = true;
	ps->r = *r;
	ps->n = n < PS_MAX ? n : PS_MAX;
	if (ps->n)
		memcpy(ps->pids, pids, ps->n * sizeof(*pids));
}

static void pdone_cb(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct hostenv_done *d = ud;
	(void)p;
	d->done = true;
	d->r = *r;
}

/* ---- containers ---- */

static char *new_id(const char *what)
{
	return xasprintf("t%d-%d-%s", (int)getpid(), ++E->seq, what); /* unique: cgroup names */
}

static void create_container(const char *id, const char *const *args, bool terminal)
{
	struct err e;
	json_t *spec = testenv_oci_spec(E->h.rootfs, args, terminal);
	_cleanup_free_ char *bundle = xasprintf("%s/gcs/c/%s", E->h.tmp, id);
	struct gcs_container_config cc = {.bundle_path = bundle, .oci_spec = spec};
	struct hostenv_done d = {0};
	if (gcs_client_create_container(E->h.c, id, &cc, hostenv_on_done, &d, &e) < 0)
		fail_msg("create: %s", e.msg);
	json_decref(spec);
	struct gcs_result r = wait_done(&d);
	if (r.status < 0)
		fail_msg("create %s: %s", id, r.err.msg);
	struct hostenv_done s = {0};
	assert_int_equal(gcs_client_start_container(E->h.c, id, hostenv_on_done, &s, &e), 0);
	assert_int_equal(wait_done(&s).status, 0);
}

static void delete_container(const char *id)
{
	struct err e;
	struct hostenv_done d = {0};
	assert_int_equal(gcs_client_delete_container(E->h.c, id, hostenv_on_done, &d, &e), 0);
	struct gcs_result r = wait_done(&d);
	if (r.status < 0)
		fail_msg("delete %s: %s", id, r.err.msg);
}

/* Start the init of container `id` with the given pipes (output via callbacks). */
static void start_init(struct proc *x, const char *id, bool in, bool out, bool err)
{
	struct gcs_process_config pc = {.container_id = id,
	                                .stdio = {.want_stdin = in,
	                                          .want_stdout = out,
	                                          .want_stderr = err,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	proc_start(x, &pc);
}

static void exec_in(struct proc *x, const char *id, const char *const *args, bool terminal)
{
	json_t *op = testenv_oci_process(args, terminal);
	struct gcs_process_config pc = {.container_id = id,
	                                .oci_process = op,
	                                .stdio = {.want_stdout = true,
	                                          .want_stderr = !terminal,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	proc_start(x, &pc);
	json_decref(op);
}

/* Run a one-shot container: create, start, init with stdout+stderr, exit code, delete. */
static uint32_t run_container(const char *const *args, struct proc *x)
{
	_cleanup_free_ char *id = new_id("run");
	create_container(id, args, false);
	start_init(x, id, false, true, true);
	uint32_t code = proc_wait_exit(x);
	delete_container(id);
	return code;
}

static int find_exit(const char *id)
{
	for (int i = 0; i < E->nexits; i++)
		if (strcmp(E->exit_ids[i], id) == 0)
			return i;
	return -1;
}

static void wait_exit_notification(const char *id, const char *type)
{
	bool have = false;
	for (int tries = 0; tries < 200 && !have; tries++) {
		have = find_exit(id) >= 0;
		if (!have) {
			bool never = false;
			run_until(&never, 0.02);
		}
	}
	if (!have) {
		for (int i = 0; i < E->nexits; i++)
			fprintf(stderr, "seen exit %s %s\n", E->exit_ids[i], E->exit_types[i]);
		fail_msg("no exit notification for %s", id);
	}
	assert_string_equal(E->exit_types[find_exit(id)], type);
}

/* ShutdownForced: the init dies by SIGKILL (exit 137, a ForcedExit notification when
 * notify is set); then the container is deleted and the init's proc freed. */
static void force_stop_and_delete(const char *id, struct proc *init, bool notify)
{
	struct hostenv_done d = {0};
	struct err e;
	assert_int_equal(gcs_client_shutdown_container(E->h.c, id, false, hostenv_on_done, &d, &e),
	                 0);
	assert_int_equal(wait_done(&d).status, 0);
	assert_int_equal(proc_wait_exit(init), 137);
	if (notify)
		wait_exit_notification(id, "ForcedExit");
	proc_fini(init);
	delete_container(id);
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
	(void)state;
	static struct env env;
	E = &env;
	struct err e;
	struct gcs_client_ops ops = {.on_container_exit = on_container_exit, .on_close = on_close};
	struct hostenv_config hc = {
	    .prefix = "ferry-gcs", .containers = true, .ops = &ops, .ud = &env};
	int rc = hostenv_start(&env.h, &hc, &e);
	if (rc == -EPERM || (rc < 0 && !env.h.tmp)) {
		/* not root, or no cgroup2 namespace / rootfs: every test skips */
		fprintf(stderr, "test_gcs: %s\n", e.msg);
		hostenv_stop(&env.h);
		E = NULL;
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "test_gcs: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (E)
		hostenv_stop(&E->h);
	return 0;
}

static void need_env(void)
{
	if (!E)
		skip();
	assert_false(E->closed);
}

/* ---- tests ---- */

static void test_negotiated_caps(void **state)
{
	(void)state;
	need_env();
	const struct gcs_caps *k = gcs_client_caps(E->h.c);
	assert_non_null(k);
	assert_int_equal(k->version, 4);
	assert_string_equal(k->runtime_os_type, "Linux");
	assert_int_equal(k->schema_major, 2);
	assert_int_equal(k->schema_minor, 1);
	assert_true(k->signal_process_supported);
	assert_true(k->delete_container_state_supported);
	assert_false(k->send_host_create_message);
	/* ferry-gcs answers the FerryStdioResume offer: every stream below uses the handshake. */
	assert_true(k->ferry_stdio_resume);
	assert_true(gcs_client_stdio_resume(E->h.c));
	/* Ids: negotiate took id 0; the counter only rises. */
	uint64_t next = gcs_client_next_bridge_id(E->h.c);
	assert_true(next >= 1);
	struct err e;
	assert_int_equal(gcs_client_set_next_bridge_id(E->h.c, next - 1, &e), -EINVAL);
	assert_int_equal(gcs_client_set_next_stdio_port(E->h.c, GCS_FIRST_STDIO_PORT - 1, &e),
	                 -EINVAL);
}

static void test_echo_exact_and_big(void **state)
{
	(void)state;
	need_env();
	struct proc x;
	const char *const a1[] = {"sh", "-c", "echo hello; printf 'e<&>\\n' >&2", NULL};
	assert_int_equal(run_container(a1, &x), 0);
	assert_true(buf_eq(&x.out, "hello\n"));
	assert_true(buf_eq(&x.err, "e<&>\n"));
	proc_fini(&x);

	/* > 64 KiB, exact bytes: seq 1..40000 is 228,894 bytes. */
	const char *const a2[] = {"seq", "1", "40000", NULL};
	assert_int_equal(run_container(a2, &x), 0);
	struct buf want;
	buf_init(&want);
	for (int i = 1; i <= 40000; i++) {
		char line[16];
		int n = snprintf(line, sizeof(line), "%d\n", i);
		buf_append(&want, line, (size_t)n);
	}
	assert_int_equal(buf_avail(&x.out), buf_avail(&want));
	assert_memory_equal(buf_head(&x.out), buf_head(&want), buf_avail(&want));
	assert_int_equal(buf_avail(&x.err), 0);
	struct gcs_process_state st;
	gcs_process_get_state(x.p, &st);
	assert_int_equal(st.stdout_bytes, buf_avail(&want));
	assert_true(st.exited);
	assert_int_equal(st.stdin_port, 0);
	assert_true(st.stdout_port >= GCS_FIRST_STDIO_PORT);
	assert_int_equal(st.stderr_port, st.stdout_port + 1);
	buf_fini(&want);
	proc_fini(&x);
	assert_false(E->closed);
}

static void test_stdin_round_trip(void **state)
{
	(void)state;
	need_env();
	_cleanup_free_ char *id = new_id("cat");
	const char *const args[] = {"cat", NULL};
	create_container(id, args, false);
	struct proc x;
	start_init(&x, id, true, true, false);
	struct gcs_process_state st;
	gcs_process_get_state(x.p, &st);
	/* Ports in stdin, stdout order, consecutive. */
	assert_int_equal(st.stdout_port, st.stdin_port + 1);
	assert_int_equal(st.stderr_port, 0);
	struct err e;
	size_t n = 300 * 1024;
	char *data = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + (i * 7) % 26);
	assert_int_equal(gcs_process_write_stdin(x.p, data, n, &e), 0);
	assert_int_equal(gcs_process_close_stdin(x.p, &e), 0);
	assert_int_equal(gcs_process_write_stdin(x.p, "x", 1, &e), -EPIPE);
	assert_int_equal(proc_wait_exit(&x), 0);
	assert_int_equal(buf_avail(&x.out), n);
	assert_memory_equal(buf_head(&x.out), data, n);
	free(data);
	proc_fini(&x);
	delete_container(id);
}

static void test_exit_codes(void **state)
{
	(void)state;
	need_env();
	struct proc x;
	const char *const a0[] = {"true", NULL};
	assert_int_equal(run_container(a0, &x), 0);
	proc_fini(&x);
	const char *const a3[] = {"sh", "-c", "exit 3", NULL};
	assert_int_equal(run_container(a3, &x), 3);
	proc_fini(&x);

	/* Killed by a signal: 128 + 9.  The init of a pid namespace ignores signals sent from
	 * inside it, so the victim is an exec'd process. */
	_cleanup_free_ char *id = new_id("kill");
	const char *const sl[] = {"sleep", "30", NULL};
	create_container(id, sl, false);
	struct proc init;
	start_init(&init, id, false, false, false);
	const char *const k9[] = {"sh", "-c", "kill -9 $$", NULL};
	exec_in(&x, id, k9, false);
	assert_int_equal(proc_wait_exit(&x), 137);
	proc_fini(&x);
	/* ShutdownForced: init dies by SIGKILL -> 137 and a ForcedExit notification. */
	force_stop_and_delete(id, &init, true);
	/* After delete the container is gone: a second shutdown is still "success"
	 * (0xC037010E maps to success), a second delete is an error. */
	struct err e;
	struct hostenv_done d2 = {0};
	assert_int_equal(gcs_client_shutdown_container(E->h.c, id, true, hostenv_on_done, &d2, &e),
	                 0);
	assert_int_equal(wait_done(&d2).status, 0);
	struct hostenv_done d3 = {0};
	assert_int_equal(gcs_client_delete_container(E->h.c, id, hostenv_on_done, &d3, &e), 0);
	struct gcs_result r = wait_done(&d3);
	assert_int_equal(r.status, -EREMOTEIO);
	assert_int_equal(r.hresult, HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_false(E->closed);
}

static void test_exec_signal_wait_ps(void **state)
{
	(void)state;
	need_env();
	struct err e;
	_cleanup_free_ char *id = new_id("exec");
	const char *const sl[] = {"sleep", "60", NULL};
	create_container(id, sl, false);
	struct proc init;
	start_init(&init, id, false, true, true);

	/* exec into the running container */
	struct proc x;
	const char *const echo[] = {"sh", "-c", "echo exec-ok; exit 7", NULL};
	exec_in(&x, id, echo, false);
	assert_int_equal(proc_wait_exit(&x), 7);
	assert_true(buf_eq(&x.out, "exec-ok\n"));
	/* Its code was collected, but ferry-gcs keeps it (the Go GCS forgets it, and the Go
	 * host then reads exit code 0): another wait gets the real code again. */
	struct waitres w0 = {0};
	assert_int_equal(gcs_process_wait(x.p, 50, wait_cb, &w0, &e), 0);
	assert_true(run_until(&w0.done, STEP_TIMEOUT_S));
	assert_int_equal(w0.r.status, 0);
	assert_int_equal(w0.code, 7);
	proc_fini(&x);

	/* A wait with a 50 ms timeout on a sleeping process -> 0xC0370109. */
	struct proc s;
	const char *const sl2[] = {"sleep", "60", NULL};
	exec_in(&s, id, sl2, false);
	struct waitres w = {0};
	long long t0 = mono_ns();
	assert_int_equal(gcs_process_wait(s.p, 50, wait_cb, &w, &e), 0);
	assert_true(run_until(&w.done, STEP_TIMEOUT_S));
	assert_true(mono_ns() - t0 >= 45 * 1000000LL);
	assert_int_equal(w.r.status, -EREMOTEIO);
	assert_int_equal(w.r.hresult, HR_VMCOMPUTE_TIMEOUT);
	assert_false(s.exited);
	struct gcs_process_state st;
	gcs_process_get_state(s.p, &st);
	assert_true(st.wait_pending);
	assert_false(st.exited);

	/* Process list contains the init and the sleeping exec. */
	static struct psres ps;
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(gcs_client_get_process_list(E->h.c, id, ps_cb, &ps, &e), 0);
	assert_true(run_until(&ps.done, STEP_TIMEOUT_S));
	assert_int_equal(ps.r.status, 0);
	bool has_init = false, has_exec = false;
	for (size_t i = 0; i < ps.n; i++) {
		has_init |= ps.pids[i] == gcs_process_pid(init.p);
		has_exec |= ps.pids[i] == gcs_process_pid(s.p);
	}
	assert_true(has_init);
	assert_true(has_exec);

	/* SIGTERM -> 143. */
	struct hostenv_done sig = {0};
	assert_int_equal(gcs_process_signal(s.p, SIGTERM, pdone_cb, &sig, &e), 0);
	assert_true(run_until(&sig.done, STEP_TIMEOUT_S));
	assert_int_equal(sig.r.status, 0);
	assert_int_equal(sig.r.hresult, 0);
	assert_int_equal(proc_wait_exit(&s), 143);
	/* Signalling it again: not delivered (HrErrNotFound), which is not an error. */
	struct hostenv_done sig2 = {0};
	assert_int_equal(gcs_process_signal(s.p, SIGTERM, pdone_cb, &sig2, &e), 0);
	assert_true(run_until(&sig2.done, STEP_TIMEOUT_S));
	assert_int_equal(sig2.r.status, 0);
	assert_int_equal(sig2.r.hresult, HR_ERR_NOT_FOUND);
	proc_fini(&s);

	/* Forced shutdown: init dies by SIGKILL, notification ForcedExit. */
	force_stop_and_delete(id, &init, true);
	assert_false(E->closed);
}

static void test_graceful_exit_notification(void **state)
{
	(void)state;
	need_env();
	struct err e;
	/* A shell init that handles SIGTERM (a pid-namespace init ignores it otherwise). */
	_cleanup_free_ char *id = new_id("term");
	const char *const args[] = {"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done",
	                            NULL};
	create_container(id, args, false);
	struct proc init;
	start_init(&init, id, false, true, true);
	bool never = false;
	run_until(&never, 0.2); /* let the shell install its trap */
	struct hostenv_done d = {0};
	assert_int_equal(gcs_client_shutdown_container(E->h.c, id, true, hostenv_on_done, &d, &e),
	                 0);
	assert_int_equal(wait_done(&d).status, 0);
	assert_int_equal(proc_wait_exit(&init), 0);
	wait_exit_notification(id, "GracefulExit");
	proc_fini(&init);
	delete_container(id);

	/* A container whose init just exits: UnexpectedExit. */
	_cleanup_free_ char *id2 = new_id("unexp");
	const char *const a2[] = {"true", NULL};
	create_container(id2, a2, false);
	start_init(&init, id2, false, true, true);
	assert_int_equal(proc_wait_exit(&init), 0);
	wait_exit_notification(id2, "UnexpectedExit");
	proc_fini(&init);
	delete_container(id2);
	assert_false(E->closed);
}

static void test_terminal_resize(void **state)
{
	(void)state;
	need_env();
	struct err e;
	_cleanup_free_ char *id = new_id("tty");
	const char *const args[] = {
	    "sh", "-c",
	    "for i in $(seq 100); do s=$(stty size); [ \"$s\" = \"33 111\" ] && break; "
	    "sleep 0.05; done; echo \"size=$s\"; [ -t 1 ] && echo tty-yes",
	    NULL};
	create_container(id, args, true);
	struct proc x;
	start_init(&x, id, false, true, false);
	struct hostenv_done d = {0};
	assert_int_equal(gcs_process_resize(x.p, 33, 111, pdone_cb, &d, &e), 0);
	assert_true(run_until(&d.done, STEP_TIMEOUT_S));
	assert_int_equal(d.r.status, 0);
	assert_int_equal(proc_wait_exit(&x), 0);
	if (!buf_has(&x.out, "size=33 111") || !buf_has(&x.out, "tty-yes"))
		fail_msg("terminal output: %.*s", (int)buf_avail(&x.out), buf_head(&x.out));
	proc_fini(&x);
	delete_container(id);

	/* Resize of a non-tty process fails in the guest. */
	_cleanup_free_ char *id2 = new_id("notty");
	const char *const sl[] = {"sleep", "60", NULL};
	create_container(id2, sl, false);
	struct proc init;
	start_init(&init, id2, false, false, false);
	struct hostenv_done d2 = {0};
	assert_int_equal(gcs_process_resize(init.p, 10, 10, pdone_cb, &d2, &e), 0);
	assert_true(run_until(&d2.done, STEP_TIMEOUT_S));
	assert_int_equal(d2.r.status, -EREMOTEIO);
	/* A terminal exec into the same container, resized while it polls its size. */
	struct proc t;
	const char *const st[] = {
	    "sh", "-c",
	    "for i in $(seq 100); do s=$(stty size 2>/dev/null); [ \"$s\" = \"20 70\" ] && "
	    "break; sleep 0.05; done; echo \"exec-size=$s\"",
	    NULL};
	exec_in(&t, id2, st, true);
	struct hostenv_done d3 = {0};
	assert_int_equal(gcs_process_resize(t.p, 20, 70, pdone_cb, &d3, &e), 0);
	assert_true(run_until(&d3.done, STEP_TIMEOUT_S));
	assert_int_equal(d3.r.status, 0);
	assert_int_equal(proc_wait_exit(&t), 0);
	if (!buf_has(&t.out, "exec-size=20 70"))
		fail_msg("stty size: \"%.*s\"", (int)buf_avail(&t.out), buf_head(&t.out));
	proc_fini(&t);
	force_stop_and_delete(id2, &init, false);
	assert_false(E->closed);
}

static void test_uvm_process(void **state)
{
	(void)state;
	need_env();
	struct proc x;
	const char *const argv[] = {"/bin/sh", "-c", "echo uvm-$FOO; pwd; exit 5", NULL};
	const char *const env[] = {"PATH=/bin:/usr/bin", "FOO=ok", NULL};
	struct gcs_process_config pc = {.argv = argv,
	                                .cwd = "/tmp",
	                                .env = env,
	                                .stdio = {.want_stdout = true,
	                                          .want_stderr = true,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	proc_start(&x, &pc);
	assert_string_equal(gcs_process_container_id(x.p), GCS_NULL_CONTAINER_ID);
	assert_int_equal(proc_wait_exit(&x), 5);
	assert_true(buf_eq(&x.out, "uvm-ok\n/tmp\n"));
	proc_fini(&x);

	/* UVM process with stdin from a file and stdout into a FIFO-like pipe sink. */
	char path[128];
	snprintf(path, sizeof(path), "%s/in.txt", E->h.tmp);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("from-file\n", f);
	fclose(f);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	const char *const cat[] = {"/bin/cat", NULL};
	struct gcs_process_config pc2 = {.argv = cat,
	                                 .stdio = {.want_stdin = true,
	                                           .want_stdout = true,
	                                           .stdin_fd = in,
	                                           .stdout_fd = pfd[1],
	                                           .stderr_fd = -1}};
	proc_start(&x, &pc2);
	assert_int_equal(proc_wait_exit(&x), 0);
	proc_fini(&x);
	close(in);
	close(pfd[1]);
	char got[64] = {0};
	ssize_t n = read(pfd[0], got, sizeof(got) - 1);
	close(pfd[0]);
	assert_int_equal(n, 10);
	assert_string_equal(got, "from-file\n");

	/* Signal to a UVM process is refused by the guest (null container). */
	const char *const sl[] = {"/bin/sleep", "0.2", NULL};
	struct gcs_process_config pc3 = {
	    .argv = sl, .stdio = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	proc_start(&x, &pc3);
	struct hostenv_done d = {0};
	struct err e;
	assert_int_equal(gcs_process_signal(x.p, SIGTERM, pdone_cb, &d, &e), 0);
	assert_true(run_until(&d.done, STEP_TIMEOUT_S));
	assert_int_equal(d.r.status, -EREMOTEIO);
	assert_int_equal(d.r.hresult, HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_int_equal(proc_wait_exit(&x), 0);
	proc_fini(&x);
	assert_false(E->closed);
}

static void on_raw(struct gcs_client *c, const struct gcs_result *r, json_t *resp, void *ud)
{
	struct hostenv_done *d = ud;
	(void)c;
	(void)resp;
	d->done = true;
	d->r = *r;
}

/* Big guest messages stay under the 64 KiB cap: a process list of ~3000 processes (the
 * client would kill the bridge on a bigger frame) and DumpStacks. */
static void test_message_cap(void **state)
{
	(void)state;
	need_env();
	struct err e;
	_cleanup_free_ char *id = new_id("many");
	const char *const args[] = {
	    "sh", "-c", "i=0; while [ $i -lt 3000 ]; do sleep 60 & i=$((i+1)); done; echo up; wait",
	    NULL};
	create_container(id, args, false);
	struct proc init;
	start_init(&init, id, false, true, true);
	/* 3000 forks take a while on a loaded 2-core machine: allow 90 s */
	for (int i = 0; i < 4500 && !buf_has(&init.out, "up"); i++) {
		bool never = false;
		run_until(&never, 0.02);
	}
	assert_true(buf_has(&init.out, "up"));
	static struct psres ps;
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(gcs_client_get_process_list(E->h.c, id, ps_cb, &ps, &e), 0);
	assert_true(run_until(&ps.done, STEP_TIMEOUT_S));
	assert_false(E->closed);
	/* Either a (possibly truncated) list or an error response: both fit the cap. */
	if (ps.r.status == 0)
		assert_true(ps.n > 100);
	else
		assert_int_equal(ps.r.status, -EREMOTEIO);

	struct hostenv_done ds = {0};
	assert_int_equal(gcs_client_call(E->h.c, RPC_DUMP_STACKS, GCS_NULL_CONTAINER_ID, NULL, 0,
	                                 on_raw, &ds, NULL, &e),
	                 0);
	assert_true(run_until(&ds.done, STEP_TIMEOUT_S));
	assert_false(E->closed);

	force_stop_and_delete(id, &init, false);
	assert_false(E->closed);
}

/* Unknown container: errors come back as HRESULTs, the bridge stays up. */
static void test_errors(void **state)
{
	(void)state;
	need_env();
	struct err e;
	struct hostenv_done d = {0};
	assert_int_equal(gcs_client_start_container(E->h.c, "no-such", hostenv_on_done, &d, &e), 0);
	struct gcs_result r = wait_done(&d);
	assert_int_equal(r.status, -EREMOTEIO);
	assert_int_equal(r.hresult, HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_non_null(strstr(r.err.msg, "0xc037010e"));
	/* Local argument errors never reach the wire. */
	assert_int_equal(gcs_client_start_container(E->h.c, "", hostenv_on_done, &d, &e), -EINVAL);
	struct gcs_process_config bad = {.container_id = NULL, .argv = NULL};
	assert_null(gcs_process_start(E->h.c, &bad, &proc_ops, NULL, &e));
	assert_int_equal(e.code, -EINVAL);
	assert_false(E->closed);
}

/* ---- a scripted fake guest (child process) for the client's protocol checks ---- */

struct fake {
	struct ev_loop *loop;
	char *tmp;
	char addr[160];
	struct gcs_client *c;
	pid_t child;
	bool ready, closed;
	int ready_status;
	struct err why;
};

static void fake_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct fake *f = ud;
	(void)c;
	f->ready = true;
	f->ready_status = status;
	if (e)
		f->why = *e;
}

static void fake_close(struct gcs_client *c, const struct err *why, void *ud)
{
	struct fake *f = ud;
	(void)c;
	f->closed = true;
	f->why = *why;
}

/* Child side: read one request frame; returns its type, fills *id and the payload. */
static uint32_t fake_read(int fd, uint64_t *id, char *payload, size_t cap)
{
	uint8_t h[16];
	struct err e;
	if (fd_read_all(fd, h, sizeof(h), &e) < 0)
		_exit(10);
	uint32_t size = le32_get(h + 4);
	if (size < 16 || size - 16 >= cap || fd_read_all(fd, payload, size - 16, &e) < 0)
		_exit(11);
	payload[size - 16] = 0;
	*id = le64_get(h + 8);
	return le32_get(h);
}

static void fake_write(int fd, uint32_t type, uint64_t id, const char *json, size_t len)
{
	struct buf b;
	struct err e;
	buf_init(&b);
	if (bridge_frame_append(&b, type, id, json, len, 0, &e) < 0 ||
	    fd_write_all(fd, buf_head(&b), buf_avail(&b), &e) < 0)
		_exit(12);
	buf_fini(&b);
}

static void fake_respond(int fd, uint32_t req_type, uint64_t id, const char *json)
{
	fake_write(fd, bridge_response_type(req_type), id, json, strlen(json));
}

enum fake_script {
	FS_WINDOWS,
	FS_NO_GDC,
	FS_V3,
	FS_COLD_START_UNKNOWN_NOTIFY,
	FS_OVERSIZE,
	FS_NO_STDIO_DIAL,
};

static void fake_guest(struct fake *f, enum fake_script script)
{
	struct vsock_addr a;
	struct err e;
	char req[4096];
	uint64_t id;
	if (vsock_addr_parse(f->addr, &a, &e) < 0)
		_exit(2);
	int fd = vsock_dial(&a, GCS_BRIDGE_PORT, 5000, &e);
	if (fd < 0)
		_exit(3);
	uint32_t t = fake_read(fd, &id, req, sizeof(req));
	if (t != bridge_request_type(RPC_NEGOTIATE_PROTOCOL) || id != 0 ||
	    !strstr(req, "\"MinimumVersion\":4") || !strstr(req, "\"MaximumVersion\":4") ||
	    req[strlen(req) - 1] != '\n')
		_exit(4);
	static const char *const caps_by_script[] = {
	    [FS_WINDOWS] = "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":"
	                   "\"Windows\",\"GuestDefinedCapabilities\":{}}}",
	    [FS_NO_GDC] = "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":"
	                  "\"Linux\"}}",
	    [FS_V3] = "{\"Result\":0,\"Version\":3,\"Capabilities\":{\"RuntimeOsType\":"
	              "\"Linux\",\"GuestDefinedCapabilities\":{}}}",
	    [FS_COLD_START_UNKNOWN_NOTIFY] =
	        "{\"result\":0,\"version\":4,\"capabilities\":{\"SendHostCreateMessage\":true,"
	        "\"SendHostStartMessage\":true,\"runtimeOsType\":\"LINUX\","
	        "\"GuestDefinedCapabilities\":{}}}",
	    [FS_OVERSIZE] = "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":"
	                    "\"Linux\",\"GuestDefinedCapabilities\":{}}}",
	    [FS_NO_STDIO_DIAL] = "{\"Result\":0,\"Version\":4,\"Capabilities\":{"
	                         "\"RuntimeOsType\":\"Linux\",\"GuestDefinedCapabilities\":{}}}",
	};
	const char *caps = caps_by_script[script];
	fake_respond(fd, t, id, caps);
	if (script == FS_COLD_START_UNKNOWN_NOTIFY) {
		t = fake_read(fd, &id, req, sizeof(req));
		if (t != bridge_request_type(RPC_CREATE) || id != 1 ||
		    !strstr(req, "\"ContainerId\":\"" GCS_NULL_CONTAINER_ID "\"") ||
		    !strstr(req, "SystemType"))
			_exit(5);
		fake_respond(fd, t, id, "{\"Result\":0}");
		t = fake_read(fd, &id, req, sizeof(req));
		if (t != bridge_request_type(RPC_START) || id != 2)
			_exit(6);
		fake_respond(fd, t, id, "{\"Result\":0}");
		const char *n =
		    "{\"ContainerId\":\"nobody\",\"ActivityId\":\"" GCS_NULL_CONTAINER_ID
		    "\",\"Type\":\"UnexpectedExit\",\"Operation\":\"None\",\"Result\":0}";
		fake_write(fd, BRIDGE_NOTIFY_CONTAINER, 0, n, strlen(n));
	} else if (script == FS_OVERSIZE) {
		/* A real GetProperties call, answered with a frame over 64 KiB. */
		t = fake_read(fd, &id, req, sizeof(req));
		size_t big = BRIDGE_MAX_MSG;
		char *p = xmalloc(big);
		memset(p, ' ', big);
		memcpy(p, "{\"Result\":0}", 12);
		fake_write(fd, bridge_response_type(t), id, p, big);
		free(p);
	}
	if (script == FS_NO_STDIO_DIAL) {
		/* Answers ExecuteProcess and WaitForProcess, never dials the stdio port. */
		t = fake_read(fd, &id, req, sizeof(req));
		if (t != bridge_request_type(RPC_EXECUTE_PROCESS))
			_exit(7);
		fake_respond(fd, t, id, "{\"Result\":0,\"ProcessId\":42}");
		t = fake_read(fd, &id, req, sizeof(req));
		if (t != bridge_request_type(RPC_WAIT_FOR_PROCESS))
			_exit(8);
		fake_respond(fd, t, id, "{\"Result\":0,\"ExitCode\":0}");
	}
	/* Wait for the host to hang up. */
	while (read(fd, req, sizeof(req)) > 0)
		;
	_exit(0);
}

static void fake_start(struct fake *f, enum fake_script script)
{
	struct err e;
	memset(f, 0, sizeof(*f));
	f->tmp = testenv_mkdtemp("ferry-fake", &e);
	assert_non_null(f->tmp);
	snprintf(f->addr, sizeof(f->addr), "hybrid:%s/v.sock", f->tmp);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	struct gcs_client_config cfg = {.addr = f->addr,
	                                .accept_timeout_ms = 5000,
	                                .cold_start = true,
	                                .stdio_dial_timeout_ms = 300};
	struct gcs_client_ops ops = {.on_ready = fake_ready, .on_close = fake_close};
	f->c = gcs_client_new(f->loop, &cfg, &ops, f, &e);
	assert_non_null(f->c);
	f->child = fork();
	if (f->child == 0)
		fake_guest(f, script);
}

static bool fake_run_until(struct fake *f, const bool *flag)
{
	return hostenv_run_until(f->loop, flag, 10.0);
}

static int fake_finish(struct fake *f)
{
	gcs_client_free(f->c);
	int st = 0;
	waitpid(f->child, &st, 0);
	ev_loop_destroy(f->loop);
	testenv_rm_rf(f->tmp);
	free(f->tmp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_negotiate_rejects(void **state)
{
	(void)state;
	static const enum fake_script bad[] = {FS_WINDOWS, FS_NO_GDC, FS_V3};
	static const char *const why[] = {"RuntimeOsType", "GuestDefinedCapabilities", "version 3"};
	for (int i = 0; i < 3; i++) {
		struct fake f;
		fake_start(&f, bad[i]);
		assert_true(fake_run_until(&f, &f.ready));
		assert_int_equal(f.ready_status, -EPROTO);
		if (!strstr(f.why.msg, why[i]))
			fail_msg("case %d: %s", i, f.why.msg);
		assert_null(gcs_client_caps(f.c));
		assert_int_equal(fake_finish(&f), 0);
	}
}

static void test_cold_start_and_unknown_notification(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, FS_COLD_START_UNKNOWN_NOTIFY);
	assert_true(fake_run_until(&f, &f.ready));
	if (f.ready_status != 0)
		fail_msg("not ready: %s (fake guest exit %d)", f.why.msg, fake_finish(&f));
	/* Names matched case-insensitively, like Go's decoder. */
	assert_true(gcs_client_caps(f.c)->send_host_create_message);
	assert_string_equal(gcs_client_caps(f.c)->runtime_os_type, "LINUX");
	/* The notification names a container this host never created: fatal. */
	assert_true(fake_run_until(&f, &f.closed));
	assert_non_null(strstr(f.why.msg, "unknown container id=nobody"));
	assert_int_equal(fake_finish(&f), 0);
}

static void pids_fake(struct gcs_client *c, const struct gcs_result *r, const uint32_t *pids,
                      size_t n, void *ud)
{
	(void)c;
	(void)pids;
	(void)n;
	*(struct gcs_result *)ud = *r;
}

static void test_oversize_guest_message_is_fatal(void **state)
{
	(void)state;
	struct fake f;
	struct err e;
	fake_start(&f, FS_OVERSIZE);
	assert_true(fake_run_until(&f, &f.ready));
	if (f.ready_status != 0)
		fail_msg("not ready: %s (fake guest exit %d)", f.why.msg, fake_finish(&f));
	struct gcs_result r = {.status = 1};
	assert_int_equal(gcs_client_get_process_list(f.c, "c1", pids_fake, &r, &e), 0);
	assert_true(fake_run_until(&f, &f.closed));
	assert_int_equal(r.status, -ECONNRESET);
	assert_non_null(strstr(f.why.msg, "invalid message size"));
	assert_int_equal(fake_finish(&f), 0);
}

/* Issue 7 item 6: a guest that answers ExecuteProcess and WaitForProcess but never dials the
 * stdio port.  The host used to wait for the stream forever (ferryctl hung); now the first dial
 * times out and the process fails with an error naming it and the port. */
static void test_stdio_never_dialled(void **state)
{
	(void)state;
	struct fake f;
	struct err e;
	fake_start(&f, FS_NO_STDIO_DIAL);
	assert_true(fake_run_until(&f, &f.ready));
	if (f.ready_status != 0)
		fail_msg("not ready: %s (fake guest exit %d)", f.why.msg, fake_finish(&f));
	const char *const argv[] = {"/bin/true", NULL};
	struct gcs_process_config pc = {
	    .argv = argv,
	    .stdio = {.want_stdout = true, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	struct proc x;
	memset(&x, 0, sizeof(x));
	buf_init(&x.out);
	buf_init(&x.err);
	x.p = gcs_process_start(f.c, &pc, &proc_ops, &x, &e);
	assert_non_null(x.p);
	assert_true(fake_run_until(&f, &x.exited));
	assert_int_equal(x.exit_res.status, -ETIMEDOUT);
	print_message("%s\n", x.exit_res.err.msg);
	assert_non_null(strstr(x.exit_res.err.msg, "pid=42"));
	assert_non_null(strstr(x.exit_res.err.msg, "0x40000001"));
	proc_fini(&x);
	assert_int_equal(fake_finish(&f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_negotiated_caps),
	    cmocka_unit_test(test_echo_exact_and_big),
	    cmocka_unit_test(test_stdin_round_trip),
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_exec_signal_wait_ps),
	    cmocka_unit_test(test_graceful_exit_notification),
	    cmocka_unit_test(test_terminal_resize),
	    cmocka_unit_test(test_uvm_process),
	    cmocka_unit_test(test_message_cap),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_negotiate_rejects),
	    cmocka_unit_test(test_cold_start_and_unknown_notification),
	    cmocka_unit_test(test_oversize_guest_message_is_fatal),
	    cmocka_unit_test(test_stdio_never_dialled),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
