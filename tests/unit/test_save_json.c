/* Unit tests for the allocation-free JSON check of saved-state payloads
 * (host/ctrl/save_json.h): what it accepts and refuses, each answer checked against what
 * jansson (which the controllers parse with later) says about the same text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/xalloc.h"
#include "host/ctrl/save.h"
#include "host/ctrl/save_json.h"

static int jansson_type(const char *text, size_t n)
{
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_DECODE_ANY, &je);
	if (!v)
		return -1;
	static const int map[] = {
	    [JSON_OBJECT] = SAVE_JSON_OBJECT, [JSON_ARRAY] = SAVE_JSON_ARRAY,
	    [JSON_STRING] = SAVE_JSON_STRING, [JSON_INTEGER] = SAVE_JSON_NUMBER,
	    [JSON_REAL] = SAVE_JSON_NUMBER,   [JSON_TRUE] = SAVE_JSON_TRUE,
	    [JSON_FALSE] = SAVE_JSON_FALSE,   [JSON_NULL] = SAVE_JSON_NULL,
	};
	int t = map[json_typeof(v)];
	json_decref(v);
	return t;
}

/* Scan text (n bytes) and expect `want` (a type, or -1); jansson must agree. */
static void expect_n(const char *text, size_t n, int want)
{
	struct save_json_error je = {0};
	int got = save_json_scan((const uint8_t *)text, n, &je);
	if (got != want)
		fail_msg("scan of `%.*s`: %d (%s at %zu), want %d", (int)n, text, got,
		         got < 0 ? je.reason : "-", je.offset, want);
	if (got < 0)
		assert_non_null(je.reason);
	int j = jansson_type(text, n);
	if (j != want)
		fail_msg("jansson on `%.*s`: %d, the scan says %d", (int)n, text, j, want);
}

static void expect(const char *text, int want)
{
	expect_n(text, strlen(text), want);
}

static void test_accepts(void **state)
{
	(void)state;
	expect("{}", SAVE_JSON_OBJECT);
	expect(" \t\r\n{ \"a\" : [1, -2.5e+3, 0, -0, 1E2, true, false, null, \"x\"] }\n ",
	       SAVE_JSON_OBJECT);
	expect("null", SAVE_JSON_NULL);
	expect("[]", SAVE_JSON_ARRAY);
	expect("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"", SAVE_JSON_STRING);
	expect("\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", SAVE_JSON_STRING);
	expect("9223372036854775807", SAVE_JSON_NUMBER);
	expect("-9223372036854775808", SAVE_JSON_NUMBER);
	expect("1e-400", SAVE_JSON_NUMBER); /* underflow is fine for jansson */
	expect("{\"a\":1,\"a\":2}", SAVE_JSON_OBJECT);
	expect("true", SAVE_JSON_TRUE);
	expect("false", SAVE_JSON_FALSE);
}

static void test_refuses(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    " ",
	    "{",
	    "}",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{a:1}",
	    "[1,]",
	    "[,1]",
	    "{,}",
	    "{\"a\":1,}",
	    "[1 2]",
	    "01",
	    "1.",
	    ".5",
	    "-",
	    "1e",
	    "1e+",
	    "+1",
	    "tru",
	    "truex",
	    "nul",
	    "NaN",
	    "Infinity",
	    "\"abc",
	    "\"\\x41\"",
	    "\"\\u12\"",
	    "\"\\u0000\"",
	    "\"\\udc00\"",
	    "\"\\ud800\"",
	    "\"\\ud800\\u0041\"",
	    "\"\xff\"",
	    "\"\xc0\xaf\"",
	    "\"\xed\xa0\x80\"",
	    "\"\t\"",
	    "{}{}",
	    "[] x",
	    "9223372036854775808",
	    "-9223372036854775809",
	    "1e400",
	    "\xef\xbb\xbf{}",
	    "'a'",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], -1);
	expect_n("{\"a\":\"b\0c\"}", 11, -1); /* a raw NUL */
	expect_n("{}\0", 3, -1);
	/* jansson skips a raw NUL after a number; the scan refuses it (save_json.h). */
	struct save_json_error je;
	assert_int_equal(save_json_scan((const uint8_t *)"{\"a\":0\0}", 8, &je), -1);
	assert_int_equal(jansson_type("{\"a\":0\0}", 8), SAVE_JSON_OBJECT);
}

static void test_depth(void **state)
{
	(void)state;
	/* jansson counts every value, containers included, up to 2048. */
	size_t n = SAVE_JSON_MAX_DEPTH;
	char *s = xmalloc(2 * n + 2);
	memset(s, '[', n);
	memset(s + n, ']', n);
	expect_n(s, 2 * n, SAVE_JSON_ARRAY);
	/* One value inside the deepest array is one too deep. */
	memset(s, '[', n);
	s[n] = '1';
	memset(s + n + 1, ']', n);
	expect_n(s, 2 * n + 1, -1);
	free(s);
	/* Far deeper than any stack would bear if the scan recursed. */
	n = 1000000;
	s = xmalloc(n);
	memset(s, '[', n);
	struct save_json_error je;
	assert_int_equal(save_json_scan((const uint8_t *)s, n, &je), -1);
	assert_string_equal(je.reason, "nested too deep");
	free(s);
}

static void test_long_number(void **state)
{
	(void)state;
	char num[SAVE_JSON_MAX_NUMBER + 2];
	memset(num, '1', sizeof(num));
	num[0] = '0';
	num[1] = '.';
	expect_n(num, SAVE_JSON_MAX_NUMBER, SAVE_JSON_NUMBER);
	/* Longer: refused here (jansson would take it); documented in save_json.h. */
	struct save_json_error je;
	assert_int_equal(save_json_scan((const uint8_t *)num, sizeof(num), &je), -1);
	assert_string_equal(je.reason, "number too long");
}

/* The payload check on top: an object or null. */
static void test_check_json(void **state)
{
	(void)state;
	struct save_dec d;
	struct err e;
	save_dec_init(&d, NULL, &e);
	ProtobufCBinaryData b = {.data = (uint8_t *)"{\"x\":1}", .len = 7};
	assert_int_equal(save_check_json(&d, "doc", &b, false), 0);
	b = (ProtobufCBinaryData){.data = (uint8_t *)"null", .len = 4};
	assert_int_equal(save_check_json(&d, "doc", &b, false), 0);
	b = (ProtobufCBinaryData){.data = (uint8_t *)"\"x\"", .len = 3};
	assert_int_equal(save_check_json(&d, "doc", &b, false), -EINVAL);
	assert_string_equal(e.msg, "doc: JSON string, want an object or null");
	b.len = 0;
	assert_int_equal(save_check_json(&d, "doc", &b, true), 0);
	assert_int_equal(save_check_json(&d, "doc", &b, false), -EINVAL);
	assert_string_equal(e.msg, "doc is empty, want a JSON object");
	save_dec_fini(&d);
}

/* The fast GUID text is guid_format's. */
static void test_guid_text(void **state)
{
	(void)state;
	uint32_t x = 12345;
	for (int i = 0; i < 1000; i++) {
		struct guid g;
		uint8_t raw[16];
		for (int k = 0; k < 16; k++) {
			x = x * 1103515245 + 12345;
			raw[k] = (uint8_t)(x >> 16);
		}
		guid_from_bytes(raw, &g);
		char a[GUID_STR_LEN + 1], b[GUID_STR_LEN + 1];
		assert_string_equal(save_guid_text(&g, a), guid_format(&g, b));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts),    cmocka_unit_test(test_refuses),
	    cmocka_unit_test(test_depth),      cmocka_unit_test(test_long_number),
	    cmocka_unit_test(test_check_json), cmocka_unit_test(test_guid_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
