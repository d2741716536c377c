/* "A callback may free its own object": the one guard for it.  An object that calls user
 * callbacks embeds a struct reenter; every entry from the loop (a watcher callback, or any
 * place that calls a user callback) is bracketed by reenter_enter / reenter_leave, and the
 * object's free function asks reenter_defer_free first.  While a callback runs, a free only
 * marks the object (the caller stops its watchers and releases what it can at once); the
 * memory goes when the outermost bracket closes.  Modelled on redis's connection helpers
 * (callHandler): one counter and one flag, no per-module variants.
 *
 *	static void on_io(struct ev_loop *l, ev_io *w, int ev) {
 *		struct foo *f = w->data;
 *		reenter_enter(&f->re);
 *		... may call user callbacks, which may call foo_free(f) ...
 *		if (reenter_leave(&f->re))
 *			foo_destroy(f);          // the deferred free
 *	}
 *	void foo_free(struct foo *f) {
 *		if (!f) return;
 *		foo_stop(f);                     // watchers, fds: always at once
 *		if (reenter_defer_free(&f->re)) return;
 *		foo_destroy(f);
 *	}
 *
 * After a deferred free, code between the callback and reenter_leave must not touch anything
 * but the guard itself: check reenter_dying() after each user callback. */
#ifndef FERRY_COMMON_REENTER_H
#define FERRY_COMMON_REENTER_H

#include <stdbool.h>

struct reenter {
	unsigned depth;    /* brackets open */
	bool free_pending; /* a free came while depth > 0 */
};

static inline void reenter_enter(struct reenter *r)
{
	r->depth++;
}

/* Close a bracket; true when this was the outermost one and a free is pending: the caller
 * must release the object now (and not touch it afterwards). */
static inline bool reenter_leave(struct reenter *r)
{
	return --r->depth == 0 && r->free_pending;
}

/* In the free function: true when a bracket is open, so the release must wait (the object is
 * marked); false when the caller may release now. */
static inline bool reenter_defer_free(struct reenter *r)
{
	if (r->depth == 0)
		return false;
	r->free_pending = true;
	return true;
}

/* A free is pending: stop working on the object and unwind to reenter_leave. */
static inline bool reenter_dying(const struct reenter *r)
{
	return r->free_pending;
}

#endif
