/* The SCSI controller's saved state: hcsshim's scsi payload
 * (hcsshim.controller.scsi.save.v1.Payload, spec hcsshim-lm.md §3.7): the controller count,
 * the occupied slots (slot = controller * 64 + lun) with their disk and guest mounts keyed
 * by partition, and the reservations keyed by GUID.  Same shape as every <object>_save
 * module (see host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_SCSI_SAVE_H
#define FERRY_HOST_CTRL_SCSI_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"

struct save_dec;

struct scsi_mount_save {
	uint64_t partition; /* the map key */
	bool has_config;    /* false: hcsshim's defaults */
	bool read_only;
	bool encrypted;
	char **options; /* owned */
	size_t n_options;
	bool ensure_filesystem;
	char *filesystem; /* owned */
	bool block_dev;
	uint32_t ref_count;
	char *guest_path; /* owned */
};

struct scsi_disk_save {
	uint32_t slot; /* the map key: controller * 64 + lun, below num_controllers * 64 */
	bool has_config;
	char *host_path; /* owned */
	bool read_only;
	char *type; /* "VirtualDisk", "PassThru", "ExtensibleVirtualDisk" or "" (owned) */
	char *evd_type;
	struct scsi_mount_save *mounts; /* owned */
	size_t n_mounts;
};

struct scsi_reservation_save {
	struct guid id; /* the map key */
	uint32_t slot;  /* an occupied slot */
	uint64_t partition;
};

struct scsi_save {
	uint32_t num_controllers;
	struct scsi_disk_save *disks; /* owned, payload order */
	size_t n_disks;
	struct scsi_reservation_save *reservations; /* owned */
	size_t n_reservations;
};

/* NULL-safe; zeroes *s. */
void scsi_save_fini(struct scsi_save *s);
/* out: release with save_any_fini. */
int scsi_save_encode(const struct scsi_save *s, Google__Protobuf__Any *out, struct err *e);
/* Checks: slots within num_controllers * 64 (num_controllers within the limit), no slot
 * twice, disk types, reservation GUIDs pointing at occupied slots, no host path on two
 * disks.  On failure *out is left as it was. */
int scsi_save_decode(const Google__Protobuf__Any *any, struct scsi_save *out, struct err *e);
/* For the VM payload.  On failure *out is zeroed. */
int scsi_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                       struct scsi_save *out);
/* The reservation with this id, or NULL. */
const struct scsi_reservation_save *scsi_save_reservation(const struct scsi_save *s,
                                                          const struct guid *id);

#endif
