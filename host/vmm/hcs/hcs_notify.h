/* Live-migration notifications from HCS, read as hcsshim reads them (hcsshim-lm.md §1.6, §2.3):
 * the payload of a GroupLiveMigration event (0x80000003) is the JSON document
 * OperationSystemMigrationNotificationInfo {Origin, Event, Result, AdditionalDetails}; it
 * becomes a vmm_notification by hcsshim's ToOrigin / ToPhase / ToPhaseState / ToNotification.
 *
 * Tolerance, as hcsshim's notificationHandler and ToNotification have it:
 *   - an empty payload (nil EventData) is the zero value, and is still delivered;
 *   - JSON that does not decode into the struct (bad syntax, trailing bytes, a non-object
 *     top level, Origin/Event/Result not a string or null) drops the whole event;
 *     a JSON null top level is the zero value;
 *   - unknown members are ignored; member names match case-insensitively (Go's rules);
 *   - for a BlackoutExited event with AdditionalDetails (any JSON value, null included),
 *     the details are decoded into {BlackoutDurationMilliseconds uint64,
 *     BlackoutStopTimestamp RFC 3339}; if that fails only the details are dropped.
 * Beyond hcsshim: a payload longer than HCS_NOTIFY_MAX bytes is dropped (bounded memory; real
 * payloads are a few hundred bytes).
 *
 * Pure functions, no allocation (beyond gojson_validate's fixed stack); thread-safe. */
#ifndef FERRY_HOST_VMM_HCS_NOTIFY_H
#define FERRY_HOST_VMM_HCS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "host/vmm/vmm.h"

#define HCS_NOTIFY_MAX     65536 /* longest payload accepted, bytes of UTF-8 */
#define HCS_NOTIFY_STR_MAX 48    /* longer than every known Origin/Event/Result value */

/* Go's zero time.Time as a protobuf Timestamp (0001-01-01T00:00:00Z): what hcsshim reports when
 * the details carry no BlackoutStopTimestamp. */
#define HCS_GO_ZERO_TIME_SEC (-62135596800LL)

/* The decoded payload.  A string that does not fit, or holds a NUL, is stored as "?" (a
 * non-empty value equal to no known constant, which is all the mapping looks at). */
struct hcs_mig_info {
	char origin[HCS_NOTIFY_STR_MAX];
	char event[HCS_NOTIFY_STR_MAX];
	char result[HCS_NOTIFY_STR_MAX];
	bool has_details; /* AdditionalDetails present (len(RawMessage) > 0) */
	bool details_ok;  /* ... and decoded as BlackoutExitedEventDetails */
	uint64_t blackout_ms;
	int64_t blackout_stop_sec; /* Unix seconds (HCS_GO_ZERO_TIME_SEC when absent) */
	int32_t blackout_stop_nsec;
};

/* Decode json[0..n) (n == 0: the zero value).  0 to deliver info, or a negative errno with e
 * filled when hcsshim would drop the event. */
int hcs_notify_parse(const char *json, size_t n, struct hcs_mig_info *info, struct err *e);

/* hcsshim's mappings.  origin "" takes the fallback; "Source" 1, "Destination" 2, else 0. */
enum vmm_origin hcs_to_origin(const char *origin, enum vmm_origin fallback);
/* SetupDone 1 ... MigrationFailed 8; anything else ("Unknown", "") 0. */
enum vmm_phase hcs_to_phase(const char *event);
/* A recognised result wins; otherwise phases 1-5 are SUCCESS and 0, 6-8 UNSPECIFIED. */
enum vmm_phase_state hcs_to_phase_state(const char *result, enum vmm_phase phase);
/* The whole notification (bytes_transferred 0: HCS does not report it).  blackout_stop_ns is
 * the stop time in CLOCK_REALTIME ns, clamped to INT64_MIN / INT64_MAX outside 1677..2262
 * (vmm.h's int64 ns cannot hold Go's zero time; see docs/windows.md). */
void hcs_to_notification(const struct hcs_mig_info *info, enum vmm_origin fallback,
                         struct vmm_notification *out);

/* BlackoutExitedEventDetails from a validated JSON value (raw bytes of any kind); 0 or
 * -EINVAL with e filled.  Exposed for the tests. */
int hcs_notify_blackout_details(const char *raw, size_t n, struct hcs_mig_info *info,
                                struct err *e);
/* Go's strict RFC 3339 parse (time.Time.UnmarshalJSON of the bytes between the quotes):
 * 0 with Unix seconds and nanoseconds, or -EINVAL. */
int hcs_notify_rfc3339(const char *s, size_t n, int64_t *sec, int32_t *nsec);

#endif
