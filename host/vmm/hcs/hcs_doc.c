/* HCS documents out (Go's encoding/json bytes, via gojson) and HCS replies in (Go's decoding
 * rules, via gojson); see hcs_doc.h. */
#include "host/vmm/hcs/hcs_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "host/vmm/hcs/gojson.h"

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

const char *const hcs_scsi_controller_guids[HCS_SCSI_CONTROLLERS] = {
    "df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
    "0110f83b-de10-5172-a266-78bca56bf50a",
    "b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
    "305891a9-b251-5dfe-91a2-c25d9212275b",
};

const char *hcs_doc_origin_name(enum vmm_origin o)
{
	switch (o) {
	case VMM_ORIGIN_SOURCE:
		return "Source";
	case VMM_ORIGIN_DESTINATION:
		return "Destination";
	default:
		return NULL;
	}
}

static void origin_member(struct gojson_w *w, enum vmm_origin origin)
{
	const char *name = hcs_doc_origin_name(origin);
	if (name) { /* omitempty */
		gojson_w_key(w, "Origin");
		gojson_w_str(w, name);
	}
}

/* MemoryMigrationTransferThrottleParams: every field a pointer, so present means written. */
static int throttle_params(struct gojson_w *w, const struct vmm_mig_options *o, struct err *e)
{
	gojson_w_key(w, "MemoryTransferThrottleParams");
	gojson_w_obj_begin(w);
	if (o->throttle.has_skip_throttling) {
		gojson_w_key(w, "SkipThrottling");
		gojson_w_bool(w, o->throttle.skip_throttling);
	}
	if (o->throttle.has_throttling_scale) {
		gojson_w_key(w, "ThrottlingScale");
		if (gojson_w_f64(w, o->throttle.throttling_scale, e) < 0)
			return err_prefix(e, "MemoryTransferThrottleParams.ThrottlingScale");
	}
	if (o->throttle.has_minimum_throttle_percentage) {
		gojson_w_key(w, "MinimumThrottlePercentage");
		/* parse.go narrows with uint8(): 300 becomes 44, no range check */
		gojson_w_u64(w, (uint8_t)o->throttle.minimum_throttle_percentage);
	}
	static const struct {
		const char *name;
		size_t has, val;
	} u32s[] = {
#define U32(n, f)                                                                                  \
	{n, offsetof(struct vmm_mig_options, throttle.has_##f),                                    \
	 offsetof(struct vmm_mig_options, throttle.f)}
	    U32("TargetNumberOfBrownoutTransferPasses", target_brownout_passes),
	    U32("StartingBrownoutPassNumberForThrottling", starting_brownout_pass_for_throttling),
	    U32("MaximumNumberOfBrownoutTransferPasses", maximum_brownout_passes),
	    U32("TargetBlackoutTransferTime", target_blackout_ms),
	    U32("BlackoutTimeThresholdForCancellingMigration", blackout_threshold_cancel_ms),
#undef U32
	};
	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
		const char *base = (const char *)o;
		bool has;
		uint32_t v;
		memcpy(&has, base + u32s[i].has, sizeof(has));
		memcpy(&v, base + u32s[i].val, sizeof(v));
		if (has) {
			gojson_w_key(w, u32s[i].name);
			gojson_w_u64(w, v);
		}
	}
	gojson_w_obj_end(w);
	return 0;
}

int hcs_doc_init_options(struct buf *out, const struct vmm_mig_options *opts,
                         enum vmm_origin origin, const uint8_t *compat, size_t compat_len,
                         struct err *e)
{
	if (opts && opts->memory_transport != 1) {
		char num[16];
		snprintf(num, sizeof(num), "%d", opts->memory_transport);
		return err_set(e, -EINVAL,
		               "convert memory transport: unsupported memory transport \"%s\"",
		               opts->memory_transport == 0 ? "MEMORY_TRANSPORT_UNSPECIFIED" : num);
	}
	struct buf tmp;
	buf_init(&tmp);
	struct gojson_w w;
	gojson_w_init(&w, &tmp);
	gojson_w_obj_begin(&w);
	origin_member(&w, origin);
	if (opts) {
		gojson_w_key(&w, "MemoryTransport");
		gojson_w_str(&w, "TCP");
		if (opts->has_throttle && throttle_params(&w, opts, e) < 0) {
			buf_fini(&tmp);
			return e ? e->code : -EINVAL;
		}
		if (opts->has_compression) {
			gojson_w_key(&w, "CompressionSettings");
			gojson_w_obj_begin(&w);
			if (opts->has_compression_workers) {
				gojson_w_key(&w, "ThrottleWorkerCount");
				gojson_w_u64(&w, opts->compression_workers);
			}
			gojson_w_obj_end(&w);
		}
		static const struct {
			const char *name;
			size_t off;
		} flags[] = {
		    {"ChecksumVerification",
		     offsetof(struct vmm_mig_options, checksum_verification)},
		    {"PerfTracingEnabled", offsetof(struct vmm_mig_options, perf_tracing_enabled)},
		    {"CancelIfBlackoutThresholdExceeds",
		     offsetof(struct vmm_mig_options, cancel_if_blackout_threshold_exceeds)},
		    {"PrepareMemoryTransferMode",
		     offsetof(struct vmm_mig_options, prepare_memory_transfer_mode)},
		};
		for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
			bool v;
			memcpy(&v, (const char *)opts + flags[i].off, sizeof(v));
			if (v) { /* omitempty */
				gojson_w_key(&w, flags[i].name);
				gojson_w_bool(&w, true);
			}
		}
	}
	if (compat && compat_len > 0) {
		gojson_w_key(&w, "CompatibilityData");
		gojson_w_obj_begin(&w);
		gojson_w_key(&w, "Data");
		gojson_w_base64(&w, compat, compat_len);
		gojson_w_obj_end(&w);
	}
	gojson_w_obj_end(&w);
	buf_append(out, buf_head(&tmp), buf_avail(&tmp));
	buf_fini(&tmp);
	return 0;
}

static void network_settings(struct gojson_w *w, uint32_t session)
{
	gojson_w_key(w, "NetworkSettings");
	gojson_w_obj_begin(w);
	if (session) { /* omitempty */
		gojson_w_key(w, "SessionId");
		gojson_w_u64(w, session);
	}
	gojson_w_obj_end(w);
}

void hcs_doc_start_options(struct buf *out, uint32_t session, bool destination)
{
	struct gojson_w w;
	gojson_w_init(&w, out);
	gojson_w_obj_begin(&w);
	if (destination) {
		gojson_w_key(&w, "DestinationMigrationOptions");
		gojson_w_obj_begin(&w);
	}
	network_settings(&w, session);
	if (destination)
		gojson_w_obj_end(&w);
	gojson_w_obj_end(&w);
}

void hcs_doc_origin_options(struct buf *out, enum vmm_origin origin)
{
	struct gojson_w w;
	gojson_w_init(&w, out);
	gojson_w_obj_begin(&w);
	origin_member(&w, origin);
	gojson_w_obj_end(&w);
}

void hcs_doc_finalize_options(struct buf *out, enum vmm_origin origin, bool resume)
{
	struct gojson_w w;
	gojson_w_init(&w, out);
	gojson_w_obj_begin(&w);
	origin_member(&w, origin);
	gojson_w_key(&w, "FinalizedOperation");
	gojson_w_str(&w, resume ? "Resume" : "Stop");
	gojson_w_obj_end(&w);
}

void hcs_doc_compat_query(struct buf *out)
{
	struct gojson_w w;
	gojson_w_init(&w, out);
	gojson_w_obj_begin(&w);
	gojson_w_key(&w, "Queries");
	gojson_w_obj_begin(&w);
	gojson_w_key(&w, "CompatibilityInfo");
	gojson_w_null(&w);
	gojson_w_obj_end(&w);
	gojson_w_obj_end(&w);
}

void hcs_doc_basic_query(struct buf *out)
{
	buf_append(out, "{}", 2);
}

int hcs_doc_scsi_modify(struct buf *out, unsigned controller, unsigned lun,
                        const struct vmm_disk *disk, struct err *e)
{
	static const char *const types[] = {"VirtualDisk", "PassThru", "ExtensibleVirtualDisk"};
	if (controller >= HCS_SCSI_CONTROLLERS)
		return err_set(e, -EINVAL, "scsi controller %u out of range (0..%d)", controller,
		               HCS_SCSI_CONTROLLERS - 1);
	if (lun >= HCS_SCSI_LUNS)
		return err_set(e, -EINVAL, "scsi lun %u out of range (0..%d)", lun,
		               HCS_SCSI_LUNS - 1);
	const char *type = "VirtualDisk";
	if (disk) {
		if (!disk->host_path || !*disk->host_path)
			return err_set(e, -EINVAL, "scsi disk at %u:%u: empty host path",
			               controller, lun);
		if (disk->type) {
			type = NULL;
			for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
				if (strcmp(disk->type, types[i]) == 0)
					type = types[i];
			if (!type)
				return err_set(e, -EINVAL,
				               "scsi disk at %u:%u: unknown type `%.40s` (want "
				               "VirtualDisk, PassThru or ExtensibleVirtualDisk)",
				               controller, lun, disk->type);
		}
	}
	char path[96];
	snprintf(path, sizeof(path), "VirtualMachine/Devices/Scsi/%s/Attachments/%u",
	         hcs_scsi_controller_guids[controller], lun);
	struct gojson_w w;
	gojson_w_init(&w, out);
	gojson_w_obj_begin(&w);
	gojson_w_key(&w, "ResourcePath");
	gojson_w_str(&w, path);
	gojson_w_key(&w, "RequestType");
	gojson_w_str(&w, disk ? "Add" : "Remove");
	if (disk) {
		gojson_w_key(&w, "Settings");
		gojson_w_obj_begin(&w);
		gojson_w_key(&w, "Type");
		gojson_w_str(&w, type);
		gojson_w_key(&w, "Path");
		gojson_w_str(&w, disk->host_path);
		if (disk->read_only) {
			gojson_w_key(&w, "ReadOnly");
			gojson_w_bool(&w, true);
		}
		gojson_w_obj_end(&w);
	}
	gojson_w_obj_end(&w);
	return 0;
}

/* ---- replies ---- */

/* Validate a reply and return its top-level object. */
static int reply_object(const char *json, size_t n, const char *what, struct gojson_val *top,
                        struct err *e)
{
	if (n > HCS_REPLY_MAX)
		return err_set(e, -E2BIG, "%s: reply of %zu bytes (limit %u)", what, n,
		               HCS_REPLY_MAX);
	if (gojson_parse(json, n, top, e) < 0)
		return err_prefix(e, "%s", what);
	if (top->kind != GOJSON_OBJECT)
		return err_set(e, -EINVAL, "%s: reply is not a JSON object", what);
	return 0;
}

/* The value of the last member whose key matches field (Go: the last one wins). */
static bool member(const struct gojson_val *obj, const char *field, bool exact,
                   struct gojson_val *out)
{
	struct gojson_iter it;
	struct gojson_val k, v;
	bool found = false;
	gojson_obj_iter(obj, &it);
	while (gojson_obj_next(&it, &k, &v))
		if (exact ? gojson_str_is(&k, field) : gojson_key_is(&k, field)) {
			*out = v;
			found = true;
		}
	return found;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Go's base64.StdEncoding.Decode: padding required, CR and LF skipped, nothing after the
 * padding. */
static int base64_decode(const char *s, size_t n, struct buf *out, struct err *e)
{
	uint32_t acc = 0;
	int k = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64val(c);
		if (v < 0 || pad)
			return err_set(e, -EINVAL, "illegal base64 data at input byte %zu", i);
		acc = acc << 6 | (uint32_t)v;
		if (++k == 4) {
			uint8_t b[3] = {(uint8_t)(acc >> 16), (uint8_t)(acc >> 8), (uint8_t)acc};
			buf_append(out, b, 3);
			k = 0;
			acc = 0;
		}
	}
	if ((k == 0 && pad != 0) || (k == 1) || (k == 2 && pad != 2) || (k == 3 && pad != 1))
		return err_set(e, -EINVAL, "illegal base64 data at input end");
	if (k == 2) {
		uint8_t b = (uint8_t)(acc >> 4);
		buf_append(out, &b, 1);
	} else if (k == 3) {
		uint8_t b[2] = {(uint8_t)(acc >> 10), (uint8_t)(acc >> 2)};
		buf_append(out, b, 2);
	}
	return 0;
}

int hcs_doc_compat_reply(const char *json, size_t n, struct buf *blob, struct err *e)
{
	static const char what[] = "compatibility info";
	struct gojson_val top, responses, entry, v;
	int r = reply_object(json, n, what, &top, e);
	if (r < 0)
		return r;
	/* PropertyResponses is a struct field (matched as Go does), its keys map keys (exact) */
	if (!member(&top, "PropertyResponses", false, &responses) ||
	    responses.kind != GOJSON_OBJECT ||
	    !member(&responses, "CompatibilityInfo", true, &entry) || entry.kind == GOJSON_NULL)
		return err_set(e, -ENOENT, "%s: missing from the properties response", what);
	if (entry.kind != GOJSON_OBJECT)
		return err_set(e, -EINVAL, "%s: property response is not an object", what);
	if (member(&entry, "Error", false, &v) && v.kind != GOJSON_NULL) {
		char msg[200] = "";
		struct gojson_val m;
		if (v.kind == GOJSON_OBJECT && member(&v, "ErrorMessage", false, &m))
			(void)gojson_str(&m, msg, sizeof(msg));
		return err_set(e, -EIO, "%s: query failed: %s", what, msg[0] ? msg : "no message");
	}
	if (!member(&entry, "Response", false, &v) || v.kind == GOJSON_NULL)
		return err_set(e, -ENOENT, "%s: empty property response", what);
	struct gojson_val data;
	if (v.kind != GOJSON_OBJECT || !member(&v, "Data", false, &data) ||
	    data.kind == GOJSON_NULL)
		return err_set(e, -ENOENT, "%s: response carries no Data", what);
	if (data.kind != GOJSON_STRING)
		return err_set(e, -EINVAL, "%s: Data is not a base64 string", what);
	if ((data.n - 2) / 4 * 3 > HCS_COMPAT_MAX)
		return err_set(e, -E2BIG, "%s: blob of about %zu bytes (limit %u)", what,
		               (data.n - 2) / 4 * 3, HCS_COMPAT_MAX);
	/* Go unquotes the string, then decodes it (decoded text is at most 3x the raw bytes) */
	size_t cap = 3 * data.n + 1;
	char *text = xmalloc(cap);
	int tn = gojson_str(&data, text, cap);
	struct buf tmp;
	buf_init(&tmp);
	r = base64_decode(text, (size_t)tn, &tmp, e);
	if (r < 0)
		err_prefix(e, "%s: Data", what);
	else if (buf_avail(&tmp) == 0)
		r = err_set(e, -ENOENT, "%s: empty blob", what);
	else
		buf_append(blob, buf_head(&tmp), buf_avail(&tmp));
	buf_fini(&tmp);
	free(text);
	return r;
}

int hcs_doc_runtime_id(const char *json, size_t n, struct guid *id, struct err *e)
{
	static const char what[] = "compute system properties";
	struct gojson_val top, v;
	int r = reply_object(json, n, what, &top, e);
	if (r < 0)
		return r;
	char s[GUID_STR_LEN + 2];
	if (!member(&top, "RuntimeId", false, &v) || v.kind != GOJSON_STRING)
		return err_set(e, -ENOENT, "%s: no RuntimeId string", what);
	if (gojson_str(&v, s, sizeof(s)) != GUID_STR_LEN || guid_parse(s, id, e) < 0)
		return err_set(e, -EINVAL, "%s: RuntimeId %.*s is not a GUID", what,
		               (int)(v.n > 60 ? 60 : v.n), v.p);
	return 0;
}

int hcs_doc_exit_status(const char *json, size_t n, uint32_t *status, struct err *e)
{
	static const char what[] = "system exit status";
	struct gojson_val top, v;
	*status = 0;
	if (n == 0)
		return 0;
	int r = reply_object(json, n, what, &top, e);
	if (r < 0)
		return r;
	if (member(&top, "Status", false, &v) && v.kind != GOJSON_NULL) {
		int64_t x;
		if (gojson_i64(&v, &x) < 0 || x < INT32_MIN || x > INT32_MAX)
			return err_set(e, -EINVAL, "%s: Status %.*s is not an int32 HRESULT", what,
			               (int)(v.n > 30 ? 30 : v.n), v.p);
		*status = (uint32_t)(int32_t)x;
	}
	return 0;
}
