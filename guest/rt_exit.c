/* Process records, waiters and exit-code retention (§5.2-§5.4).  A process's exit becomes
 * *available* when it was reaped and its stdio relay finished (output flushed and the host's
 * side closed, §6.4); available exits go to every current waiter at once.  Without
 * retain_exits that first hand-over releases the process, as in the Go GCS: exec'd and UVM
 * processes are forgotten.  With retain_exits (ferry-gcs) nothing is forgotten on delivery,
 * since a response written just before a connection loss may never reach the host: an exited
 * exec'd process keeps answering until its container is deleted, an exited UVM process until
 * RT_RETAIN_MAX later UVM exits pushed it out (the same bound applies per container), and a
 * new process with the pid of a retained one replaces it.  Its relay is freed as soon as the
 * exit is available.  The init keeps answering until rt_delete and its container's exit
 * notification is raised (once) at the first hand-over.  Pids reaped before anyone tracked
 * them (an exec'd process that exits before `crun exec` returns) are kept in a small table
 * and claimed when the pid file is read.  Waiters are answered from timers, so no callback
 * ever runs inside rt_wait. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bridge/proto.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "guest/runtime_priv.h"

struct rt_proc *rt_proc_list_find(struct dlink *h, pid_t pid, bool live_only)
{
	for (struct dlink *l = h->next; l != h; l = l->next) {
		struct rt_proc *p = dl_entry(l, struct rt_proc, link);
		if (p->pid == pid && (!live_only || !p->exited))
			return p;
	}
	return NULL;
}

struct rt_proc *rt_container_find_proc(struct rt_container *c, pid_t pid)
{
	if (c->init && c->init->pid == pid)
		return c->init;
	struct rt_proc *p = rt_proc_list_find(&c->procs, pid, true);
	return p ? p : rt_proc_list_find(&c->procs, pid, false);
}

/* A running (not yet reaped) tracked process with this pid. */
struct rt_proc *rt_find_live_proc(struct rt *rt, pid_t pid)
{
	struct rt_proc *p = rt_proc_list_find(&rt->external, pid, true);
	if (p)
		return p;
	for (struct dlink *l = rt->containers.next; l != &rt->containers; l = l->next) {
		struct rt_container *c = dl_entry(l, struct rt_container, link);
		if (c->init && c->init->pid == pid && !c->init->exited)
			return c->init;
		p = rt_proc_list_find(&c->procs, pid, true);
		if (p)
			return p;
	}
	return NULL;
}

void rt_unclaimed_remember(struct rt *rt, pid_t pid, int status)
{
	struct reaped *r = &rt->unclaimed[rt->unclaimed_next++ % UNCLAIMED_MAX];
	r->pid = pid;
	r->status = status;
	r->seq = rt->reap_seq;
}

/* An exit of `pid` reaped after `since` (the op's spawn), newest first. */
bool rt_unclaimed_claim(struct rt *rt, pid_t pid, uint64_t since, int *status)
{
	struct reaped *best = NULL;
	for (unsigned i = 0; i < UNCLAIMED_MAX; i++) {
		struct reaped *r = &rt->unclaimed[i];
		if (r->pid == pid && r->seq > since && (!best || r->seq > best->seq))
			best = r;
	}
	if (!best)
		return false;
	*status = best->status;
	best->pid = 0;
	return true;
}

/* ---- waiters and exits ---- */

static bool proc_available(const struct rt_proc *p)
{
	return p->exited && (!p->relay || p->relay_done);
}

void rt_wait_free(struct rt *rt, struct rt_wait *w)
{
	dl_del(&w->link);
	ev_timer_stop(rt->loop, &w->timer);
	free(w);
}

/* Answer a waiter from the loop with a fixed result. */
static void wait_make_loose(struct rt *rt, struct rt_wait *w, int32_t hr, uint32_t code)
{
	dl_del(&w->link);
	ev_timer_stop(rt->loop, &w->timer);
	w->p = NULL;
	w->hr = hr;
	w->code = code;
	dl_add_tail(&rt->loose, &w->link);
	ev_timer_set(&w->timer, 0., 0.);
	ev_timer_start(rt->loop, &w->timer);
}

void rt_proc_free(struct rt_proc *p)
{
	struct rt *rt = p->rt;
	while (!dl_empty(&p->waiters)) {
		struct rt_wait *w = dl_entry(p->waiters.next, struct rt_wait, link);
		if (proc_available(p))
			wait_make_loose(rt, w, HR_OK, p->code);
		else
			wait_make_loose(rt, w, HR_ERR_NOT_FOUND, 0);
	}
	relay_free(p->relay);
	free(p);
}

/* Exec'd and external processes are forgotten once their exit was handed over. */
void rt_proc_forget(struct rt_proc *p)
{
	dl_del(&p->link);
	rt_proc_free(p);
}

/* retain_exits: keep at most RT_RETAIN_MAX exited processes on list h (a container's
 * exec'd processes, or the UVM processes): forget those that exited first.  `keep` is never
 * forgotten. */
static void retain_trim(struct dlink *h, const struct rt_proc *keep)
{
	for (;;) {
		unsigned n = 0;
		struct rt_proc *oldest = NULL;
		for (struct dlink *l = h->next; l != h; l = l->next) {
			struct rt_proc *q = dl_entry(l, struct rt_proc, link);
			if (!q->exited)
				continue;
			n++;
			if (q != keep && (!oldest || q->exit_seq < oldest->exit_seq))
				oldest = q;
		}
		if (n <= RT_RETAIN_MAX || !oldest)
			return;
		log_debug("runtime: retention full, forgetting the exit of pid=%d",
		          (int)oldest->pid);
		rt_proc_forget(oldest);
	}
}

/* retain_exits: a retained exited process whose pid was reused is replaced by the new one. */
static void retain_replace(struct dlink *h, pid_t pid)
{
	for (struct dlink *l = h->next; l != h;) {
		struct rt_proc *q = dl_entry(l, struct rt_proc, link);
		l = l->next;
		if (q->pid == pid && q->exited)
			rt_proc_forget(q);
	}
}

static void proc_deliver(struct rt_proc *p)
{
	struct rt *rt = p->rt;
	struct dlink local;
	uint32_t code = p->code;
	bool is_init = p->is_init;
	_cleanup_free_ char *cid = is_init ? xstrdup(p->c->id) : NULL;
	uint64_t gen = is_init ? p->c->gen : 0;

	if (!proc_available(p))
		return;
	if (!is_init && rt->retain && p->relay) {
		/* only the exit code is kept: release the stdio resources now (safe from the
		 * relay's own callback) */
		relay_free(p->relay);
		p->relay = NULL;
		p->relay_done = true;
	}
	if (dl_empty(&p->waiters))
		return;
	/* move the waiters to a private list (cancel still works on it) */
	local.next = p->waiters.next;
	local.prev = p->waiters.prev;
	local.next->prev = &local;
	local.prev->next = &local;
	dl_init(&p->waiters);
	if (!is_init && !rt->retain)
		rt_proc_forget(p);
	while (!dl_empty(&local)) {
		struct rt_wait *w = dl_entry(local.next, struct rt_wait, link);
		dl_del(&w->link);
		ev_timer_stop(rt->loop, &w->timer);
		if (!rt->free_pending)
			w->cb(rt, HR_OK, code, w->ud);
		free(w);
	}
	if (is_init && !rt->free_pending) {
		struct rt_container *c = rt_find_container_gen(rt, cid, gen);
		if (c && !c->notified) {
			c->notified = true;
			if (rt->on_exit)
				rt->on_exit(rt, cid, c->exit_type, rt->ud);
		}
	}
}

void rt_proc_exited(struct rt_proc *p, int status)
{
	struct rt *rt = p->rt;
	p->exited = true;
	p->exit_seq = ++rt->exit_seq;
	if (WIFSIGNALED(status))
		p->code = p->c ? 128u + (uint32_t)WTERMSIG(status) : 0xFFFFFFFFu;
	else
		p->code = (uint32_t)WEXITSTATUS(status);
	log_debug("runtime: pid=%d exited code=%u", (int)p->pid, p->code);
	if (p->relay)
		relay_close_input(p->relay);
	if (rt->retain && !p->is_init)
		retain_trim(p->c ? &p->c->procs : &rt->external, p);
	proc_deliver(p);
}

void rt_proc_relay_done(struct relay *r, void *ud)
{
	(void)r;
	struct rt_proc *p = ud;
	struct rt *rt = p->rt;
	rt_busy_enter(rt);
	p->relay_done = true;
	proc_deliver(p);
	rt_busy_leave(rt);
}

struct rt_proc *rt_proc_new(struct rt *rt, struct rt_container *c, pid_t pid)
{
	if (rt->retain)
		retain_replace(c ? &c->procs : &rt->external, pid);
	struct rt_proc *p = xcalloc(1, sizeof(*p));
	p->rt = rt;
	p->c = c;
	p->pid = pid;
	dl_init(&p->link);
	dl_init(&p->waiters);
	return p;
}

static void on_wait_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct rt_wait *w = t->data;
	struct rt *rt = w->rt;

	rt_busy_enter(rt);
	if (w->p && proc_available(w->p)) {
		proc_deliver(w->p);
	} else {
		int32_t hr = w->p ? HR_VMCOMPUTE_TIMEOUT : w->hr;
		uint32_t code = w->code;
		dl_del(&w->link);
		if (!rt->free_pending)
			w->cb(rt, hr, code, w->ud);
		free(w);
	}
	rt_busy_leave(rt);
}

struct rt_wait *rt_wait(struct rt *rt, const char *id, pid_t pid, uint32_t timeout_ms,
                        rt_wait_cb cb, void *ud)
{
	struct rt_wait *w = xcalloc(1, sizeof(*w));
	struct rt_proc *p = NULL;
	int32_t hr = HR_OK;

	w->rt = rt;
	w->cb = cb;
	w->ud = ud;
	dl_init(&w->link);
	ev_timer_init(&w->timer, on_wait_timer, 0., 0.);
	w->timer.data = w;
	if (rt_id_is_null(id)) {
		p = rt_proc_list_find(&rt->external, pid, false);
		if (!p)
			hr = HR_ERR_NOT_FOUND;
	} else {
		struct rt_container *c = rt_find_container(rt, id);
		if (!c)
			hr = HR_VMCOMPUTE_SYSTEM_NOT_FOUND;
		else if (c->state == C_CREATING)
			hr = HR_FAIL;
		else if (!(p = rt_container_find_proc(c, pid)))
			hr = HR_ERR_NOT_FOUND;
	}
	if (!p) {
		w->hr = hr;
		dl_add_tail(&rt->loose, &w->link);
		ev_timer_start(rt->loop, &w->timer);
		return w;
	}
	w->p = p;
	dl_add_tail(&p->waiters, &w->link);
	if (proc_available(p) || timeout_ms != RT_WAIT_INFINITE) {
		double after = proc_available(p) ? 0. : timeout_ms / 1000.;
		ev_timer_set(&w->timer, after, 0.);
		ev_timer_start(rt->loop, &w->timer);
	}
	return w;
}

void rt_wait_cancel(struct rt *rt, struct rt_wait *w)
{
	if (w)
		rt_wait_free(rt, w);
}
