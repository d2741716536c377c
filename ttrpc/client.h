/* The ttrpc client: calls on one connected stream socket (usually a unix socket to a
 * containerd shim, containerd itself or a ferry-shim), on a libev loop.
 *
 * Many calls can be in flight on one connection; each is a stream with an odd id (1, 3, 5,
 * ...), answered in any order.  Unary calls (ttrpc_client_call) end in one callback with a
 * status and, on success, the decoded reply.  Streaming calls (ttrpc_client_stream) deliver
 * every server message to on_msg and end with on_end; client and bidirectional streams send
 * with ttrpc_cstream_send and close their side with ttrpc_cstream_close_send (an empty Data
 * frame flagged remote-closed + no-data, as Go's client sends).
 *
 * Status rules: the server's google.rpc.Status is passed through (code, message, details).
 * The library itself ends calls with: DeadlineExceeded (opts.timeout_ns passed: the
 * timeout is also sent to the server as timeout_nano), ResourceExhausted (the answer frame
 * was over 4 MiB: discarded unbuffered, the connection lives on), Internal (an answer that
 * does not decode, or Data on a call without a server stream), Unavailable (the connection
 * was lost) and Cancelled (ttrpc_client_close).  Frames for unknown or forgotten streams
 * are ignored, as Go's client does.
 *
 * Single-threaded, on the loop's thread.  Callbacks may call anything here, including
 * ttrpc_client_free (deferred until they return). */
#ifndef FERRY_TTRPC_CLIENT_H
#define FERRY_TTRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <protobuf-c/protobuf-c.h>

#include "common/err.h"
#include "ttrpc/status.h"
#include "ttrpc/wire.h"

struct ttrpc_client;
struct ttrpc_cstream;

/* Options of one call; NULL means none. */
struct ttrpc_call_opts {
	int64_t timeout_ns; /* > 0: sent as timeout_nano and enforced here; 0: none */
	/* Sent as the Request's metadata, in this order.  Go servers look keys up in lower
	 * case (their MD.Get lowercases the key asked for, not the one received). */
	const struct ttrpc_kv *metadata;
	size_t n_metadata;
};

struct ttrpc_client_cbs {
	/* The connection is gone (peer EOF, I/O error, ttrpc_client_close); every call has been
	 * ended already.  Called once.  The client may be freed here. */
	void (*on_close)(struct ttrpc_client *cl, const struct err *why, void *ud);
};

/* Completion of a unary call, exactly once unless cancelled or the client freed first; never
 * from inside ttrpc_client_call.  st->code TTRPC_OK: `reply` is the decoded reply (of the
 * descriptor given to the call), otherwise NULL.  Both are valid only during the callback. */
typedef void (*ttrpc_reply_cb)(struct ttrpc_client *cl, const struct ttrpc_status *st,
                               const ProtobufCMessage *reply, void *ud);

/* A client on a connected stream socket; ownership of `fd` is taken in every case.  `cbs`
 * may be NULL and is copied.  NULL with `e` on failure. */
struct ttrpc_client *ttrpc_client_new(struct ev_loop *loop, int fd,
                                      const struct ttrpc_client_cbs *cbs, void *ud, struct err *e);

/* Connect to the unix socket at `path` (non-blocking connect; unix sockets connect at once or
 * fail).  Returns a connected, non-blocking, close-on-exec fd for ttrpc_client_new, or a
 * negative errno with `e` (-ENOENT: no such socket, -ECONNREFUSED: nobody listens, -EAGAIN:
 * the listener's backlog is full, retry later). */
int ttrpc_dial_unix(const char *path, struct err *e);

/* Close the connection and end every call with Cancelled "ttrpc: client closed", then
 * on_close.  Idempotent.  Callbacks run inside this call. */
void ttrpc_client_close(struct ttrpc_client *cl);

/* Close the connection and free the client.  Calls still in flight are dropped WITHOUT their
 * callbacks (call ttrpc_client_close first if their owners must hear).  NULL-safe; safe from
 * inside callbacks. */
void ttrpc_client_free(struct ttrpc_client *cl);

/* Start a unary call of service/method with `req` (NULL sends an empty payload) and decode
 * the reply with `reply_desc`.  `opts` may be NULL.  On success returns 0 and the stream id
 * in *id_out (may be NULL); `cb` follows later.  Returns a negative errno with `e`, and then
 * `cb` is never called: -EMSGSIZE (the Request would exceed 4 MiB: ResourceExhausted in gRPC
 * terms; nothing sent), -EPIPE (the connection is closed), -EOVERFLOW (stream ids used up:
 * open a new connection). */
int ttrpc_client_call(struct ttrpc_client *cl, const char *service, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
                      const struct ttrpc_call_opts *opts, ttrpc_reply_cb cb, void *ud,
                      uint32_t *id_out, struct err *e);

/* Forget unary call `id`: its callback will not run and a late answer is ignored.  ttrpc
 * has no reset frame, so the server is not told.  Returns 0 or -ENOENT. */
int ttrpc_client_cancel(struct ttrpc_client *cl, uint32_t id);

/* ---- streams ---- */

struct ttrpc_cstream_cbs {
	/* One message from the server (of reply_desc's type), valid during the callback. */
	void (*on_msg)(struct ttrpc_cstream *cs, const ProtobufCMessage *msg, void *ud);
	/* The stream ended: st->code TTRPC_OK when the server ended it normally.  Called once;
	 * the stream object is freed when this returns. */
	void (*on_end)(struct ttrpc_cstream *cs, const struct ttrpc_status *st, void *ud);
};

/* Open a stream to service/method.  `flags` says which sides stream (TTRPC_STREAMING_CLIENT,
 * TTRPC_STREAMING_SERVER of ttrpc/wire.h; at least one).  `req` is the input message of a
 * server-only stream (required then); for client streams it is an optional first message
 * (NULL: none; a message that encodes to nothing cannot travel in the Request, as in Go:
 * send it with ttrpc_cstream_send).  Returns the stream (owned by the library until on_end
 * returns or ttrpc_cstream_cancel) or NULL with `e` (errors as ttrpc_client_call; -EINVAL
 * for bad flags). */
struct ttrpc_cstream *ttrpc_client_stream(struct ttrpc_client *cl, const char *service,
                                          const char *method, unsigned flags,
                                          const ProtobufCMessage *req,
                                          const ProtobufCMessageDescriptor *reply_desc,
                                          const struct ttrpc_call_opts *opts,
                                          const struct ttrpc_cstream_cbs *cbs, void *ud,
                                          struct err *e);

/* Send one message on a client-streaming call.  0, or -EINVAL (not a client stream, or
 * closed for sending), -EMSGSIZE, -EPIPE with `e`. */
int ttrpc_cstream_send(struct ttrpc_cstream *cs, const ProtobufCMessage *msg, struct err *e);

/* No more messages from this side.  0, or -EINVAL (not a client stream, already closed),
 * -EPIPE with `e`. */
int ttrpc_cstream_close_send(struct ttrpc_cstream *cs, struct err *e);

/* Forget the stream: no more callbacks; later frames for it are ignored; the server is not
 * told (ttrpc has no reset).  Frees the stream. */
void ttrpc_cstream_cancel(struct ttrpc_cstream *cs);

uint32_t ttrpc_cstream_id(const struct ttrpc_cstream *cs);

/* Calls and streams in flight. */
size_t ttrpc_client_outstanding(const struct ttrpc_client *cl);
/* Bytes queued for the server and not yet taken by the kernel. */
size_t ttrpc_client_queued(const struct ttrpc_client *cl);
/* Frames received for streams that were not in flight (late answers of cancelled or
 * timed-out calls, or a confused server). */
uint64_t ttrpc_client_ignored_frames(const struct ttrpc_client *cl);
bool ttrpc_client_closed(const struct ttrpc_client *cl);

#endif
