/* The blackout test of issue 4: one real ferry-gcs (crun containers, hybrid vsock) and host
 * processes A and B, each a forked child running its own libev loop with a host/gcs_client.
 * A starts a container whose init prints a numbered line every millisecond and an exec'd `cat`
 * echoing its stdin; then, hop after hop, the current host writes a stdin line, starts a
 * short process that exits during the blackout, cuts every connection, exports its client
 * state to a file and exits; the next host adopts the state, re-listens on the same ports,
 * wakes the guest and takes over.  Checked at the end: every printed number appears exactly
 * once across all hosts' output, cat echoed every stdin line exactly once and in order, and
 * every exit code of the blackout reached the host that took over.  Variants: A->B->A 20
 * times, B 2 s late, 100 (UVM) processes, an idle guest, rollback (A takes over again), and
 * a source's WaitForProcess lost unread with the cut (B re-subscribes).
 * Late offsets: B adopts A's state with stdout's delivered offset unknown (as when the
 * source's final offsets arrive with FinalizeSandbox after the transfer), holds READY with
 * nothing passed on until gcs_client_set_stream_offsets, then every line arrives exactly
 * once; an offset below A's is the orchestrator's bug: duplicates, never a loss.
 * The parent talks to each host over two pipes (commands in, events out; one line each). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"
#include "tests/lib/testenv.h"

#define EVENT_TIMEOUT_MS 20000

struct env {
	char tmp[128];
	char addr[160];
	const char *rootfs;
	pid_t gcs_pid;
};
/* crun names a container's cgroup after its id: ids unique per test process keep concurrent
 * runs on one machine apart. */
static const char *unique_cid(void)
{
	static char id[32];
	snprintf(id, sizeof(id), "c1-%d", (int)getpid());
	return id;
}

static struct env *E;

/* ======================= host child ======================= */

struct hproc {
	struct gcs_process *p;
	int out_fd;
};

struct host {
	struct ev_loop *loop;
	struct gcs_client *c;
	int cmd_fd, evt_fd;
	ev_io cmd_w;
	char line[4096];
	size_t nline;
	struct hproc procs[256];
	int nprocs;
	bool quit;
	ev_timer held_w; /* "held": polls until a stdout stream holds READY */
	struct gcs_process *held_p;
};

static void evt(struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void evt(struct host *h, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	b[n++] = '\n';
	struct err e;
	if (fd_write_all(h->evt_fd, b, (size_t)n, &e) < 0)
		_exit(90);
}

static void h_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct host *h = ud;
	(void)c;
	if (status < 0)
		evt(h, "fail ready %s", e ? e->msg : "?");
	else
		evt(h, "ready %d", gcs_client_caps(c)->ferry_stdio_resume ? 1 : 0);
}

static void h_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	evt(ud, "fail closed %s", why->msg);
}

static void h_cexit(struct gcs_client *c, const char *id, const char *type, void *ud)
{
	(void)c;
	evt(ud, "cexit %s %s", id, type);
}

static void hp_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct host *h = ud;
	if (r->status < 0)
		evt(h, "fail start %s", r->err.msg);
	else
		evt(h, "started %s %u", gcs_process_container_id(p), gcs_process_pid(p));
}

static void hp_exit(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct host *h = ud;
	if (r->status < 0)
		evt(h, "fail exit pid=%u %s", gcs_process_pid(p), r->err.msg);
	else
		evt(h, "exit %s %u %u", gcs_process_container_id(p), gcs_process_pid(p), code);
}

static const struct gcs_process_ops hp_ops = {.on_started = hp_started, .on_exit = hp_exit};

static int out_file(const char *cid, uint32_t pid)
{
	_cleanup_free_ char *path = xasprintf("%s/out.%s.%u", E->tmp, cid, pid);
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static struct hproc *find(struct host *h, const char *cid, uint32_t pid)
{
	for (int i = 0; i < h->nprocs; i++)
		if (h->procs[i].p && gcs_process_pid(h->procs[i].p) == pid &&
		    strcmp(gcs_process_container_id(h->procs[i].p), cid) == 0)
			return &h->procs[i];
	return NULL;
}

/* Output goes to a temp file until the pid is known, then renamed per (cid, pid). */
static void h_start(struct host *h, const char *cid, const char *const *argv, bool in,
                    const char *const *oci_args)
{
	struct err e;
	_cleanup_free_ char *tmp = xasprintf("%s/pending.%d.%d", E->tmp, getpid(), h->nprocs);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	json_t *op = oci_args ? testenv_oci_process(oci_args, false) : NULL;
	struct gcs_process_config pc = {.container_id = cid,
	                                .oci_process = op,
	                                .argv = argv,
	                                .stdio = {.want_stdin = in,
	                                          .want_stdout = true,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = fd,
	                                          .stderr_fd = -1}};
	struct hproc *x = &h->procs[h->nprocs++];
	x->out_fd = fd;
	x->p = gcs_process_start(h->c, &pc, &hp_ops, h, &e);
	json_decref(op);
	if (!x->p)
		evt(h, "fail exec %s", e.msg);
	/* the rename happens in the parent's check: it globs pending.* by content; simpler:
	 * record the mapping now that the pid arrives through "started" */
	evt(h, "file %s", tmp);
}

static void h_on_held_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct host *h = w->data;
	uint64_t floor = 0;
	(void)revents;
	if (!gcs_process_stdio_held(h->held_p, 1, &floor))
		return;
	ev_timer_stop(loop, w);
	evt(h, "held %llu", (unsigned long long)floor);
}

static void d_done(struct gcs_client *c, const struct gcs_result *r, void *ud)
{
	(void)c;
	struct host *h = ud;
	evt(h, r->status < 0 ? "fail rpc %s" : "done%s", r->status < 0 ? r->err.msg : "");
}

static void h_command(struct host *h, char *cmd)
{
	struct err e;
	char a[256], b[256];
	unsigned u;
	if (strncmp(cmd, "container ", 10) == 0) {
		/* container ID ARGS...: create + start, then "done" */
		if (sscanf(cmd + 10, "%255s", a) != 1)
			_exit(91);
		const char *script = cmd + 10 + strlen(a) + 1;
		const char *const args[] = {"sh", "-c", script, NULL};
		json_t *spec = testenv_oci_spec(E->rootfs, args, false);
		_cleanup_free_ char *bundle = xasprintf("%s/gcs/c/%s", E->tmp, a);
		struct gcs_container_config cc = {.bundle_path = bundle, .oci_spec = spec};
		if (gcs_client_create_container(h->c, a, &cc, d_done, h, &e) < 0)
			evt(h, "fail create %s", e.msg);
		json_decref(spec);
	} else if (strncmp(cmd, "init ", 5) == 0) {
		sscanf(cmd + 5, "%255s", a);
		h_start(h, a, NULL, false, NULL);
	} else if (strncmp(cmd, "exec ", 5) == 0) {
		/* exec CID SCRIPT: in the container, with stdin */
		sscanf(cmd + 5, "%255s", a);
		const char *const args[] = {"sh", "-c", cmd + 5 + strlen(a) + 1, NULL};
		h_start(h, a, NULL, true, args);
	} else if (strncmp(cmd, "uvm ", 4) == 0) {
		/* uvm IN SCRIPT: a UVM process */
		int in = cmd[4] == '1';
		const char *const argv[] = {"/bin/sh", "-c", cmd + 6, NULL};
		h_start(h, NULL, argv, in, NULL);
	} else if (strncmp(cmd, "stdin ", 6) == 0 &&
	           sscanf(cmd + 6, "%255s %u %255s", a, &u, b) == 3) {
		struct hproc *x = find(h, a, u);
		strcat(b, "\n");
		if (!x || gcs_process_write_stdin(x->p, b, strlen(b), &e) < 0)
			evt(h, "fail stdin %s", x ? e.msg : "no such process");
	} else if (strncmp(cmd, "eof ", 4) == 0 && sscanf(cmd + 4, "%255s %u", a, &u) == 2) {
		struct hproc *x = find(h, a, u);
		if (!x || gcs_process_close_stdin(x->p, &e) < 0)
			evt(h, "fail eof");
	} else if (strncmp(cmd, "shutdown ", 9) == 0 && sscanf(cmd + 9, "%255s", a) == 1) {
		if (gcs_client_shutdown_container(h->c, a, false, NULL, NULL, &e) < 0)
			evt(h, "fail shutdown %s", e.msg);
	} else if (strncmp(cmd, "cut ", 4) == 0) {
		/* cut PATH: drop everything, then export the state */
		if (gcs_client_cut(h->c, &e) < 0) {
			evt(h, "fail cut %s", e.msg);
			return;
		}
		struct gcs_client_state st;
		gcs_client_export_state(h->c, &st);
		_cleanup_free_ char *text = gcs_client_state_to_json(&st);
		gcs_client_state_fini(&st);
		int fd = open(cmd + 4, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || fd_write_all(fd, text, strlen(text), &e) < 0)
			_exit(92);
		close(fd);
		evt(h, "cut");
	} else if (strncmp(cmd, "held ", 5) == 0 && sscanf(cmd + 5, "%255s %u", a, &u) == 2) {
		/* held CID PID: "held FLOOR" once stdout has the guest's HELLO, READY held */
		struct hproc *x = find(h, a, u);
		if (!x) {
			evt(h, "fail held: no such process");
			return;
		}
		h->held_p = x->p;
		ev_timer_init(&h->held_w, h_on_held_timer, 0.002, 0.002);
		h->held_w.data = h;
		ev_timer_start(h->loop, &h->held_w);
	} else if (strncmp(cmd, "state ", 6) == 0 && sscanf(cmd + 6, "%255s %u", a, &u) == 2) {
		/* state CID PID: "state ATTACHED HELD STDOUT_BYTES" */
		struct hproc *x = find(h, a, u);
		struct gcs_process_state ps;
		if (!x) {
			evt(h, "fail state: no such process");
			return;
		}
		gcs_process_get_state(x->p, &ps);
		evt(h, "state %d %d %llu", gcs_process_stdio_attached(x->p),
		    gcs_process_stdio_held(x->p, 1, NULL), (unsigned long long)ps.stdout_bytes);
	} else if (strncmp(cmd, "offsets ", 8) == 0) {
		/* offsets CID PID STDOUT: the late offsets; "offsets RC" */
		unsigned long long off;
		if (sscanf(cmd + 8, "%255s %u %llu", a, &u, &off) != 3)
			_exit(96);
		int rc = gcs_client_set_stream_offsets(h->c, a, u, off, UINT64_MAX, &e);
		evt(h, "offsets %d", rc);
	} else if (strcmp(cmd, "relisten") == 0) {
		if (gcs_client_relisten(h->c, &e) < 0)
			evt(h, "fail relisten %s", e.msg);
		else if (gcs_client_wake_guest(h->c, &e) < 0)
			fprintf(stderr, "wake: %s\n", e.msg);
	} else if (strcmp(cmd, "dump") == 0) {
		for (int i = 0; i < h->nprocs; i++) {
			char d[2048];
			if (h->procs[i].p && !gcs_process_finished(h->procs[i].p)) {
				gcs_process_describe(h->procs[i].p, d, sizeof(d));
				fprintf(stderr, "%s\n", d);
			}
		}
	} else if (strcmp(cmd, "quit") == 0) {
		h->quit = true;
		ev_break(h->loop, EVBREAK_ALL);
	} else {
		evt(h, "fail unknown command %s", cmd);
	}
}

static void h_on_cmd(struct ev_loop *loop, ev_io *w, int revents)
{
	struct host *h = w->data;
	(void)loop;
	(void)revents;
	ssize_t n = read(h->cmd_fd, h->line + h->nline, sizeof(h->line) - 1 - h->nline);
	if (n <= 0)
		_exit(0); /* the parent went away */
	h->nline += (size_t)n;
	char *nl;
	while ((nl = memchr(h->line, '\n', h->nline))) {
		*nl = '\0';
		h_command(h, h->line);
		size_t used = (size_t)(nl - h->line) + 1;
		memmove(h->line, nl + 1, h->nline - used);
		h->nline -= used;
	}
}

static void h_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	h_ready(c, status, e, ud);
}

static void host_main(int cmd_fd, int evt_fd, const char *state_path)
{
	struct host *h = xcalloc(1, sizeof(*h));
	struct err e;
	h->loop = ev_loop_new(EVFLAG_AUTO);
	h->cmd_fd = cmd_fd;
	h->evt_fd = evt_fd;
	struct gcs_client_config cfg = {.addr = E->addr, .accept_timeout_ms = 15000};
	struct gcs_client_ops ops = {.on_ready = h_ready,
	                             .on_close = h_close,
	                             .on_container_exit = h_cexit,
	                             .on_reconnect = h_reconnect};
	h->c = gcs_client_new(h->loop, &cfg, &ops, h, &e);
	if (!h->c) {
		evt(h, "fail new %s", e.msg);
		_exit(93);
	}
	if (state_path) {
		/* Destination: adopt everything BEFORE the guest's re-dial is accepted. */
		_cleanup_free_ char *text = NULL;
		FILE *f = fopen(state_path, "re");
		if (!f)
			_exit(94);
		size_t cap = 1 << 20, len = 0;
		text = xmalloc(cap);
		size_t r;
		while ((r = fread(text + len, 1, cap - len, f)) > 0) {
			len += r;
			if (len == cap)
				text = xrealloc(text, cap *= 2);
		}
		fclose(f);
		struct gcs_client_state st;
		if (gcs_client_state_from_json(text, len, &st, &e) < 0 ||
		    gcs_client_adopt(h->c, &st, &e) < 0) {
			evt(h, "fail adopt %s", e.msg);
			_exit(95);
		}
		for (size_t i = 0; i < st.n_procs; i++) {
			struct hproc *x = &h->procs[h->nprocs++];
			x->out_fd = out_file(st.procs[i].container_id, st.procs[i].pid);
			struct gcs_stdio_config io = {
			    .stdin_fd = -1, .stdout_fd = x->out_fd, .stderr_fd = -1};
			x->p = gcs_process_open(h->c, &st.procs[i], &io, &hp_ops, h, &e);
			if (!x->p)
				evt(h, "fail open %s", e.msg);
		}
		gcs_client_state_fini(&st);
		/* Best effort: a guest between two wakes may not listen right now; it re-dials
		 * anyway (its back-off is capped at 100 ms). */
		if (gcs_client_wake_guest(h->c, &e) < 0)
			fprintf(stderr, "wake: %s\n", e.msg);
	}
	ev_io_init(&h->cmd_w, h_on_cmd, cmd_fd, EV_READ);
	h->cmd_w.data = h;
	ev_io_start(h->loop, &h->cmd_w);
	ev_run(h->loop, 0);
	ev_timer_stop(h->loop, &h->held_w);
	gcs_client_free(h->c);
	for (int i = 0; i < h->nprocs; i++)
		if (h->procs[i].out_fd >= 0)
			close(h->procs[i].out_fd);
	_exit(0);
}

/* ======================= parent side ======================= */

struct hh {
	pid_t pid;
	int cmd, evt;
	char buf[8192];
	size_t n;
};

static void hh_spawn(struct hh *x, const char *state_path)
{
	int c[2], v[2];
	assert_int_equal(pipe2(c, O_CLOEXEC), 0);
	assert_int_equal(pipe2(v, O_CLOEXEC), 0);
	memset(x, 0, sizeof(*x));
	x->pid = fork();
	assert_true(x->pid >= 0);
	if (x->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(c[1]);
		close(v[0]);
		host_main(c[0], v[1], state_path);
	}
	close(c[0]);
	close(v[1]);
	x->cmd = c[1];
	x->evt = v[0];
}

static void hh_cmd(struct hh *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hh_event(struct hh *x, char *out, size_t cap);
static void hh_cmd(struct hh *x, const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	b[n++] = '\n';
	struct err e;
	assert_int_equal(fd_write_all(x->cmd, b, (size_t)n, &e), 0);
}

/* Next event line (without '\n') into out; fails the test on timeout or a "fail" event. */
static void hh_event(struct hh *x, char *out, size_t cap)
{
	long long deadline = mono_ns() + EVENT_TIMEOUT_MS * 1000000ll;
	for (;;) {
		char *nl = memchr(x->buf, '\n', x->n);
		if (nl) {
			size_t len = (size_t)(nl - x->buf);
			snprintf(out, cap, "%.*s", (int)len, x->buf);
			memmove(x->buf, nl + 1, x->n - len - 1);
			x->n -= len + 1;
			if (strncmp(out, "fail", 4) == 0)
				fail_msg("host %d: %s", (int)x->pid, out);
			return;
		}
		long long left = (deadline - mono_ns()) / 1000000;
		if (left <= 0 && getenv("BLACKOUT_DEBUG")) {
			hh_cmd(x, "dump");
			usleep(300000);
		}
		if (left <= 0)
			fail_msg("host %d: no event within %d ms", (int)x->pid, EVENT_TIMEOUT_MS);
		struct pollfd p = {.fd = x->evt, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = read(x->evt, x->buf + x->n, sizeof(x->buf) - x->n);
		if (r <= 0)
			fail_msg("host %d exited", (int)x->pid);
		x->n += (size_t)r;
	}
}

/* Wait for an event starting with `prefix`; other events are handed to `other`. */
struct exits {
	char cid[300][80];
	uint32_t pid[300];
	uint32_t code[300];
	int n;
	int cexits;
};

static void note(struct exits *ex, const char *ev)
{
	char cid[80];
	unsigned pid, code;
	if (sscanf(ev, "exit %79s %u %u", cid, &pid, &code) == 3 && ex->n < 300) {
		snprintf(ex->cid[ex->n], sizeof(ex->cid[0]), "%s", cid);
		ex->pid[ex->n] = pid;
		ex->code[ex->n++] = code;
	} else if (strncmp(ev, "cexit ", 6) == 0) {
		ex->cexits++;
	}
}

static void hh_expect(struct hh *x, const char *prefix, char *out, size_t cap, struct exits *ex)
{
	char tmp[512];
	for (;;) {
		hh_event(x, tmp, sizeof(tmp));
		if (getenv("BLACKOUT_DEBUG"))
			fprintf(stderr, "event: %s (want %s)\n", tmp, prefix);
		if (ex)
			note(ex, tmp);
		if (strncmp(tmp, prefix, strlen(prefix)) == 0) {
			if (out)
				snprintf(out, cap, "%s", tmp);
			return;
		}
	}
}

static int find_exit(const struct exits *ex, const char *cid, uint32_t pid)
{
	for (int i = 0; i < ex->n; i++)
		if (ex->pid[i] == pid && strcmp(ex->cid[i], cid) == 0)
			return (int)ex->code[i];
	return -1;
}

static void hh_quit(struct hh *x)
{
	hh_cmd(x, "quit");
	int st;
	assert_int_equal(waitpid(x->pid, &st, 0), x->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(x->cmd);
	close(x->evt);
}

/* Start a process through host x; returns its pid and moves its output file to the
 * per-(cid, pid) name the next hosts append to. */
static uint32_t hh_start(struct hh *x, const char *cmd, struct exits *ex)
{
	char ev[512], file[600], cid[80];
	unsigned pid;
	hh_cmd(x, "%s", cmd);
	hh_expect(x, "file ", ev, sizeof(ev), ex);
	snprintf(file, sizeof(file), "%s", ev + 5);
	hh_expect(x, "started ", ev, sizeof(ev), ex);
	assert_int_equal(sscanf(ev, "started %79s %u", cid, &pid), 2);
	_cleanup_free_ char *to = xasprintf("%s/out.%s.%u", E->tmp, cid, pid);
	assert_int_equal(rename(file, to), 0);
	return pid;
}

/* A whole file as a NUL-terminated string (owned by the caller); *len excludes the NUL. */
static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t cap = 1 << 16;
	char *t = xmalloc(cap);
	*len = 0;
	size_t r;
	while ((r = fread(t + *len, 1, cap - *len - 1, f)) > 0) {
		*len += r;
		if (cap - *len < 2)
			t = xrealloc(t, cap *= 2);
	}
	t[*len] = '\0';
	fclose(f);
	return t;
}

static char *slurp(const char *cid, uint32_t pid, size_t *len)
{
	_cleanup_free_ char *path = xasprintf("%s/out.%s.%u", E->tmp, cid, pid);
	return read_text(path, len);
}

/* Lines the process has written so far (what reached its sink). */
static long count_lines(const char *cid, uint32_t pid)
{
	size_t len = 0;
	_cleanup_free_ char *b = slurp(cid, pid, &len);
	long n = 0;
	for (size_t i = 0; b && i < len; i++)
		n += b[i] == '\n';
	return n;
}

/* Every number 0..n-1 exactly once, in order, one per line; returns n. */
static long check_numbers(const char *cid, uint32_t pid)
{
	size_t len;
	_cleanup_free_ char *b = slurp(cid, pid, &len);
	long want = 0;
	char *save = NULL;
	for (char *l = strtok_r(b, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *end;
		long v = strtol(l, &end, 10);
		if (*end || v != want)
			fail_msg("%s/%u: line %ld is \"%.40s\" (gap or duplicate)", cid, pid, want,
			         l);
		want++;
	}
	return want;
}

/* ======================= fixture ======================= */

static int group_setup(void **state)
{
	(void)state;
	static struct env env;
	struct err e;
	E = NULL;
	if (geteuid() != 0 || testenv_enter_private_cgroup2(&e) < 0) {
		fprintf(stderr, "test_blackout: not root / no cgroup2: containers cannot run\n");
		return 0;
	}
	env.rootfs = testenv_rootfs(&e);
	if (!env.rootfs) {
		fprintf(stderr, "test_blackout: rootfs: %s\n", e.msg);
		return 0;
	}
	E = &env;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	if (!E)
		return 0;
	struct err e;
	_cleanup_free_ char *tmp = testenv_mkdtemp("ferry-bo", &e);
	if (!tmp || strlen(tmp) >= 100)
		return -1;
	snprintf(E->tmp, sizeof(E->tmp), "%s", tmp);
	snprintf(E->addr, sizeof(E->addr), "hybrid:%s/v.sock", E->tmp);
	return 0;
}

static void start_agent(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	_cleanup_free_ char *gcs = xasprintf("%s/ferry-gcs", build);
	_cleanup_free_ char *root = xasprintf("%s/gcs", E->tmp);
	_cleanup_free_ char *statedir = xasprintf("%s/state", E->tmp);
	_cleanup_free_ char *log = xasprintf("%s/gcs.log", E->tmp);
	E->gcs_pid = fork();
	if (E->gcs_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		/* BLACKOUT_GCS_LOG=debug: the agent's debug log in gcs.log (kept with KEEP_TMP) */
		const char *lvl = getenv("BLACKOUT_GCS_LOG") ? getenv("BLACKOUT_GCS_LOG") : "info";
		execl(gcs, gcs, "-v4", "--transport", E->addr, "--root", root, "--state-dir",
		      statedir, "--no-poweroff", "--log-level", lvl, (char *)NULL);
		_exit(127);
	}
}

static int teardown(void **state)
{
	(void)state;
	if (!E)
		return 0;
	if (E->gcs_pid > 0) {
		kill(E->gcs_pid, SIGKILL);
		waitpid(E->gcs_pid, NULL, 0);
		E->gcs_pid = 0;
	}
	if (getenv("KEEP_TMP"))
		fprintf(stderr, "kept %s\n", E->tmp);
	else
		testenv_rm_rf(E->tmp);
	return 0;
}

/* ======================= scenarios ======================= */

struct opts {
	int hops;
	bool late;     /* B appears 2 s after the cut */
	bool idle;     /* no printer: the guest is idle when cut */
	bool rollback; /* the same host takes over again */
	int uvm_procs; /* extra idle UVM cats, checked at the end */
};

static void scenario(const struct opts *o)
{
	if (!E)
		skip();
	struct exits ex;
	memset(&ex, 0, sizeof(ex));
	char ev[512];
	struct hh cur;
	hh_spawn(&cur, NULL);
	start_agent();
	hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "ready 1"); /* FerryStdioResume negotiated */

	const char *cid = unique_cid();
	hh_cmd(&cur, "container %s %s", cid,
	       o->idle ? "sleep 1000"
	               : "i=0; while [ $i -lt 100000 ]; do echo $i; i=$((i+1)); usleep 1000; done");
	hh_expect(&cur, "done", NULL, 0, &ex);
	_cleanup_free_ char *initcmd = xasprintf("init %s", cid);
	uint32_t init_pid = hh_start(&cur, initcmd, &ex);
	_cleanup_free_ char *catcmd = xasprintf("exec %s cat", cid);
	uint32_t cat_pid = hh_start(&cur, catcmd, &ex);
	uint32_t uvm[100];
	for (int i = 0; i < o->uvm_procs; i++)
		uvm[i] = hh_start(&cur, "uvm 1 cat", &ex);
	uint32_t blackout_pid[64];
	_cleanup_free_ char *want_in = xstrdup("");
	for (int hop = 0; hop < o->hops; hop++) {
		/* stdin written before the cut (maybe unacknowledged) */
		hh_cmd(&cur, "stdin %s %u in-%d", cid, cat_pid, hop);
		char *w = xasprintf("%sin-%d\n", want_in, hop);
		free(want_in);
		want_in = w;
		/* a process that exits during the blackout */
		_cleanup_free_ char *xc = xasprintf("uvm 0 sleep 0.05; exit %d", hop + 1);
		blackout_pid[hop] = hh_start(&cur, xc, &ex);
		if (!o->idle)
			usleep(20000); /* some output in flight */
		_cleanup_free_ char *path = xasprintf("%s/state.%d.json", E->tmp, hop);
		hh_cmd(&cur, "cut %s", path);
		hh_expect(&cur, "cut", NULL, 0, &ex);
		long long t0 = mono_ns();
		if (o->rollback) {
			hh_cmd(&cur, "relisten");
		} else {
			hh_quit(&cur);
			if (o->late)
				usleep(2000000);
			hh_spawn(&cur, path);
		}
		hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
		assert_string_equal(ev, "ready 1");
		if (o->idle) /* an idle guest is back promptly (the wake) */
			assert_true(mono_ns() - t0 < 2000000000ll);
		/* the exit code of the blackout reaches the new host */
		while (find_exit(&ex, GCS_NULL_CONTAINER_ID, blackout_pid[hop]) < 0)
			hh_expect(&cur, "exit ", NULL, 0, &ex);
		assert_int_equal(find_exit(&ex, GCS_NULL_CONTAINER_ID, blackout_pid[hop]), hop + 1);
	}
	/* stdin written to the last host reaches the process too */
	hh_cmd(&cur, "stdin %s %u last", cid, cat_pid);
	char *w = xasprintf("%slast\n", want_in);
	free(want_in);
	want_in = w;
	for (int i = 0; i < o->uvm_procs; i++) {
		hh_cmd(&cur, "stdin %s %u u%d", GCS_NULL_CONTAINER_ID, uvm[i], i);
		hh_cmd(&cur, "eof %s %u", GCS_NULL_CONTAINER_ID, uvm[i]);
	}
	hh_cmd(&cur, "eof %s %u", cid, cat_pid);
	while (find_exit(&ex, cid, cat_pid) < 0)
		hh_expect(&cur, "exit ", NULL, 0, &ex);
	if (!o->idle) {
		/* Output keeps flowing after the last move: wait (a loaded machine is slow) for
		 * lines beyond those written before it, rather than timing them. */
		long before = count_lines(cid, init_pid);
		long long until = mono_ns() + 60000000000ll;
		while (count_lines(cid, init_pid) < before + 50 && mono_ns() < until)
			usleep(20000);
	}
	hh_cmd(&cur, "shutdown %s", cid);
	while (find_exit(&ex, cid, init_pid) < 0)
		hh_expect(&cur, "exit ", NULL, 0, &ex);
	for (int i = 0; i < o->uvm_procs; i++)
		while (find_exit(&ex, GCS_NULL_CONTAINER_ID, uvm[i]) < 0)
			hh_expect(&cur, "exit ", NULL, 0, &ex);
	while (ex.cexits < 1)
		hh_expect(&cur, "cexit ", NULL, 0, &ex);
	assert_int_equal(find_exit(&ex, cid, cat_pid), 0);
	assert_int_equal(find_exit(&ex, cid, init_pid), 137);
	hh_quit(&cur);

	/* exactly once, across every host */
	size_t len;
	_cleanup_free_ char *cat_out = slurp(cid, cat_pid, &len);
	assert_string_equal(cat_out, want_in);
	if (!o->idle) {
		long n = check_numbers(cid, init_pid);
		assert_true(n > 50);
	}
	for (int i = 0; i < o->uvm_procs; i++) {
		_cleanup_free_ char *u = slurp(GCS_NULL_CONTAINER_ID, uvm[i], &len);
		_cleanup_free_ char *want = xasprintf("u%d\n", i);
		assert_string_equal(u, want);
		assert_int_equal(find_exit(&ex, GCS_NULL_CONTAINER_ID, uvm[i]), 0);
	}
}

static void test_hops_20(void **state)
{
	(void)state;
	struct opts o = {.hops = 20};
	scenario(&o);
}

static void test_late_destination(void **state)
{
	(void)state;
	struct opts o = {.hops = 1, .late = true};
	scenario(&o);
}

static void test_100_processes(void **state)
{
	(void)state;
	struct opts o = {.hops = 2, .uvm_procs = 100};
	scenario(&o);
}

static void test_idle_guest(void **state)
{
	(void)state;
	struct opts o = {.hops = 3, .idle = true};
	scenario(&o);
}

static void test_rollback(void **state)
{
	(void)state;
	struct opts o = {.hops = 3, .rollback = true};
	scenario(&o);
}

/* ---- a WaitForProcess that died with the cut ----
 * The source's infinite WaitForProcess is written right after the ExecuteProcess response; a
 * cut (or a migration) can lose it unread, and the destination adopts an id the guest never
 * saw (the idle-guest flake: the process exited after the 50 ms exit probe and no answer ever
 * came).  Made deterministic here: B adopts a wait id the guest never received (A's real one
 * becomes an orphan) and the process exits 0.5 s after the take-over.  B must re-subscribe. */
static void test_lost_wait(void **state)
{
	(void)state;
	if (!E)
		skip();
	struct exits ex;
	memset(&ex, 0, sizeof(ex));
	char ev[512];
	struct hh cur;
	hh_spawn(&cur, NULL);
	start_agent();
	hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "ready 1");
	uint32_t pid = hh_start(&cur, "uvm 0 sleep 0.5; exit 7", &ex);
	_cleanup_free_ char *path = xasprintf("%s/state.lost.json", E->tmp);
	hh_cmd(&cur, "cut %s", path);
	hh_expect(&cur, "cut", NULL, 0, &ex);
	hh_quit(&cur);

	/* The wait id the guest holds becomes an orphan; the process gets one never sent. */
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	assert_non_null(root);
	json_int_t next = json_integer_value(json_object_get(root, "NextId"));
	json_t *procs = json_object_get(root, "Processes");
	bool found = false;
	for (size_t i = 0; i < json_array_size(procs); i++) {
		json_t *o = json_array_get(procs, i);
		if ((uint32_t)json_integer_value(json_object_get(o, "Pid")) != pid)
			continue;
		json_t *orph = json_object_get(root, "Orphans");
		if (!orph) {
			orph = json_array();
			json_object_set_new(root, "Orphans", orph);
		}
		json_array_append(orph, json_object_get(o, "WaitId"));
		json_object_set_new(o, "WaitId", json_integer(next + 10));
		found = true;
	}
	assert_true(found);
	json_object_set_new(root, "NextId", json_integer(next + 11));
	assert_int_equal(json_dump_file(root, path, 0), 0);
	json_decref(root);

	hh_spawn(&cur, path);
	hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "ready 1");
	while (find_exit(&ex, GCS_NULL_CONTAINER_ID, pid) < 0)
		hh_expect(&cur, "exit ", NULL, 0, &ex);
	assert_int_equal(find_exit(&ex, GCS_NULL_CONTAINER_ID, pid), 7);
	hh_quit(&cur);
}

/* ---- late offsets (docs/stdio-resume.md §2) ----
 * In a real migration the source's final delivered offsets reach the destination only with
 * FinalizeSandbox, after the guest has already re-dialled.  Here B adopts A's state with the
 * stdout offset stripped (unknown): B must accept the re-dial and read HELLO, then hold READY
 * and pass on no byte until gcs_client_set_stream_offsets supplies the offset. */

#define LATE_LINES 1500

/* "0\n1\n...(n-1)\n" */
static char *numbers_text(int n, size_t *len)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < n; i++) {
		char l[16];
		int k = snprintf(l, sizeof(l), "%d\n", i);
		buf_append(&b, l, (size_t)k);
	}
	*len = buf_avail(&b);
	char *t = xmalloc(*len + 1);
	memcpy(t, buf_head(&b), *len);
	t[*len] = '\0';
	buf_fini(&b);
	return t;
}

static off_t out_size(const char *cid, uint32_t pid)
{
	_cleanup_free_ char *path = xasprintf("%s/out.%s.%u", E->tmp, cid, pid);
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* What the orchestrator hands B late: A's delivered offset, or (its bug) 0 or one byte
 * less than A delivered. */
enum late_kind { LATE_EXACT, LATE_ZERO, LATE_ONE_BELOW };

static void late_offsets(enum late_kind kind)
{
	if (!E)
		skip();
	struct exits ex;
	memset(&ex, 0, sizeof(ex));
	char ev[512];
	struct hh cur;
	hh_spawn(&cur, NULL);
	start_agent();
	hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "ready 1");
	const char *cid = unique_cid();
	hh_cmd(&cur,
	       "container %s i=0; while [ $i -lt %d ]; do echo $i; i=$((i+1)); usleep 1000; done",
	       cid, LATE_LINES);
	hh_expect(&cur, "done", NULL, 0, &ex);
	_cleanup_free_ char *initcmd = xasprintf("init %s", cid);
	uint32_t pid = hh_start(&cur, initcmd, &ex);

	/* A delivers (and acknowledges: every 5 ms) some output, then is cut. */
	long long deadline = mono_ns() + 10000000000ll;
	while (out_size(cid, pid) < 400 && mono_ns() < deadline)
		usleep(5000);
	assert_true(out_size(cid, pid) >= 400);
	usleep(30000);
	_cleanup_free_ char *path = xasprintf("%s/state.A.json", E->tmp);
	hh_cmd(&cur, "cut %s", path);
	hh_expect(&cur, "cut", NULL, 0, &ex);
	hh_quit(&cur);

	/* A's export has its delivered offset; B's copy has it stripped. */
	size_t len;
	_cleanup_free_ char *text = read_text(path, &len);
	struct gcs_client_state st;
	struct err e;
	assert_int_equal(gcs_client_state_from_json(text, len, &st, &e), 0);
	struct gcs_process_mstate *m = NULL;
	for (size_t i = 0; i < st.n_procs; i++)
		if (st.procs[i].pid == pid && strcmp(st.procs[i].container_id, cid) == 0)
			m = &st.procs[i];
	assert_non_null(m);
	assert_true(m->stdio[1].offset_known);
	const uint64_t delivered = m->stdio[1].offset;
	assert_true(delivered >= 400);
	assert_int_equal(out_size(cid, pid), (off_t)delivered); /* A's sink has exactly that */
	m->stdio[1].offset_known = false;
	_cleanup_free_ char *stripped = gcs_client_state_to_json(&st);
	gcs_client_state_fini(&st);
	assert_int_equal(gcs_client_state_from_json(stripped, strlen(stripped), &st, &e), 0);
	assert_false(st.procs[0].stdio[1].offset_known); /* the copy B gets: offset unknown */
	gcs_client_state_fini(&st);
	_cleanup_free_ char *bpath = xasprintf("%s/state.B.json", E->tmp);
	int fd = open(bpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fd_write_all(fd, stripped, strlen(stripped), &e), 0);
	close(fd);

	/* B adopts it, accepts the re-dial, reads HELLO and holds READY. */
	hh_spawn(&cur, bpath);
	hh_expect(&cur, "ready ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "ready 1");
	hh_cmd(&cur, "held %s %u", cid, pid);
	hh_expect(&cur, "held ", ev, sizeof(ev), &ex);
	unsigned long long floor = 0;
	assert_int_equal(sscanf(ev, "held %llu", &floor), 1);
	/* The guest retains everything A did not acknowledge; A acked every 5 ms. */
	assert_true(floor <= delivered);
	assert_true(floor > 0);
	usleep(300000); /* the process keeps printing; the guest retains it */
	assert_int_equal(out_size(cid, pid), (off_t)delivered);
	hh_cmd(&cur, "state %s %u", cid, pid);
	hh_expect(&cur, "state ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "state 0 1 0"); /* not attached, held, nothing passed on */

	/* Wrong late calls: an unknown process, a known container with an unknown pid. */
	_cleanup_free_ char *enoent = xasprintf("offsets %d", -ENOENT);
	hh_cmd(&cur, "offsets nosuch 4242 0");
	hh_expect(&cur, "offsets ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, enoent);
	hh_cmd(&cur, "offsets %s %u 0", cid, pid + 100000);
	hh_expect(&cur, "offsets ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, enoent);
	usleep(20000);
	assert_int_equal(out_size(cid, pid), (off_t)delivered); /* still held */

	/* The offsets arrive (FinalizeSandbox). */
	const uint64_t given = kind == LATE_EXACT  ? delivered
	                       : kind == LATE_ZERO ? 0
	                                           : delivered - 1;
	hh_cmd(&cur, "offsets %s %u %llu", cid, pid, (unsigned long long)given);
	hh_expect(&cur, "offsets ", ev, sizeof(ev), &ex);
	assert_string_equal(ev, "offsets 0");
	while (find_exit(&ex, cid, pid) < 0)
		hh_expect(&cur, "exit ", NULL, 0, &ex);
	assert_int_equal(find_exit(&ex, cid, pid), 0);
	while (ex.cexits < 1)
		hh_expect(&cur, "cexit ", NULL, 0, &ex);
	hh_quit(&cur);

	size_t want_len, got_len;
	_cleanup_free_ char *want = numbers_text(LATE_LINES, &want_len);
	_cleanup_free_ char *got = slurp(cid, pid, &got_len);
	if (kind == LATE_EXACT) {
		/* Exactly once across A and B. */
		assert_int_equal(got_len, want_len);
		assert_string_equal(got, want);
		assert_int_equal(check_numbers(cid, pid), LATE_LINES);
		return;
	}
	/* An offset below what A delivered (an orchestrator bug).  B answers READY at `given`.
	 * Below the guest's retained floor (HELLO.offset = what A acknowledged) the protocol
	 * detects it: B logs a gap (READY status 1) and the guest resumes from its floor.  At or
	 * above the floor it cannot be told from a correct offset and the guest resends from
	 * there.  Either way the sink gets [max(given, floor), delivered) twice, nothing is lost,
	 * and the stream and the bridge carry on. */
	const uint64_t from = given > floor ? given : floor;
	const size_t dup = (size_t)(delivered - from);
	fprintf(stderr, "late offset %llu: A delivered %llu, guest floor %llu: %zu bytes twice\n",
	        (unsigned long long)given, (unsigned long long)delivered, floor, dup);
	if (kind == LATE_ZERO)
		assert_true(from > given); /* detected: not resent from 0 */
	assert_int_equal(got_len, want_len + dup);
	assert_memory_equal(got, want, (size_t)delivered);
	assert_memory_equal(got + delivered, want + from, want_len - (size_t)from);
}

static void test_late_offsets(void **state)
{
	(void)state;
	late_offsets(LATE_EXACT);
}

static void test_late_offsets_zero(void **state)
{
	(void)state;
	late_offsets(LATE_ZERO);
}

static void test_late_offsets_one_below(void **state)
{
	(void)state;
	late_offsets(LATE_ONE_BELOW);
}

/* The state decoder rejects bad input with a clear error. */
static void test_state_decoder(void **state)
{
	(void)state;
	static const struct {
		const char *text, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"Version\":2,\"NextPort\":1073741825,\"NextId\":1}", "version"},
	    {"{\"Version\":1,\"NextPort\":5,\"NextId\":1}", "below the first stdio port"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":-1}", "NextId"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":9,\"Processes\":[{\"ContainerId\":"
	     "\"c\",\"Pid\":3,\"WaitId\":9}]}",
	     "not below NextId"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":9,\"Processes\":[{\"ContainerId\":"
	     "\"c\",\"Pid\":3,\"WaitId\":2,\"stdin\":{\"Port\":1073741825,\"Offset\":0,"
	     "\"Unacked\":\"zz\"}}]}",
	     "bad hex"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":9,\"Processes\":[{\"ContainerId\":"
	     "\"c\",\"Pid\":3,\"WaitId\":2,\"stdout\":{\"Port\":1073741825}},{\"ContainerId\":"
	     "\"c\",\"Pid\":4,\"WaitId\":3,\"stdout\":{\"Port\":1073741825}}]}",
	     "used twice"},
	    {"{\"Version\":1,\"Version\":1}", "bad JSON"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":9,\"SessionSecret\":\"abcd\"}",
	     "SessionSecret"},
	    {"{\"Version\":1,\"NextPort\":1073741830,\"NextId\":9,\"SessionSecret\":7}",
	     "SessionSecret"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gcs_client_state s;
		struct err e;
		assert_int_equal(
		    gcs_client_state_from_json(bad[i].text, strlen(bad[i].text), &s, &e), -EBADMSG);
		if (!strstr(e.msg, bad[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].why);
	}
	/* and a round trip */
	uint8_t un[3] = {0, 0xff, 'x'};
	struct gcs_process_mstate p = {
	    .container_id = (char *)"c",
	    .pid = 7,
	    .wait_pending = true,
	    .wait_id = 5,
	    .stdio = {{.port = GCS_FIRST_STDIO_PORT,
	               .offset = 10,
	               .offset_known = true,
	               .unacked = un,
	               .n_unacked = 3},
	              {.port = GCS_FIRST_STDIO_PORT + 1, .offset = 123, .offset_known = true}}};
	char *cs[] = {(char *)"c"};
	struct gcs_client_state s = {.next_port = GCS_FIRST_STDIO_PORT + 3,
	                             .next_id = 9,
	                             .containers = cs,
	                             .n_containers = 1,
	                             .procs = &p,
	                             .n_procs = 1,
	                             .has_session_secret = true};
	for (int i = 0; i < 32; i++)
		s.session_secret[i] = (uint8_t)(i * 7);
	_cleanup_free_ char *text = gcs_client_state_to_json(&s);
	struct gcs_client_state d;
	struct err e;
	assert_int_equal(gcs_client_state_from_json(text, strlen(text), &d, &e), 0);
	assert_int_equal(d.n_procs, 1);
	assert_int_equal(d.procs[0].stdio[1].offset, 123);
	assert_false(d.procs[0].stdio[2].port);
	assert_int_equal(d.procs[0].stdio[0].n_unacked, 3);
	assert_memory_equal(d.procs[0].stdio[0].unacked, un, 3);
	assert_string_equal(d.containers[0], "c");
	assert_true(d.has_session_secret);
	assert_memory_equal(d.session_secret, s.session_secret, 32);
	gcs_client_state_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_decoder),
	    cmocka_unit_test_setup_teardown(test_hops_20, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_destination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_100_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_offsets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_offsets_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_offsets_one_below, setup, teardown),
	};
	if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER=test_rollback */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
