/* Shared machinery of the saved-state payload modules (host/ctrl/save.h): the payload type
 * table, the counting allocator handed to protobuf-c, a wire-format pass that checks what
 * protobuf-c does not (UTF-8 strings, wire types, group encoding) before it allocates
 * anything, the Any pack/unpack pair, and the small field checks every payload uses.  The
 * JSON check is host/ctrl/save_json.c. */
#include "host/ctrl/save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "ferry/controller/plan9/save/v1/payload.pb-c.h"
#include "ferry/controller/vpci/save/v1/payload.pb-c.h"
#include "hcsshim/controller/linuxcontainer/save/v1/payload.pb-c.h"
#include "hcsshim/controller/migration/save/v1/payload.pb-c.h"
#include "hcsshim/controller/network/save/v1/payload.pb-c.h"
#include "hcsshim/controller/pod/save/v1/payload.pb-c.h"
#include "hcsshim/controller/process/save/v1/payload.pb-c.h"
#include "hcsshim/controller/scsi/save/v1/payload.pb-c.h"
#include "hcsshim/controller/vm/save/v1/payload.pb-c.h"
#include "host/ctrl/save_json.h"

#define MS "type.microsoft.com/hcsshim.controller."
/* ferry's own payloads use the protobuf default prefix, which every protobuf runtime (and
 * protoc's text format) resolves. */
#define FERRY "type.googleapis.com/ferry.controller."

const struct save_type save_types[SAVE_N_KINDS] = {
    [SAVE_ENVELOPE] = {"envelope", MS "migration.save.v1.Payload",
                       &hcsshim__controller__migration__save__v1__payload__descriptor},
    [SAVE_VM] = {"vm", MS "vm.save.v1.Payload",
                 &hcsshim__controller__vm__save__v1__payload__descriptor},
    [SAVE_SCSI] = {"scsi", MS "scsi.save.v1.Payload",
                   &hcsshim__controller__scsi__save__v1__payload__descriptor},
    [SAVE_VPCI] = {"vpci", FERRY "vpci.save.v1.Payload",
                   &ferry__controller__vpci__save__v1__payload__descriptor},
    [SAVE_PLAN9] = {"plan9", FERRY "plan9.save.v1.Payload",
                    &ferry__controller__plan9__save__v1__payload__descriptor},
    [SAVE_POD] = {"pod", MS "pod.save.v1.Payload",
                  &hcsshim__controller__pod__save__v1__payload__descriptor},
    [SAVE_NETWORK] = {"network", MS "network.save.v1.Payload",
                      &hcsshim__controller__network__save__v1__payload__descriptor},
    [SAVE_CONTAINER] = {"container", MS "linuxcontainer.save.v1.Payload",
                        &hcsshim__controller__linuxcontainer__save__v1__payload__descriptor},
    [SAVE_PROCESS] = {"process", MS "process.save.v1.Payload",
                      &hcsshim__controller__process__save__v1__payload__descriptor},
};

/* Why these values: the envelope travels in one ttrpc message (PrepareAndExportSandbox's
 * response, ImportSandbox's request), and ttrpc caps a message at 4 MiB.  Unpacking copies
 * each level's Any bytes once and our structs copy the strings once more, so a legitimate
 * 4 MiB envelope needs well under 32 MiB; 64 MiB leaves room and still stops the
 * amplification of hostile input (an empty sub-message costs 2 bytes on the wire and
 * ~60 bytes unpacked).  The counts are the GCS client's (GCS_STATE_MAX_PROCS); HCS has four
 * SCSI controllers, QEMU may have more. */
const struct save_limits save_default_limits = {
    .max_bytes = 4u << 20,
    .max_memory = 64u << 20,
    .max_pods = 1024,
    .max_containers = 4096,
    .max_processes = 4096,
    .max_items = 4096,
    .max_string = 32768,
    .max_scsi_ctrl = 64,
};

const struct save_type *save_type_by_url(const char *type_url)
{
	for (size_t i = 0; i < SAVE_N_KINDS; i++)
		if (strcmp(save_types[i].type_url, type_url) == 0)
			return &save_types[i];
	return NULL;
}

/* ---- the allocator ---- */

/* A chunk of the stack protobuf-c allocates from.  Chunks grow from 64 KiB to 4 MiB; an
 * allocation larger than that gets a chunk of its own.  Each chunk counts against the
 * budget with malloc's overhead. */
struct save_chunk {
	struct save_chunk *prev;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};
/* Under AddressSanitizer the free part of a chunk is poisoned and blocks are separated by
 * a red zone, so that a read past a block is still caught inside a chunk. */
#if defined(__SANITIZE_ADDRESS__)
#define SAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAVE_ASAN 1
#endif
#endif
#ifdef SAVE_ASAN
#include <sanitizer/asan_interface.h>
#define REDZONE 16
#else
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define REDZONE                           0
#endif
#define CHUNK_FIRST   (64u << 10)
#define CHUNK_MAX     (4u << 20)
#define CHUNK_COST(n) (sizeof(struct save_chunk) + (n) + 16)

static bool budget_take(struct save_dec *d, size_t cost)
{
	if (cost > d->lim->max_memory || d->used > d->lim->max_memory - cost) {
		d->over = true;
		return false;
	}
	d->used += cost;
	if (d->used > d->peak)
		d->peak = d->used;
	return true;
}

static void chunk_pop(struct save_dec *d)
{
	struct save_chunk *c = d->top;
	d->top = c->prev;
	d->used -= CHUNK_COST(c->size);
	ASAN_UNPOISON_MEMORY_REGION(c->data, c->size);
	free(c);
}

static void *count_alloc(void *ud, size_t size)
{
	struct save_dec *d = ud;
	if (size > SIZE_MAX / 4)
		return NULL;
	size_t need = ((size + 15) & ~(size_t)15) + REDZONE;
	struct save_chunk *c = d->top;
	if (!c || c->size - c->used < need) {
		size_t sz = c ? (c->size >= CHUNK_MAX ? CHUNK_MAX : 2 * c->size) : CHUNK_FIRST;
		if (sz < need)
			sz = need;
		if (!budget_take(d, CHUNK_COST(sz)))
			return NULL;
		c = xmalloc(sizeof(*c) + sz);
		c->prev = d->top;
		c->size = sz;
		c->used = 0;
		d->top = c;
		ASAN_POISON_MEMORY_REGION(c->data, sz);
	}
	void *p = c->data + c->used;
	c->used += need;
	ASAN_UNPOISON_MEMORY_REGION(p, size);
	return p;
}

/* Blocks go back all at once with their message (save_msg_free). */
static void count_free(void *ud, void *p)
{
	(void)ud;
	(void)p;
}

/* Back to where the stack stood at mark m. */
static void rewind_to(struct save_dec *d, const struct save_mark *m)
{
	while (d->top && d->top != m->chunk)
		chunk_pop(d);
	if (d->top) {
		d->top->used = m->used;
		ASAN_POISON_MEMORY_REGION(d->top->data + m->used, d->top->size - m->used);
	}
}

void save_dec_init(struct save_dec *d, const struct save_limits *lim, struct err *e)
{
	memset(d, 0, sizeof(*d));
	d->lim = lim ? lim : &save_default_limits;
	d->pa.alloc = count_alloc;
	d->pa.free = count_free;
	d->pa.allocator_data = d;
	d->e = e;
	err_clear(e);
}

void save_dec_fini(struct save_dec *d)
{
	while (d->top)
		chunk_pop(d);
	d->n_marks = 0;
}

static int over_budget(struct save_dec *d)
{
	return err_set(d->e, -E2BIG, "decoding needs more than the memory limit of %zu bytes",
	               d->lim->max_memory);
}

void *save_calloc(struct save_dec *d, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / 4 / size) {
		over_budget(d);
		return NULL;
	}
	if (!budget_take(d, n * size + 16)) {
		over_budget(d);
		return NULL;
	}
	return xcalloc(n ? n : 1, size ? size : 1);
}

char *save_memdup(struct save_dec *d, const ProtobufCBinaryData *b, size_t *len)
{
	*len = b->len;
	if (b->len == 0)
		return NULL;
	char *s = save_calloc(d, b->len + 1, 1);
	if (s)
		memcpy(s, b->data, b->len);
	return s;
}

char *save_strdup(struct save_dec *d, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *r = save_calloc(d, n + 1, 1);
	if (r && n)
		memcpy(r, s, n);
	return r;
}

/* ---- UTF-8 ---- */

bool save_utf8_ok(const uint8_t *p, size_t n, size_t *bad)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			*bad = i; /* NUL, a continuation byte, 0xc0/0xc1 or 0xf5.. */
			return false;
		}
		if (n - i <= need) {
			*bad = i;
			return false;
		}
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				*bad = i;
				return false;
			}
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*bad = i;
			return false;
		}
		i += need + 1;
	}
	return true;
}

/* ---- the wire pass ---- */

/* Read a varint at p[*i]; false when truncated or longer than 64 bits. */
static bool get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 70 && *i < n; shift += 7) {
		uint8_t b = p[(*i)++];
		if (shift == 63 && b > 1)
			return false;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* The wire type a field of this type is written with (packed repeated fields aside). */
static int wire_type_of(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return 5;
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 1;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return 2;
	default:
		return 0;
	}
}

static int bad_wire(struct save_dec *d, const char *field, size_t off, const char *what)
{
	return err_set(d->e, -EBADMSG, "%s: %s at byte %zu", field, what, off);
}

/* A packed run of scalars of wire type wt in p[0..n). */
static int check_packed(struct save_dec *d, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                        size_t n, int wt)
{
	if (wt == 5 || wt == 1) {
		if (n % (wt == 5 ? 4 : 8))
			return bad_wire(d, f->name, 0, "packed fixed-size values truncated");
		return 0;
	}
	size_t i = 0;
	uint64_t v;
	while (i < n)
		if (!get_varint(p, n, &i, &v))
			return bad_wire(d, f->name, i, "bad varint in packed values");
	return 0;
}

static int check_string(struct save_dec *d, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                        size_t n)
{
	size_t bad = 0;
	if (n > d->lim->max_string)
		return err_set(d->e, -E2BIG, "%s: string of %zu bytes, limit %zu", f->name, n,
		               d->lim->max_string);
	if (!save_utf8_ok(p, n, &bad)) {
		if (p[bad] == 0)
			return err_set(d->e, -EBADMSG, "%s: NUL byte at %zu", f->name, bad);
		return err_set(d->e, -EBADMSG, "%s: invalid UTF-8 (byte 0x%02x at %zu)", f->name,
		               p[bad], bad);
	}
	return 0;
}

static int wire_check(struct save_dec *d, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                      size_t n, unsigned depth);

/* One length-delimited field value p[0..n) of known field f. */
static int check_delimited(struct save_dec *d, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                           size_t n, unsigned depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return check_string(d, f, p, n);
	case PROTOBUF_C_TYPE_BYTES:
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (wire_check(d, f->descriptor, p, n, depth + 1) < 0)
			return err_prefix(d->e, "%s", f->name);
		return 0;
	default:
		if (f->label != PROTOBUF_C_LABEL_REPEATED)
			return bad_wire(d, f->name, 0, "length-delimited value for a scalar");
		return check_packed(d, f, p, n, wire_type_of(f->type));
	}
}

/* Walk the fields of a message of type desc in p[0..n): every known field must have the
 * wire type its schema gives it, every string must be valid UTF-8 without NUL, nested
 * messages are walked too (Any values are bytes here: they are checked when unpacked). */
static int wire_check(struct save_dec *d, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                      size_t n, unsigned depth)
{
	if (depth > 16)
		return err_set(d->e, -EBADMSG, "messages nested too deep");
	size_t i = 0;
	while (i < n) {
		size_t at = i;
		uint64_t key, v;
		if (!get_varint(p, n, &i, &key))
			return err_set(d->e, -EBADMSG, "truncated field key at byte %zu", at);
		uint64_t num = key >> 3;
		int wt = (int)(key & 7);
		if (num == 0 || num > 0x1fffffff)
			return err_set(d->e, -EBADMSG, "bad field number %" PRIu64 " at byte %zu",
			               num, at);
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field(desc, (unsigned)num);
		char unk[32] = "";
		const char *name = f ? f->name : unk;
		if (!f)
			snprintf(unk, sizeof(unk), "field %" PRIu64, num);
		if (f && wt != wire_type_of(f->type) &&
		    !(wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED))
			return err_set(d->e, -EBADMSG, "%s: wire type %d, want %d (byte %zu)", name,
			               wt, wire_type_of(f->type), at);
		switch (wt) {
		case 0:
			if (!get_varint(p, n, &i, &v))
				return bad_wire(d, name, at, "truncated or overlong varint");
			break;
		case 1:
		case 5:
			if (n - i < (wt == 1 ? 8u : 4u))
				return bad_wire(d, name, at, "truncated fixed-size value");
			i += wt == 1 ? 8 : 4;
			break;
		case 2:
			if (!get_varint(p, n, &i, &v) || v > n - i)
				return bad_wire(d, name, at, "truncated length-delimited value");
			if (f && check_delimited(d, f, p + i, (size_t)v, depth) < 0)
				return d->e->code;
			i += (size_t)v;
			break;
		case 3:
		case 4:
			return bad_wire(d, name, at, "group encoding is not supported");
		default:
			return err_set(d->e, -EBADMSG, "%s: bad wire type %d at byte %zu", name, wt,
			               at);
		}
	}
	return 0;
}

/* ---- unpacking ---- */

static ProtobufCMessage *unpack_checked(struct save_dec *d, const ProtobufCMessageDescriptor *desc,
                                        const uint8_t *p, size_t n)
{
	if (n > d->lim->max_bytes) {
		err_set(d->e, -E2BIG, "%zu bytes, limit %zu", n, d->lim->max_bytes);
		return NULL;
	}
	if (wire_check(d, desc, p, n, 0) < 0)
		return NULL;
	struct save_mark mark = {.chunk = d->top, .used = d->top ? d->top->used : 0};
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, &d->pa, n, p);
	if (!m) {
		rewind_to(d, &mark);
		if (d->over)
			over_budget(d);
		else
			err_set(d->e, -EBADMSG, "malformed %s", desc->name);
		return NULL;
	}
	/* Deeper than payloads ever nest, the memory stays until save_dec_fini. */
	if (d->n_marks < sizeof(d->marks) / sizeof(d->marks[0])) {
		mark.msg = m;
		d->marks[d->n_marks++] = mark;
	}
	return m;
}

ProtobufCMessage *save_unpack(struct save_dec *d, enum save_kind want,
                              const Google__Protobuf__Any *any, const char *slot)
{
	const struct save_type *t = &save_types[want];
	const char *url = any->type_url ? any->type_url : "";
	ProtobufCMessage *m = NULL;
	if (strcmp(url, t->type_url) != 0) {
		const struct save_type *other = save_type_by_url(url);
		if (other)
			err_set(d->e, -EINVAL, "holds a %s payload (%s), want %s", other->name, url,
			        t->type_url);
		else
			err_set(d->e, -EINVAL, "type_url `%.200s`, want %s", url, t->type_url);
	} else {
		m = unpack_checked(d, t->desc, any->value.data, any->value.len);
	}
	if (!m && slot)
		err_prefix(d->e, "%s", slot);
	return m;
}

void save_msg_free(struct save_dec *d, void *msg)
{
	if (!msg)
		return;
	for (unsigned i = d->n_marks; i-- > 0;)
		if (d->marks[i].msg == msg) {
			rewind_to(d, &d->marks[i]);
			d->n_marks = i;
			return;
		}
}

int save_decode_child(struct save_dec *d, const struct save_child *c,
                      const Google__Protobuf__Any *any, const char *label, size_t idx, void *out)
{
	memset(out, 0, c->out_size);
	ProtobufCMessage *m = save_unpack(d, c->kind, any, NULL);
	const char *id = NULL;
	int rc = m ? 0 : d->e->code;
	if (m && c->id_field) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, c->id_field);
		id = *(const char *const *)((const char *)m + f->offset);
		rc = save_check_id(d, c->id_field, id);
		if (rc < 0)
			id = NULL;
	}
	if (rc == 0)
		rc = c->decode(d, m, out);
	if (rc < 0) {
		if (id)
			err_prefix(d->e, "%s `%.200s`", save_types[c->kind].name, id);
		else if (idx != SIZE_MAX)
			err_prefix(d->e, "%s[%zu]", label, idx);
		else
			err_prefix(d->e, "%s", label);
		c->fini(out);
	}
	save_msg_free(d, m);
	return rc;
}

Google__Protobuf__Any *save_any_unpack(struct save_dec *d, const uint8_t *p, size_t n)
{
	ProtobufCMessage *m = unpack_checked(d, &google__protobuf__any__descriptor, p, n);
	if (!m)
		err_prefix(d->e, "google.protobuf.Any");
	return (Google__Protobuf__Any *)m;
}

/* ---- field checks ---- */

int save_check_schema(struct save_dec *d, uint32_t v)
{
	if (v != SAVE_SCHEMA_VERSION)
		return err_set(d->e, -EINVAL, "schema_version %" PRIu32 ", want %u", v,
		               SAVE_SCHEMA_VERSION);
	return 0;
}

int save_check_id(struct save_dec *d, const char *field, const char *s)
{
	if (!s || !*s)
		return err_set(d->e, -EINVAL, "%s is empty", field);
	return 0;
}

int save_check_guid(struct save_dec *d, const char *field, const char *s, struct guid *out)
{
	struct err ge;
	if (!s || strlen(s) != GUID_STR_LEN || guid_parse(s, out, &ge) < 0)
		return err_set(d->e, -EINVAL, "%s `%.80s`: not a GUID", field, s ? s : "");
	return 0;
}

int save_check_json(struct save_dec *d, const char *field, const ProtobufCBinaryData *b,
                    bool may_be_empty)
{
	if (b->len == 0) {
		if (may_be_empty)
			return 0;
		return err_set(d->e, -EINVAL, "%s is empty, want a JSON object", field);
	}
	struct save_json_error je;
	int top = save_json_scan(b->data, b->len, &je);
	if (top < 0)
		return err_set(d->e, -EINVAL, "%s: bad JSON at byte %zu: %s", field, je.offset,
		               je.reason);
	if (top != SAVE_JSON_OBJECT && top != SAVE_JSON_NULL)
		return err_set(d->e, -EINVAL, "%s: JSON %s, want an object or null", field,
		               save_json_type_name(top));
	return 0;
}

int save_check_count(struct save_dec *d, const char *what, size_t n, size_t limit)
{
	if (n > limit)
		return err_set(d->e, -E2BIG, "%s: %zu, limit %zu", what, n, limit);
	return 0;
}

/* Seconds that fit in int64 nanoseconds. */
#define NS_MAX_SEC (INT64_MAX / 1000000000 - 1)

static int seconds_nanos(struct save_dec *d, const char *field, int64_t s, int32_t ns, int64_t *out)
{
	if (ns <= -1000000000 || ns >= 1000000000 || (s > 0 && ns < 0) || (s < 0 && ns > 0) ||
	    s > NS_MAX_SEC || s < -NS_MAX_SEC)
		return err_set(d->e, -EINVAL, "%s: %" PRId64 "s %" PRId32 "ns out of range", field,
		               s, ns);
	*out = s * 1000000000 + ns;
	return 0;
}

int save_duration_ns(struct save_dec *d, const char *field, const Google__Protobuf__Duration *p,
                     int64_t *out)
{
	*out = 0;
	if (!p)
		return 0;
	if (seconds_nanos(d, field, p->seconds, p->nanos, out) < 0)
		return d->e->code;
	if (*out < 0)
		return err_set(d->e, -EINVAL, "%s: negative duration", field);
	return 0;
}

int save_timestamp_ns(struct save_dec *d, const char *field, const Google__Protobuf__Timestamp *p,
                      int64_t *out)
{
	*out = 0;
	if (!p)
		return 0;
	/* Timestamps have non-negative nanos whatever the sign of the seconds. */
	if (p->nanos < 0 || p->nanos >= 1000000000 || p->seconds > NS_MAX_SEC ||
	    p->seconds < -NS_MAX_SEC)
		return err_set(d->e, -EINVAL, "%s: %" PRId64 "s %" PRId32 "ns out of range", field,
		               p->seconds, p->nanos);
	*out = p->seconds * 1000000000 + p->nanos;
	return 0;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_string_nocase(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

int save_check_unique(struct save_dec *d, const char *what, char *const *ids, size_t n, bool guid)
{
	if (n < 2)
		return 0;
	/* Sorted, so that thousands of ids cost n log n. */
	char **v = xmalloc(n * sizeof(*v));
	memcpy(v, ids, n * sizeof(*v));
	int (*cmp)(const void *, const void *) = guid ? by_string_nocase : by_string;
	qsort(v, n, sizeof(*v), cmp);
	int rc = 0;
	for (size_t i = 1; i < n && rc == 0; i++)
		if (cmp(&v[i], &v[i - 1]) == 0)
			rc = err_set(d->e, -EINVAL, "%s `%.200s` twice", what, v[i]);
	free(v);
	return rc;
}

int save_guids(struct save_dec *d, const char *field, char *const *in, size_t n, struct guid **out)
{
	*out = NULL;
	if (save_check_count(d, field, n, d->lim->max_items) < 0)
		return d->e->code;
	if (n == 0)
		return 0;
	struct guid *g = save_calloc(d, n, sizeof(*g));
	if (!g)
		return d->e->code;
	for (size_t i = 0; i < n; i++) {
		if (save_check_guid(d, field, in[i], &g[i]) < 0)
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (guid_equal(&g[i], &g[j])) {
				err_set(d->e, -EINVAL, "%s `%s` twice", field, in[i]);
				goto fail;
			}
	}
	*out = g;
	return 0;
fail:
	free(g);
	return d->e->code;
}

int save_strings(struct save_dec *d, const char *field, char *const *in, size_t n, char ***out)
{
	*out = NULL;
	if (save_check_count(d, field, n, d->lim->max_items) < 0)
		return d->e->code;
	if (n == 0)
		return 0;
	char **v = save_calloc(d, n, sizeof(*v));
	if (!v)
		return d->e->code;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] = save_strdup(d, in[i]))) {
			save_strings_free(v, i);
			return d->e->code;
		}
	*out = v;
	return 0;
}

void save_strings_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- encoding ---- */

char *save_guid_text(const struct guid *g, char *out)
{
	/* guid_format's output without printf: encoders write thousands of them. */
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(g->data1 >> (24 - 8 * i));
	b[4] = (uint8_t)(g->data2 >> 8);
	b[5] = (uint8_t)g->data2;
	b[6] = (uint8_t)(g->data3 >> 8);
	b[7] = (uint8_t)g->data3;
	memcpy(b + 8, g->data4, 8);
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return out;
}

char **save_guid_texts(const struct guid *g, size_t n)
{
	if (n == 0)
		return NULL;
	char **v = xmalloc(n * (sizeof(char *) + GUID_STR_LEN + 1));
	char *text = (char *)(v + n);
	for (size_t i = 0; i < n; i++)
		v[i] = save_guid_text(&g[i], text + i * (GUID_STR_LEN + 1));
	return v;
}

int save_pack(enum save_kind k, const ProtobufCMessage *m, Google__Protobuf__Any *out,
              struct err *e)
{
	google__protobuf__any__init(out);
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > save_default_limits.max_bytes)
		return err_set(e, -E2BIG, "%s payload of %zu bytes exceeds the limit of %zu",
		               save_types[k].name, n, save_default_limits.max_bytes);
	out->value.data = xmalloc(n ? n : 1);
	out->value.len = protobuf_c_message_pack(m, out->value.data);
	out->type_url = (char *)save_types[k].type_url;
	return 0;
}

void save_any_fini(Google__Protobuf__Any *a)
{
	if (!a)
		return;
	free(a->value.data);
	google__protobuf__any__init(a);
}

void save_map_alloc(struct save_map *m, size_t n, size_t esz, size_t vsz)
{
	m->ents = xcalloc(n + 1, esz);
	m->ptrs = xcalloc(n + 1, sizeof(*m->ptrs));
	m->vals = vsz ? xcalloc(n + 1, vsz) : NULL;
	m->keys = xcalloc(n + 1, sizeof(*m->keys));
	for (size_t i = 0; i < n; i++)
		m->ptrs[i] = (char *)m->ents + i * esz;
}

void save_map_free(struct save_map *m)
{
	free(m->ents);
	free(m->ptrs);
	free(m->vals);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

void save_map_free_anys(struct save_map *m, size_t n)
{
	Google__Protobuf__Any *a = m->vals ? m->vals : m->ents;
	for (size_t i = 0; i < n && a; i++)
		free(a[i].value.data);
	save_map_free(m);
}

void save_any_to_bytes(const Google__Protobuf__Any *a, struct buf *out)
{
	size_t n = google__protobuf__any__get_packed_size(a);
	uint8_t *p = buf_reserve(out, n);
	buf_commit(out, google__protobuf__any__pack(a, p));
}

void save_duration_set(Google__Protobuf__Duration *d, int64_t ns)
{
	google__protobuf__duration__init(d);
	d->seconds = ns / 1000000000;
	d->nanos = (int32_t)(ns % 1000000000);
}

void save_timestamp_set(Google__Protobuf__Timestamp *t, int64_t ns)
{
	google__protobuf__timestamp__init(t);
	t->seconds = ns / 1000000000;
	t->nanos = (int32_t)(ns % 1000000000);
	if (t->nanos < 0) {
		t->nanos += 1000000000;
		t->seconds--;
	}
}
