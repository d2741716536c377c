/* `ferryctl gcs-run` implementation: one run context on the stack, driven by the libev
 * default loop (the default loop because a locally spawned ferry-gcs is watched with
 * ev_child).  Sequence: listen -> spawn guest -> negotiate -> [create, start container] ->
 * ExecuteProcess with stdio relayed to fds 0/1/2 -> exit code -> [wait for the container
 * exit notification, delete] -> stop the guest.  SIGWINCH resizes a terminal process;
 * SIGINT/SIGTERM are forwarded to the process (a second one aborts the run).
 *
 * Host hops (--hop-every, see ctl_run.h): the hop runs outside every callback (the hop timer
 * only breaks the loop), so between the cut and the hand-over nothing this host holds moves:
 * the exported offsets stay exact and a rollback resumes from them.  The old host waits for
 * the new one's "attached" byte with a bounded poll while its loop is stopped; that is the
 * only blocking wait and it is the point of a hop (the old host is frozen).  The new host is
 * a fork: it builds its own loop and client and leaves the inherited objects alone (it ends
 * with _exit).  Hosts report to the first process over a pipe of fixed-size records. */
#include "host/ctl_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"

#define NOTIFY_GRACE_S   5.0
#define GCS_STOP_GRACE_S 2.0
#define HOP_ATTACH_MS    30000 /* how long an old host waits for the new one to attach */

/* Records from the host processes to the first ferryctl process (status pipe). */
enum { MSG_HOST = 1, MSG_CODE, MSG_FAIL };
struct hop_msg {
	int32_t kind, val; /* MSG_HOST: pid of the host now in charge; MSG_CODE: exit code;
	                      MSG_FAIL: negative errno (the host printed the error) */
};

struct run {
	const struct ctl_run_opts *o;
	struct ev_loop *loop;
	struct gcs_client *c;
	struct gcs_process *p;
	char *cid;
	pid_t gcs_pid;
	ev_child gcs_w;
	ev_signal winch_w, int_w, term_w;
	ev_timer notify_timer;
	int interrupts;
	bool container_created, have_exit, notified, finished;
	int status;
	struct err err;
	uint32_t exit_code;
	bool raw;
	struct termios saved_tio;
	int saved_fl[3];
	/* hops */
	ev_timer hop_w;
	bool hop_due;     /* the hop timer fired: hop once the loop returns */
	bool child;       /* a forked host (not the first ferryctl process) */
	bool raw_term;    /* the first process put the terminal in raw mode */
	int status_fd[2]; /* status pipe (read end: first process only) */
	int hop_n;        /* hops so far */
	long long t_cut;  /* child: mono_ns() of the cut it took over from */
	pid_t old_pid;    /* child: the host it took over from */
	int attach_fd;    /* child: write 'A' here once attached (-1 after) */
	bool reconnected; /* child: the bridge was renegotiated */
	bool attached;    /* child: the hand-over is complete */
	ev_prepare attach_w;
	/* first process after its first hop */
	ev_io status_w;
	struct hop_msg msg;
	size_t msg_n;
	pid_t cur_host;
};

static void finish(struct run *r, int status, const struct err *e)
{
	if (r->finished)
		return;
	r->finished = true;
	r->status = status;
	if (status < 0 && e)
		r->err = *e;
	else if (status < 0)
		err_set(&r->err, status, "gcs-run failed");
	ev_break(r->loop, EVBREAK_ALL);
}

/* ---- terminal ---- */

static void term_raw(struct run *r)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &r->saved_tio) < 0)
		return;
	struct termios t = r->saved_tio;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		r->raw = true;
}

static void term_restore(struct run *r)
{
	if (r->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &r->saved_tio);
	r->raw = false;
}

static void send_winsize(struct run *r)
{
	struct winsize ws;
	struct err e;
	if (!r->p || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0)
		return;
	if (gcs_process_resize(r->p, ws.ws_row, ws.ws_col, NULL, NULL, &e) < 0)
		log_debug("resize: %s", e.msg);
}

static void on_winch(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	send_winsize(w->data);
}

static void on_interrupt(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct run *r = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	if (++r->interrupts > 1 || !r->p || gcs_process_pid(r->p) == 0) {
		err_set(&e, -EINTR, "interrupted");
		finish(r, -EINTR, &e);
		return;
	}
	if (gcs_process_signal(r->p, w->signum, NULL, NULL, &e) < 0)
		log_warn("forward signal %d: %s", w->signum, e.msg);
}

/* ---- the run ---- */

static void on_deleted(struct gcs_client *c, const struct gcs_result *res, void *ud)
{
	struct run *r = ud;
	(void)c;
	if (res->status < 0)
		log_warn("delete container id=%s: %s", r->cid, res->err.msg);
	r->container_created = false;
	finish(r, 0, NULL);
}

static void cleanup_container(struct run *r)
{
	struct err e;
	ev_timer_stop(r->loop, &r->notify_timer);
	if (gcs_client_delete_container(r->c, r->cid, on_deleted, r, &e) < 0) {
		log_warn("delete container id=%s: %s", r->cid, e.msg);
		finish(r, 0, NULL);
	}
}

static void on_notify_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	(void)loop;
	(void)revents;
	log_warn("no exit notification for container id=%s", r->cid);
	cleanup_container(r);
}

static void on_container_exit(struct gcs_client *c, const char *id, const char *type, void *ud)
{
	struct run *r = ud;
	(void)c;
	log_debug("container exit id=%s type=%s", id, type);
	r->notified = true;
	if (r->have_exit)
		cleanup_container(r);
}

static void on_proc_exit(struct gcs_process *p, const struct gcs_result *res, uint32_t code,
                         void *ud)
{
	struct run *r = ud;
	(void)p;
	if (res->status < 0) {
		finish(r, res->status, &res->err);
		return;
	}
	r->have_exit = true;
	r->exit_code = code;
	ev_timer_stop(r->loop, &r->hop_w);
	if (r->o->uvm) {
		finish(r, 0, NULL);
	} else if (r->notified) {
		cleanup_container(r);
	} else {
		ev_timer_init(&r->notify_timer, on_notify_timeout, NOTIFY_GRACE_S, 0.);
		r->notify_timer.data = r;
		ev_timer_start(r->loop, &r->notify_timer);
	}
}

static void on_proc_started(struct gcs_process *p, const struct gcs_result *res, void *ud)
{
	struct run *r = ud;
	(void)p;
	if (res->status < 0) {
		finish(r, res->status, &res->err);
		return;
	}
	log_debug("process started pid=%u", gcs_process_pid(p));
	if (r->o->terminal) {
		send_winsize(r);
		ev_signal_start(r->loop, &r->winch_w);
	}
	if (r->o->hop_every_ms > 0)
		ev_timer_start(r->loop, &r->hop_w);
}

static void start_process(struct run *r)
{
	struct err e;
	bool tty = r->o->terminal;
	struct gcs_process_config pc = {
	    .container_id = r->o->uvm ? NULL : r->cid,
	    .argv = (const char *const *)r->o->argv,
	    .emulate_console = tty,
	    .stdio = {.want_stdin = r->o->interactive,
	              .want_stdout = true,
	              .want_stderr = !tty,
	              .stdin_fd = r->o->interactive ? STDIN_FILENO : -1,
	              .stdout_fd = STDOUT_FILENO,
	              .stderr_fd = tty ? -1 : STDERR_FILENO},
	};
	struct gcs_process_ops ops = {.on_started = on_proc_started, .on_exit = on_proc_exit};
	r->p = gcs_process_start(r->c, &pc, &ops, r, &e);
	if (!r->p)
		finish(r, e.code, &e);
}

static void on_started(struct gcs_client *c, const struct gcs_result *res, void *ud)
{
	struct run *r = ud;
	(void)c;
	if (res->status < 0)
		finish(r, res->status, &res->err);
	else
		start_process(r);
}

static void on_created(struct gcs_client *c, const struct gcs_result *res, void *ud)
{
	struct run *r = ud;
	struct err e;
	if (res->status < 0) {
		finish(r, res->status, &res->err);
		return;
	}
	r->container_created = true;
	if (gcs_client_start_container(c, r->cid, on_started, r, &e) < 0)
		finish(r, e.code, &e);
}

static void on_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct run *r = ud;
	struct err e2;
	if (status < 0) {
		finish(r, status, e);
		return;
	}
	log_debug("gcs negotiated os=%s", gcs_client_caps(c)->runtime_os_type);
	if (r->o->uvm) {
		start_process(r);
		return;
	}
	json_t *spec = ctl_oci_spec(r->o->rootfs, r->o->argv, r->o->terminal);
	struct gcs_container_config cc = {.bundle_path = r->o->bundle, .oci_spec = spec};
	if (gcs_client_create_container(c, r->cid, &cc, on_created, r, &e2) < 0)
		finish(r, e2.code, &e2);
	json_decref(spec);
}

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	finish(ud, why && why->code ? why->code : -ECONNRESET, why);
}

static void on_gcs_exit(struct ev_loop *loop, ev_child *w, int revents)
{
	struct run *r = w->data;
	struct err e;
	(void)revents;
	ev_child_stop(loop, w);
	r->gcs_pid = 0;
	err_set(&e, -ECHILD, "ferry-gcs exited (status %d) before the run finished", w->rstatus);
	finish(r, -ECHILD, &e);
}

/* In the child: a private mount namespace with a pure cgroup2 /sys/fs/cgroup (crun refuses
 * hybrid cgroup setups, see shared/spec/machine-notes.md). */
static int enter_private_cgroup2(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	umount2("/sys/fs/cgroup", MNT_DETACH);
	if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0)
		return -errno;
	return 0;
}

static int spawn_gcs(struct run *r, struct err *e)
{
	const struct ctl_run_opts *o = r->o;
	const char *argv[16];
	int n = 0;
	argv[n++] = o->gcs_path;
	argv[n++] = "-v4";
	argv[n++] = "--transport";
	argv[n++] = o->transport;
	if (o->gcs_root) {
		argv[n++] = "--root";
		argv[n++] = o->gcs_root;
	}
	if (o->gcs_state_dir) {
		argv[n++] = "--state-dir";
		argv[n++] = o->gcs_state_dir;
	}
	/* With hops the guest must re-dial after each cut (stop_gcs ends it either way). */
	if (o->hop_every_ms <= 0)
		argv[n++] = "--once";
	argv[n++] = "--no-poweroff";
	argv[n++] = "--log-level";
	/* Hops make the guest re-dial a listener that is briefly absent: a warning each time. */
	argv[n++] = log_current_level >= LOG_LVL_DEBUG ? "debug"
	            : o->hop_every_ms > 0              ? "error"
	                                               : "warn";
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, -errno, "fork ferry-gcs");
	if (pid == 0) {
		if (o->private_cgroup2 && enter_private_cgroup2() < 0) {
			perror("ferryctl: private cgroup2 namespace");
			_exit(127);
		}
		execv(o->gcs_path, (char *const *)argv);
		perror("ferryctl: exec ferry-gcs");
		_exit(127);
	}
	r->gcs_pid = pid;
	ev_child_init(&r->gcs_w, on_gcs_exit, pid, 0);
	r->gcs_w.data = r;
	ev_child_start(r->loop, &r->gcs_w);
	return 0;
}

static void on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void on_gcs_stopped(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	ev_child_stop(loop, w);
	((struct run *)w->data)->gcs_pid = 0;
	ev_break(loop, EVBREAK_ONE);
}

/* Stop a spawned guest: SIGTERM, wait up to GCS_STOP_GRACE_S on the loop, then SIGKILL. */
static void stop_gcs(struct run *r)
{
	if (r->gcs_pid <= 0)
		return;
	ev_child_stop(r->loop, &r->gcs_w);
	ev_child_init(&r->gcs_w, on_gcs_stopped, r->gcs_pid, 0);
	r->gcs_w.data = r;
	ev_child_start(r->loop, &r->gcs_w);
	ev_timer t;
	ev_timer_init(&t, on_stop_timer, GCS_STOP_GRACE_S, 0.);
	ev_timer_start(r->loop, &t);
	kill(r->gcs_pid, SIGTERM);
	ev_run(r->loop, 0);
	ev_timer_stop(r->loop, &t);
	if (r->gcs_pid > 0) {
		kill(r->gcs_pid, SIGKILL);
		ev_timer_start(r->loop, &t);
		ev_run(r->loop, 0);
		ev_timer_stop(r->loop, &t);
	}
	ev_child_stop(r->loop, &r->gcs_w);
}

static void init_watchers(struct run *r)
{
	ev_signal_init(&r->winch_w, on_winch, SIGWINCH);
	r->winch_w.data = r;
	ev_signal_init(&r->int_w, on_interrupt, SIGINT);
	r->int_w.data = r;
	ev_signal_init(&r->term_w, on_interrupt, SIGTERM);
	r->term_w.data = r;
	ev_init(&r->notify_timer, on_notify_timeout);
	r->notify_timer.data = r;
}

static void stop_watchers(struct run *r)
{
	ev_signal_stop(r->loop, &r->winch_w);
	ev_signal_stop(r->loop, &r->int_w);
	ev_signal_stop(r->loop, &r->term_w);
	ev_timer_stop(r->loop, &r->notify_timer);
	ev_timer_stop(r->loop, &r->hop_w);
	ev_prepare_stop(r->loop, &r->attach_w);
}

/* ---- host hops ---- */

/* Block (on) or unblock INT/TERM: blocked across a hop, so a signal waits for whichever host
 * carries on (libev's ev_signal_start does not unblock without EVFLAG_NOSIGMASK). */
static void block_signals(bool on)
{
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, &ss, NULL);
}

static void report(struct run *r, int kind, int val)
{
	struct hop_msg m = {.kind = kind, .val = val};
	struct err e;
	if (r->status_fd[1] >= 0 && fd_write_all(r->status_fd[1], &m, sizeof(m), &e) < 0)
		log_warn("report to the first ferryctl process: %s", e.msg);
}

static void on_hop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	(void)revents;
	r->hop_due = true;
	ev_break(loop, EVBREAK_ALL);
}

static void arm_hop_timer(struct run *r)
{
	ev_timer_set(&r->hop_w, r->o->hop_every_ms / 1000., 0.);
	ev_timer_start(r->loop, &r->hop_w);
}

/* Child: the bridge is renegotiated and every stdio stream re-attached (or the process is
 * gone): the hand-over is complete. */
static void hop_attached(struct run *r)
{
	r->attached = true;
	ev_prepare_stop(r->loop, &r->attach_w);
	double ms = (double)(mono_ns() - r->t_cut) / 1e6;
	fprintf(stderr, "ferryctl: hop %d: host pid %d -> %d, guest back in %.1f ms%s", r->hop_n,
	        (int)r->old_pid, (int)getpid(), ms, r->raw_term ? "\r\n" : "\n");
	report(r, MSG_HOST, (int)getpid());
	char a = 'A';
	if (write(r->attach_fd, &a, 1) != 1)
		log_warn("hop %d: tell the old host: %s", r->hop_n, strerror(errno));
	close(r->attach_fd);
	r->attach_fd = -1;
	if (r->finished || r->have_exit)
		return;
	if (r->o->hop_every_ms > 0)
		arm_hop_timer(r);
	if (r->o->terminal) {
		send_winsize(r);
		ev_signal_start(r->loop, &r->winch_w);
	}
}

/* Runs after each loop iteration's callbacks, so it sees the relays' READY already sent. */
static void on_attach_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct run *r = w->data;
	(void)loop;
	(void)revents;
	if (r->reconnected && r->p && (r->have_exit || gcs_process_stdio_attached(r->p)))
		hop_attached(r);
}

static void on_adopted_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct run *r = ud;
	(void)c;
	if (status < 0) {
		/* The client retries on the guest's next re-dial; the old host's wait is bounded. */
		log_warn("hop %d: renegotiation: %s", r->hop_n, e ? e->msg : "failed");
		return;
	}
	r->reconnected = true;
}

static int host_loop(struct run *r, struct err *e);

/* The new host (a fork of the old one, never returns): fresh loop and client on the same
 * address, adopt the state, re-open the process with the terminal's fds, wake the guest. */
static void __attribute__((noreturn))
host_child(const struct run *old, const char *text, long long t_cut, pid_t old_pid, int afd)
{
	signal(SIGCHLD, SIG_DFL);
	if (old->status_fd[0] >= 0)
		close(old->status_fd[0]);
	const struct ctl_run_opts *o = old->o;
	struct run *r = xcalloc(1, sizeof(*r));
	r->o = o;
	r->cid = old->cid;
	r->container_created = old->container_created;
	r->notified = old->notified;
	r->child = true;
	r->raw_term = old->raw_term;
	r->status_fd[0] = -1;
	r->status_fd[1] = old->status_fd[1];
	r->hop_n = old->hop_n + 1;
	r->t_cut = t_cut;
	r->old_pid = old_pid;
	r->attach_fd = afd;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	init_watchers(r);
	ev_init(&r->hop_w, on_hop_timer);
	r->hop_w.data = r;
	ev_prepare_init(&r->attach_w, on_attach_check);
	r->attach_w.data = r;

	struct err e;
	struct gcs_client_state st = {0};
	struct gcs_client_config cfg = {.addr = o->transport,
	                                .accept_timeout_ms = o->accept_timeout_ms};
	struct gcs_client_ops ops = {.on_ready = on_adopted_ready,
	                             .on_reconnect = on_adopted_ready,
	                             .on_container_exit = on_container_exit,
	                             .on_close = on_close};
	r->c = r->loop ? gcs_client_new(r->loop, &cfg, &ops, r, &e) : NULL;
	if (!r->c)
		goto fail;
	if (gcs_client_state_from_json(text, strlen(text), &st, &e) < 0 ||
	    gcs_client_adopt(r->c, &st, &e) < 0)
		goto fail;
	bool tty = o->terminal;
	struct gcs_stdio_config io = {.stdin_fd = o->interactive ? STDIN_FILENO : -1,
	                              .stdout_fd = STDOUT_FILENO,
	                              .stderr_fd = tty ? -1 : STDERR_FILENO};
	struct gcs_process_ops pops = {.on_started = on_proc_started, .on_exit = on_proc_exit};
	/* gcs-run runs exactly one process, and hops only while it has not exited */
	if (st.n_procs != 1) {
		err_set(&e, -EPROTO, "the state holds %zu processes, expected 1", st.n_procs);
		goto fail;
	}
	r->p = gcs_process_open(r->c, &st.procs[0], &io, &pops, r, &e);
	if (!r->p)
		goto fail;
	gcs_client_state_fini(&st);
	/* Best effort: the guest re-dials on its own too (back-off capped at 100 ms). */
	if (gcs_client_wake_guest(r->c, &e) < 0)
		log_debug("hop %d: wake: %s", r->hop_n, e.msg);
	ev_signal_start(r->loop, &r->int_w);
	ev_signal_start(r->loop, &r->term_w);
	block_signals(false);
	ev_prepare_start(r->loop, &r->attach_w);
	int rc = host_loop(r, &e);
	if (rc == 1)
		_exit(0); /* handed over in turn */
	if (!r->attached && r->status == 0 && r->reconnected)
		hop_attached(r); /* the process ended within the loop's last iteration */
	if (!r->attached) {
		e = r->err;
		goto fail;
	}
	stop_watchers(r);
	gcs_process_free(r->p);
	gcs_client_free(r->c);
	if (r->status < 0) {
		log_error("gcs-run: %s", r->err.msg);
		report(r, MSG_FAIL, r->status);
	} else {
		report(r, MSG_CODE, (int)r->exit_code);
	}
	_exit(0);
fail:
	log_warn("hop %d: new host pid %d: %s", r->hop_n, (int)getpid(), e.msg);
	_exit(1); /* the old host sees the attach pipe close and carries on */
}

/* Hand the host role to a new process.  Call with the loop stopped.  Returns 1 once the new
 * host is attached, 0 after a rollback (this host carries on), or a negative errno. */
static int hop(struct run *r, struct err *e)
{
	long long t0 = mono_ns();
	if (gcs_client_cut(r->c, e) < 0)
		return e->code;
	struct gcs_client_state st;
	gcs_client_export_state(r->c, &st);
	_cleanup_free_ char *text = gcs_client_state_to_json(&st);
	gcs_client_state_fini(&st);
	block_signals(true);
	ev_signal_stop(r->loop, &r->int_w);
	ev_signal_stop(r->loop, &r->term_w);
	ev_signal_stop(r->loop, &r->winch_w);
	int ap[2] = {-1, -1};
	pid_t pid = -1;
	if (pipe2(ap, O_CLOEXEC) == 0) {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
	}
	if (pid == 0) {
		close(ap[0]);
		host_child(r, text, t0, getppid(), ap[1]);
	}
	char a = 0;
	if (pid > 0) {
		close(ap[1]);
		struct pollfd pf = {.fd = ap[0], .events = POLLIN};
		long long deadline = mono_ns() + HOP_ATTACH_MS * 1000000LL;
		int n;
		do
			n = poll(&pf, 1, (int)((deadline - mono_ns()) / 1000000 + 1));
		while (n < 0 && errno == EINTR && mono_ns() < deadline);
		if (n > 0 && read(ap[0], &a, 1) != 1)
			a = 0;
		close(ap[0]);
		if (a == 'A') {
			r->cur_host = pid;
			r->hop_n++;
			return 1;
		}
		log_warn("hop %d: new host pid %d did not take over; host pid %d carries on",
		         r->hop_n + 1, (int)pid, (int)getpid());
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	} else {
		log_warn("hop %d: fork: %s; host pid %d carries on", r->hop_n + 1, strerror(errno),
		         (int)getpid());
		if (ap[0] >= 0) {
			close(ap[0]);
			close(ap[1]);
		}
	}
	/* Rollback: listen again, the guest re-dials here, streams resume from our offsets. */
	struct err we;
	if (gcs_client_relisten(r->c, e) < 0)
		return e->code;
	if (gcs_client_wake_guest(r->c, &we) < 0)
		log_debug("wake: %s", we.msg);
	ev_signal_start(r->loop, &r->int_w);
	ev_signal_start(r->loop, &r->term_w);
	if (r->o->terminal)
		ev_signal_start(r->loop, &r->winch_w);
	block_signals(false);
	arm_hop_timer(r);
	return 0;
}

/* Run the loop until the run finishes (0) or the host role was handed over (1). */
static int host_loop(struct run *r, struct err *e)
{
	for (;;) {
		ev_run(r->loop, 0);
		if (!r->hop_due || r->finished)
			return 0;
		r->hop_due = false;
		if (r->have_exit)
			continue;
		int rc = hop(r, e);
		if (rc < 0) {
			finish(r, rc, e);
			return 0;
		}
		if (rc == 1)
			return 1;
	}
}

/* ---- the first process after its first hop: wait for the chain's exit code ---- */

static void on_status(struct ev_loop *loop, ev_io *w, int revents)
{
	struct run *r = w->data;
	struct err e;
	(void)loop;
	(void)revents;
	ssize_t n = read(w->fd, (char *)&r->msg + r->msg_n, sizeof(r->msg) - r->msg_n);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		err_set(&e, -EPIPE, "every host process exited without an exit code");
		finish(r, -EPIPE, &e);
		return;
	}
	r->msg_n += (size_t)n;
	if (r->msg_n < sizeof(r->msg))
		return;
	r->msg_n = 0;
	if (r->msg.kind == MSG_HOST) {
		r->cur_host = r->msg.val;
	} else if (r->msg.kind == MSG_CODE) {
		r->exit_code = (uint32_t)r->msg.val;
		finish(r, 0, NULL);
	} else {
		err_set(&e, r->msg.val < 0 ? r->msg.val : -EIO, "host pid %d failed (see above)",
		        (int)r->cur_host);
		finish(r, e.code, &e);
	}
}

/* SIGTERM goes to the host in charge.  SIGINT is left alone: a terminal sends it to the
 * whole process group, so the current host gets it directly. */
static void on_thin_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct run *r = w->data;
	(void)loop;
	(void)revents;
	if (w->signum == SIGTERM && r->cur_host > 0)
		kill(r->cur_host, SIGTERM);
}

static void wait_for_chain(struct run *r)
{
	gcs_process_free(r->p);
	r->p = NULL;
	gcs_client_free(r->c);
	r->c = NULL;
	close(r->status_fd[1]);
	r->status_fd[1] = -1;
	ev_io_init(&r->status_w, on_status, r->status_fd[0], EV_READ);
	r->status_w.data = r;
	ev_io_start(r->loop, &r->status_w);
	ev_signal_init(&r->int_w, on_thin_signal, SIGINT);
	ev_signal_init(&r->term_w, on_thin_signal, SIGTERM);
	ev_signal_start(r->loop, &r->int_w);
	ev_signal_start(r->loop, &r->term_w);
	block_signals(false);
	ev_run(r->loop, 0);
	ev_io_stop(r->loop, &r->status_w);
}

int ctl_gcs_run(const struct ctl_run_opts *o, int *exit_code, struct err *e)
{
	if (!o->transport || !o->argv || !o->argv[0])
		return err_set(e, -EINVAL, "gcs-run: need --transport and a command");
	if (!o->uvm && !o->rootfs)
		return err_set(e, -EINVAL, "gcs-run: need --rootfs (or --uvm)");
	struct run r = {.o = o, .loop = ev_default_loop(0), .status_fd = {-1, -1}, .attach_fd = -1};
	r.cid = o->container_id ? xstrdup(o->container_id) : xasprintf("ferryctl-%d", getpid());
	r.cur_host = getpid();
	for (int i = 0; i < 3; i++)
		r.saved_fl[i] = fcntl(i, F_GETFL);
	init_watchers(&r);
	ev_init(&r.hop_w, on_hop_timer);
	r.hop_w.data = &r;
	ev_timer_set(&r.hop_w, o->hop_every_ms / 1000., 0.);
	if (o->hop_every_ms > 0) {
		if (pipe2(r.status_fd, O_CLOEXEC) < 0) {
			free(r.cid);
			return err_sys(e, -errno, "gcs-run: status pipe");
		}
		fcntl(r.status_fd[0], F_SETFL, O_NONBLOCK);
		/* Old hosts exit before their successors: reparent those here (the loop reaps). */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	}

	struct gcs_client_config cfg = {
	    .addr = o->transport, .accept_timeout_ms = o->accept_timeout_ms, .cold_start = true};
	struct gcs_client_ops ops = {
	    .on_ready = on_ready, .on_container_exit = on_container_exit, .on_close = on_close};
	/* Listen before the guest starts. */
	r.c = gcs_client_new(r.loop, &cfg, &ops, &r, e);
	if (!r.c || (o->gcs_path && spawn_gcs(&r, e) < 0)) {
		gcs_client_free(r.c);
		for (int i = 0; i < 2; i++)
			if (r.status_fd[i] >= 0)
				close(r.status_fd[i]);
		free(r.cid);
		return e->code;
	}
	ev_signal_start(r.loop, &r.int_w);
	ev_signal_start(r.loop, &r.term_w);
	if (o->terminal && o->interactive)
		term_raw(&r);
	r.raw_term = r.raw;
	struct err he;
	if (host_loop(&r, &he) == 1)
		wait_for_chain(&r);
	term_restore(&r);
	stop_watchers(&r);
	if (r.gcs_pid > 0)
		ev_child_stop(r.loop, &r.gcs_w);
	gcs_process_free(r.p);
	gcs_client_free(r.c);
	stop_gcs(&r);
	for (int i = 0; i < 2; i++)
		if (r.status_fd[i] >= 0)
			close(r.status_fd[i]);
	/* The relays made our stdio non-blocking; give the shell its flags back. */
	for (int i = 0; i < 3; i++)
		if (r.saved_fl[i] >= 0)
			fcntl(i, F_SETFL, r.saved_fl[i]);
	free(r.cid);
	if (r.status < 0) {
		*e = r.err;
		return r.status;
	}
	*exit_code = (int)r.exit_code;
	return 0;
}

json_t *ctl_oci_spec(const char *rootfs, char *const *argv, bool terminal)
{
	json_t *args = json_array();
	for (char *const *a = argv; *a; a++)
		json_array_append_new(args, json_string(*a));
	return json_pack("{s:s,s:{s:b,s:{s:i,s:i},s:o,s:[s,s],s:s,s:b},s:{s:s,s:b},s:s,"
	                 "s:[{s:s,s:s,s:s},{s:s,s:s,s:s,s:[s,s,s,s]},"
	                 "{s:s,s:s,s:s,s:[s,s,s,s,s]},{s:s,s:s,s:s,s:[s,s,s,s]}],"
	                 "s:{s:[{s:s},{s:s},{s:s},{s:s}]}}",
	                 "ociVersion", "1.0.2", "process", "terminal", terminal, "user", "uid", 0,
	                 "gid", 0, "args", args, "env",
	                 "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                 "TERM=xterm", "cwd", "/", "noNewPrivileges", 1, "root", "path", rootfs,
	                 "readonly", 0, "hostname", "ferry", "mounts", "destination", "/proc",
	                 "type", "proc", "source", "proc", "destination", "/dev", "type", "tmpfs",
	                 "source", "tmpfs", "options", "nosuid", "strictatime", "mode=755",
	                 "size=65536k", "destination", "/dev/pts", "type", "devpts", "source",
	                 "devpts", "options", "nosuid", "noexec", "newinstance", "ptmxmode=0666",
	                 "mode=0620", "destination", "/sys", "type", "sysfs", "source", "sysfs",
	                 "options", "nosuid", "noexec", "nodev", "ro", "linux", "namespaces",
	                 "type", "pid", "type", "ipc", "type", "uts", "type", "mount");
}
