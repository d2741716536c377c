/* Integration tests for ferry-gcs against hostile or unusual bridge input.  Each test starts
 * the real $BUILD/ferry-gcs binary as a child process on `hybrid:<tmp>/v.sock`, listens as
 * the host on `<tmp>/v.sock_1073741824` (common/vsock.h) and sends raw frames: short and
 * oversized frames (clean disconnect, then the agent dials again and a new connection is
 * served), invalid JSON, unknown RPC types, requests before / repeated negotiation, unknown
 * container ids, duplicate request ids.  It asserts the exact Result of each response, that
 * the agent stays alive, and the null-id shutdown / --once exits.  A UVM process with stdout
 * over a hybrid stdio port checks the ExecuteProcess dial path without containers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge/frame.h"
#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/vsock.h"

#define IO_TIMEOUT_MS 5000

struct fx {
	char dir[64];
	char addr_str[128];
	struct vsock_addr addr;
	int lfd;
	pid_t pid;
	int fd; /* current bridge connection (host side) */
};

static const char *build_dir(void)
{
	const char *b = getenv("BUILD");
	return b && *b ? b : "build";
}

static pid_t start_agent(struct fx *f, const char *extra)
{
	char bin[256], log[128], state[128], root[128];
	snprintf(bin, sizeof(bin), "%s/ferry-gcs", build_dir());
	snprintf(log, sizeof(log), "%s/gcs.log", f->dir);
	snprintf(state, sizeof(state), "%s/state", f->dir);
	snprintf(root, sizeof(root), "%s/root", f->dir);
	pid_t pid = fork();
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lf >= 0) {
			dup2(lf, 2);
			dup2(lf, 1);
		}
		if (extra)
			execl(bin, bin, "-v4", "--transport", f->addr_str, "--state-dir", state,
			      "--root", root, "--log-level", "debug", "--no-poweroff", extra,
			      (char *)NULL);
		else
			execl(bin, bin, "-v4", "--transport", f->addr_str, "--state-dir", state,
			      "--root", root, "--log-level", "debug", "--no-poweroff",
			      (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Accept the agent's next bridge connection (blocking fd). */
static int accept_conn(struct fx *f)
{
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	long long deadline = mono_ns() + IO_TIMEOUT_MS * 1000000ll;
	while (mono_ns() < deadline) {
		if (poll(&p, 1, 100) > 0) {
			struct err e;
			int fd = vsock_accept(f->lfd, &e);
			if (fd >= 0) {
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
				return fd;
			}
		}
	}
	return -1;
}

static int teardown(void **state);

static int setup_with(void **state, const char *extra)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e;
	f->lfd = f->fd = -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/gcsbad.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		*state = NULL;
		return -1;
	}
	snprintf(f->addr_str, sizeof(f->addr_str), "hybrid:%s/v.sock", f->dir);
	if (vsock_addr_parse(f->addr_str, &f->addr, &e) < 0 ||
	    (f->lfd = vsock_listen(&f->addr, GCS_BRIDGE_PORT, &e)) < 0) {
		fprintf(stderr, "listen: %s\n", e.msg);
		teardown(state);
		return -1;
	}
	f->pid = start_agent(f, extra);
	f->fd = accept_conn(f);
	if (f->fd < 0) {
		fprintf(stderr, "ferry-gcs did not connect (log in %s/gcs.log)\n", f->dir);
		teardown(state);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

static int setup_once(void **state)
{
	return setup_with(state, "--once");
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	*state = NULL;
	if (f->fd >= 0)
		close(f->fd);
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	if (f->lfd >= 0)
		vsock_unlisten(&f->addr, GCS_BRIDGE_PORT, f->lfd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (getenv("KEEP_TMP")) { /* debugging: keep the agent log */
		fprintf(stderr, "kept %s\n", f->dir);
		free(f);
		return 0;
	}
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->dir);
	free(f);
	return 0;
}

static void send_raw(int fd, uint32_t type, uint32_t size, uint64_t id, const char *json)
{
	uint8_t hdr[16];
	struct bridge_hdr h = {.type = type, .size = size, .id = id};
	bridge_hdr_encode(&h, hdr);
	struct err e;
	assert_int_equal(fd_write_all(fd, hdr, sizeof(hdr), &e), 0);
	if (json && *json)
		assert_int_equal(fd_write_all(fd, json, strlen(json), &e), 0);
}

static void send_req(int fd, uint32_t type, uint64_t id, const char *json)
{
	send_raw(fd, type, (uint32_t)(16 + strlen(json)), id, json);
}

/* Read one frame; returns the parsed JSON payload (caller decrefs) or NULL on EOF/timeout. */
static json_t *recv_frame(int fd, struct bridge_hdr *h)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
		return NULL;
	uint8_t hdr[16];
	struct err e;
	if (fd_read_all(fd, hdr, sizeof(hdr), &e) < 0)
		return NULL;
	bridge_hdr_decode(hdr, h);
	assert_true(h->size >= 16 && h->size <= BRIDGE_MAX_MSG);
	size_t n = h->size - 16;
	char *buf = malloc(n + 1);
	assert_int_equal(fd_read_all(fd, buf, n, &e), 0);
	buf[n] = '\0';
	json_error_t je;
	json_t *j = json_loadb(buf, n, 0, &je);
	if (!j)
		fprintf(stderr, "bad json from agent: %s\n", buf);
	free(buf);
	assert_non_null(j);
	return j;
}

/* Send a request and return the response (asserting type and id match). */
static json_t *call(int fd, uint32_t rpc, uint64_t id, const char *json)
{
	send_req(fd, bridge_request_type(rpc), id, json);
	struct bridge_hdr h;
	json_t *j = recv_frame(fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(rpc)));
	assert_int_equal(h.id, id);
	return j;
}

static int32_t result_of(json_t *j)
{
	json_t *r = json_object_get(j, "Result");
	assert_true(json_is_integer(r));
	return (int32_t)json_integer_value(r);
}

static void call_expect(int fd, uint32_t rpc, uint64_t id, const char *json, int32_t hr)
{
	json_t *j = call(fd, rpc, id, json);
	if (result_of(j) != hr)
		fprintf(stderr, "unexpected response: %s\n", json_dumps(j, 0));
	assert_int_equal(result_of(j), hr);
	json_decref(j);
}

#define NEG_BODY                                                                                   \
	"{\"ContainerId\":\"\",\"ActivityId\":\"00000000-0000-0000-0000-000000000000\","           \
	"\"MinimumVersion\":4,\"MaximumVersion\":4}\n"
#define BASE(id)                                                                                   \
	"{\"ContainerId\":\"" id "\",\"ActivityId\":\"00000000-0000-0000-0000-000000000000\"}\n"
#define NULL_ID "00000000-0000-0000-0000-000000000000"

static void negotiate(int fd)
{
	json_t *j = call(fd, RPC_NEGOTIATE_PROTOCOL, 0, NEG_BODY);
	assert_int_equal(result_of(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "Version")), 4);
	json_t *caps = json_object_get(j, "Capabilities");
	assert_string_equal(json_string_value(json_object_get(caps, "RuntimeOsType")), "Linux");
	json_t *gdc = json_object_get(caps, "GuestDefinedCapabilities");
	assert_true(json_is_object(gdc));
	assert_true(json_is_true(json_object_get(gdc, "SignalProcessSupported")));
	json_t *sv = json_array_get(json_object_get(caps, "SupportedSchemaVersions"), 0);
	assert_int_equal(json_integer_value(json_object_get(sv, "Major")), 2);
	assert_int_equal(json_integer_value(json_object_get(sv, "Minor")), 1);
	json_decref(j);
}

/* The host's end sees EOF / reset within the timeout. */
static void expect_disconnect(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_true(poll(&p, 1, IO_TIMEOUT_MS) > 0);
	char c[64];
	ssize_t n = read(fd, c, sizeof(c));
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void assert_alive(struct fx *f)
{
	assert_int_equal(waitpid(f->pid, NULL, WNOHANG), 0);
	assert_int_equal(kill(f->pid, 0), 0);
}

/* ---- tests ---- */

static void test_negotiate_ok(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	/* The Linux GCS answer, trailing zero GUID ActivityId echoed. */
	call_expect(f->fd, RPC_DUMP_STACKS, 1, BASE(NULL_ID), 0);
}

static void test_before_negotiation(void **state)
{
	struct fx *f = *state;
	json_t *j = call(f->fd, RPC_START, 5, BASE("c1"));
	assert_int_equal(result_of(j), HR_NOTIMPL);
	assert_string_equal(json_string_value(json_object_get(j, "ErrorMessage")),
	                    "bridge: function not supported, header type: Start");
	json_t *rec = json_array_get(json_object_get(j, "ErrorRecords"), 0);
	assert_int_equal(json_integer_value(json_object_get(rec, "Result")), HR_NOTIMPL);
	json_decref(j);
	call_expect(f->fd, RPC_DUMP_STACKS, 6, BASE(NULL_ID), HR_NOTIMPL);
	negotiate(f->fd);
}

static void test_second_negotiation(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 1, NEG_BODY, HR_NOTIMPL);
	call_expect(f->fd, RPC_DUMP_STACKS, 2, BASE(NULL_ID), 0);
}

static void test_version_range(void **state)
{
	struct fx *f = *state;
	call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 0,
	            "{\"ContainerId\":\"\",\"MinimumVersion\":5,\"MaximumVersion\":9}",
	            HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL);
	call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 1,
	            "{\"ContainerId\":\"\",\"MinimumVersion\":1,\"MaximumVersion\":3}",
	            HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL);
	/* Still unnegotiated: a good range now works. */
	negotiate(f->fd);
}

static void test_unknown_rpcs(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	call_expect(f->fd, RPC_UPDATE_CONTAINER, 1, BASE("c1"), HR_NOTIMPL);
	call_expect(f->fd, RPC_LIFECYCLE_NOTIFICATION, 2, BASE("c1"), HR_NOTIMPL);
	call_expect(f->fd, RPC_MODIFY_SERVICE_SETTINGS, 3, BASE(NULL_ID), HR_NOTIMPL);
	/* Garbage request types (request nibble, nonsense category/id/version). */
	send_req(f->fd, 0x10ABCDEFu, 4, BASE("c1"));
	struct bridge_hdr h;
	json_t *j = recv_frame(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, 0x20ABCDEFu);
	assert_int_equal(h.id, 4);
	assert_int_equal(result_of(j), HR_NOTIMPL);
	json_decref(j);
	/* A known RPC with the wrong version byte is a different type: not supported. */
	call_expect(f->fd, (RPC_START & ~BRIDGE_VER_MASK) | 2u, 5, BASE("c1"), HR_NOTIMPL);
	call_expect(f->fd, RPC_DUMP_STACKS, 6, BASE(NULL_ID), 0);
	assert_alive(f);
}

static void test_invalid_json(void **state)
{
	struct fx *f = *state;
	/* Before negotiation too: the base is parsed first. */
	call_expect(f->fd, RPC_NEGOTIATE_PROTOCOL, 0, "{not json", HR_VMCOMPUTE_INVALID_JSON);
	negotiate(f->fd);
	call_expect(f->fd, RPC_START, 1, "[1,2,3]", HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_START, 2, "", HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 3,
	            "{\"ContainerId\":\"c1\",\"ProcessId\":\"twelve\"}", HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_SIGNAL_PROCESS, 4, "{\"ContainerId\":\"c1\",\"ProcessId\":-1}",
	            HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_EXECUTE_PROCESS, 5,
	            "{\"ContainerId\":\"c1\",\"Settings\":{\"ProcessParameters\":\"{bad\"}}",
	            HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_CREATE, 6,
	            "{\"ContainerId\":\"c1\",\"ContainerConfig\":\"{\\\"SchemaVersion\\\":"
	            "{\\\"Major\\\":1,\\\"Minor\\\":0},\\\"OciSpecification\\\":{}}\"}",
	            HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_START, 7, "{\"ContainerId\":\"c1\",\"ActivityId\":\"not-a-guid\"}",
	            HR_VMCOMPUTE_INVALID_JSON);
	call_expect(f->fd, RPC_DUMP_STACKS, 8, BASE(NULL_ID), 0);
	assert_alive(f);
}

static void test_unknown_container(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	call_expect(f->fd, RPC_START, 1, BASE("nosuch"), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 2,
	            "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"TimeoutInMs\":4294967295}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_SIGNAL_PROCESS, 3,
	            "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"Options\":{\"Signal\":15}}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_SIGNAL_PROCESS, 4,
	            "{\"ContainerId\":\"" NULL_ID "\",\"ProcessId\":1}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_RESIZE_CONSOLE, 5,
	            "{\"ContainerId\":\"nosuch\",\"ProcessId\":12,\"Height\":1,\"Width\":2}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_SHUTDOWN_FORCED, 6, BASE("nosuch"), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_DELETE_CONTAINER_STATE, 7, BASE("nosuch"),
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_GET_PROPERTIES, 8,
	            "{\"ContainerId\":\"nosuch\",\"Query\":\"{\\\"PropertyTypes\\\":["
	            "\\\"ProcessList\\\"]}\"}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_GET_PROPERTIES, 9, BASE(NULL_ID), HR_FAIL);
	call_expect(f->fd, RPC_EXECUTE_PROCESS, 10,
	            "{\"ContainerId\":\"nosuch\",\"Settings\":{\"ProcessParameters\":\"{}\","
	            "\"VsockStdioRelaySettings\":{}}}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	/* The UVM process table: unknown pid. */
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 11,
	            "{\"ContainerId\":\"" NULL_ID "\",\"ProcessId\":999999,\"TimeoutInMs\":0}",
	            HR_ERR_NOT_FOUND);
	assert_alive(f);
}

static void test_modify_settings_rejects(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 1,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Request\":{\"RequestType\":\"Add\","
	            "\"ResourceType\":\"NetworkNamespace\",\"Settings\":{}}}",
	            HR_FAIL);
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 2,
	            "{\"ContainerId\":\"c1\",\"Request\":{\"ResourceType\":\"MappedVirtualDisk\","
	            "\"Settings\":{\"MountPath\":\"/x\"}}}",
	            HR_FAIL);
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 3,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Request\":{\"RequestType\":\"Update\","
	            "\"ResourceType\":\"ContainerConstraints\",\"Settings\":{}}}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 4,
	            "{\"ContainerId\":\"nosuch\",\"Request\":{\"RequestType\":\"Update\","
	            "\"ResourceType\":\"ContainerConstraints\",\"Settings\":{}}}",
	            HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 5,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Request\":{\"ResourceType\":\"Bogus\"}}",
	            HR_FAIL);
	/* Wrong settings type for a known resource. */
	call_expect(f->fd, RPC_MODIFY_SETTINGS, 6,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Request\":{\"ResourceType\":"
	            "\"MappedVirtualDisk\",\"Settings\":{\"Lun\":\"one\"}}}",
	            HR_VMCOMPUTE_INVALID_JSON);
	/* SCSI disk on a controller this machine does not have: a clear, bounded failure. */
	long long t0 = mono_ns();
	json_t *j = call(f->fd, RPC_MODIFY_SETTINGS, 7,
	                 "{\"ContainerId\":\"" NULL_ID "\",\"Request\":{\"ResourceType\":"
	                 "\"MappedVirtualDisk\",\"Settings\":{\"MountPath\":\"/run/nodisk\","
	                 "\"Lun\":3,\"Controller\":9}}}");
	assert_int_equal(result_of(j), HR_FAIL);
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "ErrorMessage")), "controller 9"));
	json_decref(j);
	assert_true(mono_ns() - t0 < 2000000000ll);
	call_expect(f->fd, RPC_DUMP_STACKS, 8, BASE(NULL_ID), 0);
}

static void test_duplicate_ids(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	/* The guest does not interpret ids: both requests are answered, each with id 7. */
	send_req(f->fd, bridge_request_type(RPC_START), 7, BASE("dup"));
	send_req(f->fd, bridge_request_type(RPC_DUMP_STACKS), 7, BASE(NULL_ID));
	int got_start = 0, got_dump = 0;
	for (int i = 0; i < 2; i++) {
		struct bridge_hdr h;
		json_t *j = recv_frame(f->fd, &h);
		assert_non_null(j);
		assert_int_equal(h.id, 7);
		if (h.type == bridge_response_type(bridge_request_type(RPC_START))) {
			assert_int_equal(result_of(j), HR_VMCOMPUTE_SYSTEM_NOT_FOUND);
			got_start++;
		} else {
			assert_int_equal(
			    h.type, bridge_response_type(bridge_request_type(RPC_DUMP_STACKS)));
			assert_int_equal(result_of(j), 0);
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
static void check_reconnect_after(struct fx *f, uint32_t size)
{
	negotiate(f->fd);
	send_raw(f->fd, bridge_request_type(RPC_START), size, 1, NULL);
	expect_disconnect(f->fd);
	close(f->fd);
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	assert_alive(f);
	call_expect(f->fd, RPC_START, 0, BASE("x"), HR_NOTIMPL); /* PvInvalid again */
	negotiate(f->fd);
	call_expect(f->fd, RPC_DUMP_STACKS, 1, BASE(NULL_ID), 0);
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
	struct fx *f = *state;
	negotiate(f->fd);
	for (int i = 0; i < 3; i++) {
		close(f->fd);
		f->fd = accept_conn(f);
		assert_true(f->fd >= 0);
		negotiate(f->fd);
	}
	assert_alive(f);
}

static void test_uvm_process_stdio(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	struct err e;
	int lout = vsock_listen(&f->addr, GCS_FIRST_STDIO_PORT, &e);
	assert_true(lout >= 0);
	send_req(
	    f->fd, bridge_request_type(RPC_EXECUTE_PROCESS), 1,
	    "{\"ContainerId\":\"" NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	    "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"echo 'hi <there>'; exit 3\\\"],"
	    "\\\"CreateStdOutPipe\\\":true}\",\"VsockStdioRelaySettings\":{\"StdOut\":1073741825}}"
	    "}");
	struct pollfd p = {.fd = lout, .events = POLLIN};
	assert_true(poll(&p, 1, IO_TIMEOUT_MS) > 0);
	int out = vsock_accept(lout, &e);
	assert_true(out >= 0);
	struct bridge_hdr h;
	json_t *j = recv_frame(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.id, 1);
	assert_int_equal(result_of(j), 0);
	json_int_t pid = json_integer_value(json_object_get(j, "ProcessId"));
	assert_true(pid > 0);
	json_decref(j);
	char buf[64] = "";
	size_t n = 0;
	fcntl(out, F_SETFL, fcntl(out, F_GETFL) & ~O_NONBLOCK);
	for (;;) {
		ssize_t r = read(out, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	assert_string_equal(buf, "hi <there>\n");
	close(out);
	vsock_unlisten(&f->addr, GCS_FIRST_STDIO_PORT, lout);
	char wait[160];
	snprintf(wait, sizeof(wait),
	         "{\"ContainerId\":\"" NULL_ID "\",\"ProcessId\":%lld,\"TimeoutInMs\":4294967295}",
	         (long long)pid);
	j = call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(result_of(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 3);
	json_decref(j);
	/* Collected once: the UVM process is forgotten. */
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 3, wait, HR_ERR_NOT_FOUND);
}

static void test_stdio_port_not_listening(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	call_expect(f->fd, RPC_EXECUTE_PROCESS, 1,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	            "\"{\\\"CommandArgs\\\":[\\\"true\\\"],\\\"CreateStdOutPipe\\\":true}\","
	            "\"VsockStdioRelaySettings\":{\"StdOut\":1073741900}}}",
	            HR_FAIL);
	/* Flag set but no port given. */
	call_expect(f->fd, RPC_EXECUTE_PROCESS, 2,
	            "{\"ContainerId\":\"" NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	            "\"{\\\"CommandArgs\\\":[\\\"true\\\"],\\\"CreateStdInPipe\\\":true}\","
	            "\"VsockStdioRelaySettings\":{}}}",
	            HR_FAIL);
	call_expect(f->fd, RPC_DUMP_STACKS, 3, BASE(NULL_ID), 0);
}

/* A WaitForProcess outstanding when the connection drops is answered (with its old id) on
 * the next connection, after that connection's NegotiateProtocol response. */
static void test_wait_survives_reconnect(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	json_t *j = call(f->fd, RPC_EXECUTE_PROCESS, 1,
	                 "{\"ContainerId\":\"" NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	                 "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"sleep 0.3; "
	                 "exit 7\\\"]}\",\"VsockStdioRelaySettings\":{}}}");
	assert_int_equal(result_of(j), 0);
	json_int_t pid = json_integer_value(json_object_get(j, "ProcessId"));
	json_decref(j);
	char wait[160];
	snprintf(wait, sizeof(wait),
	         "{\"ContainerId\":\"" NULL_ID "\",\"ProcessId\":%lld,\"TimeoutInMs\":4294967295}",
	         (long long)pid);
	send_req(f->fd, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42, wait);
	/* Drop the bridge and stop listening while the process exits. */
	close(f->fd);
	f->fd = -1;
	vsock_unlisten(&f->addr, GCS_BRIDGE_PORT, f->lfd);
	f->lfd = -1;
	usleep(600 * 1000);
	assert_alive(f);
	struct err e;
	f->lfd = vsock_listen(&f->addr, GCS_BRIDGE_PORT, &e);
	assert_true(f->lfd >= 0);
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	/* Nothing but the queued answer's turn after negotiation: first the negotiation. */
	negotiate(f->fd);
	struct bridge_hdr h;
	j = recv_frame(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(RPC_WAIT_FOR_PROCESS)));
	assert_int_equal(h.id, 42);
	assert_int_equal(result_of(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 7);
	json_decref(j);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

static void test_uvm_shutdown(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	send_req(f->fd, bridge_request_type(RPC_SHUTDOWN_GRACEFUL), 1, BASE(NULL_ID));
	/* No response: the connection just ends, and the agent exits cleanly. */
	expect_disconnect(f->fd);
	int st = wait_exit(f->pid, IO_TIMEOUT_MS);
	assert_true(st != -1);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_once_exits(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	close(f->fd);
	f->fd = -1;
	int st = wait_exit(f->pid, IO_TIMEOUT_MS);
	assert_true(st != -1);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	char bin[256];
	snprintf(bin, sizeof(bin), "%s/ferry-gcs", build_dir());
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
