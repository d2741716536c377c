/* Unit tests for host/vmm/hcs/gojson and hcs_unicode: the bytes Go's encoding/json writes
 * (strings, float64), what its decoder accepts and refuses, Go's field-name matching, string
 * unquoting with U+FFFD replacement, ParseUint rules, and UTF-8 <-> UTF-16 with replacement.
 * Portable: also cross-built and run under wine. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/hcs/gojson.h"
#include "host/vmm/hcs/hcs_unicode.h"

/* What gojson writes for one string, NUL-terminated, in a static buffer. */
static const char *wstr(const char *s, size_t n)
{
	static char out[256];
	struct buf b;
	struct gojson_w w;
	buf_init(&b);
	gojson_w_init(&w, &b);
	gojson_w_strn(&w, s, n);
	assert_true(buf_avail(&b) < sizeof(out));
	memcpy(out, buf_head(&b), buf_avail(&b));
	out[buf_avail(&b)] = '\0';
	buf_fini(&b);
	return out;
}

static const char *wf64(double v)
{
	static char out[64];
	struct buf b;
	struct gojson_w w;
	struct err e = {0};
	buf_init(&b);
	gojson_w_init(&w, &b);
	assert_int_equal(gojson_w_f64(&w, v, &e), 0);
	memcpy(out, buf_head(&b), buf_avail(&b));
	out[buf_avail(&b)] = '\0';
	buf_fini(&b);
	return out;
}

static void test_write_strings(void **state)
{
	(void)state;
	assert_string_equal(wstr("Source", 6), "\"Source\"");
	/* HTML-safe escaping and the JS line separators, as Go's default encoder */
	assert_string_equal(wstr("<a&b>", 5), "\"\\u003ca\\u0026b\\u003e\"");
	assert_string_equal(wstr("\xe2\x80\xa8|\xe2\x80\xa9", 7), "\"\\u2028|\\u2029\"");
	assert_string_equal(wstr("q\"b\\", 4), "\"q\\\"b\\\\\"");
	assert_string_equal(wstr("\b\f\n\r\t\x01\x1f", 7), "\"\\b\\f\\n\\r\\t\\u0001\\u001f\"");
	/* invalid UTF-8: each bad byte becomes U+FFFD; valid multi-byte runes are kept */
	assert_string_equal(wstr("a\xff\xc3\xa9\xed\xa0\x80", 7),
	                    "\"a\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
	assert_string_equal(wstr("C:\\vm\\disk.vhdx", 15), "\"C:\\\\vm\\\\disk.vhdx\"");
}

static void test_write_floats(void **state)
{
	(void)state;
	assert_string_equal(wf64(50), "50");
	assert_string_equal(wf64(12.5), "12.5");
	assert_string_equal(wf64(0.1), "0.1");
	assert_string_equal(wf64(-0.0), "-0");
	assert_string_equal(wf64(0), "0");
	assert_string_equal(wf64(1e20), "100000000000000000000");
	assert_string_equal(wf64(1e21), "1e+21");
	assert_string_equal(wf64(0.000001), "0.000001");
	assert_string_equal(wf64(1e-7), "1e-7");
	assert_string_equal(wf64(1.5e-7), "1.5e-7");
	assert_string_equal(wf64(123456789.125), "123456789.125");
	assert_string_equal(wf64(5e-324), "5e-324");
	assert_string_equal(wf64(1.7976931348623157e308), "1.7976931348623157e+308");
	assert_string_equal(wf64(1e-100), "1e-100");

	struct buf b;
	struct gojson_w w;
	struct err e = {0};
	buf_init(&b);
	gojson_w_init(&w, &b);
	assert_int_equal(gojson_w_f64(&w, NAN, &e), -EINVAL);
	assert_string_equal(e.msg, "json: unsupported value: NaN");
	assert_int_equal(gojson_w_f64(&w, -INFINITY, &e), -EINVAL);
	assert_string_equal(e.msg, "json: unsupported value: -Inf");
	assert_int_equal(buf_avail(&b), 0);
	buf_fini(&b);
}

static void test_write_object(void **state)
{
	(void)state;
	struct buf b;
	struct gojson_w w;
	buf_init(&b);
	gojson_w_init(&w, &b);
	gojson_w_obj_begin(&w);
	gojson_w_key(&w, "A");
	gojson_w_u64(&w, UINT64_MAX);
	gojson_w_key(&w, "B");
	gojson_w_obj_begin(&w);
	gojson_w_obj_end(&w);
	gojson_w_key(&w, "C");
	gojson_w_obj_begin(&w);
	gojson_w_key(&w, "D");
	gojson_w_bool(&w, false);
	gojson_w_key(&w, "E");
	gojson_w_null(&w);
	gojson_w_obj_end(&w);
	gojson_w_key(&w, "F");
	gojson_w_base64(&w, (const uint8_t *)"abcd", 4);
	gojson_w_obj_end(&w);
	const char want[] = "{\"A\":18446744073709551615,\"B\":{},\"C\":{\"D\":false,\"E\":null},"
	                    "\"F\":\"YWJjZA==\"}";
	assert_int_equal(buf_avail(&b), strlen(want));
	assert_memory_equal(buf_head(&b), want, strlen(want));
	buf_fini(&b);
}

static int validate(const char *s)
{
	struct err e = {0};
	err_clear(&e);
	int r = gojson_validate(s, strlen(s), &e);
	if (r < 0)
		assert_true(e.msg[0] != '\0');
	return r;
}

static void test_validate(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "{}",
	    " [ ] ",
	    "null",
	    "true",
	    "-0",
	    "0.5e+10",
	    "1E-2",
	    "\"\\u00e9\\ud83d\\ude00\"",
	    "{\"a\":[1,{\"b\":null}],\"c\":\"\\\"\"}",
	    "\"\xff\"", /* raw bad UTF-8 is allowed */
	};
	static const char *const bad[] = {
	    "",         "   ",        "{",
	    "{\"a\"}",  "{\"a\":1,}", "[1,]",
	    "01",       "1.",         "-",
	    "1e",       "+1",         "tru",
	    "nul",      "{} x",       "{a:1}",
	    "\"\x01\"", "\"\\x\"",    "\"\\u12g4\"",
	    "[1 2]",    "\"abc",      "{\"a\":1 \"b\":2}",
	    "NaN",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(validate(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(validate(bad[i]), -EINVAL);
	struct err e = {0};
	assert_int_equal(gojson_validate("", 0, &e), -EINVAL);
	assert_string_equal(e.msg, "unexpected end of JSON input");
}

static void test_depth_limit(void **state)
{
	(void)state;
	size_t n = GOJSON_MAX_DEPTH + 1;
	char *s = malloc(2 * n);
	memset(s, '[', n);
	memset(s + n, ']', n);
	struct err e = {0};
	assert_int_equal(gojson_validate(s, 2 * n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "exceeded max depth"));
	/* exactly at the limit is fine */
	assert_int_equal(gojson_validate(s + 1, 2 * n - 2, &e), 0);
	free(s);
}

static void test_members_and_keys(void **state)
{
	(void)state;
	const char *doc = " { \"event\" : \"x\", \"Re\\u017fult\": 1, \"Or\xc4\xb1gin\":[1,\"}\"],"
	                  "\"\xe2\x84\xaaind\":{}, \"Event\":null } ";
	struct gojson_val top, k, v;
	struct gojson_iter it;
	struct err e = {0};
	assert_int_equal(gojson_parse(doc, strlen(doc), &top, &e), 0);
	assert_int_equal(top.kind, GOJSON_OBJECT);
	gojson_obj_iter(&top, &it);
	assert_int_equal(gojson_obj_next(&it, &k, &v), 1);
	assert_true(gojson_key_is(&k, "Event")); /* ASCII case folded */
	assert_false(gojson_key_is(&k, "Events"));
	assert_true(gojson_str_is(&v, "x"));
	assert_int_equal(gojson_obj_next(&it, &k, &v), 1);
	assert_true(gojson_key_is(&k, "Result")); /* U+017F folds onto S */
	assert_int_equal(v.kind, GOJSON_NUMBER);
	assert_int_equal(gojson_obj_next(&it, &k, &v), 1);
	assert_true(gojson_key_is(&k, "Origin")); /* U+0131 folds onto I */
	assert_int_equal(v.kind, GOJSON_ARRAY);
	assert_int_equal(v.n, strlen("[1,\"}\"]"));
	assert_int_equal(gojson_obj_next(&it, &k, &v), 1);
	assert_true(gojson_key_is(&k, "Kind")); /* U+212A (KELVIN SIGN) folds onto K */
	assert_false(gojson_key_is(&k, "Kin"));
	assert_int_equal(v.kind, GOJSON_OBJECT);
	assert_int_equal(gojson_obj_next(&it, &k, &v), 1);
	assert_int_equal(v.kind, GOJSON_NULL);
	assert_int_equal(gojson_obj_next(&it, &k, &v), 0);
}

static void test_strings(void **state)
{
	(void)state;
	const char *doc = "[\"\\u0053ource\",\"a\\ud800b\",\"\\ud83d\\ude00\",\"\xc3\",\"\\u0000\","
	                  "\"\\/\\n\"]";
	struct gojson_val top, v;
	struct err e = {0};
	char out[32];
	assert_int_equal(gojson_parse(doc, strlen(doc), &top, &e), 0);
	const char *p = top.p + 1;
	const char *want[] = {"Source",
	                      "a\xef\xbf\xbd"
	                      "b",
	                      "\xf0\x9f\x98\x80",
	                      "\xef\xbf\xbd",
	                      NULL,
	                      "/\n"};
	for (int i = 0; i < 6; i++) {
		struct gojson_val t = {GOJSON_STRING, p, 0};
		/* the values are separated by exactly one comma */
		const char *q = p + 1;
		while (*q != '"' || q[-1] == '\\')
			q++;
		t.n = (size_t)(q + 1 - p);
		v = t;
		if (want[i]) {
			assert_int_equal(gojson_str(&v, out, sizeof(out)), (int)strlen(want[i]));
			assert_string_equal(out, want[i]);
			assert_true(gojson_str_is(&v, want[i]));
		} else {
			assert_int_equal(gojson_str(&v, out, sizeof(out)), 1); /* one NUL byte */
			assert_false(gojson_str_is(&v, ""));
		}
		p = q + 2;
	}
	struct gojson_val s = {GOJSON_STRING, "\"abcdef\"", 8};
	assert_int_equal(gojson_str(&s, out, 4), -ENOSPC);
	assert_string_equal(out, "abc");
}

static void test_numbers(void **state)
{
	(void)state;
	struct gojson_val v = {GOJSON_NUMBER, "18446744073709551615", 20};
	uint64_t u;
	int64_t i;
	assert_int_equal(gojson_u64(&v, &u), 0);
	assert_true(u == UINT64_MAX);
	v.p = "18446744073709551616";
	assert_int_equal(gojson_u64(&v, &u), -ERANGE);
	v.p = "-1";
	v.n = 2;
	assert_int_equal(gojson_u64(&v, &u), -EINVAL);
	assert_int_equal(gojson_i64(&v, &i), 0);
	assert_true(i == -1);
	v.p = "1e3";
	v.n = 3;
	assert_int_equal(gojson_u64(&v, &u), -EINVAL);
	v.p = "-9223372036854775808";
	v.n = 20;
	assert_int_equal(gojson_i64(&v, &i), 0);
	assert_true(i == INT64_MIN);
	v.p = "9223372036854775808";
	v.n = 19;
	assert_int_equal(gojson_i64(&v, &i), -ERANGE);
}

static void test_utf16(void **state)
{
	(void)state;
	size_t units;
	/* "é😀" and a bad byte */
	uint16_t *w = hcs_unicode_to_utf16("\xc3\xa9\xf0\x9f\x98\x80\xff", 7, &units);
	assert_int_equal(units, 4);
	assert_int_equal(w[0], 0xe9);
	assert_int_equal(w[1], 0xd83d);
	assert_int_equal(w[2], 0xde00);
	assert_int_equal(w[3], 0xfffd);
	assert_int_equal(w[4], 0);
	free(w);

	struct buf b;
	struct err e = {0};
	buf_init(&b);
	static const uint16_t lone[] = {'a', 0xdc00, 0xd800, 'b', 0xd83d, 0xde00, 0};
	assert_int_equal(hcs_unicode_from_utf16(lone, 16, &b, &e), 0);
	const char want[] = "a\xef\xbf\xbd\xef\xbf\xbd"
	                    "b\xf0\x9f\x98\x80";
	assert_int_equal(buf_avail(&b), strlen(want));
	assert_memory_equal(buf_head(&b), want, strlen(want));
	buf_reset(&b);
	/* no NUL within the limit: refused, nothing appended */
	assert_int_equal(hcs_unicode_from_utf16(lone, 3, &b, &e), -E2BIG);
	assert_int_equal(buf_avail(&b), 0);
	assert_int_equal(hcs_unicode_from_utf16(NULL, 3, &b, &e), 0);
	assert_int_equal(buf_avail(&b), 0);
	buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_strings), cmocka_unit_test(test_write_floats),
	    cmocka_unit_test(test_write_object),  cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_depth_limit),   cmocka_unit_test(test_members_and_keys),
	    cmocka_unit_test(test_strings),       cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_utf16),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
