/* The host (client) half of the GCS bridge.  A bridge_client owns the table of outstanding
 * calls and the id counter (int64, starts at 0, +1 per request sent) and is *attached* to one
 * transport connection at a time.  The separation is for live migration (gcs-bridge.md
 * §7.6): in migrating mode a lost connection only detaches the client and parks the
 * outstanding calls, and a re-dialled connection attached later completes them.  Outside
 * migrating mode any transport failure kills the bridge, as in the Go host.
 *
 * Receive rules (gcs-bridge.md §2): frames larger than BRIDGE_MAX_MSG or smaller than 16
 * bytes ("invalid message size"), a response with an id not outstanding ("unknown rpc
 * response id=N"), and any type other than a response or 0x30100101 are fatal for the
 * bridge.  Response payloads are delivered raw (bridge/msg.h parses them).
 *
 * Callbacks may free the client (the free is deferred until they return) and may issue new
 * calls. */
#ifndef FERRY_BRIDGE_CLIENT_H
#define FERRY_BRIDGE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "bridge/frame.h"
#include "bridge/proto.h"
#include "common/err.h"

/* Go host: bridgeFailureTimeout for synchronous RPCs. */
#define BRIDGE_DEFAULT_TIMEOUT_MS (5 * 60 * 1000)
/* Timeout arguments of bridge_client_call_ex. */
#define BRIDGE_TIMEOUT_DEFAULT (-1) /* the client's default, none for WaitForProcess */
#define BRIDGE_TIMEOUT_NONE    0

struct bridge_client;

/* Completion of one call, invoked exactly once per successful bridge_client_call (unless the
 * call is cancelled or the client freed first).  status 0: `json`/`len` is the response
 * payload (not NUL-terminated, valid only during the callback) and `why` is NULL.  status <
 * 0: json is NULL, len 0 and `why` explains: -ETIMEDOUT (this call's timeout expired; the
 * bridge is then killed), -ECONNRESET (bridge closed: transport lost while not migrating,
 * protocol error, bridge_client_close, or the request had not been fully written when the
 * connection was lost in migrating mode). */
typedef void (*bridge_call_cb)(struct bridge_client *cl, int status, const char *json, size_t len,
                               const struct err *why, void *ud);

struct bridge_client_cbs {
	/* A container notification (type 0x30100101); payload raw, valid during the call. */
	void (*on_notify)(struct bridge_client *cl, const char *json, size_t len, void *ud);
	/* The bridge is dead (terminal): every outstanding call has already been failed.
	 * Called once.  The client can still be freed; calls and attach fail with -ECONNRESET. */
	void (*on_close)(struct bridge_client *cl, const struct err *why, void *ud);
	/* Migrating mode only: the transport was lost and the client is parked, calls kept,
	 * waiting for bridge_client_attach.  Optional. */
	void (*on_detach)(struct bridge_client *cl, const struct err *why, void *ud);
};

/* A new, detached client.  `cbs` is copied; `ud` is passed to its callbacks. */
struct bridge_client *bridge_client_new(struct ev_loop *loop, const struct bridge_client_cbs *cbs,
                                        void *ud);

/* Close the connection and free the client.  NULL-safe.  Outstanding calls are dropped
 * WITHOUT invoking their callbacks (call bridge_client_close first if their owners must be
 * told).  Safe from inside the client's callbacks. */
void bridge_client_free(struct bridge_client *cl);

/* Kill the bridge: close the connection, fail every outstanding call with -ECONNRESET and
 * `why`'s message, then on_close(why).  Idempotent (later calls do nothing).  May invoke
 * callbacks from inside this call. */
void bridge_client_close(struct bridge_client *cl, const struct err *why);

/* Attach a connected socket (ownership of `fd` is taken in every case).  If a connection is
 * already attached it is closed first (like the Go host's ResumeOnConn): calls whose request
 * was fully written stay outstanding; any call whose request bytes were still queued is
 * failed with -ECONNRESET (their callbacks run inside this call).  Returns 0,
 * -ECONNRESET if the bridge is closed, or another negative errno from setting up the fd. */
int bridge_client_attach(struct bridge_client *cl, int fd, struct err *e);

/* Drop the current connection (if any) without killing the bridge; outstanding calls are
 * kept as in migrating mode (unwritten requests fail with -ECONNRESET, their callbacks
 * running inside this call).  No on_detach. */
void bridge_client_detach(struct bridge_client *cl);

bool bridge_client_attached(const struct bridge_client *cl);
bool bridge_client_closed(const struct bridge_client *cl);

/* Migrating mode: transport failure (EOF, read/write error) only detaches and parks (then
 * on_detach).  Protocol violations and timeouts stay fatal. */
void bridge_client_set_migrating(struct bridge_client *cl, bool migrating);

/* Default timeout for calls made with BRIDGE_TIMEOUT_DEFAULT (except WaitForProcess, which
 * never times out by default); 0 disables.  Initially BRIDGE_DEFAULT_TIMEOUT_MS. */
void bridge_client_set_default_timeout(struct bridge_client *cl, unsigned timeout_ms);

/* Send request `rpc` with payload `json` (copied) and id = the next id, stored in *id_out
 * (may be NULL).  `cb` is later called exactly once (see bridge_call_cb); never from inside
 * this function.  Returns 0, or a negative errno with `e` and then `cb` is never called:
 * -ENOTCONN (detached), -ECONNRESET (bridge closed), -EMSGSIZE (frame over 4 GiB).
 * The id is consumed only on success. */
int bridge_client_call(struct bridge_client *cl, enum bridge_rpc rpc, const void *json, size_t len,
                       bridge_call_cb cb, void *ud, int64_t *id_out, struct err *e);
/* Same with an explicit timeout: BRIDGE_TIMEOUT_DEFAULT, BRIDGE_TIMEOUT_NONE, or > 0 ms.
 * A timeout is fatal for the bridge (Go host: "message timeout"). */
int bridge_client_call_ex(struct bridge_client *cl, enum bridge_rpc rpc, const void *json,
                          size_t len, int timeout_ms, bridge_call_cb cb, void *ud, int64_t *id_out,
                          struct err *e);

/* Forget outstanding call `id`: its callback is never invoked.  Its id is remembered in a
 * small set (the last 256 cancelled ids) so that a late response is dropped quietly instead
 * of being fatal (unlike the Go host, which would kill the bridge).  Returns 0 or -ENOENT. */
int bridge_client_cancel(struct bridge_client *cl, int64_t id);

/* The id the next request will carry. */
int64_t bridge_client_next_id(const struct bridge_client *cl);
/* Raise the next id to at least n (never lowers it). */
void bridge_client_seed_next_id(struct bridge_client *cl, int64_t n);

/* Adopt id `id`, outstanding on another host (migration source), so its late response is
 * routed to `cb` (no timeout).  The next id is raised above it.  Returns 0, -EEXIST if the
 * id is already outstanding, -ECONNRESET if the bridge is closed. */
int bridge_client_preregister(struct bridge_client *cl, int64_t id, bridge_call_cb cb, void *ud,
                              struct err *e);

/* Probation (a re-dialled connection that must first prove who it is, docs/bridge.md
 * "Sessions"): until bridge_client_trust, the attached connection may deliver nothing but the
 * response to call `id` (the NegotiateProtocol carrying the challenge); any other frame, and
 * any transport loss, drops the connection without killing the bridge (calls kept, then
 * on_detach), so an impostor's fake responses and notifications are never dispatched.  The
 * response to `id` is dispatched as usual; its callback decides: bridge_client_trust, or
 * bridge_client_detach to refuse.  Attaching a connection ends any probation. */
void bridge_client_probation(struct bridge_client *cl, int64_t id);
void bridge_client_trust(struct bridge_client *cl);

/* Number of outstanding calls. */
size_t bridge_client_outstanding(const struct bridge_client *cl);

#endif
