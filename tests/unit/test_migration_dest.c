/* Unit tests for the destination side of the migration controller (hcsshim
 * controller_destination_test.go: ImportState_*, PatchResourcePaths_*, PrepareDestination_*)
 * against the fake sandbox: argument, state and VM-state checks, nothing recorded when the
 * import fails, the pending-patch bookkeeping with sandbox-container detection and pod
 * re-keying, id collisions, and PrepareSandbox's retry rule (create fails: retry; patch fails:
 * Failed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/fake_sandbox.h"

#define DST VMM_ORIGIN_DESTINATION
#define ENV MIGRATION_ENVELOPE_TYPE_URL

static void containers(struct mt *t)
{
	static const char *const ids[] = {"pod-1", "ctr-1", "ctr-2"};
	static const char *const pods[] = {"pod-1", "pod-1", "pod-1"};
	fake_sb_containers(&t->sb, ids, pods, 3);
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
}

static enum mig_code import_raw(struct mt *t, const char *sid, const char *sandbox,
                                const char *type_url, const uint8_t *value, size_t len)
{
	struct mt_async a = {0};
	migration_import(t->m, sid, sandbox, type_url, value, len, mt_done_cb, &a);
	EVTEST_SPIN(&t->ev, a.done);
	t->st = a.st;
	return a.st.code;
}

/* ---- ImportState ---- */

static void test_import_rejects_invalid_args(void **state)
{
	struct mt *t = *state;
	containers(t);
	static const uint8_t v[] = {8, 1};
	assert_int_equal(import_raw(t, "", "sandbox-1", ENV, v, 2), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "destination: import migration state: session id is required");
	assert_int_equal(import_raw(t, "s", "", ENV, v, 2), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "sandbox id is required");
	assert_int_equal(import_raw(t, "s", "sandbox-1", ENV, NULL, 0), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "sandbox saved state is required");
	assert_int_equal(import_raw(t, "s", "sandbox-1", "type.bogus", v, 2),
	                 MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "destination: import migration state: unsupported sandbox "
	                               "saved-state type \"type.bogus\": invalid argument");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_int_equal(t->sb.verb[FAKE_IMPORT].calls, 0);
	/* an empty config is a config: it goes to the sandbox to decode */
	assert_int_equal(import_raw(t, "s", "sandbox-1", ENV, v, 0), MIG_CODE_OK);
	assert_int_equal(t->sb.import_len, 0);
}

static void test_import_rejects_undecodable_state(void **state)
{
	struct mt *t = *state;
	containers(t);
	t->sb.verb[FAKE_IMPORT].fail = -EINVAL; /* truncated, schema 99, ... */
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "destination: import migration state: import sandbox: fake "
	                               "import failed: invalid argument");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_string_equal(migration_session_id(t->m), "");
	/* the partial-failure rule (PartialPodFailureIsAtomic): nothing was recorded, so the
	 * same import with good bytes succeeds */
	t->sb.verb[FAKE_IMPORT].fail = 0;
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_DESTINATION_IMPORTED);
}

static void test_import_rejects_already_imported(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	/* the VM controller now holds imported state */
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "vm controller is in invalid state Active");
	/* and if the VM looked fresh, the controller's own state refuses */
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	assert_int_equal(mt_import(t, "sess-2", "sandbox-1", ENV), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "controller is in state DestinationImported for session \"sess-1\"");
	assert_int_equal(t->sb.verb[FAKE_IMPORT].calls, 1);
}

static void test_import_rejects_conflicting_state(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_EXPORTED);
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	assert_int_equal(mt_import(t, "other", "sandbox-1", ENV), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "controller is in state SourceExported");
}

static void test_import_rejects_wrong_vm_state(void **state)
{
	struct mt *t = *state;
	t->sb.vm_state = MIGRATION_VM_ACTIVE; /* a shim running its own sandbox */
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_FAILED_PRECONDITION);
	assert_int_equal(t->sb.verb[FAKE_IMPORT].calls, 0);
}

static void test_import_vm_import_error(void **state)
{
	struct mt *t = *state;
	containers(t);
	t->sb.verb[FAKE_IMPORT].fail = -EIO;
	t->sb.verb[FAKE_IMPORT].now = true;
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_UNKNOWN);
	mt_expect_msg(t, "fake import refused");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_null(migration_log(t->m));
}

static void test_import_success(void **state)
{
	struct mt *t = *state;
	containers(t);
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_DESTINATION_IMPORTED);
	assert_string_equal(migration_session_id(t->m), "sess-1");
	assert_int_equal(migration_origin(t->m), VMM_ORIGIN_DESTINATION);
	assert_string_equal(t->sb.import_sandbox, "sandbox-1");
	assert_int_equal(t->sb.import_len, 2);
	/* every imported container waits for its CreateTask */
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	assert_string_equal(t->st.msg, "destination: prepare migration: 3 container patches still "
	                               "pending [ctr-1, ctr-2, pod-1]: failed precondition");
}

static void test_import_empty_sandbox(void **state)
{
	struct mt *t = *state;
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_OK);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_OK); /* nothing pending */
}

/* a sandbox reporting a container twice is refused, and what it imported is aborted */
static void test_import_duplicate_container(void **state)
{
	struct mt *t = *state;
	static const char *const ids[] = {"pod-1", "ctr-1", "pod-2", "ctr-1"};
	static const char *const pods[] = {"pod-1", "pod-1", "pod-2", "pod-2"};
	fake_sb_containers(&t->sb, ids, pods, 4);
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	assert_int_equal(mt_import(t, "sess-1", "sandbox-1", ENV), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "duplicate source container id \"ctr-1\" across imported pods");
	assert_string_equal(t->sb.log, "import abort");
	assert_int_equal(migration_state(t->m), MIG_STATE_IDLE);
	assert_int_equal(t->sb.vm_state, MIGRATION_VM_NOT_CREATED);
}

/* ---- PatchResourcePaths ---- */

static void test_patch_rejects_invalid_args(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch(t, NULL), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg,
	                    "patch migrated container: request is required: invalid argument");
	struct migration_kv ann[1] = {{MIGRATION_ANN_SOURCE_CONTAINER_ID, "ctr-1"}};
	struct migration_patch_req r = {.id = "", .annotations = ann, .n_annotations = 1};
	assert_int_equal(mt_patch(t, &r), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "destination container id is required");
	r.id = "dst-1";
	r.annotations = NULL;
	r.n_annotations = 0;
	assert_int_equal(mt_patch(t, &r), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "patch migrated container \"dst-1\": annotations are "
	                               "required: invalid argument");
	struct migration_kv other[1] = {{"io.kubernetes.cri.sandbox-id", "x"}};
	r.annotations = other;
	r.n_annotations = 1;
	assert_int_equal(mt_patch(t, &r), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "annotation \"io.microsoft.migration.source-container-id\" is required");
	struct migration_kv empty[1] = {{MIGRATION_ANN_SOURCE_CONTAINER_ID, ""}};
	r.annotations = empty;
	assert_int_equal(mt_patch(t, &r), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(t->sb.verb[FAKE_PATCH].calls, 0);
}

static void test_patch_rejects_wrong_state(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "patch not valid in state Idle");
	mt_drive(t, DST, MIG_STATE_DESTINATION_PREPARED);
	assert_int_equal(mt_patch_simple(t, "dst-9", "ctr-1", NULL), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "patch not valid in state DestinationPrepared");
}

static void test_patch_rejects_already_patched(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_OK);
	assert_int_equal(mt_patch_simple(t, "dst-1b", "ctr-1", NULL), MIG_CODE_ALREADY_EXISTS);
	assert_string_equal(t->st.msg, "patch migrated container \"dst-1b\": source container "
	                               "\"ctr-1\" is not pending a patch (patched as \"dst-1\"): "
	                               "already exists");
}

static void test_patch_rejects_unknown_container(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-9", NULL), MIG_CODE_NOT_FOUND);
	mt_expect_msg(t, "source container \"ctr-9\" not found");
}

static void test_patch_rejects_annotation_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", "sandbox"),
	                 MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg,
	                    "patch migrated container \"dst-1\": annotation "
	                    "\"io.kubernetes.cri.container-type\"=\"sandbox\" disagrees with "
	                    "structural sandbox detection (sourceContainerID=\"ctr-1\", "
	                    "sourcePodID=\"pod-1\"): invalid argument");
	assert_int_equal(mt_patch_simple(t, "dst-pod", "pod-1", "container"),
	                 MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(t->sb.verb[FAKE_PATCH].calls, 0);
}

/* hcsshim's SCSIControllerError: the sandbox's patch fails; the container stays pending */
static void test_patch_sandbox_error(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	t->sb.verb[FAKE_PATCH].fail = -ENOENT;
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_NOT_FOUND);
	assert_string_equal(t->st.msg, "patch migrated container \"dst-1\": patch source container "
	                               "\"ctr-1\" in pod \"pod-1\": fake patch failed: not found");
	t->sb.verb[FAKE_PATCH].fail = 0;
	assert_int_equal(mt_patch_simple(t, "dst-pod", "pod-1", "sandbox"), MIG_CODE_OK);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "1 container patches still pending [ctr-1]");
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_OK);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_OK);
}

/* The sandbox container re-keys its pod; the others then see the new pod id and are not
 * sandbox containers.  What the CreateTask carried reaches the sandbox. */
static void test_patch_sandbox_first_rekeys_pod(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	struct migration_kv ann[2] = {{MIGRATION_ANN_CONTAINER_TYPE, "sandbox"},
	                              {MIGRATION_ANN_SOURCE_CONTAINER_ID, "pod-1"}};
	struct migration_repath rp[2] = {{"/src/layer.vhd", "/dst/layer.vhd"},
	                                 {"/src/vol.vhd", "/dst/vol.vhd"}};
	const char *opts[] = {"ro"};
	struct migration_mount mnt = {"lcow-layer", "/dst/layer.vhd", NULL, opts, 1};
	struct migration_patch_req r = {.id = "dst-pod",
	                                .bundle = "/run/bundle/dst-pod",
	                                .annotations = ann,
	                                .n_annotations = 2,
	                                .rootfs = &mnt,
	                                .n_rootfs = 1,
	                                .netns = "/var/run/netns/ns1",
	                                .repaths = rp,
	                                .n_repaths = 2};
	assert_int_equal(mt_patch(t, &r), MIG_CODE_OK);
	assert_string_equal(t->sb.patch_source, "pod-1");
	assert_string_equal(t->sb.patch_pod, "pod-1");
	assert_string_equal(t->sb.patch_id, "dst-pod");
	assert_true(t->sb.patch_sandbox);
	assert_string_equal(t->sb.patch_bundle, "/run/bundle/dst-pod");
	assert_string_equal(t->sb.patch_netns, "/var/run/netns/ns1");
	assert_int_equal(t->sb.patch_repaths, 2);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", "container"), MIG_CODE_OK);
	assert_string_equal(t->sb.patch_pod, "dst-pod");
	assert_false(t->sb.patch_sandbox);
}

static void test_patch_containers_before_sandbox(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_OK);
	assert_string_equal(t->sb.patch_pod, "pod-1");
	assert_false(t->sb.patch_sandbox);
	assert_int_equal(mt_patch_simple(t, "dst-pod", "pod-1", NULL), MIG_CODE_OK);
	assert_true(t->sb.patch_sandbox);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_OK);
}

/* a new id already taken by another container is refused before the sandbox sees it */
static void test_patch_id_collision(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "pod-1", "ctr-1", NULL), MIG_CODE_ALREADY_EXISTS);
	mt_expect_msg(t, "container \"pod-1\" already exists");
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_OK);
	assert_int_equal(mt_patch_simple(t, "dst-1", "pod-1", NULL), MIG_CODE_ALREADY_EXISTS);
	/* keeping its own id is fine */
	assert_int_equal(mt_patch_simple(t, "pod-1", "pod-1", NULL), MIG_CODE_OK);
	assert_int_equal(t->sb.verb[FAKE_PATCH].calls, 2);
}

/* the request is copied: the caller may free it as soon as the call returns */
static void test_patch_copies_request(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	struct migration_kv *ann = calloc(1, sizeof(*ann));
	char *key = strdup(MIGRATION_ANN_SOURCE_CONTAINER_ID), *val = strdup("ctr-1");
	char *id = strdup("dst-1"), *bundle = strdup("/b/dst-1");
	ann->key = key;
	ann->value = val;
	struct migration_patch_req *r = calloc(1, sizeof(*r));
	r->id = id;
	r->bundle = bundle;
	r->annotations = ann;
	r->n_annotations = 1;
	struct mt_async a = {0};
	migration_patch(t->m, r, mt_done_cb, &a);
	memset(key, 'x', strlen(key));
	memset(id, 'x', strlen(id));
	free(key);
	free(val);
	free(id);
	free(bundle);
	free(ann);
	free(r);
	EVTEST_SPIN(&t->ev, a.done);
	assert_int_equal(a.st.code, MIG_CODE_OK);
	assert_string_equal(t->sb.patch_id, "dst-1");
	assert_string_equal(t->sb.patch_bundle, "/b/dst-1");
}

/* ---- PrepareDestination ---- */

static void test_prepare_dest_rejects_wrong_state(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_EXPORTED);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "prepare destination not valid in state SourceExported");
	assert_int_equal(mt_prepare_dest(t, "other"), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(t->sb.verb[FAKE_PREPARE_DEST].calls, 0);
}

static void test_prepare_dest_create_error_can_retry(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_IMPORTED);
	assert_int_equal(mt_patch_simple(t, "dst-pod", "pod-1", NULL), MIG_CODE_OK);
	assert_int_equal(mt_patch_simple(t, "dst-1", "ctr-1", NULL), MIG_CODE_OK);
	t->sb.verb[FAKE_PREPARE_DEST].fail = -EINVAL; /* e.g. the compatibility check */
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "destination: prepare migration: create destination vm: "
	                               "fake prepare_dest failed: invalid argument");
	assert_int_equal(migration_state(t->m), MIG_STATE_DESTINATION_IMPORTED);
	t->sb.verb[FAKE_PREPARE_DEST].fail = 0;
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_DESTINATION_PREPARED);
}

static void test_prepare_dest_success(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_PREPARED);
	assert_string_equal(t->sb.vm_id, "sandbox-1@vm");
	assert_true(mt_log_has(&t->sb, "import patch patch prepare_dest patch_vm"));
	assert_int_equal(t->sb.vm_state, MIGRATION_VM_ACTIVE);
}

static void test_prepare_dest_patch_vm_error_fails(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_FAILED);
	assert_int_equal(mt_prepare_dest(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	/* a failed destination is discarded with Finalize STOP, which aborts */
	assert_int_equal(mt_finalize(t, "sess-1", MIG_FINALIZE_STOP), MIG_CODE_OK);
	assert_true(mt_log_has(&t->sb, "patch_vm finalize abort"));
	assert_int_equal(mt_cleanup(t, "sess-1"), MIG_CODE_OK);
}

static int setup_no_patch_vm(void **state)
{
	mt_setup(state);
	struct mt *t = *state;
	static struct migration_sandbox_ops ops;
	ops = fake_sb_ops;
	ops.patch_vm = NULL;
	migration_free(t->m);
	struct migration_config cfg = {.ops = &ops, .sb = &t->sb};
	struct err e;
	err_clear(&e);
	t->m = migration_new(t->ev.loop, &cfg, &e);
	assert_non_null(t->m);
	return 0;
}

static void test_prepare_dest_without_patch_vm(void **state)
{
	struct mt *t = *state;
	mt_drive(t, DST, MIG_STATE_DESTINATION_PREPARED);
	assert_int_equal(t->sb.verb[FAKE_PATCH_VM].calls, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, mt_setup, mt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_import_rejects_invalid_args),
	    T(test_import_rejects_undecodable_state),
	    T(test_import_rejects_already_imported),
	    T(test_import_rejects_conflicting_state),
	    T(test_import_rejects_wrong_vm_state),
	    T(test_import_vm_import_error),
	    T(test_import_success),
	    T(test_import_empty_sandbox),
	    T(test_import_duplicate_container),
	    T(test_patch_rejects_invalid_args),
	    T(test_patch_rejects_wrong_state),
	    T(test_patch_rejects_already_patched),
	    T(test_patch_rejects_unknown_container),
	    T(test_patch_rejects_annotation_mismatch),
	    T(test_patch_sandbox_error),
	    T(test_patch_sandbox_first_rekeys_pod),
	    T(test_patch_containers_before_sandbox),
	    T(test_patch_id_collision),
	    T(test_patch_copies_request),
	    T(test_prepare_dest_rejects_wrong_state),
	    T(test_prepare_dest_create_error_can_retry),
	    T(test_prepare_dest_success),
	    T(test_prepare_dest_patch_vm_error_fails),
	    cmocka_unit_test_setup_teardown(test_prepare_dest_without_patch_vm, setup_no_patch_vm,
	                                    mt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
