/* Decoding of HCS live-migration notifications and hcsshim's mapping onto Phase / PhaseState /
 * Origin (see hcs_notify.h for the rules). */
#include "host/vmm/hcs/hcs_notify.h"

#include <errno.h>
#include <string.h>

#include "host/vmm/hcs/gojson.h"

static const char *const kind_names[] = {"null", "bool", "number", "string", "array", "object"};

/* Decode a string member into a fixed field ("?" when it cannot be one of the constants). */
static void store_str(const struct gojson_val *v, char *out)
{
	int n = gojson_str(v, out, HCS_NOTIFY_STR_MAX);
	if (n < 0 || strlen(out) != (size_t)n)
		strcpy(out, "?");
}

int hcs_notify_parse(const char *json, size_t n, struct hcs_mig_info *info, struct err *e)
{
	memset(info, 0, sizeof(*info));
	info->blackout_stop_sec = HCS_GO_ZERO_TIME_SEC;
	if (n == 0)
		return 0;
	if (n > HCS_NOTIFY_MAX)
		return err_set(e, -E2BIG, "migration notification of %zu bytes (limit %d)", n,
		               HCS_NOTIFY_MAX);
	struct gojson_val top, key, val, details = {GOJSON_NULL, NULL, 0};
	int r = gojson_parse(json, n, &top, e);
	if (r < 0)
		return err_prefix(e, "migration notification");
	if (top.kind == GOJSON_NULL)
		return 0;
	if (top.kind != GOJSON_OBJECT)
		return err_set(e, -EINVAL,
		               "migration notification: cannot unmarshal %s into "
		               "OperationSystemMigrationNotificationInfo",
		               kind_names[top.kind]);
	const char *bad = NULL;
	enum gojson_kind bad_kind = GOJSON_NULL;
	struct gojson_iter it;
	gojson_obj_iter(&top, &it);
	while (gojson_obj_next(&it, &key, &val)) {
		char *field = NULL;
		const char *name = NULL;
		if (gojson_key_is(&key, "Origin"))
			field = info->origin, name = "Origin";
		else if (gojson_key_is(&key, "Event"))
			field = info->event, name = "Event";
		else if (gojson_key_is(&key, "Result"))
			field = info->result, name = "Result";
		else if (gojson_key_is(&key, "AdditionalDetails")) {
			details = val; /* json.RawMessage: any value, null included */
			info->has_details = true;
			continue;
		} else {
			continue;
		}
		if (val.kind == GOJSON_STRING)
			store_str(&val, field);
		else if (val.kind != GOJSON_NULL && !bad) /* Go keeps decoding, then fails */
			bad = name, bad_kind = val.kind;
	}
	if (bad)
		return err_set(e, -EINVAL,
		               "migration notification: cannot unmarshal %s into field %s of type "
		               "string",
		               kind_names[bad_kind], bad);
	if (info->has_details) {
		struct err ignored;
		/* a failure drops only the details, as ToNotification does */
		info->details_ok =
		    hcs_notify_blackout_details(details.p, details.n, info, &ignored) == 0;
	}
	return 0;
}

/* ---- RFC 3339, as Go's time package parses it for JSON ---- */

static bool digits(const char *s, size_t n, int min, int max, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in(int month, int year)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && leap(year) ? 29 : d[month - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int hcs_notify_rfc3339(const char *s, size_t n, int64_t *sec, int32_t *nsec)
{
	int year, month, day, hour, min, sc;
	if (n < 20) /* "2006-01-02T15:04:05" plus at least the zone */
		return -EINVAL;
	if (!digits(s, 4, 0, 9999, &year) || s[4] != '-' || !digits(s + 5, 2, 1, 12, &month) ||
	    s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return -EINVAL;
	if (!digits(s + 8, 2, 1, days_in(month, year), &day) || !digits(s + 11, 2, 0, 23, &hour) ||
	    !digits(s + 14, 2, 0, 59, &min) || !digits(s + 17, 2, 0, 59, &sc))
		return -EINVAL;
	size_t i = 19;
	int32_t ns = 0;
	if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
		size_t j = i + 1, nd = 0;
		for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
			if (nd < 9) { /* Go keeps nine digits and truncates the rest */
				ns = ns * 10 + (s[j] - '0');
				nd++;
			}
		}
		for (; nd < 9; nd++)
			ns *= 10;
		i = j;
	}
	int64_t t = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sc;
	if (n - i == 1 && s[i] == 'Z') {
		/* UTC */
	} else if (n - i == 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int zh, zm;
		if (!digits(s + i + 1, 2, 0, 23, &zh) || !digits(s + i + 4, 2, 0, 59, &zm))
			return -EINVAL;
		int64_t off = (zh * 60 + zm) * 60;
		t -= s[i] == '-' ? -off : off;
	} else {
		return -EINVAL;
	}
	*sec = t;
	*nsec = ns;
	return 0;
}

int hcs_notify_blackout_details(const char *raw, size_t n, struct hcs_mig_info *info, struct err *e)
{
	struct gojson_val v, key, val;
	int r = gojson_parse(raw, n, &v, e);
	if (r < 0)
		return r;
	info->blackout_ms = 0;
	info->blackout_stop_sec = HCS_GO_ZERO_TIME_SEC;
	info->blackout_stop_nsec = 0;
	if (v.kind == GOJSON_NULL)
		return 0;
	if (v.kind != GOJSON_OBJECT)
		return err_set(e, -EINVAL, "cannot unmarshal %s into BlackoutExitedEventDetails",
		               kind_names[v.kind]);
	int bad = 0;
	struct gojson_iter it;
	gojson_obj_iter(&v, &it);
	while (gojson_obj_next(&it, &key, &val)) {
		if (gojson_key_is(&key, "BlackoutDurationMilliseconds")) {
			if (val.kind == GOJSON_NULL)
				continue;
			if (gojson_u64(&val, &info->blackout_ms) < 0 && !bad)
				bad = err_set(e, -EINVAL,
				              "BlackoutDurationMilliseconds: %.*s is not a uint64",
				              (int)(val.n > 40 ? 40 : val.n), val.p);
		} else if (gojson_key_is(&key, "BlackoutStopTimestamp")) {
			if (val.kind == GOJSON_NULL)
				continue;
			/* Go hands the raw bytes between the quotes to the parser, unescaped */
			if ((val.kind != GOJSON_STRING ||
			     hcs_notify_rfc3339(val.p + 1, val.n - 2, &info->blackout_stop_sec,
			                        &info->blackout_stop_nsec) < 0) &&
			    !bad)
				bad = err_set(e, -EINVAL,
				              "BlackoutStopTimestamp: %.*s is not an RFC 3339 time",
				              (int)(val.n > 40 ? 40 : val.n), val.p);
		}
	}
	return bad;
}

/* ---- hcsshim's mappings (pkg/migration/parse.go) ---- */

enum vmm_origin hcs_to_origin(const char *origin, enum vmm_origin fallback)
{
	if (!origin || !*origin)
		return fallback;
	if (strcmp(origin, "Source") == 0)
		return VMM_ORIGIN_SOURCE;
	if (strcmp(origin, "Destination") == 0)
		return VMM_ORIGIN_DESTINATION;
	return VMM_ORIGIN_UNSPECIFIED;
}

static const struct {
	const char *name;
	enum vmm_phase phase;
} phases[] = {
    {"SetupDone", VMM_PHASE_SETUP_DONE},
    {"TransferInProgress", VMM_PHASE_TRANSFER_IN_PROGRESS},
    {"BlackoutStarted", VMM_PHASE_BLACKOUT_STARTED},
    {"OfflineDone", VMM_PHASE_OFFLINE_DONE},
    {"BlackoutExited", VMM_PHASE_BLACKOUT_EXITED},
    {"MigrationDone", VMM_PHASE_DONE},
    {"MigrationRecoveryDone", VMM_PHASE_RECOVERY_DONE},
    {"MigrationFailed", VMM_PHASE_FAILED},
};

static const struct {
	const char *name;
	enum vmm_phase_state state;
} results[] = {
    {"Success", VMM_PHASE_STATE_SUCCESS},
    {"MigrationCancelled", VMM_PHASE_STATE_CANCELLED},
    {"GuestInitiatedCancellation", VMM_PHASE_STATE_GUEST_INITIATED_CANCELLATION},
    {"SourceMigrationFailed", VMM_PHASE_STATE_SOURCE_FAILED},
    {"DestinationMigrationFailed", VMM_PHASE_STATE_DESTINATION_FAILED},
    {"MigrationRecoveryFailed", VMM_PHASE_STATE_RECOVERY_FAILED},
};

enum vmm_phase hcs_to_phase(const char *event)
{
	for (size_t i = 0; event && i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcmp(event, phases[i].name) == 0)
			return phases[i].phase;
	return VMM_PHASE_UNSPECIFIED;
}

enum vmm_phase_state hcs_to_phase_state(const char *result, enum vmm_phase phase)
{
	for (size_t i = 0; result && i < sizeof(results) / sizeof(results[0]); i++)
		if (strcmp(result, results[i].name) == 0)
			return results[i].state;
	/* no result: progress phases imply forward progress, terminal ones stay unspecified */
	if (phase >= VMM_PHASE_SETUP_DONE && phase <= VMM_PHASE_BLACKOUT_EXITED)
		return VMM_PHASE_STATE_SUCCESS;
	return VMM_PHASE_STATE_UNSPECIFIED;
}

void hcs_to_notification(const struct hcs_mig_info *info, enum vmm_origin fallback,
                         struct vmm_notification *out)
{
	memset(out, 0, sizeof(*out));
	out->origin = hcs_to_origin(info->origin, fallback);
	out->phase = hcs_to_phase(info->event);
	out->state = hcs_to_phase_state(info->result, out->phase);
	if (strcmp(info->event, "BlackoutExited") == 0 && info->has_details && info->details_ok) {
		out->has_blackout = true;
		out->blackout_ms = info->blackout_ms;
		const int64_t lim = INT64_MAX / 1000000000;
		if (info->blackout_stop_sec > lim)
			out->blackout_stop_ns = INT64_MAX;
		else if (info->blackout_stop_sec < -lim)
			out->blackout_stop_ns = INT64_MIN;
		else
			out->blackout_stop_ns =
			    info->blackout_stop_sec * 1000000000 + info->blackout_stop_nsec;
	}
}
