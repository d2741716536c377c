/* Unit tests for host/vmm/hcs/hcs_vmstate (which verb each VM state allows, hcsshim-lm.md §5.1
 * and Finalize's reconciliation of §4.2) and hcs_hresult (HRESULT -> errno and messages).
 * Portable: also cross-built and run under wine. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/hcs/hcs_hresult.h"
#include "host/vmm/hcs/hcs_vmstate.h"

static enum hcs_vm_action act(enum hcs_vm_state s, enum hcs_vm_verb v, bool incoming, bool resume)
{
	struct err e = {0};
	err_clear(&e);
	enum hcs_vm_action a = hcs_vmstate_action(s, v, incoming, resume, &e);
	if (a == HCS_ACT_REFUSE)
		assert_int_equal(e.code, -EINVAL);
	return a;
}

/* The source path: start, init, start, transfer, finalize STOP; each verb only in its place. */
static void test_source_path(void **state)
{
	(void)state;
	enum hcs_vm_state s = HCS_VM_NOT_CREATED;
	static const enum hcs_vm_verb path[] = {HCS_VERB_START, HCS_VERB_MIG_INIT_SOURCE,
	                                        HCS_VERB_MIG_START, HCS_VERB_MIG_TRANSFER,
	                                        HCS_VERB_MIG_FINALIZE};
	static const enum hcs_vm_state want[] = {HCS_VM_RUNNING, HCS_VM_SRC_INITIALIZED,
	                                         HCS_VM_SRC_STARTED, HCS_VM_TRANSFER_COMPLETED,
	                                         HCS_VM_TERMINATED};
	for (size_t i = 0; i < 5; i++) {
		/* every later step is refused before its turn */
		for (size_t j = i + 1; j < 4; j++)
			assert_int_equal(act(s, path[j], false, false), HCS_ACT_REFUSE);
		assert_int_equal(act(s, path[i], false, false), HCS_ACT_CALL);
		s = hcs_vmstate_next(s, path[i], false);
		assert_int_equal(s, want[i]);
	}
	assert_int_equal(act(HCS_VM_SRC_INITIALIZED, HCS_VERB_MIG_COMPAT_INFO, false, false),
	                 HCS_ACT_CALL);
	assert_int_equal(act(HCS_VM_RUNNING, HCS_VERB_MIG_COMPAT_INFO, false, false),
	                 HCS_ACT_REFUSE);
	assert_int_equal(act(HCS_VM_NOT_CREATED, HCS_VERB_MIG_PREPARE_DEST, false, false),
	                 HCS_ACT_REFUSE);
}

static void test_destination_path(void **state)
{
	(void)state;
	assert_int_equal(act(HCS_VM_NOT_CREATED, HCS_VERB_START, true, false), HCS_ACT_REFUSE);
	assert_int_equal(act(HCS_VM_NOT_CREATED, HCS_VERB_MIG_PREPARE_DEST, true, false),
	                 HCS_ACT_CALL);
	enum hcs_vm_state s =
	    hcs_vmstate_next(HCS_VM_NOT_CREATED, HCS_VERB_MIG_PREPARE_DEST, false);
	assert_int_equal(s, HCS_VM_DST_CREATED);
	assert_int_equal(act(s, HCS_VERB_MIG_TRANSFER, true, false), HCS_ACT_REFUSE);
	s = hcs_vmstate_next(s, HCS_VERB_MIG_START, false);
	assert_int_equal(s, HCS_VM_DST_STARTED);
	s = hcs_vmstate_next(s, HCS_VERB_MIG_TRANSFER, false);
	assert_int_equal(act(s, HCS_VERB_MIG_FINALIZE, true, true), HCS_ACT_CALL);
	s = hcs_vmstate_next(s, HCS_VERB_MIG_FINALIZE, true);
	assert_int_equal(s, HCS_VM_FINALIZED);
	/* finalized runs: SCSI, stop and a new migration are allowed */
	assert_int_equal(act(s, HCS_VERB_SCSI, true, false), HCS_ACT_CALL);
	assert_int_equal(act(s, HCS_VERB_MIG_INIT_SOURCE, true, false), HCS_ACT_CALL);
	assert_int_equal(act(s, HCS_VERB_STOP, true, false), HCS_ACT_CALL);
}

/* §4.2: finalize is allowed from every migrating state and reconciles a partial finalize. */
static void test_finalize_reconcile(void **state)
{
	(void)state;
	static const enum hcs_vm_state migrating[] = {HCS_VM_SRC_INITIALIZED, HCS_VM_SRC_STARTED,
	                                              HCS_VM_DST_CREATED, HCS_VM_DST_STARTED,
	                                              HCS_VM_TRANSFER_COMPLETED};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(act(migrating[i], HCS_VERB_MIG_FINALIZE, false, true),
		                 HCS_ACT_CALL);
		assert_int_equal(act(migrating[i], HCS_VERB_MIG_FINALIZE, false, false),
		                 HCS_ACT_CALL);
		assert_int_equal(act(migrating[i], HCS_VERB_MIG_CANCEL, false, false),
		                 HCS_ACT_CALL);
		assert_int_equal(act(migrating[i], HCS_VERB_SCSI, false, false), HCS_ACT_REFUSE);
	}
	struct err e = {0};
	assert_int_equal(act(HCS_VM_TERMINATED, HCS_VERB_MIG_FINALIZE, false, false), HCS_ACT_NOOP);
	assert_int_equal(
	    hcs_vmstate_action(HCS_VM_TERMINATED, HCS_VERB_MIG_FINALIZE, false, true, &e),
	    HCS_ACT_REFUSE);
	assert_string_equal(e.msg, "mig_finalize: VM already terminated by a stop finalize");
	assert_int_equal(act(HCS_VM_FINALIZED, HCS_VERB_MIG_FINALIZE, false, true), HCS_ACT_NOOP);
	assert_int_equal(act(HCS_VM_FINALIZED, HCS_VERB_MIG_FINALIZE, false, false), HCS_ACT_CALL);
	assert_int_equal(hcs_vmstate_next(HCS_VM_FINALIZED, HCS_VERB_MIG_FINALIZE, false),
	                 HCS_VM_TERMINATED);
	assert_int_equal(act(HCS_VM_RUNNING, HCS_VERB_MIG_FINALIZE, false, true), HCS_ACT_REFUSE);
	/* stop of a VM that never ran or has gone: nothing to do */
	assert_int_equal(act(HCS_VM_NOT_CREATED, HCS_VERB_STOP, true, false), HCS_ACT_NOOP);
	assert_int_equal(act(HCS_VM_TERMINATED, HCS_VERB_STOP, false, false), HCS_ACT_NOOP);
	assert_int_equal(act(HCS_VM_NOT_CREATED, HCS_VERB_MIG_CANCEL, true, false), HCS_ACT_REFUSE);
	assert_int_equal(
	    hcs_vmstate_action(HCS_VM_RUNNING, HCS_VERB_MIG_TRANSFER, false, false, &e),
	    HCS_ACT_REFUSE);
	assert_string_equal(e.msg, "mig_transfer: not valid in VM state Running");
}

static void test_hresult(void **state)
{
	(void)state;
	assert_int_equal(hcs_hresult_errno(0), 0);
	assert_int_equal(hcs_hresult_errno(1), 0); /* S_FALSE is a success */
	assert_int_equal(hcs_hresult_errno(0x80370105u), -EALREADY);
	assert_int_equal(hcs_hresult_errno(0xc0370105u), -EALREADY); /* NTSTATUS-style form */
	assert_int_equal(hcs_hresult_errno(0x80370118u), -ETIMEDOUT);
	assert_int_equal(hcs_hresult_errno(0x800704c7u), -ECANCELED);
	assert_int_equal(hcs_hresult_errno(0x80004004u), -ECANCELED);
	assert_int_equal(hcs_hresult_errno(0x8037010eu), -ENOENT);
	assert_int_equal(hcs_hresult_errno(0x80004001u), -ENOSYS);
	assert_int_equal(hcs_hresult_errno(0x8badf00du), -EIO);
	assert_string_equal(hcs_hresult_name(0xc037010du), "HCS_E_INVALID_JSON");
	assert_null(hcs_hresult_name(0x8badf00du));

	struct err e = {0};
	const char *doc = "{\"Error\":-2143878907,\"ErrorMessage\":\"The request is not valid\"}";
	assert_int_equal(
	    hcs_hresult_err(&e, 0x80370105u, doc, strlen(doc), "HcsCancelLiveMigration"),
	    -EALREADY);
	assert_string_equal(e.msg,
	                    "HcsCancelLiveMigration: HRESULT 0x80370105 (HCS_E_INVALID_STATE: "
	                    "the requested operation is not valid in the current state): "
	                    "The request is not valid");
	assert_int_equal(hcs_hresult_err(&e, 0x8badf00du, "not json", 8, "HcsStartComputeSystem"),
	                 -EIO);
	assert_string_equal(e.msg, "HcsStartComputeSystem: HRESULT 0x8badf00d");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source_path),
	    cmocka_unit_test(test_destination_path),
	    cmocka_unit_test(test_finalize_reconcile),
	    cmocka_unit_test(test_hresult),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
