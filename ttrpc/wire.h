/* ttrpc messages on the wire: encoding Request, Response and Data frames straight into a
 * connection's output buffer (the inner message is packed in place, never copied), and
 * decoding bytes from a peer with bounded cost.
 *
 * Every decode first walks the bytes against the message descriptor (ttrpc_msg_check):
 * truncation, groups and invalid wire types, nesting deeper than TTRPC_MAX_DEPTH (protobuf-c
 * recurses without a limit) and invalid UTF-8 in string fields (protobuf-c does not check it;
 * Go's protobuf rejects it) are refused with an error naming the message and field.  Only
 * then does protobuf-c unpack, through an allocator that refuses to spend more than
 * ttrpc_decode_budget(n) bytes on an n-byte input, so one frame (at most TTRPC_MAX_DATA)
 * costs at most 64 KiB + 8 times its size in decoded memory. */
#ifndef FERRY_TTRPC_WIRE_H
#define FERRY_TTRPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/buf.h"
#include "common/err.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"

/* Deepest nesting of message fields a decode accepts (the top-level message is depth 0). */
#define TTRPC_MAX_DEPTH 64
/* Decoded-memory budget: TTRPC_DECODE_BASE + TTRPC_DECODE_FACTOR * input bytes (each
 * allocation counted with 16 bytes of allocator overhead). */
#define TTRPC_DECODE_BASE   (64u << 10)
#define TTRPC_DECODE_FACTOR 8u

/* Method kinds, for struct ttrpc_method (server) and ttrpc_client_stream (0: unary). */
#define TTRPC_STREAMING_CLIENT 0x1u /* the client sends a stream of input messages */
#define TTRPC_STREAMING_SERVER 0x2u /* the server sends a stream of output messages */

/* One metadata entry (ttrpc.KeyValue); a key may repeat. */
struct ttrpc_kv {
	const char *key;
	const char *value;
};

size_t ttrpc_decode_budget(size_t input_len);

/* True when p[0..n) is valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as Go's utf8.Valid. */
bool ttrpc_utf8_valid(const char *p, size_t n);

/* Walk an encoded message of type `d` (see the file comment).  Returns 0, or -EBADMSG with
 * `e` naming the message, the field path and the fault. */
int ttrpc_msg_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, struct err *e);

/* Check, then unpack n bytes into a new message of type `d`, owned by the caller (free with
 * ttrpc_msg_free).  NULL with `e`: -EBADMSG (malformed, see ttrpc_msg_check; or refused by
 * protobuf-c: a wire type that does not match the field, a missing proto2 required field) or
 * -EMSGSIZE (the decode would cost more than the budget). */
ProtobufCMessage *ttrpc_msg_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                                   struct err *e);
/* NULL-safe. */
void ttrpc_msg_free(ProtobufCMessage *m);

/* The data of a Request frame / a Response frame, decoded as ttrpc_msg_unpack does. */
Ttrpc__Request *ttrpc_request_decode(const uint8_t *p, size_t n, struct err *e);
Ttrpc__Response *ttrpc_response_decode(const uint8_t *p, size_t n, struct err *e);

/* What a Request carries.  payload NULL (or a message that packs to 0 bytes) sends no
 * payload field; timeout_nano 0 sends none. */
struct ttrpc_request_out {
	const char *service;
	const char *method;
	const ProtobufCMessage *payload;
	int64_t timeout_nano;
	const struct ttrpc_kv *metadata;
	size_t n_metadata;
};

/* Append one whole frame to `out`.  Each returns 0, or -EMSGSIZE with `e` when the frame's
 * data would exceed TTRPC_MAX_DATA (Go's "message length N exceeds maximum message size of
 * 4194304"); nothing is appended then.
 *
 * Request (type 1) with `flags` (0 unary, TTRPC_FLAG_REMOTE_OPEN / _CLOSED for streams).
 * Strings must be valid UTF-8 (the caller's contract; Go peers reject others). */
int ttrpc_wire_put_request(struct buf *out, uint32_t stream_id, uint8_t flags,
                           const struct ttrpc_request_out *rq, struct err *e);
/* Response (type 2): google.rpc.Status {code, message, details} (always present, as Go
 * sends it, even for OK) and the payload (omitted when NULL or empty). */
int ttrpc_wire_put_response(struct buf *out, uint32_t stream_id, int code, const char *message,
                            size_t n_details, Google__Protobuf__Any *const *details,
                            const ProtobufCMessage *payload, struct err *e);
/* Data (type 3) with `flags`; msg NULL sends no data and adds TTRPC_FLAG_NO_DATA. */
int ttrpc_wire_put_data(struct buf *out, uint32_t stream_id, uint8_t flags,
                        const ProtobufCMessage *msg, struct err *e);

#endif
