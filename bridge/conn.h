/* The guest (server) half of a GCS bridge connection: frames requests off a common/stream,
 * hands each one to on_request, and sends responses (in any order, possibly later) and
 * container notifications back through the stream's write queue, never blocking.  One
 * bridge_conn lives for one transport connection; on reconnect (gcs-bridge.md §7) the guest
 * makes a new one and keeps its own state (protocol version, pending notifications) outside.
 * The host half is bridge/client.h. */
#ifndef FERRY_BRIDGE_CONN_H
#define FERRY_BRIDGE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "bridge/frame.h"
#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/err.h"

/* The guest's receive cap, header included.  The Go guest has none.  The largest request
 * hcsshim sends is a Create whose ContainerConfig carries the OCI spec as an AnyInString
 * document: the decoder takes such documents up to BRIDGE_MSG_MAX_DOCUMENT (4 MiB), and quoted
 * inside the outer JSON string every '"' and '\\' doubles, so up to twice that, plus 64 KiB
 * for the rest of the request (ids, settings, the other fields).  Everything else hcsshim
 * sends is far smaller.  A frame over it ends the connection at its header, before a byte of
 * the body is buffered (the agent then dials again). */
#define BRIDGE_GUEST_MAX_MSG (2u * BRIDGE_MSG_MAX_DOCUMENT + BRIDGE_MAX_MSG)

/* The guest stops taking requests while more than this waits to be written to the host (a
 * host that does not read): the frames already received stay buffered, reading resumes when
 * the queue has drained.  1 MiB is 16 responses at the host's 64 KiB cap; answers of requests
 * already in progress (waits, notifications) may still be queued beyond it, and are bounded
 * by the number of requests in flight (guest/gcs.h GCS_MAX_REQUESTS).  Before the bound,
 * 10,000 DumpStacks to a host that never read left 301 MiB resident. */
#define BRIDGE_CONN_OUT_MAX (1024u * 1024u)

struct bridge_conn;

struct bridge_conn_cbs {
	/* One request frame (type 0x1xxxxxxx).  `json` points at the payload (len bytes, not
	 * NUL-terminated, possibly empty), valid only during the callback.  Respond now or
	 * later with bridge_conn_respond (same type and id), in any order. */
	void (*on_request)(struct bridge_conn *c, const struct bridge_hdr *h, const char *json,
	                   size_t len, void *ud);
	/* The connection is finished: peer EOF (why->code == -ECONNRESET, "bridge closed by
	 * peer"), a transport error, or a protocol violation from the host (frame size < 16
	 * -EBADMSG, over BRIDGE_GUEST_MAX_MSG -EMSGSIZE, a response/notification/unknown
	 * message-type frame -EPROTO).  Called at most once, never from inside a bridge_conn_*
	 * call.  The conn does no more I/O; the callee usually frees it (allowed here). */
	void (*on_close)(struct bridge_conn *c, const struct err *why, void *ud);
};

/* Serve the bridge on `fd` (a connected socket).  Takes ownership of the fd in every case.
 * `cbs` is copied.  Returns NULL with `e` filled on failure. */
struct bridge_conn *bridge_conn_new(struct ev_loop *loop, int fd, const struct bridge_conn_cbs *cbs,
                                    void *ud, struct err *e);

/* Close the fd (unsent output is dropped) and free.  NULL-safe; no callback is invoked; safe
 * from inside this conn's callbacks. */
void bridge_conn_free(struct bridge_conn *c);

/* Queue the response to request {req_type, id}: wire type bridge_response_type(req_type),
 * the same id, `json` copied.  Returns 0; -EMSGSIZE when the frame would exceed
 * BRIDGE_MAX_MSG (64 KiB, the host's cap; nothing is sent, the caller should send a small
 * error response instead); -EPIPE when the connection is closed/failed (the response is
 * lost, as with the Go guest). */
int bridge_conn_respond(struct bridge_conn *c, uint32_t req_type, uint64_t id, const void *json,
                        size_t len, struct err *e);

/* Queue a container notification: type BRIDGE_NOTIFY_CONTAINER (0x30100101), id 0.  Same
 * returns as bridge_conn_respond. */
int bridge_conn_notify(struct bridge_conn *c, const void *json, size_t len, struct err *e);

/* Bytes queued for the host and not yet written (for diagnostics and backpressure). */
size_t bridge_conn_pending(const struct bridge_conn *c);

#endif
