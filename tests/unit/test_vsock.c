/* Unit tests for common/vsock without real connections: address parsing and its error
 * messages, formatting round trips, the tcp port rule, the Hyper-V service GUID rule and the
 * sockaddr_hv layout, hvsock listen/dial refusal, and the hybrid CONNECT / OK line parsers
 * (split input, malformed lines, payload after the line). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/fdio.h"
#include "common/vsock.h"

/* Parse s, expecting -EINVAL and a message containing want. */
static void parse_fails(const char *s, const char *want)
{
	struct vsock_addr a;
	struct err e;
	err_clear(&e);
	assert_int_equal(vsock_addr_parse(s, &a, &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	if (!strstr(e.msg, want))
		fail_msg("parse `%s`: message `%s` lacks `%s`", s, e.msg, want);
}

/* Parse then format, expecting the canonical form. */
static void round_trip(const char *s, const char *canon)
{
	struct vsock_addr a, b;
	struct err e;
	char out[VSOCK_ADDR_STR_MAX];
	if (vsock_addr_parse(s, &a, &e) != 0)
		fail_msg("parse `%s`: %s", s, e.msg);
	assert_int_equal(vsock_addr_format(&a, out, sizeof(out)), (int)strlen(canon));
	assert_string_equal(out, canon);
	assert_int_equal(vsock_addr_parse(out, &b, &e), 0);
	assert_int_equal(b.kind, a.kind);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct vsock_addr a;
	struct err e;
	assert_int_equal(vsock_addr_parse("vsock:2", &a, &e), 0);
	assert_int_equal(a.kind, VSOCK_KIND_VSOCK);
	assert_int_equal(a.cid, 2);
	assert_int_equal(vsock_addr_parse("hvsock:{E0E16197-DD56-4A10-9195-5EE7A155A838}", &a, &e),
	                 0);
	assert_int_equal(a.kind, VSOCK_KIND_HVSOCK);
	assert_int_equal(a.vmid.data1, 0xe0e16197);
	assert_int_equal(vsock_addr_parse("hybrid:/run/x/v.sock", &a, &e), 0);
	assert_int_equal(a.kind, VSOCK_KIND_HYBRID);
	assert_string_equal(a.path, "/run/x/v.sock");
	assert_int_equal(vsock_addr_parse("unix:rel/p", &a, &e), 0);
	assert_int_equal(a.kind, VSOCK_KIND_UNIX);
	assert_int_equal(vsock_addr_parse("tcp:10.0.2.2", &a, &e), 0);
	assert_int_equal(a.kind, VSOCK_KIND_TCP);
	assert_string_equal(a.host, "10.0.2.2");
	assert_int_equal(a.tcp_base, 40000);
	assert_int_equal(vsock_addr_parse("tcp:localhost:50000", &a, &e), 0);
	assert_string_equal(a.host, "localhost");
	assert_int_equal(a.tcp_base, 50000);
	assert_int_equal(vsock_addr_parse("tcp:[::1]:2048", &a, &e), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.tcp_base, 2048);
	assert_int_equal(vsock_addr_parse("tcp:fe80::1", &a, &e), 0);
	assert_string_equal(a.host, "fe80::1");
	assert_int_equal(a.tcp_base, 40000);
	/* longest accepted path */
	char s[8 + VSOCK_PATH_MAX + 1];
	memcpy(s, "hybrid:", 7);
	memset(s + 7, 'p', VSOCK_PATH_MAX);
	s[7 + VSOCK_PATH_MAX] = '\0';
	assert_int_equal(vsock_addr_parse(s, &a, &e), 0);
	assert_int_equal(strlen(a.path), VSOCK_PATH_MAX);
}

static void test_parse_errors(void **state)
{
	(void)state;
	parse_fails("", "want SCHEME:VALUE");
	parse_fails("vsock", "want SCHEME:VALUE");
	parse_fails("udp:1.2.3.4", "unknown scheme `udp`");
	parse_fails("VSOCK:2", "unknown scheme `VSOCK`");
	parse_fails("vsock:", "bad cid");
	parse_fails("vsock:x", "bad cid");
	parse_fails("vsock:-1", "bad cid");
	parse_fails("vsock:2 ", "bad cid");
	parse_fails("vsock:4294967296", "bad cid");
	parse_fails("vsock:4294967295", "is not a peer");
	parse_fails("hvsock:", "bad vm id");
	parse_fails("hvsock:e0e16197-dd56-4a10-9195-5ee7a155a83", "bad vm id");
	parse_fails("hvsock:g0e16197-dd56-4a10-9195-5ee7a155a838", "bad hex");
	parse_fails("hybrid:", "empty path");
	parse_fails("unix:", "empty path");
	parse_fails("tcp:", "empty host");
	parse_fails("tcp::40000", "empty host");
	parse_fails("tcp:[]:40000", "empty host");
	parse_fails("tcp:[::1", "missing ']'");
	parse_fails("tcp:[::1]x", "want ':BASE'");
	parse_fails("tcp:h:", "bad base");
	parse_fails("tcp:h:abc", "bad base");
	parse_fails("tcp:h:1024", "bad base");
	parse_fails("tcp:h:1025", "bad base");
	parse_fails("tcp:h:65536", "bad base");
	parse_fails("tcp:h:-5", "bad base");
	char s[8 + VSOCK_PATH_MAX + 2];
	memcpy(s, "hybrid:", 7);
	memset(s + 7, 'p', VSOCK_PATH_MAX + 1);
	s[7 + VSOCK_PATH_MAX + 1] = '\0';
	parse_fails(s, "path too long");
	char h[5 + VSOCK_HOST_MAX + 2];
	memcpy(h, "tcp:", 4);
	memset(h + 4, 'h', VSOCK_HOST_MAX + 1);
	h[4 + VSOCK_HOST_MAX + 1] = '\0';
	parse_fails(h, "host longer");
	struct err e;
	assert_int_equal(vsock_addr_parse(NULL, NULL, &e), -EINVAL);
}

static void test_format(void **state)
{
	(void)state;
	round_trip("vsock:3", "vsock:3");
	round_trip("hvsock:{E0E16197-DD56-4A10-9195-5EE7A155A838}",
	           "hvsock:e0e16197-dd56-4a10-9195-5ee7a155a838");
	round_trip("hybrid:/tmp/v.sock", "hybrid:/tmp/v.sock");
	round_trip("unix:/tmp/u", "unix:/tmp/u");
	round_trip("tcp:10.0.2.2", "tcp:10.0.2.2");
	round_trip("tcp:10.0.2.2:40000", "tcp:10.0.2.2");
	round_trip("tcp:h:41000", "tcp:h:41000");
	round_trip("tcp:::1", "tcp:[::1]");
	round_trip("tcp:[::1]:2000", "tcp:[::1]:2000");
	struct vsock_addr a;
	struct err e;
	char small[8];
	assert_int_equal(vsock_addr_parse("hybrid:/tmp/long", &a, &e), 0);
	assert_int_equal(vsock_addr_format(&a, small, sizeof(small)), 16);
	assert_string_equal(small, "hybrid:");
	a.kind = (enum vsock_kind)99;
	assert_int_equal(vsock_addr_format(&a, small, sizeof(small)), -EINVAL);
	assert_string_equal(vsock_kind_name(VSOCK_KIND_TCP), "tcp");
	assert_string_equal(vsock_kind_name((enum vsock_kind)99), "?");
}

static void test_tcp_rule(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(vsock_tcp_port(40000, 0x40000000u, &e), 40000);
	assert_int_equal(vsock_tcp_port(40000, 0x40000001u, &e), 40001);
	assert_int_equal(vsock_tcp_port(40000, 0x40000000u + 25535, &e), 65535);
	assert_int_equal(vsock_tcp_port(40000, 1, &e), 38977);
	assert_int_equal(vsock_tcp_port(40000, 109, &e), 39085);
	assert_int_equal(vsock_tcp_port(40000, 564, &e), 39540);
	assert_int_equal(vsock_tcp_port(40000, 0, &e), 38976);
	assert_int_equal(vsock_tcp_port(40000, 1023, &e), 39999);
	assert_int_equal(vsock_tcp_port(1026, 0, &e), 2);
	assert_int_equal(vsock_tcp_port(40000, 0x3fffffffu, &e), 38975);
	assert_int_equal(vsock_tcp_port(1026, 0x3fffffffu, &e), 1);
	assert_int_equal(vsock_tcp_port(1025, 0, &e), -ERANGE);
	assert_int_equal(vsock_tcp_port(2048, 0x40000000u + 10, &e), 2058);
	/* rejects */
	assert_int_equal(vsock_tcp_port(40000, 0x40000000u + 25536, &e), -ERANGE);
	assert_non_null(strstr(e.msg, "has no tcp mapping"));
	assert_int_equal(vsock_tcp_port(40000, 1024, &e), -ERANGE);
	assert_non_null(strstr(e.msg, "vsock port 1024"));
	assert_int_equal(vsock_tcp_port(40000, 0x3ffffffeu, &e), -ERANGE);
	assert_int_equal(vsock_tcp_port(40000, UINT32_MAX, &e), -ERANGE);
	assert_int_equal(vsock_tcp_port(65535, 0x40000001u, &e), -ERANGE);
	assert_int_equal(vsock_tcp_port(1024, 5, &e), -ERANGE);
	/* the mapping is injective over its domain */
	assert_true(vsock_tcp_port(40000, 0x3fffffffu, &e) < vsock_tcp_port(40000, 0, &e));
	assert_true(vsock_tcp_port(40000, 1023, &e) < vsock_tcp_port(40000, 0x40000000u, &e));
	/* listen/dial refuse an unmappable port before touching the network */
	struct vsock_addr a;
	assert_int_equal(vsock_addr_parse("tcp:127.0.0.1", &a, &e), 0);
	assert_int_equal(vsock_listen(&a, 5000, &e), -ERANGE);
	assert_non_null(strstr(e.msg, "has no tcp mapping"));
	assert_int_equal(vsock_dial(&a, 5000, 100, &e), -ERANGE);
}

static void test_unix_paths(void **state)
{
	(void)state;
	struct err e;
	char p[108];
	assert_int_equal(vsock_unix_path("/run/x/v.sock", 52, p, sizeof(p), &e), 0);
	assert_string_equal(p, "/run/x/v.sock_52");
	assert_int_equal(vsock_unix_guest_path("/run/x/v.sock", 1073741824u, p, sizeof(p), &e), 0);
	assert_string_equal(p, "/run/x/v.sock.guest_1073741824");
	char longp[VSOCK_PATH_MAX + 1];
	memset(longp, 'a', VSOCK_PATH_MAX);
	longp[VSOCK_PATH_MAX] = '\0';
	assert_int_equal(vsock_unix_guest_path(longp, UINT32_MAX, p, sizeof(p), &e), 0);
	assert_int_equal(vsock_unix_path("/x", 1, p, 4, &e), -ENAMETOOLONG);
}

static void test_hv_service_id(void **state)
{
	(void)state;
	struct guid g;
	struct err e;
	char s[GUID_STR_LEN + 1];
	uint32_t port = 0;
	vsock_hv_service_id(0x40000000u, &g);
	assert_string_equal(guid_format(&g, s), "40000000-facb-11e6-bd58-64006a7986d3");
	vsock_hv_service_id(109, &g);
	assert_string_equal(guid_format(&g, s), "0000006d-facb-11e6-bd58-64006a7986d3");
	vsock_hv_service_id(564, &g);
	assert_string_equal(guid_format(&g, s), "00000234-facb-11e6-bd58-64006a7986d3");
	vsock_hv_service_id(0xdeadbeefu, &g);
	assert_string_equal(guid_format(&g, s), "deadbeef-facb-11e6-bd58-64006a7986d3");
	assert_int_equal(vsock_hv_port_from_service_id(&g, &port, &e), 0);
	assert_int_equal(port, 0xdeadbeefu);
	assert_int_equal(guid_parse("40000001-FACB-11E6-BD58-64006A7986D3", &g, &e), 0);
	assert_int_equal(vsock_hv_port_from_service_id(&g, &port, &e), 0);
	assert_int_equal(port, 0x40000001u);
	/* not the template */
	port = 7;
	assert_int_equal(guid_parse("40000000-facb-11e6-bd58-64006a7986d4", &g, &e), 0);
	assert_int_equal(vsock_hv_port_from_service_id(&g, &port, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "is not a vsock port"));
	assert_int_equal(port, 7);
	assert_int_equal(guid_parse("acef5661-84a1-4e44-856b-6245e69f4620", &g, &e), 0);
	assert_int_equal(vsock_hv_port_from_service_id(&g, &port, &e), -EINVAL);
	assert_int_equal(guid_parse("40000000-facc-11e6-bd58-64006a7986d3", &g, &e), 0);
	assert_int_equal(vsock_hv_port_from_service_id(&g, &port, &e), -EINVAL);
}

static void test_hv_sockaddr(void **state)
{
	(void)state;
	struct guid vm;
	struct err e;
	struct sockaddr_hv sa;
	assert_int_equal(sizeof(struct sockaddr_hv), 36);
	assert_int_equal(offsetof(struct sockaddr_hv, vm_id), 4);
	assert_int_equal(offsetof(struct sockaddr_hv, service_id), 20);
	assert_int_equal(guid_parse("e0e16197-dd56-4a10-9195-5ee7a155a838", &vm, &e), 0);
	memset(&sa, 0xff, sizeof(sa));
	vsock_hv_sockaddr(&vm, 0x40000000u, &sa);
	const uint8_t *b = (const uint8_t *)&sa;
	static const uint8_t want[36] = {
	    34,   0,    0,    0, /* family, reserved */
	    0x97, 0x61, 0xe1, 0xe0, 0x56, 0xdd, 0x10, 0x4a, 0x91,
	    0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38, /* VmId */
	    0x00, 0x00, 0x00, 0x40, 0xcb, 0xfa, 0xe6, 0x11, 0xbd,
	    0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3}; /* ServiceId: 40000000-facb-11e6-bd58-64006a7986d3 */
	assert_memory_equal(b, want, 36);
	assert_int_equal(sa.family, AF_HYPERV);
}

static void test_hvsock_unsupported(void **state)
{
	(void)state;
	struct vsock_addr a;
	struct err e;
	assert_int_equal(vsock_addr_parse("hvsock:e0e16197-dd56-4a10-9195-5ee7a155a838", &a, &e),
	                 0);
	err_clear(&e);
	assert_int_equal(vsock_listen(&a, 0x40000000u, &e), -EAFNOSUPPORT);
	assert_non_null(strstr(e.msg, "hvsock transport is only available on Windows hosts"));
	err_clear(&e);
	assert_int_equal(vsock_dial(&a, 0x40000000u, 100, &e), -EAFNOSUPPORT);
	assert_non_null(strstr(e.msg, "only available on Windows hosts"));
	assert_int_equal(vsock_dial_guest(&a, 1, 100, NULL, &e), -EAFNOSUPPORT);
	assert_int_equal(vsock_listen_guest(&a, 1, &e), -EAFNOSUPPORT);
	assert_null(vsock_dialer_new(NULL, &a, 1, 100, NULL, NULL, &e));
	assert_int_equal(e.code, -EAFNOSUPPORT);
}

/* Feed s one byte at a time: every proper prefix needs more, the whole gives want_port. */
static void connect_bytewise(const char *s, uint32_t want_port)
{
	uint32_t port = 0;
	size_t ll = 0, n = strlen(s);
	struct err e;
	for (size_t i = 1; i < n; i++) {
		int r = vsock_hybrid_parse_connect(s, i, &port, &ll, &e);
		if (r != 0)
			fail_msg("`%s` prefix %zu: got %d (%s)", s, i, r, r < 0 ? e.msg : "");
	}
	assert_int_equal(vsock_hybrid_parse_connect(s, n, &port, &ll, &e), 1);
	assert_int_equal(port, want_port);
	assert_int_equal(ll, n);
}

static void connect_bad(const char *s, const char *want)
{
	uint32_t port = 0;
	size_t ll = 0;
	struct err e;
	err_clear(&e);
	assert_int_equal(vsock_hybrid_parse_connect(s, strlen(s), &port, &ll, &e), -EINVAL);
	if (!strstr(e.msg, want))
		fail_msg("`%s`: message `%s` lacks `%s`", s, e.msg, want);
}

static void test_connect_parser(void **state)
{
	(void)state;
	connect_bytewise("CONNECT 52\n", 52);
	connect_bytewise("connect 0\n", 0);
	connect_bytewise("CoNnEcT 1073741824\n", 1073741824u);
	connect_bytewise("CONNECT    7  \n", 7);
	connect_bytewise("CONNECT\t9\r\n", 9);
	connect_bytewise("CONNECT 4294967295\n", UINT32_MAX);
	connect_bytewise("CONNECT 00000000000000000000052\n", 52); /* exactly 32 bytes */
	/* payload after the line is not part of it */
	const char *s = "CONNECT 5\nhello";
	uint32_t port;
	size_t ll;
	struct err e;
	assert_int_equal(vsock_hybrid_parse_connect(s, strlen(s), &port, &ll, &e), 1);
	assert_int_equal(ll, 10);
	assert_int_equal(port, 5);
	/* malformed */
	connect_bad("HELLO 5\n", "bad command");
	connect_bad("CONNEXT 5\n", "bad command");
	connect_bad("X", "bad command"); /* rejected before the line ends */
	connect_bad("CONNECT5\n", "want a space");
	connect_bad("CONNECT abc\n", "not a number");
	connect_bad("CONNECT -5\n", "not a number");
	connect_bad("CONNECT \n", "not a number");
	connect_bad("CONNECT 12a\n", "junk after the port");
	connect_bad("CONNECT 1 2\n", "junk after the port");
	connect_bad("CONNECT 4294967296\n", "out of range");
	connect_bad("CONNECT 99999999999999999999\n", "out of range");
	connect_bad("CONNECT 000000000000000000000052\n", "longer than 32");
	connect_bad("CONNECT                         5", "without newline within 32");
	assert_int_equal(vsock_hybrid_parse_connect("CONNECT 5\0\n", 11, &port, &ll, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "junk after the port"));
	/* non-printable bytes are escaped in the message */
	assert_int_equal(vsock_hybrid_parse_connect("\x01\xff", 2, &port, &ll, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "\\x01\\xff"));
	/* a valid prefix waits for more */
	assert_int_equal(vsock_hybrid_parse_connect("conn", 4, &port, &ll, &e), 0);
	assert_int_equal(vsock_hybrid_parse_connect("", 0, &port, &ll, &e), 0);
}

static void test_ok_parser(void **state)
{
	(void)state;
	uint32_t hp = 0;
	size_t ll = 0;
	struct err e;
	const char *ok = "OK 1073741824\n";
	for (size_t i = 0; i < strlen(ok); i++)
		assert_int_equal(vsock_hybrid_parse_ok(ok, i, &hp, &ll, &e), 0);
	assert_int_equal(vsock_hybrid_parse_ok(ok, strlen(ok), &hp, &ll, &e), 1);
	assert_int_equal(hp, 1073741824u);
	assert_int_equal(ll, strlen(ok));
	assert_int_equal(vsock_hybrid_parse_ok("OK 1\npayload", 12, &hp, &ll, &e), 1);
	assert_int_equal(ll, 5);
	const char *bad[] = {"ok 5\n", "OK\n",   "OK 5 \n",         "OK  5\n", "OK x\n",
	                     "OK \n",  "KO 5\n", "OK 4294967296\n", "OK 5\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		if (vsock_hybrid_parse_ok(bad[i], strlen(bad[i]), &hp, &ll, &e) != -EPROTO)
			fail_msg("`%s` accepted", bad[i]);
		assert_int_equal(e.code, -EPROTO);
	}
	assert_int_equal(
	    vsock_hybrid_parse_ok("OK 0000000000000000000000000000001", 33, &hp, &ll, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "without newline within 32"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),       cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_format),         cmocka_unit_test(test_tcp_rule),
	    cmocka_unit_test(test_unix_paths),     cmocka_unit_test(test_hv_service_id),
	    cmocka_unit_test(test_hv_sockaddr),    cmocka_unit_test(test_hvsock_unsupported),
	    cmocka_unit_test(test_connect_parser), cmocka_unit_test(test_ok_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
