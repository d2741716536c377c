/* The VM controller's saved state: hcsshim's vm payload (hcsshim.controller.vm.save.v1.Payload,
 * spec hcsshim-lm.md §3.2) with its SCSI child, plus ferry's fields (1000-1007,
 * docs/saved-state.md): the VMM backend and its machine description, the vPCI and Plan9
 * children, and the GCS client's connection-wide state (session secret, containers
 * registered for their exit, orphan call ids, processes of the utility VM itself).  Same
 * shape as every <object>_save module (see host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_VM_SAVE_H
#define FERRY_HOST_CTRL_VM_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "google/protobuf/any.pb-c.h"
#include "host/ctrl/plan9_save.h"
#include "host/ctrl/process_save.h"
#include "host/ctrl/save.h"
#include "host/ctrl/scsi_save.h"
#include "host/ctrl/vpci_save.h"
#include "host/gcs_state.h"

struct vm_save {
	char *vm_id; /* owned, non-empty */
	/* SandboxOptions */
	bool no_writable_file_shares;
	bool enable_scratch_encryption;
	bool policy_based_routing;
	char *architecture; /* owned, e.g. "amd64" */
	bool fully_physically_backed;
	bool has_scsi; /* false: no SCSI controller was ever created */
	struct scsi_save scsi;
	uint32_t gcs_next_port; /* 0: no guest connection */
	uint8_t *compat_info;   /* the VMM's compatibility blob (owned) */
	size_t compat_len;
	int64_t bridge_next_id; /* 0: no guest connection */
	/* ferry: which backend ran the VM ("local", "qemu", "hcs"; "hcs" for hcsshim's
	 * payloads) and its machine description (JSON text of an object or null,
	 * NUL-terminated; NULL: none).  For "hcs" it travels as hcs_document. */
	char *backend;
	char *machine_json;
	size_t machine_len;
	bool has_vpci;
	struct vpci_save vpci;
	bool has_plan9;
	struct plan9_save plan9;
	bool has_session_secret; /* secret: never log or print it */
	uint8_t session_secret[SAVE_SESSION_SECRET_LEN];
	char **gcs_containers; /* GCS container ids registered for their exit (owned) */
	size_t n_gcs_containers;
	int64_t *orphan_ids; /* outstanding non-wait bridge ids (owned) */
	size_t n_orphan_ids;
	struct process_save *uvm_procs; /* processes of the utility VM itself (owned) */
	size_t n_uvm_procs;
};

/* NULL-safe; zeroes *s (the secret included). */
void vm_save_fini(struct vm_save *s);
/* Pack s with its children.  out: release with save_any_fini. */
int vm_save_encode(const struct vm_save *s, Google__Protobuf__Any *out, struct err *e);
/* Checks of the VM itself and of its children.  On failure *out is left as it was. */
int vm_save_decode(const Google__Protobuf__Any *any, struct vm_save *out, struct err *e);
/* For the envelope.  On failure *out is zeroed. */
int vm_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                     struct vm_save *out);

/* ---- the GCS client's connection-wide half (host/gcs_state.h) ---- */

/* Fill gcs_next_port, bridge_next_id, gcs_containers and orphan_ids from the GCS client's
 * migration state (its processes go to their containers' payloads, or uvm_procs, through
 * process_save_from_gcs).  -EINVAL when a value does not fit the payload. */
int vm_save_from_gcs(struct vm_save *s, const struct gcs_client_state *st, struct err *e);
/* The reverse, for gcs_client_adopt: next_port, next_id, containers and orphans; processes
 * are left empty (the caller opens them one by one from the process payloads).  *out is
 * owned by the caller (gcs_client_state_fini). */
void vm_save_to_gcs(const struct vm_save *s, struct gcs_client_state *out);

#endif
