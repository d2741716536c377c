/* Unit tests for host/shim/dupsock: the protocol_info codec (round trip, every defect
 * refused with a message) and the socket take over real processes and sockets: a connected
 * socket of this process and of a child is taken and carries bytes; a non-socket, a
 * listening socket, a datagram socket, an unconnected socket, a closed fd, a dead pid and a
 * process of a foreign uid are refused with -EINVAL. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/shim/dupsock.h"

static void test_codec_round_trip(void **state)
{
	(void)state;
	struct dupsock_info in = {.pid = 4242, .fd = 7}, out = {0};
	uint8_t b[DUPSOCK_INFO_LEN];
	dupsock_info_encode(&in, b);
	static const uint8_t want[DUPSOCK_INFO_LEN] = {'F',  'R',  'Y', 'S', 1, 0, 0, 0,
	                                               0x92, 0x10, 0,   0,   7, 0, 0, 0};
	assert_memory_equal(b, want, sizeof(want));
	struct err e;
	err_clear(&e);
	assert_int_equal(dupsock_info_decode(b, sizeof(b), &out, &e), 0);
	assert_int_equal(out.pid, 4242);
	assert_int_equal(out.fd, 7);
}

static void refused(const uint8_t *b, size_t len, const char *needle)
{
	struct dupsock_info out;
	struct err e;
	err_clear(&e);
	assert_int_equal(dupsock_info_decode(b, len, &out, &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	assert_non_null(strstr(e.msg, needle));
}

static void test_codec_refuses(void **state)
{
	(void)state;
	uint8_t b[DUPSOCK_INFO_LEN + 1];
	struct dupsock_info in = {.pid = 1, .fd = 3};
	dupsock_info_encode(&in, b);
	refused(b, 0, "is 0 bytes, want 16");
	refused(b, 15, "is 15 bytes");
	refused(b, 17, "is 17 bytes");
	static uint8_t wsa[628]; /* a Windows WSAPROTOCOL_INFOW blob */
	refused(wsa, sizeof(wsa), "is 628 bytes");
	uint8_t c[DUPSOCK_INFO_LEN];
	memcpy(c, b, sizeof(c));
	c[0] = 'X';
	refused(c, sizeof(c), "magic");
	memcpy(c, b, sizeof(c));
	c[4] = 2;
	refused(c, sizeof(c), "version 2");
	memcpy(c, b, sizeof(c));
	memset(c + 8, 0, 4);
	refused(c, sizeof(c), "pid 0");
	memcpy(c, b, sizeof(c));
	c[11] = 0x80;
	refused(c, sizeof(c), "pid 2147483649");
	memcpy(c, b, sizeof(c));
	c[15] = 0xff;
	refused(c, sizeof(c), "fd");
}

static int take(pid_t pid, int fd, const struct dupsock_policy *pol, struct err *e)
{
	uint8_t b[DUPSOCK_INFO_LEN];
	struct dupsock_info info = {.pid = (uint32_t)pid, .fd = (uint32_t)fd};
	dupsock_info_encode(&info, b);
	err_clear(e);
	return dupsock_from_protocol_info(b, sizeof(b), pol, e);
}

static void expect_refused(pid_t pid, int fd, const struct dupsock_policy *pol, const char *needle)
{
	struct err e;
	assert_int_equal(take(pid, fd, pol, &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	if (!strstr(e.msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

/* The copy is the same socket: bytes written through it reach the peer. */
static void check_same_socket(int copy, int peer)
{
	assert_int_equal(write(copy, "ping", 4), 4);
	char buf[8];
	assert_int_equal(read(peer, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
}

static void test_takes_own_connected_socket(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct err e;
	int fd = take(getpid(), sv[0], NULL, &e);
	assert_true(fd >= 0);
	assert_int_not_equal(fd, sv[0]);
	close(sv[0]); /* the original may go: the copy keeps the socket */
	check_same_socket(fd, sv[1]);
	close(fd);
	close(sv[1]);
}

static void test_takes_tcp_socket(void **state)
{
	(void)state;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	expect_refused(getpid(), l, NULL, "is listening, not connected");
	struct err e;
	int fd = take(getpid(), c, NULL, &e);
	assert_true(fd >= 0);
	check_same_socket(fd, s);
	close(fd);
	close(c);
	close(s);
	close(l);
}

static void test_refuses_non_socket(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	expect_refused(getpid(), p[0], NULL, "is not a socket");
	close(p[0]);
	close(p[1]);
}

static void test_refuses_datagram_socket(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	expect_refused(getpid(), sv[0], NULL, "is not a stream socket");
	close(sv[0]);
	close(sv[1]);
}

static void test_refuses_unconnected_socket(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	expect_refused(getpid(), s, NULL, "is not connected");
	close(s);
}

static void test_refuses_closed_fd(void **state)
{
	(void)state;
	/* a high number: a low one would be reused by the pidfd the take opens */
	int s = dup2(STDERR_FILENO, 900);
	assert_int_equal(s, 900);
	close(s);
	expect_refused(getpid(), s, NULL, "has no fd 900");
}

static void test_refuses_dead_pid(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	expect_refused(pid, 0, NULL, "does not exist");
}

/* A child that keeps every fd but `drop` (so one end of a socket pair), running as `uid`; it waits
 * until killed.  Returns its pid once it is ready. */
static pid_t holder(int drop, uid_t uid)
{
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(drop);
		close(ready[0]);
		if (uid != geteuid() && (setgid(uid) < 0 || setuid(uid) < 0))
			_exit(1);
		(void)!write(ready[1], "r", 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char ch;
	assert_int_equal(read(ready[0], &ch, 1), 1);
	close(ready[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_takes_from_another_process(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid_t pid = holder(sv[1], geteuid());
	close(sv[0]);
	struct err e;
	int fd = take(pid, sv[0], NULL, &e); /* the child has it at the same number */
	if (fd < 0)
		fail_msg("take: %s", e.msg);
	check_same_socket(fd, sv[1]);
	close(fd);
	close(sv[1]);
	reap(pid);
}

/* The owner's uid must be allowed: with a policy that allows another uid only, even this
 * process is a foreign owner. */
static void test_refuses_disallowed_uid_by_policy(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uid_t other = geteuid() + 1;
	struct dupsock_policy pol = {.uids = &other, .n_uids = 1};
	expect_refused(getpid(), sv[0], &pol, "may not hand a socket");
	uid_t mine = geteuid();
	struct dupsock_policy ok = {.uids = &mine, .n_uids = 1};
	struct err e;
	int fd = take(getpid(), sv[0], &ok, &e);
	assert_true(fd >= 0);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* A real process of another uid (needs root to create one): refused by the default policy
 * (own uid and root), accepted when the policy allows that uid, which shows it is the uid
 * rule that refuses and not a permission failure. */
static void test_refuses_foreign_uid_process(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	const uid_t nobody = 65534;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid_t pid = holder(sv[1], nobody);
	expect_refused(pid, sv[0], NULL, "runs as uid 65534");
	struct dupsock_policy pol = {.uids = &nobody, .n_uids = 1};
	struct err e;
	int fd = take(pid, sv[0], &pol, &e);
	if (fd < 0)
		fail_msg("take with nobody allowed: %s", e.msg);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	reap(pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_round_trip),
	    cmocka_unit_test(test_codec_refuses),
	    cmocka_unit_test(test_takes_own_connected_socket),
	    cmocka_unit_test(test_takes_tcp_socket),
	    cmocka_unit_test(test_refuses_non_socket),
	    cmocka_unit_test(test_refuses_datagram_socket),
	    cmocka_unit_test(test_refuses_unconnected_socket),
	    cmocka_unit_test(test_refuses_closed_fd),
	    cmocka_unit_test(test_refuses_dead_pid),
	    cmocka_unit_test(test_takes_from_another_process),
	    cmocka_unit_test(test_refuses_disallowed_uid_by_policy),
	    cmocka_unit_test(test_refuses_foreign_uid_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
