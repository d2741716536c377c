/* The vPCI payload (host/ctrl/vpci_save.h). */
#include "host/ctrl/vpci_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "ferry/controller/vpci/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Ferry__Controller__Vpci__Save__V1__Payload pb_vpci;
typedef Ferry__Controller__Vpci__Save__V1__Payload__DevicesEntry pb_dev_entry;
typedef Ferry__Controller__Vpci__Save__V1__Device pb_dev;

void vpci_save_fini(struct vpci_save *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_devices; i++)
		free(s->devices[i].instance_id);
	free(s->devices);
	memset(s, 0, sizeof(*s));
}

const struct vpci_device_save *vpci_save_device(const struct vpci_save *s, const struct guid *id)
{
	for (size_t i = 0; i < s->n_devices; i++)
		if (guid_equal(&s->devices[i].vmbus_id, id))
			return &s->devices[i];
	return NULL;
}

int vpci_save_encode(const struct vpci_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_vpci m;
	ferry__controller__vpci__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	size_t n = s->n_devices;
	struct save_map mp;
	save_map_alloc(&mp, n, sizeof(pb_dev_entry), sizeof(pb_dev));
	pb_dev_entry *ents = mp.ents;
	pb_dev *devs = mp.vals;
	for (size_t i = 0; i < n; i++) {
		const struct vpci_device_save *v = &s->devices[i];
		ferry__controller__vpci__save__v1__device__init(&devs[i]);
		devs[i].device_instance_id = v->instance_id;
		devs[i].virtual_function_index = v->vf_index;
		devs[i].stage = (Ferry__Controller__Vpci__Save__V1__Stage)v->stage;
		devs[i].ref_count = v->ref_count;
		ferry__controller__vpci__save__v1__payload__devices_entry__init(&ents[i]);
		ents[i].key = save_guid_text(&v->vmbus_id, mp.keys[i]);
		ents[i].value = &devs[i];
	}
	m.n_devices = n;
	m.devices = (pb_dev_entry **)mp.ptrs;
	int rc = save_pack(SAVE_VPCI, &m.base, out, e);
	save_map_free(&mp);
	return rc;
}

static int decode_device(struct save_dec *d, const pb_dev_entry *de, struct vpci_device_save *out)
{
	if (save_check_guid(d, "devices key", de->key, &out->vmbus_id) < 0)
		return d->e->code;
	const pb_dev *v = de->value;
	if (!v)
		return err_set(d->e, -EINVAL, "device `%s` has no state", de->key);
	if (save_check_id(d, "device_instance_id", v->device_instance_id) < 0)
		return err_prefix(d->e, "device `%s`", de->key);
	if (v->virtual_function_index > UINT16_MAX)
		return err_set(d->e, -EINVAL,
		               "device `%s`: virtual_function_index %" PRIu32 " beyond 65535",
		               de->key, v->virtual_function_index);
	int st = (int)v->stage;
	if (st != VPCI_STAGE_RESERVED && st != VPCI_STAGE_ASSIGNED && st != VPCI_STAGE_READY)
		return err_set(d->e, -EINVAL, "device `%s`: stage %d cannot be saved", de->key, st);
	if (v->ref_count == 0)
		return err_set(d->e, -EINVAL, "device `%s`: ref_count 0", de->key);
	out->vf_index = (uint16_t)v->virtual_function_index;
	out->stage = (enum vpci_stage)st;
	out->ref_count = v->ref_count;
	out->instance_id = save_strdup(d, v->device_instance_id);
	return out->instance_id ? 0 : d->e->code;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_vpci *m = (const pb_vpci *)msg;
	struct vpci_save *out = dst;
	if (save_check_schema(d, m->schema_version) < 0 ||
	    save_check_count(d, "devices", m->n_devices, d->lim->max_items) < 0)
		return d->e->code;
	out->devices = save_calloc(d, m->n_devices, sizeof(*out->devices));
	if (!out->devices)
		return d->e->code;
	for (size_t i = 0; i < m->n_devices; i++) {
		struct vpci_device_save *v = &out->devices[out->n_devices++];
		if (decode_device(d, m->devices[i], v) < 0)
			return d->e->code;
		for (size_t j = 0; j + 1 < out->n_devices; j++) {
			const struct vpci_device_save *o = &out->devices[j];
			if (guid_equal(&o->vmbus_id, &v->vmbus_id) ||
			    (o->vf_index == v->vf_index &&
			     strcmp(o->instance_id, v->instance_id) == 0))
				return err_set(d->e, -EINVAL, "device `%s` (%.200s VF %u) twice",
				               m->devices[i]->key, v->instance_id, v->vf_index);
		}
	}
	return 0;
}

static void fini(void *s)
{
	vpci_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_VPCI,
    .out_size = sizeof(struct vpci_save),
    .decode = decode_fields,
    .fini = fini,
};

int vpci_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                       struct vpci_save *out)
{
	return save_decode_child(d, &child, any, label, SIZE_MAX, out);
}

int vpci_save_decode(const Google__Protobuf__Any *any, struct vpci_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(vpci_save_from_any, any, "vpci", out, e);
}
