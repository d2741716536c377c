/* The VM payload (host/ctrl/vm_save.h): hcsshim's fields with the SCSI child, ferry's
 * backend and machine description, vPCI and Plan9 children and the GCS client's
 * connection-wide state. */
#include "host/ctrl/vm_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/proto.h"
#include "common/xalloc.h"
#include "hcsshim/controller/vm/save/v1/payload.pb-c.h"

typedef Hcsshim__Controller__Vm__Save__V1__Payload pb_vm;
typedef Hcsshim__Controller__Vm__Save__V1__SandboxOptions pb_options;

#define BACKEND_HCS "hcs"

void vm_save_fini(struct vm_save *s)
{
	if (!s)
		return;
	free(s->vm_id);
	free(s->architecture);
	scsi_save_fini(&s->scsi);
	free(s->compat_info);
	free(s->backend);
	free(s->machine_json);
	vpci_save_fini(&s->vpci);
	plan9_save_fini(&s->plan9);
	save_strings_free(s->gcs_containers, s->n_gcs_containers);
	free(s->orphan_ids);
	for (size_t i = 0; i < s->n_uvm_procs; i++)
		process_save_fini(&s->uvm_procs[i]);
	free(s->uvm_procs);
	explicit_bzero(s->session_secret, sizeof(s->session_secret));
	memset(s, 0, sizeof(*s));
}

/* ---- encoding ---- */

static bool is_hcs(const char *backend)
{
	return !backend || strcmp(backend, BACKEND_HCS) == 0;
}

/* The children, packed before the VM payload itself. */
struct vm_children {
	Google__Protobuf__Any scsi, vpci, plan9;
	struct save_map procs; /* Anys */
};

static int encode_children(const struct vm_save *s, pb_vm *m, struct vm_children *c, struct err *e)
{
	if (s->has_scsi) {
		if (scsi_save_encode(&s->scsi, &c->scsi, e) < 0)
			return e->code;
		m->scsi = &c->scsi;
	}
	if (s->has_vpci) {
		if (vpci_save_encode(&s->vpci, &c->vpci, e) < 0)
			return e->code;
		m->ferry_vpci = &c->vpci;
	}
	if (s->has_plan9) {
		if (plan9_save_encode(&s->plan9, &c->plan9, e) < 0)
			return e->code;
		m->ferry_plan9 = &c->plan9;
	}
	save_map_alloc(&c->procs, s->n_uvm_procs, sizeof(Google__Protobuf__Any), 0);
	Google__Protobuf__Any *anys = c->procs.ents;
	for (size_t i = 0; i < s->n_uvm_procs; i++)
		if (process_save_encode(&s->uvm_procs[i], &anys[i], e) < 0)
			return e->code;
	m->n_ferry_uvm_processes = s->n_uvm_procs;
	m->ferry_uvm_processes = (Google__Protobuf__Any **)c->procs.ptrs;
	return 0;
}

int vm_save_encode(const struct vm_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_vm m;
	pb_options opts;
	struct vm_children c;
	memset(&c, 0, sizeof(c));
	hcsshim__controller__vm__save__v1__payload__init(&m);
	hcsshim__controller__vm__save__v1__sandbox_options__init(&opts);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.vm_id = s->vm_id;
	opts.no_writable_file_shares = s->no_writable_file_shares;
	opts.enable_scratch_encryption = s->enable_scratch_encryption;
	opts.policy_based_routing = s->policy_based_routing;
	opts.architecture = s->architecture;
	opts.fully_physically_backed = s->fully_physically_backed;
	m.sandbox_options = &opts;
	m.gcs_next_port = s->gcs_next_port;
	m.compat_info.data = s->compat_info;
	m.compat_info.len = s->compat_len;
	m.bridge_next_id = s->bridge_next_id;
	m.ferry_vmm_backend = s->backend;
	ProtobufCBinaryData machine = {.len = s->machine_json ? s->machine_len : 0,
	                               .data = (uint8_t *)s->machine_json};
	if (is_hcs(s->backend))
		m.hcs_document = machine;
	else
		m.ferry_machine_json = machine;
	if (s->has_session_secret) {
		m.ferry_gcs_session_secret.data = (uint8_t *)s->session_secret;
		m.ferry_gcs_session_secret.len = SAVE_SESSION_SECRET_LEN;
	}
	m.n_ferry_gcs_containers = s->n_gcs_containers;
	m.ferry_gcs_containers = s->gcs_containers;
	m.n_ferry_gcs_orphan_ids = s->n_orphan_ids;
	m.ferry_gcs_orphan_ids = s->orphan_ids;
	int rc = encode_children(s, &m, &c, e);
	if (rc == 0)
		rc = save_pack(SAVE_VM, &m.base, out, e);
	if (rc < 0)
		err_prefix(e, "vm `%s`", s->vm_id);
	save_any_fini(&c.scsi);
	save_any_fini(&c.vpci);
	save_any_fini(&c.plan9);
	save_map_free_anys(&c.procs, s->n_uvm_procs);
	return rc;
}

/* ---- decoding ---- */

static int decode_machine(struct save_dec *d, const pb_vm *m, struct vm_save *out)
{
	const char *backend =
	    m->ferry_vmm_backend && *m->ferry_vmm_backend ? m->ferry_vmm_backend : BACKEND_HCS;
	size_t n = strlen(backend);
	if (n > 32 || strspn(backend, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return err_set(d->e, -EINVAL, "ferry_vmm_backend `%.80s`: not a backend name",
		               backend);
	const ProtobufCBinaryData *doc = &m->ferry_machine_json;
	const char *field = "ferry_machine_json", *other = "hcs_document";
	if (is_hcs(backend)) {
		doc = &m->hcs_document;
		field = "hcs_document";
		other = "ferry_machine_json";
	}
	if ((doc == &m->hcs_document ? m->ferry_machine_json.len : m->hcs_document.len) != 0)
		return err_set(d->e, -EINVAL, "%s is set for backend `%s`, which uses %s", other,
		               backend, field);
	if (save_check_json(d, field, doc, true) < 0)
		return d->e->code;
	if (!(out->backend = save_strdup(d, backend)))
		return d->e->code;
	out->machine_json = save_memdup(d, doc, &out->machine_len);
	return out->machine_len && !out->machine_json ? d->e->code : 0;
}

static int decode_gcs(struct save_dec *d, const pb_vm *m, struct vm_save *out)
{
	if (m->gcs_next_port && m->gcs_next_port < GCS_FIRST_STDIO_PORT)
		return err_set(d->e, -EINVAL,
		               "gcs_next_port %#" PRIx32 " is below the first stdio port",
		               m->gcs_next_port);
	if (m->bridge_next_id < 0)
		return err_set(d->e, -EINVAL, "bridge_next_id %" PRId64 " is negative",
		               m->bridge_next_id);
	out->gcs_next_port = m->gcs_next_port;
	out->bridge_next_id = m->bridge_next_id;
	size_t ns = m->ferry_gcs_session_secret.len;
	if (ns && ns != SAVE_SESSION_SECRET_LEN)
		return err_set(d->e, -EINVAL, "ferry_gcs_session_secret: %zu bytes, want %u", ns,
		               SAVE_SESSION_SECRET_LEN);
	out->has_session_secret = ns != 0;
	if (ns)
		memcpy(out->session_secret, m->ferry_gcs_session_secret.data, ns);
	for (size_t i = 0; i < m->n_ferry_gcs_containers; i++)
		if (save_check_id(d, "ferry_gcs_containers", m->ferry_gcs_containers[i]) < 0)
			return d->e->code;
	if (save_check_unique(d, "ferry_gcs_containers", m->ferry_gcs_containers,
	                      m->n_ferry_gcs_containers, false) < 0 ||
	    save_strings(d, "ferry_gcs_containers", m->ferry_gcs_containers,
	                 m->n_ferry_gcs_containers, &out->gcs_containers) < 0)
		return d->e->code;
	out->n_gcs_containers = m->n_ferry_gcs_containers;
	size_t no = m->n_ferry_gcs_orphan_ids;
	if (save_check_count(d, "ferry_gcs_orphan_ids", no, d->lim->max_items) < 0)
		return d->e->code;
	out->orphan_ids = save_calloc(d, no, sizeof(*out->orphan_ids));
	if (!out->orphan_ids)
		return d->e->code;
	for (size_t i = 0; i < no; i++) {
		int64_t id = m->ferry_gcs_orphan_ids[i];
		if (id < 0 || id >= m->bridge_next_id)
			return err_set(d->e, -EINVAL,
			               "ferry_gcs_orphan_ids: %" PRId64
			               " is not below bridge_next_id "
			               "%" PRId64,
			               id, m->bridge_next_id);
		for (size_t j = 0; j < i; j++)
			if (out->orphan_ids[j] == id)
				return err_set(d->e, -EINVAL,
				               "ferry_gcs_orphan_ids: %" PRId64 " twice", id);
		out->orphan_ids[out->n_orphan_ids++] = id;
	}
	return 0;
}

static int decode_children(struct save_dec *d, const pb_vm *m, struct vm_save *out)
{
	if (m->scsi) {
		out->has_scsi = true;
		if (scsi_save_from_any(d, m->scsi, "scsi", &out->scsi) < 0)
			return d->e->code;
	}
	if (m->ferry_vpci) {
		out->has_vpci = true;
		if (vpci_save_from_any(d, m->ferry_vpci, "ferry_vpci", &out->vpci) < 0)
			return d->e->code;
	}
	if (m->ferry_plan9) {
		out->has_plan9 = true;
		if (plan9_save_from_any(d, m->ferry_plan9, "ferry_plan9", &out->plan9) < 0)
			return d->e->code;
	}
	size_t np = m->n_ferry_uvm_processes;
	if (save_check_count(d, "ferry_uvm_processes", np, d->lim->max_processes) < 0)
		return d->e->code;
	out->uvm_procs = save_calloc(d, np, sizeof(*out->uvm_procs));
	if (!out->uvm_procs)
		return d->e->code;
	for (size_t i = 0; i < np; i++) {
		struct process_save *p = &out->uvm_procs[out->n_uvm_procs];
		if (process_save_from_any(d, m->ferry_uvm_processes[i], NULL, p) < 0)
			return err_prefix(d->e, "ferry_uvm_processes[%zu]", i);
		out->n_uvm_procs++;
		for (size_t j = 0; j + 1 < out->n_uvm_procs; j++)
			if (strcmp(out->uvm_procs[j].exec_id, p->exec_id) == 0)
				return err_set(d->e, -EINVAL,
				               "ferry_uvm_processes: exec_id `%.200s` twice",
				               p->exec_id);
	}
	return 0;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_vm *m = (const pb_vm *)msg;
	struct vm_save *out = dst;
	if (!(out->vm_id = save_strdup(d, m->vm_id)))
		return d->e->code;
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	const pb_options *o = m->sandbox_options;
	if (o) {
		out->no_writable_file_shares = o->no_writable_file_shares;
		out->enable_scratch_encryption = o->enable_scratch_encryption;
		out->policy_based_routing = o->policy_based_routing;
		out->fully_physically_backed = o->fully_physically_backed;
	}
	if (!(out->architecture = save_strdup(d, o ? o->architecture : "")))
		return d->e->code;
	size_t n = 0;
	out->compat_info = (uint8_t *)save_memdup(d, &m->compat_info, &n);
	out->compat_len = n;
	if (n && !out->compat_info)
		return d->e->code;
	if (decode_machine(d, m, out) < 0 || decode_gcs(d, m, out) < 0)
		return d->e->code;
	return decode_children(d, m, out);
}

static void fini(void *s)
{
	vm_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_VM,
    .out_size = sizeof(struct vm_save),
    .id_field = "vm_id",
    .decode = decode_fields,
    .fini = fini,
};

int vm_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *label,
                     struct vm_save *out)
{
	return save_decode_child(d, &child, any, label, SIZE_MAX, out);
}

int vm_save_decode(const Google__Protobuf__Any *any, struct vm_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(vm_save_from_any, any, "vm", out, e);
}

/* ---- the GCS client's half ---- */

int vm_save_from_gcs(struct vm_save *s, const struct gcs_client_state *st, struct err *e)
{
	if (st->next_id > INT64_MAX)
		return err_set(e, -EINVAL, "next bridge id %" PRIu64 " beyond int64", st->next_id);
	for (size_t i = 0; i < st->n_orphans; i++)
		if (st->orphans[i] > INT64_MAX)
			return err_set(e, -EINVAL, "orphan id %" PRIu64 " beyond int64",
			               st->orphans[i]);
	s->gcs_next_port = st->next_port;
	s->bridge_next_id = (int64_t)st->next_id;
	save_strings_free(s->gcs_containers, s->n_gcs_containers);
	s->gcs_containers = xcalloc(st->n_containers + 1, sizeof(char *));
	for (size_t i = 0; i < st->n_containers; i++)
		s->gcs_containers[i] = xstrdup(st->containers[i]);
	s->n_gcs_containers = st->n_containers;
	free(s->orphan_ids);
	s->orphan_ids = xcalloc(st->n_orphans + 1, sizeof(*s->orphan_ids));
	for (size_t i = 0; i < st->n_orphans; i++)
		s->orphan_ids[i] = (int64_t)st->orphans[i];
	s->n_orphan_ids = st->n_orphans;
	return 0;
}

void vm_save_to_gcs(const struct vm_save *s, struct gcs_client_state *out)
{
	memset(out, 0, sizeof(*out));
	out->next_port = s->gcs_next_port;
	out->next_id = (uint64_t)s->bridge_next_id;
	out->containers = xcalloc(s->n_gcs_containers + 1, sizeof(char *));
	for (size_t i = 0; i < s->n_gcs_containers; i++)
		out->containers[i] = xstrdup(s->gcs_containers[i]);
	out->n_containers = s->n_gcs_containers;
	out->orphans = xcalloc(s->n_orphan_ids + 1, sizeof(*out->orphans));
	for (size_t i = 0; i < s->n_orphan_ids; i++)
		out->orphans[i] = (uint64_t)s->orphan_ids[i];
	out->n_orphans = s->n_orphan_ids;
	out->procs = xcalloc(1, sizeof(*out->procs));
}
