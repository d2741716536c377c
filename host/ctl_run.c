/* `ferryctl gcs-run` implementation: one run context on the stack, driven by the libev
 * default loop (the default loop because a locally spawned ferry-gcs is watched with
 * ev_child).  Sequence: listen -> spawn guest -> negotiate -> [create, start container] ->
 * ExecuteProcess with stdio relayed to fds 0/1/2 -> exit code -> [wait for the container
 * exit notification, delete] -> stop the guest.  SIGWINCH resizes a terminal process;
 * SIGINT/SIGTERM are forwarded to the process (a second one aborts the run). */
#include "host/ctl_run.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/proto.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"

#define NOTIFY_GRACE_S   5.0
#define GCS_STOP_GRACE_S 2.0

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
	argv[n++] = "--once";
	argv[n++] = "--no-poweroff";
	argv[n++] = "--log-level";
	argv[n++] = log_current_level >= LOG_LVL_DEBUG ? "debug" : "warn";
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

int ctl_gcs_run(const struct ctl_run_opts *o, int *exit_code, struct err *e)
{
	if (!o->transport || !o->argv || !o->argv[0])
		return err_set(e, -EINVAL, "gcs-run: need --transport and a command");
	if (!o->uvm && !o->rootfs)
		return err_set(e, -EINVAL, "gcs-run: need --rootfs (or --uvm)");
	struct run r = {.o = o, .loop = ev_default_loop(0)};
	r.cid = o->container_id ? xstrdup(o->container_id) : xasprintf("ferryctl-%d", getpid());
	for (int i = 0; i < 3; i++)
		r.saved_fl[i] = fcntl(i, F_GETFL);
	ev_signal_init(&r.winch_w, on_winch, SIGWINCH);
	r.winch_w.data = &r;
	ev_signal_init(&r.int_w, on_interrupt, SIGINT);
	r.int_w.data = &r;
	ev_signal_init(&r.term_w, on_interrupt, SIGTERM);
	r.term_w.data = &r;

	struct gcs_client_config cfg = {
	    .addr = o->transport, .accept_timeout_ms = o->accept_timeout_ms, .cold_start = true};
	struct gcs_client_ops ops = {
	    .on_ready = on_ready, .on_container_exit = on_container_exit, .on_close = on_close};
	/* Listen before the guest starts. */
	r.c = gcs_client_new(r.loop, &cfg, &ops, &r, e);
	if (!r.c) {
		free(r.cid);
		return e->code;
	}
	if (o->gcs_path && spawn_gcs(&r, e) < 0) {
		gcs_client_free(r.c);
		free(r.cid);
		return e->code;
	}
	ev_signal_start(r.loop, &r.int_w);
	ev_signal_start(r.loop, &r.term_w);
	if (o->terminal && o->interactive)
		term_raw(&r);
	ev_run(r.loop, 0);
	term_restore(&r);
	ev_signal_stop(r.loop, &r.winch_w);
	ev_signal_stop(r.loop, &r.int_w);
	ev_signal_stop(r.loop, &r.term_w);
	ev_timer_stop(r.loop, &r.notify_timer);
	if (r.gcs_pid > 0)
		ev_child_stop(r.loop, &r.gcs_w);
	gcs_process_free(r.p);
	gcs_client_free(r.c);
	stop_gcs(&r);
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
