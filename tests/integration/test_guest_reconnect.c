/* Integration tests for ferry-gcs surviving the move (issue 4, docs/stdio-resume.md): the
 * real $BUILD/ferry-gcs runs as a child on `hybrid:<tmp>/v.sock`; the test plays the host with
 * raw bridge frames and stdio listeners (common/vsock.h).  It starts UVM processes, cuts every
 * connection (bridge first), re-listens on the same ports, accepts the re-dials and
 * renegotiates with and without FerryStdioResume, answering HELLO with READY at a chosen
 * offset.  Checked: exactly-once output and stdin after a resume; hcsshim's tail replay
 * without the capability; queued wait responses after the NegotiateProtocol response with
 * their original id; exit codes of processes that exited in the blackout; the wake port. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge/frame.h"
#include "bridge/proto.h"
#include "bridge/resume.h"
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/gcsre.XXXXXX");
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

/* ---- tests ---- */

#define NEG_RESUME_BODY                                                                            \
	"{\"ContainerId\":\"\",\"ActivityId\":\"00000000-0000-0000-0000-000000000000\","           \
	"\"MinimumVersion\":4,\"MaximumVersion\":4,\"Ferry\":{\"StdioResume\":1}}\n"

#define PORT_IN  (GCS_FIRST_STDIO_PORT + 10)
#define PORT_OUT (GCS_FIRST_STDIO_PORT + 11)

static void negotiate_resume(int fd)
{
	json_t *j = call(fd, RPC_NEGOTIATE_PROTOCOL, 0, NEG_RESUME_BODY);
	assert_int_equal(result_of(j), 0);
	json_t *gdc =
	    json_object_get(json_object_get(j, "Capabilities"), "GuestDefinedCapabilities");
	assert_true(json_is_true(json_object_get(gdc, "FerryStdioResume")));
	json_decref(j);
}

/* Accept one connection on a listener (blocking fd), or -1. */
static int accept_on(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
		return -1;
	struct err e;
	int fd = vsock_accept(lfd, &e);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static void read_exact(int fd, void *p, size_t n)
{
	struct pollfd q = {.fd = fd, .events = POLLIN};
	assert_true(poll(&q, 1, IO_TIMEOUT_MS) > 0);
	struct err e;
	assert_int_equal(fd_read_all(fd, p, n, &e), 0);
}

static void expect_hello(int fd, uint16_t flags, uint32_t port, uint64_t offset)
{
	uint8_t m[RESUME_HELLO_LEN];
	struct resume_hello h;
	struct err e;
	read_exact(fd, m, sizeof(m));
	assert_int_equal(resume_hello_decode(m, sizeof(m), &h, &e), RESUME_HELLO_LEN);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.port, port);
	assert_int_equal(h.offset, offset);
}

static void send_ready(int fd, uint64_t offset)
{
	uint8_t m[RESUME_READY_LEN];
	struct resume_ready r = {.version = RESUME_VERSION, .offset = offset};
	resume_ready_encode(&r, m);
	struct err e;
	assert_int_equal(fd_write_all(fd, m, sizeof(m), &e), 0);
}

static void send_ack(int fd, uint64_t offset)
{
	uint8_t m[RESUME_ACK_LEN];
	resume_ack_encode(offset, m);
	struct err e;
	assert_int_equal(fd_write_all(fd, m, sizeof(m), &e), 0);
}

static void expect_data(int fd, const char *want)
{
	char buf[256];
	size_t n = strlen(want);
	assert_true(n < sizeof(buf));
	read_exact(fd, buf, n);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/* Nothing arrives on fd within ms. */
static void expect_silence(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, ms), 0);
}

static json_int_t exec_uvm(int fd, uint64_t id, const char *cmd, bool in, bool out)
{
	char body[1024];
	snprintf(body, sizeof(body),
	         "{\"ContainerId\":\"" NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	         "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"%s\\\"],"
	         "\\\"CreateStdInPipe\\\":%s,\\\"CreateStdOutPipe\\\":%s}\","
	         "\"VsockStdioRelaySettings\":{\"StdIn\":%u,\"StdOut\":%u}}}",
	         cmd, in ? "true" : "false", out ? "true" : "false", in ? PORT_IN : 0,
	         out ? PORT_OUT : 0);
	send_req(fd, bridge_request_type(RPC_EXECUTE_PROCESS), id, body);
	return 0;
}

static json_int_t exec_result(int fd, uint64_t id)
{
	struct bridge_hdr h;
	json_t *j = recv_frame(fd, &h);
	assert_non_null(j);
	assert_int_equal(h.id, id);
	assert_int_equal(result_of(j), 0);
	json_int_t pid = json_integer_value(json_object_get(j, "ProcessId"));
	assert_true(pid > 0);
	json_decref(j);
	return pid;
}

static void wait_body(char *buf, size_t n, json_int_t pid)
{
	snprintf(buf, n,
	         "{\"ContainerId\":\"" NULL_ID "\",\"ProcessId\":%lld,\"TimeoutInMs\":4294967295}",
	         (long long)pid);
}

/* Cut the bridge (first, so the agent knows the host changed) and then `a` and `b`. */
static void cut(struct fx *f, int *a, int *b)
{
	close(f->fd);
	f->fd = -1;
	if (a && *a >= 0) {
		close(*a);
		*a = -1;
	}
	if (b && *b >= 0) {
		close(*b);
		*b = -1;
	}
}

/* Resume: stdout and stdin of `cat` continue exactly once across a cut, with READY at the
 * offset the host delivered (`ready_out`), below what the guest had sent. */
static void run_resume(struct fx *f, bool host_lost_tail)
{
	struct err e;
	negotiate_resume(f->fd);
	int lin = vsock_listen(&f->addr, PORT_IN, &e);
	int lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(lin >= 0 && lout >= 0);
	exec_uvm(f->fd, 1, "cat", true, true);
	int in = accept_on(lin);
	assert_true(in >= 0);
	expect_hello(in, RESUME_FLAG_INPUT | RESUME_FLAG_FIRST, PORT_IN, 0);
	int out = accept_on(lout);
	assert_true(out >= 0);
	json_int_t pid = exec_result(f->fd, 1);
	expect_hello(out, RESUME_FLAG_FIRST, PORT_OUT, 0);
	send_ready(in, 0);
	send_ready(out, 0);

	assert_int_equal(fd_write_all(in, "aaaa\n", 5, &e), 0);
	expect_data(out, "aaaa\n");
	send_ack(out, 5);
	/* the guest acknowledges stdin it wrote into the pipe (within 5 ms) */
	uint8_t ack[8];
	read_exact(in, ack, 8);
	uint64_t off;
	assert_int_equal(resume_ack_decode(ack, 8, &off), 8);
	assert_true(off == 5);
	assert_int_equal(fd_write_all(in, "cccc\n", 5, &e), 0);
	expect_data(out, "cccc\n"); /* received, not acknowledged */
	read_exact(in, ack, 8);
	resume_ack_decode(ack, 8, &off);
	assert_true(off == 10);
	usleep(20000); /* the ack of offset 5 has reached the guest */

	cut(f, &in, &out);
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	/* no stdio re-dial is answered before the bridge is renegotiated */
	struct pollfd p = {.fd = lout, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 50), 0);
	negotiate_resume(f->fd);
	out = accept_on(lout);
	assert_true(out >= 0);
	expect_hello(out, 0, PORT_OUT, 5); /* retained floor: the last ack */
	in = accept_on(lin);
	assert_true(in >= 0);
	expect_hello(in, RESUME_FLAG_INPUT, PORT_IN, 10); /* stdin written into the pipe */
	send_ready(in, 10);
	send_ready(out, host_lost_tail ? 5 : 10);
	if (host_lost_tail)
		expect_data(out, "cccc\n"); /* re-sent from the host's offset */
	assert_int_equal(fd_write_all(in, "bbbb\n", 5, &e), 0);
	expect_data(out, "bbbb\n");
	send_ack(out, 15);
	/* end: stdin EOF (half-close) -> cat exits -> stdout EOF -> final ack -> exit */
	shutdown(in, SHUT_WR);
	char c;
	struct pollfd q = {.fd = out, .events = POLLIN};
	assert_true(poll(&q, 1, IO_TIMEOUT_MS) > 0);
	assert_int_equal(read(out, &c, 1), 0);
	send_ack(out, 15);
	close(out);
	char wait[160];
	wait_body(wait, sizeof(wait), pid);
	json_t *j = call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(result_of(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 0);
	json_decref(j);
	close(in);
	vsock_unlisten(&f->addr, PORT_IN, lin);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
}

static void test_resume_exactly_once(void **state)
{
	run_resume(*state, false);
}

static void test_resume_host_lost_tail(void **state)
{
	run_resume(*state, true);
}

/* Without the capability: no HELLO, and the retained tail is sent again after a re-dial. */
static void test_plain_tail_replay(void **state)
{
	struct fx *f = *state;
	struct err e;
	negotiate(f->fd);
	int lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(lout >= 0);
	exec_uvm(f->fd, 1, "echo first; sleep 0.4; echo second", false, true);
	int out = accept_on(lout);
	assert_true(out >= 0);
	json_int_t pid = exec_result(f->fd, 1);
	expect_data(out, "first\n");
	cut(f, &out, NULL);
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	negotiate(f->fd);
	out = accept_on(lout);
	assert_true(out >= 0);
	char buf[64];
	size_t n = 0;
	for (;;) {
		struct pollfd q = {.fd = out, .events = POLLIN};
		assert_true(poll(&q, 1, IO_TIMEOUT_MS) > 0);
		ssize_t r = read(out, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	assert_string_equal(buf, "first\nsecond\n"); /* hcsshim's duplicate of the tail */
	close(out);
	char wait[160];
	wait_body(wait, sizeof(wait), pid);
	json_t *j = call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(result_of(j), 0);
	json_decref(j);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
}

/* A wait outstanding at the cut is answered after the next NegotiateProtocol response, with
 * its original id; an exit in the blackout that nobody waited for is retained. */
static void test_blackout_exits(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	exec_uvm(f->fd, 1, "sleep 0.2; exit 7", false, false);
	json_int_t p1 = exec_result(f->fd, 1);
	exec_uvm(f->fd, 2, "sleep 0.2; exit 9", false, false);
	json_int_t p2 = exec_result(f->fd, 2);
	char w1[160], w2[160];
	wait_body(w1, sizeof(w1), p1);
	wait_body(w2, sizeof(w2), p2);
	send_req(f->fd, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42, w1);
	cut(f, NULL, NULL);
	usleep(500000); /* both exit while no host is there */
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	expect_silence(f->fd, 100); /* nothing before negotiation */
	negotiate_resume(f->fd);
	struct bridge_hdr h;
	json_t *j = recv_frame(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(RPC_WAIT_FOR_PROCESS)));
	assert_int_equal(h.id, 42);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 7);
	json_decref(j);
	/* the unwaited exit is retained; a probe gets it */
	j = call(f->fd, RPC_WAIT_FOR_PROCESS, 43, w2);
	assert_int_equal(result_of(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 9);
	json_decref(j);
	/* both were delivered on a live connection: now forgotten */
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 44, w1, HR_ERR_NOT_FOUND);
	call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 45, w2, HR_ERR_NOT_FOUND);
}

/* A connection to the wake port makes the agent drop the bridge and dial again at once. */
static void test_wake(void **state)
{
	struct fx *f = *state;
	negotiate(f->fd);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct err e;
	assert_int_equal(
	    vsock_unix_guest_path(f->addr.path, 0x3FFFFFFFu, un.sun_path, sizeof(un.sun_path), &e),
	    0);
	int w = -1;
	for (int i = 0; i < 100 && w < 0; i++) {
		w = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(w, (struct sockaddr *)&un, sizeof(un)) < 0) {
			close(w);
			w = -1;
			usleep(10000);
		}
	}
	assert_true(w >= 0);
	long long t0 = mono_ns();
	char c;
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	assert_true(poll(&p, 1, IO_TIMEOUT_MS) > 0);
	assert_true(read(f->fd, &c, 1) <= 0); /* the old bridge was closed */
	close(f->fd);
	f->fd = accept_conn(f);
	assert_true(f->fd >= 0);
	assert_true(mono_ns() - t0 < 1000000000ll);
	negotiate(f->fd);
	close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_resume_exactly_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_host_lost_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_tail_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blackout_exits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
