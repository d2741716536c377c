/* ttrpc message encoding and bounded decoding.  The envelopes (Request, Response) are
 * written by hand in field order, as Go marshals them, so that the inner message can be
 * packed by protobuf-c directly into the output buffer; google.rpc.Status is packed by
 * protobuf-c.  Decoding is check walk + budgeted protobuf-c unpack (see wire.h). */
#include "ttrpc/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc/frame.h"

/* Error messages name at most this many enclosing fields. */
#define PATH_LEVELS 6

/* Protobuf wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* ---- UTF-8 ---- */

bool ttrpc_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* ---- the check walk ---- */

/* Read a varint at p (n bytes available): bytes used (1..10), or 0 when truncated or
 * longer than 10 bytes. */
static size_t get_varint(const uint8_t *p, size_t n, uint64_t *v)
{
	uint64_t r = 0;
	for (size_t i = 0; i < n && i < 10; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

static int check_at(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, unsigned depth,
                    struct err *e)
{
	if (depth > TTRPC_MAX_DEPTH)
		return err_set(e, -EBADMSG, "%s: messages nested deeper than %d", d->name,
		               TTRPC_MAX_DEPTH);
	size_t i = 0;
	while (i < n) {
		uint64_t key, len;
		size_t k = get_varint(p + i, n - i, &key);
		if (k == 0)
			return err_set(e, -EBADMSG, "%s: truncated field key at byte %zu", d->name,
			               i);
		i += k;
		uint64_t num = key >> 3;
		unsigned wt = (unsigned)(key & 7);
		if (num == 0 || num > 0x1fffffff)
			return err_set(e, -EBADMSG, "%s: invalid field number %llu at byte %zu",
			               d->name, (unsigned long long)num, i - k);
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field(d, (unsigned)num);
		const char *fname = f ? f->name : "?";
		switch (wt) {
		case WT_VARINT:
			k = get_varint(p + i, n - i, &len);
			if (k == 0)
				return err_set(e, -EBADMSG, "%s.%s (%llu): truncated varint",
				               d->name, fname, (unsigned long long)num);
			i += k;
			break;
		case WT_I64:
		case WT_I32: {
			size_t w = wt == WT_I64 ? 8 : 4;
			if (n - i < w)
				return err_set(e, -EBADMSG, "%s.%s (%llu): truncated fixed%zu",
				               d->name, fname, (unsigned long long)num, w * 8);
			i += w;
			break;
		}
		case WT_LEN:
			k = get_varint(p + i, n - i, &len);
			if (k == 0 || len > n - i - k)
				return err_set(e, -EBADMSG,
				               "%s.%s (%llu): truncated length-delimited field",
				               d->name, fname, (unsigned long long)num);
			i += k;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int r = check_at(f->descriptor, p + i, (size_t)len, depth + 1, e);
				/* The path names the outer levels only, so that the fault itself
				 * stays inside the message buffer. */
				if (r < 0)
					return depth < PATH_LEVELS
					           ? err_prefix(e, "%s.%s", d->name, fname)
					           : r;
			} else if (f && f->type == PROTOBUF_C_TYPE_STRING &&
			           !ttrpc_utf8_valid((const char *)p + i, (size_t)len)) {
				return err_set(e, -EBADMSG, "%s.%s: invalid UTF-8", d->name, fname);
			}
			i += (size_t)len;
			break;
		default:
			return err_set(e, -EBADMSG,
			               "%s.%s (%llu): unsupported wire type %u (groups are "
			               "not supported)",
			               d->name, fname, (unsigned long long)num, wt);
		}
	}
	return 0;
}

int ttrpc_msg_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, struct err *e)
{
	return check_at(d, p, n, 0, e);
}

/* ---- budgeted unpack ---- */

#define ALLOC_OVERHEAD 16u

struct budget {
	size_t left;
	bool exceeded;
};

static void *budget_alloc(void *ud, size_t n)
{
	struct budget *b = ud;
	size_t cost = n + ALLOC_OVERHEAD;
	if (cost < n || cost > b->left) {
		b->exceeded = true;
		return NULL;
	}
	b->left -= cost;
	return malloc(n ? n : 1);
}

static void budget_free(void *ud, void *p)
{
	(void)ud;
	free(p);
}

size_t ttrpc_decode_budget(size_t input_len)
{
	return TTRPC_DECODE_BASE + TTRPC_DECODE_FACTOR * input_len;
}

ProtobufCMessage *ttrpc_msg_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                                   struct err *e)
{
	if (ttrpc_msg_check(d, p, n, e) < 0)
		return NULL;
	struct budget b = {.left = ttrpc_decode_budget(n), .exceeded = false};
	ProtobufCAllocator a = {.alloc = budget_alloc, .free = budget_free, .allocator_data = &b};
	ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, n, p);
	if (m)
		return m;
	if (b.exceeded)
		err_set(e, -EMSGSIZE, "%s: decoding %zu bytes needs more than %zu bytes of memory",
		        d->name, n, ttrpc_decode_budget(n));
	else
		err_set(e, -EBADMSG,
		        "%s: malformed (a field's wire type does not match its declared type, or a "
		        "required field is missing)",
		        d->name);
	return NULL;
}

void ttrpc_msg_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

Ttrpc__Request *ttrpc_request_decode(const uint8_t *p, size_t n, struct err *e)
{
	return (Ttrpc__Request *)ttrpc_msg_unpack(&ttrpc__request__descriptor, p, n, e);
}

Ttrpc__Response *ttrpc_response_decode(const uint8_t *p, size_t n, struct err *e)
{
	return (Ttrpc__Response *)ttrpc_msg_unpack(&ttrpc__response__descriptor, p, n, e);
}

/* ---- encoding ---- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Size of a length-delimited field with body n (field numbers < 16: one key byte). */
static size_t len_field(size_t n)
{
	return 1 + varint_len(n) + n;
}

/* Same, omitted entirely when empty (proto3 default). */
static size_t opt_len_field(size_t n)
{
	return n ? len_field(n) : 0;
}

static uint8_t *put_len_key(uint8_t *p, unsigned field, size_t n)
{
	*p++ = (uint8_t)(field << 3 | WT_LEN);
	return put_varint(p, n);
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *s, size_t n)
{
	if (n == 0)
		return p;
	p = put_len_key(p, field, n);
	memcpy(p, s, n);
	return p + n;
}

static uint8_t *put_msg(uint8_t *p, unsigned field, const ProtobufCMessage *m, size_t n)
{
	if (n == 0)
		return p;
	p = put_len_key(p, field, n);
	return p + protobuf_c_message_pack(m, p);
}

static size_t msg_size(const ProtobufCMessage *m)
{
	return m ? protobuf_c_message_get_packed_size(m) : 0;
}

static size_t kv_body(const struct ttrpc_kv *kv)
{
	return opt_len_field(kv->key ? strlen(kv->key) : 0) +
	       opt_len_field(kv->value ? strlen(kv->value) : 0);
}

static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

int ttrpc_wire_put_request(struct buf *out, uint32_t stream_id, uint8_t flags,
                           const struct ttrpc_request_out *rq, struct err *e)
{
	size_t ls = str_len(rq->service), lm = str_len(rq->method), lp = msg_size(rq->payload);
	size_t total = opt_len_field(ls) + opt_len_field(lm) + opt_len_field(lp);
	if (rq->timeout_nano != 0)
		total += 1 + varint_len((uint64_t)rq->timeout_nano);
	for (size_t i = 0; i < rq->n_metadata; i++)
		total += len_field(kv_body(&rq->metadata[i]));
	uint8_t *p = ttrpc_frame_begin(out, stream_id, TTRPC_MSG_REQUEST, flags, total, e);
	if (!p)
		return e ? e->code : -EMSGSIZE;
	uint8_t *start = p;
	p = put_bytes(p, 1, rq->service, ls);
	p = put_bytes(p, 2, rq->method, lm);
	p = put_msg(p, 3, rq->payload, lp);
	if (rq->timeout_nano != 0) {
		*p++ = 4 << 3 | WT_VARINT;
		p = put_varint(p, (uint64_t)rq->timeout_nano);
	}
	for (size_t i = 0; i < rq->n_metadata; i++) {
		const struct ttrpc_kv *kv = &rq->metadata[i];
		p = put_len_key(p, 5, kv_body(kv));
		p = put_bytes(p, 1, kv->key, str_len(kv->key));
		p = put_bytes(p, 2, kv->value, str_len(kv->value));
	}
	buf_commit(out, TTRPC_HDR_SIZE + (size_t)(p - start));
	return 0;
}

int ttrpc_wire_put_response(struct buf *out, uint32_t stream_id, int code, const char *message,
                            size_t n_details, Google__Protobuf__Any *const *details,
                            const ProtobufCMessage *payload, struct err *e)
{
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = code;
	st.message = (char *)(message ? message : "");
	st.n_details = n_details;
	st.details = (Google__Protobuf__Any **)details;
	size_t ls = protobuf_c_message_get_packed_size(&st.base), lp = msg_size(payload);
	size_t total = len_field(ls) + opt_len_field(lp);
	uint8_t *p = ttrpc_frame_begin(out, stream_id, TTRPC_MSG_RESPONSE, 0, total, e);
	if (!p)
		return e ? e->code : -EMSGSIZE;
	uint8_t *start = p;
	p = put_len_key(p, 1, ls);
	p += protobuf_c_message_pack(&st.base, p);
	p = put_msg(p, 2, payload, lp);
	buf_commit(out, TTRPC_HDR_SIZE + (size_t)(p - start));
	return 0;
}

int ttrpc_wire_put_data(struct buf *out, uint32_t stream_id, uint8_t flags,
                        const ProtobufCMessage *msg, struct err *e)
{
	size_t n = msg_size(msg);
	if (!msg)
		flags |= TTRPC_FLAG_NO_DATA;
	uint8_t *p = ttrpc_frame_begin(out, stream_id, TTRPC_MSG_DATA, flags, n, e);
	if (!p)
		return e ? e->code : -EMSGSIZE;
	if (n)
		protobuf_c_message_pack(msg, p);
	buf_commit(out, TTRPC_HDR_SIZE + n);
	return 0;
}
