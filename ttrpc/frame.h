/* ttrpc framing (containerd/ttrpc PROTOCOL.md): every message is a 10-byte header
 * {uint32 BE data length, uint32 BE stream id, uint8 type, uint8 flags} followed by `length`
 * bytes of data.  Data is capped at 4 MiB (TTRPC_MAX_DATA); the first header byte is then
 * always 0 (reserved).  A frame over the cap is not an error of the connection: the receiver
 * discards its data and answers ResourceExhausted on its stream, as Go's ttrpc does, so the
 * parser here reports such a frame once (header only) and skips its bytes as they arrive,
 * never buffering more than the cap. */
#ifndef FERRY_TTRPC_FRAME_H
#define FERRY_TTRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define TTRPC_HDR_SIZE 10u
/* messageLengthMax of Go's ttrpc: the largest data length either side accepts or sends. */
#define TTRPC_MAX_DATA (4u << 20)

/* Message types. */
enum ttrpc_msg_type {
	TTRPC_MSG_REQUEST = 0x1,  /* starts a stream (client to server) */
	TTRPC_MSG_RESPONSE = 0x2, /* final message of a stream, with a status (server to client) */
	TTRPC_MSG_DATA = 0x3,     /* stream data, either direction */
};

/* Flags.  Request: REMOTE_CLOSED (non-unary, the client sends no more data) or REMOTE_OPEN
 * (non-unary, data follows); none means unary.  Data: REMOTE_CLOSED (the sender's last
 * frame on this stream); NO_DATA (0x4, not in PROTOCOL.md but sent by Go's client and server:
 * the frame carries no message, e.g. an empty close-send). */
#define TTRPC_FLAG_REMOTE_CLOSED 0x1u
#define TTRPC_FLAG_REMOTE_OPEN   0x2u
#define TTRPC_FLAG_NO_DATA       0x4u

struct ttrpc_hdr {
	uint32_t length; /* data bytes after the header */
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_hdr_encode(const struct ttrpc_hdr *h, uint8_t out[TTRPC_HDR_SIZE]);
void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_SIZE], struct ttrpc_hdr *h);

/* "request", "response", "data" or "unknown". */
const char *ttrpc_msg_type_name(uint8_t type);

/* Incremental frame parser over a connection's input buffer.  Every header is acceptable
 * (unknown types and flags are the caller's business), so parsing never fails. */
struct ttrpc_framer {
	uint32_t max;  /* data cap; frames above it are reported oversized and skipped */
	uint64_t skip; /* data bytes of an oversized frame still to discard */
};

struct ttrpc_frame {
	struct ttrpc_hdr h;
	const uint8_t *data; /* h.length bytes, or NULL when oversized */
	bool oversized;      /* h.length > max: data is being discarded */
};

/* max 0 means TTRPC_MAX_DATA. */
void ttrpc_framer_init(struct ttrpc_framer *f, uint32_t max);

/* Take the next frame from the front of `in`, consuming it.  Returns 1 with *fr filled: a
 * whole frame (fr->data points into `in` and stays valid until the next reserve/append on
 * `in`), or an oversized frame's header (its data is then consumed by later calls, as it
 * arrives, without being returned).  Returns 0 when more bytes are needed (everything
 * consumable was consumed). */
int ttrpc_framer_next(struct ttrpc_framer *f, struct buf *in, struct ttrpc_frame *fr);

/* True while an oversized frame's data is still being skipped. */
bool ttrpc_framer_skipping(const struct ttrpc_framer *f);

/* Reserve room for a frame with `len` data bytes at the end of `out`, write its header and
 * return where the data goes (the caller writes exactly `len` bytes there, then calls
 * buf_commit(out, TTRPC_HDR_SIZE + len)).  Returns NULL with -EMSGSIZE in `e` ("message length
 * N exceeds maximum message size of 4194304", Go's wording) when len > TTRPC_MAX_DATA; nothing
 * is reserved then. */
uint8_t *ttrpc_frame_begin(struct buf *out, uint32_t stream_id, uint8_t type, uint8_t flags,
                           size_t len, struct err *e);

#endif
