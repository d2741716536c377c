/* Linked stdio streams: stdio that survives the move (docs/stdio-resume.md).
 *
 * A stream of a relay (guest/relay.h) *linked* to a hub with its vsock port owns its
 * connection: when it is lost (error, reset, or the host's EOF before the stream ended) the
 * stream re-dials the same port on the hub's address, at once and then with back-off (1, 2,
 * 4 .. 100 ms), until it is finished or relay_stop_redial is called.  Dials wait while the hub
 * is closed (the bridge is down or not yet renegotiated) and all start at once when it opens,
 * so re-attaching is event-driven.  In RESUME mode (both sides offered FerryStdioResume in the
 * current negotiation) every connection starts with HELLO / READY and carries 8-byte ACKs back
 * (bridge/resume.h wire format): output streams retain every unacknowledged byte (up to
 * RESUME_SENDER_CAP; the process is back-pressured beyond) and resume exactly where the host
 * says; the stdin stream acknowledges what it wrote into the process (every RESUME_ACK_BYTES
 * or 5 ms).  An output stream is finished only when the host acknowledged the final offset
 * and closed.  In PLAIN mode (hcsshim host) output streams keep the last RESUME_FALLBACK_TAIL
 * bytes sent and send them again after a re-dial; stdin EOF ends the stream as before.
 * Unlinked streams behave as guest/relay.h describes (relay_stream_on_conn_lost).  Everything
 * here runs on the relays' loop; nothing blocks. */
#ifndef FERRY_GUEST_RELAY_HUB_H
#define FERRY_GUEST_RELAY_HUB_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/vsock.h"
#include "guest/relay.h"

#define RELAY_REDIAL_MAX_MS 100 /* re-dial back-off cap */

/* Memory of linked output streams (every stream of a process the host started).
 * Retained bytes: each stream's ring starts at RESUME_RING_MIN (16 KiB, always granted) and
 * doubles while the process keeps it full, up to RESUME_SENDER_CAP (1 MiB); the growth comes
 * out of this budget shared by every stream of the hub.  When it is spent, a stream whose ring
 * is full stops reading its pipe until the host acknowledges (or, in plain mode, takes) bytes:
 * the process blocks in write(2), nothing is dropped.  Empty rings are released while the
 * budget is more than half used.  8 MiB: eight streams at full speed (one saturates a
 * connection with 1 MiB), and ferry-gcs stays in the low megabytes with thousands of
 * processes whose host stopped acknowledging (issue 7: 40 such processes held 42.9 MB).
 * Pipes: stdout/stderr pipes are deepened to RELAY_PIPE_SIZE (fewer, larger reads: ~1.8x
 * relay throughput) while the pipe budget allows; the others keep the kernel's 64 KiB. */
#define RELAY_RETAIN_BUDGET (8u * 1024u * 1024u)
#define RELAY_PIPE_SIZE     (1024u * 1024u)
#define RELAY_PIPE_BUDGET   (16u * RELAY_PIPE_SIZE)

enum relay_mode { RELAY_MODE_PLAIN = 0, RELAY_MODE_RESUME = 1 };

struct relay_hub;

/* A hub dialling stdio ports on `addr` (copied).  Starts closed, in PLAIN mode. */
struct relay_hub *relay_hub_new(struct ev_loop *loop, const struct vsock_addr *addr);
/* Unlink every stream (they keep their current connection and behave as unlinked from now
 * on) and free.  NULL-safe. */
void relay_hub_free(struct relay_hub *h);
struct session_auth; /* bridge/session.h */
/* The bridge was negotiated with `mode` and (resume) the session `auth` (copied; HELLOs carry
 * its proof when auth->on): connections dialled from now on use them; every stream waiting
 * for a connection dials now. */
void relay_hub_open(struct relay_hub *h, enum relay_mode mode, const struct session_auth *auth);
/* The bridge is gone: no dial starts until relay_hub_open; dials and handshakes in progress
 * are abandoned (they start again on open).  Established connections are kept. */
void relay_hub_close(struct relay_hub *h);
/* Wake (the host changed): drop every stdio connection of every linked stream; they re-dial
 * as above. */
void relay_hub_cut(struct relay_hub *h);
bool relay_hub_is_open(const struct relay_hub *h);

struct relay_hub_stats {
	unsigned streams;  /* linked streams not finished */
	unsigned attached; /* ... with an established connection (handshake done) */
};
void relay_hub_stats(const struct relay_hub *h, struct relay_hub_stats *st);

/* Link the streams of `r` that have a connection and a non-zero port in ports[] (indexed by
 * enum relay_which) to `h`.  In RESUME mode the first HELLO (flag FIRST) is sent at once on
 * the current connection.  Call right after relay_new_*, before the loop runs again. */
void relay_link(struct relay *r, struct relay_hub *h, const uint32_t ports[3]);
/* Give up re-dialling (container shutdown/delete): a linked stream without a connection
 * finishes now, and one that loses its connection later finishes then. */
void relay_stop_redial(struct relay *r);

#endif
