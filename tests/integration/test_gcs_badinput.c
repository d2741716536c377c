/* Integration tests for ferry-gcs against hostile or unusual bridge input.  Each test starts
 * the real $BUILD/ferry-gcs binary as a child process on `hybrid:<tmp>/v.sock`, listens as the
 * host on `<tmp>/v.sock_1073741824` (the harness in tests/lib/agent.h) and sends raw frames:
 * short and oversized frames (clean disconnect, then the agent dials again and a new connection
 * is served), invalid JSON, unknown RPC types, requests before / repeated negotiation, unknown
 * container ids, duplicate request ids.  It asserts the exact Result of each response, that the
 * agent stays alive, and the null-id shutdown / --once exits.  A UVM process with stdout over a
 * hybrid stdio port checks the ExecuteProcess dial path without containers. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "tests/lib/agent.h"

static int setup(void **state)
{
	*state = agent_start("gcsbad", NULL);
	return *state ? 0 : -1;
}

static int setup_once(void **state)
{
	*state = agent_start("gcsbad", "--once");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	agent_stop(*state);
	*state = NULL;
	return 0;
}

/* ---- tests ---- */

static void test_negotiate_ok(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	/* The Linux GCS answer, trailing zero GUID ActivityId echoed. */
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 1, AGENT_BASE(AGENT_NULL_ID), 0);
}

static void test_before_negotiation(void **state)
{
	struct agent *f = *state;
	json_t *j = agent_call(f->fd, RPC_START, 5, AGENT_BASE("c1"));
	assert_int_equal(agent_result(j), HR_NOTIMPL);
	assert_string_equal(json_string_value(json_object_get(j, "ErrorMessage")),
	                    "bridge: function not supported, header type: Start");
	json_t *rec = json_array_get(json_object_get(j, "ErrorRecords"), 0);
	assert_int_equal(json_integer_value(json_object_get(rec, "Result")), HR_NOTIMPL);
	json_decref(j);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 6, AGENT_BASE(AGENT_NULL_ID), HR_NOTIMPL);
	agent_negotiate(f->fd);
}

static void test_second_negotiation(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 1, AGENT_NEG_BODY, HR_NOTIMPL);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 2, AGENT_BASE(AGENT_NULL_ID), 0);
}

static void test_version_range(void **state)
{
	struct agent *f = *state;
	agent_call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 0,
	                  "{\"ContainerId\":\"\",\"MinimumVersion\":5,\"MaximumVersion\":9}",
	                  HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL);
	agent_call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 1,
	                  "{\"ContainerId\":\"\",\"MinimumVersion\":1,\"MaximumVersion\":3}",
	                  HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL);
	/* Still unnegotiated: a good range now works. */
	agent_negotiate(f->fd);
}

static void test_unknown_rpcs(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_UPDATE_CONTAINER, 1, AGENT_BASE("c1"), HR_NOTIMPL);
	agent_call_expect(f->fd, RPC_LIFECYCLE_NOTIFICATION, 2, AGENT_BASE("c1"), HR_NOTIMPL);
	agent_call_expect(f->fd, RPC_MODIFY_SERVICE_SETTINGS, 3, AGENT_BASE(AGENT_NULL_ID),
	                  HR_NOTIMPL);
	/* Garbage request types (request nibble, nonsense category/id/version). */
	agent_send_req(f->fd, 0x10ABCDEFu, 4, AGENT_BASE("c1"));
	struct bridge_hdr h;
	json_t *j = agent_recv(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, 0x20ABCDEFu);
	assert_int_equal(h.id, 4);
	assert_int_equal(agent_result(j), HR_NOTIMPL);
	json_decref(j);
	/* A known RPC with the wrong version byte is a different type: not supported. */
	agent_call_expect(f->fd, (RPC_START & ~BRIDGE_VER_MASK) | 2u, 5, AGENT_BASE("c1"),
	                  HR_NOTIMPL);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 6, AGENT_BASE(AGENT_NULL_ID), 0);
	agent_assert_alive(f);
}

static void test_invalid_json(void **state)
{
	struct agent *f = *state;
	/* Before negotiation too: the base is parsed first. */
	agent_call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 0, "{not json", HR_VMCOMPUTE_INVALID_JSON);
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_START, 1, "[1,2,3]", HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_START, 2, "", HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 3,
	                  "{\"ContainerId\":\"c1\",\"ProcessId\":\"twelve\"}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_SIGNAL_PROCESS, 4, "{\"ContainerId\":\"c1\",\"ProcessId\":-1}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_EXECUTE_PROCESS, 5,
	                  "{\"ContainerId\":\"c1\",\"Settings\":{\"ProcessParameters\":\"{bad\"}}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_CREATE, 6,
	                  "{\"ContainerId\":\"c1\",\"ContainerConfig\":\"{\\\"SchemaVersion\\\":"
	                  "{\\\"Major\\\":1,\\\"Minor\\\":0},\\\"OciSpecification\\\":{}}\"}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_START, 7,
	                  "{\"ContainerId\":\"c1\",\"ActivityId\":\"not-a-guid\"}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 8, AGENT_BASE(AGENT_NULL_ID), 0);
	agent_assert_alive(f);
}

static void test_unknown_container(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_START, 1, AGENT_BASE("nosuch"), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(
	    f->fd, RPC_WAIT_FOR_PROCESS, 2,
	    "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"TimeoutInMs\":4294967295}",
	    HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(
	    f->fd, RPC_SIGNAL_PROCESS, 3,
	    "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"Options\":{\"Signal\":15}}",
	    HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_SIGNAL_PROCESS, 4,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"ProcessId\":1}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_RESIZE_CONSOLE, 5,
	                  "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"Height\":1,\"Width\":2}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_SHUTDOWN_FORCED, 6, AGENT_BASE("nosuch"),
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_DELETE_CONTAINER_STATE, 7, AGENT_BASE("nosuch"),
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_GET_PROPERTIES, 8,
	                  "{\"ContainerId\":\"nosuch\",\"Query\":\"{\\\"PropertyTypes\\\":["
	                  "\\\"ProcessList\\\"]}\"}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_GET_PROPERTIES, 9, AGENT_BASE(AGENT_NULL_ID), HR_FAIL);
	agent_call_expect(f->fd, RPC_EXECUTE_PROCESS, 10,
	                  "{\"ContainerId\":\"nosuch\",\"Settings\":{\"ProcessParameters\":\"{}\","
	                  "\"VsockStdioRelaySettings\":{}}}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	/* The UVM process table: unknown pid. */
	agent_call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 11,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"ProcessId\":999999,\"TimeoutInMs\":0}",
	                  HR_ERR_NOT_FOUND);
	agent_assert_alive(f);
}

static void test_modify_settings_rejects(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_MODIFY_SETTINGS, 1,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"Request\":{\"RequestType\":\"Add\","
	                  "\"ResourceType\":\"NetworkNamespace\",\"Settings\":{}}}",
	                  HR_FAIL);
	agent_call_expect(
	    f->fd, RPC_MODIFY_SETTINGS, 2,
	    "{\"ContainerId\":\"c1\",\"Request\":{\"ResourceType\":\"MappedVirtualDisk\","
	    "\"Settings\":{\"MountPath\":\"/x\"}}}",
	    HR_FAIL);
	agent_call_expect(f->fd, RPC_MODIFY_SETTINGS, 3,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"Request\":{\"RequestType\":\"Update\","
	                  "\"ResourceType\":\"ContainerConstraints\",\"Settings\":{}}}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_MODIFY_SETTINGS, 4,
	                  "{\"ContainerId\":\"nosuch\",\"Request\":{\"RequestType\":\"Update\","
	                  "\"ResourceType\":\"ContainerConstraints\",\"Settings\":{}}}",
	                  HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	agent_call_expect(f->fd, RPC_MODIFY_SETTINGS, 5,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"Request\":{\"ResourceType\":\"Bogus\"}}",
	                  HR_FAIL);
	/* Wrong settings type for a known resource. */
	agent_call_expect(f->fd, RPC_MODIFY_SETTINGS, 6,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"Request\":{\"ResourceType\":"
	                  "\"MappedVirtualDisk\",\"Settings\":{\"Lun\":\"one\"}}}",
	                  HR_VMCOMPUTE_INVALID_JSON);
	/* SCSI disk on a controller this machine does not have: a clear, bounded failure. */
	long long t0 = mono_ns();
	json_t *j =
	    agent_call(f->fd, RPC_MODIFY_SETTINGS, 7,
	               "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"Request\":{\"ResourceType\":"
	               "\"MappedVirtualDisk\",\"Settings\":{\"MountPath\":\"/run/nodisk\","
	               "\"Lun\":3,\"Controller\":9}}}");
	assert_int_equal(agent_result(j), HR_FAIL);
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "ErrorMessage")), "controller 9"));
	json_decref(j);
	assert_true(mono_ns() - t0 < 2000000000ll);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 8, AGENT_BASE(AGENT_NULL_ID), 0);
}

static void test_duplicate_ids(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	/* The guest does not interpret ids: both requests are answered, each with id 7. */
	agent_send_req(f->fd, bridge_request_type(RPC_START), 7, AGENT_BASE("dup"));
	agent_send_req(f->fd, bridge_request_type(RPC_DUMP_STACKS), 7, AGENT_BASE(AGENT_NULL_ID));
	int got_start = 0, got_dump = 0;
	for (int i = 0; i < 2; i++) {
		struct bridge_hdr h;
		json_t *j = agent_recv(f->fd, &h);
		assert_non_null(j);
		assert_int_equal(h.id, 7);
		if (h.type == bridge_response_type(bridge_request_type(RPC_START))) {
			assert_int_equal(agent_result(j), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
			got_start++;
		} else {
			assert_int_equal(
			    h.type, bridge_response_type(bridge_request_type(RPC_DUMP_STACKS)));
			assert_int_equal(agent_result(j), 0);
			assert_true(json_is_string(json_object_get(j, "GuestStacks")));
			got_dump++;
		}
		json_decref(j);
	}
	assert_int_equal(got_start, 1);
	assert_int_equal(got_dump, 1);
}

/* Bad framing: the agent drops the connection, stays alive, dials again, and the new
 * connection starts unnegotiated. */
static void check_reconnect_after(struct agent *f, uint32_t size)
{
	agent_negotiate(f->fd);
	agent_send_raw(f->fd, bridge_request_type(RPC_START), size, 1, NULL);
	agent_expect_disconnect(f->fd);
	close(f->fd);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_assert_alive(f);
	agent_call_expect(f->fd, RPC_START, 0, AGENT_BASE("x"), HR_NOTIMPL); /* PvInvalid again */
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 1, AGENT_BASE(AGENT_NULL_ID), 0);
}

static void test_short_frame(void **state)
{
	check_reconnect_after(*state, 8);
}

static void test_zero_size_frame(void **state)
{
	check_reconnect_after(*state, 0);
}

static void test_oversized_frame(void **state)
{
	check_reconnect_after(*state, 17u << 20);
}

static void test_peer_close_reconnect(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	for (int i = 0; i < 3; i++) {
		close(f->fd);
		f->fd = agent_accept(f);
		assert_true(f->fd >= 0);
		agent_negotiate(f->fd);
	}
	agent_assert_alive(f);
}

static void test_uvm_process_stdio(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	struct err e;
	int lout = vsock_listen(&f->addr, GCS_FIRST_STDIO_PORT, &e);
	assert_true(lout >= 0);
	agent_send_req(
	    f->fd, bridge_request_type(RPC_EXECUTE_PROCESS), 1,
	    "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	    "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"echo 'hi <there>'; exit 3\\\"],"
	    "\\\"CreateStdOutPipe\\\":true}\",\"VsockStdioRelaySettings\":{\"StdOut\":1073741825}}"
	    "}");
	int out = agent_accept_on(lout);
	assert_true(out >= 0);
	struct bridge_hdr h;
	json_t *j = agent_recv(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.id, 1);
	assert_int_equal(agent_result(j), 0);
	json_int_t pid = json_integer_value(json_object_get(j, "ProcessId"));
	assert_true(pid > 0);
	json_decref(j);
	char buf[64];
	agent_read_to_eof(out, buf, sizeof(buf));
	assert_string_equal(buf, "hi <there>\n");
	close(out);
	vsock_unlisten(&f->addr, GCS_FIRST_STDIO_PORT, lout);
	char wait[160];
	agent_wait_body(wait, sizeof(wait), (long long)pid);
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 3);
	json_decref(j);
	/* Collected once, but still retained (a response can die in a cut): the same code. */
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 3, wait);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 3);
	json_decref(j);
}

static void test_stdio_port_not_listening(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_EXECUTE_PROCESS, 1,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"Settings\":{\"ProcessParameters\":"
	                  "\"{\\\"CommandArgs\\\":[\\\"true\\\"],\\\"CreateStdOutPipe\\\":true}\","
	                  "\"VsockStdioRelaySettings\":{\"StdOut\":1073741900}}}",
	                  HR_FAIL);
	/* Flag set but no port given. */
	agent_call_expect(f->fd, RPC_EXECUTE_PROCESS, 2,
	                  "{\"ContainerId\":\"" AGENT_NULL_ID
	                  "\",\"Settings\":{\"ProcessParameters\":"
	                  "\"{\\\"CommandArgs\\\":[\\\"true\\\"],\\\"CreateStdInPipe\\\":true}\","
	                  "\"VsockStdioRelaySettings\":{}}}",
	                  HR_FAIL);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 3, AGENT_BASE(AGENT_NULL_ID), 0);
}

/* A WaitForProcess outstanding when the connection drops is answered (with its old id) on
 * the next connection, after that connection's NegotiateProtocol response. */
static void test_wait_survives_reconnect(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	json_t *j =
	    agent_call(f->fd, RPC_EXECUTE_PROCESS, 1,
	               "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	               "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"sleep 0.3; "
	               "exit 7\\\"]}\",\"VsockStdioRelaySettings\":{}}}");
	assert_int_equal(agent_result(j), 0);
	json_int_t pid = json_integer_value(json_object_get(j, "ProcessId"));
	json_decref(j);
	char wait[160];
	agent_wait_body(wait, sizeof(wait), (long long)pid);
	agent_send_req(f->fd, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42, wait);
	/* Drop the bridge and stop listening while the process exits. */
	close(f->fd);
	f->fd = -1;
	vsock_unlisten(&f->addr, GCS_BRIDGE_PORT, f->lfd);
	f->lfd = -1;
	usleep(600 * 1000);
	agent_assert_alive(f);
	struct err e;
	f->lfd = vsock_listen(&f->addr, GCS_BRIDGE_PORT, &e);
	assert_true(f->lfd >= 0);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	/* Nothing but the queued answer's turn after negotiation: first the negotiation. */
	agent_negotiate(f->fd);
	struct bridge_hdr h;
	j = agent_recv(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(RPC_WAIT_FOR_PROCESS)));
	assert_int_equal(h.id, 42);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 7);
	json_decref(j);
}

static void test_uvm_shutdown(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_send_req(f->fd, bridge_request_type(RPC_SHUTDOWN_GRACEFUL), 1,
	               AGENT_BASE(AGENT_NULL_ID));
	/* No response: the connection just ends, and the agent exits cleanly. */
	agent_expect_disconnect(f->fd);
	int st = agent_wait_exit(f->pid, AGENT_IO_TIMEOUT_MS);
	assert_true(st != -1);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_once_exits(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	close(f->fd);
	f->fd = -1;
	int st = agent_wait_exit(f->pid, AGENT_IO_TIMEOUT_MS);
	assert_true(st != -1);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	char bin[256];
	snprintf(bin, sizeof(bin), "%s/ferry-gcs", agent_build_dir());
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_negotiate_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_before_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_version_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_rpcs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_container, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modify_settings_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_size_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_close_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uvm_process_stdio, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdio_port_not_listening, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_survives_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uvm_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_once_exits, setup_once, teardown),
	};
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "%s not built\n", bin);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
