/* GCS bridge framing: a 16-byte little-endian header {type u32, size u32 (header
 * included), id u64} followed by a UTF-8 JSON payload of size-16 bytes. */
#ifndef FERRY_BRIDGE_FRAME_H
#define FERRY_BRIDGE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct bridge_hdr {
	uint32_t type;
	uint32_t size; /* total, header included */
	uint64_t id;
};

void bridge_hdr_encode(const struct bridge_hdr *h, uint8_t out[16]);
void bridge_hdr_decode(const uint8_t in[16], struct bridge_hdr *h);

/* Validate a header: size >= 16 and, when max_size > 0, size <= max_size.  Returns 0, or
 * -EBADMSG (size < 16) / -EMSGSIZE (over the cap) with a message. */
int bridge_hdr_check(const struct bridge_hdr *h, uint32_t max_size, struct err *e);

/* Try to take one whole frame from the front of `in`.  Returns 1 and fills *h, *payload
 * (pointing into `in`, valid until the next buf call) and *len when a frame is complete
 * (the caller then buf_consume()s h->size bytes); 0 when more bytes are needed; a negative
 * errno when the header is invalid (see bridge_hdr_check). */
int bridge_frame_peek(const struct buf *in, uint32_t max_size, struct bridge_hdr *h,
                      const uint8_t **payload, size_t *len, struct err *e);

/* Append a frame {type, id, payload} to `out`.  Returns 0, or -EMSGSIZE when the frame
 * would exceed max_size (> 0) and nothing is appended. */
int bridge_frame_append(struct buf *out, uint32_t type, uint64_t id, const void *payload,
                        size_t len, uint32_t max_size, struct err *e);

#endif
