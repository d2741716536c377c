/* Unit tests for common/sha256: the FIPS 180-4 example vectors (one block, two blocks, the
 * million-'a' message fed in odd-sized pieces) and RFC 4231's HMAC-SHA256 test cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha256.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_digest(const void *msg, size_t len, const char *want)
{
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	sha256(msg, len, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, want);
}

static void test_vectors(void **state)
{
	(void)state;
	check_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check_digest(two, strlen(two),
	             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* 55 and 56 bytes: the padding fits, and just does not fit, in the last block */
	char m[64];
	memset(m, 'a', sizeof(m));
	check_digest(m, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	check_digest(m, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

static void test_million_a_in_pieces(void **state)
{
	(void)state;
	static uint8_t a[1000];
	memset(a, 'a', sizeof(a));
	struct sha256 s;
	sha256_init(&s);
	size_t done = 0, step = 1;
	while (done < 1000000) {
		size_t n = step < 1000000 - done ? step : 1000000 - done;
		n = n < sizeof(a) ? n : sizeof(a);
		sha256_update(&s, a, n);
		done += n;
		step = step * 7 % 997 + 1;
	}
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	sha256_final(&s, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void check_hmac(const void *key, size_t klen, const void *msg, size_t mlen, const char *want)
{
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	/* the message split in two parts must give the same MAC as one part */
	struct sha256_part parts[2] = {{msg, mlen / 2},
	                               {(const uint8_t *)msg + mlen / 2, mlen - mlen / 2}};
	hmac_sha256(key, klen, parts, 2, d);
	hex(d, sizeof(d), h);
	assert_string_equal(h, want);
}

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	uint8_t k20[20], k131[131], d50[50];
	memset(k20, 0x0b, sizeof(k20));
	check_hmac(k20, 20, "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(k20, 0xaa, sizeof(k20));
	memset(d50, 0xdd, sizeof(d50));
	check_hmac(k20, 20, d50, 50,
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	memset(k131, 0xaa, sizeof(k131));
	const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";
	check_hmac(k131, 131, big, strlen(big),
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_mem_equal_ct(void **state)
{
	(void)state;
	assert_true(mem_equal_ct("abcd", "abcd", 4));
	assert_false(mem_equal_ct("abcd", "abce", 4));
	assert_false(mem_equal_ct("xbcd", "abcd", 4));
	assert_true(mem_equal_ct("a", "b", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_million_a_in_pieces),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_mem_equal_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
