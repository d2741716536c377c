/* Unit tests for bridge/session (and common/hex): the hex forms of secrets and proofs, the
 * bridge proof, the wake challenge and proof, and that a proof made for one purpose (or one
 * challenge, or one secret) is never valid for another. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/hex.h"

static void test_hex(void **state)
{
	(void)state;
	uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
	char s[9];
	struct err e;
	hex_encode(in, 4, s);
	assert_string_equal(s, "009fa0ff");
	assert_int_equal(hex_decode("009FA0ff", 8, out, &e), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(hex_decode("0g", 2, out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bad hex digit at 1"));
	assert_int_equal(hex_decode("012", 3, out, &e), -EINVAL);
	uint8_t k[32];
	assert_int_equal(session_hex32(NULL, k, &e), -EINVAL);
	assert_int_equal(session_hex32("00", k, &e), -EINVAL);
	char h65[66];
	memset(h65, 'a', 65);
	h65[65] = '\0';
	assert_int_equal(session_hex32(h65, k, &e), -EINVAL);
	h65[64] = '\0';
	assert_int_equal(session_hex32(h65, k, &e), 0);
	assert_int_equal(k[0], 0xaa);
}

static void test_bridge_proof(void **state)
{
	(void)state;
	uint8_t s[32], c[32], p[32];
	char hex[65];
	memset(s, 1, 32);
	memset(c, 2, 32);
	session_bridge_proof(s, c, p);
	session_hex32_encode(p, hex);
	assert_true(session_bridge_verify(s, c, hex));
	assert_false(session_bridge_verify(s, c, NULL));
	assert_false(session_bridge_verify(s, c, "short"));
	c[5] ^= 1;
	assert_false(session_bridge_verify(s, c, hex)); /* another challenge */
	c[5] ^= 1;
	s[0] ^= 1;
	assert_false(session_bridge_verify(s, c, hex)); /* another secret */
	s[0] ^= 1;
	/* labels: the wake proof of the same 32 bytes is a different value */
	uint8_t w[32];
	session_wake_proof(s, c, w);
	assert_memory_not_equal(w, p, 32);
	/* and a HELLO's mac is neither */
	struct session_auth a = {.on = true};
	memcpy(a.secret, s, 32);
	memcpy(a.challenge, c, 32);
	uint8_t m[32];
	session_hello_mac(&a, c, 24, m);
	assert_memory_not_equal(m, p, 32);
}

static void test_wake(void **state)
{
	(void)state;
	uint8_t ch[SESSION_WAKE_LEN], ch2[SESSION_WAKE_LEN], s[32], p[32];
	struct err e;
	assert_int_equal(session_wake_challenge(ch, &e), 0);
	assert_int_equal(session_wake_challenge(ch2, &e), 0);
	assert_memory_equal(ch, "FRYW\x01\x00\x00\x00", 8);
	assert_memory_not_equal(ch + 8, ch2 + 8, 24); /* random */
	assert_int_equal(session_wake_challenge_check(ch, 31, &e), 0);
	assert_int_equal(session_wake_challenge_check(ch, 32, &e), SESSION_WAKE_LEN);
	ch2[0] = 'X';
	assert_int_equal(session_wake_challenge_check(ch2, 1, &e), -EPROTO);
	memcpy(ch2, ch, 32);
	ch2[4] = 2;
	assert_int_equal(session_wake_challenge_check(ch2, 6, &e), -EPROTO);
	ch2[4] = 1;
	ch2[7] = 1;
	assert_int_equal(session_wake_challenge_check(ch2, 8, &e), -EPROTO);
	memset(s, 9, 32);
	session_wake_proof(s, ch, p);
	assert_true(session_wake_verify(s, ch, p));
	p[31] ^= 0x80;
	assert_false(session_wake_verify(s, ch, p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_bridge_proof),
	    cmocka_unit_test(test_wake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
