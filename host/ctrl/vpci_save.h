/* The vPCI device controller's saved state: ferry's payload
 * (ferry.controller.vpci.save.v1.Payload, docs/saved-state.md; hcsshim cannot migrate
 * assigned devices).  Devices keyed by VMBus GUID, each a PCI function with its stage and
 * reference count.  Same shape as every <object>_save module (see host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_VPCI_SAVE_H
#define FERRY_HOST_CTRL_VPCI_SAVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"

struct save_dec;

/* Numerically hcsshim's vpci.State (and the payload's Stage). */
enum vpci_stage {
	VPCI_STAGE_RESERVED = 0,
	VPCI_STAGE_ASSIGNED = 1,
	VPCI_STAGE_READY = 2,
	VPCI_STAGE_ASSIGNED_INVALID = 3,
	VPCI_STAGE_REMOVED = 4,
};

struct vpci_device_save {
	struct guid vmbus_id;  /* the map key */
	char *instance_id;     /* owned, non-empty */
	uint16_t vf_index;     /* virtual function index */
	enum vpci_stage stage; /* RESERVED, ASSIGNED or READY */
	uint32_t ref_count;    /* >= 1 */
};

struct vpci_save {
	struct vpci_device_save *devices; /* owned */
	size_t n_devices;
};

/* NULL-safe; zeroes *s. */
void vpci_save_fini(struct vpci_save *s);
/* out: release with save_any_fini. */
int vpci_save_encode(const struct vpci_save *s, Google__Protobuf__Any *out, struct err *e);
/* Checks: VMBus GUID keys, no device twice (by key or by instance id + VF index), a savable
 * stage, ref_count >= 1, vf index within 16 bits.  On failure *out is left as it was. */
int vpci_save_decode(const Google__Protobuf__Any *any, struct vpci_save *out, struct err *e);
/* For the VM payload.  On failure *out is zeroed. */
int vpci_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                       struct vpci_save *out);
/* The device with this VMBus GUID, or NULL. */
const struct vpci_device_save *vpci_save_device(const struct vpci_save *s, const struct guid *id);

#endif
