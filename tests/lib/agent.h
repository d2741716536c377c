/* Test harness for integration tests that run the real ferry-gcs binary as a child process and
 * play the host with raw bridge frames: a temporary directory, a host listener on
 * `hybrid:<dir>/v.sock` for the bridge port (common/vsock.h), the agent started with
 * `--transport hybrid:<dir>/v.sock --state-dir <dir>/state --root <dir>/root` (log in
 * <dir>/gcs.log), and blocking frame helpers (send a request, read one response, negotiate).
 *
 * The frame helpers use cmocka assertions (a protocol violation by the agent fails the running
 * test), so they may only be called from inside a cmocka test or fixture.  Everything here
 * blocks with a bound of AGENT_IO_TIMEOUT_MS per wait; nothing runs on an event loop. */
#ifndef FERRY_TESTS_AGENT_H
#define FERRY_TESTS_AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge/frame.h"
#include "common/vsock.h"

/* Every wait for the agent (a connection, a response, data) gives up after this. */
#define AGENT_IO_TIMEOUT_MS 5000

/* Request bodies: a NegotiateProtocol for version 4 and a plain base message. */
#define AGENT_NULL_ID "00000000-0000-0000-0000-000000000000"
#define AGENT_NEG_BODY                                                                             \
	"{\"ContainerId\":\"\",\"ActivityId\":\"" AGENT_NULL_ID "\","                              \
	"\"MinimumVersion\":4,\"MaximumVersion\":4}\n"
#define AGENT_BASE(id) "{\"ContainerId\":\"" id "\",\"ActivityId\":\"" AGENT_NULL_ID "\"}\n"

/* One running agent and the host's side of it.  Tests may read and replace every field (close
 * fd and accept again, unlisten and listen again); agent_stop releases whatever is >= 0. */
struct agent {
	char dir[64];           /* the temporary directory (socket, state, root, gcs.log) */
	char addr_str[128];     /* "hybrid:<dir>/v.sock" */
	struct vsock_addr addr; /* addr_str parsed */
	int lfd;                /* host listener on GCS_BRIDGE_PORT, or -1 */
	pid_t pid;              /* the agent, or 0 once reaped by the test */
	int fd;                 /* current bridge connection (blocking), or -1 */
};

/* $BUILD, or "build" when unset/empty: where ferry-gcs is.  Static storage. */
const char *agent_build_dir(void);

/* mkdtemp "/tmp/<prefix>.XXXXXX", listen on the bridge port, start $BUILD/ferry-gcs (with
 * `extra` appended to its arguments when not NULL, e.g. "--once") and accept its first bridge
 * connection.  Returns the harness (caller-owned, release with agent_stop) or NULL with the
 * reason printed on stderr (everything created so far is released). */
struct agent *agent_start(const char *prefix, const char *extra);

/* SIGKILL and reap the agent, close the connection, unlisten and remove the directory (kept,
 * and named on stderr, when $KEEP_TMP is set).  NULL-safe. */
void agent_stop(struct agent *a);

/* Accept the next connection on listener lfd within AGENT_IO_TIMEOUT_MS; returns a blocking fd
 * (caller-owned) or -1. */
int agent_accept_on(int lfd);
/* Same on a->lfd: the agent's next bridge connection. */
int agent_accept(struct agent *a);

/* Write a 16-byte header {type, size, id} and then json (if not NULL/empty) as they are: size
 * may lie, for framing tests.  Asserts the writes succeed. */
void agent_send_raw(int fd, uint32_t type, uint32_t size, uint64_t id, const char *json);
/* A well-formed frame of message type `type` (already a request type) carrying json. */
void agent_send_req(int fd, uint32_t type, uint64_t id, const char *json);
/* Read one frame into *h and return its parsed JSON payload (new reference), or NULL on EOF or
 * when nothing arrives in time.  Asserts the size is sane and the payload is JSON. */
json_t *agent_recv(int fd, struct bridge_hdr *h);
/* Send RPC rpc (an RPC_* code of bridge/proto.h) with id and return the response (new
 * reference), asserting one arrives with the matching response type and id. */
json_t *agent_call(int fd, uint32_t rpc, uint64_t id, const char *json);
/* The response's "Result" (asserted to be an integer). */
int32_t agent_result(json_t *j);
/* agent_call, then assert Result == hr (the response is printed on stderr when not). */
void agent_call_expect(int fd, uint32_t rpc, uint64_t id, const char *json, int32_t hr);
/* NegotiateProtocol version 4 with AGENT_NEG_BODY; asserts the Linux GCS answer (Version 4,
 * RuntimeOsType Linux, SignalProcessSupported, schema 2.1). */
void agent_negotiate(int fd);
/* Read a blocking fd until EOF (each wait bounded and asserted), at most cap - 1 bytes, and
 * NUL-terminate buf; returns the byte count. */
size_t agent_read_to_eof(int fd, char *buf, size_t cap);
/* Format the body of a WaitForProcess for UVM process pid with no timeout into buf. */
void agent_wait_body(char *buf, size_t n, long long pid);
/* Assert the peer closes fd (EOF or reset) within the timeout. */
void agent_expect_disconnect(int fd);
/* Assert the agent process is still running. */
void agent_assert_alive(const struct agent *a);
/* Wait up to timeout_ms for pid to exit; its wait status, or -1 when it did not. */
int agent_wait_exit(pid_t pid, int timeout_ms);

/* ---- the stdio resume protocol (bridge/resume.h) and UVM processes, as the host ---- */

/* NegotiateProtocol offering FerryStdioResume with the tests' session (agent_session) and a
 * fresh challenge; asserts the agent accepts it and proves the session. */
void agent_negotiate_resume(int fd);
struct session_auth;
/* The tests' session: its secret, and the challenge of the last agent_negotiate_resume. */
const struct session_auth *agent_session(void);
/* Wake the agent as a host does: connect to its wake port, read the challenge, answer with
 * the proof under `secret` (NULL: the tests' session).  Returns the connection (the caller
 * closes it) or -1 when no challenge came. */
int agent_wake(const struct agent *a, const uint8_t *secret);
/* Send ExecuteProcess `id` for a UVM process `/bin/sh -c cmd` with stdin / stdout pipes on the
 * given ports (0: no such pipe); the response is read with agent_exec_result. */
void agent_exec_uvm(int fd, uint64_t id, const char *cmd, uint32_t in_port, uint32_t out_port);
/* Read the ExecuteProcess response `id`, assert success, return the pid. */
long long agent_exec_result(int fd, uint64_t id);
/* An infinite WaitForProcess `id` on UVM process pid: asserts success, returns ExitCode. */
long long agent_wait_code(int fd, uint64_t id, long long pid);
/* Read exactly n bytes (each wait bounded and asserted). */
void agent_read_exact(int fd, void *p, size_t n);
/* Read the guest's HELLO and assert its flags, port and offset. */
void agent_expect_hello(int fd, uint16_t flags, uint32_t port, uint64_t offset);
/* Send READY(OK, offset) / an 8-byte ACK. */
void agent_send_ready(int fd, uint64_t offset);
void agent_send_ack(int fd, uint64_t offset);
/* Read strlen(want) bytes and assert they are `want`. */
void agent_expect_data(int fd, const char *want);
/* Nothing arrives on fd within ms. */
void agent_expect_silence(int fd, int ms);
/* Lines of the agent's log (<dir>/gcs.log) containing `needle`. */
int agent_log_count(const struct agent *a, const char *needle);
/* A "Name:   N kB" field of /proc/<pid>/status (VmHWM, VmRSS...) in KiB, or -1. */
long agent_status_kib(pid_t pid, const char *field);

#endif
