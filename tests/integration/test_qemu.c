/* Integration tests of the qemu backend (host/vmm/qemu) against real QEMU processes running
 * firmware only (no kernel: nothing boots, the VMM is what is tested): start and stop
 * (graceful stop falls back to a kill; forced stop), SCSI hot-plug and hot-unplug with
 * QEMU's own refusals passed through, a live migration between two QEMUs over a socketpair
 * with the phase notifications in order and a disk carried in the description, a destination
 * missing a device refused before any memory moves (and left as created), cancel during the
 * transfer (the source runs on and rolls back), a session mismatch refused before QEMU
 * reads the stream, a missing QEMU binary, bad descriptions, and a non-default loop.
 * The VMs use the tcp transport with a base whose wake port is free (hostfwd binds it). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/vmm/qemu/compat.h"
#include "host/vmm/qemu/qemu.h"
#include "tests/lib/testenv.h"

#define GUARD_S   60.0
#define MAX_NOTES 64

struct vmx {
	struct vmm *vm;
	char *dir;
	int exits, exit_status;
	enum vmm_phase notes[MAX_NOTES];
	enum vmm_phase_state states[MAX_NOTES];
	struct vmm_notification last_blackout;
	int n_notes;
	enum vmm_phase free_at; /* free the VM inside this notification (0: never) */
	/* last completion */
	bool done;
	int status;
	char msg[ERR_MSG_MAX];
};

static struct ev_loop *L;

static void on_exit_cb(struct vmm *vm, int status, void *arg)
{
	(void)vm;
	struct vmx *x = arg;
	x->exits++;
	x->exit_status = status;
}

static void on_note(struct vmm *vm, const struct vmm_notification *n, void *arg)
{
	(void)vm;
	struct vmx *x = arg;
	assert_true(x->n_notes < MAX_NOTES);
	x->notes[x->n_notes] = n->phase;
	x->states[x->n_notes++] = n->state;
	if (n->phase == VMM_PHASE_BLACKOUT_EXITED)
		x->last_blackout = *n;
	if (x->free_at && n->phase == x->free_at) {
		vmm_free(x->vm);
		x->vm = NULL;
	}
}

static void on_done(struct vmm *vm, int status, const struct err *e, void *arg)
{
	(void)vm;
	struct vmx *x = arg;
	x->done = true;
	x->status = status;
	snprintf(x->msg, sizeof(x->msg), "%s", e ? e->msg : "");
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	*(bool *)w->data = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Run the default loop until *flag (asserted within GUARD_S). */
static void run_until(const bool *flag)
{
	bool expired = false;
	ev_timer guard;
	ev_timer_init(&guard, on_guard, GUARD_S, 0.);
	guard.data = &expired;
	ev_timer_start(L, &guard);
	while (!*flag && !expired)
		ev_run(L, EVRUN_ONCE);
	ev_timer_stop(L, &guard);
	assert_false(expired);
}

static void run_for(double s)
{
	long long end = mono_ns() + (long long)(s * 1e9);
	while (mono_ns() < end) {
		ev_run(L, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* Wait for the completion started before and return its status. */
static int wait_done(struct vmx *x)
{
	run_until(&x->done);
	x->done = false;
	return x->status;
}

/* A tcp base whose wake port (base - 1025) is free right now. */
static int free_base(void)
{
	for (int tries = 0; tries < 50; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(0x7f000001)};
		socklen_t len = sizeof(a);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
		close(fd);
		int port = ntohs(a.sin_port);
		if (port + 1025 <= 65535)
			return port + 1025;
	}
	fail_msg("no free port");
	return -1;
}

static json_t *machine(int base, unsigned mem_mib)
{
	return json_pack("{s:s, s:I, s:{s:s, s:i}, s:i, s:I}", "accel", "tcg", "memory_mib",
	                 (json_int_t)mem_mib, "transport", "kind", "tcp", "base", base,
	                 "scsi_controllers", 1, "stop_timeout_ms", (json_int_t)300);
}

static struct vmx *vmx_new(json_t *m, bool incoming)
{
	struct err e;
	struct vmx *x = xcalloc(1, sizeof(*x));
	x->dir = testenv_mkdtemp("ferry-qemu", &e);
	assert_non_null(x->dir);
	struct vmm_events ev = {.on_exit = on_exit_cb, .on_notification = on_note, .arg = x};
	x->vm = qemu_backend.create(L, m, x->dir, incoming, &ev, &e);
	if (!x->vm)
		fail_msg("create: %s", e.msg);
	json_decref(m);
	return x;
}

static void vmx_free(struct vmx *x)
{
	if (!x)
		return;
	vmm_free(x->vm);
	run_for(0.05); /* let the reaper collect a killed QEMU */
	if (!getenv("KEEP_TMP"))
		testenv_rm_rf(x->dir);
	free(x->dir);
	free(x);
}

static void start(struct vmx *x)
{
	struct err e;
	assert_int_equal(x->vm->ops->start(x->vm, on_done, x, &e), 0);
	int rc = wait_done(x);
	if (rc != 0)
		fail_msg("start: %s", x->msg);
	assert_true(qemu_vm_pid(x->vm) > 0);
	assert_string_equal(qemu_vm_accel(x->vm), "tcg");
}

static int phase_index(const struct vmx *x, enum vmm_phase p, int from)
{
	for (int i = from; i < x->n_notes; i++)
		if (x->notes[i] == p)
			return i;
	return -1;
}

/* ---------------- lifecycle ---------------- */

static void test_start_stop(void **state)
{
	(void)state;
	struct err e;
	struct vmx *x = vmx_new(machine(free_base(), 64), false);
	assert_int_equal(x->vm->ops->start(x->vm, on_done, x, &e), 0);
	assert_false(x->done); /* never inside the call */
	assert_int_equal(x->vm->ops->start(x->vm, on_done, x, &e), -EBUSY);
	assert_int_equal(wait_done(x), 0);
	assert_non_null(strstr(x->vm->ops->guest_transport(x->vm), "tcp:127.0.0.1:"));
	/* Graceful: the firmware ignores the power button, the timer kills it. */
	long long t0 = mono_ns();
	assert_int_equal(x->vm->ops->stop(x->vm, false, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_true(mono_ns() - t0 >= 250000000ll);
	assert_int_equal(x->exits, 1);
	assert_int_equal(x->exit_status, 128 + SIGKILL);
	assert_int_equal(qemu_vm_pid(x->vm), 0);
	/* Gone: stopping again is a no-op success, on_exit is not repeated. */
	assert_int_equal(x->vm->ops->stop(x->vm, true, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(x->exits, 1);
	vmx_free(x);
}

static void test_force_stop_and_free_running(void **state)
{
	(void)state;
	struct err e;
	struct vmx *x = vmx_new(machine(free_base(), 64), false);
	start(x);
	assert_int_equal(x->vm->ops->stop(x->vm, true, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(x->exits, 1);
	vmx_free(x);
	/* Freed while running: killed, no on_exit. */
	x = vmx_new(machine(free_base(), 64), false);
	start(x);
	pid_t pid = qemu_vm_pid(x->vm);
	vmx_free(x);
	run_for(0.3);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_missing_binary(void **state)
{
	(void)state;
	struct err e;
	json_t *m = machine(free_base(), 64);
	json_object_set_new(m, "qemu", json_string("/nonexistent/qemu-system-x86_64"));
	struct vmx *x = vmx_new(m, false);
	assert_int_equal(x->vm->ops->start(x->vm, on_done, x, &e), 0);
	assert_true(wait_done(x) < 0);
	assert_non_null(strstr(x->msg, "did not come up"));
	run_for(0.1);
	assert_int_equal(x->exits, 0);
	vmx_free(x);
}

static void test_bad_descriptions(void **state)
{
	(void)state;
	struct err e;
	static const char *const bad[] = {
	    "{\"transport\":{\"kind\":\"tcp\"},\"colour\":1}",
	    "{\"transport\":{\"kind\":\"tcp\"},\"kernel\":\"rel/vmlinux\"}",
	    "{\"transport\":{\"kind\":\"udp\"}}",
	    "{\"transport\":{\"kind\":\"tcp\",\"base\":1025}}",
	    "{}",
	    "{\"transport\":{\"kind\":\"tcp\"},\"machine\":\"pc\"}",
	    "{\"transport\":{\"kind\":\"tcp\"},\"scsi\":[{\"controller\":1,\"lun\":0,\"path\":\"/"
	    "x\"}]}",
	    "{\"transport\":{\"kind\":\"tcp\"},\"append\":\"a ferry.transport=x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *m = json_loads(bad[i], 0, NULL);
		assert_non_null(m);
		struct vmm *vm = qemu_backend.create(L, m, "/tmp", false, NULL, &e);
		if (vm)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(e.code, -EINVAL);
		json_decref(m);
	}
	/* Only the default loop has ev_child. */
	struct ev_loop *other = ev_loop_new(EVFLAG_AUTO);
	json_t *m = machine(free_base(), 64);
	assert_null(qemu_backend.create(other, m, "/tmp", false, NULL, &e));
	assert_non_null(strstr(e.msg, "default loop"));
	json_decref(m);
	ev_loop_destroy(other);
}

/* ---------------- SCSI ---------------- */

static char *make_disk(const char *dir, const char *name, off_t size)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
	return p;
}

static size_t n_disks(struct vmx *x)
{
	struct err e;
	json_t *d = x->vm->ops->describe(x->vm, &e);
	assert_non_null(d);
	size_t n = json_array_size(json_object_get(d, "scsi"));
	json_decref(d);
	return n;
}

static void test_scsi_attach_detach(void **state)
{
	(void)state;
	struct err e;
	struct vmx *x = vmx_new(machine(free_base(), 64), false);
	_cleanup_free_ char *path = make_disk(x->dir, "d.img", 16 << 20);
	struct vmm_disk disk = {.host_path = path, .read_only = true};
	/* not running yet */
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 3, &disk, on_done, x, &e), -EINVAL);
	start(x);
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 3, &disk, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(n_disks(x), 1);
	json_t *d = x->vm->ops->describe(x->vm, &e);
	json_t *d0 = json_array_get(json_object_get(d, "scsi"), 0);
	assert_string_equal(json_string_value(json_object_get(d0, "path")), path);
	assert_int_equal(json_integer_value(json_object_get(d0, "lun")), 3);
	assert_true(json_is_true(json_object_get(d0, "read_only")));
	json_decref(d);
	/* refusals: same slot, no such controller, lun out of range, relative path */
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 3, &disk, on_done, x, &e), -EEXIST);
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 1, 0, &disk, on_done, x, &e), -EINVAL);
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 64, &disk, on_done, x, &e), -EINVAL);
	struct vmm_disk rel = {.host_path = "d.img"};
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 4, &rel, on_done, x, &e), -EINVAL);
	/* QEMU's own refusal (no such file) comes back, and nothing is left half-added */
	_cleanup_free_ char *missing = xasprintf("%s/missing.img", x->dir);
	struct vmm_disk bad = {.host_path = missing};
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 4, &bad, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), -EREMOTEIO);
	assert_non_null(strstr(x->msg, "missing.img"));
	assert_int_equal(n_disks(x), 1);
	/* the same lun works with a real file afterwards (the node was not left behind) */
	_cleanup_free_ char *p2 = make_disk(x->dir, "e.img", 1 << 20);
	struct vmm_disk d2 = {.host_path = p2};
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 4, &d2, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(n_disks(x), 2);
	/* detach */
	assert_int_equal(x->vm->ops->scsi_detach(x->vm, 0, 3, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(n_disks(x), 1);
	assert_int_equal(x->vm->ops->scsi_detach(x->vm, 0, 3, on_done, x, &e), -ENOENT);
	/* and again on the freed slot */
	assert_int_equal(x->vm->ops->scsi_attach(x->vm, 0, 3, &disk, on_done, x, &e), 0);
	assert_int_equal(wait_done(x), 0);
	assert_int_equal(n_disks(x), 2);
	vmx_free(x);
}

/* ---------------- migration ---------------- */

struct pair {
	struct vmx *src, *dst;
	struct buf blob;
	struct vmm_mig_options opts;
};

/* Source started (with `disk` attached when not NULL), initialised; destination created from
 * the source's description (or `dst_desc`) and prepared: returns the prepare status. */
static int pair_setup(struct pair *p, json_t *src_desc, json_t *dst_desc, bool with_disk)
{
	struct err e;
	memset(&p->opts, 0, sizeof(p->opts));
	p->opts.memory_transport = 1;
	p->opts.has_throttle = true;
	p->opts.throttle.has_target_blackout_ms = true;
	p->opts.throttle.target_blackout_ms = 50;
	p->src = vmx_new(src_desc, false);
	start(p->src);
	if (with_disk) {
		_cleanup_free_ char *path = make_disk(p->src->dir, "layer.img", 4 << 20);
		struct vmm_disk d = {.host_path = path, .read_only = true};
		assert_int_equal(
		    p->src->vm->ops->scsi_attach(p->src->vm, 0, 2, &d, on_done, p->src, &e), 0);
		assert_int_equal(wait_done(p->src), 0);
	}
	assert_int_equal(
	    p->src->vm->ops->mig_init_source(p->src->vm, &p->opts, on_done, p->src, &e), 0);
	if (wait_done(p->src) != 0)
		fail_msg("init source: %s", p->src->msg);
	buf_init(&p->blob);
	assert_int_equal(p->src->vm->ops->mig_compat_info(p->src->vm, &p->blob, &e), 0);
	if (!dst_desc)
		dst_desc = p->src->vm->ops->describe(p->src->vm, &e);
	/* the destination host has its own loopback: here another free wake port */
	json_object_set_new(dst_desc, "transport",
	                    json_pack("{s:s, s:i}", "kind", "tcp", "base", free_base()));
	p->dst = vmx_new(dst_desc, true);
	assert_int_equal(p->dst->vm->ops->start(p->dst->vm, on_done, p->dst, &e), -EINVAL);
	assert_int_equal(p->dst->vm->ops->mig_prepare_dest(p->dst->vm, &p->opts, buf_head(&p->blob),
	                                                   buf_avail(&p->blob), on_done, p->dst,
	                                                   &e),
	                 0);
	return wait_done(p->dst);
}

static void pair_free(struct pair *p)
{
	vmx_free(p->src);
	vmx_free(p->dst);
	buf_fini(&p->blob);
}

static void mig_start_both(struct pair *p, uint32_t s_src, uint32_t s_dst)
{
	struct err e;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(p->src->vm->ops->mig_start(p->src->vm, sv[0], s_src, on_done, p->src, &e),
	                 0);
	assert_int_equal(p->dst->vm->ops->mig_start(p->dst->vm, sv[1], s_dst, on_done, p->dst, &e),
	                 0);
	assert_int_equal(wait_done(p->src), 0);
	assert_int_equal(wait_done(p->dst), 0);
	assert_int_equal(p->src->vm->ops->mig_transfer(p->src->vm, on_done, p->src, &e), 0);
	assert_int_equal(p->dst->vm->ops->mig_transfer(p->dst->vm, on_done, p->dst, &e), 0);
}

static void test_migrate(void **state)
{
	(void)state;
	struct err e;
	struct pair p;
	assert_int_equal(pair_setup(&p, machine(free_base(), 128), NULL, true), 0);
	/* the blob names the devices, the disk included */
	struct qemu_compat c;
	assert_int_equal(qemu_compat_decode(buf_head(&p.blob), buf_avail(&p.blob), &c, &e), 0);
	assert_string_equal(c.accel, "tcg");
	assert_int_equal(c.memory, 128u << 20);
	assert_non_null(strstr((const char *)buf_head(&p.blob), "\"sd-0-2\""));
	assert_non_null(strstr((const char *)buf_head(&p.blob), "\"virtio-scsi-pci\""));
	assert_true(strncmp(c.machine, "pc-q35-", 7) == 0);
	qemu_compat_fini(&c);
	assert_int_equal(p.dst->exits, 0);
	mig_start_both(&p, 77, 77);
	assert_int_equal(wait_done(p.src), 0);
	assert_int_equal(wait_done(p.dst), 0);
	/* source: setup, passes, blackout start, offline, blackout exit, done - in that order */
	int i = phase_index(p.src, VMM_PHASE_SETUP_DONE, 0);
	assert_int_equal(i, 0);
	assert_int_equal(phase_index(p.src, VMM_PHASE_SETUP_DONE, 1), -1);
	i = phase_index(p.src, VMM_PHASE_TRANSFER_IN_PROGRESS, i);
	assert_true(i >= 0);
	i = phase_index(p.src, VMM_PHASE_BLACKOUT_STARTED, i);
	assert_true(i >= 0);
	i = phase_index(p.src, VMM_PHASE_OFFLINE_DONE, i);
	assert_true(i >= 0);
	i = phase_index(p.src, VMM_PHASE_BLACKOUT_EXITED, i);
	assert_true(i >= 0);
	assert_int_equal(phase_index(p.src, VMM_PHASE_DONE, i), p.src->n_notes - 1);
	for (int k = 0; k < p.src->n_notes; k++)
		assert_int_equal(p.src->states[k], VMM_PHASE_STATE_SUCCESS);
	assert_true(p.src->last_blackout.has_blackout);
	struct qemu_mig_stats st;
	qemu_vm_mig_stats(p.src->vm, &st);
	assert_true(st.bytes > 0);
	assert_true(st.total_ms > 0); /* (QEMU computes it just after announcing completion) */
	assert_true(st.passes >= 1);
	assert_int_equal(p.src->last_blackout.blackout_ms, st.downtime_ms);
	assert_int_equal(p.src->last_blackout.bytes_transferred, st.bytes);
	/* destination: setup, in progress, offline; paused until finalize */
	assert_int_equal(phase_index(p.dst, VMM_PHASE_SETUP_DONE, 0), 0);
	assert_true(phase_index(p.dst, VMM_PHASE_OFFLINE_DONE, 0) >
	            phase_index(p.dst, VMM_PHASE_TRANSFER_IN_PROGRESS, 0));
	assert_int_equal(phase_index(p.dst, VMM_PHASE_BLACKOUT_EXITED, 0), -1);
	/* finalize: source STOP ends it, destination RESUME runs it */
	assert_int_equal(p.src->vm->ops->mig_finalize(p.src->vm, false, on_done, p.src, &e), 0);
	assert_int_equal(wait_done(p.src), 0);
	assert_int_equal(p.src->exits, 1);
	assert_int_equal(p.src->exit_status, 0);
	assert_int_equal(p.dst->vm->ops->mig_finalize(p.dst->vm, true, on_done, p.dst, &e), 0);
	assert_int_equal(wait_done(p.dst), 0);
	i = phase_index(p.dst, VMM_PHASE_BLACKOUT_EXITED, 0);
	assert_true(i >= 0);
	assert_int_equal(phase_index(p.dst, VMM_PHASE_DONE, i), p.dst->n_notes - 1);
	for (int k = 0; k < p.dst->n_notes; k++)
		assert_int_equal(p.dst->notes[k] == VMM_PHASE_FAILED, 0);
	/* The destination is a normal running VM now: its disk is there, it can migrate on. */
	assert_int_equal(n_disks(p.dst), 1);
	assert_int_equal(p.dst->vm->ops->scsi_detach(p.dst->vm, 0, 2, on_done, p.dst, &e), 0);
	assert_int_equal(wait_done(p.dst), 0);
	assert_int_equal(p.dst->vm->ops->mig_init_source(p.dst->vm, NULL, on_done, p.dst, &e), 0);
	assert_int_equal(wait_done(p.dst), 0);
	assert_int_equal(p.dst->exits, 0);
	pair_free(&p);
}

static void test_missing_device_refused(void **state)
{
	(void)state;
	struct err e;
	struct pair p;
	/* The destination's description lacks the disk the source attached. */
	json_t *dst = machine(0, 128);
	int rc = pair_setup(&p, machine(free_base(), 128), dst, true);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(p.dst->msg, "destination lacks device sd-0-2 (scsi-hd)"));
	run_for(0.2);
	/* no VM was left behind, no exit reported, nothing moved */
	assert_int_equal(qemu_vm_pid(p.dst->vm), 0);
	assert_int_equal(p.dst->exits, 0);
	assert_int_equal(p.dst->n_notes, 0);
	assert_int_equal(p.src->n_notes, 0);
	/* a memory mismatch is named too (a second prepare on the same VM is allowed) */
	json_t *bigger = machine(free_base(), 256);
	struct vmx *d2 = vmx_new(bigger, true);
	assert_int_equal(d2->vm->ops->mig_prepare_dest(d2->vm, NULL, buf_head(&p.blob),
	                                               buf_avail(&p.blob), on_done, d2, &e),
	                 0);
	assert_int_equal(wait_done(d2), -EPROTO);
	assert_non_null(strstr(d2->msg, "memory differs"));
	/* a corrupt blob fails at once */
	assert_int_equal(
	    d2->vm->ops->mig_prepare_dest(d2->vm, NULL, (const uint8_t *)"{}", 2, on_done, d2, &e),
	    -EBADMSG);
	vmx_free(d2);
	/* The source was never touched: finalize RESUME is a no-op rollback. */
	assert_int_equal(p.src->vm->ops->mig_finalize(p.src->vm, true, on_done, p.src, &e), 0);
	assert_int_equal(wait_done(p.src), 0);
	assert_int_equal(p.src->exits, 0);
	pair_free(&p);
}

static void test_cancel_during_transfer(void **state)
{
	(void)state;
	struct err e;
	struct pair p;
	/* Slow enough to be caught in the middle: 256 KiB/s for a few MiB of non-zero pages. */
	json_t *m = machine(free_base(), 128);
	json_object_set_new(m, "migration", json_pack("{s:i}", "max_bandwidth", 256 << 10));
	assert_int_equal(pair_setup(&p, m, NULL, false), 0);
	mig_start_both(&p, 5, 5);
	while (phase_index(p.src, VMM_PHASE_TRANSFER_IN_PROGRESS, 0) < 0)
		run_for(0.01);
	assert_false(p.src->done);
	struct vmx ca = {0};
	assert_int_equal(p.src->vm->ops->mig_cancel(p.src->vm, on_done, &ca, &e), 0);
	assert_int_equal(wait_done(p.src), -ECANCELED);
	assert_int_equal(wait_done(&ca), 0);
	assert_int_equal(p.src->notes[p.src->n_notes - 1], VMM_PHASE_FAILED);
	assert_int_equal(p.src->states[p.src->n_notes - 1], VMM_PHASE_STATE_CANCELLED);
	assert_int_equal(phase_index(p.src, VMM_PHASE_OFFLINE_DONE, 0), -1);
	/* The destination saw its stream end: it failed and its QEMU went away. */
	assert_int_equal(wait_done(p.dst), -EIO);
	assert_int_equal(p.dst->notes[p.dst->n_notes - 1], VMM_PHASE_FAILED);
	assert_int_equal(p.dst->states[p.dst->n_notes - 1], VMM_PHASE_STATE_DESTINATION_FAILED);
	while (p.dst->exits == 0)
		run_for(0.01);
	assert_int_equal(p.dst->vm->ops->mig_cancel(p.dst->vm, on_done, &ca, &e), 0);
	assert_int_equal(wait_done(&ca), 0);
	assert_int_equal(p.dst->vm->ops->mig_finalize(p.dst->vm, false, on_done, p.dst, &e), 0);
	assert_int_equal(wait_done(p.dst), 0);
	/* The source runs on: roll back, then it can start over. */
	assert_int_equal(p.src->vm->ops->mig_finalize(p.src->vm, true, on_done, p.src, &e), 0);
	assert_int_equal(wait_done(p.src), 0);
	assert_int_equal(p.src->notes[p.src->n_notes - 1], VMM_PHASE_RECOVERY_DONE);
	assert_int_equal(p.src->exits, 0);
	assert_int_equal(p.src->vm->ops->mig_init_source(p.src->vm, NULL, on_done, p.src, &e), 0);
	assert_int_equal(wait_done(p.src), 0);
	pair_free(&p);
}

/* The owner frees the VM from inside a notification (QMP event path), then from inside a
 * completion: nothing of it may be touched afterwards (ASan checks in the SAN build). */
static void test_free_inside_callbacks(void **state)
{
	(void)state;
	struct pair p;
	assert_int_equal(pair_setup(&p, machine(free_base(), 64), NULL, false), 0);
	p.src->free_at = VMM_PHASE_TRANSFER_IN_PROGRESS;
	mig_start_both(&p, 3, 3);
	while (p.src->vm)
		run_for(0.01);
	/* the destination loses its stream */
	assert_true(wait_done(p.dst) < 0);
	run_for(0.2);
	pair_free(&p);
}

static void test_session_mismatch(void **state)
{
	(void)state;
	struct err e;
	struct pair p;
	assert_int_equal(pair_setup(&p, machine(free_base(), 64), NULL, false), 0);
	mig_start_both(&p, 1, 2);
	assert_int_equal(wait_done(p.src), -EPROTO);
	assert_non_null(strstr(p.src->msg, "session mismatch"));
	assert_int_equal(wait_done(p.dst), -EPROTO);
	/* nothing moved: no phase was reported on either side */
	assert_int_equal(p.src->n_notes, 0);
	assert_int_equal(p.dst->n_notes, 0);
	assert_int_equal(p.src->vm->ops->mig_finalize(p.src->vm, true, on_done, p.src, &e), 0);
	assert_int_equal(wait_done(p.src), 0);
	assert_int_equal(p.dst->vm->ops->mig_finalize(p.dst->vm, false, on_done, p.dst, &e), 0);
	assert_int_equal(wait_done(p.dst), 0);
	assert_int_equal(p.src->exits, 0);
	assert_int_equal(p.dst->exits, 1);
	pair_free(&p);
}

static int group_setup(void **state)
{
	(void)state;
	L = ev_default_loop(0);
	signal(SIGPIPE, SIG_IGN);
	log_set_level(getenv("QEMU_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_WARN);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_descriptions),
	    cmocka_unit_test(test_start_stop),
	    cmocka_unit_test(test_force_stop_and_free_running),
	    cmocka_unit_test(test_missing_binary),
	    cmocka_unit_test(test_scsi_attach_detach),
	    cmocka_unit_test(test_migrate),
	    cmocka_unit_test(test_missing_device_refused),
	    cmocka_unit_test(test_cancel_during_transfer),
	    cmocka_unit_test(test_session_mismatch),
	    cmocka_unit_test(test_free_inside_callbacks),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
