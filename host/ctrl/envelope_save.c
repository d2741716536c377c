/* The sandbox envelope (host/ctrl/envelope_save.h): the whole tree is decoded into a
 * temporary, the rules that span payloads are checked with sorted indexes (so a 4096
 * container envelope costs n log n, not n^2), and only then is the result stored. */
#include "host/ctrl/envelope_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "hcsshim/controller/migration/save/v1/payload.pb-c.h"

typedef Hcsshim__Controller__Migration__Save__V1__Payload pb_envelope;

void envelope_save_fini(struct envelope_save *s)
{
	if (!s)
		return;
	vm_save_fini(&s->vm);
	for (size_t i = 0; i < s->n_pods; i++)
		pod_save_fini(&s->pods[i]);
	free(s->pods);
	memset(s, 0, sizeof(*s));
}

size_t envelope_save_containers(const struct envelope_save *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_pods; i++)
		n += s->pods[i].n_containers;
	return n;
}

size_t envelope_save_processes(const struct envelope_save *s)
{
	size_t n = s->vm.n_uvm_procs;
	for (size_t i = 0; i < s->n_pods; i++)
		for (size_t j = 0; j < s->pods[i].n_containers; j++)
			n += s->pods[i].containers[j].n_procs;
	return n;
}

/* ---- encoding ---- */

int envelope_save_encode(const struct envelope_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_envelope m;
	Google__Protobuf__Any vm;
	hcsshim__controller__migration__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	int rc = vm_save_encode(&s->vm, &vm, e);
	if (rc < 0)
		return rc;
	m.vm = &vm;
	struct save_map pods;
	save_map_alloc(&pods, s->n_pods, sizeof(Google__Protobuf__Any), 0);
	Google__Protobuf__Any *anys = pods.ents;
	for (size_t i = 0; i < s->n_pods && rc == 0; i++)
		rc = pod_save_encode(&s->pods[i], &anys[i], e);
	m.n_pods = s->n_pods;
	m.pods = (Google__Protobuf__Any **)pods.ptrs;
	if (rc == 0)
		rc = save_pack(SAVE_ENVELOPE, &m.base, out, e);
	save_map_free_anys(&pods, s->n_pods);
	save_any_fini(&vm);
	return rc;
}

int envelope_save_encode_bytes(const struct envelope_save *s, struct buf *out, struct err *e)
{
	Google__Protobuf__Any any;
	int rc = envelope_save_encode(s, &any, e);
	if (rc < 0)
		return rc;
	save_any_to_bytes(&any, out);
	save_any_fini(&any);
	return 0;
}

/* ---- the rules that span payloads ---- */

/* One id or number of the envelope and who holds it, for sorted duplicate checks. */
struct ref {
	const char *str;
	uint64_t num;
	const struct pod_save *pod;
	const struct container_save *c; /* NULL: the VM */
	const struct process_save *p;
};

static int by_str(const void *a, const void *b)
{
	return strcmp(((const struct ref *)a)->str, ((const struct ref *)b)->str);
}

static int by_num(const void *a, const void *b)
{
	uint64_t x = ((const struct ref *)a)->num, y = ((const struct ref *)b)->num;
	return x < y ? -1 : x > y;
}

/* Sort v and return the first of two equal neighbours, or NULL. */
static const struct ref *first_dup(struct ref *v, size_t n, bool num)
{
	qsort(v, n, sizeof(*v), num ? by_num : by_str);
	for (size_t i = 1; i < n; i++)
		if (num ? v[i].num == v[i - 1].num : strcmp(v[i].str, v[i - 1].str) == 0)
			return &v[i - 1];
	return NULL;
}

/* "pod `p` container `c` process `e`", "uvm process `e`". */
static const char *who(const struct ref *r, char *buf, size_t len)
{
	const char *exec = r->p ? r->p->exec_id : NULL;
	char pr[240] = "";
	if (exec)
		snprintf(pr, sizeof(pr), *exec ? " process `%.200s`" : " init process", exec);
	if (!r->c)
		snprintf(buf, len, "uvm%s", pr);
	else
		snprintf(buf, len, "pod `%.200s` container `%.200s`%s", r->pod->pod_id,
		         r->c->container_id, pr);
	return buf;
}

static int check_ids(const struct envelope_save *s, struct ref *v, struct err *e)
{
	char a[600], b[600];
	for (size_t i = 0; i < s->n_pods; i++)
		v[i] = (struct ref){.str = s->pods[i].pod_id, .pod = &s->pods[i]};
	const struct ref *r = first_dup(v, s->n_pods, false);
	if (r)
		return err_set(e, -EINVAL, "pod `%.200s` twice", r->str);
	for (size_t i = 0; i < s->n_pods; i++)
		v[i] = (struct ref){.str = s->pods[i].gcs_pod_id, .pod = &s->pods[i]};
	if ((r = first_dup(v, s->n_pods, false)))
		return err_set(e, -EINVAL,
		               "pods `%.200s` and `%.200s` have the same gcs_pod_id `%.200s`",
		               r[0].pod->pod_id, r[1].pod->pod_id, r->str);
	size_t n = 0;
	for (size_t i = 0; i < s->n_pods; i++)
		for (size_t j = 0; j < s->pods[i].n_containers; j++)
			v[n++] = (struct ref){.str = s->pods[i].containers[j].container_id,
			                      .pod = &s->pods[i],
			                      .c = &s->pods[i].containers[j]};
	if ((r = first_dup(v, n, false)))
		return err_set(e, -EINVAL,
		               "container `%.200s` is in pod `%.200s` and in pod `%.200s`", r->str,
		               r[0].pod->pod_id, r[1].pod->pod_id);
	for (size_t i = 0; i < n; i++)
		v[i].str = v[i].c->gcs_container_id;
	if ((r = first_dup(v, n, false)))
		return err_set(e, -EINVAL, "%s and %s have the same gcs_container_id `%.200s`",
		               who(&r[0], a, sizeof(a)), who(&r[1], b, sizeof(b)), r->str);
	/* v[0..n) is now sorted by gcs_container_id: every registered container must be one. */
	for (size_t i = 0; i < s->vm.n_gcs_containers; i++) {
		struct ref key = {.str = s->vm.gcs_containers[i]};
		if (!bsearch(&key, v, n, sizeof(*v), by_str))
			return err_set(e, -EINVAL,
			               "vm: ferry_gcs_containers: `%.200s` is no container's "
			               "gcs_container_id",
			               key.str);
	}
	return 0;
}

static int by_guid(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct guid));
}

/* A sorted copy of n GUIDs found at base + i * stride. */
static struct guid *sorted_guids(const void *base, size_t n, size_t stride)
{
	struct guid *g = xcalloc(n + 1, sizeof(*g));
	for (size_t i = 0; i < n; i++)
		memcpy(&g[i], (const char *)base + i * stride, sizeof(*g));
	qsort(g, n, sizeof(*g), by_guid);
	return g;
}

static int check_refs(const char *what, const struct guid *want, size_t n_want,
                      const struct guid *have, size_t n_have, const struct ref *owner,
                      struct err *e)
{
	char a[600], g[GUID_STR_LEN + 1];
	for (size_t i = 0; i < n_want; i++)
		if (!bsearch(&want[i], have, n_have, sizeof(*have), by_guid))
			return err_set(e, -EINVAL, "%s: %s `%s`: no such reservation or device",
			               who(owner, a, sizeof(a)), what, save_guid_text(&want[i], g));
	return 0;
}

static int check_container_refs(const struct envelope_save *s, struct err *e)
{
	const struct vm_save *vm = &s->vm;
	struct guid *scsi = sorted_guids(vm->scsi.reservations, vm->scsi.n_reservations,
	                                 sizeof(*vm->scsi.reservations));
	struct guid *p9 = sorted_guids(vm->plan9.reservations, vm->plan9.n_reservations,
	                               sizeof(*vm->plan9.reservations));
	struct guid *pci =
	    sorted_guids(vm->vpci.devices, vm->vpci.n_devices, sizeof(*vm->vpci.devices));
	int rc = 0;
	for (size_t i = 0; i < s->n_pods && rc == 0; i++) {
		for (size_t j = 0; j < s->pods[i].n_containers && rc == 0; j++) {
			const struct container_save *c = &s->pods[i].containers[j];
			struct ref o = {.pod = &s->pods[i], .c = c};
			rc = check_refs("scsi_reservation_ids", c->scsi_reservations,
			                c->n_scsi_reservations, scsi, vm->scsi.n_reservations, &o,
			                e);
			for (size_t k = 0; k < c->n_ro_layers && rc == 0; k++)
				rc = check_refs("layers.ro_layers", &c->ro_layers[k].reservation_id,
				                1, scsi, vm->scsi.n_reservations, &o, e);
			if (rc == 0 && c->has_scratch)
				rc = check_refs("layers.scratch", &c->scratch.reservation_id, 1,
				                scsi, vm->scsi.n_reservations, &o, e);
			if (rc == 0)
				rc = check_refs("ferry_plan9_reservation_ids",
				                c->plan9_reservations, c->n_plan9_reservations, p9,
				                vm->plan9.n_reservations, &o, e);
			if (rc == 0)
				rc = check_refs("ferry_vpci_device_ids", c->vpci_devices,
				                c->n_vpci_devices, pci, vm->vpci.n_devices, &o, e);
		}
	}
	free(scsi);
	free(p9);
	free(pci);
	return rc;
}

/* Every process of the envelope as a ref (container processes, then the VM's). */
static size_t all_processes(const struct envelope_save *s, struct ref *v)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_pods; i++)
		for (size_t j = 0; j < s->pods[i].n_containers; j++) {
			const struct container_save *c = &s->pods[i].containers[j];
			for (size_t k = 0; k < c->n_procs; k++)
				v[n++] =
				    (struct ref){.pod = &s->pods[i], .c = c, .p = &c->procs[k]};
		}
	for (size_t k = 0; k < s->vm.n_uvm_procs; k++)
		v[n++] = (struct ref){.p = &s->vm.uvm_procs[k]};
	return n;
}

static int check_gcs(const struct envelope_save *s, struct ref *procs, size_t np, struct ref *v,
                     struct err *e)
{
	char a[600], b[600];
	const struct vm_save *vm = &s->vm;
	size_t n = 0;
	for (size_t i = 0; i < np; i++)
		for (int k = 0; k < 3; k++) {
			uint32_t port = procs[i].p->stdio[k].port;
			if (!port)
				continue;
			if (port >= vm->gcs_next_port)
				return err_set(e, -EINVAL,
				               "%s: port %#" PRIx32 " is not below the vm's "
				               "gcs_next_port %#" PRIx32,
				               who(&procs[i], a, sizeof(a)), port,
				               vm->gcs_next_port);
			v[n] = procs[i];
			v[n++].num = port;
		}
	const struct ref *r = first_dup(v, n, true);
	if (r)
		return err_set(e, -EINVAL, "%s and %s share port %#" PRIx64,
		               who(&r[0], a, sizeof(a)), who(&r[1], b, sizeof(b)), r->num);
	n = 0;
	for (size_t i = 0; i < np; i++) {
		int64_t id = procs[i].p->wait_call_id;
		if (!id)
			continue;
		if (id >= vm->bridge_next_id)
			return err_set(e, -EINVAL,
			               "%s: wait_call_id %" PRId64 " is not below the vm's "
			               "bridge_next_id %" PRId64,
			               who(&procs[i], a, sizeof(a)), id, vm->bridge_next_id);
		for (size_t k = 0; k < vm->n_orphan_ids; k++)
			if (vm->orphan_ids[k] == id)
				return err_set(e, -EINVAL,
				               "%s: wait_call_id %" PRId64 " is also an orphan id",
				               who(&procs[i], a, sizeof(a)), id);
		v[n] = procs[i];
		v[n++].num = (uint64_t)id;
	}
	if ((r = first_dup(v, n, true)))
		return err_set(e, -EINVAL, "%s and %s share wait_call_id %" PRIu64,
		               who(&r[0], a, sizeof(a)), who(&r[1], b, sizeof(b)), r->num);
	return 0;
}

static int check_envelope(const struct envelope_save *s, struct err *e)
{
	size_t nc = envelope_save_containers(s), np = envelope_save_processes(s);
	size_t cap = nc + s->n_pods + 3 * np + 1;
	struct ref *v = xcalloc(cap, sizeof(*v));
	struct ref *procs = xcalloc(np + 1, sizeof(*procs));
	int rc = check_ids(s, v, e);
	if (rc == 0)
		rc = check_container_refs(s, e);
	if (rc == 0) {
		all_processes(s, procs);
		rc = check_gcs(s, procs, np, v, e);
	}
	free(v);
	free(procs);
	return rc;
}

/* ---- decoding ---- */

/* e's message becomes "import " + message ("import pod `p1`: ..."). */
static void import_prefix(struct err *e, const char *sep)
{
	char tmp[ERR_MSG_MAX];
	size_t n = (size_t)snprintf(tmp, sizeof(tmp), "import%s", sep);
	size_t len = strnlen(e->msg, sizeof(e->msg));
	if (len > sizeof(tmp) - 1 - n)
		len = sizeof(tmp) - 1 - n;
	memcpy(tmp + n, e->msg, len);
	tmp[n + len] = '\0';
	memcpy(e->msg, tmp, sizeof(tmp));
}

struct run {
	struct save_dec *d;
	struct save_decode_opts *opts;
	struct err first;
	bool failed;
};

/* A top-level child failed: report it (keep-going mode) and remember the first error. */
static void child_failed(struct run *r)
{
	import_prefix(r->d->e, " ");
	if (!r->failed)
		r->first = *r->d->e;
	r->failed = true;
	if (r->opts && r->opts->on_error)
		r->opts->on_error(r->d->e, r->opts->arg);
}

static int decode_tree(struct run *r, const pb_envelope *m, struct envelope_save *out)
{
	struct save_dec *d = r->d;
	bool keep_going = r->opts && r->opts->on_error;
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	if (!m->vm)
		return err_set(d->e, -EINVAL, "vm missing");
	if (save_check_count(d, "pods", m->n_pods, d->lim->max_pods) < 0)
		return d->e->code;
	if (vm_save_from_any(d, m->vm, "vm", &out->vm) < 0) {
		child_failed(r);
		if (!keep_going)
			return -1;
	}
	out->pods = save_calloc(d, m->n_pods, sizeof(*out->pods));
	if (!out->pods)
		return d->e->code;
	for (size_t i = 0; i < m->n_pods; i++) {
		if (pod_save_from_any(d, m->pods[i], i, &out->pods[out->n_pods]) < 0) {
			child_failed(r);
			if (!keep_going || d->over || d->e->code == -E2BIG)
				return -1;
			continue;
		}
		out->n_pods++;
	}
	if (r->failed)
		return -1;
	return check_envelope(out, d->e);
}

/* Decode `any` within d into *out (untouched on failure, with d->e saying why). */
static int decode_envelope(struct save_dec *d, const Google__Protobuf__Any *any,
                           struct save_decode_opts *opts, struct envelope_save *out)
{
	struct run r = {.d = d, .opts = opts};
	struct envelope_save tmp;
	memset(&tmp, 0, sizeof(tmp));
	int rc;
	pb_envelope *m = (pb_envelope *)save_unpack(d, SAVE_ENVELOPE, any, "envelope");
	if (!m) {
		rc = d->e->code;
	} else {
		rc = decode_tree(&r, m, &tmp);
		save_msg_free(d, m);
	}
	if (rc == 0) {
		*out = tmp;
		return 0;
	}
	if (r.failed)
		*d->e = r.first; /* a child's error, already prefixed */
	else
		import_prefix(d->e, ": ");
	envelope_save_fini(&tmp);
	return d->e->code < 0 ? d->e->code : -EINVAL;
}

int envelope_save_decode(const Google__Protobuf__Any *any, struct save_decode_opts *opts,
                         struct envelope_save *out, struct err *e)
{
	struct save_dec d;
	save_dec_init(&d, opts ? opts->limits : NULL, e);
	int rc = decode_envelope(&d, any, opts, out);
	if (opts)
		opts->peak_memory = d.peak;
	save_dec_fini(&d);
	return rc;
}

int envelope_save_decode_bytes(const uint8_t *p, size_t n, struct save_decode_opts *opts,
                               struct envelope_save *out, struct err *e)
{
	struct save_dec d;
	save_dec_init(&d, opts ? opts->limits : NULL, e);
	Google__Protobuf__Any *any = save_any_unpack(&d, p, n);
	int rc;
	if (!any) {
		import_prefix(e, ": ");
		rc = e->code;
	} else {
		rc = decode_envelope(&d, any, opts, out);
		save_msg_free(&d, any);
	}
	if (opts)
		opts->peak_memory = d.peak;
	save_dec_fini(&d);
	return rc;
}
