/* The Linux container controller's saved state: hcsshim's linuxcontainer payload
 * (hcsshim.controller.linuxcontainer.save.v1.Payload, spec hcsshim-lm.md §3.5) with every
 * process (hcsshim keeps only the init process) and ferry's Plan9 and vPCI references
 * (fields 1000-1001, docs/saved-state.md).  Same shape as every <object>_save module (see
 * host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_CONTAINER_SAVE_H
#define FERRY_HOST_CTRL_CONTAINER_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"
#include "host/ctrl/process_save.h"

struct save_dec;

/* A layer disk: the SCSI reservation that holds it and where the guest mounts it. */
struct container_layer_save {
	struct guid reservation_id;
	char *guest_path; /* owned */
};

struct container_save {
	char *container_id;     /* the task id at the source (owned, non-empty) */
	char *gcs_container_id; /* the id the guest knows (owned, non-empty) */
	int64_t io_retry_timeout_ns;
	/* Layers (absent for a container without SCSI layers). */
	bool has_layers;
	struct container_layer_save *ro_layers; /* stack order (owned) */
	size_t n_ro_layers;
	bool has_scratch;
	struct container_layer_save scratch;
	bool layers_combined;
	char *rootfs_path; /* guest path (owned) */
	/* Every SCSI reservation the container holds (keys of the SCSI payload's). */
	struct guid *scsi_reservations;
	size_t n_scsi_reservations;
	/* Processes keyed by exec id (procs[i].exec_id; "" is init), in payload order. */
	struct process_save *procs;
	size_t n_procs;
	/* ferry: Plan9 reservations and vPCI devices (VMBus GUIDs) the container holds. */
	struct guid *plan9_reservations;
	size_t n_plan9_reservations;
	struct guid *vpci_devices;
	size_t n_vpci_devices;
};

/* NULL-safe; zeroes *s. */
void container_save_fini(struct container_save *s);
/* Pack s with its processes.  out: release with save_any_fini.  -E2BIG when too large. */
int container_save_encode(const struct container_save *s, Google__Protobuf__Any *out,
                          struct err *e);
/* Check and unpack; on failure *out is left as it was and e names the field and value. */
int container_save_decode(const Google__Protobuf__Any *any, struct container_save *out,
                          struct err *e);
/* For the pod payload: `idx`, its index in the pod (SIZE_MAX: none), names it in errors
 * until its container_id is known.  On failure *out is zeroed. */
int container_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, size_t idx,
                            struct container_save *out);

#endif
