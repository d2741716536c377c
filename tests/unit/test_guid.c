/* Unit tests for common/guid: text round trips, Windows byte layout, parse errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/guid.h"

static void test_round_trip(void **state)
{
	(void)state;
	const char *in = "40000000-facb-11e6-bd58-64006a7986d3";
	struct guid g;
	struct err e;
	char out[GUID_STR_LEN + 1];
	assert_int_equal(guid_parse(in, &g, &e), 0);
	assert_int_equal(g.data1, 0x40000000);
	assert_int_equal(g.data2, 0xfacb);
	assert_int_equal(g.data3, 0x11e6);
	assert_int_equal(g.data4[0], 0xbd);
	assert_int_equal(g.data4[7], 0xd3);
	assert_string_equal(guid_format(&g, out), in);
}

static void test_upper_and_braces(void **state)
{
	(void)state;
	struct guid g;
	struct err e;
	char out[GUID_STR_LEN + 1];
	assert_int_equal(guid_parse("{E0E16197-DD56-4A10-9195-5EE7A155A838}", &g, &e), 0);
	assert_string_equal(guid_format(&g, out), "e0e16197-dd56-4a10-9195-5ee7a155a838");
}

static void test_bytes_layout(void **state)
{
	(void)state;
	struct guid g, back;
	struct err e;
	uint8_t b[16];
	static const uint8_t want[16] = {0x97, 0x61, 0xe1, 0xe0, 0x56, 0xdd, 0x10, 0x4a,
	                                 0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38};
	assert_int_equal(guid_parse("e0e16197-dd56-4a10-9195-5ee7a155a838", &g, &e), 0);
	guid_to_bytes(&g, b);
	assert_memory_equal(b, want, 16);
	guid_from_bytes(b, &back);
	assert_true(guid_equal(&g, &back));
}

static void test_zero(void **state)
{
	(void)state;
	struct guid g;
	struct err e;
	assert_int_equal(guid_parse("00000000-0000-0000-0000-000000000000", &g, &e), 0);
	assert_true(guid_is_zero(&g));
	g.data4[7] = 1;
	assert_false(guid_is_zero(&g));
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "40000000-facb-11e6-bd58-64006a7986d",   /* short */
	    "40000000-facb-11e6-bd58-64006a7986d33", /* long */
	    "40000000xfacb-11e6-bd58-64006a7986d3",  /* separator */
	    "4000000g-facb-11e6-bd58-64006a7986d3",  /* hex */
	    "{40000000-facb-11e6-bd58-64006a7986d3", /* unbalanced brace */
	    "40000000-facb-11e6-bd58-64006a7986d3}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct guid g;
		struct err e;
		err_clear(&e);
		assert_int_equal(guid_parse(bad[i], &g, &e), -EINVAL);
		assert_int_equal(e.code, -EINVAL);
		assert_non_null(strstr(e.msg, "invalid guid"));
	}
	struct err e;
	assert_int_equal(guid_parse(NULL, NULL, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_upper_and_braces),
	    cmocka_unit_test(test_bytes_layout), cmocka_unit_test(test_zero),
	    cmocka_unit_test(test_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
