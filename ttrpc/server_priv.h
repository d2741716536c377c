/* Internals shared by the server's connection half (server.c: listeners, connections, frame
 * dispatch, shutdown) and its call half (server_call.c: the ttrpc_call_* API, deadlines,
 * cancellation).  Not part of the library's interface. */
#ifndef FERRY_TTRPC_SERVER_PRIV_H
#define FERRY_TTRPC_SERVER_PRIV_H

#include "common/stream.h"
#include "ttrpc/frame.h"
#include "ttrpc/idmap.h"
#include "ttrpc/server.h"

struct reg {
	const struct ttrpc_service *svc;
	void *ud;
};

struct listener;

struct conn {
	struct conn *prev, *next; /* the server's list of live connections */
	struct ttrpc_server *s;
	struct stream *st;
	struct ttrpc_framer fr;
	struct ucred cred;
	struct ttrpc_idmap calls; /* stream id -> struct ttrpc_call, the calls in flight */
	uint32_t last_id;         /* highest Request stream id seen */
	bool refused;             /* peer check failed: answer PermissionDenied, then close */
	char *refuse_msg;
	ev_timer refuse_timer;
	bool finishing; /* close once the output queue has drained */
	bool dead;      /* fd closed; memory freed when the server's callbacks unwind */
	struct conn *dead_next;
};

struct ttrpc_server {
	struct ev_loop *loop;
	struct ttrpc_server_opts opts;
	uid_t euid;
	struct reg *regs;
	size_t n_regs;
	struct listener *listeners;
	struct conn *conns;
	struct conn *dead; /* killed connections waiting for depth 0 */
	int depth;         /* loop callbacks of this server on the stack */
	bool free_pending;
	bool shutting_down;
	bool done_pending;
	ev_timer grace;
	ev_timer done_timer;
	void (*done)(struct ttrpc_server *s, void *ud);
	void *done_ud;
	struct ttrpc_server_stats stats;
};

struct ttrpc_call {
	struct conn *c; /* NULL once detached (ended by the library) */
	struct ev_loop *loop;
	uint32_t id;
	const struct ttrpc_method *m;
	Ttrpc__Request *req; /* service, method and metadata strings (payload freed early) */
	struct ttrpc_kv *md;
	ProtobufCMessage *input;
	struct ucred peer;
	ev_timer deadline;
	bool timed;
	bool cancelled;
	bool remote_closed; /* the client sends no more messages */
	void (*on_cancel)(struct ttrpc_call *call, int code, void *ud);
	void *cancel_ud;
	struct ttrpc_call_recv recv;
	void *recv_ud;
	void (*on_drain)(struct ttrpc_call *call, void *ud);
	void *drain_ud;
};

/* Loop-callback bracket: a ttrpc_server_free or connection kill inside is deferred to the
 * outermost leave. */
void server_enter(struct ttrpc_server *s);
void server_leave(struct ttrpc_server *s);

/* Send a Response carrying only a status on stream `id` (not tied to a call). */
void conn_send_status(struct conn *c, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Flush what encoders appended to the connection's output and apply backpressure.  Returns
 * 0 or -EPIPE when the connection can no longer write. */
int conn_flush(struct conn *c, struct err *e);
/* A call left the connection's table: finish the connection if it is shutting down. */
void conn_call_gone(struct conn *c);

/* Create a call for a decoded Request and run its handler (server_call.c). */
void call_start(struct conn *c, uint32_t id, uint8_t flags, const struct reg *r,
                const struct ttrpc_method *m, Ttrpc__Request *req, ProtobufCMessage *input);
/* A Data frame for call `call`. */
void call_data(struct ttrpc_call *call, const struct ttrpc_frame *f);
/* End a call from the library: detach it, answer `code`/`msg` when `answer`, run its cancel
 * callback. */
void call_cancel(struct ttrpc_call *call, int code, bool answer, const char *msg);
/* Run the drain callbacks of a connection's calls. */
void call_drain_all(struct conn *c);

#endif
