/* The per-session notification log: an array of entries sorted by message id, subscribers
 * with a cursor (the next id they want) and a zero-delay timer that pumps entries to every
 * subscriber that is not paused.  Subscribers removed during the pump are marked dead and
 * swept when it ends, so a callback may detach anyone, append, close or free the log.
 * Contracts and the eviction rule: mig_notify.h. */
#include "host/shim/mig_notify.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <ev.h>

#include "common/reenter.h"
#include "common/xalloc.h"

struct mig_notify_sub {
	struct mig_notify *n;
	struct mig_notify_sub_ops ops;
	void *ud;
	uint32_t next_id; /* the next message id this subscriber wants */
	uint32_t last_id; /* the last one it took */
	bool paused;
	bool dead; /* detached or ended during a pump: freed by the sweep */
	struct mig_notify_sub *next;
};

struct mig_notify {
	struct ev_loop *loop;
	ev_timer kick;
	struct reenter re; /* depth of pumps running (deliver/end callbacks) */
	enum vmm_origin origin;
	struct mig_notify_msg *log; /* sorted by message_id */
	size_t len, alloc, cap;
	uint32_t last_id;
	int64_t start_ns;
	uint64_t dropped;
	uint16_t seen[3]; /* per origin: bit p set when phase p was appended */
	bool closed;
	bool owner_gone;
	struct mig_notify_sub *subs;
	size_t live_subs;
};

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void kick(struct mig_notify *n)
{
	if (!ev_is_active(&n->kick) && n->live_subs > 0) {
		ev_timer_set(&n->kick, 0., 0.);
		ev_timer_start(n->loop, &n->kick);
	}
}

static void destroy(struct mig_notify *n)
{
	ev_timer_stop(n->loop, &n->kick);
	while (n->subs) {
		struct mig_notify_sub *s = n->subs;
		n->subs = s->next;
		free(s);
	}
	free(n->log);
	free(n);
}

/* Free dead subscribers, then the log itself once its owner and every subscriber are gone.
 * Only outside a pump.  Returns true when the log was destroyed. */
static bool sweep(struct mig_notify *n)
{
	if (n->re.depth > 0)
		return false;
	struct mig_notify_sub **pp = &n->subs;
	while (*pp) {
		struct mig_notify_sub *s = *pp;
		if (s->dead) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
	if (n->owner_gone && n->live_subs == 0) {
		destroy(n);
		return true;
	}
	return false;
}

/* The first entry with message_id >= id, or NULL. */
static const struct mig_notify_msg *first_from(const struct mig_notify *n, uint32_t id)
{
	size_t lo = 0, hi = n->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->log[mid].message_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->len ? &n->log[lo] : NULL;
}

static void sub_gone(struct mig_notify_sub *s)
{
	s->dead = true;
	s->n->live_subs--;
}

/* Serve one subscriber until it is paused, caught up, ended or detached. */
static void serve(struct mig_notify *n, struct mig_notify_sub *s)
{
	while (!s->dead && !s->paused) {
		const struct mig_notify_msg *m = first_from(n, s->next_id);
		if (m) {
			struct mig_notify_msg copy =
			    *m; /* the callback may append and move the log */
			if (s->ops.deliver(s, &copy, s->ud) == MIG_NOTIFY_BUSY) {
				s->paused = true;
			} else {
				s->last_id = copy.message_id;
				s->next_id = copy.message_id + 1;
			}
		} else if (n->closed) {
			/* detached before `end` is called, so an unsubscribe inside is a no-op */
			sub_gone(s);
			if (s->ops.end)
				s->ops.end(s, s->ud);
		} else {
			break;
		}
	}
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct mig_notify *n = w->data;
	reenter_enter(&n->re);
	for (struct mig_notify_sub *s = n->subs; s; s = s->next)
		if (!s->dead)
			serve(n, s);
	reenter_leave(&n->re);
	sweep(n);
}

struct mig_notify *mig_notify_new(struct ev_loop *loop, enum vmm_origin origin, size_t cap)
{
	struct mig_notify *n = xcalloc(1, sizeof(*n));
	n->loop = loop;
	n->origin = origin;
	n->cap = cap ? cap : MIG_NOTIFY_LOG_MAX;
	n->start_ns = realtime_ns();
	ev_timer_init(&n->kick, on_kick, 0., 0.);
	n->kick.data = n;
	return n;
}

void mig_notify_close(struct mig_notify *n)
{
	if (!n || n->closed)
		return;
	n->closed = true;
	kick(n); /* subscribers that are caught up get `end` now */
}

bool mig_notify_closed(const struct mig_notify *n)
{
	return n->closed;
}

void mig_notify_free(struct mig_notify *n)
{
	if (!n)
		return;
	mig_notify_close(n);
	n->owner_gone = true;
	sweep(n);
}

static bool terminal(enum vmm_phase p)
{
	return p == VMM_PHASE_DONE || p == VMM_PHASE_RECOVERY_DONE || p == VMM_PHASE_FAILED;
}

/* The entry to evict from a full log (see the header), or -1 when every entry is terminal. */
static ssize_t victim(const struct mig_notify *n)
{
	ssize_t other = -1;
	for (size_t i = 0; i < n->len; i++) {
		enum vmm_phase p = n->log[i].n.phase;
		if (p == VMM_PHASE_TRANSFER_IN_PROGRESS)
			return (ssize_t)i;
		if (other < 0 && !terminal(p))
			other = (ssize_t)i;
	}
	return other;
}

int mig_notify_append(struct mig_notify *n, const struct vmm_notification *v)
{
	if (n->closed)
		return -EPIPE;
	if (n->last_id == INT_MAX) { /* not reachable in a real session; keeps ids positive */
		n->dropped++;
		return -ENOSPC;
	}
	if (n->len == n->cap) {
		ssize_t i = victim(n);
		if (i < 0) {
			n->dropped++;
			return -ENOSPC;
		}
		memmove(&n->log[i], &n->log[i + 1], (n->len - (size_t)i - 1) * sizeof(n->log[0]));
		n->len--;
		n->dropped++;
	}
	if (n->len == n->alloc) {
		n->alloc = n->alloc ? n->alloc * 2 : 16;
		if (n->alloc > n->cap)
			n->alloc = n->cap;
		n->log = xrealloc(n->log, n->alloc * sizeof(n->log[0]));
	}
	struct mig_notify_msg *m = &n->log[n->len++];
	m->message_id = ++n->last_id;
	m->n = *v;
	if (m->n.origin == VMM_ORIGIN_UNSPECIFIED)
		m->n.origin = n->origin;
	m->start_time_ns = n->start_ns;
	m->update_time_ns = realtime_ns();
	if ((unsigned)m->n.origin < 3 && (unsigned)m->n.phase < 16)
		n->seen[m->n.origin] |= (uint16_t)(1u << m->n.phase);
	kick(n);
	return (int)m->message_id;
}

bool mig_notify_seen(const struct mig_notify *n, enum vmm_origin origin, enum vmm_phase phase)
{
	if ((unsigned)phase >= 16 || (unsigned)origin >= 3)
		return false;
	uint16_t bit = (uint16_t)(1u << phase);
	if (origin == VMM_ORIGIN_UNSPECIFIED)
		return ((n->seen[0] | n->seen[1] | n->seen[2]) & bit) != 0;
	return (n->seen[origin] & bit) != 0;
}

size_t mig_notify_count(const struct mig_notify *n)
{
	return n->len;
}

const struct mig_notify_msg *mig_notify_entry(const struct mig_notify *n, size_t i)
{
	return i < n->len ? &n->log[i] : NULL;
}

int64_t mig_notify_start_time(const struct mig_notify *n)
{
	return n->start_ns;
}

uint64_t mig_notify_dropped(const struct mig_notify *n)
{
	return n->dropped;
}

struct mig_notify_sub *mig_notify_subscribe(struct mig_notify *n,
                                            const struct mig_notify_sub_ops *ops, void *ud,
                                            struct err *e)
{
	if (n->closed) {
		err_set(e, -EPIPE, "migration session already terminated");
		return NULL;
	}
	if (n->live_subs >= MIG_NOTIFY_SUBS_MAX) {
		err_set(e, -ENOSPC, "too many notification subscribers (at most %d per session)",
		        MIG_NOTIFY_SUBS_MAX);
		return NULL;
	}
	struct mig_notify_sub *s = xcalloc(1, sizeof(*s));
	s->n = n;
	s->ops = *ops;
	s->ud = ud;
	s->next_id = 1; /* the whole log */
	/* append at the tail: subscribers are served in arrival order */
	struct mig_notify_sub **pp = &n->subs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	n->live_subs++;
	kick(n);
	return s;
}

void mig_notify_sub_resume(struct mig_notify_sub *s)
{
	if (!s || s->dead || !s->paused)
		return;
	s->paused = false;
	kick(s->n);
}

void mig_notify_unsubscribe(struct mig_notify_sub *s)
{
	if (!s || s->dead)
		return;
	struct mig_notify *n = s->n;
	sub_gone(s);
	sweep(n);
}

uint32_t mig_notify_sub_last_id(const struct mig_notify_sub *s)
{
	return s->last_id;
}
