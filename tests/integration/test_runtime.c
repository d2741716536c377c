/* Integration test of the container runtime layer (guest/runtime.c) with real crun and real
 * busybox containers, inside a private mount namespace with a pure cgroup2 mount.  Unix
 * socketpairs stand in for the host's stdio connections: the test plays the host, reading
 * output to EOF and closing its end, which is what lets an exit be reported (§6.4). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "guest/relay.h"
#include "guest/runtime.h"
#include "tests/lib/testenv.h"

static char g_skip[ERR_MSG_MAX + 64];
static char *g_tmp;
static const char *g_rootfs;

/* Container ids carry our pid: crun names the cgroup after the id, and several test binaries
 * (e.g. the plain and the sanitizer build) may run at the same time. */
static const char *ID(const char *base)
{
	static char ring[8][96];
	static unsigned next;
	char *b = ring[next++ % 8];
	snprintf(b, sizeof(ring[0]), "%s-%d", base, (int)getpid());
	return b;
}

struct fx {
	struct ev_loop *loop;
	struct rt *rt;
	int exits;
	char exit_id[64];
	enum rt_exit_type exit_type;
};

struct opres {
	bool done;
	int status;
	pid_t pid;
	char msg[ERR_MSG_MAX];
};

struct waitres {
	bool done;
	int32_t hr;
	uint32_t code;
};

/* The host end of one stdio connection. */
struct host {
	int fd;
	char *data;
	size_t len;
	bool eof;
};

static void on_exit_cb(struct rt *rt, const char *id, enum rt_exit_type type, void *ud)
{
	(void)rt;
	struct fx *f = ud;
	f->exits++;
	snprintf(f->exit_id, sizeof(f->exit_id), "%s", id);
	f->exit_type = type;
}

static void op_cb(struct rt *rt, const char *id, int status, const struct err *e, pid_t pid,
                  void *ud)
{
	(void)rt;
	(void)id;
	struct opres *r = ud;
	r->done = true;
	r->status = status;
	r->pid = pid;
	snprintf(r->msg, sizeof(r->msg), "%s", status < 0 && e ? e->msg : "");
}

static void wait_cb(struct rt *rt, int32_t hr, uint32_t code, void *ud)
{
	(void)rt;
	struct waitres *w = ud;
	w->done = true;
	w->hr = hr;
	w->code = code;
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
}

static void host_pump(struct host *h)
{
	struct err e;
	char tmp[8192];
	while (h->fd >= 0 && !h->eof) {
		ssize_t n = fd_read(h->fd, tmp, sizeof(tmp), &e);
		if (n == IO_AGAIN)
			break;
		if (n <= 0) {
			h->eof = true;
			break;
		}
		h->data = xrealloc(h->data, h->len + (size_t)n + 1);
		memcpy(h->data + h->len, tmp, (size_t)n);
		h->len += (size_t)n;
		h->data[h->len] = 0;
	}
}

typedef bool (*cond_fn)(void *arg);

/* Run the loop until cond(arg) or `secs` passed; the hosts given are pumped meanwhile. */
static bool run_until(struct fx *f, cond_fn cond, void *arg, double secs, struct host *h1,
                      struct host *h2)
{
	ev_timer tick;
	long long end = mono_ns() + (long long)(secs * 1e9);
	bool ok;

	ev_timer_init(&tick, tick_cb, 0.002, 0.002);
	ev_timer_start(f->loop, &tick);
	for (;;) {
		if (h1)
			host_pump(h1);
		if (h2)
			host_pump(h2);
		ok = cond ? cond(arg) : false;
		if (ok || mono_ns() > end)
			break;
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &tick);
	return ok;
}

static bool op_done(void *arg)
{
	return ((struct opres *)arg)->done;
}

static bool wait_done(void *arg)
{
	return ((struct waitres *)arg)->done;
}

static bool host_eof(void *arg)
{
	return ((struct host *)arg)->eof;
}

static void run_for(struct fx *f, double secs)
{
	run_until(f, NULL, NULL, secs, NULL, NULL);
}

/* A connection pair: *rt_end goes to the runtime, the host end is returned non-blocking. */
static struct host host_pair(int *rt_end)
{
	int sv[2];
	struct host h = {.fd = -1};
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(fd_set_flags(sv[0], true, NULL), 0);
	h.fd = sv[0];
	*rt_end = sv[1];
	return h;
}

static void host_close(struct host *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	free(h->data);
	h->data = NULL;
	h->len = 0;
}

static int setup(void **state)
{
	struct err e;
	struct fx *f = xcalloc(1, sizeof(*f));
	*state = f;
	if (g_skip[0])
		return 0;
	f->loop = EV_DEFAULT;
	_cleanup_free_ char *sd = xasprintf("%s/state", g_tmp);
	_cleanup_free_ char *root = xasprintf("%s/crun", g_tmp);
	struct rt_config cfg = {
	    .runtime_root = root,
	    .state_dir = sd,
	    .on_container_exit = on_exit_cb,
	    .ud = f,
	};
	f->rt = rt_new(f->loop, &cfg, &e);
	if (!f->rt)
		fail_msg("rt_new: %s", e.msg);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	rt_free(f->rt);
	free(f);
	return 0;
}

#define SKIP_IF_NEEDED()                                                                           \
	do {                                                                                       \
		if (g_skip[0]) {                                                                   \
			print_message("skipping: %s\n", g_skip);                                   \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static char *bundle_of(const char *id)
{
	return xasprintf("%s/bundles/%s", g_tmp, id);
}

/* An operation was started (rc, e) with r as its callback data: wait for it and fail the test,
 * naming `what` and id, when starting it or the operation itself failed. */
static void op_wait(struct fx *f, int rc, const struct err *e, struct opres *r, const char *what,
                    const char *id)
{
	if (rc < 0)
		fail_msg("%s %s: %s", what, id, e->msg);
	assert_true(run_until(f, op_done, r, 10, NULL, NULL));
	if (r->status < 0)
		fail_msg("%s %s: %s", what, id, r->msg);
}

/* Create container id running args and wait for the creation to finish. */
static void create_ok(struct fx *f, const char *id, const char *const args[], bool terminal)
{
	struct err e;
	struct opres r = {0};
	json_t *spec = testenv_oci_spec(g_rootfs, args, terminal);
	_cleanup_free_ char *bundle = bundle_of(id);
	int rc = rt_container_create(f->rt, id, bundle, spec, op_cb, &r, &e);
	json_decref(spec);
	op_wait(f, rc, &e, &r, "create", id);
}

static pid_t start_ok(struct fx *f, const char *id, struct rt_stdio conns)
{
	struct err e;
	struct opres r = {0};
	int rc = rt_container_start(f->rt, id, conns, op_cb, &r, &e);
	op_wait(f, rc, &e, &r, "start", id);
	assert_true(r.pid > 0);
	return r.pid;
}

static pid_t exec_ok(struct fx *f, const char *id, const char *const args[], bool terminal,
                     struct rt_stdio conns)
{
	struct err e;
	struct opres r = {0};
	json_t *proc = testenv_oci_process(args, terminal);
	int rc = rt_exec(f->rt, id, proc, conns, op_cb, &r, &e);
	json_decref(proc);
	op_wait(f, rc, &e, &r, "exec in", id);
	assert_true(r.pid > 0);
	return r.pid;
}

static void delete_ok(struct fx *f, const char *id)
{
	struct err e;
	struct opres r = {0};
	int rc = rt_delete(f->rt, id, op_cb, &r, &e);
	op_wait(f, rc, &e, &r, "delete", id);
	assert_int_equal(r.status, 0);
}

static struct waitres wait_sync(struct fx *f, const char *id, pid_t pid, uint32_t timeout_ms,
                                double secs)
{
	struct waitres w = {0};
	struct rt_wait *h = rt_wait(f->rt, id, pid, timeout_ms, wait_cb, &w);
	assert_non_null(h);
	if (!run_until(f, wait_done, &w, secs, NULL, NULL)) {
		rt_wait_cancel(f->rt, h);
		fail_msg("wait for %s/%d did not complete", id ? id : "uvm", (int)pid);
	}
	return w;
}

/* Resize the terminal of pid (which runs `stty size` after a pause), check that the output
 * read until EOF on out shows the new size, close out, and collect the exit. */
static struct waitres resize_and_check(struct fx *f, const char *id, pid_t pid, uint16_t rows,
                                       uint16_t cols, struct host *out)
{
	struct err e;
	char want[16];
	snprintf(want, sizeof(want), "%u %u", rows, cols);
	assert_int_equal(rt_resize(f->rt, id, pid, rows, cols, &e), 0);
	assert_true(run_until(f, host_eof, out, 10, out, NULL));
	assert_non_null(out->data);
	assert_non_null(strstr(out->data, want));
	host_close(out);
	return wait_sync(f, id, pid, RT_WAIT_INFINITE, 10);
}

/* echo exact bytes on stdout and stderr, exit 3; the exit is reported only after the host
 * closed its ends; init keeps answering; notification once; delete. */
static void test_init_output_and_exit_code(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const args[] = {
	    "/bin/sh", "-c", "printf 'hello\\tferry\\001\\n'; printf 'to-stderr' >&2; exit 3",
	    NULL};
	struct rt_stdio conns = RT_STDIO_NONE;
	struct host out = host_pair(&conns.out), err = host_pair(&conns.err);
	struct err e;

	create_ok(f, ID("c-echo"), args, false);
	pid_t pid = start_ok(f, ID("c-echo"), conns);
	struct waitres w = {0};
	rt_wait(f->rt, ID("c-echo"), pid, RT_WAIT_INFINITE, wait_cb, &w);

	struct host *both[2] = {&out, &err};
	for (int i = 0; i < 2; i++)
		assert_true(run_until(f, host_eof, both[i], 10, &out, &err));
	assert_int_equal(out.len, strlen("hello\tferry\001\n"));
	assert_memory_equal(out.data, "hello\tferry\001\n", out.len);
	assert_string_equal(err.data, "to-stderr");
	/* all output seen, but the host has not closed its ends: no exit yet */
	run_for(f, 0.1);
	assert_false(w.done);
	assert_int_equal(f->exits, 0);
	host_close(&out);
	run_for(f, 0.05);
	assert_false(w.done);
	host_close(&err);
	assert_true(run_until(f, wait_done, &w, 10, NULL, NULL));
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 3);
	run_for(f, 0.02);
	assert_int_equal(f->exits, 1);
	assert_string_equal(f->exit_id, ID("c-echo"));
	assert_int_equal(f->exit_type, RT_EXIT_UNEXPECTED);

	/* the init keeps answering until delete, and the notification is not repeated */
	w = wait_sync(f, ID("c-echo"), pid, RT_WAIT_INFINITE, 5);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 3);
	w = wait_sync(f, ID("c-echo"), pid, 0, 5);
	assert_int_equal(w.code, 3);
	run_for(f, 0.02);
	assert_int_equal(f->exits, 1);
	/* a pid the container does not track */
	w = wait_sync(f, ID("c-echo"), pid + 100000, 0, 5);
	assert_int_equal(w.hr, HR_ERR_NOT_FOUND);

	delete_ok(f, ID("c-echo"));
	w = wait_sync(f, ID("c-echo"), pid, 0, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_int_equal(rt_signal(f->rt, ID("c-echo"), pid, SIGKILL, &e), -ENOENT);
	_cleanup_free_ char *bundle = bundle_of(ID("c-echo"));
	assert_int_equal(access(bundle, F_OK), -1);
}

struct stdin_job {
	struct host *in;
	struct host *out;
	const uint8_t *src;
	size_t n, off;
};

/* feed stdin with backpressure while collecting stdout */
static bool host_pump_io(void *arg)
{
	struct stdin_job *j = arg;
	struct err e;
	while (j->in->fd >= 0 && j->off < j->n) {
		ssize_t k = fd_write(j->in->fd, j->src + j->off, j->n - j->off, &e);
		if (k <= 0)
			break;
		j->off += (size_t)k;
	}
	if (j->in->fd >= 0 && j->off == j->n) {
		/* EOF for cat */
		close(j->in->fd);
		j->in->fd = -1;
	}
	return j->out->eof;
}

/* stdin round trip through cat, 512 KiB (more than any pipe or socket buffer) */
static void test_stdin_roundtrip(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const args[] = {"/bin/cat", NULL};
	struct rt_stdio conns = RT_STDIO_NONE;
	struct host in = host_pair(&conns.in), out = host_pair(&conns.out);
	size_t n = 512 * 1024;
	uint8_t *src = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);

	create_ok(f, ID("c-cat"), args, false);
	pid_t pid = start_ok(f, ID("c-cat"), conns);
	struct stdin_job j = {.in = &in, .out = &out, .src = src, .n = n};
	assert_true(run_until(f, host_pump_io, &j, 20, &out, NULL));
	assert_int_equal(out.len, n);
	assert_memory_equal(out.data, src, n);
	struct relay_stream *s = rt_process_stream(f->rt, ID("c-cat"), pid, RELAY_STDOUT);
	assert_non_null(s);
	assert_true(relay_stream_bytes_written(s) == n);
	host_close(&out);
	struct waitres w = wait_sync(f, ID("c-cat"), pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 0);
	free(src);
	host_close(&in);
	delete_ok(f, ID("c-cat"));
}

/* SIGKILL -> 137 and ForcedExit; SIGTERM handled by a trap -> its exit code, GracefulExit */
static void test_signals(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const sleeper[] = {"/bin/sleep", "100", NULL};
	static const char *const trapper[] = {
	    "/bin/sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done", NULL};
	struct err e;

	create_ok(f, ID("c-kill"), sleeper, false);
	pid_t pid = start_ok(f, ID("c-kill"), RT_STDIO_NONE);
	struct waitres w = wait_sync(f, ID("c-kill"), pid, 0, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_TIMEOUT);
	assert_int_equal(rt_signal(f->rt, ID("c-kill"), pid, SIGKILL, &e), 0);
	w = wait_sync(f, ID("c-kill"), pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 137);
	run_for(f, 0.02);
	assert_int_equal(f->exits, 1);
	assert_int_equal(f->exit_type, RT_EXIT_FORCED);
	/* the process is gone: signalling it is "not found" */
	assert_int_equal(rt_signal(f->rt, ID("c-kill"), pid, SIGKILL, &e), -ESRCH);
	assert_int_equal(rt_err_hresult(-ESRCH), HR_ERR_NOT_FOUND);
	delete_ok(f, ID("c-kill"));

	struct rt_stdio conns = RT_STDIO_NONE;
	struct host out = host_pair(&conns.out);
	create_ok(f, ID("c-term"), trapper, false);
	pid = start_ok(f, ID("c-term"), conns);
	/* TERM must arrive once the trap is installed */
	for (int i = 0; i < 500 && (!out.data || !strstr(out.data, "ready")); i++) {
		run_for(f, 0.01);
		host_pump(&out);
	}
	assert_non_null(out.data);
	assert_int_equal(rt_signal(f->rt, ID("c-term"), pid, SIGTERM, &e), 0);
	assert_true(run_until(f, host_eof, &out, 10, &out, NULL));
	host_close(&out);
	w = wait_sync(f, ID("c-term"), pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.code, 42);
	run_for(f, 0.02);
	assert_int_equal(f->exits, 2);
	assert_string_equal(f->exit_id, ID("c-term"));
	assert_int_equal(f->exit_type, RT_EXIT_GRACEFUL);
	delete_ok(f, ID("c-term"));
}

/* exec into a running container: output, retention, forgetting, timeouts, ps, signal */
static void test_exec(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const sleeper[] = {"/bin/sleep", "100", NULL};
	static const char *const echo[] = {"/bin/echo", "exec-out", NULL};
	static const char *const exit7[] = {"/bin/sh", "-c", "exit 7", NULL};
	static const char *const cat[] = {"/bin/cat", NULL};
	struct err e;

	create_ok(f, ID("c-exec"), sleeper, false);
	pid_t init = start_ok(f, ID("c-exec"), RT_STDIO_NONE);
	pid_t got = 0;
	assert_int_equal(rt_container_pid(f->rt, ID("c-exec"), &got, &e), 0);
	assert_int_equal(got, init);

	/* echo */
	struct rt_stdio conns = RT_STDIO_NONE;
	struct host out = host_pair(&conns.out);
	pid_t pid = exec_ok(f, ID("c-exec"), echo, false, conns);
	assert_true(pid != init);
	assert_true(run_until(f, host_eof, &out, 10, &out, NULL));
	assert_string_equal(out.data, "exec-out\n");
	host_close(&out);
	struct waitres w = wait_sync(f, ID("c-exec"), pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 0);
	/* forgotten after its first successful wait */
	w = wait_sync(f, ID("c-exec"), pid, RT_WAIT_INFINITE, 5);
	assert_int_equal(w.hr, HR_ERR_NOT_FOUND);
	assert_int_equal(rt_signal(f->rt, ID("c-exec"), pid, SIGTERM, &e), -ESRCH);

	/* exit before anyone waits: retained, answered by a poll */
	pid = exec_ok(f, ID("c-exec"), exit7, false, RT_STDIO_NONE);
	run_for(f, 0.3);
	w = wait_sync(f, ID("c-exec"), pid, 0, 5);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 7);
	w = wait_sync(f, ID("c-exec"), pid, 0, 5);
	assert_int_equal(w.hr, HR_ERR_NOT_FOUND);

	/* timeouts on a running process consume nothing */
	conns = RT_STDIO_NONE;
	struct host in = host_pair(&conns.in);
	out = host_pair(&conns.out);
	pid = exec_ok(f, ID("c-exec"), cat, false, conns);
	w = wait_sync(f, ID("c-exec"), pid, 0, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_TIMEOUT);
	long long t0 = mono_ns();
	w = wait_sync(f, ID("c-exec"), pid, 50, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_TIMEOUT);
	assert_true(mono_ns() - t0 >= 40 * 1000000LL);

	/* ps: init and the exec'd cat */
	pid_t pids[64];
	int n = rt_ps(f->rt, ID("c-exec"), pids, 64, &e);
	assert_true(n >= 2);
	bool has_init = false, has_cat = false;
	for (int i = 0; i < n && i < 64; i++) {
		has_init |= pids[i] == init;
		has_cat |= pids[i] == pid;
	}
	assert_true(has_init);
	assert_true(has_cat);

	/* resize on a process without a terminal */
	assert_int_equal(rt_resize(f->rt, ID("c-exec"), pid, 10, 10, &e), -ENOTTY);

	struct waitres w2 = {0};
	rt_wait(f->rt, ID("c-exec"), pid, RT_WAIT_INFINITE, wait_cb, &w2);
	assert_int_equal(fd_write_all(in.fd, "bye\n", 4, &e), 0);
	host_close(&in);
	assert_true(run_until(f, host_eof, &out, 10, &out, NULL));
	assert_string_equal(out.data, "bye\n");
	host_close(&out);
	assert_true(run_until(f, wait_done, &w2, 10, NULL, NULL));
	assert_int_equal(w2.hr, HR_OK);
	assert_int_equal(w2.code, 0);

	/* signal an exec'd process */
	pid = exec_ok(f, ID("c-exec"), sleeper, false, RT_STDIO_NONE);
	assert_int_equal(rt_signal(f->rt, ID("c-exec"), pid, SIGKILL, &e), 0);
	w = wait_sync(f, ID("c-exec"), pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.code, 137);
	/* an exec'd process's signal does not change the container's exit type */
	assert_int_equal(f->exits, 0);

	/* forced shutdown (crun kill 9) kills the init, and with it the pid namespace */
	struct opres r = {0};
	assert_int_equal(rt_shutdown(f->rt, ID("c-exec"), false, op_cb, &r, &e), 0);
	assert_true(run_until(f, op_done, &r, 10, NULL, NULL));
	assert_int_equal(r.status, 0);
	w = wait_sync(f, ID("c-exec"), init, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.code, 137);
	run_for(f, 0.02);
	assert_int_equal(f->exits, 1);
	assert_int_equal(f->exit_type, RT_EXIT_FORCED);
	assert_int_equal(rt_ps(f->rt, ID("c-exec"), pids, 64, &e), 0);
	delete_ok(f, ID("c-exec"));
}

/* terminal init: the pty relay, window size visible inside, exit code */
static void test_terminal(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const args[] = {"/bin/sh", "-c", "sleep 0.3; stty size; exit 4", NULL};
	struct rt_stdio conns = RT_STDIO_NONE;
	struct host out = host_pair(&conns.out);
	struct err e;

	create_ok(f, ID("c-tty"), args, true);
	pid_t pid = start_ok(f, ID("c-tty"), conns);
	struct waitres w = resize_and_check(f, ID("c-tty"), pid, 33, 111, &out);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 4);

	/* no terminal any more, and an unknown process / container */
	assert_int_equal(rt_resize(f->rt, ID("c-tty"), pid + 100000, 1, 1, &e), -ESRCH);
	assert_int_equal(rt_resize(f->rt, NULL, pid, 1, 1, &e), -ENOENT);
	delete_ok(f, ID("c-tty"));
}

/* terminal exec into a running container */
static void test_terminal_exec(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const sleeper[] = {"/bin/sleep", "100", NULL};
	static const char *const args[] = {"/bin/sh", "-c", "sleep 0.3; stty size", NULL};
	struct rt_stdio conns = RT_STDIO_NONE;

	create_ok(f, ID("c-ttyx"), sleeper, false);
	start_ok(f, ID("c-ttyx"), RT_STDIO_NONE);
	struct host out = host_pair(&conns.out);
	pid_t pid = exec_ok(f, ID("c-ttyx"), args, true, conns);
	struct waitres w = resize_and_check(f, ID("c-ttyx"), pid, 12, 34, &out);
	assert_int_equal(w.code, 0);
	delete_ok(f, ID("c-ttyx"));
}

/* duplicate ids, unknown ids, a failing create that carries crun's error text */
static void test_errors(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	static const char *const sleeper[] = {"/bin/sleep", "100", NULL};
	struct err e;
	struct opres r = {0};

	json_t *spec = testenv_oci_spec(g_rootfs, sleeper, false);
	_cleanup_free_ char *bundle = bundle_of(ID("c-dup"));
	assert_int_equal(rt_container_create(f->rt, ID("c-dup"), bundle, spec, op_cb, &r, &e), 0);
	/* still being created: a duplicate too; waits answer HR_FAIL */
	assert_int_equal(rt_container_create(f->rt, ID("c-dup"), bundle, spec, op_cb, NULL, &e),
	                 -EEXIST);
	struct waitres w = wait_sync(f, ID("c-dup"), 1, 0, 5);
	assert_int_equal(w.hr, HR_FAIL);
	assert_true(run_until(f, op_done, &r, 10, NULL, NULL));
	assert_int_equal(r.status, 0);
	assert_int_equal(rt_container_create(f->rt, ID("c-dup"), bundle, spec, op_cb, NULL, &e),
	                 -EEXIST);
	assert_int_equal(rt_err_hresult(-EEXIST), HR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS);
	json_decref(spec);
	/* deleting a created (never started) container */
	delete_ok(f, ID("c-dup"));

	w = wait_sync(f, "nope", 1, RT_WAIT_INFINITE, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_int_equal(rt_signal(f->rt, "nope", 1, SIGKILL, &e), -ENOENT);
	assert_int_equal(rt_err_hresult(-ENOENT), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	assert_int_equal(rt_signal(f->rt, NULL, 1, SIGKILL, &e), -ENOENT);
	assert_int_equal(rt_delete(f->rt, "nope", NULL, NULL, &e), -ENOENT);
	assert_int_equal(rt_container_start(f->rt, "nope", RT_STDIO_NONE, op_cb, NULL, &e),
	                 -ENOENT);
	assert_int_equal(rt_container_create(f->rt, "../x", bundle, spec, op_cb, NULL, &e),
	                 -EINVAL);

	/* a spec crun rejects: the error carries crun's message */
	static const char *const missing[] = {"/no/such/binary", NULL};
	spec = testenv_oci_spec(g_rootfs, missing, false);
	_cleanup_free_ char *b2 = bundle_of(ID("c-bad"));
	memset(&r, 0, sizeof(r));
	assert_int_equal(rt_container_create(f->rt, ID("c-bad"), b2, spec, op_cb, &r, &e), 0);
	json_decref(spec);
	assert_true(run_until(f, op_done, &r, 10, NULL, NULL));
	if (r.status == 0) {
		/* crun resolves the binary at start time */
		memset(&r, 0, sizeof(r));
		assert_int_equal(
		    rt_container_start(f->rt, ID("c-bad"), RT_STDIO_NONE, op_cb, &r, &e), 0);
		assert_true(run_until(f, op_done, &r, 10, NULL, NULL));
		if (r.status == 0)
			fail_msg("starting a missing binary succeeded");
		delete_ok(f, ID("c-bad"));
	}
	assert_true(r.status < 0);
	assert_non_null(strstr(r.msg, "/no/such/binary"));
	assert_int_equal(rt_err_hresult(r.status), HR_FAIL);
}

/* UVM processes: direct stdio, -1 when signalled, forgotten after the first wait, console */
static void test_external(void **state)
{
	struct fx *f = *state;
	SKIP_IF_NEEDED();
	char *const echo[] = {"/bin/sh", "-c", "printf ext-out; exit 5", NULL};
	char *const sleeper[] = {"sleep", "100", NULL};
	char *const tty[] = {"/bin/sh", "-c", "test -t 0 && printf is-a-tty", NULL};
	char *const missing[] = {"/no/such/binary", NULL};
	struct rt_stdio conns = RT_STDIO_NONE;
	struct host out = host_pair(&conns.out);
	struct err e;
	pid_t pid;

	assert_int_equal(rt_exec_external(f->rt, echo, NULL, "/", false, conns, &pid, &e), 0);
	assert_true(run_until(f, host_eof, &out, 10, &out, NULL));
	assert_string_equal(out.data, "ext-out");
	host_close(&out);
	struct waitres w = wait_sync(f, NULL, pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 5);
	w = wait_sync(f, GCS_NULL_CONTAINER_ID, pid, 0, 5);
	assert_int_equal(w.hr, HR_ERR_NOT_FOUND);

	assert_int_equal(
	    rt_exec_external(f->rt, sleeper, NULL, NULL, false, RT_STDIO_NONE, &pid, &e), 0);
	w = wait_sync(f, NULL, pid, 50, 5);
	assert_int_equal(w.hr, HR_VMCOMPUTE_TIMEOUT);
	/* the runtime cannot signal UVM processes (§6.3); the test does it itself */
	assert_int_equal(rt_signal(f->rt, NULL, pid, SIGKILL, &e), -ENOENT);
	assert_int_equal(kill(pid, SIGKILL), 0);
	w = wait_sync(f, NULL, pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.hr, HR_OK);
	assert_int_equal(w.code, 0xFFFFFFFFu);

	conns = RT_STDIO_NONE;
	out = host_pair(&conns.out);
	assert_int_equal(rt_exec_external(f->rt, tty, NULL, NULL, true, conns, &pid, &e), 0);
	assert_true(run_until(f, host_eof, &out, 10, &out, NULL));
	assert_non_null(out.data);
	assert_string_equal(out.data, "is-a-tty");
	host_close(&out);
	w = wait_sync(f, NULL, pid, RT_WAIT_INFINITE, 10);
	assert_int_equal(w.code, 0);

	assert_true(rt_exec_external(f->rt, missing, NULL, NULL, false, RT_STDIO_NONE, &pid, &e) <
	            0);
	assert_int_equal(rt_err_hresult(e.code), HR_FAIL);
}

/* ---- relay tests (no containers, no root needed) ---- */

static int setup_loop(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	f->loop = EV_DEFAULT;
	*state = f;
	return 0;
}

struct relay_obs {
	int done;
	int lost;
	int lost_code;
	struct relay_stream *lost_stream;
};

static void obs_done_cb(struct relay *r, void *ud)
{
	(void)r;
	((struct relay_obs *)ud)->done++;
}

static void relay_lost_cb(struct relay_stream *s, int code, void *ud)
{
	struct relay_obs *o = ud;
	o->lost++;
	o->lost_code = code;
	o->lost_stream = s;
}

static bool obs_lost(void *arg)
{
	return ((struct relay_obs *)arg)->lost > 0;
}

static bool obs_done(void *arg)
{
	return ((struct relay_obs *)arg)->done > 0;
}

struct len_cond {
	struct host *h;
	size_t n;
};

static bool host_has(void *arg)
{
	struct len_cond *c = arg;
	return c->h->len >= c->n;
}

/* the connection of an output stream is replaced after a failure: nothing lost, nothing
 * duplicated, byte counts exact, and the clean close happens on the new connection */
static void test_relay_reconnect(void **state)
{
	struct fx *f = *state;
	struct relay_obs o = {0};
	struct err e;
	int p[2], conn1, conn2;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct host h1 = host_pair(&conn1);
	struct relay *r =
	    relay_new_pipes(f->loop, -1, p[0], -1, -1, conn1, -1, obs_done_cb, &o, &e);
	assert_non_null(r);
	struct relay_stream *s = relay_get_stream(r, RELAY_STDOUT);
	assert_non_null(s);
	assert_null(relay_get_stream(r, RELAY_STDERR));
	relay_stream_on_conn_lost(s, relay_lost_cb, &o);

	assert_int_equal(fd_write_all(p[1], "abc", 3, &e), 0);
	struct len_cond lc = {&h1, 3};
	assert_true(run_until(f, host_has, &lc, 5, &h1, NULL));
	assert_memory_equal(h1.data, "abc", 3);
	host_close(&h1); /* the host side dies (e.g. migration) */
	assert_int_equal(fd_write_all(p[1], "defg", 4, &e), 0);
	assert_true(run_until(f, obs_lost, &o, 5, NULL, NULL));
	assert_ptr_equal(o.lost_stream, s);
	assert_true(o.lost_code == -EPIPE || o.lost_code == -ECONNRESET);
	assert_int_equal(o.done, 0);
	assert_true(relay_stream_bytes_written(s) == 3);
	assert_true(relay_stream_bytes_read(s) == 7);

	struct host h2 = host_pair(&conn2);
	assert_int_equal(relay_stream_set_conn(s, conn2, &e), 0);
	assert_int_equal(fd_write_all(p[1], "h", 1, &e), 0);
	close(p[1]);
	assert_true(run_until(f, host_eof, &h2, 5, &h2, NULL));
	assert_int_equal(h2.len, 5);
	assert_memory_equal(h2.data, "defgh", 5);
	assert_true(relay_stream_bytes_written(s) == 8);
	/* shut down for writing, but not done before the host closes */
	run_for(f, 0.05);
	assert_int_equal(o.done, 0);
	assert_false(relay_finished(r));
	host_close(&h2);
	assert_true(run_until(f, obs_done, &o, 5, NULL, NULL));
	assert_true(relay_stream_finished(s));
	int spare[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, spare), 0);
	assert_int_equal(relay_stream_set_conn(s, spare[0], &e), -EINVAL); /* closes spare[0] */
	close(spare[1]);
	relay_free(r);
}

/* a slow host: the relay stops reading the pipe once its buffer is full */
static void test_relay_backpressure(void **state)
{
	struct fx *f = *state;
	struct relay_obs o = {0};
	struct err e;
	int p[2], conn;
	size_t total = 0, cap = 4 * 1024 * 1024;
	uint8_t *src = xmalloc(cap);
	for (size_t i = 0; i < cap; i++)
		src[i] = (uint8_t)(i % 253);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct host h = host_pair(&conn);
	struct relay *r = relay_new_pipes(f->loop, -1, p[0], -1, -1, conn, -1, obs_done_cb, &o, &e);
	assert_non_null(r);
	struct relay_stream *s = relay_get_stream(r, RELAY_STDOUT);

	/* the host reads nothing: write until the pipe stays full */
	for (int round = 0; round < 200; round++) {
		ssize_t n = write(p[1], src + total, cap - total);
		if (n > 0)
			total += (size_t)n;
		run_for(f, 0.002);
	}
	assert_true(total < cap); /* the writer was blocked */
	uint64_t rd = relay_stream_bytes_read(s), wr = relay_stream_bytes_written(s);
	assert_true(rd - wr <= RELAY_BUF_MAX);
	assert_true(rd < total); /* not everything was slurped into memory */
	close(p[1]);
	assert_true(run_until(f, host_eof, &h, 10, &h, NULL));
	assert_int_equal(h.len, total);
	assert_memory_equal(h.data, src, total);
	host_close(&h);
	assert_true(run_until(f, obs_done, &o, 5, NULL, NULL));
	relay_free(r);
	free(src);
}

int main(void)
{
	struct err e;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_relay_reconnect, setup_loop, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_backpressure, setup_loop, teardown),
	    cmocka_unit_test_setup_teardown(test_init_output_and_exit_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdin_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_terminal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_terminal_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_external, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (testenv_enter_private_cgroup2(&e) < 0)
		snprintf(g_skip, sizeof(g_skip), "container namespace: %s", e.msg);
	if (!g_skip[0] && !(g_rootfs = testenv_rootfs(&e)))
		snprintf(g_skip, sizeof(g_skip), "rootfs: %s", e.msg);
	if (!g_skip[0] && !(g_tmp = testenv_mkdtemp("ferry-rt-", &e)))
		snprintf(g_skip, sizeof(g_skip), "tmp dir: %s", e.msg);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	testenv_rm_rf(g_tmp);
	free(g_tmp);
	return rc;
}
