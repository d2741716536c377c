/* The linuxcontainer payload (host/ctrl/container_save.h): ids, layers, SCSI reservations,
 * the processes map (exec id -> process payload), ferry's Plan9 and vPCI references. */
#include "host/ctrl/container_save.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "hcsshim/controller/linuxcontainer/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Hcsshim__Controller__Linuxcontainer__Save__V1__Payload pb_container;
typedef Hcsshim__Controller__Linuxcontainer__Save__V1__Payload__ProcessesEntry pb_proc_entry;
typedef Hcsshim__Controller__Linuxcontainer__Save__V1__Layers pb_layers;
typedef Hcsshim__Controller__Linuxcontainer__Save__V1__LayerReservation pb_layer;

void container_save_fini(struct container_save *s)
{
	if (!s)
		return;
	free(s->container_id);
	free(s->gcs_container_id);
	for (size_t i = 0; i < s->n_ro_layers; i++)
		free(s->ro_layers[i].guest_path);
	free(s->ro_layers);
	free(s->scratch.guest_path);
	free(s->rootfs_path);
	free(s->scsi_reservations);
	for (size_t i = 0; i < s->n_procs; i++)
		process_save_fini(&s->procs[i]);
	free(s->procs);
	free(s->plan9_reservations);
	free(s->vpci_devices);
	memset(s, 0, sizeof(*s));
}

/* ---- encoding ---- */

/* The layers message with its reservations, alive while the payload packs. */
struct layers_tmp {
	pb_layers layers;
	pb_layer scratch;
	char scratch_text[GUID_STR_LEN + 1];
	struct save_map ro; /* LayerReservation messages and their GUID texts */
};

static void layer_to_pb(const struct container_layer_save *l, pb_layer *out, char *text)
{
	hcsshim__controller__linuxcontainer__save__v1__layer_reservation__init(out);
	out->reservation_id = save_guid_text(&l->reservation_id, text);
	out->guest_path = l->guest_path;
}

static void layers_to_pb(const struct container_save *s, struct layers_tmp *t)
{
	hcsshim__controller__linuxcontainer__save__v1__layers__init(&t->layers);
	save_map_alloc(&t->ro, s->n_ro_layers, sizeof(pb_layer), 0);
	pb_layer *ro = t->ro.ents;
	for (size_t i = 0; i < s->n_ro_layers; i++)
		layer_to_pb(&s->ro_layers[i], &ro[i], t->ro.keys[i]);
	t->layers.n_ro_layers = s->n_ro_layers;
	t->layers.ro_layers = (pb_layer **)t->ro.ptrs;
	if (s->has_scratch) {
		layer_to_pb(&s->scratch, &t->scratch, t->scratch_text);
		t->layers.scratch = &t->scratch;
	}
	t->layers.layers_combined = s->layers_combined;
	t->layers.rootfs_path = s->rootfs_path;
}

int container_save_encode(const struct container_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_container m;
	struct layers_tmp lt = {0};
	hcsshim__controller__linuxcontainer__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.container_id = s->container_id;
	m.gcs_container_id = s->gcs_container_id;
	Google__Protobuf__Duration retry;
	save_duration_set(&retry, s->io_retry_timeout_ns);
	m.io_retry_timeout = &retry;
	if (s->has_layers) {
		layers_to_pb(s, &lt);
		m.layers = &lt.layers;
	}
	m.n_scsi_reservation_ids = s->n_scsi_reservations;
	m.scsi_reservation_ids = save_guid_texts(s->scsi_reservations, s->n_scsi_reservations);
	m.n_ferry_plan9_reservation_ids = s->n_plan9_reservations;
	m.ferry_plan9_reservation_ids =
	    save_guid_texts(s->plan9_reservations, s->n_plan9_reservations);
	m.n_ferry_vpci_device_ids = s->n_vpci_devices;
	m.ferry_vpci_device_ids = save_guid_texts(s->vpci_devices, s->n_vpci_devices);
	struct save_map pm;
	save_map_alloc(&pm, s->n_procs, sizeof(pb_proc_entry), sizeof(Google__Protobuf__Any));
	pb_proc_entry *ents = pm.ents;
	Google__Protobuf__Any *anys = pm.vals;
	int rc = 0;
	for (size_t i = 0; i < s->n_procs && rc == 0; i++) {
		hcsshim__controller__linuxcontainer__save__v1__payload__processes_entry__init(
		    &ents[i]);
		ents[i].key = s->procs[i].exec_id ? s->procs[i].exec_id : "";
		ents[i].value = &anys[i];
		rc = process_save_encode(&s->procs[i], &anys[i], e);
	}
	m.n_processes = s->n_procs;
	m.processes = (pb_proc_entry **)pm.ptrs;
	if (rc == 0)
		rc = save_pack(SAVE_CONTAINER, &m.base, out, e);
	else
		err_prefix(e, "container `%s`", s->container_id);
	save_map_free_anys(&pm, s->n_procs);
	save_map_free(&lt.ro);
	free(m.scsi_reservation_ids);
	free(m.ferry_plan9_reservation_ids);
	free(m.ferry_vpci_device_ids);
	return rc;
}

/* ---- decoding ---- */

static int decode_layer(struct save_dec *d, const char *field, const pb_layer *src,
                        struct container_layer_save *out)
{
	if (save_check_guid(d, field, src->reservation_id, &out->reservation_id) < 0)
		return d->e->code;
	out->guest_path = save_strdup(d, src->guest_path);
	return out->guest_path ? 0 : d->e->code;
}

static int decode_layers(struct save_dec *d, const pb_layers *l, struct container_save *out)
{
	out->has_layers = true;
	out->layers_combined = l->layers_combined;
	if (save_check_count(d, "layers.ro_layers", l->n_ro_layers, d->lim->max_items) < 0)
		return d->e->code;
	out->ro_layers = save_calloc(d, l->n_ro_layers, sizeof(*out->ro_layers));
	if (!out->ro_layers)
		return d->e->code;
	for (size_t i = 0; i < l->n_ro_layers; i++) {
		out->n_ro_layers++;
		if (decode_layer(d, "layers.ro_layers.reservation_id", l->ro_layers[i],
		                 &out->ro_layers[i]) < 0)
			return d->e->code;
	}
	if (l->scratch) {
		out->has_scratch = true;
		if (decode_layer(d, "layers.scratch.reservation_id", l->scratch, &out->scratch) < 0)
			return d->e->code;
	}
	out->rootfs_path = save_strdup(d, l->rootfs_path);
	return out->rootfs_path ? 0 : d->e->code;
}

static int decode_processes(struct save_dec *d, const pb_container *m, struct container_save *out)
{
	if (save_check_count(d, "processes", m->n_processes, d->lim->max_items) < 0)
		return d->e->code;
	out->procs = save_calloc(d, m->n_processes, sizeof(*out->procs));
	if (!out->procs)
		return d->e->code;
	for (size_t i = 0; i < m->n_processes; i++) {
		const pb_proc_entry *pe = m->processes[i];
		const char *key = pe->key ? pe->key : "";
		for (size_t j = 0; j < i; j++)
			if (strcmp(out->procs[j].exec_id, key) == 0)
				return err_set(d->e, -EINVAL, "processes: exec id `%.200s` twice",
				               key);
		if (!pe->value)
			return err_set(d->e, -EINVAL, "processes: `%.200s` has no payload", key);
		if (process_save_from_any(d, pe->value, key, &out->procs[i]) < 0)
			return d->e->code;
		out->n_procs++;
	}
	return 0;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_container *m = (const pb_container *)msg;
	struct container_save *out = dst;
	if (!(out->container_id = save_strdup(d, m->container_id)))
		return d->e->code;
	if (save_check_schema(d, m->schema_version) < 0 ||
	    save_check_id(d, "gcs_container_id", m->gcs_container_id) < 0 ||
	    save_duration_ns(d, "io_retry_timeout", m->io_retry_timeout,
	                     &out->io_retry_timeout_ns) < 0)
		return d->e->code;
	if (!(out->gcs_container_id = save_strdup(d, m->gcs_container_id)))
		return d->e->code;
	if (m->layers && decode_layers(d, m->layers, out) < 0)
		return d->e->code;
	if (save_guids(d, "scsi_reservation_ids", m->scsi_reservation_ids,
	               m->n_scsi_reservation_ids, &out->scsi_reservations) < 0)
		return d->e->code;
	out->n_scsi_reservations = m->n_scsi_reservation_ids;
	if (save_guids(d, "ferry_plan9_reservation_ids", m->ferry_plan9_reservation_ids,
	               m->n_ferry_plan9_reservation_ids, &out->plan9_reservations) < 0)
		return d->e->code;
	out->n_plan9_reservations = m->n_ferry_plan9_reservation_ids;
	if (save_guids(d, "ferry_vpci_device_ids", m->ferry_vpci_device_ids,
	               m->n_ferry_vpci_device_ids, &out->vpci_devices) < 0)
		return d->e->code;
	out->n_vpci_devices = m->n_ferry_vpci_device_ids;
	return decode_processes(d, m, out);
}

static void fini(void *s)
{
	container_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_CONTAINER,
    .out_size = sizeof(struct container_save),
    .id_field = "container_id",
    .decode = decode_fields,
    .fini = fini,
};

int container_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, size_t idx,
                            struct container_save *out)
{
	const char *label = idx == SIZE_MAX ? "container" : "containers";
	if (d->n_containers >= d->lim->max_containers) {
		memset(out, 0, sizeof(*out));
		save_check_count(d, "containers in the envelope", d->n_containers + 1,
		                 d->lim->max_containers);
		if (idx == SIZE_MAX)
			return err_prefix(d->e, "%s", label);
		return err_prefix(d->e, "%s[%zu]", label, idx);
	}
	d->n_containers++;
	return save_decode_child(d, &child, any, label, idx, out);
}

int container_save_decode(const Google__Protobuf__Any *any, struct container_save *out,
                          struct err *e)
{
	return SAVE_DECODE_TOP(container_save_from_any, any, SIZE_MAX, out, e);
}
