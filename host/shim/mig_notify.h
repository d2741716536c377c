/* The per-session notification log of the Migration service (hcsshim's notifier, §4.3 of the
 * spec, with ferry's fixes).  One log per migration session, created when the session begins
 * (PrepareAndExportSandbox or ImportSandbox) and closed by Cleanup.  Every notification
 * appended since the session began reaches every subscriber, a slow one included, and a
 * subscriber that arrives late first receives the whole log, not just the newest entry:
 *
 *   - message_id counts from 1 per session, shared by all subscribers (as hcsshim);
 *   - start_time is when the log was created, i.e. when the session began (hcsshim: its first
 *     Subscribe, so events before it were lost); update_time is when the entry was appended;
 *   - subscribers read the log at their own pace through a cursor: no per-subscriber queue, so
 *     a slow or paused subscriber costs nothing and loses nothing (hcsshim: a 64-slot channel
 *     per subscriber, overflow silently dropped);
 *   - after close, each subscriber still receives every entry it has not read, then `end`.
 *
 * Memory is bounded per session: at most `cap` entries (MIG_NOTIFY_LOG_MAX by default, about
 * 64 bytes each) and MIG_NOTIFY_SUBS_MAX subscribers.  A real session has a handful of phase
 * notifications plus one TRANSFER_IN_PROGRESS per memory pass; only a log that fills up loses
 * anything, and then by a fixed rule: the oldest TRANSFER_IN_PROGRESS entry goes first
 * (superseded progress), then the oldest other non-terminal entry; terminal entries (DONE,
 * RECOVERY_DONE, FAILED) are never evicted, and a new entry is dropped (counted) only when
 * the whole log is terminal entries.  An evicted entry is skipped by subscribers that had not
 * read it yet; message ids stay increasing, so the gap is visible.
 *
 * Threading: one libev loop.  Deliveries happen from the loop (a zero-delay timer), never from
 * inside mig_notify_append/subscribe/resume/close.  Callbacks may unsubscribe any subscriber,
 * append, close or free the log. */
#ifndef FERRY_HOST_SHIM_MIG_NOTIFY_H
#define FERRY_HOST_SHIM_MIG_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "host/vmm/vmm.h"

struct ev_loop;
struct mig_notify;
struct mig_notify_sub;

#define MIG_NOTIFY_LOG_MAX  1024 /* entries per session: ~64 KiB; far above any real session */
#define MIG_NOTIFY_SUBS_MAX 64   /* concurrent Notifications streams per session */

/* One NotificationsResponse. */
struct mig_notify_msg {
	uint32_t message_id;
	struct vmm_notification n; /* origin always set: an unspecified one takes the log's */
	int64_t start_time_ns;     /* CLOCK_REALTIME nanoseconds */
	int64_t update_time_ns;
};

/* A new, open, empty log whose entries default to `origin`; cap 0 means MIG_NOTIFY_LOG_MAX
 * (tests use small caps).  Never fails (allocation failure aborts). */
struct mig_notify *mig_notify_new(struct ev_loop *loop, enum vmm_origin origin, size_t cap);

/* Close the log (idempotent) and drop the creator's reference.  Subscribers still attached
 * receive what they have not read, then `end`; the memory goes with the last of them.
 * NULL-safe; safe from inside a callback. */
void mig_notify_free(struct mig_notify *n);

/* Close: no more appends; subscribers drain, then get `end`.  Idempotent. */
void mig_notify_close(struct mig_notify *n);
bool mig_notify_closed(const struct mig_notify *n);

/* Append a notification (copied): assigns the next message_id and update_time, fills an
 * unspecified origin with the log's.  Returns the message id (> 0), or -EPIPE when the log is
 * closed (hcsshim's broadcast returning false).  Delivery follows from the loop. */
int mig_notify_append(struct mig_notify *n, const struct vmm_notification *v);

/* Whether an entry of this phase (from `origin`, or any origin when VMM_ORIGIN_UNSPECIFIED)
 * was ever appended, evicted or not. */
bool mig_notify_seen(const struct mig_notify *n, enum vmm_origin origin, enum vmm_phase phase);

/* Introspection: entries held now, the start time, and entries lost to a full log. */
size_t mig_notify_count(const struct mig_notify *n);
const struct mig_notify_msg *mig_notify_entry(const struct mig_notify *n, size_t i);
int64_t mig_notify_start_time(const struct mig_notify *n);
uint64_t mig_notify_dropped(const struct mig_notify *n);

/* ---- subscribers ---- */

/* deliver's "not now" answer: the message was not taken; it is offered again after
 * mig_notify_sub_resume. */
#define MIG_NOTIFY_BUSY 1

struct mig_notify_sub_ops {
	/* Take one message (valid during the call): return 0 when taken, MIG_NOTIFY_BUSY to
	 * pause this subscriber (e.g. its stream's send queue is above its high-water mark). */
	int (*deliver)(struct mig_notify_sub *s, const struct mig_notify_msg *m, void *ud);
	/* The log was closed and everything was delivered: end the stream normally.  The
	 * subscription is freed right after this returns. */
	void (*end)(struct mig_notify_sub *s, void *ud);
};

/* Attach a subscriber; it first receives every entry the log holds, then every new one.
 * ops is copied.  Returns NULL with e filled: -EPIPE when the log is closed ("migration
 * session already terminated"), -ENOSPC past MIG_NOTIFY_SUBS_MAX. */
struct mig_notify_sub *mig_notify_subscribe(struct mig_notify *n,
                                            const struct mig_notify_sub_ops *ops, void *ud,
                                            struct err *e);

/* A paused subscriber can take messages again. */
void mig_notify_sub_resume(struct mig_notify_sub *s);

/* Detach (the stream went away): no callback follows.  NULL-safe; safe from any callback. */
void mig_notify_unsubscribe(struct mig_notify_sub *s);

/* The id of the last message this subscriber took (0 before the first). */
uint32_t mig_notify_sub_last_id(const struct mig_notify_sub *s);

#endif
