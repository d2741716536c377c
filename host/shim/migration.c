/* The migration controller's core: the object and its call queue (one call served at a time,
 * from a zero-delay timer, so no completion ever runs inside the call that queued it), the
 * tickets that carry sandbox completions back, gRPC statuses worded as hcsshim's service sends
 * them, session begin/end, Subscribe, Cleanup, the task guard and hcsshim's session id rule.
 * The entry points that queue calls are in mig_calls.c; the verbs in mig_source.c, mig_dest.c
 * and mig_transfer.c. */
#include "host/shim/migration.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "common/xalloc.h"
#include "host/shim/migration_priv.h"

/* ---- names and codes ---- */

static const char *const state_names[MIG_STATE_COUNT] = {
    "Idle",
    "SourcePrepared",
    "SourceExported",
    "DestinationImported",
    "DestinationPrepared",
    "SocketWaiting",
    "SocketReady",
    "Transferring",
    "TransferCompleted",
    "Finalized",
    "Cancelled",
    "Cancelling",
    "Failed",
};

const char *mig_state_name(enum mig_state s)
{
	return (unsigned)s < MIG_STATE_COUNT ? state_names[s] : "Unknown";
}

/* grpc-go's code names, and the text errdefs puts after a tagged error (ToGRPC keeps it in
 * the status message; errgrpc.ToNative strips it again on the client side). */
static const struct {
	const char *name;
	const char *suffix;
} codes[] = {
    [MIG_CODE_OK] = {"OK", NULL},
    [MIG_CODE_CANCELLED] = {"Canceled", "context canceled"},
    [MIG_CODE_UNKNOWN] = {"Unknown", NULL},
    [MIG_CODE_INVALID_ARGUMENT] = {"InvalidArgument", "invalid argument"},
    [MIG_CODE_DEADLINE_EXCEEDED] = {"DeadlineExceeded", "context deadline exceeded"},
    [MIG_CODE_NOT_FOUND] = {"NotFound", "not found"},
    [MIG_CODE_ALREADY_EXISTS] = {"AlreadyExists", "already exists"},
    [MIG_CODE_PERMISSION_DENIED] = {"PermissionDenied", "permission denied"},
    [MIG_CODE_RESOURCE_EXHAUSTED] = {"ResourceExhausted", "resource exhausted"},
    [MIG_CODE_FAILED_PRECONDITION] = {"FailedPrecondition", "failed precondition"},
    [MIG_CODE_ABORTED] = {"Aborted", "aborted"},
    [MIG_CODE_OUT_OF_RANGE] = {"OutOfRange", "out of range"},
    [MIG_CODE_UNIMPLEMENTED] = {"Unimplemented", "not implemented"},
    [MIG_CODE_INTERNAL] = {"Internal", "internal"},
    [MIG_CODE_UNAVAILABLE] = {"Unavailable", "unavailable"},
    [MIG_CODE_DATA_LOSS] = {"DataLoss", "data loss"},
    [MIG_CODE_UNAUTHENTICATED] = {"Unauthenticated", "unauthenticated"},
};

const char *mig_code_name(enum mig_code c)
{
	static __thread char buf[24];
	if ((unsigned)c < sizeof(codes) / sizeof(codes[0]))
		return codes[c].name;
	snprintf(buf, sizeof(buf), "Code(%d)", (int)c);
	return buf;
}

static const struct {
	int err;
	enum mig_code code;
} errno_codes[] = {
    {EINVAL, MIG_CODE_INVALID_ARGUMENT},
    {EBADMSG, MIG_CODE_INVALID_ARGUMENT},
    {EPROTO, MIG_CODE_INVALID_ARGUMENT},
    {EILSEQ, MIG_CODE_INVALID_ARGUMENT},
    {EOVERFLOW, MIG_CODE_INVALID_ARGUMENT},
    {EDOM, MIG_CODE_INVALID_ARGUMENT},
    {ENOENT, MIG_CODE_NOT_FOUND},
    {ESRCH, MIG_CODE_NOT_FOUND},
    {EEXIST, MIG_CODE_ALREADY_EXISTS},
    {EBUSY, MIG_CODE_FAILED_PRECONDITION},
    {ENOTSUP, MIG_CODE_FAILED_PRECONDITION},
    {EOPNOTSUPP, MIG_CODE_FAILED_PRECONDITION},
    {EALREADY, MIG_CODE_FAILED_PRECONDITION},
    {ESTALE, MIG_CODE_FAILED_PRECONDITION},
    {EPERM, MIG_CODE_PERMISSION_DENIED},
    {EACCES, MIG_CODE_PERMISSION_DENIED},
    {ENOMEM, MIG_CODE_RESOURCE_EXHAUSTED},
    {ENOSPC, MIG_CODE_RESOURCE_EXHAUSTED},
    {EMFILE, MIG_CODE_RESOURCE_EXHAUSTED},
    {ENFILE, MIG_CODE_RESOURCE_EXHAUSTED},
    {E2BIG, MIG_CODE_RESOURCE_EXHAUSTED},
    {EMSGSIZE, MIG_CODE_RESOURCE_EXHAUSTED},
    {ETIMEDOUT, MIG_CODE_DEADLINE_EXCEEDED},
    {ECANCELED, MIG_CODE_CANCELLED},
    {ENOSYS, MIG_CODE_UNIMPLEMENTED},
    {EPIPE, MIG_CODE_UNAVAILABLE},
    {ECONNRESET, MIG_CODE_UNAVAILABLE},
    {ECONNREFUSED, MIG_CODE_UNAVAILABLE},
    {ENOTCONN, MIG_CODE_UNAVAILABLE},
};

enum mig_code mig_code_from_errno(int neg_errno)
{
	int err = neg_errno < 0 ? -neg_errno : neg_errno;
	for (size_t i = 0; i < sizeof(errno_codes) / sizeof(errno_codes[0]); i++)
		if (errno_codes[i].err == err)
			return errno_codes[i].code;
	return MIG_CODE_UNKNOWN;
}

const char *migration_origin_name(enum vmm_origin o)
{
	switch (o) {
	case VMM_ORIGIN_SOURCE:
		return "Source";
	case VMM_ORIGIN_DESTINATION:
		return "Destination";
	default:
		return "";
	}
}

const char *migration_quote(char *buf, const char *s)
{
	size_t n = 0;
	buf[n++] = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof(esc), "\\%c", ch);
		else if (ch == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if (ch == '\t')
			snprintf(esc, sizeof(esc), "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", ch);
		else
			esc[0] = (char)ch, esc[1] = '\0';
		size_t l = strlen(esc);
		if (n + l + 5 > MIG_QUOTE_MAX) { /* room for `..."` and NUL */
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		memcpy(buf + n, esc, l);
		n += l;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

/* ---- calls ---- */

static void kick(struct migration *m)
{
	if (!ev_is_active(&m->kick)) {
		ev_timer_set(&m->kick, 0., 0.);
		ev_timer_start(m->loop, &m->kick);
	}
}

static void call_free(struct mig_call *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_arena; i++)
		free(c->arena[i]);
	free(c->arena);
	free(c->prefix_buf);
	free(c->session_id);
	free(c->sandbox_id);
	free(c->type_url);
	free(c->bytes);
	free(c->out_type_url);
	free(c->out_value);
	free(c);
}

/* What serves each verb when its turn comes (the dispatch table). */
static void serve_cleanup(struct migration *m, struct mig_call *c);
static void serve_subscribe(struct migration *m, struct mig_call *c);
static void (*const servers[MIG_VERB_COUNT])(struct migration *, struct mig_call *) = {
    [MIG_VERB_PREPARE_EXPORT] = mig_source_prepare,
    [MIG_VERB_PREPARE_SOURCE] = mig_source_prepare,
    [MIG_VERB_EXPORT] = mig_source_export,
    [MIG_VERB_IMPORT] = mig_dest_import,
    [MIG_VERB_PATCH] = mig_dest_patch,
    [MIG_VERB_PREPARE_DEST] = mig_dest_prepare,
    [MIG_VERB_REGISTER_SOCKET] = mig_transfer_register,
    [MIG_VERB_TRANSFER] = mig_transfer_start,
    [MIG_VERB_FINALIZE] = mig_transfer_finalize,
    [MIG_VERB_CANCEL] = mig_transfer_cancel,
    [MIG_VERB_CLEANUP] = serve_cleanup,
    [MIG_VERB_SUBSCRIBE] = serve_subscribe,
};

void migration_enqueue(struct migration *m, struct mig_call *c)
{
	if (m->queue_tail)
		m->queue_tail->next = c;
	else
		m->queue = c;
	m->queue_tail = c;
	kick(m);
}

static void destroy(struct migration *m);

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct migration *m = w->data;
	reenter_enter(&m->re);
	while (!m->busy && m->queue && !reenter_dying(&m->re)) {
		struct mig_call *c = m->queue;
		m->queue = c->next;
		if (!m->queue)
			m->queue_tail = NULL;
		c->next = NULL;
		m->busy = c;
		servers[c->verb](m, c);
	}
	if (reenter_leave(&m->re))
		destroy(m);
}

static void finish(struct migration *m, struct mig_call *c)
{
	if (m->busy == c)
		m->busy = NULL;
	if (m->cancel == c)
		m->cancel = NULL;
	if (m->queue)
		kick(m);
	if (!reenter_dying(&m->re)) {
		const struct mig_status *st = &c->st;
		switch (c->verb) {
		case MIG_VERB_PREPARE_EXPORT:
		case MIG_VERB_EXPORT:
			if (c->cb.export_done)
				c->cb.export_done(m, st, c->out_type_url, c->out_value, c->out_len,
				                  c->arg);
			break;
		case MIG_VERB_SUBSCRIBE:
			if (c->cb.subscribe_done)
				c->cb.subscribe_done(m, st, c->out_sub, c->arg);
			else
				mig_notify_unsubscribe(c->out_sub);
			break;
		default:
			if (c->cb.done)
				c->cb.done(m, st, c->arg);
			break;
		}
	} else if (c->verb == MIG_VERB_SUBSCRIBE) {
		mig_notify_unsubscribe(c->out_sub);
	}
	call_free(c);
}

void migration_call_detach(struct migration *m, struct mig_call *c)
{
	m->busy = NULL;
	m->cancel = c;
	if (m->queue)
		kick(m);
}

void migration_call_ok(struct migration *m, struct mig_call *c)
{
	c->st.code = MIG_CODE_OK;
	c->st.msg[0] = '\0';
	finish(m, c);
}

/* Message buffers are bounded on purpose: truncation is the documented behaviour. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static void fail_msg(struct migration *m, struct mig_call *c, enum mig_code code, const char *text)
{
	const char *suffix =
	    (unsigned)code < sizeof(codes) / sizeof(codes[0]) ? codes[code].suffix : NULL;
	c->st.code = code;
	snprintf(c->st.msg, sizeof(c->st.msg), "%s: %s%s%s", c->prefix, text, suffix ? ": " : "",
	         suffix ? suffix : "");
	log_debug("migration call failed: session=%s code=%s: %s", m->session_id,
	          mig_code_name(code), c->st.msg);
	finish(m, c);
}

void migration_call_fail(struct migration *m, struct mig_call *c, enum mig_code code,
                         const char *fmt, ...)
{
	char text[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fail_msg(m, c, code, text);
}

void migration_call_fail_sb(struct migration *m, struct mig_call *c, int status,
                            const struct err *e, const char *what)
{
	char text[ERR_MSG_MAX];
	snprintf(text, sizeof(text), "%s: %s", what, e && e->msg[0] ? e->msg : strerror(-status));
	fail_msg(m, c, mig_code_from_errno(status), text);
}

bool migration_session_check(struct migration *m, struct mig_call *c)
{
	if (strcmp(c->session_id, m->session_id) == 0)
		return true;
	char a[MIG_QUOTE_MAX], b[MIG_QUOTE_MAX];
	migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT,
	                    "session id %s does not match active session %s",
	                    migration_quote(a, c->session_id), migration_quote(b, m->session_id));
	return false;
}

/* ---- tickets ---- */

enum ticket_kind { TICKET_PLAIN, TICKET_SAVE, TICKET_IMPORT };

struct mig_ticket {
	struct mig_ticket *next, **pprev;
	struct migration *m; /* NULL once the controller is gone */
	struct mig_call *c;  /* NULL: the background transfer, scoped to its session */
	uint64_t generation;
	enum ticket_kind kind;
	union {
		mig_k_fn plain;
		mig_k_save_fn save;
		mig_k_import_fn import;
	} k;
};

static struct mig_ticket *ticket_new(struct migration *m, struct mig_call *c, enum ticket_kind kind)
{
	struct mig_ticket *t = xcalloc(1, sizeof(*t));
	t->m = m;
	t->c = c;
	t->generation = m->generation;
	t->kind = kind;
	t->next = m->tickets;
	if (m->tickets)
		m->tickets->pprev = &t->next;
	t->pprev = &m->tickets;
	m->tickets = t;
	return t;
}

struct mig_ticket *migration_ticket(struct migration *m, struct mig_call *c, mig_k_fn k)
{
	struct mig_ticket *t = ticket_new(m, c, TICKET_PLAIN);
	t->k.plain = k;
	return t;
}

struct mig_ticket *migration_ticket_save(struct migration *m, struct mig_call *c, mig_k_save_fn k)
{
	struct mig_ticket *t = ticket_new(m, c, TICKET_SAVE);
	t->k.save = k;
	return t;
}

struct mig_ticket *migration_ticket_import(struct migration *m, struct mig_call *c,
                                           mig_k_import_fn k)
{
	struct mig_ticket *t = ticket_new(m, c, TICKET_IMPORT);
	t->k.import = k;
	return t;
}

/* Unlink and free t; returns its controller (NULL if it is gone). */
static struct migration *ticket_end(struct mig_ticket *t)
{
	struct migration *m = t->m;
	if (m) {
		*t->pprev = t->next;
		if (t->next)
			t->next->pprev = t->pprev;
	}
	return m;
}

static void ticket_run(struct mig_ticket *t, int status, const struct err *e, const char *type_url,
                       const uint8_t *value, size_t len, const struct migration_container *conts,
                       size_t n)
{
	struct mig_ticket copy = *t;
	struct migration *m = ticket_end(t);
	free(t);
	if (!m || (!copy.c && copy.generation != m->generation))
		return; /* the controller, or the transfer's session, is gone */
	switch (copy.kind) {
	case TICKET_PLAIN:
		copy.k.plain(m, copy.c, status, e);
		break;
	case TICKET_SAVE:
		copy.k.save(m, copy.c, status, e, type_url, value, len);
		break;
	case TICKET_IMPORT:
		copy.k.import(m, copy.c, status, e, conts, n);
		break;
	}
}

void migration_ticket_now(struct mig_ticket *t, int status, const struct err *e)
{
	ticket_run(t, status, e, NULL, NULL, 0, NULL, 0);
}

/* A completion from the sandbox: a loop entry, so it brackets the work for migration_free. */
static void ticket_complete(struct mig_ticket *t, int status, const struct err *e,
                            const char *type_url, const uint8_t *value, size_t len,
                            const struct migration_container *conts, size_t n)
{
	struct migration *m = t->m;
	if (!m) {
		ticket_run(t, status, e, NULL, NULL, 0, NULL, 0);
		return;
	}
	reenter_enter(&m->re);
	if (!reenter_dying(&m->re)) {
		ticket_run(t, status, e, type_url, value, len, conts, n);
	} else {
		ticket_end(t); /* the controller is going away: drop the completion */
		free(t);
	}
	if (reenter_leave(&m->re))
		destroy(m);
}

void migration_sb_done(void *cookie, int status, const struct err *e)
{
	ticket_complete(cookie, status, e, NULL, NULL, 0, NULL, 0);
}

void migration_sb_save(void *cookie, int status, const struct err *e, const char *type_url,
                       const uint8_t *value, size_t len)
{
	ticket_complete(cookie, status, e, type_url, value, len, NULL, 0);
}

void migration_sb_import(void *cookie, int status, const struct err *e,
                         const struct migration_container *conts, size_t n)
{
	ticket_complete(cookie, status, e, NULL, NULL, 0, conts, n);
}

/* ---- sessions ---- */

/* What a session starts and ends without; a new generation makes stale transfer completions
 * recognisable. */
static void session_reset(struct migration *m, const char *session_id, enum vmm_origin origin)
{
	free(m->session_id);
	m->session_id = xstrdup(session_id);
	m->origin = origin;
	m->generation++;
	m->sock_registered = false;
	m->transfer_requested = false;
	m->transfer_running = false;
	m->cancel_ok = NULL;
	m->aborted = false;
}

void migration_session_begin(struct migration *m, const char *session_id, enum vmm_origin origin)
{
	session_reset(m, session_id, origin);
	m->log = mig_notify_new(m->loop, origin, m->cfg.notify_cap);
}

void migration_session_end(struct migration *m)
{
	mig_transfer_release_socket(m);
	mig_notify_free(m->log);
	m->log = NULL;
	free(m->sandbox_id);
	m->sandbox_id = NULL;
	for (size_t i = 0; i < m->n_conts; i++) {
		free(m->conts[i].source_id);
		free(m->conts[i].pod_id);
		free(m->conts[i].id);
	}
	free(m->conts);
	m->conts = NULL;
	m->n_conts = 0;
	session_reset(m, "", VMM_ORIGIN_UNSPECIFIED);
	m->state = MIG_STATE_IDLE;
}

/* ---- Cleanup and Subscribe ---- */

static void cleanup_aborted(struct migration *m, struct mig_call *c, int status,
                            const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "abort destination");
		return;
	}
	log_info("migration session cleaned up: session=%s", m->session_id);
	migration_session_end(m);
	migration_call_ok(m, c);
}

static void serve_cleanup(struct migration *m, struct mig_call *c)
{
	if (m->state == MIG_STATE_IDLE) {
		migration_call_ok(m, c);
		return;
	}
	if (!migration_session_check(m, c))
		return;
	bool dest_cancelled =
	    m->origin == VMM_ORIGIN_DESTINATION && m->state == MIG_STATE_CANCELLED;
	if (m->state != MIG_STATE_FINALIZED && !dest_cancelled) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "cleanup not valid for %s in state %s",
		                    migration_origin_name(m->origin), mig_state_name(m->state));
		return;
	}
	if (dest_cancelled) /* ferry: the cancelled destination lets its containers go */
		mig_dest_abort(m, c, cleanup_aborted);
	else
		cleanup_aborted(m, c, 0, NULL);
}

static void serve_subscribe(struct migration *m, struct mig_call *c)
{
	if (m->state == MIG_STATE_IDLE && c->session_id[0] == '\0') {
		/* hcsshim would reach a nil VM controller here */
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "no active migration session");
		return;
	}
	if (!migration_session_check(m, c))
		return;
	struct err e;
	err_clear(&e);
	c->out_sub = mig_notify_subscribe(m->log, &c->sub_ops, c->sub_ud, &e);
	if (!c->out_sub) {
		migration_call_fail(m, c,
		                    e.code == -ENOSPC ? MIG_CODE_RESOURCE_EXHAUSTED
		                                      : MIG_CODE_FAILED_PRECONDITION,
		                    "%s", e.msg);
		return;
	}
	migration_call_ok(m, c);
}

/* ---- the object ---- */

static int default_check(const uint8_t *info, size_t len, void *ud, struct err *e)
{
	(void)ud;
	struct dupsock_info di;
	return dupsock_info_decode(info, len, &di, e);
}

static int default_take(const uint8_t *info, size_t len, void *ud, struct err *e)
{
	return dupsock_from_protocol_info(info, len, ud, e);
}

struct migration *migration_new(struct ev_loop *loop, const struct migration_config *cfg,
                                struct err *e)
{
	const struct migration_sandbox_ops *o = cfg->ops;
	if (!o || !o->vm_state || !o->init_source || !o->save || !o->import || !o->patch ||
	    !o->prepare_dest || !o->mig_start || !o->mig_transfer || !o->finalize || !o->resume ||
	    !o->terminate || !o->cancel || !o->abort) {
		err_set(e, -EINVAL, "migration: the sandbox interface is incomplete");
		return NULL;
	}
	struct migration *m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->cfg = *cfg;
	if (cfg->socket) {
		m->socket = *cfg->socket;
	} else {
		m->socket.check = default_check;
		m->socket.take = default_take;
		m->socket.ud = &m->cfg.socket_policy;
	}
	ev_timer_init(&m->kick, on_kick, 0., 0.);
	m->kick.data = m;
	m->session_id = xstrdup("");
	m->sock = -1;
	mig_transfer_init_timer(m);
	return m;
}

static void destroy(struct migration *m)
{
	ev_timer_stop(m->loop, &m->kick);
	while (m->queue) {
		struct mig_call *c = m->queue;
		m->queue = c->next;
		call_free(c);
	}
	if (m->busy == m->cancel)
		m->cancel = NULL;
	call_free(m->busy);
	call_free(m->cancel);
	for (struct mig_ticket *t = m->tickets; t; t = t->next)
		t->m = NULL; /* its completion, if it ever comes, only frees it */
	if (m->state != MIG_STATE_IDLE)
		migration_session_end(m);
	ev_timer_stop(m->loop, &m->sock_wait);
	free(m->session_id);
	free(m);
}

void migration_free(struct migration *m)
{
	if (!m || reenter_defer_free(&m->re))
		return;
	destroy(m);
}

/* ---- from the daemon ---- */

void migration_notify(struct migration *m, const struct vmm_notification *n)
{
	if (!m->log) {
		log_debug("migration notification outside a session dropped: phase=%d state=%d",
		          (int)n->phase, (int)n->state);
		return;
	}
	if (mig_notify_append(m->log, n) < 0)
		log_warn("migration notification lost: session=%s phase=%d (log full or closed)",
		         m->session_id, (int)n->phase);
}

enum migration_guard migration_task_guard(const struct migration *m, enum migration_task_op op,
                                          struct mig_status *st)
{
	if (m->state == MIG_STATE_IDLE)
		return MIGRATION_GUARD_ALLOW;
	if (op == MIGRATION_TASK_STATE)
		return MIGRATION_GUARD_CACHED;
	if (st) {
		char q[MIG_QUOTE_MAX];
		st->code = MIG_CODE_FAILED_PRECONDITION;
		snprintf(st->msg, sizeof(st->msg),
		         "migration session %s is in progress (state: %s): failed precondition",
		         migration_quote(q, m->session_id), mig_state_name(m->state));
	}
	return MIGRATION_GUARD_REFUSE;
}

enum mig_state migration_state(const struct migration *m)
{
	return m->state;
}

const char *migration_session_id(const struct migration *m)
{
	return m->session_id;
}

enum vmm_origin migration_origin(const struct migration *m)
{
	return m->origin;
}

struct mig_notify *migration_log(const struct migration *m)
{
	return m->log;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* go-winio's guid.FromString accepts exactly xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, either
 * case; its String() is the lower-case form, so lower-casing the digits canonicalises. */
static bool guid_form(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

uint32_t migration_session_u32(const char *session_id)
{
	const char *s = session_id ? session_id : "";
	uint8_t d[SHA256_LEN];
	if (guid_form(s)) {
		char lower[37];
		for (int i = 0; i < 36; i++)
			lower[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
		lower[36] = '\0';
		sha256(lower, 36, d);
	} else {
		sha256(s, strlen(s), d);
	}
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}
