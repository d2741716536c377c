/* Unit tests for the migration controller's Transfer, Finalize, Cancel, Cleanup and the
 * transfer's outcome (hcsshim controller_test.go: TestNew, TestSessionIDToUint32, Transfer_*,
 * Finalize_*, Cancel_*, Cleanup_*, RunTransfer_*, FailTransfer_*), driven through the public
 * API against the fake sandbox of tests/lib/fake_sandbox.h, plus ferry's additions: Cancel
 * stops the transfer and releases the socket, a destination stopped or cancelled aborts, a
 * failure before anyone subscribed reaches a later subscriber, calls are served in order with
 * Cancel giving up its turn, the task guard, and freeing from inside a completion. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/lib/fake_sandbox.h"

#define SRC VMM_ORIGIN_SOURCE
#define DST VMM_ORIGIN_DESTINATION

/* Run fn on a fresh fixture (for tests that loop over sides or states). */
static void fresh(void (*fn)(struct mt *, int), int arg)
{
	void *state;
	mt_setup(&state);
	fn(state, arg);
	mt_teardown(&state);
}

/* The orchestrator's end sees EOF within a few seconds (every copy of the shim's end was
 * closed), instead of blocking forever when one was leaked. */
static bool peer_eof(const struct mt *t)
{
	struct pollfd p = {.fd = t->peer, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return false;
	char ch;
	return read(t->peer, &ch, 1) == 0;
}

/* ---- a notification recorder ---- */

struct rec {
	struct mig_notify_msg msgs[64];
	size_t n;
	bool ended;
};

static int rec_deliver(struct mig_notify_sub *s, const struct mig_notify_msg *m, void *ud)
{
	(void)s;
	struct rec *r = ud;
	assert_true(r->n < 64);
	r->msgs[r->n++] = *m;
	return 0;
}

static void rec_end(struct mig_notify_sub *s, void *ud)
{
	(void)s;
	((struct rec *)ud)->ended = true;
}

static const struct mig_notify_sub_ops rec_ops = {rec_deliver, rec_end};

struct sub_async {
	struct mt_async a;
	struct mig_notify_sub *sub;
};

static void on_sub(struct migration *m, const struct mig_status *st, struct mig_notify_sub *sub,
                   void *arg)
{
	struct sub_async *x = arg;
	mt_done_cb(m, st, &x->a);
	x->sub = sub;
}

static struct mig_notify_sub *subscribe(struct mt *t, const char *sid, struct rec *r)
{
	struct sub_async x = {0};
	migration_subscribe(t->m, sid, &rec_ops, r, on_sub, &x);
	EVTEST_SPIN(&t->ev, x.a.done);
	t->st = x.a.st;
	if (x.a.st.code == MIG_CODE_OK)
		assert_non_null(x.sub);
	else
		assert_null(x.sub);
	return x.sub;
}

/* How many entries of the session's log have this phase and state. */
static size_t logged(struct mt *t, enum vmm_phase p, enum vmm_phase_state s)
{
	struct mig_notify *n = migration_log(t->m);
	size_t k = 0;
	for (size_t i = 0; n && i < mig_notify_count(n); i++)
		if (mig_notify_entry(n, i)->n.phase == p && mig_notify_entry(n, i)->n.state == s)
			k++;
	return k;
}

/* ---- New, names, session id ---- */

static void test_new(void **state)
{
	struct mt *t = *state;
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_string_equal(migration_session_id(t->m), "");
	assert_int_equal(migration_origin(t->m), VMM_ORIGIN_UNSPECIFIED);
	assert_null(migration_log(t->m));
	assert_string_equal(mig_state_name(MIG_STATE_SOCKET_WAITING), "SocketWaiting");
	assert_string_equal(mig_state_name(MIG_STATE_FAILED), "Failed");
	assert_string_equal(mig_state_name(13), "Unknown");
	assert_int_equal(MIG_CODE_FAILED_PRECONDITION, 9);
	assert_string_equal(mig_code_name(MIG_CODE_INVALID_ARGUMENT), "InvalidArgument");
	/* an incomplete sandbox interface is refused */
	struct migration_sandbox_ops ops = fake_sb_ops;
	ops.abort = NULL;
	struct migration_config cfg = {.ops = &ops, .sb = &t->sb};
	struct err e;
	err_clear(&e);
	assert_null(migration_new(t->ev.loop, &cfg, &e));
	assert_int_equal(e.code, -EINVAL);
}

static void test_session_id_to_u32(void **state)
{
	(void)state;
	assert_int_equal(migration_session_u32("5f0b1190-63be-4e0c-b974-bd0f55675a42"), 640281193u);
	assert_int_equal(migration_session_u32("5F0B1190-63BE-4E0C-B974-BD0F55675A42"), 640281193u);
	assert_int_equal(migration_session_u32("5f0B1190-63Be-4E0c-b974-BD0f55675a42"), 640281193u);
	assert_int_equal(migration_session_u32("s"), 70939015u);
	/* not the exact GUID form: hashed as given, so case matters */
	assert_int_not_equal(migration_session_u32("{5F0B1190-63BE-4E0C-B974-BD0F55675A42}"),
	                     migration_session_u32("{5f0b1190-63be-4e0c-b974-bd0f55675a42}"));
	assert_int_not_equal(migration_session_u32("5F0B1190-63BE-4E0C-B974-BD0F55675A4G"),
	                     migration_session_u32("5f0b1190-63be-4e0c-b974-bd0f55675a4g"));
	assert_int_equal(migration_session_u32(NULL), migration_session_u32(""));
}

static void test_code_from_errno(void **state)
{
	(void)state;
	assert_int_equal(mig_code_from_errno(-EINVAL), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(mig_code_from_errno(-ENOENT), MIG_CODE_NOT_FOUND);
	assert_int_equal(mig_code_from_errno(-EEXIST), MIG_CODE_ALREADY_EXISTS);
	assert_int_equal(mig_code_from_errno(-ENOTSUP), MIG_CODE_FAILED_PRECONDITION);
	assert_int_equal(mig_code_from_errno(-ETIMEDOUT), MIG_CODE_DEADLINE_EXCEEDED);
	assert_int_equal(mig_code_from_errno(-EIO), MIG_CODE_UNKNOWN);
}

/* ---- Transfer ---- */

static void test_transfer_rejects_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_transfer(t, "other", 0), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "transfer migration state: session id \"other\" does not "
	                               "match active session \"sess-1\": invalid argument");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_EXPORTED);
}

static void noop_when_in_progress(struct mt *t, int st)
{
	mt_drive(t, SRC, (enum mig_state)st);
	unsigned starts = t->sb.verb[FAKE_MIG_START].calls;
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), st);
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, starts);
}

static void test_transfer_noop_when_in_progress(void **state)
{
	(void)state;
	fresh(noop_when_in_progress, MIG_STATE_SOCKET_WAITING);
	fresh(noop_when_in_progress, MIG_STATE_TRANSFERRING);
	fresh(noop_when_in_progress, MIG_STATE_TRANSFER_COMPLETED);
}

static void test_transfer_rejects_invalid_state(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_transfer(t, "", 0), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "transfer not valid in state Idle");
	mt_drive(t, SRC, MIG_STATE_SOURCE_PREPARED);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "transfer not valid in state SourcePrepared");
}

static void test_transfer_claims_socket_waiting(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_transfer(t, "sess-1", 3600LL * 1000000000), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOCKET_WAITING);
	evtest_run_for(&t->ev, 0.02);
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, 0);
	/* the socket arriving wakes the waiting transfer */
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	assert_true(mt_log_has(&t->sb, "init_source save mig_start mig_transfer"));
}

static void transfer_success(struct mt *t, int side)
{
	mt_drive(t, (enum vmm_origin)side, MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	assert_true(mt_log_has(&t->sb, "mig_start mig_transfer"));
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, 1);
	assert_int_equal(t->sb.session, migration_session_u32("sess-1"));
	/* the sandbox got the registered socket itself: bytes reach the orchestrator's end */
	assert_true(t->sb.sock >= 0);
	assert_int_equal(write(t->sb.sock, "mem", 3), 3);
	char buf[4];
	assert_int_equal(read(t->peer, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "mem", 3);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED) +
	                     logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_DESTINATION_FAILED),
	                 0);
}

static void test_transfer_success(void **state)
{
	(void)state;
	fresh(transfer_success, SRC);
	fresh(transfer_success, DST); /* RunTransfer_Destination */
}

static void test_transfer_socket_timeout(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_transfer(t, "sess-1", 20 * 1000000), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_FAILED);
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, 0);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED), 1);
	/* too late: the session failed, the socket is refused by state */
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
}

static void test_transfer_completion_does_not_clobber_cancel(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	struct mt_async a = {0};
	migration_cancel(t->m, "sess-1", mt_done_cb, &a);
	mt_wait_state(t, MIG_STATE_CANCELLING);
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER); /* the transfer succeeds anyway */
	EVTEST_SPIN(&t->ev, a.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_true(mt_log_has(&t->sb, "mig_transfer cancel"));
}

static void run_transfer_error(struct mt *t, int verb)
{
	t->sb.verb[verb].fail = -EIO;
	mt_drive(t, SRC, MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK); /* errors never reach it */
	mt_wait_state(t, MIG_STATE_FAILED);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED), 1);
	assert_int_equal(t->sb.verb[FAKE_MIG_TRANSFER].calls, verb == FAKE_MIG_TRANSFER);
}

static void test_run_transfer_errors(void **state)
{
	(void)state;
	fresh(run_transfer_error, FAKE_MIG_START);
	fresh(run_transfer_error, FAKE_MIG_TRANSFER);
}

static void test_run_transfer_start_fails_at_once(void **state)
{
	struct mt *t = *state;
	t->sb.verb[FAKE_MIG_START].fail = -ENOTSUP;
	t->sb.verb[FAKE_MIG_START].now = true;
	mt_drive(t, DST, MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_FAILED);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_DESTINATION_FAILED), 1);
}

/* ---- the transfer's outcome in the log ---- */

static void fail_transfer_notifies(struct mt *t, int side)
{
	mt_drive(t, (enum vmm_origin)side, MIG_STATE_TRANSFERRING);
	struct rec r = {0};
	struct mig_notify_sub *sub = subscribe(t, "sess-1", &r);
	t->sb.verb[FAKE_MIG_TRANSFER].fail = -EIO;
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	mt_wait_state(t, MIG_STATE_FAILED);
	EVTEST_SPIN(&t->ev, r.n == 1);
	assert_int_equal(r.msgs[0].message_id, 1);
	assert_int_equal(r.msgs[0].n.origin, (enum vmm_origin)side);
	assert_int_equal(r.msgs[0].n.phase, VMM_PHASE_FAILED);
	assert_int_equal(r.msgs[0].n.state, side == SRC ? VMM_PHASE_STATE_SOURCE_FAILED
	                                                : VMM_PHASE_STATE_DESTINATION_FAILED);
	mig_notify_unsubscribe(sub);
}

static void test_fail_transfer_broadcasts_to_subscribers(void **state)
{
	(void)state;
	fresh(fail_transfer_notifies, SRC);
	fresh(fail_transfer_notifies, DST);
}

/* hcsshim broadcasts a failure only if someone subscribed already; ferry's log keeps it */
static void test_failure_before_subscribe_reaches_later_subscriber(void **state)
{
	struct mt *t = *state;
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_SETUP_DONE});
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_SETUP_DONE,
	                                                  .state = VMM_PHASE_STATE_SUCCESS});
	t->sb.verb[FAKE_MIG_TRANSFER].fail = -EIO;
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	mt_wait_state(t, MIG_STATE_FAILED);
	evtest_run_for(&t->ev, 0.01);
	struct rec r = {0};
	struct mig_notify_sub *sub = subscribe(t, "sess-1", &r);
	EVTEST_SPIN(&t->ev, r.n == 2);
	/* the event from before the session was not kept for it */
	assert_int_equal(r.msgs[0].n.phase, VMM_PHASE_SETUP_DONE);
	assert_int_equal(r.msgs[1].n.phase, VMM_PHASE_FAILED);
	assert_int_equal(r.msgs[1].n.state, VMM_PHASE_STATE_SOURCE_FAILED);
	assert_int_equal(r.msgs[1].message_id, 2);
	assert_true(r.msgs[1].start_time_ns <= r.msgs[1].update_time_ns);
	mig_notify_unsubscribe(sub);
}

/* the VMM's own FAILED is the outcome: no second, synthetic one */
static void test_vmm_failure_not_duplicated(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_FAILED,
	                                                  .state = VMM_PHASE_STATE_SOURCE_FAILED});
	t->sb.verb[FAKE_MIG_TRANSFER].fail = -EIO;
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	mt_wait_state(t, MIG_STATE_FAILED);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED), 1);
	assert_int_equal(mig_notify_count(migration_log(t->m)), 1);
}

/* hcsshim's FailTransfer_SkipsWhenCancelled: the transfer's error during a cancel is the
 * cancel's doing, not a failure.  ferry: Cancel answers only once the transfer has stopped. */
static void test_cancel_waits_for_transfer_to_stop(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	struct mt_async a = {0};
	migration_cancel(t->m, "sess-1", mt_done_cb, &a);
	EVTEST_SPIN(&t->ev, t->sb.verb[FAKE_CANCEL].calls == 1);
	evtest_run_for(&t->ev, 0.02); /* the sandbox's cancel completed; the transfer has not */
	assert_false(a.done);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLING);
	t->sb.verb[FAKE_MIG_TRANSFER].fail = -ECANCELED;
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	EVTEST_SPIN(&t->ev, a.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_SOURCE_FAILED), 0);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED), 1);
}

/* ---- Finalize ---- */

static void test_finalize_rejects_unspecified_action(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_UNSPECIFIED),
	                 MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "finalize migration session: finalize action must be "
	                               "specified: invalid argument");
}

static void test_finalize_idempotent_finalized(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_FINALIZED);
	unsigned calls = t->sb.verb[FAKE_FINALIZE].calls;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_FINALIZE].calls, calls);
	assert_int_equal(t->sb.verb[FAKE_RESUME].calls, 0);
	assert_int_equal(mt_finalize(t, "", MIG_FINALIZE_STOP), MIG_CODE_INVALID_ARGUMENT);
}

static void test_finalize_idle_noop(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_finalize(t, "", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->sb.log, "");
}

/* STOP on a cancelled destination: no VMM finalize, state stays Cancelled (hcsshim); ferry
 * also aborts, once, so the imported containers exit and Delete works */
static void test_finalize_destination_cancelled_stop(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_CANCELLED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_int_equal(t->sb.verb[FAKE_FINALIZE].calls, 0);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 1);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 1);
	assert_int_equal(mt_finalize(t, "sess-1", 99), MIG_CODE_OK); /* as hcsshim: no-op */
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 1);
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
}

static void test_finalize_destination_cancelled_resume_succeeds(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_CANCELLED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
	assert_true(mt_log_has(&t->sb, "cancel finalize resume"));
	assert_true(t->sb.finalize_resume);
	assert_true(t->sb.resume_destination);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 0);
}

static void test_finalize_rejects_wrong_state(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME),
	                 MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "finalize not valid in state Transferring: failed precondition");
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
}

static void test_finalize_rejects_unsupported_action(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(mt_finalize(t, "sess-1", 99), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "unsupported finalize action 99");
	assert_int_equal(migration_state(t->m), MIG_STATE_TRANSFER_COMPLETED);
}

static void test_finalize_error_keeps_state(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.verb[FAKE_FINALIZE].fail = -EIO;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_UNKNOWN);
	assert_string_equal(t->st.msg, "finalize migration session: finalize live migration "
	                               "(origin=Source, action=FINALIZE_ACTION_STOP): fake "
	                               "finalize failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_TRANSFER_COMPLETED);
}

static void resume_succeeds(struct mt *t, int side)
{
	mt_drive(t, (enum vmm_origin)side, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
	assert_true(mt_log_has(&t->sb, "mig_transfer finalize resume"));
	assert_true(t->sb.finalize_resume);
	assert_int_equal(t->sb.resume_destination, side == DST);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 0);
}

static void test_finalize_resume_succeeds(void **state)
{
	(void)state;
	fresh(resume_succeeds, SRC);
	fresh(resume_succeeds, DST);
}

static void stop_succeeds(struct mt *t, int side)
{
	mt_drive(t, (enum vmm_origin)side, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
	assert_false(t->sb.finalize_resume);
	assert_int_equal(t->sb.verb[FAKE_RESUME].calls, 0);
	/* ferry: a stopped destination releases its containers */
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, side == DST ? 1 : 0);
}

static void test_finalize_stop_succeeds(void **state)
{
	(void)state;
	fresh(stop_succeeds, SRC);
	fresh(stop_succeeds, DST);
}

static void test_finalize_resume_error_then_retry(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.verb[FAKE_RESUME].fail = -EPIPE;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_UNAVAILABLE);
	mt_expect_msg(t, "resume destination vm from migration: fake resume failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_TRANSFER_COMPLETED);
	/* ResumeAfterResumeReRunsResume: the VM is finalized, only the resume runs again */
	t->sb.verb[FAKE_RESUME].fail = 0;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_FINALIZE].calls, 1);
	assert_int_equal(t->sb.verb[FAKE_RESUME].calls, 2);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
}

static void test_finalize_stop_after_resume_terminates(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.verb[FAKE_RESUME].fail = -EIO;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_UNKNOWN);
	assert_int_equal(t->sb.vm_state, MIGRATION_VM_FINALIZED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_true(mt_log_has(&t->sb, "finalize resume terminate"));
	assert_int_equal(t->sb.verb[FAKE_FINALIZE].calls, 1);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
}

static void test_finalize_stop_after_terminate_noop(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.vm_state = MIGRATION_VM_TERMINATED;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_FINALIZE].calls, 0);
	assert_int_equal(t->sb.verb[FAKE_TERMINATE].calls, 0);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
}

static void test_finalize_resume_after_terminate_errors(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.vm_state = MIGRATION_VM_TERMINATED;
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME),
	                 MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "cannot resume finalize: VM already terminated by a stop finalize");
	assert_int_equal(migration_state(t->m), MIG_STATE_TRANSFER_COMPLETED);
}

static void test_finalize_from_failed_rolls_back_source(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_FAILED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_true(mt_log_has(&t->sb, "save finalize resume"));
	assert_false(t->sb.resume_destination);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
}

/* ---- Cancel ---- */

static void test_cancel_rejects_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_cancel(t, "other"), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_EXPORTED);
}

static void test_cancel_idempotent(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_cancel(t, ""), MIG_CODE_OK); /* idle */
	mt_drive(t, SRC, MIG_STATE_CANCELLED);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_int_equal(t->sb.verb[FAKE_CANCEL].calls, 1);
}

static void test_cancel_success(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	/* a cancelled source must roll back before Cleanup */
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "cleanup not valid for Source in state Cancelled");
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
}

static void test_cancel_vm_error(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_FAILED);
	t->sb.verb[FAKE_CANCEL].fail = -EIO;
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_UNKNOWN);
	assert_string_equal(t->st.msg, "cancel migration session: cancel live migration: fake "
	                               "cancel failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_FAILED);
}

/* hcsshim's ErrInvalidState case: the state is Cancelled but hcsshim still returns the error;
 * ferry answers OK */
static void test_cancel_nothing_left_is_ok(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	t->sb.verb[FAKE_CANCEL].fail = -EALREADY;
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
}

/* hcsshim: SocketReadyAlreadyClosed.  ferry: Cancel releases a registered socket that no
 * transfer has taken (hcsshim keeps it until Cleanup) */
static void test_cancel_releases_registered_socket(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_true(peer_eof(t)); /* nobody holds the other end any more */
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, 0);
}

/* ferry: Cancel during the transfer asks the VMM to cancel, which stops the transfer and
 * lets go of the socket; the outcome reaches the log as cancelled */
static void test_cancel_stops_transfer_and_socket(void **state)
{
	struct mt *t = *state;
	t->sb.cancel_ends_transfer = true;
	mt_drive(t, DST, MIG_STATE_TRANSFERRING);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_true(mt_log_has(&t->sb, "mig_start mig_transfer cancel"));
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_true(peer_eof(t));
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED), 1);
	assert_int_equal(logged(t, VMM_PHASE_FAILED, VMM_PHASE_STATE_DESTINATION_FAILED), 0);
	/* the cancelled destination aborts at Cleanup */
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 1);
}

static void test_cancel_destination_imported(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	assert_int_equal(t->sb.verb[FAKE_CANCEL].calls, 0);
}

/* ferry: a finalized session has nothing to cancel (hcsshim cancels the VMM again and moves
 * the session to Cancelled, which a source then cannot Cleanup) */
static void test_cancel_after_finalize_noop(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_FINALIZED);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
	assert_int_equal(t->sb.verb[FAKE_CANCEL].calls, 0);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 0); /* a resumed destination stays */
}

/* Cancel gives up its turn while the sandbox cancels: calls behind it are served */
static void test_cancel_gives_up_turn(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_CANCELLING);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME),
	                 MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "finalize not valid in state Cancelling");
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK); /* a second one: no-op */
	assert_int_equal(t->sb.verb[FAKE_CANCEL].calls, 1);
	fake_sb_release(&t->sb, FAKE_CANCEL);
	mt_wait_state(t, MIG_STATE_CANCELLED);
}

/* ---- Cleanup ---- */

static void test_cleanup_noop_when_idle(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
}

static void test_cleanup_rejects_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_FINALIZED);
	assert_int_equal(mt_cleanup(t, "other"), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(migration_state(t->m), MIG_STATE_FINALIZED);
}

static void test_cleanup_rejects_not_finalized(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(t->st.msg, "cleanup migration session: cleanup not valid for Source "
	                               "in state TransferCompleted: failed precondition");
}

static void test_cleanup_success_and_new_session(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_FINALIZED);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_string_equal(migration_session_id(t->m), "");
	assert_null(migration_log(t->m));
	/* notifications between sessions are not kept for the next one */
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_DONE});
	assert_int_equal(mt_prepare_export(t, "sess-2"), MIG_CODE_OK);
	assert_string_equal(migration_session_id(t->m), "sess-2");
	assert_int_equal(mig_notify_count(migration_log(t->m)), 0);
}

static void test_cleanup_destination_cancelled(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_cancel(t, "sess-1"), MIG_CODE_OK);
	t->sb.verb[FAKE_ABORT].fail = -EIO; /* an abort that fails keeps the session */
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_UNKNOWN);
	mt_expect_msg(t, "abort destination: fake abort failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
	t->sb.verb[FAKE_ABORT].fail = 0;
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_int_equal(t->sb.verb[FAKE_ABORT].calls, 2);
	/* the aborted destination can import again */
	assert_int_equal(t->sb.vm_state, MIGRATION_VM_NOT_CREATED);
	assert_int_equal(mt_import(t, "sess-3", "sandbox-1", MIGRATION_ENVELOPE_TYPE_URL),
	                 MIG_CODE_OK);
}

static void test_cleanup_ends_notification_streams(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFER_COMPLETED);
	struct rec r = {0};
	struct mig_notify_sub *sub = subscribe(t, "sess-1", &r);
	assert_non_null(sub);
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_DONE,
	                                                  .state = VMM_PHASE_STATE_SUCCESS});
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	EVTEST_SPIN(&t->ev, r.ended);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msgs[0].n.phase, VMM_PHASE_DONE);
	assert_int_equal(r.msgs[0].n.origin, VMM_ORIGIN_SOURCE);
}

/* ---- Subscribe ---- */

static void test_subscribe_no_active_session(void **state)
{
	struct mt *t = *state;
	struct rec r = {0};
	assert_null(subscribe(t, "", &r));
	assert_int_equal(t->st.code, MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "no active migration session");
	assert_null(subscribe(t, "any", &r));
	assert_int_equal(t->st.code, MIG_CODE_INVALID_ARGUMENT);
}

static void test_subscribe_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	struct rec r = {0};
	assert_null(subscribe(t, "other", &r));
	assert_int_equal(t->st.code, MIG_CODE_INVALID_ARGUMENT);
}

static void test_subscribe_shares_the_session_log(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_SOURCE_EXPORTED);
	struct rec a = {0}, b = {0};
	struct mig_notify_sub *sa = subscribe(t, "sess-1", &a);
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_SETUP_DONE});
	struct mig_notify_sub *sb = subscribe(t, "sess-1", &b);
	EVTEST_SPIN(&t->ev, a.n == 1 && b.n == 1);
	assert_int_equal(a.msgs[0].message_id, 1);
	assert_int_equal(b.msgs[0].message_id, 1);
	assert_int_equal(a.msgs[0].start_time_ns, b.msgs[0].start_time_ns);
	mig_notify_unsubscribe(sa);
	mig_notify_unsubscribe(sb);
}

/* ---- the queue, the guard, freeing ---- */

/* calls are served in arrival order, each when the previous one has completed */
static void test_calls_served_in_order(void **state)
{
	struct mt *t = *state;
	struct mt_async a = {0}, b = {0}, c = {0};
	t->sb.verb[FAKE_INIT_SOURCE].hold = true;
	migration_prepare_source(t->m, "sess-1", NULL, mt_done_cb, &a);
	migration_transfer(t->m, "sess-1", 0, mt_done_cb, &b);
	migration_cancel(t->m, "sess-1", mt_done_cb, &c);
	assert_false(a.done); /* never inside the call */
	EVTEST_SPIN(&t->ev, fake_sb_waiting(&t->sb, FAKE_INIT_SOURCE));
	evtest_run_for(&t->ev, 0.01);
	assert_false(b.done || c.done); /* waiting for their turn, like hcsshim's mutex */
	fake_sb_release(&t->sb, FAKE_INIT_SOURCE);
	EVTEST_SPIN(&t->ev, c.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_int_equal(b.st.code, MIG_CODE_FAILED_PRECONDITION); /* SourcePrepared */
	assert_int_equal(c.st.code, MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_CANCELLED);
}

static void test_task_guard(void **state)
{
	struct mt *t = *state;
	struct mig_status st = {0};
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_KILL, &st),
	                 MIGRATION_GUARD_ALLOW);
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_STATE, &st),
	                 MIGRATION_GUARD_ALLOW);
	mt_drive(t, SRC, MIG_STATE_FINALIZED); /* until Cleanup, even after Finalize */
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_DELETE, &st),
	                 MIGRATION_GUARD_REFUSE);
	assert_int_equal(st.code, MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(st.msg, "migration session \"sess-1\" is in progress (state: "
	                            "Finalized): failed precondition");
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_KILL, &st),
	                 MIGRATION_GUARD_REFUSE);
	/* hcsshim refuses State too, which breaks `ctr task ls`; ferry answers from cache */
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_STATE, &st),
	                 MIGRATION_GUARD_CACHED);
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_task_guard(t->m, MIGRATION_TASK_KILL, &st),
	                 MIGRATION_GUARD_ALLOW);
}

static void free_in_done(struct migration *m, const struct mig_status *st, void *arg)
{
	(void)st;
	migration_free(m);
	*(bool *)arg = true;
}

static void test_free_from_completion(void **state)
{
	struct mt *t = *state;
	bool freed = false;
	struct mt_async later = {0};
	migration_prepare_source(t->m, "sess-1", NULL, free_in_done, &freed);
	migration_cancel(t->m, "sess-1", mt_done_cb, &later); /* dropped with the controller */
	EVTEST_SPIN(&t->ev, freed);
	t->m = NULL;
	evtest_run_for(&t->ev, 0.02);
	assert_false(later.done);
}

/* a sandbox verb still running when the controller goes: its completion is ignored */
static void test_free_with_verb_outstanding(void **state)
{
	struct mt *t = *state;
	mt_drive(t, SRC, MIG_STATE_TRANSFERRING);
	migration_free(t->m);
	t->m = NULL;
	fake_sb_release(&t->sb, FAKE_MIG_TRANSFER);
	evtest_run_for(&t->ev, 0.02);
	assert_false(fake_sb_waiting(&t->sb, FAKE_MIG_TRANSFER));
}

/* a socket registered and not yet taken goes with the controller; so does the log */
static void test_free_releases_socket_and_log(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_SOCKET_READY);
	struct rec r = {0};
	struct mig_notify_sub *sub = subscribe(t, "sess-1", &r);
	assert_non_null(sub);
	migration_notify(t->m, &(struct vmm_notification){.phase = VMM_PHASE_SETUP_DONE});
	migration_free(t->m);
	t->m = NULL;
	assert_true(peer_eof(t));
	EVTEST_SPIN(&t->ev, r.ended); /* the stream still gets what was logged, then ends */
	assert_int_equal(r.n, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, mt_setup, mt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_new),
	    T(test_session_id_to_u32),
	    T(test_code_from_errno),
	    T(test_transfer_rejects_session_mismatch),
	    T(test_transfer_noop_when_in_progress),
	    T(test_transfer_rejects_invalid_state),
	    T(test_transfer_claims_socket_waiting),
	    T(test_transfer_success),
	    T(test_transfer_socket_timeout),
	    T(test_transfer_completion_does_not_clobber_cancel),
	    T(test_run_transfer_errors),
	    T(test_run_transfer_start_fails_at_once),
	    T(test_fail_transfer_broadcasts_to_subscribers),
	    T(test_failure_before_subscribe_reaches_later_subscriber),
	    T(test_vmm_failure_not_duplicated),
	    T(test_cancel_waits_for_transfer_to_stop),
	    T(test_finalize_rejects_unspecified_action),
	    T(test_finalize_idempotent_finalized),
	    T(test_finalize_idle_noop),
	    T(test_finalize_destination_cancelled_stop),
	    T(test_finalize_destination_cancelled_resume_succeeds),
	    T(test_finalize_rejects_wrong_state),
	    T(test_finalize_rejects_unsupported_action),
	    T(test_finalize_error_keeps_state),
	    T(test_finalize_resume_succeeds),
	    T(test_finalize_stop_succeeds),
	    T(test_finalize_resume_error_then_retry),
	    T(test_finalize_stop_after_resume_terminates),
	    T(test_finalize_stop_after_terminate_noop),
	    T(test_finalize_resume_after_terminate_errors),
	    T(test_finalize_from_failed_rolls_back_source),
	    T(test_cancel_rejects_session_mismatch),
	    T(test_cancel_idempotent),
	    T(test_cancel_success),
	    T(test_cancel_vm_error),
	    T(test_cancel_nothing_left_is_ok),
	    T(test_cancel_releases_registered_socket),
	    T(test_cancel_stops_transfer_and_socket),
	    T(test_cancel_destination_imported),
	    T(test_cancel_after_finalize_noop),
	    T(test_cancel_gives_up_turn),
	    T(test_cleanup_noop_when_idle),
	    T(test_cleanup_rejects_session_mismatch),
	    T(test_cleanup_rejects_not_finalized),
	    T(test_cleanup_success_and_new_session),
	    T(test_cleanup_destination_cancelled),
	    T(test_cleanup_ends_notification_streams),
	    T(test_subscribe_no_active_session),
	    T(test_subscribe_session_mismatch),
	    T(test_subscribe_shares_the_session_log),
	    T(test_calls_served_in_order),
	    T(test_task_guard),
	    T(test_free_from_completion),
	    T(test_free_with_verb_outstanding),
	    T(test_free_releases_socket_and_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
