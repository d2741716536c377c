/* The containerd protobufs ferry writes itself (proto/containerd/: the Task service, mounts,
 * task types, task events, the ttrpc Events service) against protobuf's reference
 * implementation: every message is written in text format with every field set (names and
 * enum values must parse), protoc encodes it, ferry's generated C decodes it (through ttrpc's
 * bounded decoder) with no field left unknown and every field set, and ferry's encoding of the
 * result decodes in protoc to exactly the text protoc decodes from its own bytes.  In the
 * other direction, messages built in C decode in protoc to the text written here.  The field
 * numbers themselves are containerd's (checked against v1.6.20's sources, and against the real
 * containerd and runc shim in tests/integration/test_containerd_runc.c).  Run from the source
 * tree root (make test); needs protoc and the well-known types ($PROTO_INC). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/services/ttrpc/events/v1/events.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/mount.pb-c.h"
#include "containerd/types/task/task.pb-c.h"
#include "ttrpc/wire.h"

#define PROTOS                                                                                     \
	"-Iproto containerd/types/mount.proto containerd/types/task/task.proto "                   \
	"containerd/events/task.proto containerd/services/ttrpc/events/v1/events.proto "           \
	"containerd/task/v2/shim.proto"

static char tmp_in[64], tmp_out[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp_in, sizeof(tmp_in), "/tmp/ferry-ctrd-proto-in.%d", (int)getpid());
	snprintf(tmp_out, sizeof(tmp_out), "/tmp/ferry-ctrd-proto-out.%d", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(tmp_in);
	unlink(tmp_out);
	return 0;
}

static void spill(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void slurp(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

/* protoc --encode/--decode=TYPE of in[0..n) into `out` (NUL-terminated for text). */
static void protoc(const char *mode, const char *type, const void *in, size_t n, struct buf *out)
{
	const char *inc = getenv("PROTO_INC") ? getenv("PROTO_INC") : "/usr/include";
	spill(tmp_in, in, n);
	char *cmd =
	    xasprintf("protoc -I%s " PROTOS " --%s=%s <%s >%s", inc, mode, type, tmp_in, tmp_out);
	int rc = system(cmd);
	free(cmd);
	if (rc != 0)
		fail_msg("protoc --%s=%s failed (%d)", mode, type, rc);
	buf_reset(out);
	slurp(tmp_out, out);
	buf_append(out, "", 1);
}

/* Every field of `m` (recursively) holds a non-default value, and nothing was unknown. */
static void assert_all_set(const ProtobufCMessage *m, const char *path)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (m->n_unknown_fields != 0)
		fail_msg("%s (%s): %u unknown fields", path, d->name, m->n_unknown_fields);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			if (n == 0)
				fail_msg("%s.%s: empty", path, f->name);
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
				for (size_t k = 0; k < n; k++)
					assert_all_set(v[k], f->name);
			}
			continue;
		}
		bool set;
		switch (f->type) {
		case PROTOBUF_C_TYPE_STRING: {
			const char *s = *(const char *const *)at;
			set = s && *s;
			break;
		}
		case PROTOBUF_C_TYPE_BYTES:
			set = ((const ProtobufCBinaryData *)at)->len > 0;
			break;
		case PROTOBUF_C_TYPE_MESSAGE: {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
			set = sub != NULL;
			if (sub)
				assert_all_set(sub, f->name);
			break;
		}
		case PROTOBUF_C_TYPE_BOOL:
			set = *(const protobuf_c_boolean *)at;
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_FIXED64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_DOUBLE:
			set = *(const uint64_t *)at != 0;
			break;
		default: /* 32-bit scalars and enums */
			set = *(const uint32_t *)at != 0;
			break;
		}
		if (!set)
			fail_msg("%s.%s: not set", path, f->name);
	}
}

struct sample {
	const ProtobufCMessageDescriptor *desc;
	const char *text; /* every field set */
};

#define TS     "{ seconds: 1700000000 nanos: 123456789 }"
#define ANY(u) "{ type_url: \"" u "\" value: \"\\001\\002xyz\" }"
#define MOUNT_FIELDS                                                                               \
	"type: \"overlay\" source: \"overlay\" target: \"/t\" options: \"lowerdir=/l1:/l2\" "      \
	"options: \"upperdir=/u\""
#define MOUNT "{ " MOUNT_FIELDS " }"

static const struct sample samples[] = {
    /* types */
    {&containerd__types__mount__descriptor, MOUNT_FIELDS},
    {&containerd__v1__types__process__descriptor,
     "container_id: \"c1\" id: \"e1\" pid: 42 status: PAUSING stdin: \"/i\" stdout: \"/o\" "
     "stderr: \"/e\" terminal: true exit_status: 137 exited_at " TS},
    {&containerd__v1__types__process_info__descriptor,
     "pid: 7 info " ANY("containerd.runc.v1.ProcessDetails")},
    /* events */
    {&containerd__events__task_create__descriptor,
     "container_id: \"c1\" bundle: \"/b\" rootfs " MOUNT " rootfs { type: \"bind\" source: "
     "\"/s\" target: \"/x\" options: \"rbind\" } io { stdin: \"/i\" stdout: \"/o\" stderr: "
     "\"/e\" terminal: true } checkpoint: \"/cp\" pid: 42"},
    {&containerd__events__task_start__descriptor, "container_id: \"c1\" pid: 42"},
    {&containerd__events__task_delete__descriptor,
     "container_id: \"c1\" pid: 42 exit_status: 3 exited_at " TS " id: \"e1\""},
    {&containerd__events__task_io__descriptor,
     "stdin: \"/i\" stdout: \"/o\" stderr: \"/e\" terminal: true"},
    {&containerd__events__task_exit__descriptor,
     "container_id: \"c1\" id: \"e1\" pid: 43 exit_status: 255 exited_at " TS},
    {&containerd__events__task_oom__descriptor, "container_id: \"c1\""},
    {&containerd__events__task_exec_added__descriptor, "container_id: \"c1\" exec_id: \"e1\""},
    {&containerd__events__task_exec_started__descriptor,
     "container_id: \"c1\" exec_id: \"e1\" pid: 44"},
    {&containerd__events__task_paused__descriptor, "container_id: \"c1\""},
    {&containerd__events__task_resumed__descriptor, "container_id: \"c1\""},
    {&containerd__events__task_checkpointed__descriptor,
     "container_id: \"c1\" checkpoint: \"sha256:abc\""},
    /* the ttrpc Events service */
    {&containerd__services__events__ttrpc__v1__envelope__descriptor,
     "timestamp " TS
     " namespace: \"default\" topic: \"/tasks/exit\" event " ANY("containerd.events.TaskExit")},
    {&containerd__services__events__ttrpc__v1__forward_request__descriptor,
     "envelope { timestamp " TS
     " namespace: \"k8s.io\" topic: \"/tasks/oom\" event " ANY("containerd.events.TaskOOM") " }"},
    /* the Task service */
    {&containerd__task__v2__create_task_request__descriptor,
     "id: \"c1\" bundle: \"/b\" rootfs " MOUNT " terminal: true stdin: \"/i\" stdout: \"/o\" "
     "stderr: \"/e\" checkpoint: \"/cp\" parent_checkpoint: \"/pcp\" options " ANY(
         "containerd.runc.v1.Options")},
    {&containerd__task__v2__create_task_response__descriptor, "pid: 42"},
    {&containerd__task__v2__delete_request__descriptor, "id: \"c1\" exec_id: \"e1\""},
    {&containerd__task__v2__delete_response__descriptor, "pid: 42 exit_status: 1 exited_at " TS},
    {&containerd__task__v2__exec_process_request__descriptor,
     "id: \"c1\" exec_id: \"e1\" terminal: true stdin: \"/i\" stdout: \"/o\" stderr: \"/e\" "
     "spec " ANY("types.containerd.io/opencontainers/runtime-spec/1/Process")},
    {&containerd__task__v2__exec_process_response__descriptor, ""},
    {&containerd__task__v2__resize_pty_request__descriptor,
     "id: \"c1\" exec_id: \"e1\" width: 80 height: 24"},
    {&containerd__task__v2__state_request__descriptor, "id: \"c1\" exec_id: \"e1\""},
    {&containerd__task__v2__state_response__descriptor,
     "id: \"c1\" bundle: \"/b\" pid: 42 status: RUNNING stdin: \"/i\" stdout: \"/o\" stderr: "
     "\"/e\" terminal: true exit_status: 9 exited_at " TS " exec_id: \"e1\""},
    {&containerd__task__v2__kill_request__descriptor,
     "id: \"c1\" exec_id: \"e1\" signal: 9 all: true"},
    {&containerd__task__v2__close_iorequest__descriptor, "id: \"c1\" exec_id: \"e1\" stdin: true"},
    {&containerd__task__v2__pids_request__descriptor, "id: \"c1\""},
    {&containerd__task__v2__pids_response__descriptor,
     "processes { pid: 1 info " ANY("a.B") " } processes { pid: 2 info " ANY("a.C") " }"},
    {&containerd__task__v2__checkpoint_task_request__descriptor,
     "id: \"c1\" path: \"/cp\" options " ANY("containerd.runc.v1.CheckpointOptions")},
    {&containerd__task__v2__update_task_request__descriptor,
     "id: \"c1\" resources " ANY("types.containerd.io/opencontainers/runtime-spec/1/"
                                 "LinuxResources") " annotations { key: \"a\" value: \"1\" } "
                                                   "annotations { key: \"b\" value: \"2\" }"},
    {&containerd__task__v2__start_request__descriptor, "id: \"c1\" exec_id: \"e1\""},
    {&containerd__task__v2__start_response__descriptor, "pid: 42"},
    {&containerd__task__v2__wait_request__descriptor, "id: \"c1\" exec_id: \"e1\""},
    {&containerd__task__v2__wait_response__descriptor, "exit_status: 7 exited_at " TS},
    {&containerd__task__v2__stats_request__descriptor, "id: \"c1\""},
    {&containerd__task__v2__stats_response__descriptor,
     "stats " ANY("io.containerd.cgroups.v1.Metrics")},
    {&containerd__task__v2__connect_request__descriptor, "id: \"c1\""},
    {&containerd__task__v2__connect_response__descriptor,
     "shim_pid: 100 task_pid: 42 version: \"v2\""},
    {&containerd__task__v2__shutdown_request__descriptor, "id: \"c1\" now: true"},
    {&containerd__task__v2__pause_request__descriptor, "id: \"c1\""},
    {&containerd__task__v2__resume_request__descriptor, "id: \"c1\""},
};

/* protoc -> C -> protoc for every message, every field set. */
static void test_round_trip_every_message(void **state)
{
	(void)state;
	struct buf wire, text_a, text_b;
	buf_init(&wire);
	buf_init(&text_a);
	buf_init(&text_b);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		protoc("encode", s->desc->name, s->text, strlen(s->text), &wire);
		size_t n = buf_avail(&wire) - 1; /* without the NUL protoc() appended */
		struct err e;
		err_clear(&e);
		ProtobufCMessage *m = ttrpc_msg_unpack(s->desc, buf_head(&wire), n, &e);
		if (!m)
			fail_msg("%s: %s", s->desc->name, e.msg);
		assert_all_set(m, s->desc->short_name);
		protoc("decode", s->desc->name, buf_head(&wire), n, &text_a);
		size_t len = protobuf_c_message_get_packed_size(m);
		uint8_t *out = xmalloc(len + 1);
		assert_int_equal(protobuf_c_message_pack(m, out), len);
		protoc("decode", s->desc->name, out, len, &text_b);
		assert_string_equal((const char *)buf_head(&text_a),
		                    (const char *)buf_head(&text_b));
		free(out);
		ttrpc_msg_free(m);
	}
	buf_fini(&wire);
	buf_fini(&text_a);
	buf_fini(&text_b);
}

/* The descriptors of the sample table cover every message of the five files. */
static void test_samples_cover_every_message(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *all[] = {
	    &containerd__types__mount__descriptor,
	    &containerd__v1__types__process__descriptor,
	    &containerd__v1__types__process_info__descriptor,
	};
	size_t n = sizeof(samples) / sizeof(samples[0]);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		bool found = false;
		for (size_t k = 0; k < n; k++)
			found |= samples[k].desc == all[i];
		assert_true(found);
	}
	/* 11 event messages (TaskIO included), 2 Events service messages, the 26 request and
	 * response messages of shim.proto (UpdateTaskRequest's map entry is generated, not
	 * written), 3 type messages. */
	assert_int_equal(n, 11 + 2 + 26 + 3);
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			assert_ptr_not_equal(samples[i].desc, samples[k].desc);
}

/* Service and method names are the wire names containerd calls. */
static void test_service_names(void **state)
{
	(void)state;
	const ProtobufCServiceDescriptor *t = &containerd__task__v2__task__descriptor;
	assert_string_equal(t->name, "containerd.task.v2.Task");
	static const char *const methods[] = {
	    "State",  "Create",     "Start", "Delete",  "Pids",      "Pause",
	    "Resume", "Checkpoint", "Kill",  "Exec",    "ResizePty", "CloseIO",
	    "Update", "Wait",       "Stats", "Connect", "Shutdown",
	};
	assert_int_equal(t->n_methods, 17);
	for (unsigned i = 0; i < 17; i++)
		assert_string_equal(t->methods[i].name, methods[i]);
	const ProtobufCServiceDescriptor *ev =
	    &containerd__services__events__ttrpc__v1__events__descriptor;
	assert_string_equal(ev->name, "containerd.services.events.ttrpc.v1.Events");
	assert_int_equal(ev->n_methods, 1);
	assert_string_equal(ev->methods[0].name, "Forward");
	assert_string_equal(containerd__events__task_exit__descriptor.name,
	                    "containerd.events.TaskExit");
}

/* protoc's bytes land in the C fields of the same names; enum values are containerd's. */
static void test_fields_land_where_named(void **state)
{
	(void)state;
	struct buf wire;
	buf_init(&wire);
	const char *txt = "id: \"c1\" bundle: \"/b\" pid: 42 status: STOPPED exit_status: 9 "
	                  "exited_at { seconds: 5 nanos: 6 } exec_id: \"e1\" terminal: true";
	protoc("encode", "containerd.task.v2.StateResponse", txt, strlen(txt), &wire);
	Containerd__Task__V2__StateResponse *st = containerd__task__v2__state_response__unpack(
	    NULL, buf_avail(&wire) - 1, buf_head(&wire));
	assert_non_null(st);
	assert_string_equal(st->id, "c1");
	assert_string_equal(st->bundle, "/b");
	assert_string_equal(st->exec_id, "e1");
	assert_int_equal(st->pid, 42);
	assert_int_equal(st->status, 3);
	assert_int_equal(CONTAINERD__V1__TYPES__STATUS__STOPPED, 3);
	assert_int_equal(CONTAINERD__V1__TYPES__STATUS__PAUSING, 5);
	assert_int_equal(st->exit_status, 9);
	assert_true(st->terminal);
	assert_int_equal(st->exited_at->seconds, 5);
	assert_int_equal(st->exited_at->nanos, 6);
	containerd__task__v2__state_response__free_unpacked(st, NULL);

	txt = "container_id: \"c2\" id: \"x\" pid: 7 exit_status: 137 exited_at { seconds: 9 }";
	protoc("encode", "containerd.events.TaskExit", txt, strlen(txt), &wire);
	Containerd__Events__TaskExit *ex =
	    containerd__events__task_exit__unpack(NULL, buf_avail(&wire) - 1, buf_head(&wire));
	assert_non_null(ex);
	assert_string_equal(ex->container_id, "c2");
	assert_string_equal(ex->id, "x");
	assert_int_equal(ex->pid, 7);
	assert_int_equal(ex->exit_status, 137);
	assert_int_equal(ex->exited_at->seconds, 9);
	containerd__events__task_exit__free_unpacked(ex, NULL);
	buf_fini(&wire);
}

/* A ForwardRequest built in C, as the publisher builds it, reads back in protoc. */
static void test_c_forward_request_in_protoc(void **state)
{
	(void)state;
	Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	ex.container_id = "c1";
	ex.id = "c1";
	ex.pid = 42;
	ex.exit_status = 3;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = 1700000001;
	ex.exited_at = &at;
	uint8_t val[128];
	size_t vlen = containerd__events__task_exit__pack(&ex, val);

	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "containerd.events.TaskExit";
	any.value.data = val;
	any.value.len = vlen;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = 1700000002;
	ts.nanos = 5;
	Containerd__Services__Events__Ttrpc__V1__Envelope env =
	    CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
	env.timestamp = &ts;
	env.namespace_ = "default";
	env.topic = "/tasks/exit";
	env.event = &any;
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
	    CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
	req.envelope = &env;
	uint8_t wire[256];
	size_t n = containerd__services__events__ttrpc__v1__forward_request__pack(&req, wire);

	struct buf text;
	buf_init(&text);
	protoc("decode", "containerd.services.events.ttrpc.v1.ForwardRequest", wire, n, &text);
	const char *t = (const char *)buf_head(&text);
	assert_non_null(strstr(t,
	                       "envelope {\n  timestamp {\n    seconds: 1700000002\n    nanos: 5\n"
	                       "  }\n  namespace: \"default\"\n  topic: \"/tasks/exit\"\n"
	                       "  event {\n    type_url: \"containerd.events.TaskExit\"\n"));
	protoc("decode", "containerd.events.TaskExit", val, vlen, &text);
	assert_string_equal((const char *)buf_head(&text),
	                    "container_id: \"c1\"\nid: \"c1\"\npid: 42\nexit_status: 3\n"
	                    "exited_at {\n  seconds: 1700000001\n}\n");
	buf_fini(&text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples_cover_every_message),
	    cmocka_unit_test(test_service_names),
	    cmocka_unit_test(test_round_trip_every_message),
	    cmocka_unit_test(test_fields_land_where_named),
	    cmocka_unit_test(test_c_forward_request_in_protoc),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
