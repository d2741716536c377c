/* Windows sockets under wine: CreateDuplicateSocket's Windows half (hcs_dupsock: a
 * WSAPROTOCOL_INFOW round trip of a connected loopback socket, hcsshim's size and
 * SO_CONNECT_TIME rules) and the vsock shim's hvsock: listener (AF_HYPERV; outside Hyper-V the
 * socket cannot be made, which must be a clean -EAFNOSUPPORT), and libev's select backend
 * watching a socket on Windows. */
#include <winsock2.h>
#include <windows.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/vsock.h"
#include "common/win/wsa.h"
#include "host/vmm/hcs/win/hcs_dupsock.h"
#include "tests/windows/lib/wintest.h"

/* hcsshim's TestProtocolInfoNativeLayout: the blob is the native struct, no padding. */
static void test_protocol_info_size(void **state)
{
	(void)state;
	assert_int_equal(HCS_PROTOCOL_INFO_SIZE, 628);
}

/* hcsshim's EndToEnd: a duplicated connected socket works in the importing process. */
static void test_dupsock_round_trip(void **state)
{
	(void)state;
	SOCKET s[2];
	struct err e = {0};
	assert_int_equal(wintest_socketpair(s), 0);
	uint8_t info[HCS_PROTOCOL_INFO_SIZE + 16];
	memset(info, 0xee, sizeof(info)); /* extra bytes after the struct are ignored */
	assert_int_equal(hcs_dupsock_export(s[0], GetCurrentProcessId(), info, &e), 0);
	closesocket(s[0]); /* the duplicate must stand on its own */
	SOCKET dup = INVALID_SOCKET;
	assert_int_equal(hcs_dupsock_import(info, sizeof(info), &dup, &e), 0);
	assert_true(dup != INVALID_SOCKET);
	assert_int_equal(send(dup, "ping", 4, 0), 4);
	char b[8] = {0};
	assert_int_equal(recv(s[1], b, sizeof(b), 0), 4);
	assert_memory_equal(b, "ping", 4);
	closesocket(dup);
	closesocket(s[1]);
}

/* hcsshim's TooSmall, and a never-connected socket (FailedPrecondition). */
static void test_dupsock_refusals(void **state)
{
	(void)state;
	struct err e = {0};
	SOCKET dup;
	uint8_t info[HCS_PROTOCOL_INFO_SIZE] = {0};
	assert_int_equal(hcs_dupsock_import(info, HCS_PROTOCOL_INFO_SIZE - 1, &dup, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "want at least 628"));
	assert_int_equal(wsa_start(&e), 0);
	SOCKET lone = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lone != INVALID_SOCKET);
	assert_int_equal(hcs_dupsock_export(lone, GetCurrentProcessId(), info, &e), 0);
	assert_int_equal(hcs_dupsock_import(info, sizeof(info), &dup, &e), -ENOTCONN);
	assert_string_equal(e.msg, "the duplicated socket is not connected");
	closesocket(lone);
	/* bytes that are no protocol info at all */
	memset(info, 0, sizeof(info));
	assert_int_equal(hcs_dupsock_import(info, sizeof(info), &dup, &e), -EIO);
	assert_non_null(strstr(e.msg, "WSASocketW"));
}

/* hvsock listeners: the address rules hold, and where AF_HYPERV exists the socket listens;
 * under wine it does not, which is a clean -EAFNOSUPPORT naming the transport. */
static void test_hvsock_listen(void **state)
{
	(void)state;
	struct vsock_addr a;
	struct err e = {0};
	assert_int_equal(vsock_addr_parse("hvsock:5f0b1190-63be-4e0c-b974-bd0f55675a42", &a, &e),
	                 0);
	int fd = vsock_listen(&a, 0x40000000, &e);
	if (fd >= 0) { /* a Hyper-V host */
		struct sockaddr_storage ss;
		int n = sizeof(ss);
		assert_int_equal(getsockname((SOCKET)(intptr_t)fd, (struct sockaddr *)&ss, &n), 0);
		assert_int_equal(ss.ss_family, 34);
		vsock_unlisten(&a, 0x40000000, fd);
	} else {
		assert_int_equal(fd, -EAFNOSUPPORT);
		assert_non_null(strstr(e.msg, "socket(AF_HYPERV)"));
		assert_non_null(strstr(e.msg, "10047")); /* WSAEAFNOSUPPORT */
	}
	assert_int_equal(vsock_addr_parse("tcp:127.0.0.1", &a, &e), 0);
	assert_int_equal(vsock_listen(&a, 0x40000000, &e), -EAFNOSUPPORT);
	assert_non_null(strstr(e.msg, "only the hvsock transport"));
}

struct io {
	bool readable;
};

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	((struct io *)w->data)->readable = true;
	ev_io_stop(loop, w);
}

/* The embedded libev: an ev_io on a SOCKET wakes up through winsock's select. */
static void test_libev_select(void **state)
{
	(void)state;
	SOCKET s[2];
	assert_int_equal(wintest_socketpair(s), 0);
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	assert_int_equal(ev_backend(loop), EVBACKEND_SELECT);
	struct io st = {false};
	ev_io w;
	ev_io_init(&w, on_readable, (int)(intptr_t)s[1], EV_READ);
	w.data = &st;
	ev_io_start(loop, &w);
	wintest_run_for(loop, 20);
	assert_false(st.readable);
	assert_int_equal(send(s[0], "x", 1, 0), 1);
	assert_true(wintest_run_until(loop, &st.readable));
	ev_loop_destroy(loop);
	closesocket(s[0]);
	closesocket(s[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_protocol_info_size), cmocka_unit_test(test_dupsock_round_trip),
	    cmocka_unit_test(test_dupsock_refusals),   cmocka_unit_test(test_hvsock_listen),
	    cmocka_unit_test(test_libev_select),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
