/* The hcs backend under wine, against the stand-in computecore.dll (installed as system32's,
 * where the backend loads it from): a whole source and a whole destination migration through
 * vmm.h's verbs, checking the sequence of HCS calls, the documents HCS receives and the
 * notifications that come back; then a failure injected at each step, and a cancel at each
 * step, each ending in the state hcsshim's migration controller needs (hcsshim-lm.md §4.2,
 * §5.1): retry possible where hcsshim leaves the state unchanged, finalize RESUME rolling a
 * source back, finalize STOP discarding a destination, and nothing leaked (operations,
 * compute systems, the migration socket). */
#include <winsock2.h>
#include <windows.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "host/vmm/hcs/hcs.h"
#include "host/vmm/hcs/win/hcs_api.h"
#include "tests/windows/lib/wintest.h"

#define SESSION_SRC 640281193u /* sessionIDToUint32 of the spec's GUID vector */
#define SESSION_DST 70939015u  /* ... of "s" */
#define COMPAT      "ferry-stand-in-compat"

struct fx {
	struct ev_loop *loop;
	struct hcs_api api;
	struct standin sd;
	struct vmm *vm;
	SOCKET peer; /* the far end of the migration socket handed to mig_start */
	/* callbacks */
	bool done;
	int status;
	char msg[ERR_MSG_MAX];
	int exits, exit_status;
	struct vmm_notification notes[32];
	int n_notes;
	bool free_in_done;
};

static void on_exit_cb(struct vmm *vm, int status, void *arg)
{
	(void)vm;
	struct fx *f = arg;
	f->exits++;
	f->exit_status = status;
}

static void on_note(struct vmm *vm, const struct vmm_notification *n, void *arg)
{
	(void)vm;
	struct fx *f = arg;
	if (f->n_notes < 32)
		f->notes[f->n_notes] = *n;
	f->n_notes++;
}

static void on_done(struct vmm *vm, int status, const struct err *e, void *arg)
{
	struct fx *f = arg;
	f->done = true;
	f->status = status;
	snprintf(f->msg, sizeof(f->msg), "%s", e ? e->msg : "");
	if (f->free_in_done) {
		vmm_free(vm);
		f->vm = NULL;
	}
}

static const char machine_text[] =
    "{\"Id\":\"%s\",\"ComputeSystem\":{\"Owner\":\"ferry-test\",\"SchemaVersion\":{\"Major\":2,"
    "\"Minor\":1},\"VirtualMachine\":{\"Devices\":{\"Scsi\":{"
    "\"df6d0690-79e5-55b6-a5ec-c1e2f77f580a\":{\"Attachments\":{\"0\":{\"Type\":"
    "\"VirtualDisk\",\"Path\":\"C:\\\\uvm\\\\rootfs.vhdx\",\"ReadOnly\":true}}}}}}}}";

static struct vmm *create(struct fx *f, const char *id, bool incoming, const struct hcs_api *a)
{
	char text[1024];
	snprintf(text, sizeof(text), machine_text, id);
	json_t *m = json_loads(text, 0, NULL);
	assert_non_null(m);
	struct vmm_events ev = {on_exit_cb, on_note, f};
	struct err e = {0};
	struct vmm *vm = hcs_vm_create(f->loop, a ? a : &f->api, m, incoming, &ev, &e);
	json_decref(m);
	assert_non_null(vm);
	return vm;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = {0};
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	assert_int_equal(hcs_api_load(&f->api, NULL, &e), 0);
	wintest_standin(f->api.module, &f->sd);
	assert_int_equal(f->sd.configure(NULL), 0);
	f->peer = INVALID_SOCKET;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmm_free(f->vm);
	/* every operation and compute system is released (waiter threads may lag a little) */
	long ops = -1, sys = -1;
	for (int i = 0; i < 300; i++) {
		f->sd.stats(&ops, &sys);
		if (ops == 0 && sys == 0)
			break;
		wintest_run_for(f->loop, 10);
	}
	assert_int_equal(ops, 0);
	assert_int_equal(sys, 0);
	if (f->peer != INVALID_SOCKET)
		closesocket(f->peer);
	hcs_api_release(&f->api);
	ev_loop_destroy(f->loop);
	free(f);
	return 0;
}

/* Start a verb (expect it accepted), run until its callback; return the status. */
#define RUN(f, call)                                                                               \
	({                                                                                         \
		struct err e_ = {0};                                                               \
		(f)->done = false;                                                                 \
		int r_ = (call);                                                                   \
		if (r_ < 0)                                                                        \
			fail_msg("%s refused: %d %s", #call, r_, e_.msg);                          \
		assert_true(wintest_run_until((f)->loop, &(f)->done));                             \
		(f)->status;                                                                       \
	})
#define E (&e_)

/* A connected socket for mig_start; the test keeps the far end. */
static int mig_socket(struct fx *f)
{
	SOCKET s[2];
	assert_int_equal(wintest_socketpair(s), 0);
	if (f->peer != INVALID_SOCKET)
		closesocket(f->peer);
	f->peer = s[1];
	return (int)(intptr_t)s[0];
}

/* Has the backend released the migration socket?  The far end then reads EOF. */
static bool socket_released(struct fx *f)
{
	DWORD tmo = 5000;
	setsockopt(f->peer, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tmo, sizeof(tmo));
	char c;
	return recv(f->peer, &c, 1, 0) == 0;
}

static void expect_note(const struct fx *f, int i, enum vmm_origin o, enum vmm_phase p,
                        enum vmm_phase_state s)
{
	assert_true(i < f->n_notes);
	assert_int_equal(f->notes[i].origin, o);
	assert_int_equal(f->notes[i].phase, p);
	assert_int_equal(f->notes[i].state, s);
}

static void expect_json(json_t *entry, const char *key, const char *want)
{
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
	assert_non_null(w);
	json_t *got = json_object_get(entry, key);
	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		fail_msg("%s: got %s, want %s", key, g ? g : "(none)", want);
	}
	json_decref(w);
}

static struct vmm_mig_options tcp_options(void)
{
	struct vmm_mig_options o;
	memset(&o, 0, sizeof(o));
	o.memory_transport = 1;
	o.has_throttle = true;
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 300;
	o.checksum_verification = true;
	return o;
}

/* start + init + start-on-source (+ transfer if asked), checking each succeeds. */
static void source_until(struct fx *f, const char *id, int steps)
{
	f->vm = create(f, id, false, NULL);
	struct vmm_mig_options o = tcp_options();
	if (steps >= 1)
		assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), 0);
	if (steps >= 2)
		assert_int_equal(RUN(f, f->vm->ops->mig_init_source(f->vm, &o, on_done, f, E)), 0);
	if (steps >= 3)
		assert_int_equal(
		    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_SRC, on_done, f, E)),
		    0);
	if (steps >= 4)
		assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), 0);
}

static void dest_until(struct fx *f, const char *id, int steps)
{
	f->vm = create(f, id, true, NULL);
	struct vmm_mig_options o = tcp_options();
	if (steps >= 1)
		assert_int_equal(
		    RUN(f, f->vm->ops->mig_prepare_dest(f->vm, &o, (const uint8_t *)COMPAT,
		                                        strlen(COMPAT), on_done, f, E)),
		    0);
	if (steps >= 2)
		assert_int_equal(
		    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_DST, on_done, f, E)),
		    0);
	if (steps >= 3)
		assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), 0);
}

/* The VM runs: a SCSI modify is accepted and succeeds. */
static void expect_running(struct fx *f)
{
	struct vmm_disk d = {"C:\\uvm\\probe.vhdx", false, NULL};
	assert_int_equal(RUN(f, f->vm->ops->scsi_attach(f->vm, 0, 7, &d, on_done, f, E)), 0);
}

/* ---- the whole flows ---- */

static void test_loader(void **state)
{
	struct fx *f = *state;
	struct hcs_api a;
	struct err e = {0};
	/* the stand-in exports every entry, the optional cancel included */
	assert_non_null(f->api.HcsCancelLiveMigration);
	assert_true(hcs_api_has_migration(&f->api));
	assert_int_equal(hcs_api_load(&a, L"C:\\nowhere\\computecore.dll", &e), -ENOENT);
	assert_non_null(strstr(e.msg, "cannot load computecore.dll"));
	/* a DLL without the HCS entries: the first missing required one is named */
	assert_int_equal(hcs_api_load(&a, L"kernel32.dll", &e), -ENOSYS);
	assert_string_equal(e.msg, "computecore.dll has no HcsCreateOperation");
	/* the daemon's table entry loads the same DLL */
	assert_string_equal(hcs_backend.name, "hcs");
	json_t *m = json_loads("{\"Id\":\"x\",\"ComputeSystem\":{\"VirtualMachine\":{}}}", 0, NULL);
	struct vmm *vm = hcs_backend.create(f->loop, m, ".", false, NULL, &e);
	assert_non_null(vm);
	assert_string_equal(vm->backend, "hcs");
	assert_null(vm->ops->guest_transport(vm)); /* no compute system yet */
	vmm_free(vm);
	json_decref(m);
}

static void test_source_migration(void **state)
{
	struct fx *f = *state;
	source_until(f, "src@vm", 1);
	json_t *log = wintest_log(&f->sd);
	size_t at = 0;
	json_t *create_e = wintest_find(log, "HcsCreateComputeSystem", &at);
	char want[80];
	snprintf(want, sizeof(want), "hvsock:%s",
	         json_string_value(json_object_get(create_e, "RuntimeId")));
	assert_string_equal(f->vm->ops->guest_transport(f->vm), want);
	json_decref(log);

	struct vmm_disk scratch = {"C:\\uvm\\scratch.vhdx", false, NULL};
	assert_int_equal(RUN(f, f->vm->ops->scsi_attach(f->vm, 1, 0, &scratch, on_done, f, E)), 0);
	struct vmm_mig_options o = tcp_options();
	assert_int_equal(RUN(f, f->vm->ops->mig_init_source(f->vm, &o, on_done, f, E)), 0);
	struct buf blob;
	struct err e = {0};
	buf_init(&blob);
	assert_int_equal(f->vm->ops->mig_compat_info(f->vm, &blob, &e), 0);
	assert_int_equal(buf_avail(&blob), strlen(COMPAT));
	assert_memory_equal(buf_head(&blob), COMPAT, strlen(COMPAT));
	buf_fini(&blob);
	json_t *desc = f->vm->ops->describe(f->vm, &e);
	assert_non_null(json_object_get(
	    json_object_get(
	        json_object_get(
	            json_object_get(
	                json_object_get(json_object_get(json_object_get(desc, "ComputeSystem"),
	                                                "VirtualMachine"),
	                                "Devices"),
	                "Scsi"),
	            "0110f83b-de10-5172-a266-78bca56bf50a"),
	        "Attachments"),
	    "0"));
	json_decref(desc);

	assert_int_equal(
	    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_SRC, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), 0);
	/* hcsshim's test payloads, in order, mapped as ToNotification maps them */
	assert_int_equal(f->n_notes, 6);
	expect_note(f, 0, VMM_ORIGIN_SOURCE, VMM_PHASE_SETUP_DONE, VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 1, VMM_ORIGIN_SOURCE, VMM_PHASE_TRANSFER_IN_PROGRESS,
	            VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 2, VMM_ORIGIN_SOURCE, VMM_PHASE_BLACKOUT_STARTED, VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 3, VMM_ORIGIN_SOURCE, VMM_PHASE_OFFLINE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 4, VMM_ORIGIN_SOURCE, VMM_PHASE_BLACKOUT_EXITED, VMM_PHASE_STATE_SUCCESS);
	assert_true(f->notes[4].has_blackout);
	assert_int_equal(f->notes[4].blackout_ms, 1234);
	assert_true(f->notes[4].blackout_stop_ns == 1776947696LL * 1000000000);
	expect_note(f, 5, VMM_ORIGIN_SOURCE, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);

	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
	assert_int_equal(f->exit_status, 0);
	assert_true(socket_released(f));
	/* a retried STOP after the VM is gone is a no-op; RESUME is refused (§4.2) */
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->vm->ops->mig_finalize(f->vm, true, on_done, f, &e), -EINVAL);
	assert_string_equal(e.msg, "mig_finalize: VM already terminated by a stop finalize");
	assert_int_equal(f->exits, 1);

	assert_string_equal(wintest_fns(&f->sd),
	                    "HcsGrantVmAccess HcsCreateComputeSystem HcsGetComputeSystemProperties "
	                    "HcsSetComputeSystemCallback HcsStartComputeSystem HcsGrantVmAccess "
	                    "HcsModifyComputeSystem HcsInitializeLiveMigrationOnSource "
	                    "HcsGetComputeSystemProperties HcsAddResourceToOperation "
	                    "HcsStartLiveMigrationOnSource HcsStartLiveMigrationTransfer "
	                    "HcsFinalizeLiveMigration");
	/* the documents HCS received */
	log = wintest_log(&f->sd);
	at = 0;
	json_t *g = wintest_find(log, "HcsGrantVmAccess", &at);
	assert_string_equal(json_string_value(json_object_get(g, "Id")), "src@vm");
	assert_string_equal(json_string_value(json_object_get(g, "Path")), "C:\\uvm\\rootfs.vhdx");
	json_t *c = wintest_find(log, "HcsCreateComputeSystem", &at);
	expect_json(c, "Id", "\"src@vm\"");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(c, "Document"), "Owner")),
	    "ferry-test");
	expect_json(wintest_find(log, "HcsGetComputeSystemProperties", &at), "Query", "{}");
	expect_json(wintest_find(log, "HcsSetComputeSystemCallback", &at), "Options", "4");
	expect_json(wintest_find(log, "HcsStartComputeSystem", &at), "Options", "null");
	expect_json(
	    wintest_find(log, "HcsModifyComputeSystem", &at), "Document",
	    "{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/"
	    "0110f83b-de10-5172-a266-78bca56bf50a/Attachments/0\",\"RequestType\":\"Add\","
	    "\"Settings\":{\"Type\":\"VirtualDisk\",\"Path\":\"C:\\\\uvm\\\\scratch.vhdx\"}}");
	expect_json(wintest_find(log, "HcsInitializeLiveMigrationOnSource", &at), "Options",
	            "{\"Origin\":\"Source\",\"MemoryTransport\":\"TCP\","
	            "\"MemoryTransferThrottleParams\":{\"MinimumThrottlePercentage\":44},"
	            "\"ChecksumVerification\":true}");
	expect_json(wintest_find(log, "HcsGetComputeSystemProperties", &at), "Query",
	            "{\"Queries\":{\"CompatibilityInfo\":null}}");
	json_t *res = wintest_find(log, "HcsAddResourceToOperation", &at);
	expect_json(res, "Type", "4");
	expect_json(res, "Uri", "\"hcs:/VirtualMachine/LiveMigrationSocket\"");
	expect_json(res, "Socket", "true");
	expect_json(wintest_find(log, "HcsStartLiveMigrationOnSource", &at), "Options",
	            "{\"NetworkSettings\":{\"SessionId\":640281193}}");
	expect_json(wintest_find(log, "HcsStartLiveMigrationTransfer", &at), "Options",
	            "{\"Origin\":\"Source\"}");
	expect_json(wintest_find(log, "HcsFinalizeLiveMigration", &at), "Options",
	            "{\"Origin\":\"Source\",\"FinalizedOperation\":\"Stop\"}");
	json_decref(log);
}

/* VirtualMachine.MigrationOptions of describe()'s document (a new reference), or NULL. */
static json_t *migration_options(struct fx *f)
{
	struct err e = {0};
	json_t *d = f->vm->ops->describe(f->vm, &e);
	assert_non_null(d);
	json_t *mo =
	    json_object_get(json_object_get(json_object_get(d, "ComputeSystem"), "VirtualMachine"),
	                    "MigrationOptions");
	json_incref(mo);
	json_decref(d);
	return mo;
}

static void test_destination_migration(void **state)
{
	struct fx *f = *state;
	f->vm = create(f, "dst@vm", true, NULL);
	struct err e = {0};
	assert_int_equal(f->vm->ops->start(f->vm, on_done, f, &e), -EINVAL);
	struct vmm_mig_options o = tcp_options();
	/* a compatibility blob the "host" does not accept fails before any memory moves, and
	 * leaves the VM uncreated, so the call can be retried (hcsshim's CreateVM) */
	assert_int_equal(RUN(f, f->vm->ops->mig_prepare_dest(f->vm, &o, (const uint8_t *)"other", 5,
	                                                     on_done, f, E)),
	                 -EINVAL);
	assert_non_null(strstr(f->msg, "compatibility data does not match"));
	assert_null(f->vm->ops->guest_transport(f->vm));
	assert_null(migration_options(f));
	assert_int_equal(RUN(f, f->vm->ops->mig_prepare_dest(f->vm, &o, (const uint8_t *)COMPAT,
	                                                     strlen(COMPAT), on_done, f, E)),
	                 0);
	assert_non_null(f->vm->ops->guest_transport(f->vm));
	/* describe() now is the machine HCS created, MigrationOptions included */
	json_t *mo = migration_options(f);
	assert_string_equal(json_string_value(json_object_get(mo, "Origin")), "Destination");
	json_decref(mo);
	assert_int_equal(
	    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_DST, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), 0);
	assert_int_equal(f->n_notes, 6);
	expect_note(f, 0, VMM_ORIGIN_DESTINATION, VMM_PHASE_SETUP_DONE, VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 5, VMM_ORIGIN_DESTINATION, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	assert_true(socket_released(f));
	/* the destination now runs: SCSI works; a retried RESUME is a no-op (§4.2) */
	expect_running(f);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->stop(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);

	json_t *log = wintest_log(&f->sd);
	size_t at = 0;
	json_t *c = wintest_find(log, "HcsCreateComputeSystem", &at);
	expect_json(
	    json_object_get(c, "Document"), "VirtualMachine",
	    "{\"Devices\":{\"Scsi\":{\"df6d0690-79e5-55b6-a5ec-c1e2f77f580a\":{"
	    "\"Attachments\":{\"0\":{\"Type\":\"VirtualDisk\",\"Path\":"
	    "\"C:\\\\uvm\\\\rootfs.vhdx\",\"ReadOnly\":true}}}}},\"MigrationOptions\":{"
	    "\"Origin\":\"Destination\",\"MemoryTransport\":\"TCP\","
	    "\"MemoryTransferThrottleParams\":{\"MinimumThrottlePercentage\":44},"
	    "\"ChecksumVerification\":true,\"CompatibilityData\":{\"Data\":\"b3RoZXI=\"}}}");
	c = wintest_find(log, "HcsCreateComputeSystem", &at);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(json_object_get(json_object_get(c, "Document"),
	                                                        "VirtualMachine"),
	                                        "MigrationOptions"),
	                        "CompatibilityData"),
	        "Data")),
	    "ZmVycnktc3RhbmQtaW4tY29tcGF0");
	json_t *res = wintest_find(log, "HcsAddResourceToOperation", &at);
	expect_json(res, "Socket", "true");
	expect_json(
	    wintest_find(log, "HcsStartComputeSystem", &at), "Options",
	    "{\"DestinationMigrationOptions\":{\"NetworkSettings\":{\"SessionId\":70939015}}}");
	expect_json(wintest_find(log, "HcsStartLiveMigrationTransfer", &at), "Options",
	            "{\"Origin\":\"Destination\"}");
	expect_json(wintest_find(log, "HcsFinalizeLiveMigration", &at), "Options",
	            "{\"Origin\":\"Destination\",\"FinalizedOperation\":\"Resume\"}");
	assert_non_null(wintest_find(log, "HcsModifyComputeSystem", &at));
	assert_non_null(wintest_find(log, "HcsShutDownComputeSystem", &at));
	json_decref(log);
}

/* ---- a failure at each step ---- */

static void configure(struct fx *f, const char *how, const char *fn)
{
	char cfg[200];
	snprintf(cfg, sizeof(cfg), "{\"%s\":\"%s\"}", how, fn);
	assert_int_equal(f->sd.configure(cfg), 0);
}

/* Creation fails (at the call, or at the result): no compute system is left, a retry works. */
static void test_fail_start(void **state)
{
	struct fx *f = *state;
	struct err e = {0};
	f->vm = create(f, "fail-start@vm", false, NULL);
	configure(f, "FailCall", "HcsCreateComputeSystem");
	assert_int_equal(f->vm->ops->start(f->vm, on_done, f, &e), -EIO);
	assert_non_null(strstr(e.msg, "HcsCreateComputeSystem: HRESULT 0x80370106"));
	configure(f, "FailResult", "HcsStartComputeSystem");
	assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), -EIO);
	assert_non_null(strstr(f->msg, "stand-in: injected failure"));
	long ops, sys;
	f->sd.stats(&ops, &sys);
	assert_int_equal(sys, 0);
	assert_null(f->vm->ops->guest_transport(f->vm));
	configure(f, "FailCall", "HcsSetComputeSystemCallback");
	assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), -EIO);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), 0);
	expect_running(f);
}

/* Source: init fails -> still running, init again works (PrepareSource records nothing). */
static void test_fail_init(void **state)
{
	struct fx *f = *state;
	struct err e = {0};
	struct vmm_mig_options o = tcp_options();
	source_until(f, "fail-init@vm", 1);
	configure(f, "FailResult", "HcsInitializeLiveMigrationOnSource");
	assert_int_equal(RUN(f, f->vm->ops->mig_init_source(f->vm, &o, on_done, f, E)), -EIO);
	assert_non_null(strstr(f->msg, "HcsInitializeLiveMigrationOnSource"));
	expect_running(f);
	/* parse.go's error: nothing reaches HCS */
	o.memory_transport = 0;
	assert_int_equal(f->vm->ops->mig_init_source(f->vm, &o, on_done, f, &e), -EINVAL);
	assert_non_null(
	    strstr(e.msg, "unsupported memory transport \"MEMORY_TRANSPORT_UNSPECIFIED\""));
	/* a failed compatibility query fails the export, not the init (hcsshim's vm.Save) */
	configure(f, "FailResult", "HcsGetComputeSystemProperties");
	o.memory_transport = 1;
	assert_int_equal(RUN(f, f->vm->ops->mig_init_source(f->vm, &o, on_done, f, E)), 0);
	struct buf b;
	buf_init(&b);
	assert_int_equal(f->vm->ops->mig_compat_info(f->vm, &b, &e), -EIO);
	assert_non_null(strstr(e.msg, "mig_compat_info"));
	buf_fini(&b);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
}

/* Source: start-on-source or the socket resource fails -> socket released, finalize RESUME
 * rolls back to running. */
static void test_fail_source_start(void **state)
{
	struct fx *f = *state;
	struct err e = {0};
	source_until(f, "fail-sstart@vm", 2);
	configure(f, "FailCall", "HcsStartLiveMigrationOnSource");
	assert_int_equal(f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_SRC, on_done, f, &e),
	                 -EIO);
	assert_true(socket_released(f));
	configure(f, "FailResult", "HcsStartLiveMigrationOnSource");
	assert_int_equal(
	    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_SRC, on_done, f, E)), -EIO);
	assert_true(socket_released(f));
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
	assert_int_equal(f->exits, 0);
}

/* Source: the transfer fails -> the state allows finalize RESUME (rollback), as hcsshim's
 * Failed state does; the VM runs on. */
static void test_fail_transfer_source(void **state)
{
	struct fx *f = *state;
	source_until(f, "fail-xfer@vm", 3);
	configure(f, "FailResult", "HcsStartLiveMigrationTransfer");
	assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), -EIO);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	assert_true(socket_released(f));
	expect_running(f);
}

/* Finalize fails -> nothing advanced; the retry works (§4.2: the call can be retried). */
static void test_fail_finalize(void **state)
{
	struct fx *f = *state;
	source_until(f, "fail-fin@vm", 4);
	configure(f, "FailResult", "HcsFinalizeLiveMigration");
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), -EIO);
	assert_int_equal(f->exits, 0);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
}

/* Destination: start with migration options fails, or the transfer fails -> finalize STOP
 * discards the VM (on_exit). */
static void test_fail_destination(void **state)
{
	struct fx *f = *state;
	dest_until(f, "fail-dst@vm", 1);
	configure(f, "FailResult", "HcsStartComputeSystem");
	assert_int_equal(
	    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_DST, on_done, f, E)), -EIO);
	assert_true(socket_released(f));
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
	vmm_free(f->vm);

	f->exits = 0;
	dest_until(f, "fail-dst2@vm", 2);
	configure(f, "FailResult", "HcsStartLiveMigrationTransfer");
	assert_int_equal(RUN(f, f->vm->ops->mig_transfer(f->vm, on_done, f, E)), -EIO);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
	assert_string_equal(wintest_fns(&f->sd), "HcsFinalizeLiveMigration");
}

/* Start a transfer that hangs at HCS, then cancel it: the cancel succeeds and the transfer
 * completes -ECANCELED (a second transfer meanwhile is refused -EBUSY). */
static void cancel_hanging_transfer(struct fx *f)
{
	struct err e = {0};
	configure(f, "Hang", "HcsStartLiveMigrationTransfer");
	f->done = false;
	assert_int_equal(f->vm->ops->mig_transfer(f->vm, on_done, f, &e), 0);
	wintest_run_for(f->loop, 100);
	assert_false(f->done); /* hanging */
	assert_int_equal(f->vm->ops->mig_transfer(f->vm, on_done, f, &e), -EBUSY);
	struct fx cancel = {0};
	assert_int_equal(f->vm->ops->mig_cancel(f->vm, on_done, &cancel, &e), 0);
	assert_true(wintest_run_until(f->loop, &cancel.done));
	assert_int_equal(cancel.status, 0);
	assert_true(wintest_run_until(f->loop, &f->done));
	assert_int_equal(f->status, -ECANCELED);
}

/* ---- a cancel at each step ---- */

/* Cancel a transfer in flight: HcsCancelLiveMigration interrupts it, the transfer fails
 * cancelled, the MigrationFailed/MigrationCancelled notification arrives, the socket is
 * released; the source rolls back with finalize RESUME. */
static void test_cancel_transfer_source(void **state)
{
	struct fx *f = *state;
	source_until(f, "cancel-xfer@vm", 3);
	int n0 = f->n_notes;
	cancel_hanging_transfer(f);
	wintest_run_for(f->loop, 50);
	expect_note(f, n0, VMM_ORIGIN_SOURCE, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED);
	assert_true(socket_released(f));
	json_t *log = wintest_log(&f->sd);
	size_t at = 0;
	expect_json(wintest_find(log, "HcsCancelLiveMigration", &at), "Options",
	            "{\"Origin\":\"Source\"}");
	json_decref(log);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
}

/* Cancel with nothing in flight: after init (HCS accepts), and after the transfer completed
 * (HCS_E_INVALID_STATE: -EALREADY, which hcsshim's Cancel counts as cancelled). */
static void test_cancel_idle_source(void **state)
{
	struct fx *f = *state;
	source_until(f, "cancel-idle@vm", 2);
	assert_int_equal(RUN(f, f->vm->ops->mig_cancel(f->vm, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
	vmm_free(f->vm);
	source_until(f, "cancel-late@vm", 4);
	assert_int_equal(RUN(f, f->vm->ops->mig_cancel(f->vm, on_done, f, E)), -EALREADY);
	assert_non_null(strstr(f->msg, "HCS_E_INVALID_STATE"));
	assert_true(socket_released(f));
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
}

/* Destination: cancel a transfer in flight, then finalize STOP discards; a destination that
 * was only created is cancelled and then stopped without an HCS terminate (never started). */
static void test_cancel_destination(void **state)
{
	struct fx *f = *state;
	dest_until(f, "cancel-dst@vm", 2);
	cancel_hanging_transfer(f);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, false, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
	vmm_free(f->vm);

	f->exits = 0;
	dest_until(f, "cancel-dst2@vm", 1);
	assert_int_equal(RUN(f, f->vm->ops->mig_cancel(f->vm, on_done, f, E)), 0);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->stop(f->vm, true, on_done, f, E)), 0);
	assert_int_equal(f->exits, 1);
	assert_string_equal(wintest_fns(&f->sd), "HcsCloseComputeSystem");
}

/* computecore.dll without HcsCancelLiveMigration (every public export list): the transfer
 * operation in flight is cancelled with HcsCancelOperation; with nothing in flight the cancel
 * reports -EALREADY. */
static void test_cancel_fallback(void **state)
{
	struct fx *f = *state;
	struct hcs_api a = f->api;
	a.HcsCancelLiveMigration = NULL;
	f->vm = create(f, "fallback@vm", false, &a);
	struct vmm_mig_options o = tcp_options();
	assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->mig_init_source(f->vm, &o, on_done, f, E)), 0);
	assert_int_equal(RUN(f, f->vm->ops->mig_cancel(f->vm, on_done, f, E)), -EALREADY);
	assert_non_null(strstr(f->msg, "nothing in flight"));
	assert_int_equal(
	    RUN(f, f->vm->ops->mig_start(f->vm, mig_socket(f), SESSION_SRC, on_done, f, E)), 0);
	cancel_hanging_transfer(f);
	assert_true(socket_released(f));
	json_t *log = wintest_log(&f->sd);
	size_t at = 0;
	expect_json(wintest_find(log, "HcsCancelOperation", &at), "Of",
	            "\"HcsStartLiveMigrationTransfer\"");
	at = 0;
	assert_null(wintest_find(log, "HcsCancelLiveMigration", &at));
	json_decref(log);
	f->sd.configure(NULL);
	assert_int_equal(RUN(f, f->vm->ops->mig_finalize(f->vm, true, on_done, f, E)), 0);
	expect_running(f);
}

/* ---- notifications, re-entrancy, teardown ---- */

/* hcsshim's _LM_ payloads through the real callback path: a nil EventData is delivered as the
 * zero value, invalid JSON is dropped, non-LM events never become notifications. */
static void test_notification_payloads(void **state)
{
	struct fx *f = *state;
	source_until(f, "notes@vm", 1);
	assert_int_equal(f->sd.emit("notes@vm", 0x80000003u, NULL), 0);
	assert_int_equal(f->sd.emit("notes@vm", 0x80000003u, "not-json"), 0);
	assert_int_equal(f->sd.emit("notes@vm", 0x00000006u, "{\"Event\":\"SetupDone\"}"), 0);
	assert_int_equal(f->sd.emit("notes@vm", 0x80000003u,
	                            "{\"Origin\":\"Destination\",\"Event\":\"MigrationDone\","
	                            "\"Result\":\"Success\"}"),
	                 0);
	assert_int_equal(f->sd.emit("notes@vm", 0x80000003u,
	                            "{\"Event\":\"BlackoutExited\",\"AdditionalDetails\":{"
	                            "\"BlackoutDurationMilliseconds\":\"x\"}}"),
	                 0);
	for (int i = 0; i < 300 && f->n_notes < 3; i++)
		wintest_run_for(f->loop, 10);
	wintest_run_for(f->loop, 50);
	assert_int_equal(f->n_notes, 3);
	expect_note(f, 0, VMM_ORIGIN_SOURCE, VMM_PHASE_UNSPECIFIED, VMM_PHASE_STATE_UNSPECIFIED);
	expect_note(f, 1, VMM_ORIGIN_DESTINATION, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect_note(f, 2, VMM_ORIGIN_SOURCE, VMM_PHASE_BLACKOUT_EXITED, VMM_PHASE_STATE_SUCCESS);
	assert_false(f->notes[2].has_blackout); /* bad details: only they are dropped */
	assert_int_equal(f->exits, 0);
}

/* A completion callback may free the VM; freeing with an operation in flight cancels it and
 * releases everything (teardown checks that no operation or system is left). */
static void test_free_from_callback_and_in_flight(void **state)
{
	struct fx *f = *state;
	f->vm = create(f, "free@vm", false, NULL);
	f->free_in_done = true;
	assert_int_equal(RUN(f, f->vm->ops->start(f->vm, on_done, f, E)), 0);
	assert_null(f->vm);
	f->free_in_done = false;

	f->vm = create(f, "free2@vm", false, NULL);
	configure(f, "Hang", "HcsStartComputeSystem");
	struct err e = {0};
	f->done = false;
	assert_int_equal(f->vm->ops->start(f->vm, on_done, f, &e), 0);
	wintest_run_for(f->loop, 100);
	vmm_free(f->vm);
	f->vm = NULL;
	wintest_run_for(f->loop, 100);
	assert_false(f->done); /* no callback after free */
	json_t *log = wintest_log(&f->sd);
	size_t at = 0;
	assert_non_null(wintest_find(log, "HcsCancelOperation", &at));
	assert_non_null(wintest_find(log, "HcsCloseComputeSystem", &at));
	json_decref(log);
}

int main(void)
{
	log_set_level(LOG_LVL_ERROR); /* the dropped-notification warnings are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_loader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_destination_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_init, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_source_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_transfer_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_finalize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_destination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_transfer_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_idle_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_destination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_fallback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notification_payloads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_from_callback_and_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
