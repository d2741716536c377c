/* The pod controller's saved state: hcsshim's pod payload
 * (hcsshim.controller.pod.save.v1.Payload, spec hcsshim-lm.md §3.3): the pod's ids, its
 * network (required) and its containers.  Same shape as every <object>_save module (see
 * host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_POD_SAVE_H
#define FERRY_HOST_CTRL_POD_SAVE_H

#include <stddef.h>

#include "common/err.h"
#include "google/protobuf/any.pb-c.h"
#include "host/ctrl/container_save.h"
#include "host/ctrl/network_save.h"

struct save_dec;

struct pod_save {
	char *pod_id;     /* owned, non-empty */
	char *gcs_pod_id; /* the id the guest knows (owned, non-empty) */
	struct network_save network;
	/* Encoded sorted by container id, as hcsshim does; decoded in payload order. */
	struct container_save *containers; /* owned */
	size_t n_containers;
};

/* NULL-safe; zeroes *s. */
void pod_save_fini(struct pod_save *s);
/* Pack s with its network and containers.  out: release with save_any_fini. */
int pod_save_encode(const struct pod_save *s, Google__Protobuf__Any *out, struct err *e);
/* Checks of the pod itself (ids, network present, no container id twice) and of every
 * child.  On failure *out is left as it was. */
int pod_save_decode(const Google__Protobuf__Any *any, struct pod_save *out, struct err *e);
/* For the envelope: `idx`, its index in the envelope (SIZE_MAX: none), names it in errors
 * until its pod_id is known.  On failure *out is zeroed. */
int pod_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, size_t idx,
                      struct pod_save *out);

#endif
