/* Negative tests for the saved-state envelope decoder (host/ctrl/envelope_save.h): every
 * rule of docs/saved-state.md is broken once in a real envelope (truncation at every byte,
 * wrong and misplaced type URLs, schema 99, missing vm and network, invalid UTF-8, bad GUIDs,
 * slots out of range, duplicates, dangling references, limits) and must give a named error
 * and leave the caller's state exactly as it was.  Payloads are broken by editing the
 * protobuf tree that ferry encoded (ferry's encoder writes only what the struct says, so a
 * wrong schema_version or type URL has to be put on the wire by hand). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "hcsshim/controller/linuxcontainer/save/v1/payload.pb-c.h"
#include "hcsshim/controller/migration/save/v1/payload.pb-c.h"
#include "hcsshim/controller/network/save/v1/payload.pb-c.h"
#include "hcsshim/controller/pod/save/v1/payload.pb-c.h"
#include "hcsshim/controller/process/save/v1/payload.pb-c.h"
#include "hcsshim/controller/scsi/save/v1/payload.pb-c.h"
#include "hcsshim/controller/vm/save/v1/payload.pb-c.h"
#include "host/ctrl/envelope_save.h"
#include "tests/lib/payload_sample.h"

typedef Hcsshim__Controller__Migration__Save__V1__Payload pb_envelope;
typedef Hcsshim__Controller__Pod__Save__V1__Payload pb_pod;
typedef Hcsshim__Controller__Linuxcontainer__Save__V1__Payload pb_container;
typedef Hcsshim__Controller__Process__Save__V1__Payload pb_process;
typedef Hcsshim__Controller__Vm__Save__V1__Payload pb_vm;
typedef Hcsshim__Controller__Scsi__Save__V1__Payload pb_scsi;
typedef Hcsshim__Controller__Network__Save__V1__Payload pb_network;

struct fx {
	struct envelope_save sample; /* 2 pods of 2 containers */
	Google__Protobuf__Any top;   /* its encoding, edited by each test */
	struct envelope_save before; /* what the caller held before a failing decode */
	struct envelope_save out;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct err e;
	payload_sample_build(&f->sample, 2, 2);
	assert_int_equal(envelope_save_encode(&f->sample, &f->top, &e), 0);
	/* The caller's state: an earlier, good import. */
	assert_int_equal(envelope_save_decode(&f->top, NULL, &f->out, &e), 0);
	f->before = f->out;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	envelope_save_fini(&f->sample);
	envelope_save_fini(&f->out);
	free(f->top.value.data);
	free(f);
	return 0;
}

/* Decode and expect failure with code `code` and a message equal to `msg` (or containing
 * it, when `exact` is false); the caller's envelope must be untouched. */
static void expect_fail_any(struct fx *f, const Google__Protobuf__Any *a, int code, const char *msg,
                            bool exact)
{
	struct err e;
	int rc = envelope_save_decode(a, NULL, &f->out, &e);
	if (rc == 0)
		fail_msg("decode succeeded, want \"%s\"", msg);
	if (exact ? strcmp(e.msg, msg) != 0 : !strstr(e.msg, msg))
		fail_msg("error \"%s\", want \"%s\"", e.msg, msg);
	assert_int_equal(rc, code);
	assert_int_equal(e.code, code);
	assert_memory_equal(&f->out, &f->before, sizeof(f->out));
}

static void expect_fail(struct fx *f, int code, const char *msg)
{
	expect_fail_any(f, &f->top, code, msg, true);
}

/* Edit container c of pod p through fn, and put everything back. */
static void edit_container(struct fx *f, size_t p, size_t c, void (*fn)(pb_container *))
{
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_pod *pod = payload_sample_unpack(env->pods[p], SAVE_POD);
	pb_container *ct = payload_sample_unpack(pod->containers[c], SAVE_CONTAINER);
	fn(ct);
	payload_sample_repack(pod->containers[c], ct);
	payload_sample_repack(env->pods[p], pod);
	payload_sample_repack(&f->top, env);
}

static void edit_vm(struct fx *f, void (*fn)(pb_vm *))
{
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_vm *vm = payload_sample_unpack(env->vm, SAVE_VM);
	fn(vm);
	payload_sample_repack(env->vm, vm);
	payload_sample_repack(&f->top, env);
}

/* ---- the cases the issue names ---- */

static void test_truncated_everywhere(void **state)
{
	struct fx *f = *state;
	struct buf b;
	buf_init(&b);
	save_any_to_bytes(&f->top, &b);
	size_t n = buf_avail(&b);
	for (size_t len = 0; len < n; len++) {
		/* A copy of exactly len bytes, so that ASan sees any read past the end. */
		uint8_t *p = xmalloc(len + 1);
		memcpy(p, buf_head(&b), len);
		struct err e;
		int rc = envelope_save_decode_bytes(p, len, NULL, &f->out, &e);
		if (rc == 0)
			fail_msg("a %zu-byte prefix of %zu decoded", len, n);
		assert_true(rc == -EBADMSG || rc == -EINVAL);
		assert_int_equal(strncmp(e.msg, "import", 6), 0);
		assert_true(strlen(e.msg) > 12);
		assert_memory_equal(&f->out, &f->before, sizeof(f->out));
		free(p);
	}
	/* And the whole of it decodes. */
	struct envelope_save ok;
	struct err e;
	assert_int_equal(envelope_save_decode_bytes(buf_head(&b), n, NULL, &ok, &e), 0);
	envelope_save_fini(&ok);
	buf_fini(&b);
}

static void test_wrong_type_url(void **state)
{
	struct fx *f = *state;
	/* The vm slot holding a type URL of another schema (the string is ours until the message
	 * is freed, so the original is put back first). */
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	char *keep = env->vm->type_url;
	env->vm->type_url = "type.microsoft.com/hcsshim.controller.vm.save.v2.Payload";
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = f->top.type_url;
	a.value.len = protobuf_c_message_get_packed_size(&env->base);
	a.value.data = xmalloc(a.value.len + 1);
	protobuf_c_message_pack(&env->base, a.value.data);
	env->vm->type_url = keep;
	protobuf_c_message_free_unpacked(&env->base, NULL);
	expect_fail_any(
	    f, &a, -EINVAL,
	    "import vm: type_url `type.microsoft.com/hcsshim.controller.vm.save.v2.Payload`, "
	    "want type.microsoft.com/hcsshim.controller.vm.save.v1.Payload",
	    true);
	free(a.value.data);
	/* The envelope itself under another URL. */
	a = f->top;
	a.type_url = "type.googleapis.com/hcsshim.controller.migration.save.v1.Payload";
	expect_fail_any(f, &a, -EINVAL, "import: envelope: type_url", false);
}

static void test_type_url_in_wrong_slot(void **state)
{
	struct fx *f = *state;
	/* A pod payload where the vm belongs. */
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	Google__Protobuf__Any *vm = env->vm;
	env->vm = env->pods[0];
	env->pods[0] = vm;
	payload_sample_repack(&f->top, env);
	expect_fail(f, -EINVAL,
	            "import vm: holds a pod payload "
	            "(type.microsoft.com/hcsshim.controller.pod.save.v1.Payload), want "
	            "type.microsoft.com/hcsshim.controller.vm.save.v1.Payload");
}

static void schema_99(pb_container *c)
{
	c->schema_version = 99;
}

static void test_schema_99(void **state)
{
	struct fx *f = *state;
	edit_container(f, 1, 0, schema_99);
	expect_fail(f, -EINVAL, "import pod `pod1`: container `c2`: schema_version 99, want 1");
}

static void test_missing_vm(void **state)
{
	struct fx *f = *state;
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	protobuf_c_message_free_unpacked(&env->vm->base, NULL);
	env->vm = NULL;
	payload_sample_repack(&f->top, env);
	expect_fail(f, -EINVAL, "import: vm missing");
}

static void test_missing_network(void **state)
{
	struct fx *f = *state;
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_pod *pod = payload_sample_unpack(env->pods[0], SAVE_POD);
	protobuf_c_message_free_unpacked(&pod->network->base, NULL);
	pod->network = NULL;
	payload_sample_repack(env->pods[0], pod);
	payload_sample_repack(&f->top, env);
	expect_fail(f, -EINVAL, "import pod `pod0`: network missing");
}

static void bad_utf8_id(pb_container *c)
{
	free(c->container_id);
	c->container_id = xstrdup("c\xff");
}

static void test_invalid_utf8(void **state)
{
	struct fx *f = *state;
	edit_container(f, 0, 1, bad_utf8_id);
	expect_fail(
	    f, -EBADMSG,
	    "import pod `pod0`: containers[1]: container_id: invalid UTF-8 (byte 0xff at 1)");
}

static void bad_guid(pb_container *c)
{
	free(c->layers->ro_layers[1]->reservation_id);
	c->layers->ro_layers[1]->reservation_id = xstrdup("10000000-0001-4000-8000-00000000000g");
}

static void test_malformed_guid(void **state)
{
	struct fx *f = *state;
	edit_container(f, 0, 0, bad_guid);
	expect_fail(f, -EINVAL,
	            "import pod `pod0`: container `c0`: layers.ro_layers.reservation_id "
	            "`10000000-0001-4000-8000-00000000000g`: not a GUID");
}

static void slot_300(pb_vm *vm)
{
	pb_scsi *s = payload_sample_unpack(vm->scsi, SAVE_SCSI);
	s->disks[5]->key = 300;
	payload_sample_repack(vm->scsi, s);
}

static void test_slot_out_of_range(void **state)
{
	struct fx *f = *state;
	edit_vm(f, slot_300);
	expect_fail(
	    f, -EINVAL,
	    "import vm `sb1@vm`: scsi: disk slot 300 out of range (num_controllers 1: slots "
	    "0..63)");
}

static void test_duplicate_container(void **state)
{
	struct fx *f = *state;
	/* c1 of pod0 also in pod1 (its gcs id changed, so only the container id clashes). */
	struct envelope_save *s = &f->sample;
	free(s->pods[1].containers[1].container_id);
	s->pods[1].containers[1].container_id = xstrdup("c1");
	Google__Protobuf__Any a;
	struct err e;
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL, "import: container `c1` is in pod `pod0` and in pod `pod1`",
	                true);
	save_any_fini(&a);
	/* Twice in one pod. */
	free(s->pods[1].containers[1].container_id);
	s->pods[1].containers[1].container_id = xstrdup("c2");
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL, "import pod `pod1`: container `c2` twice", true);
	save_any_fini(&a);
}

/* ---- more rules ---- */

static void empty_nic_key(struct fx *f)
{
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_pod *pod = payload_sample_unpack(env->pods[1], SAVE_POD);
	pb_network *n = payload_sample_unpack(pod->network, SAVE_NETWORK);
	free(n->vm_endpoints[0]->key);
	n->vm_endpoints[0]->key = xstrdup("");
	payload_sample_repack(pod->network, n);
	payload_sample_repack(env->pods[1], pod);
	payload_sample_repack(&f->top, env);
}

static void test_empty_nic_key(void **state)
{
	struct fx *f = *state;
	empty_nic_key(f);
	expect_fail(f, -EINVAL, "import pod `pod1`: network: vm_endpoints: empty NIC key");
}

/* Replace the exec process's payload of container c of pod p through fn. */
static void edit_exec(struct fx *f, size_t p, size_t c, void (*fn)(Google__Protobuf__Any *))
{
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_pod *pod = payload_sample_unpack(env->pods[p], SAVE_POD);
	pb_container *ct = payload_sample_unpack(pod->containers[c], SAVE_CONTAINER);
	fn(ct->processes[1]->value);
	payload_sample_repack(pod->containers[c], ct);
	payload_sample_repack(env->pods[p], pod);
	payload_sample_repack(&f->top, env);
}

static void spec_array(Google__Protobuf__Any *a)
{
	pb_process *pr = payload_sample_unpack(a, SAVE_PROCESS);
	free(pr->oci_process_spec_json.data);
	pr->oci_process_spec_json.data = (uint8_t *)xstrdup("[1, 2]");
	pr->oci_process_spec_json.len = 6;
	payload_sample_repack(a, pr);
}

static void spec_bad_json(Google__Protobuf__Any *a)
{
	pb_process *pr = payload_sample_unpack(a, SAVE_PROCESS);
	free(pr->oci_process_spec_json.data);
	pr->oci_process_spec_json.data = (uint8_t *)xstrdup("{\"args\": [\"a\",]}");
	pr->oci_process_spec_json.len = 16;
	payload_sample_repack(a, pr);
}

static void test_spec_not_an_object(void **state)
{
	struct fx *f = *state;
	edit_exec(f, 0, 1, spec_array);
	expect_fail(f, -EINVAL,
	            "import pod `pod0`: container `c1`: process `e1`: oci_process_spec_json: JSON "
	            "array, want an object or null");
}

static void test_spec_bad_json(void **state)
{
	struct fx *f = *state;
	edit_exec(f, 1, 1, spec_bad_json);
	expect_fail(f, -EINVAL,
	            "import pod `pod1`: container `c3`: process `e3`: oci_process_spec_json: bad "
	            "JSON at byte 14: invalid token");
}

/* Raw protobuf appended to a payload: an unknown ordinary field is skipped (hcsshim's
 * newer fields), a group is refused with a clear error, so is a known field with another
 * wire type. */
static const uint8_t unknown_varint[] = {0xc0, 0xb8, 0x02, 0x2a}; /* field 5000, varint 42 */
static const uint8_t group_start[] = {0xa3, 0x38, 0xa4, 0x38};    /* field 900 group */
static const uint8_t exec_id_varint[] = {0x10, 0x01};             /* field 2 as a varint */
static const uint8_t *append_bytes;
static size_t append_len;

static void append_raw(Google__Protobuf__Any *a)
{
	a->value.data = xrealloc(a->value.data, a->value.len + append_len);
	memcpy(a->value.data + a->value.len, append_bytes, append_len);
	a->value.len += append_len;
}

static void test_raw_fields(void **state)
{
	struct fx *f = *state;
	Google__Protobuf__Any orig = f->top;
	orig.value.data = xmalloc(f->top.value.len);
	memcpy(orig.value.data, f->top.value.data, f->top.value.len);
	append_bytes = unknown_varint;
	append_len = sizeof(unknown_varint);
	edit_exec(f, 0, 0, append_raw);
	struct envelope_save ok;
	struct err e;
	if (envelope_save_decode(&f->top, NULL, &ok, &e) != 0)
		fail_msg("unknown field refused: %s", e.msg);
	envelope_save_fini(&ok);

	append_bytes = group_start;
	append_len = sizeof(group_start);
	edit_exec(f, 0, 0, append_raw);
	expect_fail_any(
	    f, &f->top, -EBADMSG,
	    "import pod `pod0`: container `c0`: process `e0`: field 900: group encoding "
	    "is not supported at byte ",
	    false);
	free(f->top.value.data);
	f->top = orig;
	append_bytes = exec_id_varint;
	append_len = sizeof(exec_id_varint);
	edit_exec(f, 0, 0, append_raw);
	expect_fail_any(f, &f->top, -EBADMSG, "process `e0`: exec_id: wire type 0, want 2", false);
}

static void nul_in_id(pb_container *c)
{
	free(c->gcs_container_id);
	c->gcs_container_id = xstrdup("gcs-c0");
	/* protobuf-c packs strings with strlen; put the NUL on the wire by hand below. */
}

static void test_nul_in_string(void **state)
{
	struct fx *f = *state;
	edit_container(f, 0, 0, nul_in_id);
	/* gcs-c0 -> gcs\0c0 in the packed bytes of the container (unique in the envelope). */
	pb_envelope *env = payload_sample_unpack(&f->top, SAVE_ENVELOPE);
	pb_pod *pod = payload_sample_unpack(env->pods[0], SAVE_POD);
	ProtobufCBinaryData *v = &pod->containers[0]->value;
	uint8_t *hit = memmem(v->data, v->len, "gcs-c0", 6);
	assert_non_null(hit);
	hit[3] = 0;
	payload_sample_repack(env->pods[0], pod);
	payload_sample_repack(&f->top, env);
	expect_fail_any(f, &f->top, -EBADMSG, "containers[0]: gcs_container_id: NUL byte at 3",
	                false);
}

static void test_dangling_reservation(void **state)
{
	struct fx *f = *state;
	struct envelope_save *s = &f->sample;
	s->pods[1].containers[0].scsi_reservations[2].data1 = 0x1234;
	Google__Protobuf__Any a;
	struct err e;
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL,
	                "import: pod `pod1` container `c2`: scsi_reservation_ids "
	                "`00001234-0002-4000-8000-000000000001`: no such reservation or device",
	                true);
	save_any_fini(&a);
}

static void test_port_and_wait_rules(void **state)
{
	struct fx *f = *state;
	struct envelope_save *s = &f->sample;
	Google__Protobuf__Any a;
	struct err e;
	uint32_t keep = s->pods[1].containers[1].procs[0].stdio[PROCESS_STDERR].port;
	s->pods[1].containers[1].procs[0].stdio[PROCESS_STDERR].port =
	    s->pods[0].containers[0].procs[1].stdio[PROCESS_STDIN].port;
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL,
	                "import: pod `pod0` container `c0` process `e0` and pod `pod1` container "
	                "`c3` init process share port 0x40000004",
	                true);
	save_any_fini(&a);
	s->pods[1].containers[1].procs[0].stdio[PROCESS_STDERR].port = keep;
	s->vm.uvm_procs[0].wait_call_id = s->vm.bridge_next_id;
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL,
	                "import: uvm process `uvm-1`: wait_call_id 118 is not below the vm's "
	                "bridge_next_id 118",
	                true);
	save_any_fini(&a);
	s->vm.uvm_procs[0].wait_call_id = 5; /* an orphan id */
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL, "wait_call_id 5 is also an orphan id", false);
	save_any_fini(&a);
}

static void test_vm_rules(void **state)
{
	struct fx *f = *state;
	struct envelope_save *s = &f->sample;
	Google__Protobuf__Any a;
	struct err e;
	free(s->vm.gcs_containers[2]);
	s->vm.gcs_containers[2] = xstrdup("nobody");
	assert_int_equal(envelope_save_encode(s, &a, &e), 0);
	expect_fail_any(f, &a, -EINVAL,
	                "import: vm: ferry_gcs_containers: `nobody` is no container's "
	                "gcs_container_id",
	                true);
	save_any_fini(&a);
}

static void short_secret(pb_vm *vm)
{
	vm->ferry_gcs_session_secret.len = 31;
}

static void hcs_doc_with_qemu(pb_vm *vm)
{
	vm->hcs_document.data = (uint8_t *)xstrdup("{}");
	vm->hcs_document.len = 2;
}

static void test_vm_fields(void **state)
{
	struct fx *f = *state;
	Google__Protobuf__Any orig = f->top;
	orig.value.data = xmalloc(f->top.value.len);
	memcpy(orig.value.data, f->top.value.data, f->top.value.len);
	edit_vm(f, short_secret);
	expect_fail(f, -EINVAL, "import vm `sb1@vm`: ferry_gcs_session_secret: 31 bytes, want 32");
	free(f->top.value.data);
	f->top = orig;
	edit_vm(f, hcs_doc_with_qemu);
	expect_fail(f, -EINVAL,
	            "import vm `sb1@vm`: hcs_document is set for backend `qemu`, which uses "
	            "ferry_machine_json");
}

static void key_mismatch(pb_container *c)
{
	free(c->processes[1]->key);
	c->processes[1]->key = xstrdup("other");
}

static void test_process_key_mismatch(void **state)
{
	struct fx *f = *state;
	edit_container(f, 0, 0, key_mismatch);
	expect_fail(
	    f, -EINVAL,
	    "import pod `pod0`: container `c0`: process `e0`: key `other` holds exec_id `e0`");
}

/* ---- limits ---- */

static void test_limits(void **state)
{
	struct fx *f = *state;
	struct err e;
	struct save_limits lim = save_default_limits;
	struct save_decode_opts o = {.limits = &lim};
	lim.max_containers = 3;
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -E2BIG);
	assert_string_equal(
	    e.msg, "import pod `pod1`: containers[1]: containers in the envelope: 4, limit 3");
	lim = save_default_limits;
	lim.max_processes = 8;
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "processes in the envelope: 9, limit 8"));
	lim = save_default_limits;
	lim.max_bytes = 1000;
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "import: envelope: "));
	assert_non_null(strstr(e.msg, "bytes, limit 1000"));
	lim = save_default_limits;
	lim.max_string = 60; /* shorter than the process payload's type URL */
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -E2BIG);
	assert_string_equal(
	    e.msg, "import vm: ferry_uvm_processes: type_url: string of 61 bytes, limit 60");
	/* The memory budget: enough for nothing but the envelope's own message. */
	lim = save_default_limits;
	lim.max_memory = f->top.value.len + 4096;
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "memory limit"));
	assert_true(o.peak_memory <= lim.max_memory);
	assert_memory_equal(&f->out, &f->before, sizeof(f->out));
	/* With the default budget the same envelope decodes, using a small multiple of its size. */
	struct envelope_save ok;
	o.limits = NULL;
	assert_int_equal(envelope_save_decode(&f->top, &o, &ok, &e), 0);
	assert_true(o.peak_memory > f->top.value.len);
	envelope_save_fini(&ok);
}

/* Empty sub-messages cost 2 bytes each on the wire and far more unpacked: the budget stops
 * them. */
static void test_amplification(void **state)
{
	struct fx *f = *state;
	size_t n = 1500000;
	uint8_t *p = xmalloc(2 * n);
	for (size_t i = 0; i < n; i++) {
		p[2 * i] = 0x1a; /* pods (field 3), length 0 */
		p[2 * i + 1] = 0;
	}
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = f->top.type_url;
	a.value.data = p;
	a.value.len = 2 * n;
	struct err e;
	struct save_limits lim = save_default_limits;
	lim.max_memory = 32u << 20;
	struct save_decode_opts o = {.limits = &lim};
	assert_int_equal(envelope_save_decode(&a, &o, &f->out, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "memory limit of 33554432 bytes"));
	assert_true(o.peak_memory <= lim.max_memory);
	free(p);
}

/* Keep-going mode (ferryctl payload check): every failing top-level child is reported. */
struct seen {
	int n;
	char msgs[4][ERR_MSG_MAX];
};

static void on_error(const struct err *e, void *arg)
{
	struct seen *s = arg;
	if (s->n < 4)
		memcpy(s->msgs[s->n], e->msg, ERR_MSG_MAX);
	s->n++;
}

static void test_keep_going(void **state)
{
	struct fx *f = *state;
	edit_container(f, 1, 0, schema_99);
	edit_vm(f, slot_300);
	empty_nic_key(f);
	struct seen seen = {0};
	struct save_decode_opts o = {.on_error = on_error, .arg = &seen};
	struct err e;
	assert_int_equal(envelope_save_decode(&f->top, &o, &f->out, &e), -EINVAL);
	assert_int_equal(seen.n, 2);
	assert_non_null(strstr(seen.msgs[0], "import vm `sb1@vm`: scsi: disk slot 300"));
	assert_string_equal(seen.msgs[1],
	                    "import pod `pod1`: network: vm_endpoints: empty NIC key");
	assert_string_equal(e.msg, seen.msgs[0]);
	assert_memory_equal(&f->out, &f->before, sizeof(f->out));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_truncated_everywhere),
	    T(test_wrong_type_url),
	    T(test_type_url_in_wrong_slot),
	    T(test_schema_99),
	    T(test_missing_vm),
	    T(test_missing_network),
	    T(test_invalid_utf8),
	    T(test_malformed_guid),
	    T(test_slot_out_of_range),
	    T(test_duplicate_container),
	    T(test_empty_nic_key),
	    T(test_spec_not_an_object),
	    T(test_spec_bad_json),
	    T(test_raw_fields),
	    T(test_nul_in_string),
	    T(test_dangling_reservation),
	    T(test_port_and_wait_rules),
	    T(test_vm_rules),
	    T(test_vm_fields),
	    T(test_process_key_mismatch),
	    T(test_limits),
	    T(test_amplification),
	    T(test_keep_going),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
