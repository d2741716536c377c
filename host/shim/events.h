/* The shim's task event publisher: the events containerd's runtime-v2 contract asks a shim to
 * publish (TaskCreate, TaskStart, TaskExit, TaskDelete, TaskExecAdded, ...), in the order they
 * were published, into a bounded queue that a forwarder drains to containerd's
 * TTRPC_ADDRESS with containerd.services.events.ttrpc.v1.Events/Forward, and that local
 * subscribers (ferryctl's event stream, while no containerd is connected) read too.
 *
 * Publishing.  events_publish takes a protobuf-c message of containerd.events (generated from
 * proto/containerd/events/task.proto); the publisher packs it into a google.protobuf.Any with
 * containerd 1.6's type URL (the bare message name, "containerd.events.TaskExit"), stamps it
 * with the wall-clock time of the publish, and gives it the topic of containerd's
 * runtime/events.go ("/tasks/exit").  The message is copied (packed); the caller keeps it.
 *
 * Order.  Each event gets the next sequence number; the forwarder keeps exactly one Forward
 * call in flight, so containerd receives events in publish order.  The order rules of the
 * runtime-v2 contract are checked per container and per exec (events_order.h): TaskCreate ->
 * TaskStart -> TaskExit -> TaskDelete for the init process, TaskExecAdded -> TaskExecStarted
 * -> TaskExit (-> TaskDelete) for an exec.  An event that breaks them is a bug in the caller:
 * it is logged (log_error, with the rule), counted (stats.order_violations, the last message in
 * stats.last_violation) and STILL queued and forwarded as published — dropping a TaskExit that
 * containerd waits for would be worse than an odd order.  events_publish returns 0 then.
 *
 * Delivery to containerd: at least once, in order, never dropped for a slow or restarting
 * containerd.  A Forward that fails for a transient reason (the connection lost or refused,
 * no socket yet, DeadlineExceeded, Unavailable, ResourceExhausted, Aborted, Internal, Unknown)
 * is retried — the same event, still first in line — on a fresh connection after a back-off
 * that doubles from backoff_min_s to backoff_max_s and restarts at the minimum after a
 * success.  A Forward that timed out or whose connection broke after sending may have reached
 * containerd, so the retry can deliver it twice (containerd's own shims have the same window);
 * stats.resent counts retries.  A Forward containerd refuses for good (InvalidArgument,
 * Unimplemented, PermissionDenied, NotFound, ...: retrying cannot help and would block every
 * later event) is logged, counted in stats.rejected and skipped.  The publisher validates the
 * namespace like containerd does, and its topics are fixed, so that should not happen.
 *
 * Bounds and the loss policy.  Events not yet forwarded are never evicted; there may be at
 * most max_pending of them using max_pending_bytes of packed events.  A publish beyond that
 * fails with -ENOBUFS: the event is NOT queued (stats.refused counts it, log_error says which),
 * and the caller decides (the Task service answers the RPC that wanted to publish with
 * ResourceExhausted).  events_congested() tells when the queue is past its high-water mark
 * (three quarters of either bound), so the shim can refuse new work (Create, Exec) while
 * containerd does not read, before exits and deletes of running processes could be refused.
 * An event larger than EVENTS_MAX_EVENT_BYTES packed is refused with -EMSGSIZE.
 *
 * Local subscribers.  The publisher keeps the last `retain` delivered events (forwarded to
 * containerd, or simply published when there is no address) besides the pending ones;
 * a subscriber starts at a sequence number (the oldest kept, or only new ones) and receives
 * every later event in order, from the loop, never from inside events_publish.  A subscriber
 * that falls behind the retained window (paused, or slower than the eviction) is told how many
 * events it missed with the next one it gets; it never holds the queue back.
 *
 * Containerd's socket is checked before use: its peer (SO_PEERCRED) must be root or the
 * shim's own effective uid, or the connection is dropped and retried like a refused one, so a
 * stale path taken over by another user never receives the events.
 *
 * Single-threaded, on the loop's thread.  Callbacks (subscribers, flush) may call anything
 * here, including events_publisher_free (deferred until they return). */
#ifndef FERRY_HOST_SHIM_EVENTS_H
#define FERRY_HOST_SHIM_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <protobuf-c/protobuf-c.h>

#include "common/err.h"

/* The task events of containerd 1.6 (api/events/task.proto; TaskIO is part of TaskCreate). */
enum events_type {
	EVENTS_TASK_CREATE,
	EVENTS_TASK_START,
	EVENTS_TASK_DELETE,
	EVENTS_TASK_EXIT,
	EVENTS_TASK_OOM,
	EVENTS_TASK_EXEC_ADDED,
	EVENTS_TASK_EXEC_STARTED,
	EVENTS_TASK_PAUSED,
	EVENTS_TASK_RESUMED,
	EVENTS_TASK_CHECKPOINTED,
	EVENTS_N_TYPES
};

/* The ttrpc service and method a shim calls on containerd's TTRPC_ADDRESS. */
#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define EVENTS_METHOD  "Forward"

#define EVENTS_DEFAULT_MAX_PENDING       16384u
#define EVENTS_DEFAULT_MAX_PENDING_BYTES (16u << 20)
#define EVENTS_DEFAULT_RETAIN            1024u
#define EVENTS_DEFAULT_CALL_TIMEOUT_S    30.0
#define EVENTS_DEFAULT_BACKOFF_MIN_S     0.02
#define EVENTS_DEFAULT_BACKOFF_MAX_S     2.0
#define EVENTS_MAX_EVENT_BYTES           (1u << 20)
/* events_subscribe: start with events published after the call. */
#define EVENTS_FROM_NOW UINT64_MAX

struct events_publisher;
struct events_sub;

struct events_opts {
	/* containerd namespace of every envelope (the shim's -namespace): a containerd
	 * identifier (letters and digits, single '.', '_' or '-' between them, at most 76
	 * characters).  Required; copied. */
	const char *namespace_;
	/* containerd's ttrpc socket (TTRPC_ADDRESS; a path, "unix://" accepted).  NULL: no
	 * forwarding until events_set_address.  Copied. */
	const char *address;
	size_t max_pending;       /* 0: EVENTS_DEFAULT_MAX_PENDING */
	size_t max_pending_bytes; /* 0: EVENTS_DEFAULT_MAX_PENDING_BYTES */
	size_t retain;            /* 0: EVENTS_DEFAULT_RETAIN */
	double call_timeout_s;    /* one Forward's deadline; 0: EVENTS_DEFAULT_CALL_TIMEOUT_S */
	double backoff_min_s;     /* 0: EVENTS_DEFAULT_BACKOFF_MIN_S */
	double backoff_max_s;     /* 0: EVENTS_DEFAULT_BACKOFF_MAX_S */
};

/* One published event, as subscribers see it.  Valid only during the callback. */
struct events_record {
	uint64_t seq; /* 1, 2, 3, ... in publish order */
	enum events_type type;
	const char *topic;    /* "/tasks/exit" */
	const char *type_url; /* "containerd.events.TaskExit" */
	const char *namespace_;
	const char *container_id;
	int64_t ts_sec; /* the publish time (the envelope's timestamp) */
	int32_t ts_nsec;
	const uint8_t *value; /* the packed event (the Any's value) */
	size_t len;
};

struct events_stats {
	uint64_t published;        /* events queued (sequence numbers handed out) */
	uint64_t forwarded;        /* Forward calls containerd answered OK */
	uint64_t resent;           /* Forward attempts that failed transiently (retried) */
	uint64_t connects;         /* connections made to containerd */
	uint64_t connect_failures; /* connection attempts that failed (no socket, refused, peer) */
	uint64_t refused;          /* publishes refused: queue full (-ENOBUFS) */
	uint64_t rejected;         /* events containerd refused for good (skipped) */
	uint64_t order_violations; /* publishes that broke the order rules (still queued) */
	uint64_t evicted;          /* delivered events dropped from the retained window */
	size_t pending;            /* queued, not yet forwarded */
	size_t pending_bytes;
	size_t max_pending_seen;
	size_t tracked; /* containers whose order state is kept */
	bool connected; /* a connection to containerd is up */
	char last_violation[256];
};

/* A publisher on `loop` (which must outlive it).  NULL with `e` on a bad option (-EINVAL:
 * namespace missing or not an identifier, address too long for a unix socket). */
struct events_publisher *events_publisher_new(struct ev_loop *loop, const struct events_opts *opts,
                                              struct err *e);

/* Stop forwarding (a Forward in flight is abandoned: it may or may not reach containerd),
 * drop every subscriber without a callback and free.  NULL-safe; from a callback, deferred
 * until it returns. */
void events_publisher_free(struct events_publisher *p);

/* Queue `event`, a message of package containerd.events (its descriptor picks the type; it is
 * packed at once, the caller keeps ownership).  Its container_id must be set.  Returns 0 and
 * the sequence number in *seq (may be NULL), or a negative errno with `e`, and then nothing was
 * queued: -EINVAL (not a task event, no container_id), -EMSGSIZE (over EVENTS_MAX_EVENT_BYTES),
 * -ENOBUFS (the pending bounds are reached; counted in stats.refused). */
int events_publish(struct events_publisher *p, const ProtobufCMessage *event, uint64_t *seq,
                   struct err *e);

/* Whether the pending queue is past three quarters of a bound (containerd is not keeping
 * up): the time to refuse new work rather than events later. */
bool events_congested(const struct events_publisher *p);

/* Forward to `address` from now on (NULL: stop forwarding; an in-flight Forward is
 * abandoned and its event stays pending).  Switching from no address to one forwards every
 * event still retained and not yet forwarded, oldest first.  0 or -EINVAL with `e`. */
int events_set_address(struct events_publisher *p, const char *address, struct err *e);

/* Forget the order state of `container_id` and its execs (the container left this shim, e.g.
 * migrated away, without its end events).  Unknown ids are ignored. */
void events_forget(struct events_publisher *p, const char *container_id);

/* Subscribe: `cb` gets every event from sequence number `from` on (0: the oldest still kept;
 * EVENTS_FROM_NOW: only later ones), in order, from the loop; `missed` is the number of events
 * that were evicted before this subscriber got them (0 normally).  Returns the subscription
 * (owned by the publisher; end it with events_unsubscribe).  The callback may unsubscribe,
 * pause, publish or free the publisher. */
typedef void (*events_sub_cb)(struct events_sub *s, const struct events_record *rec,
                              uint64_t missed, void *ud);
struct events_sub *events_subscribe(struct events_publisher *p, uint64_t from, events_sub_cb cb,
                                    void *ud);
void events_unsubscribe(struct events_sub *s);
/* Stop / restart delivery to `s` (a ttrpc stream waiting for its queue to drain). */
void events_sub_pause(struct events_sub *s);
void events_sub_resume(struct events_sub *s);

/* Call `done` once, from the loop, when nothing is pending any more (at once when nothing is
 * or there is no address) or when `timeout_s` passed, with the number still pending: the
 * shim's last step before it exits.  One flush at a time: -EBUSY otherwise. */
typedef void (*events_flush_cb)(struct events_publisher *p, size_t pending, void *ud);
int events_flush(struct events_publisher *p, double timeout_s, events_flush_cb done, void *ud,
                 struct err *e);

void events_stats(const struct events_publisher *p, struct events_stats *out);

/* The topic ("/tasks/exit"), type URL ("containerd.events.TaskExit") and descriptor of a type;
 * events_type_of maps a descriptor back (-1: not a task event). */
const char *events_topic(enum events_type t);
const char *events_type_url(enum events_type t);
const ProtobufCMessageDescriptor *events_descriptor(enum events_type t);
int events_type_of(const ProtobufCMessageDescriptor *d);

/* containerd's identifier rule (namespaces, topic components): [A-Za-z0-9]+ joined by single
 * '.', '_' or '-', at most 76 characters. */
bool events_valid_identifier(const char *s);

#endif
