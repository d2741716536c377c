/* libFuzzer harness for the containerd messages ferry decodes from outside: the Task service
 * requests containerd sends a shim (containerd.task.v2), the Events service's ForwardRequest
 * and the task events inside it.  The first input byte picks the message type, the rest is
 * decoded with ttrpc's bounded decoder (the one the ttrpc server uses for every payload); a
 * message that decodes is re-encoded, must decode again, and its second encoding must equal
 * the first (else the harness traps). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/services/ttrpc/events/v1/events.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "ttrpc/ttrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
    &containerd__task__v2__state_request__descriptor,
    &containerd__task__v2__create_task_request__descriptor,
    &containerd__task__v2__start_request__descriptor,
    &containerd__task__v2__delete_request__descriptor,
    &containerd__task__v2__pids_request__descriptor,
    &containerd__task__v2__pause_request__descriptor,
    &containerd__task__v2__resume_request__descriptor,
    &containerd__task__v2__checkpoint_task_request__descriptor,
    &containerd__task__v2__kill_request__descriptor,
    &containerd__task__v2__exec_process_request__descriptor,
    &containerd__task__v2__resize_pty_request__descriptor,
    &containerd__task__v2__close_iorequest__descriptor,
    &containerd__task__v2__update_task_request__descriptor,
    &containerd__task__v2__wait_request__descriptor,
    &containerd__task__v2__stats_request__descriptor,
    &containerd__task__v2__connect_request__descriptor,
    &containerd__task__v2__shutdown_request__descriptor,
    &containerd__services__events__ttrpc__v1__forward_request__descriptor,
    &containerd__events__task_create__descriptor,
    &containerd__events__task_exit__descriptor,
    &containerd__events__task_delete__descriptor,
};

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*len ? *len : 1);
	if (!b || protobuf_c_message_pack(m, b) != *len)
		__builtin_trap();
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	struct err e;
	ProtobufCMessage *m = ttrpc_msg_unpack(d, data + 1, size - 1, &e);
	if (!m)
		return 0;
	size_t n1, n2;
	uint8_t *b1 = pack(m, &n1);
	ProtobufCMessage *again = ttrpc_msg_unpack(d, b1, n1, &e);
	if (!again)
		__builtin_trap();
	uint8_t *b2 = pack(again, &n2);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0)
		__builtin_trap();
	free(b1);
	free(b2);
	ttrpc_msg_free(again);
	ttrpc_msg_free(m);
	return 0;
}
