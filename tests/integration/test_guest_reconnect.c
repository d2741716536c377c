/* Integration tests for ferry-gcs surviving the move (issue 4, docs/stdio-resume.md): the real
 * $BUILD/ferry-gcs runs as a child on `hybrid:<tmp>/v.sock`; the test plays the host with raw
 * bridge frames (tests/lib/agent.h) and stdio listeners (common/vsock.h).  It starts UVM
 * processes, cuts every connection (bridge first), re-listens on the same ports, accepts the
 * re-dials and renegotiates with and without FerryStdioResume, answering HELLO with READY at a
 * chosen offset.  Checked: exactly-once output and stdin after a resume; hcsshim's tail replay
 * without the capability; queued wait responses after the NegotiateProtocol response with their
 * original id; exit codes of processes that exited in the blackout, and of those whose wait
 * response was written but never read before the cut; the wake port. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "bridge/resume.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "tests/lib/agent.h"

static int setup(void **state)
{
	*state = agent_start("gcsre", NULL);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	agent_stop(*state);
	*state = NULL;
	return 0;
}

/* ---- tests ---- */

#define PORT_IN  (GCS_FIRST_STDIO_PORT + 10)
#define PORT_OUT (GCS_FIRST_STDIO_PORT + 11)

/* Cut the bridge (first, so the agent knows the host changed) and then `a` and `b`. */
static void cut(struct agent *f, int *a, int *b)
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
/* Negotiate with the capability, start `cat` with stdin and stdout on PORT_IN / PORT_OUT, take
 * both first HELLOs and answer READY(0).  Returns the pid; the listeners and connections in
 * the out parameters. */
static json_int_t start_cat(struct agent *f, int *lin, int *lout, int *in, int *out)
{
	struct err e;
	agent_negotiate_resume(f->fd);
	*lin = vsock_listen(&f->addr, PORT_IN, &e);
	*lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(*lin >= 0 && *lout >= 0);
	agent_exec_uvm(f->fd, 1, "cat", PORT_IN, PORT_OUT);
	*in = agent_accept_on(*lin);
	assert_true(*in >= 0);
	agent_expect_hello(*in, RESUME_FLAG_INPUT | RESUME_FLAG_FIRST, PORT_IN, 0);
	*out = agent_accept_on(*lout);
	assert_true(*out >= 0);
	json_int_t pid = agent_exec_result(f->fd, 1);
	agent_expect_hello(*out, RESUME_FLAG_FIRST, PORT_OUT, 0);
	agent_send_ready(*in, 0);
	agent_send_ready(*out, 0);
	return pid;
}

static void run_resume(struct agent *f, bool host_lost_tail)
{
	struct err e;
	int lin, lout, in, out;
	json_int_t pid = start_cat(f, &lin, &lout, &in, &out);

	assert_int_equal(fd_write_all(in, "aaaa\n", 5, &e), 0);
	agent_expect_data(out, "aaaa\n");
	agent_send_ack(out, 5);
	/* the guest acknowledges stdin it wrote into the pipe (within 5 ms) */
	uint8_t ack[8];
	agent_read_exact(in, ack, 8);
	uint64_t off;
	assert_int_equal(resume_ack_decode(ack, 8, &off), 8);
	assert_true(off == 5);
	assert_int_equal(fd_write_all(in, "cccc\n", 5, &e), 0);
	agent_expect_data(out, "cccc\n"); /* received, not acknowledged */
	agent_read_exact(in, ack, 8);
	resume_ack_decode(ack, 8, &off);
	assert_true(off == 10);
	usleep(20000); /* the ack of offset 5 has reached the guest */

	cut(f, &in, &out);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	/* no stdio re-dial is answered before the bridge is renegotiated */
	struct pollfd p = {.fd = lout, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 50), 0);
	agent_negotiate_resume(f->fd);
	out = agent_accept_on(lout);
	assert_true(out >= 0);
	agent_expect_hello(out, 0, PORT_OUT, 5); /* retained floor: the last ack */
	in = agent_accept_on(lin);
	assert_true(in >= 0);
	agent_expect_hello(in, RESUME_FLAG_INPUT, PORT_IN, 10); /* stdin written into the pipe */
	agent_send_ready(in, 10);
	agent_send_ready(out, host_lost_tail ? 5 : 10);
	if (host_lost_tail)
		agent_expect_data(out, "cccc\n"); /* re-sent from the host's offset */
	assert_int_equal(fd_write_all(in, "bbbb\n", 5, &e), 0);
	agent_expect_data(out, "bbbb\n");
	agent_send_ack(out, 15);
	/* end: stdin EOF (half-close) -> cat exits -> stdout EOF -> final ack -> exit */
	shutdown(in, SHUT_WR);
	char c;
	struct pollfd q = {.fd = out, .events = POLLIN};
	assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
	assert_int_equal(read(out, &c, 1), 0);
	agent_send_ack(out, 15);
	close(out);
	char wait[160];
	agent_wait_body(wait, sizeof(wait), (long long)pid);
	json_t *j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(agent_result(j), 0);
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
	struct agent *f = *state;
	struct err e;
	agent_negotiate(f->fd);
	int lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(lout >= 0);
	agent_exec_uvm(f->fd, 1, "echo first; sleep 0.4; echo second", 0, PORT_OUT);
	int out = agent_accept_on(lout);
	assert_true(out >= 0);
	json_int_t pid = agent_exec_result(f->fd, 1);
	agent_expect_data(out, "first\n");
	cut(f, &out, NULL);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_negotiate(f->fd);
	out = agent_accept_on(lout);
	assert_true(out >= 0);
	char buf[64];
	agent_read_to_eof(out, buf, sizeof(buf));
	assert_string_equal(buf, "first\nsecond\n"); /* hcsshim's duplicate of the tail */
	close(out);
	char wait[160];
	agent_wait_body(wait, sizeof(wait), (long long)pid);
	json_t *j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 2, wait);
	assert_int_equal(agent_result(j), 0);
	json_decref(j);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
}

/* A wait outstanding at the cut is answered after the next NegotiateProtocol response, with
 * its original id; an exit in the blackout that nobody waited for is retained. */
static void test_blackout_exits(void **state)
{
	struct agent *f = *state;
	agent_negotiate(f->fd);
	agent_exec_uvm(f->fd, 1, "sleep 0.2; exit 7", 0, 0);
	json_int_t p1 = agent_exec_result(f->fd, 1);
	agent_exec_uvm(f->fd, 2, "sleep 0.2; exit 9", 0, 0);
	json_int_t p2 = agent_exec_result(f->fd, 2);
	char w1[160], w2[160];
	agent_wait_body(w1, sizeof(w1), (long long)p1);
	agent_wait_body(w2, sizeof(w2), (long long)p2);
	agent_send_req(f->fd, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42, w1);
	cut(f, NULL, NULL);
	usleep(500000); /* both exit while no host is there */
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_expect_silence(f->fd, 100); /* nothing before negotiation */
	agent_negotiate_resume(f->fd);
	struct bridge_hdr h;
	json_t *j = agent_recv(f->fd, &h);
	assert_non_null(j);
	assert_int_equal(h.type, bridge_response_type(bridge_request_type(RPC_WAIT_FOR_PROCESS)));
	assert_int_equal(h.id, 42);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 7);
	json_decref(j);
	/* the unwaited exit is retained; a probe gets it */
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 43, w2);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 9);
	json_decref(j);
	/* delivered on a live connection, and still retrievable (a host may not have read it) */
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 44, w1);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 7);
	json_decref(j);
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 45, w2);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 9);
	json_decref(j);
}

/* Issue 4: "exit codes are kept until the host has received them".  The wait response is
 * written to a live, negotiated connection, but the connection is cut before the host reads
 * it (its bytes die with the socket).  After the re-dial, the new host's probe (a 50 ms
 * WaitForProcess) and a re-subscribed infinite wait both get the real code, not "not found"
 * (which hcsshim would turn into exit code 0). */
static void test_unread_wait_response(void **state)
{
	struct agent *f = *state;
	agent_negotiate_resume(f->fd);
	agent_exec_uvm(f->fd, 1, "sleep 0.1; exit 5", 0, 0);
	json_int_t pid = agent_exec_result(f->fd, 1);
	char w[160];
	agent_wait_body(w, sizeof(w), (long long)pid);
	agent_send_req(f->fd, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42, w);
	/* the response is written to this connection, which nobody reads */
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	assert_true(poll(&p, 1, AGENT_IO_TIMEOUT_MS) > 0);
	usleep(20000);
	cut(f, NULL, NULL);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_negotiate_resume(f->fd);
	agent_expect_silence(f->fd, 50); /* it was sent once: not queued again */
	char probe[200];
	snprintf(probe, sizeof(probe),
	         "{\"ContainerId\":\"" AGENT_NULL_ID "\",\"ActivityId\":\"" AGENT_NULL_ID
	         "\",\"ProcessId\":%lld,\"TimeoutInMs\":50}\n",
	         (long long)pid);
	json_t *j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 43, probe);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 5);
	json_decref(j);
	j = agent_call(f->fd, RPC_WAIT_FOR_PROCESS, 44, w);
	assert_int_equal(agent_result(j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ExitCode")), 5);
	json_decref(j);
	/* a pid nobody started is still unknown */
	agent_wait_body(w, sizeof(w), 999999999ll);
	agent_call_expect(f->fd, RPC_WAIT_FOR_PROCESS, 45, w, HR_ERR_NOT_FOUND);
}

/* Issue 7 item 3: stdin after a READY below what the guest wrote into the pipe.  8 bytes were
 * delivered; the host answers the re-dial's HELLO (offset 8) with READY(OK, 4) and sends
 * "EFGHIJ" (offsets 4..9): the process must get "IJ" only (bridge/resume.h: re-sent bytes
 * below `delivered` are dropped), and the guest then acknowledges 10, not 14. */
static void test_stdin_ready_overlap(void **state)
{
	struct agent *f = *state;
	struct err e;
	int lin, lout, in, out;
	json_int_t pid = start_cat(f, &lin, &lout, &in, &out);
	assert_int_equal(fd_write_all(in, "ABCDEFGH", 8, &e), 0);
	agent_expect_data(out, "ABCDEFGH");
	agent_send_ack(out, 8);
	uint8_t ack[8];
	uint64_t off = 0;
	agent_read_exact(in, ack, 8);
	resume_ack_decode(ack, 8, &off);
	assert_true(off == 8);
	usleep(20000); /* the ack of stdout offset 8 has reached the guest */

	cut(f, &in, &out);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_negotiate_resume(f->fd);
	out = agent_accept_on(lout);
	assert_true(out >= 0);
	agent_expect_hello(out, 0, PORT_OUT, 8);
	in = agent_accept_on(lin);
	assert_true(in >= 0);
	agent_expect_hello(in, RESUME_FLAG_INPUT, PORT_IN, 8);
	agent_send_ready(out, 8);
	agent_send_ready(in, 4); /* below the guest's 8: "EFGH" are re-sent bytes */
	assert_int_equal(fd_write_all(in, "EFGHIJ", 6, &e), 0);
	agent_expect_data(out, "IJ");
	agent_read_exact(in, ack, 8);
	resume_ack_decode(ack, 8, &off);
	assert_true(off == 10);
	agent_expect_silence(out, 100); /* nothing else reached the process */
	agent_send_ack(out, 10);
	shutdown(in, SHUT_WR);
	char c;
	struct pollfd q = {.fd = out, .events = POLLIN};
	assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
	assert_int_equal(read(out, &c, 1), 0);
	agent_send_ack(out, 10);
	close(out);
	assert_int_equal(agent_wait_code(f->fd, 2, pid), 0);
	close(in);
	vsock_unlisten(&f->addr, PORT_IN, lin);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
}

/* Issue 7 item 2: a READY beyond what the guest produced (a wrong hand-over offset) cannot be
 * honoured.  The guest must fail the stream cleanly, log it once and never loop: the
 * connection is closed without a byte of data, no re-dial follows, and the process's exit is
 * still reported. */
static void test_ready_beyond_produced(void **state)
{
	struct agent *f = *state;
	struct err e;
	agent_negotiate_resume(f->fd);
	int lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(lout >= 0);
	agent_exec_uvm(f->fd, 1, "echo hello; sleep 0.3; echo more", 0, PORT_OUT);
	int out = agent_accept_on(lout);
	assert_true(out >= 0);
	json_int_t pid = agent_exec_result(f->fd, 1);
	agent_expect_hello(out, RESUME_FLAG_FIRST, PORT_OUT, 0);
	usleep(50000); /* "hello\n" (6 bytes) was produced */
	agent_send_ready(out, 1000);
	char buf[64];
	struct pollfd q = {.fd = out, .events = POLLIN};
	assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
	assert_int_equal(read(out, buf, sizeof(buf)), 0); /* closed, no data */
	close(out);
	/* no re-dial loop: nothing dials the port again */
	struct pollfd lp = {.fd = lout, .events = POLLIN};
	assert_int_equal(poll(&lp, 1, 500), 0);
	(void)agent_wait_code(f->fd, 2, pid);
	assert_int_equal(agent_log_count(f, "beyond produced"), 1);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
}

/* The wake port (opened once a session exists) answers with a challenge; a wrong proof changes
 * nothing, the session's proof makes the agent drop the bridge and dial again at once. */
static void test_wake(void **state)
{
	struct agent *f = *state;
	agent_negotiate_resume(f->fd);
	uint8_t wrong[32];
	memset(wrong, 0x42, sizeof(wrong));
	int w = agent_wake(f, wrong);
	assert_true(w >= 0);
	agent_expect_silence(f->fd, 300); /* the bridge stays */
	close(w);
	w = agent_wake(f, NULL);
	assert_true(w >= 0);
	long long t0 = mono_ns();
	char c;
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	assert_true(poll(&p, 1, AGENT_IO_TIMEOUT_MS) > 0);
	assert_true(read(f->fd, &c, 1) <= 0); /* the old bridge was closed */
	close(f->fd);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	assert_true(mono_ns() - t0 < 1000000000ll);
	agent_negotiate_resume(f->fd);
	close(w);
	assert_int_equal(agent_log_count(f, "wake port: refused a connection: wrong proof"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_resume_exactly_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_host_lost_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_tail_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blackout_exits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unread_wait_response, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdin_ready_overlap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ready_beyond_produced, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
