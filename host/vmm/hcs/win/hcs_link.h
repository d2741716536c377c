/* The bridge between HCS's threads and the daemon's libev loop.  computecore.dll completes
 * operations and reports compute-system events on threads of its own; nothing of ferry may run
 * there but a copy into a queue.  A link owns that queue, an ev_async that wakes the loop, and
 * the computecore.dll entry table (struct hcs_api, with a module reference), and is shared by
 * reference count with every thread that may still post to it:
 *
 *   - operations: hcs_link_op_new creates an HCS_OPERATION (no callback); the caller passes
 *     it to an HCS call, then hcs_link_op_wait hands it to a waiter thread that blocks in
 *     HcsWaitForOperationResult, reads the result document as UTF-8, closes the operation and
 *     posts the message.  One thread per operation in flight (a few at a time): the operation
 *     handle is waited on and closed by one thread only, never inside an HCS callback, and
 *     HcsCancelOperation can interrupt the wait (hcs_link_op_cancel).
 *   - events: hcs_link_on_event is the HCS_EVENT_CALLBACK to register with the link as context
 *     (take a reference for the registration; drop it once HcsCloseComputeSystem has
 *     returned, after which HCS calls no more).  SystemExited, ServiceDisconnect and the
 *     live-migration group are copied (UTF-8, at most HCS_NOTIFY_MAX bytes; a longer payload is
 *     posted empty with `oversize` set) and posted; others are ignored.
 *   - on the loop, the ev_async callback hands each message, in posting order, to the owner's
 *     deliver function, which owns it (hcs_link_msg_free).  deliver may close the link (the
 *     owner freeing itself): delivery stops at once, remaining messages are dropped.
 *
 * After hcs_link_close, posts from late threads are dropped and freed by those threads; the
 * link's memory and the module reference go with the last reference. */
#ifndef FERRY_HOST_VMM_HCS_WIN_HCS_LINK_H
#define FERRY_HOST_VMM_HCS_WIN_HCS_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "common/buf.h"
#include "common/err.h"
#include "host/vmm/hcs/win/hcs_api.h"

#define HCS_LINK_EVENT_LOCAL 0x7fff0001u /* a message the owner posts to itself */

struct hcs_link;

struct hcs_msg {
	struct hcs_msg *next;
	uint32_t event;  /* the HCS_EVENT type, HCS_LINK_EVENT_LOCAL, or 0 for an operation */
	int verb, step;  /* operations and local messages: the owner's continuation */
	uint32_t hr;     /* operation result (HRESULT); local messages: a status of the owner */
	struct buf data; /* result document or event payload, UTF-8 */
	bool oversize;   /* the payload was longer than the bound and was not copied */
	/* private */
	struct hcs_link *link;
	HCS_OPERATION op; /* operations: open until the message is freed */
	struct hcs_msg *inflight_next;
};

typedef void (*hcs_link_deliver_fn)(struct hcs_msg *m, void *arg);

/* A link on loop delivering to deliver(arg); api is copied with a module reference of its
 * own.  NULL with e filled (no memory is the only other failure: it aborts). */
struct hcs_link *hcs_link_new(struct ev_loop *loop, const struct hcs_api *api,
                              hcs_link_deliver_fn deliver, void *arg, struct err *e);
/* The entry table (valid while the link lives). */
const struct hcs_api *hcs_link_api(const struct hcs_link *l);
/* Stop delivering, cancel the operations in flight (best effort), drop the caller's
 * reference.  Loop thread only; NULL-safe. */
void hcs_link_close(struct hcs_link *l);
/* Has hcs_link_close been called?  (For owners whose deliver calls several callbacks: check
 * between two, with a reference of your own held, since the first may have freed the owner.) */
bool hcs_link_closed(const struct hcs_link *l);
void hcs_link_ref(struct hcs_link *l);
void hcs_link_unref(struct hcs_link *l);

/* A new operation message for (verb, step): NULL with e filled when HcsCreateOperation fails. */
struct hcs_msg *hcs_link_op_new(struct hcs_link *l, int verb, int step, struct err *e);
/* The HCS call accepted m->op: wait for it on a thread and post the result.  -errno (and the
 * operation abandoned) if no thread can be started. */
int hcs_link_op_wait(struct hcs_msg *m, struct err *e);
/* The HCS call refused m->op: close and free it. */
void hcs_link_op_abandon(struct hcs_msg *m);
/* HcsCancelOperation on every operation in flight (not delivered yet) for verb; returns the
 * number HCS accepted to cancel (a finished one is refused).  Loop thread only. */
int hcs_link_op_cancel(struct hcs_link *l, int verb);
/* Post a message from the loop thread to the loop (delivered later, never now). */
void hcs_link_post_local(struct hcs_link *l, int verb, int step, uint32_t status);

/* Free a delivered message (closing its operation, if it is one). */
void hcs_link_msg_free(struct hcs_msg *m);

/* The HCS_EVENT_CALLBACK to register with the link as context. */
void CALLBACK hcs_link_on_event(HCS_EVENT *event, void *context);

#endif
