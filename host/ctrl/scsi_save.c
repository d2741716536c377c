/* The SCSI payload (host/ctrl/scsi_save.h): disks keyed by slot with their mounts keyed by
 * partition, reservations keyed by GUID.  hcsshim's Import rejects a slot beyond
 * num_controllers * 64 and a bad reservation GUID; ferry also rejects a slot or partition
 * listed twice, an unknown disk type, a reservation of an empty slot and a host path on two
 * disks (the controller indexes disks by path). */
#include "host/ctrl/scsi_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "hcsshim/controller/scsi/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Hcsshim__Controller__Scsi__Save__V1__Payload pb_scsi;
typedef Hcsshim__Controller__Scsi__Save__V1__Payload__DisksEntry pb_disk_entry;
typedef Hcsshim__Controller__Scsi__Save__V1__Payload__ReservationsEntry pb_res_entry;
typedef Hcsshim__Controller__Scsi__Save__V1__DiskState pb_disk;
typedef Hcsshim__Controller__Scsi__Save__V1__DiskConfig pb_disk_config;
typedef Hcsshim__Controller__Scsi__Save__V1__DiskState__MountsEntry pb_mount_entry;
typedef Hcsshim__Controller__Scsi__Save__V1__MountState pb_mount;
typedef Hcsshim__Controller__Scsi__Save__V1__MountConfig pb_mount_config;
typedef Hcsshim__Controller__Scsi__Save__V1__Reservation pb_res;

static void mount_fini(struct scsi_mount_save *m)
{
	save_strings_free(m->options, m->n_options);
	free(m->filesystem);
	free(m->guest_path);
}

void scsi_save_fini(struct scsi_save *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_disks; i++) {
		struct scsi_disk_save *dk = &s->disks[i];
		free(dk->host_path);
		free(dk->type);
		free(dk->evd_type);
		for (size_t j = 0; j < dk->n_mounts; j++)
			mount_fini(&dk->mounts[j]);
		free(dk->mounts);
	}
	free(s->disks);
	free(s->reservations);
	memset(s, 0, sizeof(*s));
}

const struct scsi_reservation_save *scsi_save_reservation(const struct scsi_save *s,
                                                          const struct guid *id)
{
	for (size_t i = 0; i < s->n_reservations; i++)
		if (guid_equal(&s->reservations[i].id, id))
			return &s->reservations[i];
	return NULL;
}

/* ---- encoding ---- */

/* One disk's protobuf messages, alive while the payload packs. */
struct disk_tmp {
	pb_disk_entry ent;
	pb_disk disk;
	pb_disk_config cfg;
	struct save_map mounts; /* entries and their MountState */
	pb_mount_config *mcfgs;
};

static void disk_to_pb(const struct scsi_disk_save *dk, struct disk_tmp *t)
{
	hcsshim__controller__scsi__save__v1__payload__disks_entry__init(&t->ent);
	hcsshim__controller__scsi__save__v1__disk_state__init(&t->disk);
	t->ent.key = dk->slot;
	t->ent.value = &t->disk;
	if (dk->has_config) {
		hcsshim__controller__scsi__save__v1__disk_config__init(&t->cfg);
		t->cfg.host_path = dk->host_path;
		t->cfg.read_only = dk->read_only;
		t->cfg.type = dk->type;
		t->cfg.evd_type = dk->evd_type;
		t->disk.config = &t->cfg;
	}
	size_t n = dk->n_mounts;
	save_map_alloc(&t->mounts, n, sizeof(pb_mount_entry), sizeof(pb_mount));
	pb_mount_entry *ments = t->mounts.ents;
	pb_mount *mounts = t->mounts.vals;
	t->mcfgs = xcalloc(n + 1, sizeof(*t->mcfgs));
	for (size_t j = 0; j < n; j++) {
		const struct scsi_mount_save *ms = &dk->mounts[j];
		pb_mount *pm = &mounts[j];
		hcsshim__controller__scsi__save__v1__mount_state__init(pm);
		pm->ref_count = ms->ref_count;
		pm->guest_path = ms->guest_path;
		if (ms->has_config) {
			pb_mount_config *c = &t->mcfgs[j];
			hcsshim__controller__scsi__save__v1__mount_config__init(c);
			c->read_only = ms->read_only;
			c->encrypted = ms->encrypted;
			c->n_options = ms->n_options;
			c->options = ms->options;
			c->ensure_filesystem = ms->ensure_filesystem;
			c->filesystem = ms->filesystem;
			c->block_dev = ms->block_dev;
			pm->config = c;
		}
		hcsshim__controller__scsi__save__v1__disk_state__mounts_entry__init(&ments[j]);
		ments[j].key = ms->partition;
		ments[j].value = pm;
	}
	t->disk.n_mounts = n;
	t->disk.mounts = (pb_mount_entry **)t->mounts.ptrs;
}

int scsi_save_encode(const struct scsi_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_scsi m;
	hcsshim__controller__scsi__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.num_controllers = s->num_controllers;
	struct save_map dm, rm;
	save_map_alloc(&dm, s->n_disks, sizeof(struct disk_tmp), 0);
	struct disk_tmp *dt = dm.ents;
	for (size_t i = 0; i < s->n_disks; i++) {
		disk_to_pb(&s->disks[i], &dt[i]);
		dm.ptrs[i] = &dt[i].ent;
	}
	m.n_disks = s->n_disks;
	m.disks = (pb_disk_entry **)dm.ptrs;
	size_t nr = s->n_reservations;
	save_map_alloc(&rm, nr, sizeof(pb_res_entry), sizeof(pb_res));
	pb_res_entry *rents = rm.ents;
	pb_res *res = rm.vals;
	for (size_t i = 0; i < nr; i++) {
		const struct scsi_reservation_save *r = &s->reservations[i];
		hcsshim__controller__scsi__save__v1__reservation__init(&res[i]);
		res[i].slot = r->slot;
		res[i].partition = r->partition;
		hcsshim__controller__scsi__save__v1__payload__reservations_entry__init(&rents[i]);
		rents[i].key = save_guid_text(&r->id, rm.keys[i]);
		rents[i].value = &res[i];
	}
	m.n_reservations = nr;
	m.reservations = (pb_res_entry **)rm.ptrs;
	int rc = save_pack(SAVE_SCSI, &m.base, out, e);
	for (size_t i = 0; i < s->n_disks; i++) {
		save_map_free(&dt[i].mounts);
		free(dt[i].mcfgs);
	}
	save_map_free(&dm);
	save_map_free(&rm);
	return rc;
}

/* ---- decoding ---- */

static int decode_mount(struct save_dec *d, const pb_mount_entry *me, struct scsi_mount_save *out)
{
	out->partition = me->key;
	if (!me->value)
		return err_set(d->e, -EINVAL, "mounts: partition %" PRIu64 " has no state",
		               me->key);
	const pb_mount *pm = me->value;
	out->ref_count = pm->ref_count;
	if (!(out->guest_path = save_strdup(d, pm->guest_path)))
		return d->e->code;
	if (!pm->config)
		return 0;
	const pb_mount_config *c = pm->config;
	out->has_config = true;
	out->read_only = c->read_only;
	out->encrypted = c->encrypted;
	out->ensure_filesystem = c->ensure_filesystem;
	out->block_dev = c->block_dev;
	if (save_strings(d, "mounts.config.options", c->options, c->n_options, &out->options) < 0)
		return d->e->code;
	out->n_options = c->n_options;
	out->filesystem = save_strdup(d, c->filesystem);
	return out->filesystem ? 0 : d->e->code;
}

static int decode_disk_config(struct save_dec *d, const pb_disk_config *c,
                              struct scsi_disk_save *out)
{
	static const char *const types[] = {"", "VirtualDisk", "PassThru", "ExtensibleVirtualDisk"};
	const char *type = c->type ? c->type : "";
	bool known = false;
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
		known |= strcmp(type, types[k]) == 0;
	if (!known)
		return err_set(d->e, -EINVAL, "config.type `%.80s`: unknown disk type", type);
	out->has_config = true;
	out->read_only = c->read_only;
	if (!(out->host_path = save_strdup(d, c->host_path)) ||
	    !(out->type = save_strdup(d, type)) || !(out->evd_type = save_strdup(d, c->evd_type)))
		return d->e->code;
	return 0;
}

static int decode_disk(struct save_dec *d, const pb_disk *pd, struct scsi_disk_save *out)
{
	if (pd->config && decode_disk_config(d, pd->config, out) < 0)
		return d->e->code;
	if (save_check_count(d, "mounts", pd->n_mounts, d->lim->max_items) < 0)
		return d->e->code;
	out->mounts = save_calloc(d, pd->n_mounts, sizeof(*out->mounts));
	if (!out->mounts)
		return d->e->code;
	for (size_t j = 0; j < pd->n_mounts; j++) {
		struct scsi_mount_save *ms = &out->mounts[out->n_mounts++];
		if (decode_mount(d, pd->mounts[j], ms) < 0)
			return d->e->code;
		for (size_t k = 0; k < j; k++)
			if (out->mounts[k].partition == ms->partition)
				return err_set(d->e, -EINVAL, "mounts: partition %" PRIu64 " twice",
				               ms->partition);
	}
	return 0;
}

/* Occupied slots, one bit each (at most max_scsi_ctrl * 64). */
static bool slot_used(const uint8_t *bits, uint32_t slot)
{
	return bits[slot / 8] >> (slot % 8) & 1;
}

static int decode_disks(struct save_dec *d, const pb_scsi *m, uint8_t *used, struct scsi_save *out)
{
	uint64_t slots = (uint64_t)m->num_controllers * SAVE_LUNS_PER_CONTROLLER;
	if (save_check_count(d, "disks", m->n_disks, slots) < 0)
		return d->e->code;
	out->disks = save_calloc(d, m->n_disks, sizeof(*out->disks));
	if (!out->disks)
		return d->e->code;
	for (size_t i = 0; i < m->n_disks; i++) {
		const pb_disk_entry *de = m->disks[i];
		struct scsi_disk_save *dk = &out->disks[out->n_disks++];
		dk->slot = de->key;
		if (de->key >= slots)
			return err_set(d->e, -EINVAL,
			               "disk slot %" PRIu32
			               " out of range (num_controllers %" PRIu32
			               ": slots 0..%" PRIu64 ")",
			               de->key, m->num_controllers, slots - 1);
		if (slot_used(used, de->key))
			return err_set(d->e, -EINVAL, "disk slot %" PRIu32 " twice", de->key);
		used[de->key / 8] |= (uint8_t)(1u << (de->key % 8));
		if (!de->value)
			return err_set(d->e, -EINVAL, "disk slot %" PRIu32 " has no state",
			               de->key);
		if (decode_disk(d, de->value, dk) < 0)
			return err_prefix(d->e, "disk slot %" PRIu32, de->key);
	}
	/* The controller indexes disks by host path: no path on two slots. */
	char **paths = xcalloc(out->n_disks + 1, sizeof(*paths));
	size_t np = 0;
	for (size_t i = 0; i < out->n_disks; i++)
		if (out->disks[i].host_path && *out->disks[i].host_path)
			paths[np++] = out->disks[i].host_path;
	int rc = save_check_unique(d, "disk host_path", paths, np, false);
	free(paths);
	return rc;
}

static int by_reservation_id(const void *a, const void *b)
{
	return memcmp(&((const struct scsi_reservation_save *)a)->id,
	              &((const struct scsi_reservation_save *)b)->id, sizeof(struct guid));
}

static int decode_reservations(struct save_dec *d, const pb_scsi *m, const uint8_t *used,
                               struct scsi_save *out)
{
	uint64_t slots = (uint64_t)out->num_controllers * SAVE_LUNS_PER_CONTROLLER;
	if (save_check_count(d, "reservations", m->n_reservations, d->lim->max_items) < 0)
		return d->e->code;
	out->reservations = save_calloc(d, m->n_reservations, sizeof(*out->reservations));
	if (!out->reservations)
		return d->e->code;
	for (size_t i = 0; i < m->n_reservations; i++) {
		const pb_res_entry *re = m->reservations[i];
		struct scsi_reservation_save *r = &out->reservations[i];
		if (save_check_guid(d, "reservations key", re->key, &r->id) < 0)
			return d->e->code;
		if (!re->value)
			return err_set(d->e, -EINVAL, "reservation `%s` has no slot", re->key);
		r->slot = re->value->slot;
		r->partition = re->value->partition;
		if (r->slot >= slots || !slot_used(used, r->slot))
			return err_set(d->e, -EINVAL,
			               "reservation `%s`: slot %" PRIu32 " has no disk", re->key,
			               r->slot);
		out->n_reservations++;
	}
	/* No GUID twice: sorted copy, neighbours compared. */
	size_t n = out->n_reservations;
	struct scsi_reservation_save *v = xcalloc(n + 1, sizeof(*v));
	memcpy(v, out->reservations, n * sizeof(*v));
	qsort(v, n, sizeof(*v), by_reservation_id);
	int rc = 0;
	for (size_t i = 1; i < n && rc == 0; i++)
		if (guid_equal(&v[i].id, &v[i - 1].id)) {
			char g[GUID_STR_LEN + 1];
			rc = err_set(d->e, -EINVAL, "reservation `%s` twice",
			             save_guid_text(&v[i].id, g));
		}
	free(v);
	return rc;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_scsi *m = (const pb_scsi *)msg;
	struct scsi_save *out = dst;
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	if (m->num_controllers > d->lim->max_scsi_ctrl)
		return err_set(d->e, -E2BIG, "num_controllers %" PRIu32 ", limit %" PRIu32,
		               m->num_controllers, d->lim->max_scsi_ctrl);
	out->num_controllers = m->num_controllers;
	uint8_t *used =
	    save_calloc(d, (size_t)m->num_controllers * SAVE_LUNS_PER_CONTROLLER / 8 + 1, 1);
	if (!used)
		return d->e->code;
	int rc = decode_disks(d, m, used, out);
	if (rc == 0)
		rc = decode_reservations(d, m, used, out);
	free(used);
	return rc;
}

static void fini(void *s)
{
	scsi_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_SCSI,
    .out_size = sizeof(struct scsi_save),
    .decode = decode_fields,
    .fini = fini,
};

int scsi_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                       struct scsi_save *out)
{
	return save_decode_child(d, &child, any, label, SIZE_MAX, out);
}

int scsi_save_decode(const Google__Protobuf__Any *any, struct scsi_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(scsi_save_from_any, any, "scsi", out, e);
}
