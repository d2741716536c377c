/* The network payload (host/ctrl/network_save.h).  As hcsshim's Import: an empty NIC key or
 * an entry without a binding is an error; ferry also requires the key to be a GUID (hcsshim
 * makes them with guid.NewV4) and refuses a NIC listed twice. */
#include "host/ctrl/network_save.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "hcsshim/controller/network/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Hcsshim__Controller__Network__Save__V1__Payload pb_network;
typedef Hcsshim__Controller__Network__Save__V1__Payload__VmEndpointsEntry pb_ep_entry;
typedef Hcsshim__Controller__Network__Save__V1__EndpointBinding pb_binding;

void network_save_fini(struct network_save *s)
{
	if (!s)
		return;
	free(s->namespace_id);
	for (size_t i = 0; i < s->n_endpoints; i++) {
		free(s->endpoints[i].endpoint_id);
		free(s->endpoints[i].mac_address);
		free(s->endpoints[i].endpoint_name);
	}
	free(s->endpoints);
	memset(s, 0, sizeof(*s));
}

int network_save_encode(const struct network_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_network m;
	hcsshim__controller__network__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.namespace_id = s->namespace_id;
	m.policy_based_routing = s->policy_based_routing;
	m.is_namespace_supported_by_guest = s->is_namespace_supported_by_guest;
	size_t n = s->n_endpoints;
	struct save_map mp;
	save_map_alloc(&mp, n, sizeof(pb_ep_entry), sizeof(pb_binding));
	pb_ep_entry *ents = mp.ents;
	pb_binding *bs = mp.vals;
	for (size_t i = 0; i < n; i++) {
		const struct network_endpoint_save *ep = &s->endpoints[i];
		hcsshim__controller__network__save__v1__endpoint_binding__init(&bs[i]);
		bs[i].endpoint_id = ep->endpoint_id;
		bs[i].mac_address = ep->mac_address;
		bs[i].endpoint_name = ep->endpoint_name;
		hcsshim__controller__network__save__v1__payload__vm_endpoints_entry__init(&ents[i]);
		ents[i].key = save_guid_text(&ep->nic_id, mp.keys[i]);
		ents[i].value = &bs[i];
	}
	m.n_vm_endpoints = n;
	m.vm_endpoints = (pb_ep_entry **)mp.ptrs;
	int rc = save_pack(SAVE_NETWORK, &m.base, out, e);
	save_map_free(&mp);
	return rc;
}

static int decode_endpoint(struct save_dec *d, const pb_ep_entry *pe,
                           struct network_endpoint_save *out)
{
	if (!pe->key || !*pe->key)
		return err_set(d->e, -EINVAL, "vm_endpoints: empty NIC key");
	if (save_check_guid(d, "vm_endpoints key", pe->key, &out->nic_id) < 0)
		return d->e->code;
	if (!pe->value)
		return err_set(d->e, -EINVAL, "vm_endpoints: NIC `%s` has no endpoint binding",
		               pe->key);
	if (!(out->endpoint_id = save_strdup(d, pe->value->endpoint_id)) ||
	    !(out->mac_address = save_strdup(d, pe->value->mac_address)) ||
	    !(out->endpoint_name = save_strdup(d, pe->value->endpoint_name)))
		return d->e->code;
	return 0;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_network *m = (const pb_network *)msg;
	struct network_save *out = dst;
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	out->policy_based_routing = m->policy_based_routing;
	out->is_namespace_supported_by_guest = m->is_namespace_supported_by_guest;
	if (!(out->namespace_id = save_strdup(d, m->namespace_id)))
		return d->e->code;
	if (save_check_count(d, "vm_endpoints", m->n_vm_endpoints, d->lim->max_items) < 0)
		return d->e->code;
	out->endpoints = save_calloc(d, m->n_vm_endpoints, sizeof(*out->endpoints));
	if (!out->endpoints)
		return d->e->code;
	for (size_t i = 0; i < m->n_vm_endpoints; i++) {
		struct network_endpoint_save *ep = &out->endpoints[out->n_endpoints++];
		if (decode_endpoint(d, m->vm_endpoints[i], ep) < 0)
			return d->e->code;
		for (size_t j = 0; j < i; j++)
			if (guid_equal(&out->endpoints[j].nic_id, &ep->nic_id))
				return err_set(d->e, -EINVAL, "vm_endpoints: NIC `%s` twice",
				               m->vm_endpoints[i]->key);
	}
	return 0;
}

static void fini(void *s)
{
	network_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_NETWORK,
    .out_size = sizeof(struct network_save),
    .decode = decode_fields,
    .fini = fini,
};

int network_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                          struct network_save *out)
{
	return save_decode_child(d, &child, any, label, SIZE_MAX, out);
}

int network_save_decode(const Google__Protobuf__Any *any, struct network_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(network_save_from_any, any, "network", out, e);
}
