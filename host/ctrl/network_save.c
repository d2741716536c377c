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
	pb_ep_entry *ents = xcalloc(n + 1, sizeof(*ents));
	pb_ep_entry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
	pb_binding *bs = xcalloc(n + 1, sizeof(*bs));
	char(*keys)[GUID_STR_LEN + 1] = xcalloc(n + 1, sizeof(*keys));
	for (size_t i = 0; i < n; i++) {
		const struct network_endpoint_save *ep = &s->endpoints[i];
		hcsshim__controller__network__save__v1__endpoint_binding__init(&bs[i]);
		bs[i].endpoint_id = ep->endpoint_id;
		bs[i].mac_address = ep->mac_address;
		bs[i].endpoint_name = ep->endpoint_name;
		hcsshim__controller__network__save__v1__payload__vm_endpoints_entry__init(&ents[i]);
		ents[i].key = save_guid_text(&ep->nic_id, keys[i]);
		ents[i].value = &bs[i];
		ptrs[i] = &ents[i];
	}
	m.n_vm_endpoints = n;
	m.vm_endpoints = ptrs;
	int rc = save_pack(SAVE_NETWORK, &m.base, out, e);
	free(ents);
	free(ptrs);
	free(bs);
	free(keys);
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

static int decode_fields(struct save_dec *d, const pb_network *m, struct network_save *out)
{
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

int network_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                          struct network_save *out)
{
	memset(out, 0, sizeof(*out));
	pb_network *m = (pb_network *)save_unpack(d, SAVE_NETWORK, any, label);
	if (!m)
		return d->e->code;
	int rc = decode_fields(d, m, out);
	save_msg_free(d, m);
	if (rc < 0) {
		err_prefix(d->e, "%s", label);
		network_save_fini(out);
	}
	return rc;
}

int network_save_decode(const Google__Protobuf__Any *any, struct network_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(network_save_from_any, any, "network", out, e);
}
