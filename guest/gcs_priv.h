/* Internals shared by ferry-gcs's bridge modules (gcs.c: connection life cycle and dispatch;
 * handlers.c: container and process RPCs; settings.c: ModifySettings).  Not a public API:
 * only guest/ files include it.
 *
 * A request in progress is a struct gcs_req.  It is answered exactly once through
 * gcs_req_respond / gcs_req_fail, which also free it.  Requests live on the daemon's list so
 * that gcs_free can release those still waiting on the runtime (whose callbacks then never
 * run: rt_free is called first). */
#ifndef FERRY_GUEST_GCS_PRIV_H
#define FERRY_GUEST_GCS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "bridge/msg.h"
#include "bridge/session.h"
#include "common/guid.h"
#include "common/log.h"
#include "common/vsock.h"
#include "guest/gcs.h"
#include "guest/gcs_wake.h"
#include "guest/gcs_waits.h"

struct rt;
struct rt_wait;
struct relay_hub;

/* A container the host created (for notifications and DumpStacks). */
struct gcs_container {
	char *id;
	char activity_id[GUID_STR_LEN + 1]; /* from Create, echoed in the notification */
	char *bundle;
	struct gcs_container *next;
};

struct gcs_req {
	struct gcs *g;
	uint32_t type; /* request wire type */
	uint64_t id;
	char activity_id[GUID_STR_LEN + 1];
	uint64_t conn_gen;           /* the connection it arrived on */
	struct gcs_req *prev, *next; /* g->reqs */
	/* handler state */
	void (*cleanup)(struct gcs_req *r); /* frees the state below; may be NULL */
	void *state;
	struct rt_wait *wait;       /* WaitForProcess in progress */
	struct gcs_wait_link wlink; /* an infinite WaitForProcess: in g->waits */
};

/* A frame waiting for a negotiated connection (notification or late WaitForProcess
 * response), in one FIFO. */
struct gcs_pending {
	uint32_t type; /* 0 = notification */
	uint64_t id;
	char *json;
	size_t len;
	struct gcs_pending *next;
};

struct gcs {
	struct ev_loop *loop;
	struct gcs_options opt; /* strings owned (copies) */
	struct vsock_addr addr;
	struct rt *rt;

	struct bridge_conn *conn;
	uint32_t pv;       /* negotiated version of the current connection */
	uint64_t conn_gen; /* connections made so far */
	struct vsock_dialer *dial;
	ev_timer redial;
	int backoff_ms;
	unsigned dial_failures;

	bool stopping;
	bool finished;
	bool poweroff;

	struct gcs_req *reqs;
	unsigned n_reqs;
	struct gcs_waits waits;   /* infinite WaitForProcess requests by (container, pid) */
	struct log_limit cap_log; /* requests refused over GCS_MAX_REQUESTS */
	struct gcs_pending *pend_head, *pend_tail; /* FIFO, sent after negotiation */
	bool resume;           /* FerryStdioResume negotiated on the current connection */
	struct relay_hub *hub; /* stdio re-dial (guest/relay_hub.h) */
	/* the session (bridge/session.h): learnt from the first host that offered one */
	bool has_secret;
	uint8_t secret[SESSION_SECRET_LEN];
	struct gcs_wake *wake;         /* the wake port, listening once a session exists */
	struct sockaddr_storage local; /* local address of the last bridge connection (tcp) */
	uint64_t wakes;
	struct gcs_container *containers;
	uint64_t requests_served;
	long long started_ns;
};

/* ---- gcs.c ---- */

/* Answer `r` with the encoded struct of kind `k` (whose base.activity_id is filled from the
 * request here) and free r.  A response that does not fit the 64 KiB cap becomes an HR_FAIL
 * error response. */
void gcs_req_respond(struct gcs_req *r, enum bridge_msg_kind k, void *msg);
/* Answer `r` with an error response (Go-guest style) and free r. */
void gcs_req_fail(struct gcs_req *r, int32_t hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answer with a bare success base. */
void gcs_req_ok(struct gcs_req *r);
/* Free without answering (UVM shutdown). */
void gcs_req_drop(struct gcs_req *r);

/* Queue or send a container-exit notification. */
void gcs_notify_exit(struct gcs *g, const char *id, const char *type);

struct gcs_container *gcs_container_find(struct gcs *g, const char *id);
void gcs_container_add(struct gcs *g, const char *id, const char *activity_id, const char *bundle);
void gcs_container_remove(struct gcs *g, const char *id);

/* True for the null container id (UVM-level requests). */
bool gcs_is_null_id(const char *id);

/* ---- handlers.c: each takes the raw payload, decodes it and answers r ---- */
void gcs_handle_create(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_start(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_shutdown(struct gcs_req *r, const char *json, size_t len, bool graceful);
void gcs_handle_exec(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_wait(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_signal(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_resize(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_properties(struct gcs_req *r, const char *json, size_t len);
void gcs_handle_delete(struct gcs_req *r, const char *json, size_t len);
/* Split a command line with shell-word rules (quotes, backslashes); returns a NULL-terminated
 * malloc'd vector (free with gcs_argv_free) or NULL with `e` (-EINVAL: unterminated quote,
 * or empty). */
char **gcs_split_command_line(const char *s, struct err *e);
void gcs_argv_free(char **v);

/* ---- settings.c ---- */
void gcs_handle_modify(struct gcs_req *r, const char *json, size_t len);

/* Called by gcs.c when a null-id Shutdown arrives. */
void gcs_shutdown_uvm(struct gcs *g);

#endif
