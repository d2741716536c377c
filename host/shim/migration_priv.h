/* Internals of the migration controller shared by its files: migration.c (the object,
 * the call queue, statuses, sessions, Subscribe, Cleanup, the task guard), mig_source.c
 * (PrepareAndExportSandbox), mig_dest.c (ImportSandbox, PatchResourcePaths, PrepareSandbox)
 * and mig_transfer.c (CreateDuplicateSocket, TransferSandbox, FinalizeSandbox, Cancel).
 *
 * mig_calls.c holds the entry points, which copy an RPC's arguments into a call and queue it.
 * A call is one RPC waiting in the queue or being served: `busy` is the call whose turn it is
 * (hcsshim's mutex); a Cancel waiting for the sandbox leaves its turn and sits in `cancel`.
 * Sandbox verbs are started through tickets: a ticket carries the continuation and outlives
 * the controller, so a completion arriving after migration_free is ignored; the session
 * generation lets the background transfer ignore completions from a session that ended. */
#ifndef FERRY_HOST_SHIM_MIGRATION_PRIV_H
#define FERRY_HOST_SHIM_MIGRATION_PRIV_H

#include <ev.h>

#include "common/reenter.h"
#include "host/shim/migration.h"

enum mig_verb {
	MIG_VERB_PREPARE_EXPORT,
	MIG_VERB_PREPARE_SOURCE,
	MIG_VERB_EXPORT,
	MIG_VERB_IMPORT,
	MIG_VERB_PATCH,
	MIG_VERB_PREPARE_DEST,
	MIG_VERB_REGISTER_SOCKET,
	MIG_VERB_TRANSFER,
	MIG_VERB_FINALIZE,
	MIG_VERB_CANCEL,
	MIG_VERB_CLEANUP,
	MIG_VERB_SUBSCRIBE,
	MIG_VERB_COUNT,
};

struct migration;
struct mig_call;
typedef void (*mig_k_fn)(struct migration *m, struct mig_call *c, int status, const struct err *e);

struct mig_call {
	struct mig_call *next;
	enum mig_verb verb;
	const char *prefix; /* the service's wrapping of this call's errors */
	char *prefix_buf;   /* when the prefix names something (PatchResourcePaths) */
	union {
		migration_done_fn done;
		migration_export_fn export_done;
		migration_subscribe_fn subscribe_done;
	} cb;
	void *arg;
	struct mig_status st;

	/* arguments (owned copies) */
	char *session_id;
	struct vmm_mig_options opts;
	char *sandbox_id;
	char *type_url;
	uint8_t *bytes; /* ImportSandbox config / CreateDuplicateSocket protocol_info */
	size_t len;
	bool has_bytes;
	int64_t timeout_ns;
	int action;
	struct migration_patch_req *patch; /* deep copy, in `arena` */
	struct mig_notify_sub_ops sub_ops;
	void *sub_ud;
	void **arena;
	size_t n_arena;

	/* results and progress */
	char *out_type_url;
	uint8_t *out_value;
	size_t out_len;
	struct mig_notify_sub *out_sub;
	size_t cont;      /* PatchResourcePaths: the container being patched */
	mig_k_fn abort_k; /* what follows the destination's abort */
};

/* An imported container on the destination. */
struct mig_cont {
	char *source_id; /* its id on the source */
	char *pod_id;    /* its pod's current id (renamed when the sandbox container is patched) */
	char *id;        /* its id here once patched */
	bool patched;
};

struct mig_ticket;

struct migration {
	struct ev_loop *loop;
	struct migration_config cfg;
	struct migration_socket_ops socket;
	struct reenter re;
	ev_timer kick;

	struct mig_call *queue, *queue_tail;
	struct mig_call *busy;   /* the call whose turn it is */
	struct mig_call *cancel; /* a Cancel waiting for the sandbox's cancel */
	struct mig_ticket *tickets;

	/* the session */
	enum mig_state state;
	uint64_t generation; /* bumped when a session begins and ends */
	char *session_id;    /* "" when idle */
	char *sandbox_id;    /* destination */
	enum vmm_origin origin;
	struct mig_notify *log;
	int sock;             /* registered and not yet handed to the sandbox, else -1 */
	bool sock_registered; /* a socket was registered in this session */
	ev_timer sock_wait;   /* TransferSandbox waiting for the socket */
	int64_t sock_wait_ns;
	bool transfer_requested;
	bool transfer_running;      /* mig_start/mig_transfer outstanding at the sandbox */
	struct mig_call *cancel_ok; /* a Cancel that succeeded, completed when the transfer ends */
	bool aborted;               /* destination: the sandbox's abort ran */
	struct mig_cont *conts;
	size_t n_conts;
};

/* ---- continuations of sandbox verbs (mig_k_fn above) ---- */
typedef void (*mig_k_save_fn)(struct migration *m, struct mig_call *c, int status,
                              const struct err *e, const char *type_url, const uint8_t *value,
                              size_t len);
typedef void (*mig_k_import_fn)(struct migration *m, struct mig_call *c, int status,
                                const struct err *e, const struct migration_container *conts,
                                size_t n);

/* A ticket for one sandbox verb; pass it as the cookie with the matching trampoline
 * (migration_sb_done / _save / _import).  If the verb fails at once, migration_ticket_now
 * runs the continuation with its error. */
struct mig_ticket *migration_ticket(struct migration *m, struct mig_call *c, mig_k_fn k);
struct mig_ticket *migration_ticket_save(struct migration *m, struct mig_call *c, mig_k_save_fn k);
struct mig_ticket *migration_ticket_import(struct migration *m, struct mig_call *c,
                                           mig_k_import_fn k);
void migration_ticket_now(struct mig_ticket *t, int status, const struct err *e);
void migration_sb_done(void *cookie, int status, const struct err *e);
void migration_sb_save(void *cookie, int status, const struct err *e, const char *type_url,
                       const uint8_t *value, size_t len);
void migration_sb_import(void *cookie, int status, const struct err *e,
                         const struct migration_container *conts, size_t n);

/* Start sandbox verb `verb` with a plain continuation k: the sandbox, the verb's own
 * arguments, then the trampoline, the ticket and an error. */
#define MIG_SB_CALL(m, c, k, verb, ...)                                                            \
	do {                                                                                       \
		struct mig_ticket *t_ = migration_ticket((m), (c), (k));                           \
		struct err e_;                                                                     \
		err_clear(&e_);                                                                    \
		int r_ =                                                                           \
		    (m)->cfg.ops->verb((m)->cfg.sb, ##__VA_ARGS__, migration_sb_done, t_, &e_);    \
		if (r_ < 0)                                                                        \
			migration_ticket_now(t_, r_, &e_);                                         \
	} while (0)

/* ---- queueing a call (mig_calls.c builds them) ---- */
void migration_enqueue(struct migration *m, struct mig_call *c);

/* ---- ending a call ---- */
/* Cancel gives up its turn while the sandbox cancels (hcsshim releases its lock then). */
void migration_call_detach(struct migration *m, struct mig_call *c);
/* Complete c with OK / with code and a message (the call's prefix and errdefs' class suffix
 * are added).  The call is freed; the next queued call gets its turn. */
void migration_call_ok(struct migration *m, struct mig_call *c);
void migration_call_fail(struct migration *m, struct mig_call *c, enum mig_code code,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Complete c with a sandbox failure: code from the errno, "<what>: <e's message>". */
void migration_call_fail_sb(struct migration *m, struct mig_call *c, int status,
                            const struct err *e, const char *what);

/* Fail c unless its session id is the active one (hcsshim's check; "" matches an idle
 * controller).  Returns true when it matches. */
bool migration_session_check(struct migration *m, struct mig_call *c);

/* Go's %q of s into buf (quotes included), truncated to fit; returns buf. */
#define MIG_QUOTE_MAX 200
const char *migration_quote(char *buf, const char *s);

/* Begin a session (state unchanged: the caller sets it) / end it (back to Idle). */
void migration_session_begin(struct migration *m, const char *session_id, enum vmm_origin origin);
void migration_session_end(struct migration *m);

/* "Source" / "Destination" (hcsshim's MigrationOrigin strings). */
const char *migration_origin_name(enum vmm_origin o);

/* ---- the verbs' starts, by file ---- */
void mig_source_prepare(struct migration *m, struct mig_call *c);
void mig_source_export(struct migration *m, struct mig_call *c);
void mig_dest_import(struct migration *m, struct mig_call *c);
void mig_dest_patch(struct migration *m, struct mig_call *c);
void mig_dest_prepare(struct migration *m, struct mig_call *c);
void mig_transfer_register(struct migration *m, struct mig_call *c);
void mig_transfer_start(struct migration *m, struct mig_call *c);
void mig_transfer_finalize(struct migration *m, struct mig_call *c);
void mig_transfer_cancel(struct migration *m, struct mig_call *c);
/* Set up the socket-wait timer (migration_new). */
void mig_transfer_init_timer(struct migration *m);
/* Stop waiting for the socket and close one not yet handed over (Cancel, Cleanup, free). */
void mig_transfer_release_socket(struct migration *m);

/* The destination's abort, once per session; k runs when it is done (status 0 when it had
 * already run). */
void mig_dest_abort(struct migration *m, struct mig_call *c, mig_k_fn k);

#endif
