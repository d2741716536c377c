/* The Plan9 file-share controller's saved state: ferry's payload
 * (ferry.controller.plan9.save.v1.Payload, docs/saved-state.md; hcsshim cannot migrate
 * shares).  The share policy, the counter that names new shares, the shares keyed by host
 * path with their guest mount, and the reservations keyed by GUID.  Same shape as every
 * <object>_save module (see host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_PLAN9_SAVE_H
#define FERRY_HOST_CTRL_PLAN9_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"

struct save_dec;

/* Numerically hcsshim's share.State / mount.State (and the payload's enums). */
enum plan9_share_stage { PLAN9_SHARE_RESERVED = 0, PLAN9_SHARE_ADDED = 1 };
enum plan9_mount_stage { PLAN9_MOUNT_RESERVED = 0, PLAN9_MOUNT_MOUNTED = 1 };

struct plan9_share_save {
	char *host_path; /* the map key (owned, non-empty) */
	char *name;      /* owned, non-empty, unique */
	bool read_only;
	bool restrict_file_access;
	char **allowed_names; /* owned */
	size_t n_allowed_names;
	enum plan9_share_stage stage;
	bool has_mount;
	bool mount_read_only;
	enum plan9_mount_stage mount_stage;
	uint32_t mount_ref_count; /* >= 1 */
	char *mount_guest_path;   /* owned */
};

struct plan9_reservation_save {
	struct guid id;  /* the map key */
	char *host_path; /* a share's host path (owned) */
	char *name;      /* that share's name (owned) */
};

struct plan9_save {
	bool no_writable_file_shares;
	uint64_t name_counter;
	struct plan9_share_save *shares; /* owned */
	size_t n_shares;
	struct plan9_reservation_save *reservations; /* owned */
	size_t n_reservations;
};

/* NULL-safe; zeroes *s. */
void plan9_save_fini(struct plan9_save *s);
/* out: release with save_any_fini. */
int plan9_save_encode(const struct plan9_save *s, Google__Protobuf__Any *out, struct err *e);
/* Checks: host paths and names unique and non-empty, savable stages, ref counts, the
 * read-only policy, reservations naming an existing share by path and name.  On failure
 * *out is left as it was. */
int plan9_save_decode(const Google__Protobuf__Any *any, struct plan9_save *out, struct err *e);
/* For the VM payload.  On failure *out is zeroed. */
int plan9_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                        struct plan9_save *out);
/* The reservation with this id, or NULL. */
const struct plan9_reservation_save *plan9_save_reservation(const struct plan9_save *s,
                                                            const struct guid *id);

#endif
