/* The ttrpc server: serves registered services on unix sockets (or any connected stream
 * socket handed in), on a libev loop.
 *
 * Services are data: a struct ttrpc_service names the service as it appears on the wire
 * ("containerd.task.v2.Task", "Migration", ...) and lists its methods, each with its
 * protobuf-c input and output descriptors, its kind (unary, client, server or bidirectional
 * stream) and a handler.  Adding a service is adding a table.
 *
 * A call (struct ttrpc_call) is one stream.  Its handler may answer at once or later, from
 * any later loop callback (the Migration service answers after VMM callbacks): every call
 * ends with exactly one of ttrpc_call_respond / ttrpc_call_fail / ttrpc_call_fail_status,
 * which sends the end of the stream and frees the call.  The library may end a call first —
 * its deadline (the client's timeout_nano) passed, the connection was lost, the server shuts
 * down — and then tells the handler through the call's cancel callback; the call object stays
 * valid (detached) until the handler still ends it, which then sends nothing and returns
 * -ECANCELED.  So a handler never holds a dangling call.
 *
 * Protocol behaviour (containerd/ttrpc, as Go's server): client stream ids must be odd and
 * increasing (InvalidArgument otherwise); an undecodable Request is InvalidArgument "unmarshal
 * request error"; an unknown service or method is Unimplemented ("service NAME", "method
 * NAME"); a frame over 4 MiB is discarded without buffering and answered ResourceExhausted
 * on its stream; unknown message types are ignored; a payload that does not decode is
 * Internal "ttrpc: error unmarshalling payload" (ResourceExhausted when it would cost more
 * than its memory budget, see wire.h).  Answers whose encoding would exceed 4 MiB are replaced
 * by ResourceExhausted (Go 1.1.1 clients crash on oversized frames, so none is ever sent).
 * A successful server stream ends with a Data frame flagged remote-closed (+ no-data), a
 * failed one with a Response carrying the status, as Go does.
 *
 * Security: ttrpc_server_listen_unix creates its socket with mode 0600 (race-free: the mode is
 * set before bind) and every accepted connection's SO_PEERCRED is checked (by default: the
 * server's own effective uid or root; configurable).  A refused peer's first request is
 * answered PermissionDenied with the reason, then the connection is closed; the refusal is
 * logged (log_warn) unless the owner takes the report (opts.on_refused).
 *
 * Memory: a connection buffers at most one frame (4 MiB, its input buffer then keeps twice
 * that capacity), decodes each message within its budget (wire.h), runs at most
 * max_streams calls at once, and stops reading while more than write_highwater bytes of
 * answers wait for a slow client.
 *
 * Single-threaded: every function must be called on the loop's thread.  Callbacks may call
 * any function here, including ttrpc_server_free (deferred until the callback returns). */
#ifndef FERRY_TTRPC_SERVER_H
#define FERRY_TTRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <protobuf-c/protobuf-c.h>

#include "common/err.h"
#include "ttrpc/status.h"
#include "ttrpc/wire.h"

struct ttrpc_server;
struct ttrpc_call;

#define TTRPC_DEFAULT_MAX_STREAMS 1024u
#define TTRPC_DEFAULT_HIGHWATER   (8u << 20)

/* A method's handler, called once per call when its Request arrives.  `req` is the decoded
 * input message (of the method's input type), owned by the call and valid until the call
 * ends; NULL for client-streaming methods, whose input messages arrive through
 * ttrpc_call_set_recv (set it before returning).  `ud` is the one given to
 * ttrpc_server_register. */
typedef void (*ttrpc_handler)(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud);

struct ttrpc_method {
	const char *name; /* as on the wire, e.g. "Echo" */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	ttrpc_handler handler;
	unsigned flags; /* TTRPC_STREAMING_* */
};

struct ttrpc_service {
	const char *name; /* full wire name, e.g. "ttrpc.echo.Echo" */
	const struct ttrpc_method *methods;
	size_t n_methods;
};

struct ttrpc_server_opts {
	/* Whether a connecting peer (SO_PEERCRED) may talk to the server.  NULL: the server's
	 * effective uid or root (uid 0). */
	bool (*peer_allowed)(const struct ucred *peer, void *ud);
	/* A peer was refused (why: "refused connection from pid=.. uid=.. gid=..: ...").  NULL:
	 * the library logs why with log_warn. */
	void (*on_refused)(struct ttrpc_server *s, const struct ucred *peer, const char *why,
	                   void *ud);
	void *ud;               /* for the two callbacks above */
	unsigned max_streams;   /* calls in flight per connection; 0: TTRPC_DEFAULT_MAX_STREAMS */
	size_t write_highwater; /* 0: TTRPC_DEFAULT_HIGHWATER */
};

struct ttrpc_server_stats {
	uint64_t conns_accepted;  /* connections served (peer allowed) */
	uint64_t conns_refused;   /* connections refused by the peer check */
	uint64_t calls_started;   /* handlers invoked */
	uint64_t calls_rejected;  /* Requests answered by the library (unknown method, bad ids,
	                             bad payload, too many streams, over the cap, shutting down) */
	uint64_t calls_cancelled; /* calls ended by the library (deadline, loss, shutdown) */
	size_t max_in_flight;     /* most calls in flight at once on one connection */
};

/* A server on `loop` (which must outlive it).  `opts` may be NULL; it is copied. */
struct ttrpc_server *ttrpc_server_new(struct ev_loop *loop, const struct ttrpc_server_opts *opts);

/* Register a service; `svc` (and its methods) must outlive the server, `ud` is passed to its
 * handlers.  Returns 0, -EEXIST (a service of that name is registered, or a method name
 * repeats) or -EINVAL (empty name, missing descriptor or handler, unknown flags), with `e`. */
int ttrpc_server_register(struct ttrpc_server *s, const struct ttrpc_service *svc, void *ud,
                          struct err *e);

/* Listen on a unix socket at `path`: created with mode 0600 (a stale socket there is
 * replaced; any other file is an error: -EEXIST), unlinked again by shutdown or free.
 * Returns 0 or a negative errno with `e`. */
int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, struct err *e);

/* Serve one already-connected stream socket (e.g. from socketpair or an inherited fd).
 * Ownership of `fd` is taken in every case; the peer check applies as for accepted
 * connections.  Returns 0 or a negative errno with `e`. */
int ttrpc_server_serve_fd(struct ttrpc_server *s, int fd, struct err *e);

/* Graceful shutdown: stop listening (unlinking socket paths), answer new Requests with
 * Unavailable "ttrpc: server shutting down", let calls in flight finish for up to grace_s
 * seconds, then cancel the rest (each answered Unavailable, its cancel callback run), send
 * what is queued and close every connection.  `done` (may be NULL) is then called once, from
 * the loop, never from inside this function; the server may be freed there.  Idempotent
 * (a second call changes nothing). */
void ttrpc_server_shutdown(struct ttrpc_server *s, double grace_s,
                           void (*done)(struct ttrpc_server *s, void *ud), void *ud);

/* Close every listener and connection at once and free the server.  No callback is invoked
 * and nothing more is sent; calls still held by handlers are detached (their end returns
 * -ECANCELED).  NULL-safe; safe from inside callbacks (then deferred until they return). */
void ttrpc_server_free(struct ttrpc_server *s);

void ttrpc_server_stats(const struct ttrpc_server *s, struct ttrpc_server_stats *out);
/* Number of open connections / calls in flight (not counting detached calls). */
size_t ttrpc_server_connections(const struct ttrpc_server *s);
size_t ttrpc_server_calls(const struct ttrpc_server *s);

/* ---- calls ---- */

/* End the call successfully.  Unary and client-streaming methods: a Response with status OK
 * and `reply` (required, of the method's output type).  Server-streaming methods: `reply` (if
 * not NULL) is the last message, then the stream ends (Data frame, remote-closed).  Returns
 * 0; -ECANCELED when the library had already ended the call (nothing sent); -EMSGSIZE when
 * the reply does not fit in 4 MiB (ResourceExhausted was sent instead); -EINVAL when `reply`
 * is missing or of the wrong type (Internal was sent instead).  The call is freed in every
 * case. */
int ttrpc_call_respond(struct ttrpc_call *call, const ProtobufCMessage *reply);

/* End the call with a status `code` (not TTRPC_OK) and a printf-style message (invalid UTF-8
 * is replaced, the message cut at 64 KiB).  Same returns as ttrpc_call_respond. */
int ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same with google.rpc.Status details (Any messages, copied into the frame). */
int ttrpc_call_fail_status(struct ttrpc_call *call, int code, const char *message, size_t n_details,
                           Google__Protobuf__Any *const *details);
/* End the call with the status standing for a ferry error: ttrpc_code_from_errno(e->code)
 * and e->msg. */
int ttrpc_call_fail_err(struct ttrpc_call *call, const struct err *e);

/* Server-streaming methods: send one message of the method's output type.  Returns 0;
 * -ECANCELED (the call was ended by the library), -EMSGSIZE (does not fit in 4 MiB; nothing
 * sent, the call goes on), -EINVAL (not a server-streaming method, wrong type), with `e`.
 * Never blocks: the bytes are queued; watch ttrpc_call_queued / the drain callback to pace
 * a fast producer. */
int ttrpc_call_send(struct ttrpc_call *call, const ProtobufCMessage *msg, struct err *e);

/* Client-streaming methods: where the client's messages go.  on_msg gets each one (of the
 * method's input type, valid during the callback), on_end once when the client has closed
 * its side (the handler then usually responds).  Neither is called after the call ended. */
struct ttrpc_call_recv {
	void (*on_msg)(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud);
	void (*on_end)(struct ttrpc_call *call, void *ud);
};
void ttrpc_call_set_recv(struct ttrpc_call *call, const struct ttrpc_call_recv *cbs, void *ud);

/* Called once if the library ends the call before the handler does: `code` is
 * TTRPC_DEADLINE_EXCEEDED (answered so), TTRPC_CANCELLED (connection lost: nothing could be
 * answered), TTRPC_UNAVAILABLE (server shutdown: answered so), TTRPC_RESOURCE_EXHAUSTED or
 * TTRPC_INVALID_ARGUMENT (the client broke the stream: an oversized or unexpected Data
 * frame; answered so).  The handler must still end the call (e.g. ttrpc_call_fail from
 * inside this callback) to free it. */
void ttrpc_call_set_cancel(struct ttrpc_call *call,
                           void (*on_cancel)(struct ttrpc_call *call, int code, void *ud),
                           void *ud);

/* Called when the connection's output queue has drained (for pacing ttrpc_call_send). */
void ttrpc_call_set_drain(struct ttrpc_call *call,
                          void (*on_drain)(struct ttrpc_call *call, void *ud), void *ud);

/* Bytes queued on the call's connection and not yet taken by the kernel (0 once detached). */
size_t ttrpc_call_queued(const struct ttrpc_call *call);

/* True once the library ended the call (the cancel callback has been or is being run). */
bool ttrpc_call_cancelled(const struct ttrpc_call *call);

/* The Request's metadata in arrival order (*n entries), valid until the call ends. */
const struct ttrpc_kv *ttrpc_call_metadata(const struct ttrpc_call *call, size_t *n);
/* The first value of `key` (ASCII case-insensitive, as Go's MD.Get), or NULL. */
const char *ttrpc_call_metadata_get(const struct ttrpc_call *call, const char *key);

/* The Request's timeout_nano (0: none). */
int64_t ttrpc_call_timeout_ns(const struct ttrpc_call *call);
uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call);
const char *ttrpc_call_service(const struct ttrpc_call *call);
const char *ttrpc_call_method(const struct ttrpc_call *call);
/* The connection's peer credentials (SO_PEERCRED at accept). */
const struct ucred *ttrpc_call_peer(const struct ttrpc_call *call);

#endif
