/* The compatibility blob: built from QMP answers on the source, encoded as compact JSON,
 * decoded strictly on the destination (size cap first, then every key, type and bound), and
 * compared field by field with the destination's own answers.  See compat.h. */
#include "host/vmm/qemu/compat.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void qemu_compat_fini(struct qemu_compat *c)
{
	if (!c)
		return;
	free(c->devs);
	memset(c, 0, sizeof(*c));
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > QEMU_COMPAT_NAME_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-_.,=+:", *p)))
			return false;
	return true;
}

static int dev_cmp(const void *a, const void *b)
{
	return strcmp(((const struct qemu_compat_dev *)a)->id,
	              ((const struct qemu_compat_dev *)b)->id);
}

static int add_dev(struct qemu_compat *c, const char *id, const char *type, struct err *e)
{
	if (!name_ok(id) || !name_ok(type))
		return err_set(e, -EBADMSG, "device id or type `%.40s` is not a name", id);
	if (c->n_devs >= QEMU_COMPAT_DEVICES_MAX)
		return err_set(e, -EBADMSG, "more than %d devices", QEMU_COMPAT_DEVICES_MAX);
	c->devs = xrealloc(c->devs, (c->n_devs + 1) * sizeof(*c->devs));
	struct qemu_compat_dev *d = &c->devs[c->n_devs++];
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->type, sizeof(d->type), "%s", type);
	return 0;
}

int qemu_compat_set_devices(struct qemu_compat *c, json_t *qom_list, struct err *e)
{
	free(c->devs);
	c->devs = NULL;
	c->n_devs = 0;
	if (!json_is_array(qom_list))
		return err_set(e, -EBADMSG, "qom-list: not an array");
	size_t i;
	json_t *it;
	json_array_foreach(qom_list, i, it)
	{
		const char *name = json_string_value(json_object_get(it, "name"));
		const char *type = json_string_value(json_object_get(it, "type"));
		if (!name || !type)
			return err_set(e, -EBADMSG, "qom-list: entry %zu lacks name or type", i);
		size_t tl = strlen(type);
		/* children are "child<TYPE>"; properties ("type": "string") are not devices */
		if (tl < 8 || strncmp(type, "child<", 6) != 0 || type[tl - 1] != '>')
			continue;
		char t[QEMU_COMPAT_NAME_MAX + 1];
		if (tl - 7 > QEMU_COMPAT_NAME_MAX)
			return err_set(e, -EBADMSG, "qom-list: type of `%.40s` too long", name);
		memcpy(t, type + 6, tl - 7);
		t[tl - 7] = '\0';
		if (add_dev(c, name, t, e) < 0)
			return err_prefix(e, "qom-list");
	}
	qsort(c->devs, c->n_devs, sizeof(*c->devs), dev_cmp);
	for (size_t k = 1; k < c->n_devs; k++)
		if (strcmp(c->devs[k - 1].id, c->devs[k].id) == 0)
			return err_set(e, -EBADMSG, "qom-list: device `%s` twice", c->devs[k].id);
	return 0;
}

char *qemu_compat_encode(const struct qemu_compat *c, size_t *len)
{
	json_t *devs = json_array();
	for (size_t i = 0; i < c->n_devs; i++)
		json_array_append_new(
		    devs, json_pack("{s:s, s:s}", "id", c->devs[i].id, "type", c->devs[i].type));
	json_t *j =
	    json_pack("{s:i, s:[i,i,i], s:s, s:s, s:s, s:I, s:I, s:b, s:o}", "ferry_qemu_compat",
	              QEMU_COMPAT_VERSION, "qemu", c->ver[0], c->ver[1], c->ver[2], "machine",
	              c->machine, "accel", c->accel, "cpu", c->cpu, "cpus", (json_int_t)c->cpus,
	              "memory", (json_int_t)c->memory, "compress", c->compress, "devices", devs);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	*len = strlen(s);
	return s;
}

static int get_name(json_t *o, const char *key, char *out, size_t n, struct err *e)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s || !name_ok(s) || strlen(s) >= n ||
	    strlen(s) != json_string_length(json_object_get(o, key)))
		return err_set(e, -EBADMSG, "`%s` is missing or not a name", key);
	snprintf(out, n, "%s", s);
	return 0;
}

static int get_num(json_t *o, const char *key, long long lo, long long hi, long long *out,
                   struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return err_set(e, -EBADMSG, "`%s` is missing or out of range", key);
	*out = json_integer_value(v);
	return 0;
}

static int decode_body(json_t *j, struct qemu_compat *c, struct err *e)
{
	static const char *const keys[] = {
	    "ferry_qemu_compat", "qemu",   "machine", "accel", "cpu", "cpus", "memory",
	    "compress",          "devices"};
	long long v;
	if (!json_is_object(j))
		return err_set(e, -EBADMSG, "not a JSON object");
	if (json_object_size(j) != sizeof(keys) / sizeof(keys[0]))
		return err_set(e, -EBADMSG, "expected exactly the keys of version %d",
		               QEMU_COMPAT_VERSION);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_object_get(j, keys[i]))
			return err_set(e, -EBADMSG, "`%s` is missing", keys[i]);
	if (get_num(j, "ferry_qemu_compat", 0, INT_MAX, &v, e) < 0)
		return e->code;
	if (v != QEMU_COMPAT_VERSION)
		return err_set(e, -EBADMSG, "format version %lld (this host reads %d)", v,
		               QEMU_COMPAT_VERSION);
	json_t *ver = json_object_get(j, "qemu");
	if (!json_is_array(ver) || json_array_size(ver) != 3)
		return err_set(e, -EBADMSG, "`qemu` must be [major, minor, micro]");
	for (int i = 0; i < 3; i++) {
		json_t *x = json_array_get(ver, (size_t)i);
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > 100000)
			return err_set(e, -EBADMSG, "`qemu` must be [major, minor, micro]");
		c->ver[i] = (int)json_integer_value(x);
	}
	if (get_name(j, "machine", c->machine, sizeof(c->machine), e) < 0 ||
	    get_name(j, "accel", c->accel, sizeof(c->accel), e) < 0 ||
	    get_name(j, "cpu", c->cpu, sizeof(c->cpu), e) < 0)
		return e->code;
	if (strcmp(c->accel, "kvm") != 0 && strcmp(c->accel, "tcg") != 0)
		return err_set(e, -EBADMSG, "`accel` must be kvm or tcg");
	if (get_num(j, "cpus", 1, 1024, &v, e) < 0)
		return e->code;
	c->cpus = (unsigned)v;
	if (get_num(j, "memory", 1, LLONG_MAX, &v, e) < 0)
		return e->code;
	c->memory = (uint64_t)v;
	json_t *cmp = json_object_get(j, "compress");
	if (!json_is_boolean(cmp))
		return err_set(e, -EBADMSG, "`compress` must be a boolean");
	c->compress = json_is_true(cmp);
	json_t *devs = json_object_get(j, "devices");
	if (!json_is_array(devs) || json_array_size(devs) > QEMU_COMPAT_DEVICES_MAX)
		return err_set(e, -EBADMSG, "`devices` must be an array of at most %d",
		               QEMU_COMPAT_DEVICES_MAX);
	size_t i;
	json_t *d;
	json_array_foreach(devs, i, d)
	{
		char id[QEMU_COMPAT_NAME_MAX + 1], type[QEMU_COMPAT_NAME_MAX + 1];
		if (!json_is_object(d) || json_object_size(d) != 2 ||
		    get_name(d, "id", id, sizeof(id), e) < 0 ||
		    get_name(d, "type", type, sizeof(type), e) < 0)
			return err_set(e, -EBADMSG, "devices[%zu] must be {id, type}", i);
		if (c->n_devs > 0 && strcmp(c->devs[c->n_devs - 1].id, id) >= 0)
			return err_set(e, -EBADMSG,
			               "devices must be sorted by id, unique (at `%s`)", id);
		if (add_dev(c, id, type, e) < 0)
			return e->code;
	}
	return 0;
}

int qemu_compat_decode(const uint8_t *blob, size_t len, struct qemu_compat *c, struct err *e)
{
	memset(c, 0, sizeof(*c));
	if (len == 0 || len > QEMU_COMPAT_MAX)
		return err_set(e, -EBADMSG, "compatibility blob: %zu bytes (1..%u allowed)", len,
		               QEMU_COMPAT_MAX);
	json_error_t je;
	json_t *j = json_loadb((const char *)blob, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return err_set(e, -EBADMSG, "compatibility blob: not JSON (%s)", je.text);
	int r = decode_body(j, c, e);
	json_decref(j);
	if (r < 0) {
		qemu_compat_fini(c);
		return err_prefix(e, "compatibility blob");
	}
	return 0;
}

static int ver_cmp(const int *a, const int *b)
{
	for (int i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

int qemu_compat_check(const struct qemu_compat *s, const struct qemu_compat *d, struct err *e)
{
	if (ver_cmp(d->ver, s->ver) < 0)
		return err_set(e, -EPROTONOSUPPORT,
		               "destination qemu %d.%d.%d is older than the source's %d.%d.%d",
		               d->ver[0], d->ver[1], d->ver[2], s->ver[0], s->ver[1], s->ver[2]);
	if (strcmp(s->machine, d->machine) != 0)
		return err_set(e, -EPROTO, "machine type differs: source %s, destination %s",
		               s->machine, d->machine);
	if (strcmp(s->accel, d->accel) != 0)
		return err_set(e, -EPROTO, "accelerator differs: source %s, destination %s",
		               s->accel, d->accel);
	if (strcmp(s->cpu, d->cpu) != 0)
		return err_set(e, -EPROTO, "cpu model differs: source %s, destination %s", s->cpu,
		               d->cpu);
	if (s->cpus != d->cpus)
		return err_set(e, -EPROTO, "cpu count differs: source %u, destination %u", s->cpus,
		               d->cpus);
	if (s->memory != d->memory)
		return err_set(e, -EPROTO, "memory differs: source %llu bytes, destination %llu",
		               (unsigned long long)s->memory, (unsigned long long)d->memory);
	if (s->compress != d->compress)
		return err_set(e, -EPROTO, "the compress capability differs");
	/* Both lists are sorted by id: one merge pass names the first difference. */
	size_t i = 0, k = 0;
	while (i < s->n_devs || k < d->n_devs) {
		int c = i == s->n_devs   ? 1
		        : k == d->n_devs ? -1
		                         : strcmp(s->devs[i].id, d->devs[k].id);
		if (c < 0)
			return err_set(e, -EPROTO,
			               "destination lacks device %s (%s) that the source has",
			               s->devs[i].id, s->devs[i].type);
		if (c > 0)
			return err_set(e, -EPROTO,
			               "destination has device %s (%s) that the source lacks",
			               d->devs[k].id, d->devs[k].type);
		if (strcmp(s->devs[i].type, d->devs[k].type) != 0)
			return err_set(e, -EPROTO, "device %s is %s on the source, %s here",
			               s->devs[i].id, s->devs[i].type, d->devs[k].type);
		i++;
		k++;
	}
	return 0;
}
