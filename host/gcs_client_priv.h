/* Internals shared by the host GCS client's files (not for other modules): gcs_client.c holds
 * the listener, negotiation, the call path and the wait table; gcs_migrate.c the migration
 * verbs (cut, relisten, wake, adopt, adopted waits) and the counters a destination seeds.
 * The structures are here because both files walk them. */
#ifndef FERRY_HOST_GCS_CLIENT_PRIV_H
#define FERRY_HOST_GCS_CLIENT_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "bridge/client.h"
#include "bridge/session.h"
#include "common/log.h"
#include "common/vsock.h"
#include "host/gcs_client.h"

/* ST_CUT: connections dropped by gcs_client_cut, state kept, nothing listening. */
enum client_state { ST_LISTENING, ST_NEGOTIATING, ST_READY, ST_FAILED, ST_CLOSED, ST_CUT };

/* One outstanding call: typed (resp_kind != BMSG_NONE, mdone) or raw (rdone). */
struct call {
	struct call *prev, *next;
	struct gcs_client *c;
	int64_t id;
	uint32_t rpc;
	enum bridge_msg_kind resp_kind;
	gcs_msg_fn mdone;
	gcs_raw_fn rdone;
	void *ud;
};

/* Wait table entry: a container this host created, waiting for its exit notification. */
struct wait_entry {
	struct wait_entry *next;
	char *id;
};

struct gcs_client {
	struct ev_loop *loop;
	struct vsock_addr addr;
	struct gcs_client_config cfg;
	struct gcs_client_ops ops;
	void *ud;
	int lfd;
	ev_io accept_w;
	ev_timer accept_timer;
	struct bridge_client *bc;
	enum client_state state;
	struct gcs_caps caps;
	uint32_t next_port;
	struct call *calls;
	struct wait_entry *waits;
	bool negotiated_once; /* a negotiation succeeded before: the next one is a reconnect */
	/* the session (bridge/session.h) */
	uint8_t secret[SESSION_SECRET_LEN];
	bool has_secret; /* drawn at creation or adopted */
	bool session;    /* the guest holds it: every (re)connection must prove it */
	uint8_t challenge[SESSION_NONCE_LEN]; /* of the current negotiation */
	bool challenged;                      /* ... which carried one */
	bool offered_session;                 /* ... which handed the secret over */
	bool auth_on;                         /* ... which established proofs for stdio */
	bool probation;                       /* a re-dial is negotiating on probation */
	uint64_t neg_id;                      /* its NegotiateProtocol */
	ev_timer cand_timer;                  /* GCS_CANDIDATE_TIMEOUT_MS */
	struct log_limit refused;
	bool adopted; /* state adopted from another host: links probe on negotiation */
	struct gcs_client_link links; /* list head (sentinel) */
	unsigned depth;
	bool free_pending;
};

/* gcs_client.c */
/* Callback nesting: gcs_client_free inside a callback is deferred until the outermost
 * leave, which returns true when the client is gone. */
void gcs_client_enter(struct gcs_client *c);
bool gcs_client_leave(struct gcs_client *c);
/* Completion of every call (a bridge_call_cb; ud is the struct call, freed here). */
void gcs_client_on_call_done(struct bridge_client *bc, int status, const char *json, size_t len,
                             const struct err *why, void *ud);
/* Put a call on c->calls (the bridge client already knows its id). */
void gcs_client_call_link(struct gcs_client *c, struct call *k);
/* Listen on the bridge port and arm the accept (state ST_LISTENING). */
int gcs_client_listen_bridge(struct gcs_client *c, struct err *e);

#endif
