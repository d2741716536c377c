/* The simulated host of vmhost.h: the test's side (spawn, send, wait for answers and events)
 * and the host process's side (a libev default loop with one qemu VM and one GCS client,
 * commands read from a pipe and dispatched through a table, answers and events written to
 * the other). */
#include "tests/lib/vmhost.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"
#include "host/vmm/qemu/qemu.h"
#include "tests/lib/testenv.h"

#define HOST_PROCS_MAX 64

/* ======================= the host process ======================= */

struct hproc {
	struct gcs_process *p;
	char cid[80];
	int out_fd;
	bool reply_at_exit; /* a `uvm` command waits for its exit */
};

struct host {
	struct ev_loop *loop;
	char dir[512];
	char name[16];
	int cmd_fd, evt_fd;
	ev_io cmd_w;
	char line[VMHOST_LINE_MAX];
	size_t nline;
	bool busy;
	long long t0; /* start of the command in progress */
	struct vmm *vm;
	int vms; /* VMs created so far (state directory names) */
	struct gcs_client *c;
	struct hproc procs[HOST_PROCS_MAX];
	int nprocs;
	int lfd;
	ev_io accept_w;
	uint32_t session;
	long long t_resume;
	bool adopted; /* the client took over a guest (adopt) */
	ev_timer attach_w;
	char arg[VMHOST_LINE_MAX]; /* the command's saved argument (paths) */
	char arg2[VMHOST_LINE_MAX];
};

static void emit(struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct host *h, const char *fmt, ...)
{
	char b[VMHOST_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(b) - 2)
		n = (int)sizeof(b) - 2;
	for (int i = 0; i < n; i++)
		if (b[i] == '\n')
			b[i] = ' ';
	b[n++] = '\n';
	struct err e;
	if (fd_write_all(h->evt_fd, b, (size_t)n, &e) < 0)
		_exit(90);
}

static double ms_since(long long t)
{
	return (double)(mono_ns() - t) / 1e6;
}

/* The answer to the command in progress (one per command; a late second one is dropped). */
static void answer(struct host *h, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer(struct host *h, bool ok, const char *fmt, ...)
{
	char b[VMHOST_LINE_MAX - 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (!h->busy) {
		log_info("host %s: dropped a second answer: %s", h->name, b);
		return;
	}
	h->busy = false;
	emit(h, "%s %s", ok ? "ok" : "err", b);
}
#define OK(h, ...)   answer((h), true, __VA_ARGS__)
#define FAIL(h, ...) answer((h), false, __VA_ARGS__)

static char *path_of(struct host *h, const char *p)
{
	return p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", h->dir, p);
}

static char *read_file(struct host *h, const char *p, size_t *len)
{
	_cleanup_free_ char *path = path_of(h, p);
	return testenv_read_file(path, len);
}

static int write_file(struct host *h, const char *p, const void *data, size_t n)
{
	_cleanup_free_ char *path = path_of(h, p);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct err e;
	return fd < 0 ? -errno : fd_write_all(fd, data, n, &e);
}

static json_t *read_json(struct host *h, const char *p)
{
	size_t n;
	_cleanup_free_ char *t = read_file(h, p, &n);
	return t ? json_loadb(t, n, 0, NULL) : NULL;
}

/* ---- VM and client callbacks ---- */

static void vm_exit(struct vmm *vm, int status, void *arg)
{
	(void)vm;
	emit(arg, "ev vmexit %d", status);
}

static void vm_note(struct vmm *vm, const struct vmm_notification *n, void *arg)
{
	(void)vm;
	emit(arg, "ev note %d %d %d %llu", n->origin, n->phase, n->state,
	     (unsigned long long)n->blackout_ms);
}

static const struct vmm_events vm_events = {.on_exit = vm_exit, .on_notification = vm_note};

static void c_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	(void)c;
	struct host *h = ud;
	if (h->adopted) /* an adopting client's first negotiation is the guest coming back */
		emit(h, "ev reconnect %d %.1f", status, ms_since(h->t_resume));
	else if (status < 0)
		FAIL(h, "bridge: %s", e ? e->msg : "?");
	else
		OK(h, "%.1f", ms_since(h->t0));
}

static void c_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	emit(ud, "ev close %s", why->msg);
}

static void c_cexit(struct gcs_client *c, const char *id, const char *type, void *ud)
{
	(void)c;
	emit(ud, "ev cexit %s %s", id, type);
}

static void c_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	(void)c;
	(void)e;
	struct host *h = ud;
	emit(h, "ev reconnect %d %.1f", status, ms_since(h->t_resume));
}

static const struct gcs_client_ops client_ops = {.on_ready = c_ready,
                                                 .on_close = c_close,
                                                 .on_container_exit = c_cexit,
                                                 .on_reconnect = c_reconnect};

static struct hproc *hproc_of(struct host *h, struct gcs_process *p)
{
	for (int i = 0; i < h->nprocs; i++)
		if (h->procs[i].p == p)
			return &h->procs[i];
	return NULL;
}

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct host *h = ud;
	struct hproc *x = hproc_of(h, p);
	if (r->status < 0)
		FAIL(h, "start process: %s", r->err.msg);
	else if (x && !x->reply_at_exit)
		OK(h, "%u", gcs_process_pid(p));
}

static void p_exit(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct host *h = ud;
	struct hproc *x = hproc_of(h, p);
	if (x && x->reply_at_exit) {
		x->reply_at_exit = false;
		if (r->status < 0)
			FAIL(h, "wait: %s", r->err.msg);
		else
			OK(h, "%u", code);
	} else if (r->status < 0) {
		emit(h, "ev exit %s %u error %s", gcs_process_container_id(p), gcs_process_pid(p),
		     r->err.msg);
	} else {
		emit(h, "ev exit %s %u %u", gcs_process_container_id(p), gcs_process_pid(p), code);
	}
}

static const struct gcs_process_ops proc_ops = {.on_started = p_started, .on_exit = p_exit};

static struct hproc *new_proc(struct host *h, const char *cid, const char *file, bool trunc)
{
	if (h->nprocs == HOST_PROCS_MAX)
		return NULL;
	struct hproc *x = &h->procs[h->nprocs++];
	memset(x, 0, sizeof(*x));
	snprintf(x->cid, sizeof(x->cid), "%s", cid);
	_cleanup_free_ char *path = path_of(h, file);
	x->out_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : O_APPEND), 0644);
	return x;
}

static void drop_procs(struct host *h)
{
	for (int i = 0; i < h->nprocs; i++)
		if (h->procs[i].out_fd >= 0)
			close(h->procs[i].out_fd);
	h->nprocs = 0;
}

/* ---- commands ---- */

static void done_ms(struct vmm *vm, int status, const struct err *e, void *arg)
{
	(void)vm;
	struct host *h = arg;
	if (status < 0)
		FAIL(h, "%s", e ? e->msg : "failed");
	else
		OK(h, "%.1f", ms_since(h->t0));
}

static struct vmm *new_vm(struct host *h, const char *desc, bool incoming, struct err *e)
{
	json_t *m = read_json(h, desc);
	if (!m) {
		err_set(e, -EINVAL, "cannot read the machine description %s", desc);
		return NULL;
	}
	_cleanup_free_ char *sd = xasprintf("%s/vm-%s-%d", h->dir, h->name, h->vms++);
	mkdir(sd, 0700);
	struct vmm_events ev = vm_events;
	ev.arg = h;
	struct vmm *vm = qemu_backend.create(h->loop, m, sd, incoming, &ev, e);
	json_decref(m);
	/* (create copies the events: nothing points at ev afterwards) */
	// cppcheck-suppress returnDanglingLifetime
	return vm;
}

static void boot_started(struct vmm *vm, int status, const struct err *e, void *arg)
{
	(void)vm;
	struct host *h = arg;
	if (status < 0)
		FAIL(h, "start: %s", e->msg);
	/* otherwise the bridge's on_ready answers */
}

static void cmd_boot(struct host *h, char *a)
{
	struct err e;
	vmm_free(h->vm);
	h->adopted = false;
	if (!(h->vm = new_vm(h, a, false, &e))) {
		FAIL(h, "%s", e.msg);
		return;
	}
	struct gcs_client_config cfg = {.addr = h->vm->ops->guest_transport(h->vm),
	                                .accept_timeout_ms = 120000};
	if (!(h->c = gcs_client_new(h->loop, &cfg, &client_ops, h, &e)) ||
	    h->vm->ops->start(h->vm, boot_started, h, &e) < 0)
		FAIL(h, "%s", e.msg);
}

static void cmd_attach(struct host *h, char *a)
{
	unsigned c, l;
	char path[1024], mode[8];
	struct err e;
	if (sscanf(a, "%u %u %1023s %7s", &c, &l, path, mode) != 4) {
		FAIL(h, "usage: attach C L PATH ro|rw");
		return;
	}
	_cleanup_free_ char *p = path_of(h, path);
	struct vmm_disk d = {.host_path = p, .read_only = strcmp(mode, "ro") == 0};
	if (h->vm->ops->scsi_attach(h->vm, c, l, &d, done_ms, h, &e) < 0)
		FAIL(h, "%s", e.msg);
}

static void cmd_detach(struct host *h, char *a)
{
	unsigned c, l;
	struct err e;
	if (sscanf(a, "%u %u", &c, &l) != 2 ||
	    h->vm->ops->scsi_detach(h->vm, c, l, done_ms, h, &e) < 0)
		FAIL(h, "detach: %s", e.msg);
}

static void rpc_done(struct gcs_client *c, const struct gcs_result *r, void *ud)
{
	(void)c;
	struct host *h = ud;
	if (r->status < 0)
		FAIL(h, "%s", r->err.msg);
	else
		OK(h, "%.1f", ms_since(h->t0));
}

static void cmd_modify(struct host *h, char *a)
{
	struct err e;
	json_t *j = json_loads(a, 0, NULL);
	if (!j || gcs_client_modify_settings(h->c, GCS_NULL_CONTAINER_ID, j, rpc_done, h, &e) < 0)
		FAIL(h, "modify: %s", j ? e.msg : "bad JSON");
	json_decref(j);
}

static void container_created(struct gcs_client *c, const struct gcs_result *r, void *ud)
{
	struct host *h = ud;
	struct err e;
	if (r->status < 0)
		FAIL(h, "create: %s", r->err.msg);
	else if (gcs_client_start_container(c, h->arg, rpc_done, h, &e) < 0)
		FAIL(h, "start: %s", e.msg);
}

static void cmd_container(struct host *h, char *a)
{
	struct err e;
	char cid[80];
	if (sscanf(a, "%79s", cid) != 1) {
		FAIL(h, "usage: container CID SCRIPT");
		return;
	}
	snprintf(h->arg, sizeof(h->arg), "%s", cid);
	const char *script = a + strlen(cid) + (a[strlen(cid)] ? 1 : 0);
	const char *const args[] = {"sh", "-c", script, NULL};
	_cleanup_free_ char *root = xasprintf("/run/gcs/c/%s/rootfs", cid);
	_cleanup_free_ char *bundle = xasprintf("/run/gcs/c/%s", cid);
	json_t *spec = testenv_oci_spec(root, args, false);
	struct gcs_container_config cc = {.bundle_path = bundle, .oci_spec = spec};
	if (gcs_client_create_container(h->c, cid, &cc, container_created, h, &e) < 0)
		FAIL(h, "create: %s", e.msg);
	json_decref(spec);
}

static void start_proc(struct host *h, struct hproc *x, const char *cid, const char *const *argv)
{
	struct err e;
	struct gcs_process_config pc = {
	    .container_id = cid,
	    .argv = argv,
	    .stdio = {
	        .want_stdout = true, .stdin_fd = -1, .stdout_fd = x->out_fd, .stderr_fd = -1}};
	if (!(x->p = gcs_process_start(h->c, &pc, &proc_ops, h, &e)))
		FAIL(h, "process: %s", e.msg);
}

static void cmd_init(struct host *h, char *a)
{
	_cleanup_free_ char *file = xasprintf("out.%s", a);
	struct hproc *x = new_proc(h, a, file, false);
	if (!x) {
		FAIL(h, "too many processes");
		return;
	}
	start_proc(h, x, a, NULL);
}

static void cmd_uvm(struct host *h, char *a)
{
	char file[512];
	if (sscanf(a, "%511s", file) != 1) {
		FAIL(h, "usage: uvm FILE SCRIPT");
		return;
	}
	struct hproc *x = new_proc(h, GCS_NULL_CONTAINER_ID, file, true);
	if (!x) {
		FAIL(h, "too many processes");
		return;
	}
	x->reply_at_exit = true;
	const char *const argv[] = {"/bin/sh", "-c", a + strlen(file) + 1, NULL};
	start_proc(h, x, NULL, argv);
}

static void cmd_shutdown(struct host *h, char *a)
{
	struct err e;
	if (gcs_client_shutdown_container(h->c, a, false, rpc_done, h, &e) < 0)
		FAIL(h, "%s", e.msg);
}

static void mig_inited(struct vmm *vm, int status, const struct err *e, void *arg)
{
	struct host *h = arg;
	struct err f;
	if (status < 0) {
		FAIL(h, "%s", e->msg);
		return;
	}
	struct buf b;
	buf_init(&b);
	json_t *d = vm->ops->describe(vm, &f);
	_cleanup_free_ char *text = d ? json_dumps(d, JSON_INDENT(1)) : NULL;
	json_decref(d);
	if (vm->ops->mig_compat_info(vm, &b, &f) < 0 || !text ||
	    write_file(h, h->arg, buf_head(&b), buf_avail(&b)) < 0 ||
	    write_file(h, h->arg2, text, strlen(text)) < 0)
		FAIL(h, "compat info / describe: %s", f.msg);
	else
		OK(h, "%.1f", ms_since(h->t0));
	buf_fini(&b);
}

static const struct vmm_mig_options mig_opts = {.memory_transport = 1};

static void cmd_mig_init(struct host *h, char *a)
{
	struct err e;
	if (sscanf(a, "%4095s %4095s", h->arg, h->arg2) != 2 ||
	    h->vm->ops->mig_init_source(h->vm, &mig_opts, mig_inited, h, &e) < 0)
		FAIL(h, "mig_init: %s", e.msg);
}

static void cmd_mig_prepare(struct host *h, char *a)
{
	char desc[1024], blob[1024];
	struct err e;
	size_t n;
	if (sscanf(a, "%1023s %1023s", desc, blob) != 2) {
		FAIL(h, "usage: mig_prepare DESC BLOB");
		return;
	}
	_cleanup_free_ char *b = read_file(h, blob, &n);
	vmm_free(h->vm);
	if (!b || !(h->vm = new_vm(h, desc, true, &e)) ||
	    h->vm->ops->mig_prepare_dest(h->vm, &mig_opts, (const uint8_t *)b, n, done_ms, h, &e) <
	        0)
		FAIL(h, "mig_prepare: %s", b ? e.msg : "no blob");
}

static void cmd_mig_listen(struct host *h, char *a)
{
	int one = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(a))};
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(h->lfd, 4) < 0)
		FAIL(h, "listen: %s", strerror(errno));
	else
		OK(h, "listening");
}

/* The transfer's outcome is an event: the host stays free for mig_cancel meanwhile. */
static void transferred(struct vmm *vm, int status, const struct err *e, void *arg)
{
	struct host *h = arg;
	if (status < 0) {
		emit(h, "ev transfer err %s", e->msg);
		return;
	}
	struct qemu_mig_stats s;
	qemu_vm_mig_stats(vm, &s);
	emit(h, "ev transfer ok %llu %llu %llu %u", (unsigned long long)s.total_ms,
	     (unsigned long long)s.downtime_ms, (unsigned long long)s.bytes, s.passes);
}

static void mig_started(struct vmm *vm, int status, const struct err *e, void *arg)
{
	struct host *h = arg;
	struct err f;
	if (status < 0)
		emit(h, "ev transfer err mig_start: %s", e->msg);
	else if (vm->ops->mig_transfer(vm, transferred, h, &f) < 0)
		emit(h, "ev transfer err mig_transfer: %s", f.msg);
}

static void start_with(struct host *h, int fd)
{
	struct err e;
	if (fd < 0)
		emit(h, "ev transfer err migration connection: %s", strerror(errno));
	else if (h->vm->ops->mig_start(h->vm, fd, h->session, mig_started, h, &e) < 0)
		emit(h, "ev transfer err mig_start: %s", e.msg);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct host *h = w->data;
	ev_io_stop(loop, w);
	int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
	close(h->lfd);
	h->lfd = -1;
	start_with(h, fd);
}

static void cmd_mig_recv(struct host *h, char *a)
{
	h->session = (uint32_t)strtoul(a, NULL, 10);
	ev_io_init(&h->accept_w, on_accept, h->lfd, EV_READ);
	h->accept_w.data = h;
	ev_io_start(h->loop, &h->accept_w);
	OK(h, "accepting");
}

static void cmd_mig_send(struct host *h, char *a)
{
	char ip[64];
	unsigned port, session;
	if (sscanf(a, "%63s %u %u", ip, &port, &session) != 3) {
		FAIL(h, "usage: mig_send IP PORT SESSION");
		return;
	}
	h->session = session;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sin.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		fd = -1;
	}
	OK(h, "sending");
	start_with(h, fd);
}

static void cmd_mig_cancel(struct host *h, char *a)
{
	(void)a;
	struct err e;
	if (h->vm->ops->mig_cancel(h->vm, done_ms, h, &e) < 0)
		FAIL(h, "%s", e.msg);
}

static void finalized(struct vmm *vm, int status, const struct err *e, void *arg)
{
	(void)vm;
	struct host *h = arg;
	h->t_resume = mono_ns();
	done_ms(vm, status, e, arg);
}

static void cmd_mig_finalize(struct host *h, char *a)
{
	struct err e;
	if (h->vm->ops->mig_finalize(h->vm, strcmp(a, "resume") == 0, finalized, h, &e) < 0)
		FAIL(h, "%s", e.msg);
}

static void cmd_cut(struct host *h, char *a)
{
	struct err e;
	if (gcs_client_cut(h->c, &e) < 0) {
		FAIL(h, "cut: %s", e.msg);
		return;
	}
	struct gcs_client_state st;
	gcs_client_export_state(h->c, &st);
	_cleanup_free_ char *text = gcs_client_state_to_json(&st);
	gcs_client_state_fini(&st);
	if (write_file(h, a, text, strlen(text)) < 0)
		FAIL(h, "write %s", a);
	else
		OK(h, "%.1f", ms_since(h->t0));
}

static void cmd_release(struct host *h, char *a)
{
	(void)a;
	gcs_client_free(h->c);
	h->c = NULL;
	drop_procs(h);
	OK(h, "released");
}

static void on_attach_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct host *h = w->data;
	for (int i = 0; i < h->nprocs; i++)
		if (h->procs[i].p && !gcs_process_finished(h->procs[i].p) &&
		    !gcs_process_stdio_attached(h->procs[i].p))
			return;
	ev_timer_stop(loop, w);
	emit(h, "ev attached %.1f", ms_since(h->t_resume));
}

static void cmd_adopt(struct host *h, char *a)
{
	struct err e;
	size_t n;
	struct gcs_client_state st;
	_cleanup_free_ char *text = read_file(h, a, &n);
	struct gcs_client_config cfg = {.addr = h->vm->ops->guest_transport(h->vm),
	                                .accept_timeout_ms = 120000};
	gcs_client_free(h->c);
	drop_procs(h);
	if (!text || gcs_client_state_from_json(text, n, &st, &e) < 0) {
		FAIL(h, "state: %s", text ? e.msg : "unreadable");
		return;
	}
	h->adopted = true;
	h->c = gcs_client_new(h->loop, &cfg, &client_ops, h, &e);
	if (!h->c || gcs_client_adopt(h->c, &st, &e) < 0) {
		gcs_client_state_fini(&st);
		FAIL(h, "adopt: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < st.n_procs; i++) {
		_cleanup_free_ char *file = xasprintf("out.%s", st.procs[i].container_id);
		struct hproc *x = new_proc(h, st.procs[i].container_id, file, false);
		struct gcs_stdio_config io = {
		    .stdin_fd = -1, .stdout_fd = x->out_fd, .stderr_fd = -1};
		if (!(x->p = gcs_process_open(h->c, &st.procs[i], &io, &proc_ops, h, &e))) {
			gcs_client_state_fini(&st);
			FAIL(h, "open: %s", e.msg);
			return;
		}
	}
	gcs_client_state_fini(&st);
	ev_timer_init(&h->attach_w, on_attach_poll, 0.001, 0.001);
	h->attach_w.data = h;
	ev_timer_start(h->loop, &h->attach_w);
	OK(h, "%.1f", ms_since(h->t0));
}

static void cmd_wake(struct host *h, char *a)
{
	(void)a;
	struct err e;
	if (gcs_client_wake_guest(h->c, &e) < 0)
		FAIL(h, "wake: %s", e.msg);
	else
		OK(h, "%.1f", ms_since(h->t_resume));
}

static void cmd_stop(struct host *h, char *a)
{
	(void)a;
	struct err e;
	if (!h->vm || h->vm->ops->stop(h->vm, true, done_ms, h, &e) < 0)
		FAIL(h, "stop: %s", h->vm ? e.msg : "no vm");
}

static void cmd_quit(struct host *h, char *a)
{
	(void)a;
	(void)h;
	_exit(0);
}

static const struct {
	const char *name;
	void (*fn)(struct host *h, char *args);
} commands[] = {
    {"boot", cmd_boot},
    {"attach", cmd_attach},
    {"detach", cmd_detach},
    {"modify", cmd_modify},
    {"container", cmd_container},
    {"init", cmd_init},
    {"uvm", cmd_uvm},
    {"shutdown", cmd_shutdown},
    {"mig_init", cmd_mig_init},
    {"mig_prepare", cmd_mig_prepare},
    {"mig_listen", cmd_mig_listen},
    {"mig_recv", cmd_mig_recv},
    {"mig_send", cmd_mig_send},
    {"mig_cancel", cmd_mig_cancel},
    {"mig_finalize", cmd_mig_finalize},
    {"cut", cmd_cut},
    {"release", cmd_release},
    {"adopt", cmd_adopt},
    {"wake", cmd_wake},
    {"stop", cmd_stop},
    {"quit", cmd_quit},
};

static void dispatch(struct host *h, char *line)
{
	char *sp = strchr(line, ' ');
	char *args = sp ? sp + 1 : line + strlen(line);
	size_t len = sp ? (size_t)(sp - line) : strlen(line);
	log_info("host %s: command: %.200s", h->name, line);
	if (h->busy) {
		emit(h, "err busy");
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == len && strncmp(commands[i].name, line, len) == 0) {
			/* Commands needing a VM or a client refuse cleanly without one. */
			bool needs_client =
			    commands[i].fn == cmd_modify || commands[i].fn == cmd_container ||
			    commands[i].fn == cmd_init || commands[i].fn == cmd_uvm ||
			    commands[i].fn == cmd_shutdown || commands[i].fn == cmd_cut ||
			    commands[i].fn == cmd_wake;
			bool needs_vm =
			    needs_client || commands[i].fn == cmd_attach ||
			    commands[i].fn == cmd_detach || commands[i].fn == cmd_mig_init ||
			    commands[i].fn == cmd_mig_recv || commands[i].fn == cmd_mig_send ||
			    commands[i].fn == cmd_mig_cancel ||
			    commands[i].fn == cmd_mig_finalize || commands[i].fn == cmd_adopt;
			if ((needs_vm && !h->vm) || (needs_client && !h->c)) {
				emit(h, "err %s: no %s", commands[i].name, h->vm ? "client" : "vm");
				return;
			}
			h->busy = true;
			h->t0 = mono_ns();
			commands[i].fn(h, args);
			return;
		}
	emit(h, "err unknown command %.*s", (int)len, line);
}

static void on_cmd(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct host *h = w->data;
	ssize_t n = read(h->cmd_fd, h->line + h->nline, sizeof(h->line) - 1 - h->nline);
	if (n <= 0)
		_exit(0); /* the test went away */
	h->nline += (size_t)n;
	char *nl;
	while ((nl = memchr(h->line, '\n', h->nline))) {
		*nl = '\0';
		char cmd[VMHOST_LINE_MAX];
		snprintf(cmd, sizeof(cmd), "%s", h->line);
		size_t used = (size_t)(nl - h->line) + 1;
		memmove(h->line, nl + 1, h->nline - used);
		h->nline -= used;
		dispatch(h, cmd);
	}
	if (h->nline == sizeof(h->line) - 1)
		_exit(91);
}

static void host_main(const char *name, const char *dir, int cmd_fd, int evt_fd)
{
	struct host *h = xcalloc(1, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	h->cmd_fd = cmd_fd;
	h->evt_fd = evt_fd;
	h->lfd = -1;
	h->loop = ev_default_loop(0);
	signal(SIGPIPE, SIG_IGN);
	ev_io_init(&h->cmd_w, on_cmd, cmd_fd, EV_READ);
	h->cmd_w.data = h;
	ev_io_start(h->loop, &h->cmd_w);
	ev_run(h->loop, 0);
	_exit(0);
}

/* ======================= the test's side ======================= */

int vmhost_spawn(struct vmhost *h, const char *name, const struct netns *ns, const char *dir,
                 struct err *e)
{
	int c[2], v[2];
	memset(h, 0, sizeof(*h));
	h->cmd = h->evt = -1;
	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	if (pipe2(c, O_CLOEXEC) < 0)
		return err_sys(e, -errno, "pipe");
	if (pipe2(v, O_CLOEXEC) < 0) {
		close(c[0]);
		close(c[1]);
		return err_sys(e, -errno, "pipe");
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, -errno, "fork");
	if (pid == 0) {
		struct err ce;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(c[1]);
		close(v[0]);
		_cleanup_free_ char *log = xasprintf("%s/host-%s.log", dir, name);
		FILE *lf = fopen(log, "ae");
		if (lf) {
			setvbuf(lf, NULL, _IOLBF, 0);
			log_set_file(lf);
		}
		log_set_level(LOG_LVL_INFO);
		if (ns && netns_enter(ns, &ce) < 0) {
			log_error("host %s: %s", name, ce.msg);
			_exit(92);
		}
		host_main(name, dir, c[0], v[1]);
	}
	close(c[0]);
	close(v[1]);
	h->pid = pid;
	h->cmd = c[1];
	h->evt = v[0];
	return 0;
}

int vmhost_send(struct vmhost *h, struct err *e, const char *fmt, ...)
{
	char b[VMHOST_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(b) - 1)
		return err_set(e, -E2BIG, "command too long");
	b[n++] = '\n';
	return fd_write_all(h->cmd, b, (size_t)n, e);
}

/* The next line from the host, within the deadline: 0, -ETIMEDOUT or -EPIPE. */
static int next_line(struct vmhost *h, char *out, size_t n, long long deadline)
{
	for (;;) {
		char *nl = memchr(h->buf, '\n', h->n);
		if (nl) {
			size_t len = (size_t)(nl - h->buf);
			snprintf(out, n, "%.*s", (int)len, h->buf);
			memmove(h->buf, nl + 1, h->n - len - 1);
			h->n -= len + 1;
			return 0;
		}
		long long left = (deadline - mono_ns()) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = h->evt, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = read(h->evt, h->buf + h->n, sizeof(h->buf) - h->n);
		if (r <= 0)
			return -EPIPE;
		h->n += (size_t)r;
	}
}

static void queue_event(struct vmhost *h, const char *ev)
{
	if (h->n_events == VMHOST_EVENTS) {
		free(h->events[0]);
		memmove(h->events, h->events + 1, (VMHOST_EVENTS - 1) * sizeof(h->events[0]));
		h->n_events--;
	}
	h->events[h->n_events++] = xstrdup(ev);
}

int vmhost_reply(struct vmhost *h, char *out, size_t n, int timeout_ms)
{
	long long deadline = mono_ns() + timeout_ms * 1000000ll;
	char line[VMHOST_LINE_MAX];
	for (;;) {
		int r = next_line(h, line, sizeof(line), deadline);
		if (r < 0) {
			snprintf(out, n, "host %s: %s", h->name,
			         r == -ETIMEDOUT ? "no answer in time" : "the host process died");
			return r;
		}
		if (strncmp(line, "ev ", 3) == 0) {
			queue_event(h, line + 3);
			continue;
		}
		bool ok = strncmp(line, "ok", 2) == 0;
		size_t skip = ok ? 2 : 3;
		if (strlen(line) < skip)
			skip = strlen(line);
		if (line[skip] == ' ')
			skip++;
		snprintf(out, n, "%s", line + skip);
		return ok ? 0 : -EREMOTEIO;
	}
}

int vmhost_call(struct vmhost *h, char *out, size_t n, int timeout_ms, const char *fmt, ...)
{
	char b[VMHOST_LINE_MAX];
	struct err e;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (vmhost_send(h, &e, "%s", b) < 0) {
		snprintf(out, n, "host %s: send: %s", h->name, e.msg);
		return -EPIPE;
	}
	return vmhost_reply(h, out, n, timeout_ms);
}

int vmhost_event(struct vmhost *h, const char *prefix, char *out, size_t n, int timeout_ms)
{
	long long deadline = mono_ns() + timeout_ms * 1000000ll;
	char line[VMHOST_LINE_MAX];
	size_t pl = strlen(prefix);
	for (;;) {
		for (size_t i = 0; i < h->n_events; i++)
			if (strncmp(h->events[i], prefix, pl) == 0) {
				snprintf(out, n, "%s", h->events[i]);
				free(h->events[i]);
				memmove(h->events + i, h->events + i + 1,
				        (h->n_events - i - 1) * sizeof(h->events[0]));
				h->n_events--;
				return 0;
			}
		int r = next_line(h, line, sizeof(line), deadline);
		if (r < 0)
			return r;
		if (strncmp(line, "ev ", 3) == 0)
			queue_event(h, line + 3);
		/* an answer without a question is dropped (there is none in this protocol) */
	}
}

size_t vmhost_count_events(struct vmhost *h, const char *prefix)
{
	size_t c = 0;
	for (size_t i = 0; i < h->n_events; i++)
		c += strncmp(h->events[i], prefix, strlen(prefix)) == 0;
	return c;
}

void vmhost_stop(struct vmhost *h)
{
	struct err e;
	if (h->pid > 0) {
		(void)vmhost_send(h, &e, "quit");
		for (int i = 0; i < 200; i++) {
			if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
				h->pid = 0;
				break;
			}
			usleep(10000);
		}
		if (h->pid > 0) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, NULL, 0);
			h->pid = 0;
		}
	}
	if (h->cmd >= 0)
		close(h->cmd);
	if (h->evt >= 0)
		close(h->evt);
	h->cmd = h->evt = -1;
	for (size_t i = 0; i < h->n_events; i++)
		free(h->events[i]);
	h->n_events = 0;
}
