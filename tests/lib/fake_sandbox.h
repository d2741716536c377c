/* A fake sandbox for the migration controller's unit tests (host/shim/migration.h): it
 * implements every sandbox verb, records each call and its arguments, completes
 * asynchronously from the loop (a zero-delay timer, in call order), fails on demand (at once
 * or through the callback), holds a verb until released, and tracks a VM state the way the VM
 * controller would.  A socket handed to mig_start is kept until cancel or fini, like a VMM.
 *
 * Plus `struct mt`, the fixture the controller tests share: a guarded loop, the fake, the
 * controller, synchronous wrappers for every call, and helpers that drive a session to any of
 * the 13 states through the public API only. */
#ifndef FERRY_TESTS_FAKE_SANDBOX_H
#define FERRY_TESTS_FAKE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/shim/migration.h"
#include "tests/lib/evtest.h"

enum fake_verb {
	FAKE_INIT_SOURCE,
	FAKE_SAVE,
	FAKE_IMPORT,
	FAKE_PATCH,
	FAKE_PREPARE_DEST,
	FAKE_PATCH_VM,
	FAKE_MIG_START,
	FAKE_MIG_TRANSFER,
	FAKE_FINALIZE,
	FAKE_RESUME,
	FAKE_TERMINATE,
	FAKE_CANCEL,
	FAKE_ABORT,
	FAKE_VERB_COUNT,
};

struct fake_pending;

struct fake_sb {
	struct ev_loop *loop;
	enum migration_vm_state vm_state;
	struct {
		int fail;  /* complete with this negative errno (0: success) */
		bool now;  /* ... returned at once instead of through the callback */
		bool hold; /* do not complete until fake_sb_release */
		unsigned calls;
	} verb[FAKE_VERB_COUNT];
	char log[2048]; /* "init_source save mig_start ..." */

	/* results */
	char save_type_url[128];
	uint8_t save_value[64];
	size_t save_len;
	struct migration_container *conts; /* owned array, strings borrowed */
	size_t n_conts;

	/* arguments seen */
	struct vmm_mig_options opts;
	char vm_id[128];
	char import_sandbox[64];
	size_t import_len;
	int sock; /* taken by mig_start; closed by cancel or fini */
	uint32_t session;
	bool finalize_resume;
	bool resume_destination;
	char patch_source[64], patch_pod[64], patch_id[64], patch_bundle[64], patch_netns[64];
	bool patch_sandbox;
	size_t patch_repaths;

	/* cancel completes a held mig_start/mig_transfer with -ECANCELED first (a real VMM) */
	bool cancel_ends_transfer;

	struct fake_pending *pending;
	ev_timer timer;
};

extern const struct migration_sandbox_ops fake_sb_ops;

void fake_sb_init(struct fake_sb *f, struct ev_loop *loop);
/* Completes what is still pending with -ECANCELED (the sandbox contract), closes a kept
 * socket. */
void fake_sb_fini(struct fake_sb *f);
/* Complete a held verb (with its configured status). */
void fake_sb_release(struct fake_sb *f, enum fake_verb v);
/* Is a call of v waiting (held) right now? */
bool fake_sb_waiting(const struct fake_sb *f, enum fake_verb v);
/* Set the containers import reports (the strings must outlive the fake). */
void fake_sb_containers(struct fake_sb *f, const char *const *ids, const char *const *pods,
                        size_t n);

/* ---- the shared fixture ---- */

struct mt {
	struct evtest ev;
	struct fake_sb sb;
	struct migration *m;
	struct mig_status st; /* the last synchronous call's status */
	int peer;             /* the other end of the last socket pair made */
	int local;            /* our end handed over by protocol info */
	uint8_t *export_value;
	size_t export_len;
	char export_type_url[128];
};

/* cmocka setup/teardown: *state is a struct mt. */
int mt_setup(void **state);
int mt_teardown(void **state);

/* Synchronous calls: start, run the loop until done, keep the status in t->st, return its
 * code. */
enum mig_code mt_prepare_source(struct mt *t, const char *sid);
enum mig_code mt_export(struct mt *t, const char *sid);
enum mig_code mt_prepare_export(struct mt *t, const char *sid);
enum mig_code mt_import(struct mt *t, const char *sid, const char *sandbox, const char *type_url);
enum mig_code mt_patch(struct mt *t, const struct migration_patch_req *req);
/* patch with only the source annotation (and a container type when non-NULL) */
enum mig_code mt_patch_simple(struct mt *t, const char *id, const char *source, const char *type);
enum mig_code mt_prepare_dest(struct mt *t, const char *sid);
enum mig_code mt_register(struct mt *t, const char *sid, const uint8_t *info, size_t len);
/* A connected stream socket pair: protocol info for one end (this process), written to
 * info[DUPSOCK_INFO_LEN]; the other end is t->peer. */
void mt_socket_info(struct mt *t, uint8_t *info);
/* mt_socket_info + mt_register, then closes our end (t->local), so that only the shim's copy
 * remains and the peer sees EOF when the shim lets go of it. */
enum mig_code mt_register_pair(struct mt *t, const char *sid);
enum mig_code mt_transfer(struct mt *t, const char *sid, int64_t timeout_ns);
enum mig_code mt_finalize(struct mt *t, const char *sid, int action);
enum mig_code mt_cancel(struct mt *t, const char *sid);
enum mig_code mt_cleanup(struct mt *t, const char *sid);

/* An asynchronous call's result, for tests that overlap calls. */
struct mt_async {
	bool done;
	struct mig_status st;
};
void mt_done_cb(struct migration *m, const struct mig_status *st, void *arg);

/* Drive a fresh controller, session "sess-1", to `state` on the given side (containers
 * "ctr-1" in pod "pod-1" on the destination, plus the pod's sandbox container "pod-1").  The
 * states reachable: every state on both sides except that the Source* states need the source
 * and the Destination* ones the destination.  TRANSFERRING leaves mig_transfer held and
 * CANCELLING leaves the cancel held. */
void mt_drive(struct mt *t, enum vmm_origin side, enum mig_state state);

/* Fail the test unless the last synchronous call's message contains needle. */
void mt_expect_msg(const struct mt *t, const char *needle);

/* Run the loop until the controller reaches `state` (fails the test on the guard). */
void mt_wait_state(struct mt *t, enum mig_state state);

/* Whether `log` shows the verbs in this order (a space-separated sub-sequence). */
bool mt_log_has(const struct fake_sb *f, const char *seq);

#endif
