/* The network controller's saved state: hcsshim's network payload
 * (hcsshim.controller.network.save.v1.Payload, spec hcsshim-lm.md §3.4): the namespace, two
 * flags and the endpoints attached to the VM keyed by vNIC GUID.  Same shape as every
 * <object>_save module (see host/ctrl/process_save.h). */
#ifndef FERRY_HOST_CTRL_NETWORK_SAVE_H
#define FERRY_HOST_CTRL_NETWORK_SAVE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"

struct save_dec;

struct network_endpoint_save {
	struct guid nic_id; /* the vNIC (the map key) */
	char *endpoint_id;  /* owned */
	char *mac_address;
	char *endpoint_name;
};

struct network_save {
	char *namespace_id; /* owned; the HCN namespace GUID on Windows, free-form elsewhere */
	bool policy_based_routing;
	bool is_namespace_supported_by_guest;
	struct network_endpoint_save *endpoints; /* owned */
	size_t n_endpoints;
};

/* NULL-safe; zeroes *s. */
void network_save_fini(struct network_save *s);
/* out: release with save_any_fini. */
int network_save_encode(const struct network_save *s, Google__Protobuf__Any *out, struct err *e);
/* On failure *out is left as it was. */
int network_save_decode(const Google__Protobuf__Any *any, struct network_save *out, struct err *e);
/* For the pod payload (label names it in errors).  On failure *out is zeroed. */
int network_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                          struct network_save *out);

#endif
