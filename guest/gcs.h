/* ferry-gcs daemon context: the guest half of the GCS bridge.  It dials the host over the
 * configured transport, serves one bridge connection at a time (negotiation, dispatch by
 * (type, negotiated version), the per-RPC handlers), queues container-exit notifications
 * while disconnected and redials after a lost connection.  Everything runs on one libev
 * loop owned by the caller; there is no global state, so tests can build several. */
#ifndef FERRY_GUEST_GCS_H
#define FERRY_GUEST_GCS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct ev_loop;

/* Defaults (documented in `ferry-gcs --help`). */
#define GCS_DEFAULT_TRANSPORT "vsock:2"
#define GCS_DEFAULT_RUNTIME   "crun"
#define GCS_DEFAULT_ROOT      "/run/gcs"
#define GCS_DEFAULT_STATE_DIR "/run/ferry-gcs"

/* Redial back-off after a lost connection or a failed dial: 0 ms first, then doubling
 * from 1 ms, capped here. */
#define GCS_REDIAL_MAX_MS 100

/* Requests in progress at once (a WaitForProcess until the process exits; the others while the
 * runtime works).  Beyond it a request is answered at once with HR_FAIL "too many requests in
 * flight" (NegotiateProtocol is never refused; an infinite wait first supersedes the older
 * waits it replaces, so a host re-subscribing at the limit is not refused).  8192 is twice
 * the processes a host tracks in its migration state (GCS_STATE_MAX_PROCS, one infinite wait
 * each), leaving as much room for concurrent short requests; it bounds the requests' memory
 * (about 300 bytes each with their runtime wait: 2.5 MiB) and the responses they may queue
 * while no host is connected.  Before the cap, 100,000 waits on one process were all kept. */
#define GCS_MAX_REQUESTS 8192u

/* The wake port (docs/stdio-resume.md §4): any connection to it makes the agent close every
 * bridge and stdio connection and re-dial at once.  vsock: listened on VMADDR_CID_ANY;
 * hybrid:/unix: the guest-side listener "PATH.guest_<port>"; tcp: 0.0.0.0 on the port's
 * tcp mapping, if the tcp port rule gives it one. */
#define GCS_WAKE_PORT 0x3FFFFFFFu

struct gcs_options {
	const char *transport;      /* bridge address: "vsock:CID", "hybrid:PATH", "tcp:HOST" */
	const char *runtime_path;   /* OCI runtime binary (crun) */
	const char *root_dir;       /* /run/gcs: default bundle root (<root>/c/<id>) */
	const char *state_dir;      /* runtime bookkeeping (crun --root etc.) */
	bool v4;                    /* register the PvV4 handlers (hcsshim always passes -v4) */
	bool once;                  /* stop the loop after the first connection ends */
	bool no_poweroff;           /* null-id Shutdown* exits instead of powering off */
	unsigned long child_nofile; /* soft RLIMIT_NOFILE for processes the agent starts (the
	                               limit it had before raising its own); 0: inherit */
};

struct gcs;

/* Build the daemon on `loop` (borrowed; must outlive the gcs).  The strings in `opt` are
 * copied.  Nothing is dialed yet.  Returns NULL with `e` filled (e.g. a bad transport
 * address, or the runtime could not be set up). */
struct gcs *gcs_new(struct ev_loop *loop, const struct gcs_options *opt, struct err *e);

/* Stop every watcher, close the connection, free all state.  NULL-safe.  Must not be called
 * from inside one of the gcs's own callbacks. */
void gcs_free(struct gcs *g);

/* Arm the first dial (asynchronously, on the loop).  Returns 0 or a negative errno. */
int gcs_start(struct gcs *g, struct err *e);

/* Request an orderly stop: close the bridge, stop redialling; the loop then runs dry of gcs
 * watchers.  Safe from callbacks and signal watchers. */
void gcs_stop(struct gcs *g);

/* True once the daemon has stopped (after gcs_stop, a null-id Shutdown with no_poweroff,
 * or the first connection ending under `once`). */
bool gcs_finished(const struct gcs *g);

/* True when the host asked for a UVM power-off (null-id ShutdownGraceful/Forced) and the
 * caller should power the machine off after the loop returns (never set with no_poweroff). */
bool gcs_poweroff_requested(const struct gcs *g);

/* Dispatch table, exposed for unit tests: what a request of wire `type` gets when the
 * connection's protocol version is `pv` (GCS_PV_INVALID or GCS_PV_V4) and the daemon runs
 * with or without -v4.  Returns true when a handler is registered for the pair (then it is
 * the RPC `type & ~BRIDGE_MT_MASK`); false means HR_NOTIMPL with the message
 * "bridge: function not supported, header type: <name>". */
bool gcs_route(uint32_t type, uint32_t pv, bool v4);

#endif
