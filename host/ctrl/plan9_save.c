/* The Plan9 payload (host/ctrl/plan9_save.h). */
#include "host/ctrl/plan9_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "ferry/controller/plan9/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Ferry__Controller__Plan9__Save__V1__Payload pb_plan9;
typedef Ferry__Controller__Plan9__Save__V1__Payload__SharesEntry pb_share_entry;
typedef Ferry__Controller__Plan9__Save__V1__Payload__ReservationsEntry pb_res_entry;
typedef Ferry__Controller__Plan9__Save__V1__Share pb_share;
typedef Ferry__Controller__Plan9__Save__V1__Mount pb_mount;
typedef Ferry__Controller__Plan9__Save__V1__Reservation pb_res;

void plan9_save_fini(struct plan9_save *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_shares; i++) {
		struct plan9_share_save *sh = &s->shares[i];
		free(sh->host_path);
		free(sh->name);
		save_strings_free(sh->allowed_names, sh->n_allowed_names);
		free(sh->mount_guest_path);
	}
	free(s->shares);
	for (size_t i = 0; i < s->n_reservations; i++) {
		free(s->reservations[i].host_path);
		free(s->reservations[i].name);
	}
	free(s->reservations);
	memset(s, 0, sizeof(*s));
}

const struct plan9_reservation_save *plan9_save_reservation(const struct plan9_save *s,
                                                            const struct guid *id)
{
	for (size_t i = 0; i < s->n_reservations; i++)
		if (guid_equal(&s->reservations[i].id, id))
			return &s->reservations[i];
	return NULL;
}

/* ---- encoding ---- */

int plan9_save_encode(const struct plan9_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_plan9 m;
	ferry__controller__plan9__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.no_writable_file_shares = s->no_writable_file_shares;
	m.name_counter = s->name_counter;
	size_t ns = s->n_shares, nr = s->n_reservations;
	struct save_map sm, rm;
	save_map_alloc(&sm, ns, sizeof(pb_share_entry), sizeof(pb_share));
	pb_share_entry *sents = sm.ents;
	pb_share *shares = sm.vals;
	pb_mount *mounts = xcalloc(ns + 1, sizeof(*mounts));
	for (size_t i = 0; i < ns; i++) {
		const struct plan9_share_save *sh = &s->shares[i];
		pb_share *p = &shares[i];
		ferry__controller__plan9__save__v1__share__init(p);
		p->name = sh->name;
		p->read_only = sh->read_only;
		p->restrict_file_access = sh->restrict_file_access;
		p->n_allowed_names = sh->n_allowed_names;
		p->allowed_names = sh->allowed_names;
		p->stage = (Ferry__Controller__Plan9__Save__V1__ShareStage)sh->stage;
		if (sh->has_mount) {
			ferry__controller__plan9__save__v1__mount__init(&mounts[i]);
			mounts[i].read_only = sh->mount_read_only;
			mounts[i].stage =
			    (Ferry__Controller__Plan9__Save__V1__MountStage)sh->mount_stage;
			mounts[i].ref_count = sh->mount_ref_count;
			mounts[i].guest_path = sh->mount_guest_path;
			p->mount = &mounts[i];
		}
		ferry__controller__plan9__save__v1__payload__shares_entry__init(&sents[i]);
		sents[i].key = sh->host_path;
		sents[i].value = p;
	}
	m.n_shares = ns;
	m.shares = (pb_share_entry **)sm.ptrs;
	save_map_alloc(&rm, nr, sizeof(pb_res_entry), sizeof(pb_res));
	pb_res_entry *rents = rm.ents;
	pb_res *res = rm.vals;
	for (size_t i = 0; i < nr; i++) {
		ferry__controller__plan9__save__v1__reservation__init(&res[i]);
		res[i].host_path = s->reservations[i].host_path;
		res[i].name = s->reservations[i].name;
		ferry__controller__plan9__save__v1__payload__reservations_entry__init(&rents[i]);
		rents[i].key = save_guid_text(&s->reservations[i].id, rm.keys[i]);
		rents[i].value = &res[i];
	}
	m.n_reservations = nr;
	m.reservations = (pb_res_entry **)rm.ptrs;
	int rc = save_pack(SAVE_PLAN9, &m.base, out, e);
	save_map_free(&sm);
	save_map_free(&rm);
	free(mounts);
	return rc;
}

/* ---- decoding ---- */

static int decode_mount(struct save_dec *d, const pb_mount *pm, struct plan9_share_save *out)
{
	int st = (int)pm->stage;
	if (st != PLAN9_MOUNT_RESERVED && st != PLAN9_MOUNT_MOUNTED)
		return err_set(d->e, -EINVAL, "mount: stage %d cannot be saved", st);
	if (pm->ref_count == 0)
		return err_set(d->e, -EINVAL, "mount: ref_count 0");
	out->has_mount = true;
	out->mount_read_only = pm->read_only;
	out->mount_stage = (enum plan9_mount_stage)st;
	out->mount_ref_count = pm->ref_count;
	out->mount_guest_path = save_strdup(d, pm->guest_path);
	return out->mount_guest_path ? 0 : d->e->code;
}

static int decode_share(struct save_dec *d, bool read_only_policy, const pb_share_entry *se,
                        struct plan9_share_save *out)
{
	if (save_check_id(d, "shares key", se->key) < 0)
		return d->e->code;
	if (!(out->host_path = save_strdup(d, se->key)))
		return d->e->code;
	const pb_share *p = se->value;
	if (!p)
		return err_set(d->e, -EINVAL, "has no state");
	if (save_check_id(d, "name", p->name) < 0)
		return d->e->code;
	int st = (int)p->stage;
	if (st != PLAN9_SHARE_RESERVED && st != PLAN9_SHARE_ADDED)
		return err_set(d->e, -EINVAL, "stage %d cannot be saved", st);
	if (!p->read_only && read_only_policy)
		return err_set(d->e, -EINVAL, "writable, but no_writable_file_shares is set");
	out->read_only = p->read_only;
	out->restrict_file_access = p->restrict_file_access;
	out->stage = (enum plan9_share_stage)st;
	if (!(out->name = save_strdup(d, p->name)) ||
	    save_strings(d, "allowed_names", p->allowed_names, p->n_allowed_names,
	                 &out->allowed_names) < 0)
		return d->e->code;
	out->n_allowed_names = p->n_allowed_names;
	if (p->mount && decode_mount(d, p->mount, out) < 0)
		return d->e->code;
	return 0;
}

static int decode_shares(struct save_dec *d, const pb_plan9 *m, struct plan9_save *out)
{
	if (save_check_count(d, "shares", m->n_shares, d->lim->max_items) < 0)
		return d->e->code;
	out->shares = save_calloc(d, m->n_shares, sizeof(*out->shares));
	if (!out->shares)
		return d->e->code;
	for (size_t i = 0; i < m->n_shares; i++) {
		struct plan9_share_save *sh = &out->shares[out->n_shares++];
		if (decode_share(d, m->no_writable_file_shares, m->shares[i], sh) < 0)
			return err_prefix(d->e, "share `%.200s`", m->shares[i]->key);
		for (size_t j = 0; j + 1 < out->n_shares; j++) {
			if (strcmp(out->shares[j].host_path, sh->host_path) == 0)
				return err_set(d->e, -EINVAL, "share `%.200s` twice",
				               sh->host_path);
			if (strcmp(out->shares[j].name, sh->name) == 0)
				return err_set(d->e, -EINVAL,
				               "share `%.200s`: name `%.80s` is also "
				               "share `%.200s`'s",
				               sh->host_path, sh->name, out->shares[j].host_path);
		}
	}
	return 0;
}

static int decode_reservation(struct save_dec *d, const struct plan9_save *sv,
                              const pb_res_entry *re, struct plan9_reservation_save *out)
{
	if (save_check_guid(d, "reservations key", re->key, &out->id) < 0)
		return d->e->code;
	if (plan9_save_reservation(sv, &out->id))
		return err_set(d->e, -EINVAL, "reservation `%s` twice", re->key);
	const pb_res *r = re->value;
	if (!r)
		return err_set(d->e, -EINVAL, "reservation `%s` has no share", re->key);
	const struct plan9_share_save *sh = NULL;
	for (size_t j = 0; j < sv->n_shares && r->host_path; j++)
		if (strcmp(sv->shares[j].host_path, r->host_path) == 0)
			sh = &sv->shares[j];
	if (!sh)
		return err_set(d->e, -EINVAL, "reservation `%s`: no share for host_path `%.200s`",
		               re->key, r->host_path ? r->host_path : "");
	if (!r->name || strcmp(r->name, sh->name) != 0)
		return err_set(d->e, -EINVAL,
		               "reservation `%s`: name `%.80s`, the share's is `%.80s`", re->key,
		               r->name ? r->name : "", sh->name);
	if (!(out->host_path = save_strdup(d, r->host_path)) ||
	    !(out->name = save_strdup(d, r->name)))
		return d->e->code;
	return 0;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_plan9 *m = (const pb_plan9 *)msg;
	struct plan9_save *out = dst;
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	out->no_writable_file_shares = m->no_writable_file_shares;
	out->name_counter = m->name_counter;
	if (decode_shares(d, m, out) < 0)
		return d->e->code;
	if (save_check_count(d, "reservations", m->n_reservations, d->lim->max_items) < 0)
		return d->e->code;
	out->reservations = save_calloc(d, m->n_reservations, sizeof(*out->reservations));
	if (!out->reservations)
		return d->e->code;
	for (size_t i = 0; i < m->n_reservations; i++) {
		struct plan9_reservation_save r = {0};
		if (decode_reservation(d, out, m->reservations[i], &r) < 0) {
			free(r.host_path);
			free(r.name);
			return d->e->code;
		}
		out->reservations[out->n_reservations++] = r;
	}
	return 0;
}

static void fini(void *s)
{
	plan9_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_PLAN9,
    .out_size = sizeof(struct plan9_save),
    .decode = decode_fields,
    .fini = fini,
};

int plan9_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                        struct plan9_save *out)
{
	return save_decode_child(d, &child, any, label, SIZE_MAX, out);
}

int plan9_save_decode(const Google__Protobuf__Any *any, struct plan9_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(plan9_save_from_any, any, "plan9", out, e);
}
