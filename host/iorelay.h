/* One stdio stream of a guest process, host side: a listener on a vsock port that accepts
 * exactly one connection from the guest (then closes the listener), and a non-blocking copy
 * between that connection and a local endpoint (file, FIFO, pipe, terminal, or callbacks).
 *   FROM_GUEST (stdout/stderr): read the connection to EOF, close it at once (the guest waits
 *     for that before reporting the exit, spec §6.4), finish writing to the sink, report done.
 *   TO_GUEST (stdin): copy the local source (or queued bytes) to the connection; at source
 *     EOF / close_write, drain and shutdown(SHUT_WR).
 * Backpressure: the reader side pauses while more than IORELAY_HIGH_WATER bytes are queued. */
#ifndef FERRY_HOST_IORELAY_H
#define FERRY_HOST_IORELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "common/err.h"

struct iorelay;
struct vsock_addr;

#define IORELAY_HIGH_WATER (256u * 1024u)
/* Connections waiting to prove themselves on one stdio port at once (the guest has one per
 * stream; a few more let a re-dial through while impostors are being refused). */
#define IORELAY_MAX_CANDIDATES 4
/* A candidate's HELLO must be complete within this: the guest sends it with its connect. */
#define IORELAY_HELLO_TIMEOUT_MS 1000

enum iorelay_dir { IORELAY_TO_GUEST, IORELAY_FROM_GUEST };

struct iorelay_ops {
	/* FROM_GUEST without a local fd: bytes from the guest (valid during the call). */
	void (*on_data)(struct iorelay *r, const void *data, size_t n, void *ud);
	/* The stream is finished: FROM_GUEST after EOF with every byte delivered to the sink;
	 * TO_GUEST after shutdown or when the guest closed its side.  status < 0 on an I/O
	 * error (e filled).  Called at most once; may free the relay. */
	void (*on_done)(struct iorelay *r, int status, const struct err *e, void *ud);
};

/* Listen on `port` of `addr` now (before the request that makes the guest dial).  local_fd
 * is borrowed (-1: none); it is made non-blocking unless it is a regular file, which is
 * written synchronously.  Returns NULL with `e` filled on listen failure. */
struct iorelay *iorelay_new(struct ev_loop *loop, const struct vsock_addr *addr, uint32_t port,
                            enum iorelay_dir dir, int local_fd, const struct iorelay_ops *ops,
                            void *ud, struct err *e);
/* Resume-capable relay (docs/stdio-resume.md §2).  The listener stays open for the whole
 * life of the relay, for the guest's re-dials; but whoever connects is an adversary until it
 * proves otherwise (docs/stdio-resume.md §5).  Unix peers of another user and vsock peers of
 * another CID are refused at accept.  An accepted connection is a *candidate* (at most
 * IORELAY_MAX_CANDIDATES at once, the others wait in the backlog): before reading it the relay
 * asks ops->mode, and while that answers IORELAY_MODE_UNKNOWN (bridge not renegotiated yet)
 * the candidate is parked until iorelay_mode_changed.  In IORELAY_MODE_RESUME a candidate must
 * send, within IORELAY_HELLO_TIMEOUT_MS, a HELLO for this port and direction with the session's
 * proof and a new dial number (resume_stream_hello_check); only then does it replace the
 * current connection.  Any other candidate is closed with one (rate-limited) log line and the
 * stream never notices.  In IORELAY_MODE_RESUME every connection starts with HELLO/READY:
 *   FROM_GUEST: `offset` = bytes already delivered to the sink (counted from stream start);
 *     READY is held while !offset_known (iorelay_set_offset supplies it); ACKs are sent at
 *     least every 64 KiB or 5 ms of delivered bytes; on EOF the final offset is acked and
 *     the connection closed, but the stream is only done when iorelay_finish is called (the
 *     process exit, which the guest reports after the final ack).
 *   TO_GUEST: `offset` = bytes acknowledged, `unacked` the bytes after it (copied); data is
 *     re-sent from each HELLO's offset; close_write half-closes after the last byte and the
 *     relay reads on until the final ACK (then done).
 * In IORELAY_MODE_PLAIN it behaves as iorelay_new (one stream, hcsshim fallback). */
enum iorelay_mode { IORELAY_MODE_UNKNOWN = -1, IORELAY_MODE_PLAIN = 0, IORELAY_MODE_RESUME = 1 };
struct session_auth; /* bridge/session.h */
struct iorelay_resume_config {
	/* The mode of the current negotiation; for IORELAY_MODE_RESUME also its session (*auth:
	 * on when HELLOs must carry the session's proof). */
	enum iorelay_mode (*mode)(struct iorelay *r, struct session_auth *auth, void *ud);
	uint64_t offset;
	bool offset_known;
	const uint8_t *unacked; /* TO_GUEST */
	size_t n_unacked;
	bool eof; /* TO_GUEST: close_write already requested */
};
struct iorelay *iorelay_new_resume(struct ev_loop *loop, const struct vsock_addr *addr,
                                   uint32_t port, enum iorelay_dir dir, int local_fd,
                                   const struct iorelay_ops *ops, void *ud,
                                   const struct iorelay_resume_config *rc, struct err *e);
/* Parked connections are re-examined (ops->mode is asked again). */
void iorelay_mode_changed(struct iorelay *r);
/* FROM_GUEST: the delivered offset is now known (answers a held HELLO). -EINVAL if already
 * known with another value. */
int iorelay_set_offset(struct iorelay *r, uint64_t offset, struct err *e);
/* FROM_GUEST resume: the guest's HELLO arrived on the current connection and READY is held
 * until iorelay_set_offset; *hello_offset (may be NULL) receives HELLO.offset, the first byte
 * the guest still retains (what the previous host acknowledged).  False otherwise. */
bool iorelay_held(const struct iorelay *r, uint64_t *hello_offset);
/* Drop the connection and the listener (the state stays). */
void iorelay_cut(struct iorelay *r);
/* Listen again after iorelay_cut. */
int iorelay_relisten(struct iorelay *r, struct err *e);
/* FROM_GUEST resume: the stream is over (process exited): report done once the sink drained. */
void iorelay_finish(struct iorelay *r);
/* Migration view: FROM_GUEST delivered offset; TO_GUEST acked offset and unacked bytes
 * (pointer valid until the next relay call; may be NULL), and whether stdin was closed. */
struct iorelay_resume_state {
	uint64_t offset;
	bool offset_known;
	const uint8_t *unacked;
	size_t n_unacked;
	bool eof;
};
void iorelay_get_resume_state(struct iorelay *r, struct iorelay_resume_state *out);
bool iorelay_is_resume(const struct iorelay *r);
/* A connection is up and (resume mode) past READY, or the stream is done. */
bool iorelay_attached(const struct iorelay *r);
/* One line on the relay's state, for debugging dumps (snprintf semantics). */
int iorelay_describe(const struct iorelay *r, char *out, size_t n);

/* NULL-safe; safe from inside the relay's callbacks.  Closes the listener and connection. */
void iorelay_free(struct iorelay *r);

/* TO_GUEST only: queue bytes (-EPIPE after close_write or when the guest is gone). */
int iorelay_write(struct iorelay *r, const void *data, size_t n, struct err *e);
/* TO_GUEST only: EOF after the queued bytes. */
int iorelay_close_write(struct iorelay *r, struct err *e);

uint32_t iorelay_port(const struct iorelay *r);
/* The guest has connected to this stream at least once (in resume mode: with a HELLO for
 * it), or the stream is done. */
bool iorelay_dialled(const struct iorelay *r);
bool iorelay_connected(const struct iorelay *r);
bool iorelay_done(const struct iorelay *r);
/* Bytes moved across the guest connection so far. */
uint64_t iorelay_bytes(const struct iorelay *r);

#endif
