/* Host side of the GCS bridge: the asynchronous client ferry-shim and ferryctl use to drive a
 * guest agent (ferry-gcs or hcsshim's Linux GCS).  It listens on the bridge port before the
 * guest starts, accepts exactly one connection, negotiates protocol version 4, and then offers
 * the container RPCs (create, start, shutdown, delete, process list, modify settings) and the
 * container-exit notification.  Processes (exec, stdio, wait, signal) live in host/process.h
 * and use this client.  Everything runs on one libev loop; no call blocks.
 * Wire facts: shared/spec/gcs-bridge.md §1.3, §2.3-2.4, §3.3, §4, §5.2, §7.4-7.6. */
#ifndef FERRY_HOST_GCS_CLIENT_H
#define FERRY_HOST_GCS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <jansson.h>

#include "bridge/msg.h"
#include "common/err.h"

struct gcs_client;
struct vsock_addr; /* common/vsock.h */

/* Outcome of one RPC, handed to completion callbacks (valid only during the callback).
 * status 0: success.  status -EREMOTEIO: the guest answered with a failure HRESULT (`hresult`,
 * err.msg holds the guest's ErrorMessage).  Any other negative errno: local or transport
 * failure (bridge closed: -ECONNRESET, timeout: -ETIMEDOUT, bad response: -EBADMSG), with
 * hresult 0.  Shutdown treats 0xC037010E (system not found) as success, like the Go host. */
struct gcs_result {
	int status;
	int32_t hresult;
	struct err err;
};

typedef void (*gcs_done_fn)(struct gcs_client *c, const struct gcs_result *r, void *ud);

/* Capabilities from the NegotiateProtocol response (§3.3). */
struct gcs_caps {
	uint32_t version;              /* always 4 once negotiated */
	char runtime_os_type[32];      /* as sent ("Linux"); checked case-insensitively */
	bool send_host_create_message; /* cold start: host creates/starts the null container */
	bool send_host_start_message;
	bool hv_socket_config_on_startup;
	uint32_t schema_major,
	    schema_minor; /* highest SupportedSchemaVersions entry, 0.0 if none */
	bool namespace_add_request_supported;
	bool signal_process_supported;
	bool dump_stacks_supported;
	bool delete_container_state_supported;
	bool ferry_stdio_resume; /* the guest answered "FerryStdioResume" to our offer: every
	                            stdio connection of this negotiation uses the resume
	                            handshake (docs/stdio-resume.md §2) */
};

struct gcs_client_ops {
	/* Negotiation finished (status 0, caps available) or the connection could not be set up
	 * (accept timeout, bad negotiate response...).  Called once. */
	void (*on_ready)(struct gcs_client *c, int status, const struct err *e, void *ud);
	/* A container registered by gcs_client_create_container exited (the guest's
	 * notification; `type` is "GracefulExit", "ForcedExit", "UnexpectedExit"...).  The
	 * registration is removed before the call.  May be NULL. */
	void (*on_container_exit)(struct gcs_client *c, const char *container_id, const char *type,
	                          void *ud);
	/* The bridge died (protocol error, transport failure, guest gone).  Pending calls have
	 * already completed with an error.  Called at most once; may call gcs_client_free. */
	void (*on_close)(struct gcs_client *c, const struct err *why, void *ud);
	/* A re-dialled bridge (after gcs_client_cut + gcs_client_relisten, or the first
	 * connection of a client that adopted state) was accepted and renegotiated (status 0),
	 * or that failed.  Calls that were in flight are kept across it.  May be NULL. */
	void (*on_reconnect)(struct gcs_client *c, int status, const struct err *e, void *ud);
};

struct gcs_client_config {
	const char *addr;      /* transport address, e.g. "hybrid:/run/x/v.sock", "vsock:3" */
	int accept_timeout_ms; /* 0: 120000 (GCSConnectionTimeout) */
	int rpc_timeout_ms;    /* 0: 300000 (bridge.Timeout); WaitForProcess never times out */
	bool cold_start;       /* true: honour SendHostCreateMessage (false after migration) */
	bool no_stdio_resume;  /* do not offer FerryStdioResume (hcsshim host behaviour) */
	/* Offer FerryStdioResume without a session (no secret, no challenge): no proof is asked
	 * of re-dials, HELLOs carry none, and the guest opens no wake port.  For measuring what
	 * the session costs (tests/bench/reconnect.c); never for a guest others can reach. */
	bool no_session_auth;
	/* How long after the ExecuteProcess response the guest may take to dial each stdio
	 * port of the process (it dials before answering, so this only covers the host loop
	 * getting to the accept): past it the process fails with -ETIMEDOUT naming the process
	 * and the port.  0: GCS_STDIO_DIAL_TIMEOUT_MS. */
	int stdio_dial_timeout_ms;
};
/* Default of stdio_dial_timeout_ms: generous for a loaded machine, finite so that a guest that
 * never dials cannot hang the host (issue 7: ferryctl hung 85 s and counting). */
#define GCS_STDIO_DIAL_TIMEOUT_MS 10000

/* Parse cfg->addr, listen on the bridge port 0x40000000 and arm the accept on `loop`.  Call
 * this BEFORE starting the guest.  The connection is accepted once (the listener is then
 * closed), negotiated (Min=Max=4; Version must be 4, RuntimeOsType "linux" case-insensitively,
 * GuestDefinedCapabilities present), the null container created/started if the guest asks,
 * and ops->on_ready reports the outcome.  `ops` is copied; `ud` is passed to every callback.
 * Returns NULL with `e` filled on a bad address or listen failure. */
struct gcs_client *gcs_client_new(struct ev_loop *loop, const struct gcs_client_config *cfg,
                                  const struct gcs_client_ops *ops, void *ud, struct err *e);

/* Stop everything: close the bridge and listeners, free processes still attached (without
 * calling their callbacks) and drop pending calls silently.  NULL-safe.  Safe from inside any
 * callback of this client (the free is deferred until the callback returns). */
void gcs_client_free(struct gcs_client *c);

struct ev_loop *gcs_client_loop(const struct gcs_client *c);
/* The parsed transport address (for process stdio listeners); points into the client. */
const struct vsock_addr *gcs_client_addr(const struct gcs_client *c);
/* NULL until negotiated (and when setting up the connection failed); stays valid after a
 * close. */
const struct gcs_caps *gcs_client_caps(const struct gcs_client *c);
bool gcs_client_is_ready(const struct gcs_client *c);
/* The stdio first-dial timeout in ms (the config's, or its default). */
int gcs_client_stdio_dial_timeout_ms(const struct gcs_client *c);

/* Typed call path (bridge/msg.h codecs): send `rpc` with the request struct `req` of kind
 * `req_kind` (borrowed; every request struct starts with struct bridge_req_base, whose
 * container_id is set to `container_id` for the encoding) and decode the response as
 * `resp_kind` (its struct starts with struct bridge_resp_base).  The callback gets the
 * decoded response (borrowed, valid during the callback; NULL unless status is 0 or
 * -EREMOTEIO).  A response that does not decode kills the bridge (-EBADMSG), as in the Go
 * host.  `timeout_ms`: 0 = the client default, -1 = none.  *id_out (may be NULL) gets the
 * bridge id.  Returns 0 or a negative errno (-ENOTCONN before negotiation or after close). */
typedef void (*gcs_msg_fn)(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                           void *ud);
int gcs_client_call_msg(struct gcs_client *c, uint32_t rpc, const char *container_id,
                        enum bridge_msg_kind req_kind, const void *req,
                        enum bridge_msg_kind resp_kind, int timeout_ms, gcs_msg_fn done, void *ud,
                        uint64_t *id_out, struct err *e);

/* Adopt the outstanding WaitForProcess `id` of a previous host (migration destination or
 * rollback): its late response is decoded as a WaitForProcess response and handed to
 * `done`.  Works before the bridge is connected.  -EEXIST if the id is outstanding here. */
int gcs_client_preregister_wait(struct gcs_client *c, uint64_t id, gcs_msg_fn done, void *ud,
                                struct err *e);

/* Turn outstanding call `id` into an orphan: its owner's callback will not run, but the call
 * stays outstanding (so its late response is dropped quietly here, and it is exported as an
 * orphan for the next host, unlike gcs_client_cancel).  Used when a re-subscribed
 * WaitForProcess supersedes an adopted one.  0, or -ENOENT. */
int gcs_client_orphan_call(struct gcs_client *c, uint64_t id);

/* The bridge is alive (not closed, not failed): a call lost with the connection in migrating
 * mode can be sent again after the next renegotiation. */
bool gcs_client_resumable(const struct gcs_client *c);

/* Ids of every call outstanding on this client (malloc'd array, *n entries). */
uint64_t *gcs_client_outstanding_ids(struct gcs_client *c, size_t *n);

/* Low-level escape hatch for RPCs without a typed struct here (DumpStacks, benchmarks):
 * `body` (borrowed, may be NULL) is sent as is with ContainerId/ActivityId added when absent;
 * the response's base is decoded with bridge/msg.h and the whole response object is handed
 * over (NULL on failure; borrowed, valid during the callback). */
typedef void (*gcs_raw_fn)(struct gcs_client *c, const struct gcs_result *r, json_t *resp,
                           void *ud);
int gcs_client_call(struct gcs_client *c, uint32_t rpc, const char *container_id, json_t *body,
                    int timeout_ms, gcs_raw_fn done, void *ud, uint64_t *id_out, struct err *e);
/* Forget a pending call (its callback will not run; a late response is dropped quietly). */
void gcs_client_cancel(struct gcs_client *c, uint64_t id);

/* The wait table (§4.5): containers whose exit notification this host expects.  A
 * notification for an id not registered kills the bridge, as in the Go host.
 * gcs_client_create_container registers automatically; a migration destination registers
 * the containers it adopts.  register: -EEXIST if present, -EINVAL for a bad id. */
int gcs_client_register_container(struct gcs_client *c, const char *id, struct err *e);
bool gcs_client_unregister_container(struct gcs_client *c, const char *id);
bool gcs_client_container_registered(struct gcs_client *c, const char *id);
/* Copies of the registered ids (malloc'd array of malloc'd strings; *n gets the count). */
char **gcs_client_registered_containers(struct gcs_client *c, size_t *n);

/* Migration bookkeeping (§2.3, §1.3): both counters can only be raised; setting a lower value
 * fails with -EINVAL. */
uint32_t gcs_client_next_stdio_port(const struct gcs_client *c);
int gcs_client_set_next_stdio_port(struct gcs_client *c, uint32_t port, struct err *e);
/* Allocate the next stdio port (used by process.c). */
uint32_t gcs_client_alloc_stdio_port(struct gcs_client *c);
uint64_t gcs_client_next_bridge_id(const struct gcs_client *c);
int gcs_client_set_next_bridge_id(struct gcs_client *c, uint64_t id, struct err *e);

/* Short name of a known HRESULT ("timeout", "not found", ...) or "hresult". */
const char *gcs_hresult_name(int32_t hr);

/* ---- migration (docs/stdio-resume.md, shared/spec/hcsshim-lm.md §7) ---- */

/* Migrating mode: a lost bridge connection parks the client (calls kept) instead of killing
 * it; gcs_client_cut turns it on. */
void gcs_client_set_migrating(struct gcs_client *c, bool on);
/* The stdio resume handshake is in use on the current negotiation. */
bool gcs_client_stdio_resume(const struct gcs_client *c);
struct session_auth; /* bridge/session.h */
/* The session secret the guest holds (for the migration state): true and the 32 bytes in
 * `out` once a ferry guest accepted it (or it was adopted), false otherwise. */
bool gcs_client_session_secret(const struct gcs_client *c, uint8_t out[32]);
/* The session of the current negotiation, for stdio HELLO proofs (auth->on false without a
 * session). */
void gcs_client_stdio_auth(const struct gcs_client *c, struct session_auth *auth);
/* Sessions (docs/bridge.md "Sessions"): a client draws a secret at creation and hands it to
 * the guest in its first NegotiateProtocol ("Ferry":{"Session"}); once the guest accepted it
 * (a ferry guest answering FerrySessionProof), every later connection of that guest must prove
 * it: while the client waits for a re-dial it accepts one connection at a time, negotiates on
 * probation (bridge_client_probation: no frame but the answer is taken) and refuses, with one
 * log line, a connection that cannot prove the secret within GCS_CANDIDATE_TIMEOUT_MS, then
 * takes the next one from the backlog.  A plain hcsshim guest never learns of any of this. */
#define GCS_CANDIDATE_TIMEOUT_MS 2000
/* Drop every connection at once: the bridge first (calls kept, migrating mode on), then every
 * stdio connection and listener of every process.  Nothing is lost: the state stays (ports,
 * wait ids, offsets, unacknowledged stdin) for gcs_client_export_state or a rollback with
 * gcs_client_relisten.  No callback runs.  Returns 0 or -ENOTCONN if the bridge is dead. */
int gcs_client_cut(struct gcs_client *c, struct err *e);
/* Rollback (the source takes over again) or a destination that cut itself: listen on the
 * bridge port and on every stdio port again; the guest's re-dial is accepted and
 * renegotiated (ops->on_reconnect), stdio streams resume from this host's own offsets. */
int gcs_client_relisten(struct gcs_client *c, struct err *e);
/* Wake the guest so it notices the host changed (docs/stdio-resume.md §4): connect to its
 * wake port GCS_WAKE_PORT (hybrid: the unix socket PATH.guest_<port>), read its challenge,
 * answer with the session's proof and close.  Call after the new host listens, not from a loop
 * callback: it blocks up to GCS_WAKE_TIMEOUT_MS.  -ENOTSUP without a session (a plain guest
 * has no wake port); -ETIMEDOUT / -EPROTO when the challenge does not come or is malformed. */
#define GCS_WAKE_TIMEOUT_MS 500
#define GCS_WAKE_PORT       0x3FFFFFFFu
int gcs_client_wake_guest(struct gcs_client *c, struct err *e);

/* Objects attached to a client (host/process.c) so gcs_client_free can release them and the
 * migration verbs reach them. */
enum gcs_link_kind { GCS_LINK_OTHER = 0, GCS_LINK_PROCESS };
struct gcs_client_link {
	struct gcs_client_link *prev, *next;
	enum gcs_link_kind kind;
	void (*on_client_free)(struct gcs_client_link *l); /* must unlink and free its owner */
	/* Optional hooks: the bridge was (re)negotiated (`reconnect`: not the first connection
	 * of this client, or state was adopted); gcs_client_cut; gcs_client_relisten. */
	void (*on_negotiated)(struct gcs_client_link *l, bool reconnect);
	void (*on_cut)(struct gcs_client_link *l);
	int (*on_relisten)(struct gcs_client_link *l, struct err *e);
};
void gcs_client_link_add(struct gcs_client *c, struct gcs_client_link *l);
void gcs_client_link_remove(struct gcs_client *c, struct gcs_client_link *l);
/* Iterate: first/next return NULL at the end (do not add or remove links while iterating). */
struct gcs_client_link *gcs_client_link_first(struct gcs_client *c);
struct gcs_client_link *gcs_client_link_next(struct gcs_client *c, struct gcs_client_link *l);

/* The container RPCs (create, start, shutdown, delete, modify, process list). */
#include "host/gcs_container.h"
/* Whole-client migration state: export, serialise, adopt. */
#include "host/gcs_state.h"

#endif
