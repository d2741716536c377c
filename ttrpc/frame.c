/* ttrpc frame header codec and the incremental parser with its skip mode for oversized
 * frames. */
#include "ttrpc/frame.h"

#include <errno.h>

static void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ttrpc_hdr_encode(const struct ttrpc_hdr *h, uint8_t out[TTRPC_HDR_SIZE])
{
	be32_put(out, h->length);
	be32_put(out + 4, h->stream_id);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_SIZE], struct ttrpc_hdr *h)
{
	h->length = be32_get(in);
	h->stream_id = be32_get(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

const char *ttrpc_msg_type_name(uint8_t type)
{
	switch (type) {
	case TTRPC_MSG_REQUEST:
		return "request";
	case TTRPC_MSG_RESPONSE:
		return "response";
	case TTRPC_MSG_DATA:
		return "data";
	}
	return "unknown";
}

void ttrpc_framer_init(struct ttrpc_framer *f, uint32_t max)
{
	f->max = max ? max : TTRPC_MAX_DATA;
	f->skip = 0;
}

bool ttrpc_framer_skipping(const struct ttrpc_framer *f)
{
	return f->skip > 0;
}

int ttrpc_framer_next(struct ttrpc_framer *f, struct buf *in, struct ttrpc_frame *fr)
{
	while (f->skip > 0) {
		size_t n = buf_avail(in);
		if (n == 0)
			return 0;
		if ((uint64_t)n > f->skip)
			n = (size_t)f->skip;
		buf_consume(in, n);
		f->skip -= n;
	}
	if (buf_avail(in) < TTRPC_HDR_SIZE)
		return 0;
	struct ttrpc_hdr h;
	ttrpc_hdr_decode(buf_head(in), &h);
	if (h.length > f->max) {
		buf_consume(in, TTRPC_HDR_SIZE);
		f->skip = h.length;
		fr->h = h;
		fr->data = NULL;
		fr->oversized = true;
		return 1;
	}
	if (buf_avail(in) - TTRPC_HDR_SIZE < h.length)
		return 0;
	fr->h = h;
	fr->data = buf_head(in) + TTRPC_HDR_SIZE;
	fr->oversized = false;
	buf_consume(in, TTRPC_HDR_SIZE + (size_t)h.length);
	return 1;
}

uint8_t *ttrpc_frame_begin(struct buf *out, uint32_t stream_id, uint8_t type, uint8_t flags,
                           size_t len, struct err *e)
{
	if (len > TTRPC_MAX_DATA) {
		err_set(e, -EMSGSIZE, "message length %zu exceeds maximum message size of %u", len,
		        TTRPC_MAX_DATA);
		return NULL;
	}
	struct ttrpc_hdr h = {
	    .length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
	uint8_t *p = buf_reserve(out, TTRPC_HDR_SIZE + len);
	ttrpc_hdr_encode(&h, p);
	return p + TTRPC_HDR_SIZE;
}
