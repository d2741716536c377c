/* Unit tests for host/vmm/hcs/hcs_doc and hcs_machine: the HCS documents hcsshim sends, as
 * golden JSON built from hcsshim-lm.md §1.6 / §2.1 / §2.2 (field names, order, omitempty,
 * the uint8 truncation, parse.go's errors), and the HCS replies the backend reads.  Portable:
 * also cross-built and run under wine. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/hcs/hcs_doc.h"
#include "host/vmm/hcs/hcs_machine.h"

static char out_text[2048];

static const char *text(struct buf *b)
{
	assert_true(buf_avail(b) < sizeof(out_text));
	memcpy(out_text, buf_head(b), buf_avail(b));
	out_text[buf_avail(b)] = '\0';
	buf_reset(b);
	return out_text;
}

/* Only memory_transport TCP set. */
static struct vmm_mig_options tcp_only(void)
{
	struct vmm_mig_options o;
	memset(&o, 0, sizeof(o));
	o.memory_transport = 1;
	return o;
}

static struct vmm_mig_options full_options(void)
{
	struct vmm_mig_options o;
	memset(&o, 0, sizeof(o));
	o.memory_transport = 1;
	o.has_throttle = true;
	o.throttle.has_skip_throttling = true;
	o.throttle.skip_throttling = true;
	o.throttle.has_throttling_scale = true;
	o.throttle.throttling_scale = 75.5;
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 30;
	o.throttle.has_target_brownout_passes = true;
	o.throttle.target_brownout_passes = 5;
	o.throttle.has_starting_brownout_pass_for_throttling = true;
	o.throttle.starting_brownout_pass_for_throttling = 2;
	o.throttle.has_maximum_brownout_passes = true;
	o.throttle.maximum_brownout_passes = 10;
	o.throttle.has_target_blackout_ms = true;
	o.throttle.target_blackout_ms = 500;
	o.throttle.has_blackout_threshold_cancel_ms = true;
	o.throttle.blackout_threshold_cancel_ms = 2000;
	o.has_compression = true;
	o.has_compression_workers = true;
	o.compression_workers = 4;
	o.checksum_verification = true;
	o.perf_tracing_enabled = true;
	o.cancel_if_blackout_threshold_exceeds = true;
	o.prepare_memory_transfer_mode = true;
	return o;
}

/* parse_test.go TestInitializeOptionsFromProto: full conversion. */
static void test_init_options_full(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	struct vmm_mig_options o = full_options();
	assert_int_equal(
	    hcs_doc_init_options(&b, &o, VMM_ORIGIN_DESTINATION, (const uint8_t *)"abc", 3, &e), 0);
	assert_string_equal(
	    text(&b),
	    "{\"Origin\":\"Destination\",\"MemoryTransport\":\"TCP\","
	    "\"MemoryTransferThrottleParams\":"
	    "{\"SkipThrottling\":true,\"ThrottlingScale\":75.5,\"MinimumThrottlePercentage\":30,"
	    "\"TargetNumberOfBrownoutTransferPasses\":5,"
	    "\"StartingBrownoutPassNumberForThrottling\":2,"
	    "\"MaximumNumberOfBrownoutTransferPasses\":10,\"TargetBlackoutTransferTime\":500,"
	    "\"BlackoutTimeThresholdForCancellingMigration\":2000},"
	    "\"CompressionSettings\":{\"ThrottleWorkerCount\":4},\"ChecksumVerification\":true,"
	    "\"PerfTracingEnabled\":true,\"CancelIfBlackoutThresholdExceeds\":true,"
	    "\"PrepareMemoryTransferMode\":true,\"CompatibilityData\":{\"Data\":\"YWJj\"}}");
	buf_fini(&b);
}

/* nil options: hcsshim defaults to an empty struct, then stamps the Origin. */
static void test_init_options_nil(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	assert_int_equal(hcs_doc_init_options(&b, NULL, VMM_ORIGIN_SOURCE, NULL, 0, &e), 0);
	assert_string_equal(text(&b), "{\"Origin\":\"Source\"}");
	buf_fini(&b);
}

/* nil nested messages stay nil; present-but-empty ones are {}; false pointers are kept. */
static void test_init_options_nested(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	struct vmm_mig_options o = tcp_only();
	assert_int_equal(hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, NULL, 0, &e), 0);
	assert_string_equal(text(&b), "{\"Origin\":\"Source\",\"MemoryTransport\":\"TCP\"}");
	o.has_throttle = true;
	o.has_compression = true;
	o.throttle.has_skip_throttling = true; /* false, but present */
	o.throttle.has_target_blackout_ms = true;
	assert_int_equal(
	    hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, (const uint8_t *)"", 0, &e), 0);
	assert_string_equal(text(&b),
	                    "{\"Origin\":\"Source\",\"MemoryTransport\":\"TCP\","
	                    "\"MemoryTransferThrottleParams\":{\"SkipThrottling\":false,"
	                    "\"TargetBlackoutTransferTime\":0},\"CompressionSettings\":{}}");
	buf_fini(&b);
}

/* parse_test.go: minimum_throttle_percentage is narrowed to uint8, 300 becomes 44. */
static void test_init_options_uint8(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	struct vmm_mig_options o = tcp_only();
	o.has_throttle = true;
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 300;
	assert_int_equal(hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, NULL, 0, &e), 0);
	assert_non_null(strstr(text(&b), "\"MinimumThrottlePercentage\":44}"));
	buf_fini(&b);
}

/* parse.go: any transport but TCP is an error naming the enum; nothing is written. */
static void test_init_options_errors(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	struct vmm_mig_options o;
	memset(&o, 0, sizeof(o));
	assert_int_equal(hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, NULL, 0, &e), -EINVAL);
	assert_string_equal(e.msg, "convert memory transport: unsupported memory transport "
	                           "\"MEMORY_TRANSPORT_UNSPECIFIED\"");
	o.memory_transport = 7;
	assert_int_equal(hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, NULL, 0, &e), -EINVAL);
	assert_string_equal(e.msg, "convert memory transport: unsupported memory transport \"7\"");
	o = full_options();
	o.throttle.throttling_scale = NAN;
	assert_int_equal(hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, NULL, 0, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "json: unsupported value: NaN"));
	assert_int_equal(buf_avail(&b), 0);
	buf_fini(&b);
}

static void test_small_documents(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	hcs_doc_start_options(&b, 640281193, false);
	assert_string_equal(text(&b), "{\"NetworkSettings\":{\"SessionId\":640281193}}");
	hcs_doc_start_options(&b, 70939015, true);
	assert_string_equal(
	    text(&b),
	    "{\"DestinationMigrationOptions\":{\"NetworkSettings\":{\"SessionId\":70939015}}}");
	hcs_doc_start_options(&b, 0, false); /* omitempty: a zero hash sends no SessionId */
	assert_string_equal(text(&b), "{\"NetworkSettings\":{}}");
	hcs_doc_origin_options(&b, VMM_ORIGIN_SOURCE);
	assert_string_equal(text(&b), "{\"Origin\":\"Source\"}");
	hcs_doc_origin_options(&b, VMM_ORIGIN_UNSPECIFIED);
	assert_string_equal(text(&b), "{}");
	hcs_doc_finalize_options(&b, VMM_ORIGIN_DESTINATION, true);
	assert_string_equal(text(&b),
	                    "{\"Origin\":\"Destination\",\"FinalizedOperation\":\"Resume\"}");
	hcs_doc_finalize_options(&b, VMM_ORIGIN_SOURCE, false);
	assert_string_equal(text(&b), "{\"Origin\":\"Source\",\"FinalizedOperation\":\"Stop\"}");
	hcs_doc_compat_query(&b);
	assert_string_equal(text(&b), "{\"Queries\":{\"CompatibilityInfo\":null}}");
	buf_fini(&b);
}

static void test_scsi_modify(void **state)
{
	(void)state;
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	struct vmm_disk d = {"C:\\layers\\<1>.vhdx", true, NULL};
	assert_int_equal(hcs_doc_scsi_modify(&b, 0, 3, &d, &e), 0);
	assert_string_equal(
	    text(&b), "{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/"
	              "df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/3\","
	              "\"RequestType\":\"Add\",\"Settings\":{\"Type\":\"VirtualDisk\","
	              "\"Path\":\"C:\\\\layers\\\\\\u003c1\\u003e.vhdx\",\"ReadOnly\":true}}");
	assert_int_equal(hcs_doc_scsi_modify(&b, 3, 63, NULL, &e), 0);
	assert_string_equal(text(&b), "{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/"
	                              "305891a9-b251-5dfe-91a2-c25d9212275b/Attachments/63\","
	                              "\"RequestType\":\"Remove\"}");
	assert_int_equal(hcs_doc_scsi_modify(&b, 4, 0, NULL, &e), -EINVAL);
	assert_int_equal(hcs_doc_scsi_modify(&b, 0, 64, NULL, &e), -EINVAL);
	d.type = "Floppy";
	assert_int_equal(hcs_doc_scsi_modify(&b, 0, 0, &d, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "unknown type `Floppy`"));
	d.type = "PassThru";
	d.host_path = "";
	assert_int_equal(hcs_doc_scsi_modify(&b, 0, 0, &d, &e), -EINVAL);
	assert_int_equal(buf_avail(&b), 0);
	buf_fini(&b);
}

static int compat(const char *json, struct buf *blob, struct err *e)
{
	buf_reset(blob);
	return hcs_doc_compat_reply(json, strlen(json), blob, e);
}

static void test_compat_reply(void **state)
{
	(void)state;
	struct buf blob;
	struct err e = {0};
	buf_init(&blob);
	assert_int_equal(compat("{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":"
	                        "{\"Data\":\"AAEC/w==\"}}}}",
	                        &blob, &e),
	                 0);
	assert_int_equal(buf_avail(&blob), 4);
	assert_memory_equal(buf_head(&blob), "\x00\x01\x02\xff", 4);
	/* struct fields fold case, map keys do not; CR/LF and escapes as Go's decoder */
	assert_int_equal(compat("{\"propertyresponses\":{\"CompatibilityInfo\":{\"response\":"
	                        "{\"DATA\":\"YW\\r\\nJj\\u005a\\u0041==\"}}}}",
	                        &blob, &e),
	                 0);
	assert_int_equal(buf_avail(&blob), 4);
	assert_memory_equal(buf_head(&blob), "abcd", 4);
	static const struct {
		const char *json;
		int err;
		const char *msg;
	} bad[] = {
	    {"{}", -ENOENT, "missing"},
	    {"{\"PropertyResponses\":{\"compatibilityinfo\":{}}}", -ENOENT, "missing"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":null}}", -ENOENT, "missing"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{}}}", -ENOENT, "empty"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":{}}}}", -ENOENT, "Data"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":{\"Data\":\"\"}}}}",
	     -ENOENT, "empty blob"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":{\"Data\":\"YWJ\"}}}}",
	     -EINVAL, "base64"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":{\"Data\":\"YW=j\"}}}}",
	     -EINVAL, "base64"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":{\"Data\":7}}}}", -EINVAL,
	     "not a base64 string"},
	    {"{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Error\":{\"ErrorMessage\":\"nope\"}}"
	     "}}",
	     -EIO, "nope"},
	    {"[]", -EINVAL, "not a JSON object"},
	    {"{\"PropertyResponses\":", -EINVAL, "unexpected end"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		assert_int_equal(compat(bad[i].json, &blob, &e), bad[i].err);
		assert_non_null(strstr(e.msg, bad[i].msg));
		assert_int_equal(buf_avail(&blob), 0);
	}
	buf_fini(&blob);
}

static void test_runtime_id_and_exit(void **state)
{
	(void)state;
	struct guid g;
	struct err e = {0};
	char s[GUID_STR_LEN + 1];
	const char *props =
	    "{\"Id\":\"sb@vm\",\"RuntimeId\":\"5F0B1190-63BE-4E0C-B974-BD0F55675A42\"}";
	assert_int_equal(hcs_doc_runtime_id(props, strlen(props), &g, &e), 0);
	assert_string_equal(guid_format(&g, s), "5f0b1190-63be-4e0c-b974-bd0f55675a42");
	props = "{\"RuntimeId\":\"{5f0b1190-63be-4e0c-b974-bd0f55675a42}\"}";
	assert_int_equal(hcs_doc_runtime_id(props, strlen(props), &g, &e), -EINVAL);
	props = "{\"Id\":\"x\"}";
	assert_int_equal(hcs_doc_runtime_id(props, strlen(props), &g, &e), -ENOENT);

	uint32_t st = 1;
	assert_int_equal(hcs_doc_exit_status("", 0, &st, &e), 0);
	assert_int_equal(st, 0);
	const char *ex = "{\"Status\":-2143878903,\"ExitType\":\"UnexpectedExit\"}";
	assert_int_equal(hcs_doc_exit_status(ex, strlen(ex), &st, &e), 0);
	assert_int_equal(st, 0x80370109u);
	ex = "{\"Status\":4294967295}";
	assert_int_equal(hcs_doc_exit_status(ex, strlen(ex), &st, &e), -EINVAL);
}

static void test_machine(void **state)
{
	(void)state;
	struct err e = {0};
	json_error_t je;
	json_t *m = json_loads("{\"Id\":\"sb@vm\",\"ComputeSystem\":{\"Owner\":\"ferry\","
	                       "\"VirtualMachine\":{\"Devices\":{\"Scsi\":{"
	                       "\"df6d0690-79e5-55b6-a5ec-c1e2f77f580a\":{\"Attachments\":{"
	                       "\"0\":{\"Type\":\"VirtualDisk\",\"Path\":\"a.vhdx\"},"
	                       "\"1\":{\"Type\":\"ExtensibleVirtualDisk\",\"Path\":\"x\"}}}}}}}}",
	                       0, &je);
	assert_non_null(m);
	const char *id;
	const json_t *doc;
	assert_int_equal(hcs_machine_parse(m, &id, &doc, &e), 0);
	assert_string_equal(id, "sb@vm");

	json_t *d = json_deep_copy(doc);
	struct vmm_disk disk = {"b.vhdx", true, "PassThru"};
	assert_int_equal(hcs_machine_scsi_set(d, 1, 5, &disk, &e), 0);
	assert_int_equal(hcs_machine_scsi_set(d, 0, 1, NULL, &e), 0);
	char *txt = json_dumps(json_object_get(json_object_get(d, "VirtualMachine"), "Devices"),
	                       JSON_COMPACT);
	assert_string_equal(
	    txt, "{\"Scsi\":{\"df6d0690-79e5-55b6-a5ec-c1e2f77f580a\":{\"Attachments\":{\"0\":{"
	         "\"Type\":\"VirtualDisk\",\"Path\":\"a.vhdx\"}}},"
	         "\"0110f83b-de10-5172-a266-78bca56bf50a\":{\"Attachments\":{\"5\":{"
	         "\"Type\":\"PassThru\",\"Path\":\"b.vhdx\",\"ReadOnly\":true}}}}}");
	free(txt);

	json_t *dest = hcs_machine_dest_doc(d, "{\"Origin\":\"Destination\"}", 24, &e);
	assert_non_null(dest);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(dest, "VirtualMachine"), "MigrationOptions"),
	        "Origin")),
	    "Destination");
	/* the source document is untouched */
	assert_null(json_object_get(json_object_get(d, "VirtualMachine"), "MigrationOptions"));
	assert_null(hcs_machine_dest_doc(d, "[1]", 3, &e));
	json_decref(dest);
	json_decref(d);

	json_t *bad = json_loads("{\"Id\":\"\",\"ComputeSystem\":{\"VirtualMachine\":{}}}", 0, &je);
	assert_int_equal(hcs_machine_parse(bad, &id, &doc, &e), -EINVAL);
	json_decref(bad);
	bad = json_loads("{\"Id\":\"x\",\"ComputeSystem\":{\"Container\":{}}}", 0, &je);
	assert_int_equal(hcs_machine_parse(bad, &id, &doc, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "no VirtualMachine"));
	json_decref(bad);
	json_decref(m);
}

static int count_disk(const char *path, void *arg)
{
	(void)path;
	(*(int *)arg)++;
	return 0;
}

static void test_machine_disks(void **state)
{
	(void)state;
	json_error_t je;
	json_t *d =
	    json_loads("{\"VirtualMachine\":{\"Devices\":{\"Scsi\":{\"c\":{\"Attachments\":{"
	               "\"0\":{\"Type\":\"VirtualDisk\",\"Path\":\"a\"},"
	               "\"1\":{\"Type\":\"PassThru\",\"Path\":\"b\"},"
	               "\"2\":{\"Type\":\"Iso\",\"Path\":\"c\"},"
	               "\"3\":{\"Type\":\"VirtualDisk\"}}}}}}}",
	               0, &je);
	int n = 0;
	assert_int_equal(hcs_machine_each_disk(d, count_disk, &n), 0);
	assert_int_equal(n, 2);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_options_full),   cmocka_unit_test(test_init_options_nil),
	    cmocka_unit_test(test_init_options_nested), cmocka_unit_test(test_init_options_uint8),
	    cmocka_unit_test(test_init_options_errors), cmocka_unit_test(test_small_documents),
	    cmocka_unit_test(test_scsi_modify),         cmocka_unit_test(test_compat_reply),
	    cmocka_unit_test(test_runtime_id_and_exit), cmocka_unit_test(test_machine),
	    cmocka_unit_test(test_machine_disks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
