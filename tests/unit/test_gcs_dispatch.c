/* Unit tests for ferry-gcs's dispatch table (gcs_route: the Go GCS mux keyed by exact type
 * and negotiated version) and the UVM-process command-line splitter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/proto.h"
#include "guest/gcs.h"
#include "guest/gcs_priv.h"

static const enum bridge_rpc handled[] = {
    RPC_CREATE,          RPC_START,           RPC_SHUTDOWN_GRACEFUL,
    RPC_SHUTDOWN_FORCED, RPC_EXECUTE_PROCESS, RPC_WAIT_FOR_PROCESS,
    RPC_SIGNAL_PROCESS,  RPC_RESIZE_CONSOLE,  RPC_GET_PROPERTIES,
    RPC_MODIFY_SETTINGS, RPC_DUMP_STACKS,     RPC_DELETE_CONTAINER_STATE,
};

static void test_before_negotiation(void **state)
{
	(void)state;
	assert_true(gcs_route(bridge_request_type(RPC_NEGOTIATE_PROTOCOL), GCS_PV_INVALID, true));
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		assert_false(gcs_route(bridge_request_type(handled[i]), GCS_PV_INVALID, true));
}

static void test_after_negotiation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		assert_true(gcs_route(bridge_request_type(handled[i]), GCS_PV_V4, true));
	/* Negotiate is registered for PvInvalid only: a second one is not supported. */
	assert_false(gcs_route(bridge_request_type(RPC_NEGOTIATE_PROTOCOL), GCS_PV_V4, true));
}

static void test_unhandled_types(void **state)
{
	(void)state;
	uint32_t pv[] = {GCS_PV_INVALID, GCS_PV_V4};
	for (int k = 0; k < 2; k++) {
		assert_false(gcs_route(bridge_request_type(RPC_UPDATE_CONTAINER), pv[k], true));
		assert_false(
		    gcs_route(bridge_request_type(RPC_LIFECYCLE_NOTIFICATION), pv[k], true));
		assert_false(
		    gcs_route(bridge_request_type(RPC_MODIFY_SERVICE_SETTINGS), pv[k], true));
		assert_false(gcs_route(0x10ABCDEFu, pv[k], true));
		assert_false(gcs_route(0, pv[k], true));
		/* same RPC, other version byte: a different type */
		assert_false(gcs_route(bridge_request_type(RPC_START) + 1, pv[k], true));
		/* responses and notifications are never requests */
		assert_false(
		    gcs_route(bridge_response_type(bridge_request_type(RPC_START)), pv[k], true));
		assert_false(gcs_route(BRIDGE_NOTIFY_CONTAINER, pv[k], true));
	}
	/* an unknown protocol version */
	assert_false(gcs_route(bridge_request_type(RPC_START), 3, true));
}

static void test_without_v4(void **state)
{
	(void)state;
	/* The Go GCS registers nothing without -v4. */
	assert_false(gcs_route(bridge_request_type(RPC_NEGOTIATE_PROTOCOL), GCS_PV_INVALID, false));
	assert_false(gcs_route(bridge_request_type(RPC_START), GCS_PV_V4, false));
}

static void check_split(const char *in, const char *const *want, size_t n)
{
	struct err e;
	char **v = gcs_split_command_line(in, &e);
	assert_non_null(v);
	size_t i = 0;
	for (; v[i]; i++) {
		assert_true(i < n);
		assert_string_equal(v[i], want[i]);
	}
	assert_int_equal(i, n);
	gcs_argv_free(v);
}

static void test_split_command_line(void **state)
{
	(void)state;
	const char *a[] = {"/bin/sh", "-c", "echo hi there"};
	check_split("/bin/sh -c 'echo hi there'", a, 3);
	const char *b[] = {"ls", "-l", "a b", "c\"d", "e\\f"};
	check_split("  ls\t-l  \"a b\" c\\\"d 'e\\f'  ", b, 5);
	const char *c[] = {"x", "", "y"};
	check_split("x '' y", c, 3);
	const char *d[] = {"abc\"def"};
	check_split("\"abc\\\"def\"", d, 1);
}

static void test_split_errors(void **state)
{
	(void)state;
	struct err e;
	assert_null(gcs_split_command_line("echo 'unterminated", &e));
	assert_int_equal(e.code, -EINVAL);
	assert_non_null(strstr(e.msg, "unterminated"));
	assert_null(gcs_split_command_line("   ", &e));
	assert_int_equal(e.code, -EINVAL);
	assert_null(gcs_split_command_line("", &e));
}

static void test_null_id(void **state)
{
	(void)state;
	assert_true(gcs_is_null_id(GCS_NULL_CONTAINER_ID));
	assert_false(gcs_is_null_id(""));
	assert_false(gcs_is_null_id(NULL));
	assert_false(gcs_is_null_id("00000000-0000-0000-0000-000000000001"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_before_negotiation),
	    cmocka_unit_test(test_after_negotiation),
	    cmocka_unit_test(test_unhandled_types),
	    cmocka_unit_test(test_without_v4),
	    cmocka_unit_test(test_split_command_line),
	    cmocka_unit_test(test_split_errors),
	    cmocka_unit_test(test_null_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
