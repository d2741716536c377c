/* Integration tests for issue 7 items 1 and 4: whoever can reach a port of ours is an adversary
 * until it proves otherwise.  The real host client (host/gcs_client.h) drives the real
 * ferry-gcs (tests/lib/hostenv.h, UVM processes, hybrid vsock in a temporary directory) while
 * an impostor, knowing the protocol but not the session secret, connects:
 *   - to a live stdout port and sends a HELLO and "INJECTED BY ATTACKER": refused, the output
 *     arrives exactly once and untouched;
 *   - to a live stdin port with a HELLO of its own: refused, it gets no byte of stdin, and
 *     what the host writes reaches the process exactly once;
 *   - to the bridge port while the host waits for the guest's re-dial, answering the
 *     negotiation (with and without a made-up proof) and then "reporting" a fake exit code:
 *     refused without a byte of its answers taken, the real guest re-dials and the real exit
 *     code arrives;
 *   - 2,000 times to the guest's wake port without the secret (some with junk, some with a
 *     wrong proof): the bridge never drops, the output goes on, a few rate-limited lines.
 * Each impostor runs as a forked child, so it talks to the host's loop as a real peer would. */
#include <errno.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/frame.h"
#include "bridge/proto.h"
#include "bridge/resume.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"
#include "tests/lib/hostenv.h"

#define STEP_S 20.0

struct t {
	struct hostenv h;
	bool closed, reconnected;
	int reconnect_status;
	struct err why;
	/* the process */
	struct gcs_process *p;
	bool started, exited;
	struct gcs_result exit_res;
	uint32_t code;
	struct buf out;
};

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	struct t *t = ud;
	(void)c;
	t->closed = true;
	t->why = *why;
}

static void on_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct t *t = ud;
	(void)c;
	t->reconnected = true;
	t->reconnect_status = status;
	if (e)
		t->why = *e;
}

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct t *t = ud;
	(void)p;
	t->started = true;
	assert_int_equal(r->status, 0);
}

static void p_output(struct gcs_process *p, int stream, const void *data, size_t n, void *ud)
{
	struct t *t = ud;
	(void)p;
	(void)stream;
	buf_append(&t->out, data, n);
}

static void p_exit(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct t *t = ud;
	(void)p;
	t->exited = true;
	t->exit_res = *r;
	t->code = code;
}

static const struct gcs_process_ops pops = {
    .on_started = p_started, .on_output = p_output, .on_exit = p_exit};

static int setup(void **state)
{
	struct t *t = xcalloc(1, sizeof(*t));
	struct err e;
	buf_init(&t->out);
	struct gcs_client_ops ops = {.on_close = on_close, .on_reconnect = on_reconnect};
	struct hostenv_config hc = {.prefix = "ferry-imp", .ops = &ops, .ud = t};
	if (hostenv_start(&t->h, &hc, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.msg);
		hostenv_stop(&t->h);
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	gcs_process_free(t->p);
	hostenv_stop(&t->h);
	buf_fini(&t->out);
	free(t);
	return 0;
}

static void run_until(struct t *t, const bool *flag)
{
	assert_true(hostenv_run_until(t->h.loop, flag, STEP_S));
}

/* Run the loop for `sec` seconds (the host serves while a child plays the impostor). */
static void run_for(struct t *t, double sec)
{
	bool never = false;
	hostenv_run_until(t->h.loop, &never, sec);
}

static void start(struct t *t, const char *cmd, bool in)
{
	struct err e;
	const char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct gcs_process_config pc = {.argv = argv,
	                                .stdio = {.want_stdin = in,
	                                          .want_stdout = true,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	t->p = gcs_process_start(t->h.c, &pc, &pops, t, &e);
	assert_non_null(t->p);
	run_until(t, &t->started);
}

/* The unix socket standing for a host port, as a local process would dial it. */
static int dial_host_port(struct t *t, uint32_t port)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct err e;
	const struct vsock_addr *a = gcs_client_addr(t->h.c);
	assert_int_equal(vsock_unix_path(a->path, port, un.sun_path, sizeof(un.sun_path), &e), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A HELLO as an impostor who knows the wire format (and not the secret) writes it. */
static void impostor_hello(int fd, uint32_t port, bool input, uint64_t offset, uint8_t junk)
{
	struct resume_hello h;
	memset(&h, 0, sizeof(h));
	h.version = RESUME_VERSION;
	h.flags = input ? RESUME_FLAG_INPUT : 0;
	h.port = port;
	h.offset = offset;
	uint8_t m[RESUME_HELLO_LEN];
	resume_hello_encode(&h, m);
	/* a made-up proof, where the format has one */
	for (size_t i = 24; i < sizeof(m); i++)
		m[i] = (uint8_t)(junk + i);
	struct err e;
	(void)fd_write_all(fd, m, sizeof(m), &e);
}

/* Wait (running the host loop) for child `pid` to exit; its status. */
static int reap(struct t *t, pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
		run_for(t, 0.01);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("impostor %d did not finish", (int)pid);
	return -1;
}

/* "line0\n" .. "line{n-1}\n" */
static char *lines(int n)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < n; i++) {
		char l[32];
		int k = snprintf(l, sizeof(l), "line%d\n", i);
		buf_append(&b, l, (size_t)k);
	}
	buf_append(&b, "", 1);
	char *s = xstrdup((const char *)buf_head(&b));
	buf_fini(&b);
	return s;
}

#define LINES_CMD "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); sleep 0.002; done"

/* ---- stdout ---- */

/* Several impostors on the live stdout port, each with a HELLO (offset 0, and one at the
 * "current" offset) and injected text.  Exit status of the child: 0 when the host refused every
 * one of them (closed without a READY), 1 when one got a READY. */
static int stdout_impostors(struct t *t, uint32_t port)
{
	int got_ready = 0;
	for (int k = 0; k < 6; k++) {
		int fd = dial_host_port(t, port);
		if (fd < 0)
			continue;
		impostor_hello(fd, port, false, k % 2 ? 100 : 0, (uint8_t)k);
		const char inj[] = "INJECTED BY ATTACKER\n";
		struct err e;
		(void)fd_write_all(fd, inj, sizeof(inj) - 1, &e);
		uint8_t m[64];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) > 0 && read(fd, m, sizeof(m)) >= (ssize_t)RESUME_READY_LEN)
			got_ready = 1;
		close(fd);
		usleep(20000);
	}
	return got_ready;
}

static void test_stdout_impostor(void **state)
{
	struct t *t = *state;
	start(t, LINES_CMD, false);
	struct gcs_process_state ps;
	gcs_process_get_state(t->p, &ps);
	run_for(t, 0.05); /* some output first */
	fflush(NULL);
	pid_t imp = fork();
	if (imp == 0)
		_exit(stdout_impostors(t, ps.stdout_port));
	int st = reap(t, imp);
	run_until(t, &t->exited);
	assert_int_equal(t->exit_res.status, 0);
	assert_int_equal(t->code, 0);
	assert_false(t->closed);
	buf_append(&t->out, "", 1);
	_cleanup_free_ char *want = lines(300);
	assert_string_equal((const char *)buf_head(&t->out), want); /* once, nothing injected */
	assert_int_equal(st, 0);                                    /* no impostor got a READY */
}

/* ---- stdin ---- */

/* An impostor on the live stdin port: exit status 0 when it got nothing (no READY, no stdin
 * byte) before the host closed it, 1 otherwise. */
static int stdin_impostor(struct t *t, uint32_t port)
{
	int fd = dial_host_port(t, port);
	if (fd < 0)
		return 0;
	impostor_hello(fd, port, true, 0, 7);
	uint8_t m[256];
	ssize_t total = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) <= 0)
			break;
		ssize_t n = read(fd, m, sizeof(m));
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	return total > 0;
}

static void test_stdin_impostor(void **state)
{
	struct t *t = *state;
	struct err e;
	start(t, "cat", true);
	assert_int_equal(gcs_process_write_stdin(t->p, "first\n", 6, &e), 0);
	struct gcs_process_state ps;
	gcs_process_get_state(t->p, &ps);
	run_for(t, 0.1);
	fflush(NULL);
	pid_t imp = fork();
	if (imp == 0)
		_exit(stdin_impostor(t, ps.stdin_port));
	run_for(t, 0.3); /* the impostor is connected (and, before the fix, attached) */
	assert_int_equal(gcs_process_write_stdin(t->p, "password\n", 9, &e), 0);
	int st = reap(t, imp);
	assert_int_equal(gcs_process_close_stdin(t->p, &e), 0);
	run_until(t, &t->exited);
	assert_int_equal(t->exit_res.status, 0);
	assert_false(t->closed);
	buf_append(&t->out, "", 1);
	assert_string_equal((const char *)buf_head(&t->out), "first\npassword\n");
	assert_int_equal(st, 0); /* the impostor got no byte */
}

/* ---- the bridge during a reconnect window ---- */

/* Read one request frame from the host (blocking); its type and id. */
static int read_frame(int fd, uint32_t *type, uint64_t *id, char *payload, size_t cap)
{
	uint8_t h[16];
	struct err e;
	if (fd_read_all(fd, h, sizeof(h), &e) < 0)
		return -1;
	uint32_t size = le32_get(h + 4);
	if (size < 16 || size - 16 >= cap || fd_read_all(fd, payload, size - 16, &e) < 0)
		return -1;
	payload[size - 16] = 0;
	*type = le32_get(h);
	*id = le64_get(h + 8);
	return 0;
}

static void write_frame(int fd, uint32_t type, uint64_t id, const char *json)
{
	struct buf b;
	struct err e;
	buf_init(&b);
	bridge_frame_append(&b, type, id, json, strlen(json), 0, &e);
	(void)fd_write_all(fd, buf_head(&b), buf_avail(&b), &e);
	buf_fini(&b);
}

/* The impostor dials the bridge port, answers NegotiateProtocol as a ferry guest (`proof`:
 * with a made-up FerrySessionProof) and then reports exit code 99 for the process's wait.
 * Exit status 0 when the host hung up on it, 2 if it could not even connect. */
static int bridge_impostor(struct t *t, bool proof, uint64_t wait_id)
{
	int fd = -1;
	for (int i = 0; i < 200 && fd < 0; i++) {
		fd = dial_host_port(t, GCS_BRIDGE_PORT);
		if (fd < 0)
			usleep(5000);
	}
	if (fd < 0)
		return 2;
	uint32_t type;
	uint64_t id;
	char req[4096];
	if (read_frame(fd, &type, &id, req, sizeof(req)) < 0)
		return 0;
	char caps[1024];
	snprintf(caps, sizeof(caps),
	         "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":\"Linux\","
	         "\"GuestDefinedCapabilities\":{\"FerryStdioResume\":true%s}}}",
	         proof ? ",\"FerrySessionProof\":\"000102030405060708090a0b0c0d0e0f101112131415"
	                 "161718191a1b1c1d1e1f\""
	               : "");
	write_frame(fd, bridge_response_type(type), id, caps);
	write_frame(fd, bridge_response_type(bridge_request_type(RPC_WAIT_FOR_PROCESS)), wait_id,
	            "{\"Result\":0,\"ExitCode\":99}");
	/* until the host hangs up */
	while (read(fd, req, sizeof(req)) > 0)
		;
	close(fd);
	return 0;
}

static void bridge_window(struct t *t, bool proof)
{
	struct err e;
	start(t, "cat", true);
	run_for(t, 0.1);
	struct gcs_process_state ps;
	gcs_process_get_state(t->p, &ps);
	assert_true(ps.wait_pending);
	/* the guest is held still so the impostor is first in the window */
	assert_int_equal(kill(t->h.gcs_pid, SIGSTOP), 0);
	assert_int_equal(gcs_client_cut(t->h.c, &e), 0);
	assert_int_equal(gcs_client_relisten(t->h.c, &e), 0);
	fflush(NULL);
	pid_t imp = fork();
	if (imp == 0)
		_exit(bridge_impostor(t, proof, ps.wait_id));
	int st = reap(t, imp);
	assert_int_equal(st, 0);
	assert_false(t->exited); /* the fake exit code was not taken */
	assert_false(t->reconnected);
	assert_false(t->closed);
	/* the real guest comes back */
	assert_int_equal(kill(t->h.gcs_pid, SIGCONT), 0);
	run_until(t, &t->reconnected);
	assert_int_equal(t->reconnect_status, 0);
	assert_int_equal(gcs_process_write_stdin(t->p, "after\n", 6, &e), 0);
	assert_int_equal(gcs_process_close_stdin(t->p, &e), 0);
	run_until(t, &t->exited);
	assert_int_equal(t->exit_res.status, 0);
	assert_int_equal(t->code, 0);
	buf_append(&t->out, "", 1);
	assert_string_equal((const char *)buf_head(&t->out), "after\n");
}

static void test_bridge_impostor_no_proof(void **state)
{
	bridge_window(*state, false);
}

static void test_bridge_impostor_bad_proof(void **state)
{
	bridge_window(*state, true);
}

/* ---- the wake port ---- */

/* 2,000 pokes at the guest's wake port without the secret: plain connects, junk, a wrong
 * proof of the right size.  Exit status: how many connections it made (capped at 255). */
static int wake_pokes(struct t *t)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct err e;
	const struct vsock_addr *a = gcs_client_addr(t->h.c);
	if (vsock_unix_guest_path(a->path, GCS_WAKE_PORT, un.sun_path, sizeof(un.sun_path), &e) < 0)
		return 0;
	int made = 0;
	for (int i = 0; i < 2000; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0) {
			made++;
			if (i % 3 == 1) {
				uint8_t junk[32];
				memset(junk, i, sizeof(junk));
				(void)send(fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
			}
		}
		close(fd);
	}
	return made > 255 ? 255 : made;
}

static void test_wake_pokes(void **state)
{
	struct t *t = *state;
	start(t, LINES_CMD, false);
	fflush(NULL);
	pid_t imp = fork();
	if (imp == 0)
		_exit(wake_pokes(t));
	int made = reap(t, imp);
	print_message("wake port: %d+ connections made\n", made);
	run_until(t, &t->exited);
	assert_false(t->closed); /* the bridge never dropped */
	assert_int_equal(t->exit_res.status, 0);
	buf_append(&t->out, "", 1);
	_cleanup_free_ char *want = lines(300);
	assert_string_equal((const char *)buf_head(&t->out), want);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stdout_impostor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdin_impostor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bridge_impostor_no_proof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bridge_impostor_bad_proof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wake_pokes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
