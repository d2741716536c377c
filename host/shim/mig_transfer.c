/* Both sides of the migration controller once there is something to move: the socket
 * (CreateDuplicateSocket), the background transfer (TransferSandbox returns at once; the
 * socket wait, mig_start and mig_transfer follow, and their failure reaches the notification
 * log, never the caller), Cancel (which gives up its turn while the sandbox cancels, as
 * hcsshim releases its lock) and Finalize with hcsshim's reconciliation against the VM's
 * state, so a finalize applied in part can be retried.  hcsshim controller.go and socket.go,
 * spec §4.2. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "host/shim/migration_priv.h"

/* Messages are bounded on purpose: truncation is the documented behaviour. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* Go's time.Duration.String() for the log line of a socket timeout ("10m0s", "1.5s",
 * "250ms"). */
static const char *go_duration(int64_t ns, char *buf, size_t size)
{
	if (ns < 1000000000) {
		if (ns < 1000)
			snprintf(buf, size, "%lldns", (long long)ns);
		else if (ns < 1000000)
			snprintf(buf, size, "%g\xc2\xb5s", (double)ns / 1e3);
		else
			snprintf(buf, size, "%gms", (double)ns / 1e6);
		return buf;
	}
	long long h = ns / 3600000000000LL, min = ns / 60000000000LL % 60;
	double s = (double)(ns % 60000000000LL) / 1e9;
	if (h)
		snprintf(buf, size, "%lldh%lldm%.9gs", h, min, s);
	else if (min)
		snprintf(buf, size, "%lldm%.9gs", min, s);
	else
		snprintf(buf, size, "%.9gs", s);
	return buf;
}

/* ---- the outcome in the log ---- */

/* Append {own origin, FAILED, st} unless the log already holds this side's FAILED (the VMM's
 * own, or an earlier synthetic one); with `unless_done`, also unless it holds DONE. */
static void log_outcome(struct migration *m, enum vmm_phase_state st, bool unless_done)
{
	if (!m->log || mig_notify_seen(m->log, m->origin, VMM_PHASE_FAILED) ||
	    (unless_done && mig_notify_seen(m->log, m->origin, VMM_PHASE_DONE)))
		return;
	struct vmm_notification n = {.origin = m->origin, .phase = VMM_PHASE_FAILED, .state = st};
	mig_notify_append(m->log, &n);
}

/* hcsshim's failTransfer: a cancelled session owns the outcome; otherwise the session fails
 * and the failure is logged for subscribers (always: ferry's log exists from the start). */
static void fail_transfer(struct migration *m, const char *why)
{
	if (m->state == MIG_STATE_CANCELLED) {
		log_debug("migration transfer error ignored, session cancelled: session=%s: %s",
		          m->session_id, why);
		return;
	}
	bool cancelling = m->state == MIG_STATE_CANCELLING;
	m->state = MIG_STATE_FAILED;
	log_error("migration transfer failed: session=%s: %s", m->session_id, why);
	if (!cancelling) /* a cancel in flight reports its own outcome when it lands */
		log_outcome(m,
		            m->origin == VMM_ORIGIN_SOURCE ? VMM_PHASE_STATE_SOURCE_FAILED
		                                           : VMM_PHASE_STATE_DESTINATION_FAILED,
		            false);
}

static void fail_transfer_sb(struct migration *m, const char *what, int status, const struct err *e)
{
	char why[ERR_MSG_MAX];
	snprintf(why, sizeof(why), "%s: %s", what, e && e->msg[0] ? e->msg : strerror(-status));
	fail_transfer(m, why);
}

/* ---- the background transfer ---- */

static void cancel_done(struct migration *m, struct mig_call *c);

/* The sandbox has nothing of the transfer running any more; a Cancel that waited for this
 * completes now. */
static void transfer_over(struct migration *m)
{
	m->transfer_running = false;
	struct mig_call *c = m->cancel_ok;
	if (c) {
		m->cancel_ok = NULL;
		cancel_done(m, c);
	}
}

static void transferred(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	(void)c;
	if (status < 0) {
		fail_transfer_sb(m, "start live migration transfer", status, e);
	} else if (m->state == MIG_STATE_TRANSFERRING) { /* a cancel that landed meanwhile wins */
		m->state = MIG_STATE_TRANSFER_COMPLETED;
		log_info("migration transfer completed: session=%s", m->session_id);
	}
	transfer_over(m);
}

static void started(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		fail_transfer_sb(m,
		                 m->origin == VMM_ORIGIN_SOURCE ? "start live migration on source"
		                                                : "start with migration options",
		                 status, e);
		transfer_over(m);
		return;
	}
	if (m->state != MIG_STATE_TRANSFERRING) {
		/* cancelled while starting: the sandbox's cancel stops what started */
		log_debug("migration transfer not started, session is %s: session=%s",
		          mig_state_name(m->state), m->session_id);
		transfer_over(m);
		return;
	}
	MIG_SB_CALL(m, c, transferred, mig_transfer);
}

/* The socket is here and the transfer was asked for: run it (the single driver). */
static void claim(struct migration *m)
{
	m->state = MIG_STATE_TRANSFERRING;
	int sock = m->sock;
	m->sock = -1; /* the sandbox owns it from here, even if mig_start fails */
	m->transfer_running = true;
	log_info("migration transfer started: session=%s", m->session_id);
	MIG_SB_CALL(m, NULL, started, mig_start, sock, migration_session_u32(m->session_id));
}

static void on_sock_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct migration *m = w->data;
	char d[32], why[96];
	snprintf(why, sizeof(why), "timed out waiting for socket ready after %s",
	         go_duration(m->sock_wait_ns, d, sizeof(d)));
	fail_transfer(m, why);
}

void mig_transfer_init_timer(struct migration *m)
{
	ev_timer_init(&m->sock_wait, on_sock_timeout, 0., 0.);
	m->sock_wait.data = m;
}

void mig_transfer_release_socket(struct migration *m)
{
	ev_timer_stop(m->loop, &m->sock_wait);
	if (m->sock >= 0) {
		close(m->sock);
		m->sock = -1;
	}
}

void mig_transfer_start(struct migration *m, struct mig_call *c)
{
	if (!migration_session_check(m, c))
		return;
	switch (m->state) {
	case MIG_STATE_SOCKET_READY:
		m->transfer_requested = true;
		claim(m);
		break;
	case MIG_STATE_SOURCE_EXPORTED:
	case MIG_STATE_DESTINATION_PREPARED:
		/* the socket is not here yet: claim the wait so later calls are no-ops */
		m->state = MIG_STATE_SOCKET_WAITING;
		m->transfer_requested = true;
		m->sock_wait_ns = c->timeout_ns;
		ev_timer_set(&m->sock_wait, (double)c->timeout_ns / 1e9, 0.);
		ev_timer_start(m->loop, &m->sock_wait);
		break;
	case MIG_STATE_SOCKET_WAITING:
	case MIG_STATE_TRANSFERRING:
	case MIG_STATE_TRANSFER_COMPLETED:
		break; /* already waiting, running or done */
	default:
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "transfer not valid in state %s", mig_state_name(m->state));
		return;
	}
	migration_call_ok(m, c);
}

/* ---- CreateDuplicateSocket ---- */

void mig_transfer_register(struct migration *m, struct mig_call *c)
{
	struct err e;
	err_clear(&e);
	if (m->socket.check(c->bytes, c->len, m->socket.ud, &e) < 0) {
		migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT, "%s", e.msg);
		return;
	}
	if (!migration_session_check(m, c))
		return;
	if (m->sock_registered) {
		char q[MIG_QUOTE_MAX];
		migration_call_fail(m, c, MIG_CODE_ALREADY_EXISTS,
		                    "duplicate socket already registered for session %s",
		                    migration_quote(q, c->session_id));
		return;
	}
	enum mig_state prev = m->state;
	if (prev != MIG_STATE_SOURCE_EXPORTED && prev != MIG_STATE_DESTINATION_PREPARED &&
	    prev != MIG_STATE_SOCKET_WAITING) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "invalid register duplicate socket state (current: %s)",
		                    mig_state_name(prev));
		return;
	}
	/* ferry: a socket that is refused is the caller's mistake; the session stays as it
	 * was (hcsshim moves it to Failed) so a good socket can still be handed over */
	int fd = m->socket.take(c->bytes, c->len, m->socket.ud, &e);
	if (fd < 0) {
		migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT, "%s", e.msg);
		return;
	}
	m->sock = fd;
	m->sock_registered = true;
	m->state = MIG_STATE_SOCKET_READY;
	log_info("duplicate migration socket registered: session=%s", m->session_id);
	if (prev == MIG_STATE_SOCKET_WAITING) { /* a transfer was waiting for it */
		ev_timer_stop(m->loop, &m->sock_wait);
		claim(m);
	}
	migration_call_ok(m, c);
}

/* ---- Cancel ---- */

static void cancel_done(struct migration *m, struct mig_call *c)
{
	m->state = MIG_STATE_CANCELLED;
	log_info("migration session cancelled: session=%s", m->session_id);
	if (m->transfer_requested)
		log_outcome(m, VMM_PHASE_STATE_CANCELLED, true);
	migration_call_ok(m, c);
}

static void cancelled(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	/* -EALREADY: nothing was left to cancel (hcsshim's ErrInvalidState, which it still
	 * returns to the caller; ferry answers OK) */
	if (status < 0 && status != -EALREADY) {
		m->state = MIG_STATE_FAILED;
		migration_call_fail_sb(m, c, status, e, "cancel live migration");
		return;
	}
	if (m->transfer_running) {
		/* ferry: Cancel answers once the transfer has really stopped */
		m->cancel_ok = c;
		return;
	}
	cancel_done(m, c);
}

void mig_transfer_cancel(struct migration *m, struct mig_call *c)
{
	if (!migration_session_check(m, c))
		return;
	switch (m->state) {
	case MIG_STATE_IDLE:
	case MIG_STATE_CANCELLED:
	case MIG_STATE_CANCELLING:
	case MIG_STATE_FINALIZED: /* ferry: nothing left to cancel once finalized */
		migration_call_ok(m, c);
		return;
	case MIG_STATE_DESTINATION_IMPORTED:
		/* no VM exists yet; the abort comes with Finalize STOP or Cleanup */
		m->state = MIG_STATE_CANCELLED;
		log_info("migration session cancelled: session=%s", m->session_id);
		migration_call_ok(m, c);
		return;
	default:
		break;
	}
	/* ferry: a socket the transfer has not taken is released now; one it has taken is
	 * released by the sandbox's cancel, which also stops the transfer */
	mig_transfer_release_socket(m);
	m->state = MIG_STATE_CANCELLING;
	migration_call_detach(m, c);
	MIG_SB_CALL(m, c, cancelled, cancel);
}

/* ---- Finalize ---- */

static const char *action_name(int action)
{
	return action == MIG_FINALIZE_RESUME ? "FINALIZE_ACTION_RESUME" : "FINALIZE_ACTION_STOP";
}

static void finalized(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "abort destination");
		return;
	}
	m->state = MIG_STATE_FINALIZED;
	log_info("migration session finalized: session=%s action=%s", m->session_id,
	         action_name(c->action));
	migration_call_ok(m, c);
}

static void resumed(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e,
		                       m->origin == VMM_ORIGIN_DESTINATION
		                           ? "resume destination vm from migration"
		                           : "resume source vm from migration");
		return;
	}
	finalized(m, c, 0, NULL);
}

/* The VM has its final operation; now the controllers. */
static void vm_settled(struct migration *m, struct mig_call *c)
{
	bool dest = m->origin == VMM_ORIGIN_DESTINATION;
	if (c->action == MIG_FINALIZE_RESUME)
		MIG_SB_CALL(m, c, resumed, resume, dest);
	else if (dest) /* ferry: a stopped destination lets its containers go */
		mig_dest_abort(m, c, finalized);
	else
		finalized(m, c, 0, NULL);
}

static void vm_finalized(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		char what[96];
		snprintf(what, sizeof(what), "finalize live migration (origin=%s, action=%s)",
		         migration_origin_name(m->origin), action_name(c->action));
		migration_call_fail_sb(m, c, status, e, what);
		return;
	}
	vm_settled(m, c);
}

static void vm_terminated(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "terminate resumed vm on stop finalize");
		return;
	}
	vm_settled(m, c);
}

static void cancelled_stop(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0)
		migration_call_fail_sb(m, c, status, e, "abort destination");
	else
		migration_call_ok(m, c); /* the session stays Cancelled, as in hcsshim */
}

void mig_transfer_finalize(struct migration *m, struct mig_call *c)
{
	if (c->action == MIG_FINALIZE_UNSPECIFIED) {
		migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT,
		                    "finalize action must be specified");
		return;
	}
	if (!migration_session_check(m, c))
		return;
	bool resume = c->action == MIG_FINALIZE_RESUME;
	if (m->state == MIG_STATE_FINALIZED || m->state == MIG_STATE_IDLE) {
		migration_call_ok(m, c);
		return;
	}
	if (m->origin == VMM_ORIGIN_DESTINATION && m->state == MIG_STATE_CANCELLED && !resume) {
		if (c->action == MIG_FINALIZE_STOP)
			mig_dest_abort(m, c, cancelled_stop);
		else
			migration_call_ok(m, c);
		return;
	}
	if (m->state != MIG_STATE_TRANSFER_COMPLETED && m->state != MIG_STATE_CANCELLED &&
	    m->state != MIG_STATE_FAILED) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "finalize not valid in state %s", mig_state_name(m->state));
		return;
	}
	if (c->action != MIG_FINALIZE_STOP && !resume) {
		migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT,
		                    "unsupported finalize action %d", c->action);
		return;
	}
	/* reconcile against where the VM is, so a finalize applied in part can be retried */
	switch (m->cfg.ops->vm_state(m->cfg.sb)) {
	case MIGRATION_VM_TERMINATED:
		if (resume)
			migration_call_fail(
			    m, c, MIG_CODE_FAILED_PRECONDITION,
			    "cannot resume finalize: VM already terminated by a stop "
			    "finalize");
		else
			vm_settled(m, c);
		return;
	case MIGRATION_VM_FINALIZED:
		if (resume)
			vm_settled(m, c); /* re-run the resume steps */
		else
			MIG_SB_CALL(m, c, vm_terminated, terminate);
		return;
	default:
		MIG_SB_CALL(m, c, vm_finalized, finalize, resume);
		return;
	}
}
