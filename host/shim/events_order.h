/* The order rules of containerd's runtime-v2 task events, kept per container and per exec for
 * the event publisher (events.h): the init process goes TaskCreate -> TaskStart -> TaskExit ->
 * TaskDelete, an exec TaskExecAdded -> TaskExecStarted -> TaskExit (-> TaskDelete with its
 * id).  Allowed shortcuts, as runc's and hcsshim's shims produce them: a created process that
 * is killed before it starts exits (Create -> Exit, Added -> Exit), and a process that never
 * started can be deleted without an exit (Create -> Delete, Added -> Delete).  TaskOOM,
 * TaskPaused, TaskResumed and TaskCheckpointed need a created container that is not deleted.
 * An exec can only be added to a created or started container.  A TaskCreate for an id that
 * is still tracked, or an exec id added twice, break the rules too.
 *
 * A broken rule is reported, and the state moves on as if the event were right (so the next
 * event is judged against what was published).  TaskDelete of the init process forgets the
 * container and its execs, so the tracker holds only live containers. */
#ifndef FERRY_HOST_SHIM_EVENTS_ORDER_H
#define FERRY_HOST_SHIM_EVENTS_ORDER_H

#include <stddef.h>

#include "common/err.h"
#include "host/shim/events.h"

struct events_order;

struct events_order *events_order_new(void);
/* NULL-safe. */
void events_order_free(struct events_order *o);

/* Apply an event of `type` for container `cid` (non-empty) and process `id` (TaskExit's id,
 * TaskDelete's id, the exec id of the exec events; NULL, "" or `cid` itself mean the init
 * process; ignored for the other types).  Returns 0 when the event is in order, -EPROTO with
 * `e` naming the rule otherwise ("container c1: TaskStart before TaskCreate"). */
int events_order_apply(struct events_order *o, enum events_type type, const char *cid,
                       const char *id, struct err *e);

/* Forget a container and its execs.  Unknown ids are ignored. */
void events_order_forget(struct events_order *o, const char *cid);

/* Containers tracked. */
size_t events_order_tracked(const struct events_order *o);

#endif
