/* Benchmark of the HCS backend's JSON paths, each next to jansson (the JSON library the rest of
 * ferry uses) doing the same job in the same run:
 *   - decoding a live-migration notification (hcsshim's BlackoutExited payload) into a
 *     vmm_notification with Go's rules (hcs_notify_parse + hcs_to_notification), against
 *     json_loadb + the member look-ups of the same fields;
 *   - writing the MigrationInitializeOptions document with every field set
 *     (hcs_doc_init_options), against building the same object with jansson and json_dumps.
 * Median of FERRY_BENCH_RUNS runs (default 7) of FERRY_BENCH_ITERS iterations (default
 * 200000), in ns per operation, and the ratio to jansson. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fdio.h"
#include "host/vmm/hcs/hcs_doc.h"
#include "host/vmm/hcs/hcs_notify.h"
#include "tests/lib/stats.h"

#define MAX_RUNS 31

static const char payload[] =
    "{\"Origin\":\"Source\",\"Event\":\"BlackoutExited\",\"Result\":\"Success\","
    "\"AdditionalDetails\":{\"BlackoutDurationMilliseconds\":1234,"
    "\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56Z\"}}";

static size_t env_num(const char *name, size_t def, size_t max)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || v == 0)
		return def;
	return v > max ? max : (size_t)v;
}

static volatile uint64_t sink;

static void ours_decode(size_t iters)
{
	for (size_t i = 0; i < iters; i++) {
		struct hcs_mig_info info;
		struct vmm_notification n;
		if (hcs_notify_parse(payload, sizeof(payload) - 1, &info, NULL) < 0)
			abort();
		hcs_to_notification(&info, VMM_ORIGIN_SOURCE, &n);
		sink += n.blackout_ms + (uint64_t)n.phase;
	}
}

static void jansson_decode(size_t iters)
{
	for (size_t i = 0; i < iters; i++) {
		json_t *j = json_loadb(payload, sizeof(payload) - 1, 0, NULL);
		const char *ev = json_string_value(json_object_get(j, "Event"));
		const char *res = json_string_value(json_object_get(j, "Result"));
		const char *org = json_string_value(json_object_get(j, "Origin"));
		json_t *d = json_object_get(j, "AdditionalDetails");
		const char *ts = json_string_value(json_object_get(d, "BlackoutStopTimestamp"));
		sink += (uint64_t)json_integer_value(
		            json_object_get(d, "BlackoutDurationMilliseconds")) +
		        (ev ? strlen(ev) : 0) + (res ? strlen(res) : 0) + (org ? strlen(org) : 0) +
		        (ts ? strlen(ts) : 0);
		json_decref(j);
	}
}

static struct vmm_mig_options options(void)
{
	struct vmm_mig_options o;
	memset(&o, 0, sizeof(o));
	o.memory_transport = 1;
	o.has_throttle = true;
	o.throttle.has_skip_throttling = true;
	o.throttle.has_throttling_scale = true;
	o.throttle.throttling_scale = 75.5;
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 30;
	o.throttle.has_target_blackout_ms = true;
	o.throttle.target_blackout_ms = 500;
	o.has_compression = true;
	o.has_compression_workers = true;
	o.compression_workers = 4;
	o.checksum_verification = true;
	return o;
}

static void ours_encode(size_t iters)
{
	struct vmm_mig_options o = options();
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < iters; i++) {
		buf_reset(&b);
		if (hcs_doc_init_options(&b, &o, VMM_ORIGIN_SOURCE, (const uint8_t *)"compat", 6,
		                         NULL) < 0)
			abort();
		sink += buf_avail(&b);
	}
	buf_fini(&b);
}

static void jansson_encode(size_t iters)
{
	for (size_t i = 0; i < iters; i++) {
		json_t *j = json_pack(
		    "{s:s, s:s, s:{s:b, s:f, s:i, s:i}, s:{s:i}, s:b, s:{s:s}}", "Origin", "Source",
		    "MemoryTransport", "TCP", "MemoryTransferThrottleParams", "SkipThrottling", 0,
		    "ThrottlingScale", 75.5, "MinimumThrottlePercentage", 30,
		    "TargetBlackoutTransferTime", 500, "CompressionSettings", "ThrottleWorkerCount",
		    4, "ChecksumVerification", 1, "CompatibilityData", "Data", "Y29tcGF0");
		char *s = json_dumps(j, JSON_COMPACT);
		sink += strlen(s);
		free(s);
		json_decref(j);
	}
}

static double ns_per_op(void (*fn)(size_t), size_t iters)
{
	long long t0 = mono_ns();
	fn(iters);
	return (double)(mono_ns() - t0) / (double)iters;
}

static void compare(const char *what, void (*ours)(size_t), void (*peer)(size_t), size_t runs,
                    size_t iters)
{
	double a[MAX_RUNS], b[MAX_RUNS];
	ours(iters / 10 + 1); /* warm up */
	peer(iters / 10 + 1);
	for (size_t r = 0; r < runs; r++) {
		a[r] = ns_per_op(ours, iters);
		b[r] = ns_per_op(peer, iters);
	}
	double ma = stats_median(a, runs), mb = stats_median(b, runs);
	printf("%-34s %8.0f ns/op   jansson %8.0f ns/op   ratio %.2f\n", what, ma, mb, ma / mb);
}

int main(void)
{
	size_t runs = env_num("FERRY_BENCH_RUNS", 7, MAX_RUNS);
	size_t iters = env_num("FERRY_BENCH_ITERS", 200000, 100000000);
	printf("hcs JSON paths, median of %zu runs of %zu iterations\n", runs, iters);
	compare("notification decode (Go rules)", ours_decode, jansson_decode, runs, iters);
	compare("MigrationInitializeOptions write", ours_encode, jansson_encode, runs, iters);
	return 0;
}
