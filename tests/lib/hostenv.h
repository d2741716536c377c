/* Host-side environment for integration tests and benchmarks that drive the real ferry-gcs
 * through the host GCS client (host/gcs_client.h): a temporary directory, a libev loop, a
 * client listening on `hybrid:<dir>/v.sock`, and $BUILD/ferry-gcs started as a child (killed
 * with the test: PR_SET_PDEATHSIG) that dials it, with the wait for the negotiation.  With
 * `containers` the process first enters a private mount namespace with a pure cgroup2 mount
 * and builds the busybox rootfs (tests/lib/testenv.h), so crun works in the agent.
 *
 * Unlike tests/lib/agent.h (raw frames, blocking, cmocka assertions) nothing here asserts:
 * failures come back as a negative errno with `e` filled, so benchmarks can use it too.
 * Everything runs on the environment's own loop. */
#ifndef FERRY_TESTS_HOSTENV_H
#define FERRY_TESTS_HOSTENV_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "host/gcs_client.h"

struct hostenv_config {
	const char *prefix;        /* temporary directory prefix (testenv_mkdtemp) */
	bool containers;           /* private cgroup2 namespace + rootfs (needs root) */
	const char *gcs_log_level; /* the agent's --log-level; NULL: "warn" */
	double ready_timeout_s;    /* wait for the negotiation; 0: 15 s */
	bool no_session_auth;      /* the client's no_session_auth (measurements) */
	/* Client callbacks (copied, may be NULL), called with `ud`.  on_ready also marks the
	 * environment ready (before it is called). */
	const struct gcs_client_ops *ops;
	void *ud;
};

struct hostenv {
	struct ev_loop *loop; /* owned */
	char *tmp;            /* the temporary directory (owned) */
	char addr[160];       /* "hybrid:<tmp>/v.sock" */
	const char *rootfs;   /* with containers: the busybox rootfs (static storage) */
	pid_t gcs_pid;        /* the agent, 0 when not running */
	struct gcs_client *c; /* the client (owned) */
	bool ready;           /* on_ready ran ... */
	int ready_status;     /* ... with this status */
	struct gcs_client_ops ops;
	void *ud;
};

/* Set everything up and run the loop until the agent negotiated.  0, or a negative errno with
 * `e` filled (-EPERM: containers asked for but not root; then nothing is left behind).  On
 * failure after the loop was created, hostenv_stop releases what was made. */
int hostenv_start(struct hostenv *h, const struct hostenv_config *cfg, struct err *e);
/* Free the client, stop the agent (SIGTERM, then SIGKILL after 2 s), destroy the loop and
 * remove the directory.  Safe on a zeroed or partly started environment; idempotent. */
void hostenv_stop(struct hostenv *h);

/* Run `loop` until *flag or timeout_s seconds passed (a guard timer); returns *flag. */
bool hostenv_run_until(struct ev_loop *loop, const bool *flag, double timeout_s);

/* Completion of a plain client RPC (gcs_done_fn): pass a struct hostenv_done as ud. */
struct hostenv_done {
	bool done;
	struct gcs_result r;
};
void hostenv_on_done(struct gcs_client *c, const struct gcs_result *r, void *ud);

#endif
