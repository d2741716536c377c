/* ferry-gcs's wake port (GCS_WAKE_PORT, docs/stdio-resume.md §4-§5): a host that took the
 * guest over connects to it so that the guest drops every connection and re-dials at once (a
 * TCP connection through QEMU user networking is not reset until the guest sends).  Anyone who
 * can reach the port could otherwise cut the session at will (issue 7: one connect dropped the
 * bridge, 2,565 pokes in 3 s caused 2,562 losses), so:
 *   - it is opened only once a host has negotiated a ferry session (the secret is known);
 *   - it is bound as narrowly as the transport allows: vsock peers must be the host (CID 2),
 *     unix peers our user; on tcp: it listens on the address the bridge connection came from,
 *     and takes connections only from the host's address;
 *   - a connection gets a challenge (bridge/session.h) and wakes the agent only if the
 *     session's proof comes back within GCS_WAKE_PROOF_TIMEOUT_MS;
 *   - at most GCS_WAKE_PENDING challenges are open at once and GCS_WAKE_RATE connections a
 *     second are looked at; the others are closed at once; refusals are logged rate-limited.
 * Runs on the agent's loop; never blocks. */
#ifndef FERRY_GUEST_GCS_WAKE_H
#define FERRY_GUEST_GCS_WAKE_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/vsock.h"

struct ev_loop;
struct gcs_wake;

#define GCS_WAKE_PROOF_TIMEOUT_MS 1000 /* the host answers in one round trip */
#define GCS_WAKE_PENDING          8    /* open challenges at once */
#define GCS_WAKE_RATE             64   /* connections looked at per second (burst as many) */

/* A proven wake: the host changed.  May free nothing of the wake object. */
typedef void (*gcs_wake_cb)(void *ud);

/* A wake port for the agent on transport `a` (copied); nothing listens yet. */
struct gcs_wake *gcs_wake_new(struct ev_loop *loop, const struct vsock_addr *a, gcs_wake_cb cb,
                              void *ud);
/* Stop, close everything, free.  NULL-safe. */
void gcs_wake_free(struct gcs_wake *w);
/* The session secret proofs are checked against (a new session replaces it). */
void gcs_wake_set_secret(struct gcs_wake *w, const uint8_t secret[32]);
/* Listen, once (later calls return 0).  `local` (may be NULL): the local address of the
 * bridge connection, where a tcp: listener binds.  0 or a negative errno. */
int gcs_wake_listen(struct gcs_wake *w, const struct sockaddr_storage *local, struct err *e);
/* Counters for DumpStacks. */
struct gcs_wake_stats {
	uint64_t wakes;   /* proven */
	uint64_t refused; /* connections that did not prove the secret, or over the rate */
};
void gcs_wake_stats(const struct gcs_wake *w, struct gcs_wake_stats *st);

#endif
