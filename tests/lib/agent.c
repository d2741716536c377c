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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/proto.h"
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
