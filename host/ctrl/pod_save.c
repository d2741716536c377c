/* The pod payload (host/ctrl/pod_save.h). */
#include "host/ctrl/pod_save.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "hcsshim/controller/pod/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Hcsshim__Controller__Pod__Save__V1__Payload pb_pod;

void pod_save_fini(struct pod_save *s)
{
	if (!s)
		return;
	free(s->pod_id);
	free(s->gcs_pod_id);
	network_save_fini(&s->network);
	for (size_t i = 0; i < s->n_containers; i++)
		container_save_fini(&s->containers[i]);
	free(s->containers);
	memset(s, 0, sizeof(*s));
}

static int by_container_id(const void *a, const void *b)
{
	const struct container_save *x = *(const struct container_save *const *)a;
	const struct container_save *y = *(const struct container_save *const *)b;
	return strcmp(x->container_id ? x->container_id : "",
	              y->container_id ? y->container_id : "");
}

int pod_save_encode(const struct pod_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_pod m;
	Google__Protobuf__Any net;
	hcsshim__controller__pod__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.pod_id = s->pod_id;
	m.gcs_pod_id = s->gcs_pod_id;
	int rc = network_save_encode(&s->network, &net, e);
	if (rc < 0)
		return err_prefix(e, "pod `%s`", s->pod_id);
	m.network = &net;
	size_t n = s->n_containers;
	const struct container_save **order = xcalloc(n + 1, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = &s->containers[i];
	qsort(order, n, sizeof(*order), by_container_id);
	struct save_map cm;
	save_map_alloc(&cm, n, sizeof(Google__Protobuf__Any), 0);
	Google__Protobuf__Any *anys = cm.ents;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = container_save_encode(order[i], &anys[i], e);
	m.n_containers = n;
	m.containers = (Google__Protobuf__Any **)cm.ptrs;
	if (rc == 0)
		rc = save_pack(SAVE_POD, &m.base, out, e);
	if (rc < 0)
		err_prefix(e, "pod `%s`", s->pod_id);
	save_map_free_anys(&cm, n);
	free(order);
	save_any_fini(&net);
	return rc;
}

static int decode_fields(struct save_dec *d, const ProtobufCMessage *msg, void *dst)
{
	const pb_pod *m = (const pb_pod *)msg;
	struct pod_save *out = dst;
	if (!(out->pod_id = save_strdup(d, m->pod_id)))
		return d->e->code;
	if (save_check_schema(d, m->schema_version) < 0 ||
	    save_check_id(d, "gcs_pod_id", m->gcs_pod_id) < 0)
		return d->e->code;
	if (!(out->gcs_pod_id = save_strdup(d, m->gcs_pod_id)))
		return d->e->code;
	if (!m->network)
		return err_set(d->e, -EINVAL, "network missing");
	if (network_save_from_any(d, m->network, "network", &out->network) < 0)
		return d->e->code;
	if (save_check_count(d, "containers", m->n_containers, d->lim->max_containers) < 0)
		return d->e->code;
	out->containers = save_calloc(d, m->n_containers, sizeof(*out->containers));
	if (!out->containers)
		return d->e->code;
	for (size_t i = 0; i < m->n_containers; i++) {
		struct container_save *c = &out->containers[out->n_containers];
		if (container_save_from_any(d, m->containers[i], i, c) < 0)
			return d->e->code;
		out->n_containers++;
	}
	char **ids = xcalloc(out->n_containers + 1, sizeof(*ids));
	for (size_t i = 0; i < out->n_containers; i++)
		ids[i] = out->containers[i].container_id;
	int rc = save_check_unique(d, "container", ids, out->n_containers, false);
	free(ids);
	return rc;
}

static void fini(void *s)
{
	pod_save_fini(s);
}

static const struct save_child child = {
    .kind = SAVE_POD,
    .out_size = sizeof(struct pod_save),
    .id_field = "pod_id",
    .decode = decode_fields,
    .fini = fini,
};

int pod_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, size_t idx,
                      struct pod_save *out)
{
	return save_decode_child(d, &child, any, idx == SIZE_MAX ? "pod" : "pods", idx, out);
}

int pod_save_decode(const Google__Protobuf__Any *any, struct pod_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(pod_save_from_any, any, SIZE_MAX, out, e);
}
