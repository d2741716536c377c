/* Re-entrancy guard for objects whose callbacks may free them (the model is redis'
 * callHandler in connhelpers.h): every entry from the event loop into the object brackets its
 * work with reenter_enter / reenter_leave; the object's free function asks reenter_defer_free
 * first, which records the request when called from inside such a bracket, and the outermost
 * reenter_leave then tells the caller to destroy the object.  Code between a callback and
 * reenter_leave must not start new work once `free_pending` is set.  Header-only, no state
 * outside the embedded struct. */
#ifndef FERRY_COMMON_REENTER_H
#define FERRY_COMMON_REENTER_H

#include <stdbool.h>

struct reenter {
	unsigned depth;    /* nesting of loop entries currently running */
	bool free_pending; /* a free was asked for while depth > 0 */
};

static inline void reenter_enter(struct reenter *r)
{
	r->depth++;
}

/* Leave one level.  True when this was the outermost level and a free was asked for inside:
 * the caller must now destroy the object and not touch it afterwards. */
static inline bool reenter_leave(struct reenter *r)
{
	return --r->depth == 0 && r->free_pending;
}

/* For the object's free function: true when inside a bracket (the free is recorded and done by
 * the outermost reenter_leave), false when the caller may destroy the object at once. */
static inline bool reenter_defer_free(struct reenter *r)
{
	if (r->depth == 0)
		return false;
	r->free_pending = true;
	return true;
}

#endif
