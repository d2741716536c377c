/* Unit tests for host/vmm/hcs/hcs_notify: HCS live-migration notifications read as hcsshim
 * reads them.  The cases of hcsshim's parse_test.go (TestToOrigin, TestToPhase,
 * TestToPhaseState, TestToNotification) and internal/hcs/v2/migration_test.go (_LM_Payloads,
 * _LM_InvalidJSONDropped, _LM_AdditionalDetailsDecodes, _LM_AdditionalDetailsAbsent), from
 * hcsshim-lm.md §1.6 / §2.3, plus the decoding rules of Go's encoding/json that decide
 * whether an event is delivered or dropped.  Portable: also cross-built and run under wine. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/hcs/hcs_notify.h"

/* Parse s; on success convert with fallback Source. */
static int notify(const char *s, struct vmm_notification *n, struct hcs_mig_info *info)
{
	struct err e = {0};
	err_clear(&e);
	int r = hcs_notify_parse(s, strlen(s), info, &e);
	if (r < 0) {
		assert_true(e.msg[0] != '\0');
		return r;
	}
	hcs_to_notification(info, VMM_ORIGIN_SOURCE, n);
	return 0;
}

static void expect(const char *s, enum vmm_origin o, enum vmm_phase p, enum vmm_phase_state st)
{
	struct vmm_notification n;
	struct hcs_mig_info info;
	assert_int_equal(notify(s, &n, &info), 0);
	assert_int_equal(n.origin, o);
	assert_int_equal(n.phase, p);
	assert_int_equal(n.state, st);
}

static void test_to_origin(void **state)
{
	(void)state;
	assert_int_equal(hcs_to_origin("Source", VMM_ORIGIN_DESTINATION), VMM_ORIGIN_SOURCE);
	assert_int_equal(hcs_to_origin("Destination", VMM_ORIGIN_SOURCE), VMM_ORIGIN_DESTINATION);
	assert_int_equal(hcs_to_origin("", VMM_ORIGIN_DESTINATION), VMM_ORIGIN_DESTINATION);
	assert_int_equal(hcs_to_origin("", VMM_ORIGIN_UNSPECIFIED), VMM_ORIGIN_UNSPECIFIED);
	assert_int_equal(hcs_to_origin("source", VMM_ORIGIN_SOURCE), VMM_ORIGIN_UNSPECIFIED);
	assert_int_equal(hcs_to_origin("Elsewhere", VMM_ORIGIN_SOURCE), VMM_ORIGIN_UNSPECIFIED);
}

static void test_to_phase(void **state)
{
	(void)state;
	static const char *const names[] = {
	    "SetupDone",      "TransferInProgress", "BlackoutStarted",       "OfflineDone",
	    "BlackoutExited", "MigrationDone",      "MigrationRecoveryDone", "MigrationFailed"};
	for (int i = 0; i < 8; i++)
		assert_int_equal(hcs_to_phase(names[i]), i + 1);
	assert_int_equal(hcs_to_phase("Unknown"), VMM_PHASE_UNSPECIFIED);
	assert_int_equal(hcs_to_phase(""), VMM_PHASE_UNSPECIFIED);
	assert_int_equal(hcs_to_phase("setupdone"), VMM_PHASE_UNSPECIFIED);
}

static void test_to_phase_state(void **state)
{
	(void)state;
	static const char *const names[] = {"Success",
	                                    "MigrationCancelled",
	                                    "GuestInitiatedCancellation",
	                                    "SourceMigrationFailed",
	                                    "DestinationMigrationFailed",
	                                    "MigrationRecoveryFailed"};
	/* a recognised result takes precedence over the phase */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(hcs_to_phase_state(names[i], VMM_PHASE_SETUP_DONE), i + 1);
		assert_int_equal(hcs_to_phase_state(names[i], VMM_PHASE_FAILED), i + 1);
	}
	/* no result ("" or "Invalid"): progress phases succeed, terminal ones stay unspecified */
	for (int p = VMM_PHASE_SETUP_DONE; p <= VMM_PHASE_BLACKOUT_EXITED; p++) {
		assert_int_equal(hcs_to_phase_state("", p), VMM_PHASE_STATE_SUCCESS);
		assert_int_equal(hcs_to_phase_state("Invalid", p), VMM_PHASE_STATE_SUCCESS);
	}
	static const enum vmm_phase terminal[] = {VMM_PHASE_UNSPECIFIED, VMM_PHASE_DONE,
	                                          VMM_PHASE_RECOVERY_DONE, VMM_PHASE_FAILED};
	for (int i = 0; i < 4; i++)
		assert_int_equal(hcs_to_phase_state("Invalid", terminal[i]),
		                 VMM_PHASE_STATE_UNSPECIFIED);
}

/* migration_test.go _LM_Payloads, through to the wire enums. */
static void test_payloads(void **state)
{
	(void)state;
	/* nil EventData: the zero value, still delivered (origin from the fallback) */
	expect("", VMM_ORIGIN_SOURCE, VMM_PHASE_UNSPECIFIED, VMM_PHASE_STATE_UNSPECIFIED);
	expect("{\"Event\":\"SetupDone\"}", VMM_ORIGIN_SOURCE, VMM_PHASE_SETUP_DONE,
	       VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"BlackoutStarted\"}", VMM_ORIGIN_SOURCE, VMM_PHASE_BLACKOUT_STARTED,
	       VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"OfflineDone\",\"Result\":\"Success\"}", VMM_ORIGIN_SOURCE,
	       VMM_PHASE_OFFLINE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"MigrationDone\",\"Result\":\"Success\"}", VMM_ORIGIN_SOURCE,
	       VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"MigrationDone\"}", VMM_ORIGIN_SOURCE, VMM_PHASE_DONE,
	       VMM_PHASE_STATE_UNSPECIFIED);
	expect("{\"Origin\":\"Destination\",\"Event\":\"MigrationDone\",\"Result\":\"Success\"}",
	       VMM_ORIGIN_DESTINATION, VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"MigrationFailed\",\"Result\":\"MigrationCancelled\"}",
	       VMM_ORIGIN_SOURCE, VMM_PHASE_FAILED, VMM_PHASE_STATE_CANCELLED);
	/* a JSON null top level decodes to the zero value too */
	expect("null", VMM_ORIGIN_SOURCE, VMM_PHASE_UNSPECIFIED, VMM_PHASE_STATE_UNSPECIFIED);
}

/* _LM_AdditionalDetailsDecodes and TestToNotification: the details become phase details. */
static void test_blackout_details(void **state)
{
	(void)state;
	struct vmm_notification n;
	struct hcs_mig_info info;
	assert_int_equal(notify("{\"Event\":\"BlackoutExited\",\"Result\":\"Success\","
	                        "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":1234,"
	                        "\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56Z\"}}",
	                        &n, &info),
	                 0);
	assert_int_equal(n.phase, VMM_PHASE_BLACKOUT_EXITED);
	assert_int_equal(n.state, VMM_PHASE_STATE_SUCCESS);
	assert_true(n.has_blackout);
	assert_int_equal(n.blackout_ms, 1234);
	assert_true(info.blackout_stop_sec == 1776947696LL); /* 2026-04-23T12:34:56Z */
	assert_true(n.blackout_stop_ns == 1776947696LL * 1000000000);

	/* offsets and fractions as Go parses RFC 3339 (nine digits kept, the rest truncated) */
	assert_int_equal(
	    notify("{\"Event\":\"BlackoutExited\",\"AdditionalDetails\":{"
	           "\"BlackoutStopTimestamp\":\"2026-04-23T14:34:56.1234567891+02:00\","
	           "\"BlackoutDurationMilliseconds\":18446744073709551615}}",
	           &n, &info),
	    0);
	assert_true(n.has_blackout);
	assert_true(n.blackout_ms == UINT64_MAX);
	assert_true(n.blackout_stop_ns == 1776947696LL * 1000000000 + 123456789);
}

/* TestToNotification: a bad details payload drops only the details. */
static void test_bad_details(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":-1}",
	    "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":1.5}",
	    "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":\"12\"}",
	    "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":18446744073709551616}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23T24:00:00Z\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-02-29T00:00:00Z\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23 12:34:56Z\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56,5Z\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56+24:00\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56z\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56\\u005a\"}",
	    "\"AdditionalDetails\":{\"BlackoutStopTimestamp\":1234}",
	    "\"AdditionalDetails\":[1]",
	    "\"AdditionalDetails\":\"x\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char s[256];
		struct vmm_notification n;
		struct hcs_mig_info info;
		snprintf(s, sizeof(s), "{\"Event\":\"BlackoutExited\",\"Result\":\"Success\",%s}",
		         bad[i]);
		assert_int_equal(notify(s, &n, &info), 0);
		assert_int_equal(n.phase, VMM_PHASE_BLACKOUT_EXITED);
		assert_int_equal(n.state, VMM_PHASE_STATE_SUCCESS);
		assert_true(info.has_details);
		assert_false(n.has_blackout);
	}
}

/* _LM_AdditionalDetailsAbsent, and details on another event, and a null details value. */
static void test_details_presence(void **state)
{
	(void)state;
	struct vmm_notification n;
	struct hcs_mig_info info;
	assert_int_equal(notify("{\"Event\":\"SetupDone\"}", &n, &info), 0);
	assert_false(info.has_details);
	assert_int_equal(notify("{\"Event\":\"BlackoutExited\"}", &n, &info), 0);
	assert_false(n.has_blackout);
	/* only BlackoutExited carries phase details */
	assert_int_equal(notify("{\"Event\":\"OfflineDone\",\"AdditionalDetails\":{"
	                        "\"BlackoutDurationMilliseconds\":5}}",
	                        &n, &info),
	                 0);
	assert_true(info.has_details);
	assert_false(n.has_blackout);
	/* json.RawMessage keeps "null" (4 bytes), which decodes into zero details: Go's zero
	 * time, which vmm.h's int64 nanoseconds cannot hold (clamped) */
	assert_int_equal(
	    notify("{\"Event\":\"BlackoutExited\",\"AdditionalDetails\":null}", &n, &info), 0);
	assert_true(n.has_blackout);
	assert_int_equal(n.blackout_ms, 0);
	assert_true(info.blackout_stop_sec == HCS_GO_ZERO_TIME_SEC);
	assert_true(n.blackout_stop_ns == INT64_MIN);
}

/* _LM_InvalidJSONDropped and the other ways Go's Unmarshal fails. */
static void test_dropped(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "not-json",
	    "{\"Event\":\"SetupDone\"",
	    "{\"Event\":\"SetupDone\"} {}",
	    "[]",
	    "\"SetupDone\"",
	    "7",
	    "{\"Event\":1}",
	    "{\"Origin\":{},\"Event\":\"SetupDone\"}",
	    "{\"Event\":\"SetupDone\",\"Result\":true}",
	    "{\"Event\":\"SetupDone\",\"event\":[]}",
	    " ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmm_notification n;
		struct hcs_mig_info info;
		assert_int_equal(notify(bad[i], &n, &info), -EINVAL);
	}
	/* larger than the bound: dropped before any parsing */
	static char big[HCS_NOTIFY_MAX + 2];
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	struct hcs_mig_info info;
	struct err e = {0};
	assert_int_equal(hcs_notify_parse(big, sizeof(big) - 1, &info, &e), -E2BIG);
}

/* Go's decoding: field names match case-insensitively, the last duplicate wins, null leaves a
 * field empty, unknown members are ignored, escapes are decoded. */
static void test_go_decoding(void **state)
{
	(void)state;
	expect("{\"event\":\"SetupDone\",\"ORIGIN\":\"Destination\"}", VMM_ORIGIN_DESTINATION,
	       VMM_PHASE_SETUP_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Event\":\"SetupDone\",\"event\":\"MigrationFailed\"}", VMM_ORIGIN_SOURCE,
	       VMM_PHASE_FAILED, VMM_PHASE_STATE_UNSPECIFIED);
	expect("{\"Event\":\"MigrationDone\",\"Re\\u017fult\":\"Success\"}", VMM_ORIGIN_SOURCE,
	       VMM_PHASE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Origin\":null,\"Event\":\"OfflineDone\",\"Extra\":[1,{\"x\":2}]}",
	       VMM_ORIGIN_SOURCE, VMM_PHASE_OFFLINE_DONE, VMM_PHASE_STATE_SUCCESS);
	expect("{\"Origin\":\"\\u0044estination\",\"Event\":\"\\u0053etupDone\"}",
	       VMM_ORIGIN_DESTINATION, VMM_PHASE_SETUP_DONE, VMM_PHASE_STATE_SUCCESS);
	/* values match exactly: case matters, a NUL inside never matches */
	expect("{\"Origin\":\"source\",\"Event\":\"setupdone\"}", VMM_ORIGIN_UNSPECIFIED,
	       VMM_PHASE_UNSPECIFIED, VMM_PHASE_STATE_UNSPECIFIED);
	expect("{\"Event\":\"SetupDone\\u0000\"}", VMM_ORIGIN_SOURCE, VMM_PHASE_UNSPECIFIED,
	       VMM_PHASE_STATE_UNSPECIFIED);
	/* a very long value is kept as non-empty: it is no known origin, not the fallback */
	expect("{\"Origin\":\"SourceSourceSourceSourceSourceSourceSourceSourceSource\"}",
	       VMM_ORIGIN_UNSPECIFIED, VMM_PHASE_UNSPECIFIED, VMM_PHASE_STATE_UNSPECIFIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_to_origin),        cmocka_unit_test(test_to_phase),
	    cmocka_unit_test(test_to_phase_state),   cmocka_unit_test(test_payloads),
	    cmocka_unit_test(test_blackout_details), cmocka_unit_test(test_bad_details),
	    cmocka_unit_test(test_details_presence), cmocka_unit_test(test_dropped),
	    cmocka_unit_test(test_go_decoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
