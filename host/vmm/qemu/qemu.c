/* The qemu backend's lifecycle half: create (parse the machine description), the
 * accelerator choice (a KVM probe child when "auto"), spawning QEMU paused with its QMP
 * monitor on a socketpair, QMP chains (a few commands in sequence), start / stop / the exit
 * through ev_child, SCSI hot-plug and hot-unplug, the QMP event table and the deferred
 * delivery of verb completions.  The migration verbs live in qemu_mig.c (qemu_priv.h holds
 * what both halves share). */
#include "host/vmm/qemu/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/vmm/qemu/kvm.h"
#include "host/vmm/qemu/qemu_priv.h"

#define QMP_CHILD_FD       3
#define DETACH_TIMEOUT_S   10.0
#define LOG_TAIL_MAX       400
#define EXIT_STATUS_SIGNAL 128

static const char *const verb_names[V_COUNT] = {"start",
                                                "stop",
                                                "scsi attach",
                                                "scsi detach",
                                                "migration init",
                                                "migration prepare",
                                                "migration start",
                                                "migration transfer",
                                                "migration finalize",
                                                "migration cancel"};

/* ======================= verbs: claim, finish, deliver ======================= */

int qvm_claim(struct qemu_vm *vm, enum qvm_verb v, vmm_done_fn fn, void *arg, struct err *e)
{
	struct qvm_slot *s = &vm->slots[v];
	if (s->busy)
		return err_set(e, -EBUSY, "qemu: %s already in progress", verb_names[v]);
	memset(s, 0, sizeof(*s));
	s->busy = true;
	s->fn = fn;
	s->arg = arg;
	return 0;
}

void qvm_finish(struct qemu_vm *vm, enum qvm_verb v, int status, const struct err *e)
{
	struct qvm_slot *s = &vm->slots[v];
	if (!s->busy || s->finished)
		return;
	s->finished = true;
	s->status = status;
	if (status < 0 && e)
		s->e = *e;
	else if (status < 0)
		err_set(&s->e, status, "qemu: %s failed", verb_names[v]);
	else
		err_clear(&s->e);
	ev_timer_start(vm->loop, &vm->defer_w);
}

static void on_defer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	reenter_enter(&vm->re);
	for (int v = 0; v < V_COUNT && !reenter_dying(&vm->re); v++) {
		struct qvm_slot *s = &vm->slots[v];
		if (!s->finished)
			continue;
		struct qvm_slot done = *s;
		memset(s, 0, sizeof(*s));
		if (done.fn)
			done.fn(&vm->base, done.status, done.status < 0 ? &done.e : NULL, done.arg);
	}
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

/* ======================= QMP chains ======================= */

static void chain_free(struct qchain *c)
{
	for (size_t i = 0; i < c->n; i++)
		json_decref(c->steps[i].args);
	free(c);
}

static void chain_unlink(struct qemu_vm *vm, struct qchain *c)
{
	for (struct qchain **p = &vm->chains; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

static void chain_next(struct qchain *c);

static void chain_end(struct qchain *c, int status, const struct err *e)
{
	struct qemu_vm *vm = c->vm;
	qchain_then then = c->then;
	chain_unlink(vm, c);
	chain_free(c);
	if (then)
		then(vm, status, e);
}

/* Close QMP and forget every chain in flight (QEMU is gone or going). */
static void drop_qmp(struct qemu_vm *vm)
{
	qmp_free(vm->qmp);
	vm->qmp = NULL;
	while (vm->chains) {
		struct qchain *c = vm->chains;
		vm->chains = c->next;
		chain_free(c);
	}
}

static void on_chain_reply(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud)
{
	(void)q;
	struct qchain *c = ud;
	struct qemu_vm *vm = c->vm;
	struct qstep *s = &c->steps[c->i];
	struct err f;
	reenter_enter(&vm->re);
	if (status < 0) {
		err_set(&f, status, "qemu: %s: %s", s->execute, e->msg);
		chain_end(c, status, &f);
	} else if (s->on_ret && s->on_ret(vm, ret, &f) < 0) {
		err_prefix(&f, "qemu: %s", s->execute);
		chain_end(c, f.code, &f);
	} else {
		c->i++;
		chain_next(c);
	}
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static void chain_next(struct qchain *c)
{
	struct err e;
	if (c->i == c->n) {
		chain_end(c, 0, NULL);
		return;
	}
	struct qstep *s = &c->steps[c->i];
	if (!c->vm->qmp) {
		err_set(&e, -ENOTCONN, "qemu: %s: no QMP connection", s->execute);
		chain_end(c, -ENOTCONN, &e);
		return;
	}
	if (qmp_command(c->vm->qmp, s->execute, s->args, s->fd, 0, on_chain_reply, c, &e) < 0)
		chain_end(c, e.code, &e);
}

int qvm_chain(struct qemu_vm *vm, const struct qstep *steps, size_t n, qchain_then then,
              struct err *e)
{
	if (!vm->qmp || !qmp_ready(vm->qmp) || n == 0 || n > QCHAIN_MAX) {
		for (size_t i = 0; i < n; i++)
			json_decref(steps[i].args);
		return err_set(e, -ENOTCONN, "qemu: no QMP connection (state %d)", (int)vm->st);
	}
	struct qchain *c = xcalloc(1, sizeof(*c));
	c->vm = vm;
	memcpy(c->steps, steps, n * sizeof(*steps));
	c->n = n;
	c->then = then;
	c->next = vm->chains;
	vm->chains = c;
	/* The first command is queued now; its reply (and everything after) comes from the
	 * loop, so `then` never runs inside the caller. */
	struct qstep *s = &c->steps[0];
	if (qmp_command(vm->qmp, s->execute, s->args, s->fd, 0, on_chain_reply, c, e) < 0) {
		chain_unlink(vm, c);
		chain_free(c);
		return e->code;
	}
	return 0;
}

static void on_fire_reply(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud)
{
	(void)q;
	(void)ret;
	if (status < 0 && status != -ECONNRESET)
		log_debug("qemu: %s: %s", (const char *)ud, e->msg);
}

void qvm_fire(struct qemu_vm *vm, const char *execute, json_t *args)
{
	struct err e;
	if (vm->qmp &&
	    qmp_command(vm->qmp, execute, args, -1, 0, on_fire_reply, (void *)execute, &e) < 0)
		log_debug("qemu: %s: %s", execute, e.msg);
	json_decref(args);
}

/* ======================= notifications, logs ======================= */

void qvm_notify(struct qemu_vm *vm, enum vmm_phase phase, enum vmm_phase_state state,
                const struct vmm_notification *extra)
{
	struct vmm_notification n = {0};
	if (extra)
		n = *extra;
	n.origin = vm->mig.origin;
	n.phase = phase;
	n.state = state;
	log_debug("qemu: migration notification origin=%d phase=%d state=%d", n.origin, phase,
	          state);
	if (vm->ev.on_notification)
		vm->ev.on_notification(&vm->base, &n, vm->ev.arg);
}

void qvm_log_tail(struct qemu_vm *vm, char *out, size_t n)
{
	char buf[LOG_TAIL_MAX + 1];
	out[0] = '\0';
	_cleanup_close_ int fd = open(vm->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > LOG_TAIL_MAX ? end - LOG_TAIL_MAX : 0;
	ssize_t got = pread(fd, buf, LOG_TAIL_MAX, from);
	if (got <= 0)
		return;
	buf[got] = '\0';
	for (ssize_t i = 0; i < got; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			buf[i] = ' ';
	snprintf(out, n, "%s", buf);
}

/* ======================= the QEMU process ======================= */

static void on_qmp_ready(struct qmp *q, int status, const struct err *e, void *ud);
static void on_qmp_event(struct qmp *q, const char *name, json_t *data, int64_t ts, void *ud);
static void on_qmp_close(struct qmp *q, const struct err *why, void *ud);
static void qmp_ready_cb(struct qemu_vm *vm, int status, const struct err *e);
static const struct qmp_ops qmp_ops = {
    .on_ready = on_qmp_ready, .on_event = on_qmp_event, .on_close = on_qmp_close};

/* fork + exec QEMU with the QMP socket as fd 3, stdout/stderr to qemu.log. */
static int spawn(struct qemu_vm *vm, struct err *e)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_sys(e, -errno, "qemu: socketpair");
	_cleanup_close_ int logfd =
	    open(vm->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	_cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || nullfd < 0) {
		int rc = err_sys(e, -errno, "qemu: open %s", vm->log_path);
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	char **argv =
	    qemu_machine_argv(&vm->m, vm->accel, QMP_CHILD_FD, vm->console_path, vm->incoming);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int rc = err_sys(e, -errno, "qemu: fork");
		qemu_argv_free(argv);
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (pid == 0) {
		/* The child: async-signal-safe calls only until exec. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 ||
		    dup2(sv[1], QMP_CHILD_FD) < 0)
			_exit(127);
		execvp(argv[0], argv);
		static const char msg[] = "ferry: exec of the qemu binary failed\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	qemu_argv_free(argv);
	close(sv[1]);
	vm->pid = pid;
	ev_child_set(&vm->child_w, pid, 0);
	ev_child_start(vm->loop, &vm->child_w);
	vm->qmp = qmp_new(vm->loop, sv[0], &qmp_ops, vm, e);
	if (!vm->qmp) {
		kill(pid, SIGKILL);
		vm->exit_silent = true;
		return e->code;
	}
	log_info("qemu: started pid=%d accel=%s machine=%s memory=%lluMiB cpus=%u%s", (int)pid,
	         vm->accel == QEMU_ACCEL_KVM ? "kvm" : "tcg", vm->m.machine,
	         (unsigned long long)vm->m.memory_mib, vm->m.cpus,
	         vm->incoming ? " incoming=defer" : "");
	return 0;
}

static void launch_failed(struct qemu_vm *vm, int status, const struct err *e)
{
	if (vm->pid > 0) {
		vm->exit_silent = true;
		kill(vm->pid, SIGKILL);
	} else {
		vm->st = QS_CREATED;
	}
	void (*after)(struct qemu_vm *, int, const struct err *) = vm->after_launch;
	vm->after_launch = NULL;
	if (after)
		after(vm, status, e);
}

static void probe_done(struct qemu_vm *vm, bool kvm, const char *why)
{
	struct err e;
	ev_timer_stop(vm->loop, &vm->probe_timer);
	vm->accel = kvm ? QEMU_ACCEL_KVM : QEMU_ACCEL_TCG;
	log_info("qemu: accel=%s (%s)", kvm ? "kvm" : "tcg", why);
	if (spawn(vm, &e) < 0)
		launch_failed(vm, e.code, &e);
}

static void on_probe_exit(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct qemu_vm *vm = w->data;
	ev_child_stop(loop, w);
	vm->probe_pid = 0;
	reenter_enter(&vm->re);
	bool ok = WIFEXITED(w->rstatus) && WEXITSTATUS(w->rstatus) == 0;
	if (vm->after_launch) /* (NULL: stopped while probing) */
		probe_done(vm, ok,
		           ok ? "a probe guest ran under kvm" : "the kvm probe guest failed");
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static void on_probe_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	if (vm->probe_pid > 0)
		kill(vm->probe_pid, SIGKILL); /* reaped by on_probe_exit, which then decides */
}

int qvm_launch(struct qemu_vm *vm, void (*after)(struct qemu_vm *, int, const struct err *),
               struct err *e)
{
	struct err why;
	vm->after_launch = after;
	vm->exit_silent = false;
	vm->exit_expected = false;
	vm->st = QS_LAUNCHING;
	if (vm->m.accel != QEMU_ACCEL_AUTO) {
		vm->accel = vm->m.accel;
		log_info("qemu: accel=%s (asked for)", vm->accel == QEMU_ACCEL_KVM ? "kvm" : "tcg");
		return spawn(vm, e);
	}
	if (qemu_kvm_precheck(QEMU_KVM_DEV, "/sys", &why) < 0) {
		vm->accel = QEMU_ACCEL_TCG;
		log_info("qemu: accel=tcg (%s)", why.msg);
		return spawn(vm, e);
	}
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, -errno, "qemu: fork the kvm probe");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(qemu_kvm_run_tiny_guest(QEMU_KVM_DEV, &why) == 0 ? 0 : 1);
	}
	vm->probe_pid = pid;
	ev_child_set(&vm->probe_w, pid, 0);
	ev_child_start(vm->loop, &vm->probe_w);
	ev_timer_set(&vm->probe_timer, QEMU_KVM_PROBE_TIMEOUT, 0.);
	ev_timer_start(vm->loop, &vm->probe_timer);
	return 0;
}

void qvm_terminate(struct qemu_vm *vm, bool force)
{
	vm->exit_expected = true;
	if (vm->pid <= 0)
		return;
	if (!force && vm->qmp && qmp_ready(vm->qmp))
		qvm_fire(vm, "quit", NULL);
	else
		kill(vm->pid, SIGKILL);
}

static void on_qmp_ready(struct qmp *q, int status, const struct err *e, void *ud)
{
	(void)q;
	struct qemu_vm *vm = ud;
	reenter_enter(&vm->re);
	qmp_ready_cb(vm, status, e);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static void qmp_ready_cb(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status == 0) {
		void (*after)(struct qemu_vm *, int, const struct err *) = vm->after_launch;
		vm->st = QS_PAUSED;
		vm->after_launch = NULL;
		if (after)
			after(vm, 0, NULL);
		return;
	}
	struct err f;
	char tail[LOG_TAIL_MAX + 1];
	qvm_log_tail(vm, tail, sizeof(tail));
	err_set(&f, status, "qemu did not come up (%s): %s", e->msg, tail[0] ? tail : "no output");
	qmp_free(vm->qmp);
	vm->qmp = NULL;
	launch_failed(vm, status, &f);
}

static void on_qmp_close(struct qmp *q, const struct err *why, void *ud)
{
	(void)q;
	struct qemu_vm *vm = ud;
	log_debug("qemu: qmp closed: %s", why->msg);
	qmp_free(vm->qmp);
	vm->qmp = NULL;
}

/* Verbs that end well when QEMU exits: the ones that asked it to. */
static bool exit_is_success(const struct qemu_vm *vm, enum qvm_verb v)
{
	return vm->exit_expected && (v == V_STOP || v == V_MIG_FINALIZE || v == V_MIG_CANCEL);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct qemu_vm *vm = w->data;
	ev_child_stop(loop, w);
	int rs = w->rstatus;
	int status = WIFEXITED(rs) ? WEXITSTATUS(rs) : EXIT_STATUS_SIGNAL + WTERMSIG(rs);
	reenter_enter(&vm->re);
	char tail[LOG_TAIL_MAX + 1];
	qvm_log_tail(vm, tail, sizeof(tail));
	log_info("qemu: pid=%d exited status=%d%s%s", (int)vm->pid, status,
	         vm->exit_expected ? "" : " (unexpected) ", vm->exit_expected ? "" : tail);
	vm->pid = 0;
	ev_timer_stop(loop, &vm->stop_timer);
	ev_timer_stop(loop, &vm->det_timer);
	drop_qmp(vm);
	qemu_mig_on_exit(vm);
	struct err e;
	err_set(&e, -ECHILD, "qemu exited (status %d): %s", status, tail[0] ? tail : "no output");
	if (vm->st == QS_LAUNCHING && vm->after_launch) {
		/* It died before QMP was up: the launch failed (reported now, quietly). */
		struct err f;
		err_set(&f, -ECHILD, "qemu did not come up (exit status %d): %s", status,
		        tail[0] ? tail : "no output");
		vm->exit_silent = true;
		launch_failed(vm, f.code, &f);
	}
	bool silent = vm->exit_silent;
	/* A launch that failed reported already and leaves the VM as created. */
	vm->st = silent ? QS_CREATED : QS_EXITED;
	vm->exit_silent = false;
	for (int v = 0; v < V_COUNT; v++)
		if (vm->slots[v].busy)
			qvm_finish(vm, (enum qvm_verb)v, exit_is_success(vm, v) ? 0 : -ECHILD, &e);
	if (!silent && vm->ev.on_exit)
		vm->ev.on_exit(&vm->base, status, vm->ev.arg);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

/* ======================= start / stop ======================= */

static void start_cont_done(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status == 0)
		vm->st = QS_RUNNING;
	qvm_finish(vm, V_START, status, e);
}

static void start_launched(struct qemu_vm *vm, int status, const struct err *e)
{
	struct err f;
	if (status < 0) {
		qvm_finish(vm, V_START, status, e);
		return;
	}
	struct qstep s = {.execute = "cont", .fd = -1};
	if (qvm_chain(vm, &s, 1, start_cont_done, &f) < 0)
		qvm_finish(vm, V_START, f.code, &f);
}

static int op_start(struct vmm *v, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (vm->slots[V_START].busy)
		return err_set(e, -EBUSY, "qemu: start already in progress");
	if (vm->incoming)
		return err_set(e, -EINVAL,
		               "qemu: a migration destination starts with the transfer");
	if (vm->st != QS_CREATED)
		return err_set(e, -EINVAL, "qemu: start: the vm was started already");
	if (vm->pid > 0)
		return err_set(e, -EBUSY, "qemu: start: the previous qemu is still exiting");
	if (qvm_claim(vm, V_START, done, arg, e) < 0)
		return e->code;
	if (qvm_launch(vm, start_launched, e) < 0) {
		memset(&vm->slots[V_START], 0, sizeof(vm->slots[V_START]));
		vm->st = QS_CREATED;
		return e->code;
	}
	return 0;
}

static void on_stop_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	log_info("qemu: pid=%d did not power off in %u ms: killing it", (int)vm->pid,
	         vm->m.stop_timeout_ms);
	if (vm->pid > 0)
		kill(vm->pid, SIGKILL);
}

static int op_stop(struct vmm *v, bool force, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (qvm_claim(vm, V_STOP, done, arg, e) < 0)
		return e->code;
	if (vm->pid <= 0 && vm->probe_pid <= 0) {
		/* Nothing runs (never started, or gone already). */
		qvm_finish(vm, V_STOP, 0, NULL);
		return 0;
	}
	vm->exit_expected = true;
	if (vm->probe_pid > 0 || force || !vm->qmp || !qmp_ready(vm->qmp) || vm->st != QS_RUNNING) {
		if (vm->pid > 0)
			kill(vm->pid, SIGKILL);
		if (vm->probe_pid > 0) {
			/* Launch abandoned: no QEMU will be started. */
			struct err c;
			err_set(&c, -ECANCELED, "qemu: stopped before it started");
			kill(vm->probe_pid, SIGKILL);
			vm->after_launch = NULL;
			vm->st = QS_EXITED;
			qvm_finish(vm, V_START, -ECANCELED, &c);
			qvm_finish(vm, V_MIG_PREPARE, -ECANCELED, &c);
		}
		if (vm->pid <= 0)
			qvm_finish(vm, V_STOP, 0, NULL);
		return 0;
	}
	/* ACPI power button; the guest may ignore it (ferry's /init does), hence the timer. */
	qvm_fire(vm, "system_powerdown", NULL);
	ev_timer_set(&vm->stop_timer, vm->m.stop_timeout_ms / 1e3, 0.);
	ev_timer_start(vm->loop, &vm->stop_timer);
	return 0;
}

/* ======================= SCSI ======================= */

static int check_slot(struct qemu_vm *vm, unsigned controller, unsigned lun, struct err *e)
{
	if (controller >= vm->m.scsi_controllers)
		return err_set(e, -EINVAL,
		               "qemu: scsi controller %u does not exist (%u configured)",
		               controller, vm->m.scsi_controllers);
	if (lun >= QEMU_SCSI_LUNS)
		return err_set(e, -EINVAL, "qemu: scsi lun %u out of range (0..%d)", lun,
		               QEMU_SCSI_LUNS - 1);
	if (vm->st != QS_RUNNING && vm->st != QS_PAUSED)
		return err_set(e, -EINVAL, "qemu: scsi: the vm is not running");
	return 0;
}

static void attach_done(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status == 0) {
		qemu_machine_add_disk(&vm->m, &vm->pending_disk);
	} else if (vm->qmp) {
		/* device_add failed after blockdev-add (or blockdev-add failed: harmless). */
		char node[32];
		qemu_disk_names(vm->pending_disk.controller, vm->pending_disk.lun, node,
		                sizeof(node), NULL, 0);
		qvm_fire(vm, "blockdev-del", json_pack("{s:s}", "node-name", node));
	}
	free(vm->pending_disk.path);
	vm->pending_disk.path = NULL;
	qvm_finish(vm, V_ATTACH, status, e);
}

static int op_scsi_attach(struct vmm *v, unsigned controller, unsigned lun,
                          const struct vmm_disk *disk, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (check_slot(vm, controller, lun, e) < 0)
		return e->code;
	if (!disk || !disk->host_path || disk->host_path[0] != '/')
		return err_set(e, -EINVAL, "qemu: scsi attach needs an absolute host path");
	bool passthru = disk->type && strcmp(disk->type, "PassThru") == 0;
	if (disk->type && !passthru && strcmp(disk->type, "VirtualDisk") != 0)
		return err_set(e, -ENOTSUP,
		               "qemu: disk type %s is not supported (VirtualDisk, "
		               "PassThru)",
		               disk->type);
	if (qemu_machine_find_disk(&vm->m, controller, lun) >= 0)
		return err_set(e, -EEXIST, "qemu: scsi %u:%u is in use", controller, lun);
	if (qvm_claim(vm, V_ATTACH, done, arg, e) < 0)
		return e->code;
	vm->pending_disk = (struct qemu_disk){.controller = controller,
	                                      .lun = lun,
	                                      .path = xstrdup(disk->host_path),
	                                      .read_only = disk->read_only,
	                                      .passthru = passthru};
	struct qstep steps[2] = {
	    {.execute = "blockdev-add", .args = qemu_disk_blockdev(&vm->pending_disk), .fd = -1},
	    {.execute = "device_add", .args = qemu_disk_device(&vm->pending_disk), .fd = -1},
	};
	if (qvm_chain(vm, steps, 2, attach_done, e) < 0) {
		free(vm->pending_disk.path);
		vm->pending_disk.path = NULL;
		memset(&vm->slots[V_ATTACH], 0, sizeof(vm->slots[V_ATTACH]));
		return e->code;
	}
	return 0;
}

static void detach_finish(struct qemu_vm *vm, int status, const struct err *e)
{
	ev_timer_stop(vm->loop, &vm->det_timer);
	qvm_finish(vm, V_DETACH, status, e);
}

static void detach_deleted(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status == 0) {
		int i = qemu_machine_find_disk(&vm->m, vm->det_controller, vm->det_lun);
		if (i >= 0)
			qemu_machine_remove_disk(&vm->m, (size_t)i);
	}
	detach_finish(vm, status, e);
}

/* Both the device_del reply and DEVICE_DELETED came: release the block node. */
static void detach_step(struct qemu_vm *vm)
{
	struct err e;
	if (!vm->det_event || !vm->det_replied || !vm->slots[V_DETACH].busy)
		return;
	ev_timer_stop(vm->loop, &vm->det_timer);
	char node[32];
	qemu_disk_names(vm->det_controller, vm->det_lun, node, sizeof(node), NULL, 0);
	struct qstep s = {
	    .execute = "blockdev-del", .args = json_pack("{s:s}", "node-name", node), .fd = -1};
	if (qvm_chain(vm, &s, 1, detach_deleted, &e) < 0)
		detach_finish(vm, e.code, &e);
}

static void detach_replied(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0) {
		detach_finish(vm, status, e);
		return;
	}
	vm->det_replied = true;
	detach_step(vm);
}

static void on_detach_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	struct err e;
	reenter_enter(&vm->re);
	err_set(&e, -ETIMEDOUT, "qemu: scsi %u:%u: no DEVICE_DELETED within %.0f s",
	        vm->det_controller, vm->det_lun, DETACH_TIMEOUT_S);
	detach_finish(vm, -ETIMEDOUT, &e);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static int op_scsi_detach(struct vmm *v, unsigned controller, unsigned lun, vmm_done_fn done,
                          void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (check_slot(vm, controller, lun, e) < 0)
		return e->code;
	if (qemu_machine_find_disk(&vm->m, controller, lun) < 0)
		return err_set(e, -ENOENT, "qemu: no disk at scsi %u:%u", controller, lun);
	if (qvm_claim(vm, V_DETACH, done, arg, e) < 0)
		return e->code;
	vm->det_controller = controller;
	vm->det_lun = lun;
	vm->det_event = vm->det_replied = false;
	char dev[32];
	qemu_disk_names(controller, lun, NULL, 0, dev, sizeof(dev));
	struct qstep s = {.execute = "device_del", .args = json_pack("{s:s}", "id", dev), .fd = -1};
	if (qvm_chain(vm, &s, 1, detach_replied, e) < 0) {
		memset(&vm->slots[V_DETACH], 0, sizeof(vm->slots[V_DETACH]));
		return e->code;
	}
	ev_timer_set(&vm->det_timer, DETACH_TIMEOUT_S, 0.);
	ev_timer_start(vm->loop, &vm->det_timer);
	return 0;
}

/* ======================= events ======================= */

static void ev_device_deleted(struct qemu_vm *vm, const char *name, json_t *data)
{
	(void)name;
	char dev[32];
	const char *id = json_string_value(json_object_get(data, "device"));
	qemu_disk_names(vm->det_controller, vm->det_lun, NULL, 0, dev, sizeof(dev));
	if (!vm->slots[V_DETACH].busy || !id || strcmp(id, dev) != 0)
		return;
	vm->det_event = true;
	detach_step(vm);
}

static void ev_shutdown(struct qemu_vm *vm, const char *name, json_t *data)
{
	(void)name;
	const char *reason = json_string_value(json_object_get(data, "reason"));
	log_info("qemu: pid=%d shutting down (%s)", (int)vm->pid, reason ? reason : "?");
}

static void ev_migration(struct qemu_vm *vm, const char *name, json_t *data)
{
	qemu_mig_on_event(vm, name, data);
}

static const struct {
	const char *name;
	void (*fn)(struct qemu_vm *vm, const char *name, json_t *data);
} event_table[] = {
    {"DEVICE_DELETED", ev_device_deleted}, {"SHUTDOWN", ev_shutdown}, {"MIGRATION", ev_migration},
    {"MIGRATION_PASS", ev_migration},      {"STOP", ev_migration},    {"RESUME", ev_migration},
};

static void on_qmp_event(struct qmp *q, const char *name, json_t *data, int64_t ts, void *ud)
{
	(void)q;
	(void)ts;
	struct qemu_vm *vm = ud;
	size_t i = 0;
	while (i < sizeof(event_table) / sizeof(event_table[0]) &&
	       strcmp(event_table[i].name, name) != 0)
		i++;
	if (i == sizeof(event_table) / sizeof(event_table[0])) {
		log_debug("qemu: event %s", name);
		return;
	}
	/* The handlers may notify the owner, who may free the VM. */
	reenter_enter(&vm->re);
	event_table[i].fn(vm, name, data);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

/* ======================= describe, create, free ======================= */

static json_t *op_describe(struct vmm *v, struct err *e)
{
	(void)e;
	return qemu_machine_to_json(&qvm(v)->m);
}

static const char *op_guest_transport(struct vmm *v)
{
	return qvm(v)->host_transport;
}

/* A QEMU still running when its VM is freed is killed; this reaps it later. */
struct reaper {
	ev_child w;
};

static void on_reaped(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	ev_child_stop(loop, w);
	free(w->data);
}

static void reap_later(struct ev_loop *loop, pid_t pid)
{
	kill(pid, SIGKILL);
	struct reaper *r = xcalloc(1, sizeof(*r));
	ev_child_init(&r->w, on_reaped, pid, 0);
	r->w.data = r;
	ev_child_start(loop, &r->w);
}

static void stop_all(struct qemu_vm *vm)
{
	ev_timer_stop(vm->loop, &vm->defer_w);
	ev_timer_stop(vm->loop, &vm->stop_timer);
	ev_timer_stop(vm->loop, &vm->det_timer);
	ev_timer_stop(vm->loop, &vm->probe_timer);
	ev_child_stop(vm->loop, &vm->child_w);
	ev_child_stop(vm->loop, &vm->probe_w);
	qemu_mig_fini(vm);
	drop_qmp(vm);
	if (vm->pid > 0)
		reap_later(vm->loop, vm->pid);
	if (vm->probe_pid > 0)
		reap_later(vm->loop, vm->probe_pid);
	vm->pid = vm->probe_pid = 0;
	memset(vm->slots, 0, sizeof(vm->slots));
}

void qvm_destroy(struct qemu_vm *vm)
{
	qemu_machine_fini(&vm->m);
	free(vm->pending_disk.path);
	free(vm->state_dir);
	free(vm->console_path);
	free(vm->log_path);
	free(vm);
}

static void op_free(struct vmm *v)
{
	struct qemu_vm *vm = qvm(v);
	stop_all(vm);
	if (reenter_defer_free(&vm->re))
		return;
	qvm_destroy(vm);
}

static const struct vmm_ops qemu_ops = {
    .start = op_start,
    .stop = op_stop,
    .scsi_attach = op_scsi_attach,
    .scsi_detach = op_scsi_detach,
    .describe = op_describe,
    .guest_transport = op_guest_transport,
    .mig_init_source = qemu_mig_init_source,
    .mig_compat_info = qemu_mig_compat_info,
    .mig_prepare_dest = qemu_mig_prepare_dest,
    .mig_start = qemu_mig_start,
    .mig_transfer = qemu_mig_transfer,
    .mig_finalize = qemu_mig_finalize,
    .mig_cancel = qemu_mig_cancel,
    .free = op_free,
};

static struct vmm *qemu_create(struct ev_loop *loop, const json_t *machine, const char *state_dir,
                               bool incoming, const struct vmm_events *ev, struct err *e)
{
	if (!ev_is_default_loop(loop)) {
		err_set(e, -EINVAL, "qemu: the backend needs libev's default loop (ev_child)");
		return NULL;
	}
	if (!state_dir || !*state_dir) {
		err_set(e, -EINVAL, "qemu: no state directory");
		return NULL;
	}
	struct qemu_vm *vm = xcalloc(1, sizeof(*vm));
	if (qemu_machine_parse(machine, &vm->m, e) < 0) {
		free(vm);
		return NULL;
	}
	vm->base.ops = &qemu_ops;
	vm->base.backend = "qemu";
	vm->loop = loop;
	if (ev)
		vm->ev = *ev;
	vm->incoming = incoming;
	vm->st = QS_CREATED;
	vm->state_dir = xstrdup(state_dir);
	vm->console_path = xasprintf("%s/console.log", state_dir);
	vm->log_path = xasprintf("%s/qemu.log", state_dir);
	qemu_machine_host_transport(&vm->m, vm->host_transport, sizeof(vm->host_transport));
	ev_child_init(&vm->child_w, on_child, 0, 0);
	vm->child_w.data = vm;
	ev_child_init(&vm->probe_w, on_probe_exit, 0, 0);
	vm->probe_w.data = vm;
	ev_timer_init(&vm->probe_timer, on_probe_timeout, 0., 0.);
	vm->probe_timer.data = vm;
	ev_timer_init(&vm->defer_w, on_defer, 0., 0.);
	vm->defer_w.data = vm;
	ev_timer_init(&vm->stop_timer, on_stop_timeout, 0., 0.);
	vm->stop_timer.data = vm;
	ev_timer_init(&vm->det_timer, on_detach_timeout, 0., 0.);
	vm->det_timer.data = vm;
	qemu_mig_init(vm);
	return &vm->base;
}

const struct vmm_backend qemu_backend = {.name = "qemu", .create = qemu_create};

/* ======================= qemu-specific views ======================= */

void qemu_vm_mig_stats(struct vmm *v, struct qemu_mig_stats *out)
{
	*out = qvm(v)->mig.stats;
}

pid_t qemu_vm_pid(struct vmm *v)
{
	return qvm(v)->pid;
}

const char *qemu_vm_accel(struct vmm *v)
{
	enum qemu_accel a = qvm(v)->accel;
	return a == QEMU_ACCEL_KVM ? "kvm" : a == QEMU_ACCEL_TCG ? "tcg" : "";
}
