/* The qemu backend's migration half (vmm.h's mig_* verbs, docs/qemu.md): InitializeOptions
 * to migrate-set-capabilities / migrate-set-parameters, the compatibility blob (compat.h)
 * built from QMP answers on the source and checked on the destination before any memory
 * moves, the session header on the migration socket, getfd + `migrate fd:` /
 * `migrate-incoming fd:`, the QMP MIGRATION / MIGRATION_PASS / STOP events mapped onto
 * hcsshim's phase notifications, the brownout pass limit, cancel and finalize. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/vmm/qemu/qemu_priv.h"

#define MIG_HDR_VERSION       1
#define MIG_HDR_TIMEOUT_S     60.0
#define DOWNTIME_LIMIT_MAX_MS 2000000 /* QEMU's bound (2000 s): "switch over now" */
#define STATS_TRIES           100     /* query-migrate until the times are there ... */
#define STATS_RETRY_S         0.002   /* ... every 2 ms */

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ======================= pure pieces ======================= */

void qemu_mig_header(uint32_t session, uint8_t out[MIG_HDR_LEN])
{
	uint32_t v = htonl(MIG_HDR_VERSION), s = htonl(session);
	memcpy(out, MIG_HDR_MAGIC, 8);
	memcpy(out + 8, &v, 4);
	memcpy(out + 12, &s, 4);
}

int qemu_mig_header_check(const uint8_t in[MIG_HDR_LEN], uint32_t session, struct err *e)
{
	uint32_t v, s;
	if (memcmp(in, MIG_HDR_MAGIC, 8) != 0)
		return err_set(e, -EPROTO,
		               "migration peer is not ferry's qemu backend (bad magic)");
	memcpy(&v, in + 8, 4);
	memcpy(&s, in + 12, 4);
	if (ntohl(v) != MIG_HDR_VERSION)
		return err_set(e, -EPROTONOSUPPORT,
		               "migration peer speaks header version %u (%d here)", ntohl(v),
		               MIG_HDR_VERSION);
	if (ntohl(s) != session)
		return err_set(e, -EPROTO, "migration session mismatch: peer %u, here %u", ntohl(s),
		               session);
	return 0;
}

static uint32_t clamp(double v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)(v + 0.5);
}

static json_t *cap(const char *name, bool on)
{
	return json_pack("{s:s, s:b}", "capability", name, "state", on);
}

int qemu_mig_options_args(const struct qemu_machine *m, const struct vmm_mig_options *o,
                          bool source, bool compress, json_t **caps, json_t **params, struct err *e)
{
	*caps = *params = NULL;
	if (o && o->memory_transport != 0 && o->memory_transport != 1)
		return err_set(e, -ENOTSUP, "qemu: memory transport %d is not supported (TCP only)",
		               o->memory_transport);
	if (o && o->has_compression && o->has_compression_workers && o->compression_workers > 255)
		return err_set(e, -EINVAL, "qemu: %u compression workers (QEMU takes 1..255)",
		               o->compression_workers);
	bool throttle = o && o->has_throttle;
	/* auto-converge throttles the guest's vCPUs when it dirties memory faster than it
	 * moves; SkipThrottling turns it off, as does the absence of throttle parameters. */
	bool converge =
	    throttle && !(o->throttle.has_skip_throttling && o->throttle.skip_throttling);
	json_t *c = json_pack("[o, o, o]", cap("events", true), cap("compress", compress),
	                      cap("auto-converge", source && converge));
	json_t *p = json_object();
	if (source && m->max_bandwidth)
		json_object_set_new(p, "max-bandwidth", json_integer((json_int_t)m->max_bandwidth));
	if (source && throttle && o->throttle.has_target_blackout_ms)
		json_object_set_new(
		    p, "downtime-limit",
		    json_integer(clamp(o->throttle.target_blackout_ms, 1, DOWNTIME_LIMIT_MAX_MS)));
	else if (source && m->downtime_limit_ms)
		json_object_set_new(p, "downtime-limit", json_integer(m->downtime_limit_ms));
	if (source && converge && o->throttle.has_minimum_throttle_percentage)
		json_object_set_new(
		    p, "cpu-throttle-initial",
		    json_integer(clamp(o->throttle.minimum_throttle_percentage, 1, 99)));
	if (source && converge && o->throttle.has_throttling_scale)
		json_object_set_new(p, "cpu-throttle-increment",
		                    json_integer(clamp(o->throttle.throttling_scale, 1, 100)));
	if (compress && o && o->has_compression_workers && o->compression_workers > 0)
		json_object_set_new(p, source ? "compress-threads" : "decompress-threads",
		                    json_integer(o->compression_workers));
	*caps = json_pack("{s:o}", "capabilities", c);
	*params = p;
	return 0;
}

/* ======================= session state ======================= */

static void on_stats_retry(struct ev_loop *loop, ev_timer *w, int revents);

void qemu_mig_init(struct qemu_vm *vm)
{
	vm->mig.sock = -1;
	ev_io_init(&vm->mig.sock_w, NULL, -1, EV_READ);
	ev_timer_init(&vm->mig.hdr_timer, NULL, 0., 0.);
	ev_timer_init(&vm->mig.stats_w, on_stats_retry, 0., 0.);
	vm->mig.stats_w.data = vm;
}

static void close_sock(struct qemu_vm *vm)
{
	ev_io_stop(vm->loop, &vm->mig.sock_w);
	ev_timer_stop(vm->loop, &vm->mig.hdr_timer);
	if (vm->mig.sock >= 0) {
		shutdown(vm->mig.sock, SHUT_RDWR);
		close(vm->mig.sock);
	}
	vm->mig.sock = -1;
}

/* The session is over (finalized, or the VM gone): forget it, keep the last stats. */
static void reset_session(struct qemu_vm *vm)
{
	struct qemu_mig_stats stats = vm->mig.stats;
	close_sock(vm);
	free(vm->mig.blob);
	qemu_compat_fini(&vm->mig.local);
	qemu_compat_fini(&vm->mig.peer);
	ev_timer_stop(vm->loop, &vm->mig.stats_w);
	ev_io sw = vm->mig.sock_w;
	ev_timer ht = vm->mig.hdr_timer, stw = vm->mig.stats_w;
	memset(&vm->mig, 0, sizeof(vm->mig));
	vm->mig.sock_w = sw;
	vm->mig.hdr_timer = ht;
	vm->mig.stats_w = stw;
	vm->mig.sock = -1;
	vm->mig.stats = stats;
}

void qemu_mig_fini(struct qemu_vm *vm)
{
	reset_session(vm);
}

void qemu_mig_on_exit(struct qemu_vm *vm)
{
	ev_timer_stop(vm->loop, &vm->mig.stats_w);
	close_sock(vm);
	vm->mig.migrating = false;
}

/* ======================= compatibility answers ======================= */

static int ret_machine(struct qemu_vm *vm, json_t *ret, struct err *e)
{
	const char *t = json_string_value(ret);
	size_t n = t ? strlen(t) : 0;
	if (!t || n == 0 || n >= sizeof(vm->mig.local.machine))
		return err_set(e, -EBADMSG, "machine type is not a string");
	memcpy(vm->mig.local.machine, t, n + 1);
	return 0;
}

static int ret_devices(struct qemu_vm *vm, json_t *ret, struct err *e)
{
	return qemu_compat_set_devices(&vm->mig.local, ret, e);
}

static int ret_memory(struct qemu_vm *vm, json_t *ret, struct err *e)
{
	json_t *v = json_object_get(ret, "base-memory");
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return err_set(e, -EBADMSG, "no base-memory");
	vm->mig.local.memory = (uint64_t)json_integer_value(v);
	return 0;
}

static int ret_cpus(struct qemu_vm *vm, json_t *ret, struct err *e)
{
	if (!json_is_array(ret) || json_array_size(ret) == 0)
		return err_set(e, -EBADMSG, "no cpus");
	vm->mig.local.cpus = (unsigned)json_array_size(ret);
	return 0;
}

/* The four questions both ends ask (appended to steps at *n). */
static void compat_steps(struct qstep *steps, size_t *n)
{
	steps[(*n)++] =
	    (struct qstep){.execute = "qom-get",
	                   .args = json_pack("{s:s, s:s}", "path", "/machine", "property", "type"),
	                   .fd = -1,
	                   .on_ret = ret_machine};
	steps[(*n)++] = (struct qstep){.execute = "qom-list",
	                               .args = json_pack("{s:s}", "path", "/machine/peripheral"),
	                               .fd = -1,
	                               .on_ret = ret_devices};
	steps[(*n)++] =
	    (struct qstep){.execute = "query-memory-size-summary", .fd = -1, .on_ret = ret_memory};
	steps[(*n)++] = (struct qstep){.execute = "query-cpus-fast", .fd = -1, .on_ret = ret_cpus};
}

static void compat_fill(struct qemu_vm *vm, bool compress)
{
	struct qemu_compat *c = &vm->mig.local;
	qmp_version(vm->qmp, &c->ver[0], &c->ver[1], &c->ver[2]);
	snprintf(c->accel, sizeof(c->accel), "%s", vm->accel == QEMU_ACCEL_KVM ? "kvm" : "tcg");
	snprintf(c->cpu, sizeof(c->cpu), "%s", qemu_machine_cpu(&vm->m, vm->accel));
	c->compress = compress;
}

/* Options chain + compat questions; *n steps written. */
static int option_steps(struct qemu_vm *vm, bool source, bool compress, struct qstep *steps,
                        size_t *n, struct err *e)
{
	json_t *caps, *params;
	const struct vmm_mig_options *o = vm->mig.has_opts ? &vm->mig.opts : NULL;
	if (qemu_mig_options_args(&vm->m, o, source, compress, &caps, &params, e) < 0)
		return e->code;
	steps[(*n)++] =
	    (struct qstep){.execute = "migrate-set-capabilities", .args = caps, .fd = -1};
	steps[(*n)++] =
	    (struct qstep){.execute = "migrate-set-parameters", .args = params, .fd = -1};
	return 0;
}

static void keep_opts(struct qemu_vm *vm, const struct vmm_mig_options *opts)
{
	vm->mig.has_opts = opts != NULL;
	if (opts)
		vm->mig.opts = *opts;
	else
		memset(&vm->mig.opts, 0, sizeof(vm->mig.opts));
}

/* ======================= source: init, compat info ======================= */

static void init_done(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0) {
		vm->mig.origin = VMM_ORIGIN_UNSPECIFIED;
		qvm_finish(vm, V_MIG_INIT, status, e);
		return;
	}
	compat_fill(vm, vm->mig.has_opts && vm->mig.opts.has_compression);
	free(vm->mig.blob);
	vm->mig.blob = qemu_compat_encode(&vm->mig.local, &vm->mig.blob_len);
	log_info("qemu: migration source ready: %s", vm->mig.blob);
	qvm_finish(vm, V_MIG_INIT, 0, NULL);
}

int qemu_mig_init_source(struct vmm *v, const struct vmm_mig_options *opts, vmm_done_fn done,
                         void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	struct qstep steps[QCHAIN_MAX];
	size_t n = 0;
	if (vm->incoming || vm->st != QS_RUNNING)
		return err_set(e, -EINVAL, "qemu: migration source needs a running vm (state %d)",
		               (int)vm->st);
	if (vm->mig.migrating || vm->mig.origin == VMM_ORIGIN_DESTINATION || vm->mig.sock >= 0)
		return err_set(e, -EBUSY, "qemu: a migration session is in progress");
	if (qvm_claim(vm, V_MIG_INIT, done, arg, e) < 0)
		return e->code;
	reset_session(vm);
	memset(&vm->mig.stats, 0, sizeof(vm->mig.stats));
	keep_opts(vm, opts);
	bool compress = opts && opts->has_compression;
	if (option_steps(vm, true, compress, steps, &n, e) < 0) {
		memset(&vm->slots[V_MIG_INIT], 0, sizeof(vm->slots[V_MIG_INIT]));
		return e->code;
	}
	compat_steps(steps, &n);
	vm->mig.origin = VMM_ORIGIN_SOURCE;
	if (qvm_chain(vm, steps, n, init_done, e) < 0) {
		vm->mig.origin = VMM_ORIGIN_UNSPECIFIED;
		memset(&vm->slots[V_MIG_INIT], 0, sizeof(vm->slots[V_MIG_INIT]));
		return e->code;
	}
	return 0;
}

int qemu_mig_compat_info(struct vmm *v, struct buf *out, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (vm->mig.origin != VMM_ORIGIN_SOURCE || !vm->mig.blob)
		return err_set(e, -EINVAL, "qemu: no compatibility info before mig_init_source");
	buf_append(out, vm->mig.blob, vm->mig.blob_len);
	return 0;
}

/* ======================= destination: prepare ======================= */

static void prepare_fail(struct qemu_vm *vm, int status, const struct err *e)
{
	/* Nothing moved: QEMU goes (quietly) and the VM is as created, ready for a retry. */
	if (vm->pid > 0) {
		vm->exit_silent = true;
		qvm_terminate(vm, true);
	}
	vm->mig.origin = VMM_ORIGIN_UNSPECIFIED;
	qvm_finish(vm, V_MIG_PREPARE, status, e);
}

static void prepare_done(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0) {
		prepare_fail(vm, status, e);
		return;
	}
	vm->st = QS_INCOMING;
	log_info("qemu: migration destination ready (compatible with the source)");
	qvm_finish(vm, V_MIG_PREPARE, 0, NULL);
}

static void prepare_checked(struct qemu_vm *vm, int status, const struct err *e)
{
	struct err f;
	struct qstep steps[QCHAIN_MAX];
	size_t n = 0;
	if (status < 0) {
		prepare_fail(vm, status, e);
		return;
	}
	compat_fill(vm, vm->mig.peer.compress);
	if (qemu_compat_check(&vm->mig.peer, &vm->mig.local, &f) < 0) {
		err_prefix(&f, "qemu: incompatible migration source");
		log_info("%s", f.msg);
		prepare_fail(vm, f.code, &f);
		return;
	}
	if (option_steps(vm, false, vm->mig.peer.compress, steps, &n, &f) < 0 ||
	    qvm_chain(vm, steps, n, prepare_done, &f) < 0)
		prepare_fail(vm, f.code, &f);
}

static void prepare_launched(struct qemu_vm *vm, int status, const struct err *e)
{
	struct err f;
	struct qstep steps[QCHAIN_MAX];
	size_t n = 0;
	if (status < 0) {
		prepare_fail(vm, status, e);
		return;
	}
	compat_steps(steps, &n);
	if (qvm_chain(vm, steps, n, prepare_checked, &f) < 0)
		prepare_fail(vm, f.code, &f);
}

int qemu_mig_prepare_dest(struct vmm *v, const struct vmm_mig_options *opts, const uint8_t *compat,
                          size_t compat_len, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	struct qemu_compat peer;
	if (!vm->incoming)
		return err_set(e, -EINVAL, "qemu: mig_prepare_dest needs a vm created as incoming");
	if (qemu_compat_decode(compat, compat_len, &peer, e) < 0)
		return err_prefix(e, "qemu");
	if (vm->pid > 0 || vm->probe_pid > 0 || vm->st != QS_CREATED) {
		qemu_compat_fini(&peer);
		return vm->st == QS_CREATED || vm->st == QS_LAUNCHING || vm->st == QS_PAUSED
		           ? err_set(e, -EBUSY,
		                     "qemu: a previous prepare is still running or "
		                     "exiting")
		           : err_set(e, -EINVAL, "qemu: the destination was prepared already");
	}
	enum qemu_accel want = strcmp(peer.accel, "kvm") == 0 ? QEMU_ACCEL_KVM : QEMU_ACCEL_TCG;
	if (vm->m.accel != QEMU_ACCEL_AUTO && vm->m.accel != want) {
		qemu_compat_fini(&peer);
		return err_set(e, -EPROTO,
		               "qemu: the source runs under %s, this machine asks for %s",
		               peer.accel, want == QEMU_ACCEL_KVM ? "tcg" : "kvm");
	}
	if (qvm_claim(vm, V_MIG_PREPARE, done, arg, e) < 0) {
		qemu_compat_fini(&peer);
		return e->code;
	}
	reset_session(vm);
	memset(&vm->mig.stats, 0, sizeof(vm->mig.stats));
	keep_opts(vm, opts);
	vm->mig.peer = peer;
	vm->mig.origin = VMM_ORIGIN_DESTINATION;
	/* Same accelerator as the source, whatever "auto" would pick. */
	vm->m.accel = want;
	if (qvm_launch(vm, prepare_launched, e) < 0) {
		vm->st = QS_CREATED;
		vm->mig.origin = VMM_ORIGIN_UNSPECIFIED;
		memset(&vm->slots[V_MIG_PREPARE], 0, sizeof(vm->slots[V_MIG_PREPARE]));
		return e->code;
	}
	return 0;
}

/* ======================= both: start (socket), transfer ======================= */

static void start_done(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0)
		close_sock(vm);
	qvm_finish(vm, V_MIG_START, status, e);
}

int qemu_mig_start(struct vmm *v, int sock, uint32_t session, vmm_done_fn done, void *arg,
                   struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	_cleanup_close_ int fd = sock;
	int type = 0;
	socklen_t len = sizeof(type);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	bool src = vm->mig.origin == VMM_ORIGIN_SOURCE && vm->mig.blob && vm->st == QS_RUNNING;
	bool dst = vm->mig.origin == VMM_ORIGIN_DESTINATION && vm->st == QS_INCOMING;
	if (!src && !dst)
		return err_set(e, -EINVAL,
		               "qemu: mig_start before mig_init_source / "
		               "mig_prepare_dest");
	if (vm->mig.sock >= 0 || vm->mig.migrating)
		return err_set(e, -EBUSY, "qemu: the migration socket was given already");
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return err_set(e, -EINVAL, "qemu: the migration socket is not a stream socket");
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return err_sys(e, -errno, "qemu: the migration socket is not connected");
	if (fd_set_flags(fd, true, e) < 0)
		return e->code;
	if (qvm_claim(vm, V_MIG_START, done, arg, e) < 0)
		return e->code;
	/* Our header first: 16 bytes always fit an unused socket's buffer. */
	qemu_mig_header(session, vm->mig.hdr_out);
	ssize_t w = fd_write(fd, vm->mig.hdr_out, MIG_HDR_LEN, e);
	if (w != MIG_HDR_LEN) {
		if (w >= 0 || w == IO_AGAIN)
			err_set(e, -EIO, "qemu: could not write the migration header");
		memset(&vm->slots[V_MIG_START], 0, sizeof(vm->slots[V_MIG_START]));
		return e->code;
	}
	vm->mig.session = session;
	vm->mig.sock = steal_fd(&fd);
	struct qstep s = {.execute = "getfd",
	                  .args = json_pack("{s:s}", "fdname", MIG_FDNAME),
	                  .fd = vm->mig.sock};
	if (qvm_chain(vm, &s, 1, start_done, e) < 0) {
		close_sock(vm);
		memset(&vm->slots[V_MIG_START], 0, sizeof(vm->slots[V_MIG_START]));
		return e->code;
	}
	return 0;
}

static void transfer_fail(struct qemu_vm *vm, int status, const struct err *e)
{
	close_sock(vm);
	vm->mig.migrating = false;
	qvm_finish(vm, V_MIG_TRANSFER, status, e);
}

static void migrate_issued(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0)
		transfer_fail(vm, status, e);
	/* otherwise the MIGRATION events finish the transfer */
}

static void header_received(struct qemu_vm *vm)
{
	struct err e;
	ev_io_stop(vm->loop, &vm->mig.sock_w);
	ev_timer_stop(vm->loop, &vm->mig.hdr_timer);
	if (qemu_mig_header_check(vm->mig.hdr_in, vm->mig.session, &e) < 0) {
		log_info("qemu: %s", e.msg);
		transfer_fail(vm, e.code, &e);
		return;
	}
	bool src = vm->mig.origin == VMM_ORIGIN_SOURCE;
	vm->mig.migrating = true;
	vm->mig.completed = false;
	vm->mig.setup_notified = false;
	vm->mig.passes = 0;
	if (!src)
		vm->st = QS_RECEIVING;
	struct qstep s = {.execute = src ? "migrate" : "migrate-incoming",
	                  .args = json_pack("{s:s}", "uri", "fd:" MIG_FDNAME),
	                  .fd = -1};
	if (qvm_chain(vm, &s, 1, migrate_issued, &e) < 0)
		transfer_fail(vm, e.code, &e);
}

static void on_sock(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	struct err e;
	reenter_enter(&vm->re);
	/* Exactly what is missing of the header: the stream behind it is QEMU's. */
	ssize_t n = fd_read(vm->mig.sock, vm->mig.hdr_in + vm->mig.hdr_got,
	                    MIG_HDR_LEN - vm->mig.hdr_got, &e);
	if (n == IO_EOF) {
		err_set(&e, -ECONNRESET, "qemu: the migration peer closed before its header");
		transfer_fail(vm, e.code, &e);
	} else if (n < 0 && n != IO_AGAIN) {
		transfer_fail(vm, (int)n, &e);
	} else if (n > 0 && (vm->mig.hdr_got += (size_t)n) == MIG_HDR_LEN) {
		header_received(vm);
	}
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static void on_hdr_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	struct err e;
	reenter_enter(&vm->re);
	err_set(&e, -ETIMEDOUT, "qemu: no migration header from the peer within %.0f s",
	        MIG_HDR_TIMEOUT_S);
	transfer_fail(vm, e.code, &e);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

int qemu_mig_transfer(struct vmm *v, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (vm->mig.sock < 0 || vm->slots[V_MIG_START].busy)
		return err_set(e, -EINVAL, "qemu: mig_transfer before mig_start completed");
	if (vm->mig.migrating || vm->mig.hdr_got == MIG_HDR_LEN)
		return err_set(e, -EBUSY, "qemu: the transfer was started already");
	if (qvm_claim(vm, V_MIG_TRANSFER, done, arg, e) < 0)
		return e->code;
	ev_io_init(&vm->mig.sock_w, on_sock, vm->mig.sock, EV_READ);
	vm->mig.sock_w.data = vm;
	ev_io_start(vm->loop, &vm->mig.sock_w);
	ev_timer_init(&vm->mig.hdr_timer, on_hdr_timeout, MIG_HDR_TIMEOUT_S, 0.);
	vm->mig.hdr_timer.data = vm;
	ev_timer_start(vm->loop, &vm->mig.hdr_timer);
	return 0;
}

/* ======================= events → notifications ======================= */

static int ret_stats(struct qemu_vm *vm, json_t *ret, struct err *e)
{
	struct qemu_mig_stats *s = &vm->mig.stats;
	/* QEMU announces "completed" a moment before it computes the times: ask again. */
	if (json_integer_value(json_object_get(ret, "total-time")) == 0 &&
	    json_string_value(json_object_get(ret, "status")) &&
	    strcmp(json_string_value(json_object_get(ret, "status")), "completed") == 0 &&
	    vm->mig.stats_tries++ < STATS_TRIES)
		return err_set(e, -EAGAIN, "times not computed yet");
	json_t *ram = json_object_get(ret, "ram");
	s->total_ms = (uint64_t)json_integer_value(json_object_get(ret, "total-time"));
	s->downtime_ms = (uint64_t)json_integer_value(json_object_get(ret, "downtime"));
	s->setup_ms = (uint64_t)json_integer_value(json_object_get(ret, "setup-time"));
	s->bytes = (uint64_t)json_integer_value(json_object_get(ram, "transferred"));
	const char *desc = json_string_value(json_object_get(ret, "error-desc"));
	if (desc)
		log_info("qemu: migration error: %s", desc);
	return 0;
}

static void query_stats(struct qemu_vm *vm);

static void on_stats_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qemu_vm *vm = w->data;
	reenter_enter(&vm->re);
	query_stats(vm);
	if (reenter_leave(&vm->re))
		qvm_destroy(vm);
}

static void source_completed(struct qemu_vm *vm, int status, const struct err *e)
{
	(void)e;
	if (status == -EAGAIN) {
		ev_timer_set(&vm->mig.stats_w, STATS_RETRY_S, 0.);
		ev_timer_start(vm->loop, &vm->mig.stats_w);
		return;
	}
	/* without stats the notifications still go, with zeros */
	struct qemu_mig_stats *s = &vm->mig.stats;
	int64_t stop = vm->mig.stop_real_ns ? vm->mig.stop_real_ns : real_ns();
	struct vmm_notification x = {.has_blackout = true,
	                             .blackout_ms = s->downtime_ms,
	                             .blackout_stop_ns = stop + (int64_t)s->downtime_ms * 1000000,
	                             .bytes_transferred = s->bytes};
	log_info("qemu: migration completed total=%llums downtime=%llums bytes=%llu passes=%u",
	         (unsigned long long)s->total_ms, (unsigned long long)s->downtime_ms,
	         (unsigned long long)s->bytes, s->passes);
	qvm_notify(vm, VMM_PHASE_BLACKOUT_EXITED, VMM_PHASE_STATE_SUCCESS, &x);
	if (reenter_dying(&vm->re))
		return;
	qvm_notify(vm, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS, &x);
	if (reenter_dying(&vm->re))
		return;
	qvm_finish(vm, V_MIG_TRANSFER, 0, NULL);
	qvm_finish(vm, V_MIG_CANCEL, 0, NULL); /* too late to cancel: finalize decides */
}

static void source_failed(struct qemu_vm *vm, int status, const struct err *e)
{
	(void)status;
	(void)e;
	struct err f;
	err_set(&f, -EIO, "qemu: the migration failed on the source (see the log)");
	qvm_notify(vm, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED, NULL);
	if (reenter_dying(&vm->re))
		return;
	qvm_finish(vm, V_MIG_TRANSFER, -EIO, &f);
	qvm_finish(vm, V_MIG_CANCEL, 0, NULL);
}

static void query_stats(struct qemu_vm *vm)
{
	struct err e;
	struct qstep s = {.execute = "query-migrate", .fd = -1, .on_ret = ret_stats};
	if (qvm_chain(vm, &s, 1, source_completed, &e) < 0)
		source_completed(vm, e.code == -EAGAIN ? -EIO : e.code, &e);
}

/* SETUP_DONE once per transfer, before anything else: QEMU announces the first RAM pass
 * (MIGRATION_PASS 1, from its setup) before the status turns "active". */
static void setup_done(struct qemu_vm *vm)
{
	if (vm->mig.setup_notified)
		return;
	vm->mig.setup_notified = true;
	qvm_notify(vm, VMM_PHASE_SETUP_DONE, VMM_PHASE_STATE_SUCCESS, NULL);
}

/* A terminal MIGRATION status: the stream is over, our copy of the socket goes. */
static void terminal(struct qemu_vm *vm)
{
	vm->mig.migrating = false;
	vm->mig.cancelling = false;
	close_sock(vm);
}

static void on_status(struct qemu_vm *vm, const char *status)
{
	struct err e;
	bool src = vm->mig.origin == VMM_ORIGIN_SOURCE;
	if (strcmp(status, "active") == 0) {
		setup_done(vm);
		if (!src && !reenter_dying(&vm->re))
			qvm_notify(vm, VMM_PHASE_TRANSFER_IN_PROGRESS, VMM_PHASE_STATE_SUCCESS,
			           NULL);
	} else if (strcmp(status, "completed") == 0) {
		terminal(vm);
		vm->mig.completed = true;
		vm->st = src ? QS_SENT : QS_RECEIVED;
		qvm_notify(vm, VMM_PHASE_OFFLINE_DONE, VMM_PHASE_STATE_SUCCESS, NULL);
		if (reenter_dying(&vm->re))
			return;
		if (!src) {
			qvm_finish(vm, V_MIG_TRANSFER, 0, NULL);
			return;
		}
		vm->mig.stats_tries = 0;
		query_stats(vm);
	} else if (strcmp(status, "failed") == 0) {
		terminal(vm);
		if (!src) {
			err_set(&e, -EIO, "qemu: the incoming migration failed (qemu exits)");
			qvm_notify(vm, VMM_PHASE_FAILED, VMM_PHASE_STATE_DESTINATION_FAILED, NULL);
			if (!reenter_dying(&vm->re))
				qvm_finish(vm, V_MIG_TRANSFER, -EIO, &e);
			return;
		}
		struct qstep s = {.execute = "query-migrate", .fd = -1, .on_ret = ret_stats};
		if (qvm_chain(vm, &s, 1, source_failed, &e) < 0)
			source_failed(vm, e.code, &e);
	} else if (strcmp(status, "cancelled") == 0) {
		terminal(vm);
		err_set(&e, -ECANCELED, "qemu: the migration was cancelled");
		qvm_notify(vm, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED, NULL);
		if (reenter_dying(&vm->re))
			return;
		qvm_finish(vm, V_MIG_TRANSFER, -ECANCELED, &e);
		qvm_finish(vm, V_MIG_CANCEL, 0, NULL);
	}
}

/* The brownout pass limit: past MaximumNumberOfBrownoutTransferPasses, switch over now
 * (downtime-limit raised to the blackout threshold, or QEMU's maximum); with
 * CancelIfBlackoutThresholdExceeds, one more pass that still does not fit the threshold
 * cancels instead. */
static void brownout_control(struct qemu_vm *vm, unsigned pass)
{
	const struct vmm_mig_options *o = &vm->mig.opts;
	if (!vm->mig.has_opts || !o->has_throttle || !o->throttle.has_maximum_brownout_passes ||
	    pass <= o->throttle.maximum_brownout_passes)
		return;
	bool cancel_if =
	    o->cancel_if_blackout_threshold_exceeds && o->throttle.has_blackout_threshold_cancel_ms;
	if (!vm->mig.forced) {
		uint32_t limit =
		    cancel_if ? o->throttle.blackout_threshold_cancel_ms : DOWNTIME_LIMIT_MAX_MS;
		vm->mig.forced = true;
		log_info(
		    "qemu: pass %u past the limit of %u: switching over (downtime-limit %u ms)",
		    pass, o->throttle.maximum_brownout_passes, limit);
		qvm_fire(vm, "migrate-set-parameters",
		         json_pack("{s:I}", "downtime-limit", (json_int_t)limit));
	} else if (cancel_if && !vm->mig.cancelling) {
		vm->mig.cancelling = true;
		log_info("qemu: pass %u: the blackout would exceed %u ms: cancelling", pass,
		         o->throttle.blackout_threshold_cancel_ms);
		qvm_fire(vm, "migrate_cancel", NULL);
	}
}

void qemu_mig_on_event(struct qemu_vm *vm, const char *name, json_t *data)
{
	if (vm->mig.origin == VMM_ORIGIN_UNSPECIFIED)
		return;
	if (strcmp(name, "MIGRATION") == 0) {
		const char *status = json_string_value(json_object_get(data, "status"));
		log_debug("qemu: migration status %s", status ? status : "?");
		if (status && (vm->mig.migrating || strcmp(status, "active") == 0))
			on_status(vm, status);
	} else if (strcmp(name, "MIGRATION_PASS") == 0 && vm->mig.migrating) {
		json_int_t pass = json_integer_value(json_object_get(data, "pass"));
		vm->mig.passes++;
		vm->mig.stats.passes = vm->mig.passes;
		if (vm->mig.origin == VMM_ORIGIN_SOURCE) {
			setup_done(vm);
			if (!reenter_dying(&vm->re))
				qvm_notify(vm, VMM_PHASE_TRANSFER_IN_PROGRESS,
				           VMM_PHASE_STATE_SUCCESS, NULL);
			if (!reenter_dying(&vm->re) && pass > 0)
				brownout_control(vm, (unsigned)pass);
		}
	} else if (strcmp(name, "STOP") == 0 && vm->mig.migrating &&
	           vm->mig.origin == VMM_ORIGIN_SOURCE) {
		vm->mig.stop_real_ns = real_ns();
		qvm_notify(vm, VMM_PHASE_BLACKOUT_STARTED, VMM_PHASE_STATE_SUCCESS, NULL);
	}
}

/* ======================= cancel, finalize ======================= */

int qemu_mig_cancel(struct vmm *v, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	struct err c;
	if (qvm_claim(vm, V_MIG_CANCEL, done, arg, e) < 0)
		return e->code;
	err_set(&c, -ECANCELED, "qemu: the migration was cancelled");
	if (vm->mig.origin == VMM_ORIGIN_DESTINATION) {
		/* The incoming side cannot be cancelled inside QEMU 7.2: cut the stream and let
		 * this QEMU go; its state is worthless now. */
		close_sock(vm);
		qvm_finish(vm, V_MIG_TRANSFER, -ECANCELED, &c);
		vm->mig.migrating = false;
		if (vm->pid > 0)
			qvm_terminate(vm, false);
		else
			qvm_finish(vm, V_MIG_CANCEL, 0, NULL);
		return 0;
	}
	if (vm->mig.origin == VMM_ORIGIN_SOURCE && vm->mig.migrating) {
		if (!vm->mig.cancelling) {
			vm->mig.cancelling = true;
			qvm_fire(vm, "migrate_cancel", NULL);
		}
		return 0; /* finished by the terminal MIGRATION status */
	}
	/* Nothing moving inside QEMU: drop the socket, end a transfer waiting for its header. */
	if (vm->slots[V_MIG_TRANSFER].busy) {
		qvm_notify(vm, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED, NULL);
		if (reenter_dying(&vm->re))
			return 0;
		qvm_finish(vm, V_MIG_TRANSFER, -ECANCELED, &c);
	}
	if (!vm->mig.completed)
		close_sock(vm);
	qvm_finish(vm, V_MIG_CANCEL, 0, NULL);
	return 0;
}

static void resumed(struct qemu_vm *vm, int status, const struct err *e)
{
	if (status < 0) {
		qvm_finish(vm, V_MIG_FINALIZE, status, e);
		return;
	}
	bool dst = vm->mig.origin == VMM_ORIGIN_DESTINATION;
	vm->st = QS_RUNNING;
	vm->incoming = false;
	if (dst) {
		log_info("qemu: migration destination resumed");
		qvm_notify(vm, VMM_PHASE_BLACKOUT_EXITED, VMM_PHASE_STATE_SUCCESS, NULL);
		if (!reenter_dying(&vm->re))
			qvm_notify(vm, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS, NULL);
	} else {
		log_info("qemu: migration source resumed (rollback)");
		qvm_notify(vm, VMM_PHASE_RECOVERY_DONE, VMM_PHASE_STATE_SUCCESS, NULL);
	}
	if (reenter_dying(&vm->re))
		return;
	reset_session(vm);
	qvm_finish(vm, V_MIG_FINALIZE, 0, NULL);
}

int qemu_mig_finalize(struct vmm *v, bool resume, vmm_done_fn done, void *arg, struct err *e)
{
	struct qemu_vm *vm = qvm(v);
	if (vm->mig.origin == VMM_ORIGIN_UNSPECIFIED)
		return err_set(e, -EINVAL, "qemu: no migration session to finalize");
	if (vm->mig.migrating || vm->slots[V_MIG_TRANSFER].busy)
		return err_set(e, -EBUSY, "qemu: finalize while the transfer runs (cancel first)");
	bool dst = vm->mig.origin == VMM_ORIGIN_DESTINATION;
	if (resume && dst && vm->st != QS_RECEIVED)
		return err_set(e, -EINVAL, "qemu: the destination holds no complete state to run");
	if (resume && vm->pid <= 0)
		return err_set(e, -ECHILD, "qemu: the vm is gone, nothing to resume");
	if (qvm_claim(vm, V_MIG_FINALIZE, done, arg, e) < 0)
		return e->code;
	if (!resume) {
		/* Source: the VM lives on the destination now; destination: discard. */
		if (vm->pid > 0 && !vm->exit_expected)
			qvm_terminate(vm, false);
		else if (vm->pid <= 0)
			qvm_finish(vm, V_MIG_FINALIZE, 0, NULL);
		return 0;
	}
	struct qstep s = {.execute = "cont", .fd = -1};
	if (qvm_chain(vm, &s, 1, resumed, e) < 0) {
		memset(&vm->slots[V_MIG_FINALIZE], 0, sizeof(vm->slots[V_MIG_FINALIZE]));
		return e->code;
	}
	return 0;
}
