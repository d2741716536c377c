/* The ferry-gcs integration harness (see agent.h): start the real agent as a child process on a
 * hybrid vsock address in a temporary directory, accept its bridge connections as the host, and
 * exchange raw bridge frames with blocking, time-bounded calls and cmocka assertions. */
#include "tests/lib/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/proto.h"
#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/fdio.h"

const char *agent_build_dir(void)
{
	const char *b = getenv("BUILD");
	return b && *b ? b : "build";
}

static pid_t spawn(const struct agent *a, const char *extra)
{
	char bin[256], log[128], state[128], root[128];
	snprintf(bin, sizeof(bin), "%s/ferry-gcs", agent_build_dir());
	snprintf(log, sizeof(log), "%s/gcs.log", a->dir);
	snprintf(state, sizeof(state), "%s/state", a->dir);
	snprintf(root, sizeof(root), "%s/root", a->dir);
	pid_t pid = fork();
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lf >= 0) {
			dup2(lf, 2);
			dup2(lf, 1);
		}
		/* extra may be NULL: then it ends the argument list itself. */
		execl(bin, bin, "-v4", "--transport", a->addr_str, "--state-dir", state, "--root",
		      root, "--log-level", "debug", "--no-poweroff", extra, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int agent_accept_on(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	long long deadline = mono_ns() + AGENT_IO_TIMEOUT_MS * 1000000ll;
	while (mono_ns() < deadline) {
		if (poll(&p, 1, 100) > 0) {
			struct err e;
			int fd = vsock_accept(lfd, &e);
			if (fd >= 0) {
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
				return fd;
			}
		}
	}
	return -1;
}

int agent_accept(struct agent *a)
{
	return agent_accept_on(a->lfd);
}

struct agent *agent_start(const char *prefix, const char *extra)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct err e;
	if (!a)
		return NULL;
	a->lfd = a->fd = -1;
	snprintf(a->dir, sizeof(a->dir), "/tmp/%s.XXXXXX", prefix);
	if (!mkdtemp(a->dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", a->dir, strerror(errno));
		free(a);
		return NULL;
	}
	snprintf(a->addr_str, sizeof(a->addr_str), "hybrid:%s/v.sock", a->dir);
	if (vsock_addr_parse(a->addr_str, &a->addr, &e) < 0 ||
	    (a->lfd = vsock_listen(&a->addr, GCS_BRIDGE_PORT, &e)) < 0) {
		fprintf(stderr, "listen: %s\n", e.msg);
		agent_stop(a);
		return NULL;
	}
	a->pid = spawn(a, extra);
	a->fd = agent_accept(a);
	if (a->fd < 0) {
		fprintf(stderr, "ferry-gcs did not connect (log in %s/gcs.log)\n", a->dir);
		agent_stop(a);
		return NULL;
	}
	return a;
}

void agent_stop(struct agent *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
	}
	if (a->lfd >= 0)
		vsock_unlisten(&a->addr, GCS_BRIDGE_PORT, a->lfd);
	if (getenv("KEEP_TMP")) { /* debugging: keep the agent log */
		fprintf(stderr, "kept %s\n", a->dir);
		free(a);
		return;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", a->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", a->dir);
	free(a);
}

void agent_send_raw(int fd, uint32_t type, uint32_t size, uint64_t id, const char *json)
{
	uint8_t hdr[16];
	struct bridge_hdr h = {.type = type, .size = size, .id = id};
	bridge_hdr_encode(&h, hdr);
	struct err e;
	assert_int_equal(fd_write_all(fd, hdr, sizeof(hdr), &e), 0);
	if (json && *json)
		assert_int_equal(fd_write_all(fd, json, strlen(json), &e), 0);
}

void agent_send_req(int fd, uint32_t type, uint64_t id, const char *json)
{
	agent_send_raw(fd, type, (uint32_t)(16 + strlen(json)), id, json);
}

json_t *agent_recv(int fd, struct bridge_hdr *h)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, AGENT_IO_TIMEOUT_MS) <= 0)
		return NULL;
	uint8_t hdr[16];
	struct err e;
	if (fd_read_all(fd, hdr, sizeof(hdr), &e) < 0)
		return NULL;
	bridge_hdr_decode(hdr, h);
	assert_true(h->size >= 16 && h->size <= BRIDGE_MAX_MSG);
	size_t n = h->size - 16;
	char *buf = malloc(n + 1);
	assert_non_null(buf);
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

json_t *agent_call(int fd, uint32_t rpc, uint64_t id, const char *json)
{
	agent_send_req(fd, bridge_request_type(rpc), id, json);
	struct bridge_hdr h;
	json_t *j = agent_recv(fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(rpc)));
	assert_int_equal(h.id, id);
	return j;
}

int32_t agent_result(json_t *j)
{
	json_t *r = json_object_get(j, "Result");
	assert_true(json_is_integer(r));
	return (int32_t)json_integer_value(r);
}

void agent_call_expect(int fd, uint32_t rpc, uint64_t id, const char *json, int32_t hr)
{
	json_t *j = agent_call(fd, rpc, id, json);
	if (agent_result(j) != hr) {
		char *s = json_dumps(j, 0);
		fprintf(stderr, "unexpected response: %s\n", s ? s : "?");
		free(s);
	}
	assert_int_equal(agent_result(j), hr);
	json_decref(j);
}

void agent_negotiate(int fd)
{
	json_t *j = agent_call(fd, RPC_NEGOTIATE_PROTOCOL, 0, AGENT_NEG_BODY);
	assert_int_equal(agent_result(j), 0);
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

size_t agent_read_to_eof(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		struct pollfd q = {.fd = fd, .events = POLLIN};
		assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

void agent_wait_body(char *buf, size_t n, long long pid)
{
	snprintf(buf, n,
	         "{\"ContainerId\":\"" AGENT_NULL_ID
	         "\",\"ProcessId\":%lld,\"TimeoutInMs\":4294967295}",
	         pid);
}

void agent_expect_disconnect(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_true(poll(&p, 1, AGENT_IO_TIMEOUT_MS) > 0);
	char c[64];
	ssize_t n = read(fd, c, sizeof(c));
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

void agent_assert_alive(const struct agent *a)
{
	assert_int_equal(waitpid(a->pid, NULL, WNOHANG), 0);
	assert_int_equal(kill(a->pid, 0), 0);
}

int agent_wait_exit(pid_t pid, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

/* ---- stdio resume and UVM processes ---- */

/* The session the tests' host hands the agent, and the challenge of the last negotiation
 * (HELLOs are checked against them). */
static struct session_auth session = {
    .on = true, .secret = {0x5e, 0xc2, 0xe7, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                           14,   15,   16,   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29}};

const struct session_auth *agent_session(void)
{
	return &session;
}

void agent_negotiate_resume(int fd)
{
	struct err e;
	char sec[SESSION_HEX_LEN + 1], ch[SESSION_HEX_LEN + 1], body[512];
	assert_int_equal(session_random(session.challenge, sizeof(session.challenge), &e), 0);
	session_hex32_encode(session.secret, sec);
	session_hex32_encode(session.challenge, ch);
	snprintf(body, sizeof(body),
	         "{\"ContainerId\":\"\",\"ActivityId\":\"" AGENT_NULL_ID "\","
	         "\"MinimumVersion\":4,\"MaximumVersion\":4,\"Ferry\":{\"StdioResume\":%d,"
	         "\"Session\":\"%s\",\"Challenge\":\"%s\"}}\n",
	         RESUME_VERSION, sec, ch);
	json_t *j = agent_call(fd, RPC_NEGOTIATE_PROTOCOL, 0, body);
	assert_int_equal(agent_result(j), 0);
	json_t *gdc =
	    json_object_get(json_object_get(j, "Capabilities"), "GuestDefinedCapabilities");
	assert_true(json_is_true(json_object_get(gdc, "FerryStdioResume")));
	/* the agent proves it holds the session */
	const char *proof = json_string_value(json_object_get(gdc, "FerrySessionProof"));
	assert_true(session_bridge_verify(session.secret, session.challenge, proof));
	json_decref(j);
}

int agent_wake(const struct agent *a, const uint8_t *secret)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct err e;
	if (vsock_unix_guest_path(a->addr.path, 0x3FFFFFFFu, un.sun_path, sizeof(un.sun_path), &e) <
	    0)
		return -1;
	int w = -1;
	for (int i = 0; i < 100 && w < 0; i++) {
		w = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(w, (struct sockaddr *)&un, sizeof(un)) < 0) {
			close(w);
			w = -1;
			usleep(10000);
		}
	}
	if (w < 0)
		return -1;
	uint8_t ch[SESSION_WAKE_LEN], proof[SESSION_WAKE_LEN];
	struct pollfd p = {.fd = w, .events = POLLIN};
	if (poll(&p, 1, AGENT_IO_TIMEOUT_MS) <= 0 || fd_read_all(w, ch, sizeof(ch), &e) < 0 ||
	    session_wake_challenge_check(ch, sizeof(ch), &e) != SESSION_WAKE_LEN) {
		close(w);
		return -1;
	}
	session_wake_proof(secret ? secret : session.secret, ch, proof);
	(void)fd_write_all(w, proof, sizeof(proof), &e);
	return w;
}

void agent_exec_uvm(int fd, uint64_t id, const char *cmd, uint32_t in_port, uint32_t out_port)
{
	char body[1024];
	snprintf(body, sizeof(body),
	         "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"Settings\":{\"ProcessParameters\":"
	         "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"%s\\\"],"
	         "\\\"CreateStdInPipe\\\":%s,\\\"CreateStdOutPipe\\\":%s}\","
	         "\"VsockStdioRelaySettings\":{\"StdIn\":%u,\"StdOut\":%u}}}",
	         cmd, in_port ? "true" : "false", out_port ? "true" : "false", in_port, out_port);
	agent_send_req(fd, bridge_request_type(RPC_EXECUTE_PROCESS), id, body);
}

long long agent_exec_result(int fd, uint64_t id)
{
	struct bridge_hdr h;
	json_t *j = agent_recv(fd, &h);
	assert_non_null(j);
	assert_int_equal(h.id, id);
	if (agent_result(j) != 0) {
		char *s = json_dumps(j, 0);
		fprintf(stderr, "exec failed: %s\n", s ? s : "?");
		free(s);
	}
	assert_int_equal(agent_result(j), 0);
	long long pid = json_integer_value(json_object_get(j, "ProcessId"));
	assert_true(pid > 0);
	json_decref(j);
	return pid;
}

long long agent_wait_code(int fd, uint64_t id, long long pid)
{
	char wait[160];
	agent_wait_body(wait, sizeof(wait), pid);
	json_t *j = agent_call(fd, RPC_WAIT_FOR_PROCESS, id, wait);
	assert_int_equal(agent_result(j), 0);
	long long code = json_integer_value(json_object_get(j, "ExitCode"));
	json_decref(j);
	return code;
}

void agent_read_exact(int fd, void *p, size_t n)
{
	struct pollfd q = {.fd = fd, .events = POLLIN};
	assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
	struct err e;
	assert_int_equal(fd_read_all(fd, p, n, &e), 0);
}

void agent_expect_hello(int fd, uint16_t flags, uint32_t port, uint64_t offset)
{
	uint8_t m[RESUME_HELLO_LEN];
	struct resume_hello h;
	struct err e;
	agent_read_exact(fd, m, sizeof(m));
	assert_int_equal(resume_hello_decode(m, sizeof(m), &h, &e), RESUME_HELLO_LEN);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.port, port);
	assert_int_equal(h.offset, offset);
	/* signed for this negotiation's session, numbered from 1 */
	struct resume_stream st = {.rx = NULL, .tx = NULL};
	struct resume_sender tx;
	resume_sender_init(&tx, 0, 0);
	if (flags & RESUME_FLAG_INPUT)
		st.tx = &tx;
	assert_true(h.dial >= 1);
	assert_int_equal(resume_stream_hello_check(&st, &h, port, &session, &e), 0);
	resume_sender_fini(&tx);
}

void agent_send_ready(int fd, uint64_t offset)
{
	uint8_t m[RESUME_READY_LEN];
	struct resume_ready r = {.version = RESUME_VERSION, .offset = offset};
	resume_ready_encode(&r, m);
	struct err e;
	assert_int_equal(fd_write_all(fd, m, sizeof(m), &e), 0);
}

void agent_send_ack(int fd, uint64_t offset)
{
	uint8_t m[RESUME_ACK_LEN];
	resume_ack_encode(offset, m);
	struct err e;
	assert_int_equal(fd_write_all(fd, m, sizeof(m), &e), 0);
}

void agent_expect_data(int fd, const char *want)
{
	char buf[256];
	size_t n = strlen(want);
	assert_true(n < sizeof(buf));
	agent_read_exact(fd, buf, n);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

void agent_expect_silence(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, ms), 0);
}

int agent_log_count(const struct agent *a, const char *needle)
{
	char path[128], line[1024];
	snprintf(path, sizeof(path), "%s/gcs.log", a->dir);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	int n = 0;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, needle))
			n++;
	fclose(fp);
	return n;
}

long agent_status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0)
			v = strtol(line + fl, NULL, 10);
	fclose(f);
	return v;
}
