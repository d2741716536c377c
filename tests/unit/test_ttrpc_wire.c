/* Unit tests for ttrpc's byte layer: the 10-byte header (big-endian layout), the frame parser
 * (reassembly, zero-length frames, the 4 MiB cap and the skip mode of oversized frames), the
 * hand-written Request/Response/Data encoders (checked against protobuf-c's own packing, byte
 * for byte, and decoded back), the bounded decoders (truncation at every byte, invalid UTF-8,
 * groups, nesting depth, memory budget), status codes and the stream-id table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "ttrpc/echo/echo.pb-c.h"
#include "ttrpc/idmap.h"
#include "ttrpc/ttrpc.h"

/* ---- header and framer ---- */

static void test_header_layout(void **state)
{
	(void)state;
	struct ttrpc_hdr h = {.length = 0x01020304, .stream_id = 0x05060708, .type = 3, .flags = 5};
	uint8_t b[TTRPC_HDR_SIZE];
	ttrpc_hdr_encode(&h, b);
	const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 3, 5};
	assert_memory_equal(b, want, sizeof(want));
	struct ttrpc_hdr d;
	ttrpc_hdr_decode(b, &d);
	assert_int_equal(d.length, h.length);
	assert_int_equal(d.stream_id, h.stream_id);
	assert_int_equal(d.type, 3);
	assert_int_equal(d.flags, 5);
	assert_string_equal(ttrpc_msg_type_name(1), "request");
	assert_string_equal(ttrpc_msg_type_name(2), "response");
	assert_string_equal(ttrpc_msg_type_name(3), "data");
	assert_string_equal(ttrpc_msg_type_name(9), "unknown");
}

static void append_frame(struct buf *b, uint32_t id, uint8_t type, uint8_t flags, const void *data,
                         uint32_t len)
{
	struct ttrpc_hdr h = {.length = len, .stream_id = id, .type = type, .flags = flags};
	uint8_t hb[TTRPC_HDR_SIZE];
	ttrpc_hdr_encode(&h, hb);
	buf_append(b, hb, sizeof(hb));
	buf_append(b, data, len);
}

static void test_framer_reassembly(void **state)
{
	(void)state;
	struct buf wire, in;
	buf_init(&wire);
	buf_init(&in);
	append_frame(&wire, 1, TTRPC_MSG_REQUEST, 0, "hello", 5);
	append_frame(&wire, 3, TTRPC_MSG_DATA, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA, "",
	             0);
	append_frame(&wire, 5, 0x7f, 0xff, "xy", 2);
	struct ttrpc_framer fr;
	ttrpc_framer_init(&fr, 0);
	assert_int_equal(fr.max, TTRPC_MAX_DATA);
	struct ttrpc_frame f;
	int got = 0;
	/* Byte by byte: a frame appears exactly when its last byte arrives. */
	size_t ends[] = {15, 25, 37};
	for (size_t i = 0; i < buf_avail(&wire); i++) {
		buf_append(&in, buf_head(&wire) + i, 1);
		int r = ttrpc_framer_next(&fr, &in, &f);
		bool end = (got < 3 && i + 1 == ends[got]);
		assert_int_equal(r, end ? 1 : 0);
		if (!end)
			continue;
		assert_false(f.oversized);
		if (got == 0) {
			assert_int_equal(f.h.stream_id, 1);
			assert_int_equal(f.h.length, 5);
			assert_memory_equal(f.data, "hello", 5);
		} else if (got == 1) {
			assert_int_equal(f.h.length, 0);
			assert_int_equal(f.h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
		} else {
			assert_int_equal(f.h.type, 0x7f); /* unknown types pass through */
			assert_memory_equal(f.data, "xy", 2);
		}
		got++;
		assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 0);
	}
	assert_int_equal(got, 3);
	assert_int_equal(buf_avail(&in), 0);
	buf_fini(&wire);
	buf_fini(&in);
}

static void test_framer_cap_and_skip(void **state)
{
	(void)state;
	struct ttrpc_framer fr;
	ttrpc_framer_init(&fr, 100);
	struct buf in;
	buf_init(&in);
	uint8_t big[400];
	memset(big, 0xee, sizeof(big));
	append_frame(&in, 7, TTRPC_MSG_REQUEST, 0, big, 100); /* exactly the cap: accepted */
	struct ttrpc_frame f;
	assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 1);
	assert_false(f.oversized);
	assert_int_equal(f.h.length, 100);

	/* 101 bytes: reported once at its header, data skipped as it trickles in. */
	struct buf wire;
	buf_init(&wire);
	append_frame(&wire, 9, TTRPC_MSG_REQUEST, 0, big, 301);
	append_frame(&wire, 11, TTRPC_MSG_REQUEST, 0, "ok", 2);
	size_t off = 0;
	buf_append(&in, buf_head(&wire), 10);
	off = 10;
	assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 1);
	assert_true(f.oversized);
	assert_null(f.data);
	assert_int_equal(f.h.stream_id, 9);
	assert_int_equal(f.h.length, 301);
	assert_true(ttrpc_framer_skipping(&fr));
	while (off < 10 + 301) {
		size_t n = 37;
		if (off + n > 10 + 301)
			n = 10 + 301 - off;
		buf_append(&in, buf_head(&wire) + off, n);
		off += n;
		assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 0);
		/* never holds skipped bytes */
		assert_int_equal(buf_avail(&in), 0);
	}
	assert_false(ttrpc_framer_skipping(&fr));
	buf_append(&in, buf_head(&wire) + off, buf_avail(&wire) - off);
	assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 1);
	assert_false(f.oversized);
	assert_int_equal(f.h.stream_id, 11);
	assert_memory_equal(f.data, "ok", 2);

	/* A length past 16 MiB (reserved first byte set) is just oversized. */
	append_frame(&in, 13, TTRPC_MSG_REQUEST, 0, "", 0);
	in.data[in.len - 10] = 0x80;
	assert_int_equal(ttrpc_framer_next(&fr, &in, &f), 1);
	assert_true(f.oversized);
	assert_int_equal(f.h.length, 0x80000000u);
	buf_fini(&in);
	buf_fini(&wire);
}

static void test_frame_begin_cap(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out);
	struct err e;
	err_clear(&e);
	assert_null(ttrpc_frame_begin(&out, 1, 1, 0, TTRPC_MAX_DATA + 1, &e));
	assert_int_equal(e.code, -EMSGSIZE);
	assert_string_equal(e.msg,
	                    "message length 4194305 exceeds maximum message size of 4194304");
	assert_int_equal(buf_avail(&out), 0);
	uint8_t *p = ttrpc_frame_begin(&out, 1, 1, 0, TTRPC_MAX_DATA, &e);
	assert_non_null(p);
	buf_fini(&out);
}

/* ---- encoders against protobuf-c ---- */

static const uint8_t *frame_data(const struct buf *b, struct ttrpc_hdr *h)
{
	assert_true(buf_avail(b) >= TTRPC_HDR_SIZE);
	ttrpc_hdr_decode(buf_head(b), h);
	assert_int_equal(buf_avail(b), TTRPC_HDR_SIZE + h->length);
	return buf_head(b) + TTRPC_HDR_SIZE;
}

static void test_request_encoding(void **state)
{
	(void)state;
	Ttrpc__Echo__EchoRequest in = TTRPC__ECHO__ECHO_REQUEST__INIT;
	in.text = "héllo";
	in.delay_ms = 300;
	const struct ttrpc_kv md[] = {{"k1", "a"}, {"k1", "b"}, {"", "empty key"}, {"k2", ""}};
	int64_t timeouts[] = {0, 1, 5000000000LL, -7};
	for (size_t t = 0; t < 4; t++) {
		struct buf out;
		buf_init(&out);
		struct err e;
		struct ttrpc_request_out rq = {
		    .service = "ttrpc.echo.Echo",
		    .method = "Echo",
		    .payload = &in.base,
		    .timeout_nano = timeouts[t],
		    .metadata = md,
		    .n_metadata = 4,
		};
		assert_int_equal(ttrpc_wire_put_request(&out, 3, TTRPC_FLAG_REMOTE_OPEN, &rq, &e),
		                 0);
		struct ttrpc_hdr h;
		const uint8_t *d = frame_data(&out, &h);
		assert_int_equal(h.stream_id, 3);
		assert_int_equal(h.type, TTRPC_MSG_REQUEST);
		assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_OPEN);

		/* protobuf-c packs the same message to the same bytes (field order, omitted
		 * defaults, negative int64 as a 10-byte varint). */
		uint8_t payload[64];
		size_t pn = protobuf_c_message_pack(&in.base, payload);
		Ttrpc__KeyValue kv[4], *kvp[4];
		for (int i = 0; i < 4; i++) {
			ttrpc__key_value__init(&kv[i]);
			kv[i].key = (char *)md[i].key;
			kv[i].value = (char *)md[i].value;
			kvp[i] = &kv[i];
		}
		Ttrpc__Request ref = TTRPC__REQUEST__INIT;
		ref.service = "ttrpc.echo.Echo";
		ref.method = "Echo";
		ref.payload.data = payload;
		ref.payload.len = pn;
		ref.timeout_nano = timeouts[t];
		ref.n_metadata = 4;
		ref.metadata = kvp;
		uint8_t want[256];
		size_t wn = protobuf_c_message_pack(&ref.base, want);
		assert_int_equal(h.length, wn);
		assert_memory_equal(d, want, wn);

		Ttrpc__Request *r = ttrpc_request_decode(d, h.length, &e);
		assert_non_null(r);
		assert_string_equal(r->service, "ttrpc.echo.Echo");
		assert_string_equal(r->method, "Echo");
		assert_int_equal(r->timeout_nano, timeouts[t]);
		assert_int_equal(r->n_metadata, 4);
		assert_string_equal(r->metadata[1]->value, "b");
		assert_string_equal(r->metadata[2]->key, "");
		Ttrpc__Echo__EchoRequest *p = (Ttrpc__Echo__EchoRequest *)ttrpc_msg_unpack(
		    &ttrpc__echo__echo_request__descriptor, r->payload.data, r->payload.len, &e);
		assert_non_null(p);
		assert_string_equal(p->text, "héllo");
		assert_int_equal(p->delay_ms, 300);
		ttrpc_msg_free(&p->base);
		ttrpc_msg_free(&r->base);
		buf_fini(&out);
	}
}

static void test_response_and_data_encoding(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out);
	struct err e;
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = "x";
	rep.seq = 9;
	/* OK: the status is present (empty message), as Go sends it. */
	assert_int_equal(ttrpc_wire_put_response(&out, 5, TTRPC_OK, "", 0, NULL, &rep.base, &e), 0);
	struct ttrpc_hdr h;
	const uint8_t *d = frame_data(&out, &h);
	assert_int_equal(h.type, TTRPC_MSG_RESPONSE);
	assert_int_equal(h.flags, 0);
	assert_int_equal(d[0], 0x0a); /* field 1, length-delimited */
	assert_int_equal(d[1], 0x00); /* empty Status */
	Ttrpc__Response *r = ttrpc_response_decode(d, h.length, &e);
	assert_non_null(r);
	assert_non_null(r->status);
	assert_int_equal(r->status->code, 0);
	ProtobufCMessage *m = ttrpc_msg_unpack(&ttrpc__echo__echo_reply__descriptor,
	                                       r->payload.data, r->payload.len, &e);
	assert_non_null(m);
	assert_int_equal(((Ttrpc__Echo__EchoReply *)m)->seq, 9);
	ttrpc_msg_free(m);
	ttrpc_msg_free(&r->base);

	/* An error with details, no payload; negative codes survive. */
	buf_reset(&out);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/x";
	any.value.data = (uint8_t *)"\x01\x02";
	any.value.len = 2;
	Google__Protobuf__Any *details[] = {&any};
	assert_int_equal(ttrpc_wire_put_response(&out, 7, TTRPC_NOT_FOUND, "no such thing", 1,
	                                         details, NULL, &e),
	                 0);
	d = frame_data(&out, &h);
	r = ttrpc_response_decode(d, h.length, &e);
	assert_non_null(r);
	assert_int_equal(r->status->code, TTRPC_NOT_FOUND);
	assert_string_equal(r->status->message, "no such thing");
	assert_int_equal(r->status->n_details, 1);
	assert_string_equal(r->status->details[0]->type_url, "type.googleapis.com/x");
	assert_int_equal(r->payload.len, 0);
	ttrpc_msg_free(&r->base);
	buf_reset(&out);
	assert_int_equal(ttrpc_wire_put_response(&out, 7, -3, "neg", 0, NULL, NULL, &e), 0);
	d = frame_data(&out, &h);
	r = ttrpc_response_decode(d, h.length, &e);
	assert_int_equal(r->status->code, -3);
	ttrpc_msg_free(&r->base);

	/* Data: NULL message means the no-data flag and no bytes. */
	buf_reset(&out);
	assert_int_equal(ttrpc_wire_put_data(&out, 9, TTRPC_FLAG_REMOTE_CLOSED, NULL, &e), 0);
	d = frame_data(&out, &h);
	assert_int_equal(h.type, TTRPC_MSG_DATA);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
	assert_int_equal(h.length, 0);
	/* An empty message is data of length 0 without the flag. */
	buf_reset(&out);
	Ttrpc__Echo__EchoReply empty = TTRPC__ECHO__ECHO_REPLY__INIT;
	assert_int_equal(ttrpc_wire_put_data(&out, 9, 0, &empty.base, &e), 0);
	d = frame_data(&out, &h);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.length, 0);
	buf_fini(&out);
}

/* The Request overhead for service "s", method "m" and a payload field of n bytes. */
static void test_request_cap(void **state)
{
	(void)state;
	/* EchoRequest{data: N bytes}: payload = 1 + varint(N) + N; request = 3 + 3 + 1 +
	 * varint(payload) + payload.  Find N with request data of exactly 4 MiB. */
	size_t n = TTRPC_MAX_DATA - 6 - 1 - 4 - 1 - 4; /* varints of ~4 MiB take 4 bytes */
	Ttrpc__Echo__EchoRequest in = TTRPC__ECHO__ECHO_REQUEST__INIT;
	uint8_t *blob = xcalloc(1, n + 1);
	in.data.data = blob;
	in.data.len = n;
	struct ttrpc_request_out rq = {.service = "s", .method = "m", .payload = &in.base};
	struct buf out;
	buf_init(&out);
	struct err e;
	err_clear(&e);
	assert_int_equal(ttrpc_wire_put_request(&out, 1, 0, &rq, &e), 0);
	struct ttrpc_hdr h;
	frame_data(&out, &h);
	assert_int_equal(h.length, TTRPC_MAX_DATA);
	buf_reset(&out);
	in.data.len = n + 1;
	assert_int_equal(ttrpc_wire_put_request(&out, 1, 0, &rq, &e), -EMSGSIZE);
	assert_int_equal(buf_avail(&out), 0);
	assert_non_null(strstr(e.msg, "exceeds maximum message size of 4194304"));
	free(blob);
	buf_fini(&out);
}

/* ---- hostile decoding ---- */

static void test_truncation_every_byte(void **state)
{
	(void)state;
	Ttrpc__Echo__EchoRequest in = TTRPC__ECHO__ECHO_REQUEST__INIT;
	in.text = "payload text";
	const struct ttrpc_kv md[] = {{"key", "value"}};
	struct ttrpc_request_out rq = {.service = "svc",
	                               .method = "M",
	                               .payload = &in.base,
	                               .timeout_nano = 123456789,
	                               .metadata = md,
	                               .n_metadata = 1};
	struct buf out;
	buf_init(&out);
	struct err e;
	assert_int_equal(ttrpc_wire_put_request(&out, 1, 0, &rq, &e), 0);
	struct ttrpc_hdr h;
	const uint8_t *d = frame_data(&out, &h);
	/* Field boundaries: a prefix ending there is a valid (shorter) message. */
	size_t nbound = 0, bounds[8];
	for (size_t i = 0; i < h.length;) {
		uint8_t key = d[i++];
		if ((key & 7) == 0) {
			while (d[i++] & 0x80)
				;
		} else {
			size_t len = 0, sh = 0;
			while (d[i] & 0x80)
				len |= (size_t)(d[i++] & 0x7f) << sh, sh += 7;
			len |= (size_t)d[i++] << sh;
			i += len;
		}
		bounds[nbound++] = i;
	}
	for (size_t n = 0; n < h.length; n++) {
		err_clear(&e);
		uint8_t *copy = xmalloc(n + 1); /* exact size, so ASan sees over-reads */
		memcpy(copy, d, n);
		Ttrpc__Request *r = ttrpc_request_decode(copy, n, &e);
		bool boundary = n == 0;
		for (size_t b = 0; b < nbound; b++)
			boundary |= bounds[b] == n;
		if (boundary) {
			assert_non_null(r);
		} else {
			assert_null(r);
			assert_int_equal(e.code, -EBADMSG);
			assert_non_null(strstr(e.msg, "ttrpc.Request"));
		}
		ttrpc_msg_free(r ? &r->base : NULL);
		free(copy);
	}
	buf_fini(&out);
}

static void test_bad_utf8_and_wire_types(void **state)
{
	(void)state;
	struct err e;
	/* service = "a\xff" */
	const uint8_t bad_service[] = {0x0a, 0x02, 'a', 0xff};
	assert_null(ttrpc_request_decode(bad_service, sizeof(bad_service), &e));
	assert_int_equal(e.code, -EBADMSG);
	assert_string_equal(e.msg, "ttrpc.Request.service: invalid UTF-8");
	/* metadata { key = overlong "/" } */
	const uint8_t bad_key[] = {0x2a, 0x04, 0x0a, 0x02, 0xc0, 0xaf};
	assert_null(ttrpc_request_decode(bad_key, sizeof(bad_key), &e));
	assert_string_equal(e.msg, "ttrpc.Request.metadata: ttrpc.KeyValue.key: invalid UTF-8");
	/* Bytes fields are not strings: anything goes in the payload. */
	const uint8_t payload_ff[] = {0x1a, 0x01, 0xff};
	Ttrpc__Request *r = ttrpc_request_decode(payload_ff, sizeof(payload_ff), &e);
	assert_non_null(r);
	ttrpc_msg_free(&r->base);
	/* A group (wire type 3) */
	const uint8_t group[] = {0x0b, 0x0c};
	assert_null(ttrpc_request_decode(group, sizeof(group), &e));
	assert_non_null(strstr(e.msg, "unsupported wire type 3"));
	/* Field number 0 */
	const uint8_t zero[] = {0x02, 0x00};
	assert_null(ttrpc_request_decode(zero, sizeof(zero), &e));
	assert_non_null(strstr(e.msg, "invalid field number 0"));
	/* A varint of 11 bytes */
	const uint8_t longvar[] = {0x20, 0xff, 0xff, 0xff, 0xff, 0xff,
	                           0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_null(ttrpc_request_decode(longvar, sizeof(longvar), &e));
	assert_non_null(strstr(e.msg, "timeout_nano (4): truncated varint"));
	/* Right structure, wrong type for the field: protobuf-c refuses it. */
	const uint8_t wrongtype[] = {0x08, 0x01}; /* service as a varint */
	assert_null(ttrpc_request_decode(wrongtype, sizeof(wrongtype), &e));
	assert_non_null(strstr(e.msg, "wire type does not match"));
	/* Unknown fields are skipped. */
	const uint8_t unknown[] = {0x0a, 0x01, 's', 0xf8, 0x07, 0x05, 0x12, 0x01, 'm'};
	r = ttrpc_request_decode(unknown, sizeof(unknown), &e);
	assert_non_null(r);
	assert_string_equal(r->method, "m");
	ttrpc_msg_free(&r->base);
	/* Response: a status message that is not UTF-8 */
	const uint8_t bad_status[] = {0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, 0xfe};
	assert_null(ttrpc_response_decode(bad_status, sizeof(bad_status), &e));
	assert_string_equal(e.msg,
	                    "ttrpc.Response.status: google.rpc.Status.message: invalid UTF-8");
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(ttrpc_utf8_valid("", 0));
	assert_true(ttrpc_utf8_valid("plain", 5));
	assert_true(ttrpc_utf8_valid("\xc3\xa9", 2));          /* é */
	assert_true(ttrpc_utf8_valid("\xe2\x82\xac", 3));      /* € */
	assert_true(ttrpc_utf8_valid("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
	assert_true(ttrpc_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_true(ttrpc_utf8_valid("a\0b", 3));              /* NUL is valid UTF-8 */
	assert_false(ttrpc_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(ttrpc_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	assert_false(ttrpc_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(ttrpc_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
	assert_false(ttrpc_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_false(ttrpc_utf8_valid("\x80", 1));             /* stray continuation */
	assert_false(ttrpc_utf8_valid("\xf8\x88\x80\x80\x80", 5));
}

/* Tree{children: [Tree{children: [...]}]} nested `depth` times. */
static uint8_t *nested(unsigned depth, size_t *len)
{
	uint8_t *p = xmalloc(1);
	size_t n = 0;
	for (unsigned i = 0; i < depth; i++) {
		uint8_t hdr[8];
		size_t h = 0, v = n;
		hdr[h++] = 0x12;
		while (v >= 0x80)
			hdr[h++] = (uint8_t)(v | 0x80), v >>= 7;
		hdr[h++] = (uint8_t)v;
		uint8_t *q = xmalloc(h + n);
		memcpy(q, hdr, h);
		memcpy(q + h, p, n);
		free(p);
		p = q;
		n += h;
	}
	*len = n;
	return p;
}

static void test_nesting_depth(void **state)
{
	(void)state;
	struct err e;
	size_t n;
	uint8_t *ok = nested(TTRPC_MAX_DEPTH, &n);
	ProtobufCMessage *m = ttrpc_msg_unpack(&ttrpc__echo__tree__descriptor, ok, n, &e);
	assert_non_null(m);
	ttrpc_msg_free(m);
	free(ok);
	uint8_t *deep = nested(TTRPC_MAX_DEPTH + 1, &n);
	assert_null(ttrpc_msg_unpack(&ttrpc__echo__tree__descriptor, deep, n, &e));
	assert_int_equal(e.code, -EBADMSG);
	assert_non_null(strstr(e.msg, "nested deeper than 64"));
	free(deep);
	/* A million levels (2 MiB of input) would overflow protobuf-c's recursion: refused by
	 * the walk before any allocation, without deep recursion in the walk either. */
	uint8_t *huge = xmalloc(2u << 20);
	for (size_t i = 0; i < (1u << 20); i++) {
		huge[2 * i] = 0x12;
		huge[2 * i + 1] = 0x80; /* bogus length: truncated inside */
	}
	assert_null(ttrpc_msg_unpack(&ttrpc__echo__tree__descriptor, huge, 2u << 20, &e));
	free(huge);
}

static void test_memory_budget(void **state)
{
	(void)state;
	struct err e;
	/* 100000 empty metadata entries: 200 KB of input, ~60 bytes of decoded memory each. */
	size_t count = 100000, n = 2 * count;
	uint8_t *p = xmalloc(n);
	for (size_t i = 0; i < count; i++) {
		p[2 * i] = 0x2a;
		p[2 * i + 1] = 0x00;
	}
	err_clear(&e);
	assert_null(ttrpc_request_decode(p, n, &e));
	assert_int_equal(e.code, -EMSGSIZE);
	assert_non_null(strstr(e.msg, "needs more than"));
	/* 300 of them fit the base allowance. */
	Ttrpc__Request *r = ttrpc_request_decode(p, 600, &e);
	assert_non_null(r);
	assert_int_equal(r->n_metadata, 300);
	ttrpc_msg_free(&r->base);
	free(p);
	assert_int_equal(ttrpc_decode_budget(0), TTRPC_DECODE_BASE);
	assert_int_equal(ttrpc_decode_budget(TTRPC_MAX_DATA), (64u << 10) + 8u * (4u << 20));
}

/* ---- status codes ---- */

static void test_status_codes(void **state)
{
	(void)state;
	assert_string_equal(ttrpc_code_name(TTRPC_OK), "OK");
	assert_string_equal(ttrpc_code_name(4), "DeadlineExceeded");
	assert_string_equal(ttrpc_code_name(8), "ResourceExhausted");
	assert_string_equal(ttrpc_code_name(12), "Unimplemented");
	assert_string_equal(ttrpc_code_name(16), "Unauthenticated");
	assert_string_equal(ttrpc_code_name(17), "unknown code");
	assert_string_equal(ttrpc_code_name(-1), "unknown code");
	assert_int_equal(ttrpc_code_from_errno(0), TTRPC_OK);
	assert_int_equal(ttrpc_code_from_errno(-ENOENT), TTRPC_NOT_FOUND);
	assert_int_equal(ttrpc_code_from_errno(-EEXIST), TTRPC_ALREADY_EXISTS);
	assert_int_equal(ttrpc_code_from_errno(-EACCES), TTRPC_PERMISSION_DENIED);
	assert_int_equal(ttrpc_code_from_errno(-ETIMEDOUT), TTRPC_DEADLINE_EXCEEDED);
	assert_int_equal(ttrpc_code_from_errno(-EMSGSIZE), TTRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(ttrpc_code_from_errno(-EBUSY), TTRPC_FAILED_PRECONDITION);
	assert_int_equal(ttrpc_code_from_errno(-ENOSYS), TTRPC_UNIMPLEMENTED);
	assert_int_equal(ttrpc_code_from_errno(-ECONNRESET), TTRPC_UNAVAILABLE);
	assert_int_equal(ttrpc_code_from_errno(EINVAL), TTRPC_INVALID_ARGUMENT);
	assert_int_equal(ttrpc_code_from_errno(-EXDEV), TTRPC_UNKNOWN);
	/* Every code with an errno maps back to itself. */
	for (int c = 1; c <= 16; c++) {
		int en = ttrpc_errno_from_code(c);
		assert_true(en < 0);
		if (en != -EIO)
			assert_int_equal(ttrpc_code_from_errno(en), c);
	}
	assert_int_equal(ttrpc_errno_from_code(TTRPC_OK), 0);
	assert_int_equal(ttrpc_errno_from_code(TTRPC_NOT_FOUND), -ENOENT);
	assert_int_equal(ttrpc_errno_from_code(TTRPC_DATA_LOSS), -EIO);
}

/* ---- id table ---- */

static void test_idmap(void **state)
{
	(void)state;
	struct ttrpc_idmap m;
	ttrpc_idmap_init(&m);
	enum { N = 5000 };
	static int present[N];
	static int vals[N];
	srand(7);
	/* Random puts and deletes of odd ids, checked against a plain array. */
	for (int step = 0; step < 100000; step++) {
		int k = rand() % N;
		uint32_t id = 2 * (uint32_t)k + 1;
		if (rand() % 3) {
			ttrpc_idmap_put(&m, id, &vals[k]);
			present[k] = 1;
		} else {
			void *v = ttrpc_idmap_del(&m, id);
			assert_ptr_equal(v, present[k] ? &vals[k] : NULL);
			present[k] = 0;
		}
		if (step % 997 == 0) {
			size_t cnt = 0;
			for (int i = 0; i < N; i++) {
				cnt += (size_t)present[i];
				assert_ptr_equal(ttrpc_idmap_get(&m, 2 * (uint32_t)i + 1),
				                 present[i] ? &vals[i] : NULL);
			}
			assert_int_equal(m.n, cnt);
		}
	}
	uint32_t id;
	void *any = ttrpc_idmap_any(&m, &id);
	assert_non_null(any);
	assert_ptr_equal(ttrpc_idmap_get(&m, id), any);
	size_t before = m.n, n;
	void **all = ttrpc_idmap_take_all(&m, &n);
	assert_int_equal(n, before);
	assert_int_equal(m.n, 0);
	assert_null(ttrpc_idmap_get(&m, id));
	assert_null(ttrpc_idmap_any(&m, &id));
	free(all);
	ttrpc_idmap_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_framer_reassembly),
	    cmocka_unit_test(test_framer_cap_and_skip),
	    cmocka_unit_test(test_frame_begin_cap),
	    cmocka_unit_test(test_request_encoding),
	    cmocka_unit_test(test_response_and_data_encoding),
	    cmocka_unit_test(test_request_cap),
	    cmocka_unit_test(test_truncation_every_byte),
	    cmocka_unit_test(test_bad_utf8_and_wire_types),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_nesting_depth),
	    cmocka_unit_test(test_memory_budget),
	    cmocka_unit_test(test_status_codes),
	    cmocka_unit_test(test_idmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
