/* Unit tests for the source side of the migration controller (hcsshim
 * controller_source_test.go: PrepareSource_*, ExportState_*) and PrepareAndExportSandbox as one
 * turn, against the fake sandbox: argument and state checks, nothing recorded when the VMM's
 * init fails, a failed save poisons the session, the envelope handed back, the service's
 * message prefixes, and a sandbox that cannot migrate (FailedPrecondition naming why). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/fake_sandbox.h"

static void test_prepare_rejects_invalid_args(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_prepare_source(t, ""), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg,
	                    "source: prepare migration: session id is required: invalid argument");
	assert_int_equal(mt_prepare_source(t, NULL), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_string_equal(t->sb.log, "");
}

static void test_prepare_rejects_wrong_state(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_prepare_source(t, "other"), MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(t->st.msg,
	                    "source: prepare migration: controller is in state "
	                    "SourceExported for session \"sess-1\": failed precondition");
	assert_string_equal(migration_session_id(t->m), "sess-1");
}

static void test_prepare_rejects_already_prepared(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	assert_int_equal(mt_prepare_source(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_PREPARED);
	assert_int_equal(t->sb.verb[FAKE_INIT_SOURCE].calls, 1);
}

static void test_prepare_initialize_error(void **state)
{
	struct mt *t = *state;
	t->sb.verb[FAKE_INIT_SOURCE].fail = -EIO;
	assert_int_equal(mt_prepare_source(t, "sess-1"), MIG_CODE_UNKNOWN);
	assert_string_equal(t->st.msg, "source: prepare migration: initialize live migration on "
	                               "source vm: fake init_source failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_string_equal(migration_session_id(t->m), ""); /* nothing recorded */
	assert_null(migration_log(t->m));
	/* failing at once is the same */
	t->sb.verb[FAKE_INIT_SOURCE].now = true;
	t->sb.verb[FAKE_INIT_SOURCE].fail = -ENOTSUP;
	assert_int_equal(mt_prepare_source(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "fake init_source refused");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	/* and it can be retried */
	t->sb.verb[FAKE_INIT_SOURCE].fail = 0;
	assert_int_equal(mt_prepare_source(t, "sess-1"), MIG_CODE_OK);
}

static void test_prepare_success(void **state)
{
	struct mt *t = *state;
	struct vmm_mig_options o = {.memory_transport = 1, .has_throttle = true};
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 300;
	struct mt_async a = {0};
	migration_prepare_source(t->m, "sess-1", &o, mt_done_cb, &a);
	EVTEST_SPIN(&t->ev, a.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_string_equal(a.st.msg, "");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_PREPARED);
	assert_string_equal(migration_session_id(t->m), "sess-1");
	assert_int_equal(migration_origin(t->m), VMM_ORIGIN_SOURCE);
	assert_non_null(migration_log(t->m));
	/* the options reach the VMM as given (the conversion belongs to the backend) */
	assert_int_equal(t->sb.opts.memory_transport, 1);
	assert_true(t->sb.opts.throttle.has_minimum_throttle_percentage);
	assert_int_equal(t->sb.opts.throttle.minimum_throttle_percentage, 300);
}

static void test_prepare_default_options(void **state)
{
	struct mt *t = *state;
	memset(&t->sb.opts, 0xff, sizeof(t->sb.opts));
	assert_int_equal(mt_prepare_source(t, "sess-1"), MIG_CODE_OK);
	struct vmm_mig_options zero;
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&t->sb.opts, &zero, sizeof(zero)); /* hcsshim's empty options */
}

static void test_export_rejects_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	assert_int_equal(mt_export(t, "other"), MIG_CODE_INVALID_ARGUMENT);
	assert_null(t->export_value); /* no envelope on failure (asserted in the callback) */
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_PREPARED);
}

static void test_export_rejects_wrong_state(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_export(t, ""), MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(t->st.msg, "source: export migration state: export requires state "
	                               "SourcePrepared (current: Idle): failed precondition");
	assert_int_equal(t->sb.verb[FAKE_SAVE].calls, 0);
}

static void test_export_save_error_fails_session(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	t->sb.verb[FAKE_SAVE].fail = -EIO;
	assert_int_equal(mt_export(t, "sess-1"), MIG_CODE_UNKNOWN);
	assert_string_equal(t->st.msg,
	                    "source: export migration state: save sandbox: fake save failed");
	assert_int_equal(migration_state(t->m), MIG_STATE_FAILED);
	t->sb.verb[FAKE_SAVE].fail = 0;
	assert_int_equal(mt_export(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "(current: Failed)");
}

static void test_export_success(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	memcpy(t->sb.save_value, "\x08\x01\x12\x03vm!", 7);
	t->sb.save_len = 7;
	assert_int_equal(mt_export(t, "sess-1"), MIG_CODE_OK);
	assert_string_equal(t->export_type_url, MIGRATION_ENVELOPE_TYPE_URL);
	assert_int_equal(t->export_len, 7);
	assert_memory_equal(t->export_value, "\x08\x01\x12\x03vm!", 7);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_EXPORTED);
	/* a second export is refused: the state moved on */
	assert_int_equal(mt_export(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	assert_int_equal(t->sb.verb[FAKE_SAVE].calls, 1);
}

static void test_export_wrong_envelope_type(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	strcpy(t->sb.save_type_url, "type.microsoft.com/hcsshim.controller.vm.save.v1.Payload");
	assert_int_equal(mt_export(t, "sess-1"), MIG_CODE_INTERNAL);
	mt_expect_msg(t, "sandbox saved state has type \"type.microsoft.com/hcsshim.controller.vm");
	assert_int_equal(migration_state(t->m), MIG_STATE_FAILED);
}

/* PrepareAndExportSandbox: both halves in one turn, each with hcsshim's service prefix */
static void test_prepare_and_export(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_prepare_export(t, "sess-1"), MIG_CODE_OK);
	assert_string_equal(t->export_type_url, MIGRATION_ENVELOPE_TYPE_URL);
	assert_int_equal(t->export_len, 2);
	assert_string_equal(t->sb.log, "init_source save");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_prepare_export(t, "sess-2"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "source: prepare migration: controller is in state SourceExported");
}

/* A sandbox that cannot migrate (a vPCI device, a mounted plan9 share) refuses with
 * FailedPrecondition naming why; its save unfroze what it froze, and the session is failed
 * (hcsshim) until the orchestrator rolls back with Finalize RESUME. */
static void test_prepare_and_export_unmigratable(void **state)
{
	struct mt *t = *state;
	t->sb.verb[FAKE_SAVE].fail = -ENOTSUP;
	assert_int_equal(mt_prepare_export(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(t->st.msg, "source: export migration state: save sandbox: fake save "
	                               "failed: failed precondition");
	assert_null(t->export_value);
	assert_int_equal(migration_state(t->m), MIG_STATE_FAILED);
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_RESUME), MIG_CODE_OK);
	assert_string_equal(t->sb.log, "init_source save finalize resume");
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
}

/* a call queued behind PrepareAndExportSandbox sees its whole result */
static void test_prepare_and_export_is_one_turn(void **state)
{
	struct mt *t = *state;
	struct mt_async a = {0};
	migration_prepare_and_export(t->m, "sess-1", NULL, NULL, NULL);
	migration_transfer(t->m, "sess-1", 3600LL * 1000000000, mt_done_cb, &a);
	EVTEST_SPIN(&t->ev, a.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOCKET_WAITING);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, mt_setup, mt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_prepare_rejects_invalid_args),
	    T(test_prepare_rejects_wrong_state),
	    T(test_prepare_rejects_already_prepared),
	    T(test_prepare_initialize_error),
	    T(test_prepare_success),
	    T(test_prepare_default_options),
	    T(test_export_rejects_session_mismatch),
	    T(test_export_rejects_wrong_state),
	    T(test_export_save_error_fails_session),
	    T(test_export_success),
	    T(test_export_wrong_envelope_type),
	    T(test_prepare_and_export),
	    T(test_prepare_and_export_unmigratable),
	    T(test_prepare_and_export_is_one_turn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
