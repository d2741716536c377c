/* Internals shared by the two halves of the stdio relay: relay.c (the copy loop: streams,
 * pumps, watchers, the relay's life cycle) and relay_hub.c (linked streams: the hub, dialling
 * and re-dialling, the resume handshake and ACKs, the retained-bytes budget).  Not part of the
 * API: other modules use guest/relay.h and guest/relay_hub.h.  Everything here runs on the
 * relay's loop; functions taking a stream may end up in relay_stream_finish and thus in the
 * relay's done callback, so callers hold the relay busy (relay_enter/relay_leave) around them
 * from loop callbacks.
 *
 * The stream offsets and the handshake are bridge/resume.h's, the same code the host runs:
 * an output stream's retained bytes and offsets are a struct resume_sender (its ring is read
 * into directly from the process's pipe), the stdin stream's delivered/acknowledged offsets a
 * struct resume_receiver, and each resume-mode connection's HELLO / READY / ACK / data framing
 * a struct resume_conn. */
#ifndef FERRY_GUEST_RELAY_PRIV_H
#define FERRY_GUEST_RELAY_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/vsock.h"
#include "guest/relay.h"
#include "guest/relay_hub.h"

enum conn_state {
	C_NONE,  /* no connection (paused, waiting for the hub, or backing off) */
	C_DIAL,  /* linked: dialling */
	C_HELLO, /* linked, resume: HELLO sent, waiting for READY */
	C_UP,    /* data flows */
};

struct relay_stream {
	struct relay *r;
	enum relay_which which;
	bool output;      /* process -> connection */
	bool discard;     /* output without a connection (pty): read and drop */
	bool proc_shared; /* proc_fd is the relay's pty master: never closed here */
	bool done;
	int proc_fd;
	int conn_fd;
	enum conn_state cs;
	struct resume_sender tx;   /* output: retained bytes [floor, produced), sent, acked */
	struct resume_receiver rx; /* input: bytes written into the process (delivered), acked */
	struct resume_conn rc;     /* resume mode: the current connection's handshake / framing */
	struct resume_stream end;  /* the rules applied to rc's events (&tx or &rx) */
	struct buf buf;            /* input: received, not yet written into the process */
	bool rfull;        /* output: the last read filled the room it was given (grow the ring) */
	ev_io prd;         /* output: process readable */
	ev_io pwr;         /* input: process writable */
	ev_io crd;         /* connection readable: data (input), ACKs / READY / EOF (output) */
	ev_io cwr;         /* connection writable: data (output), a pending ACK (input) */
	bool src_eof;      /* output: the process's side ended; input: the host half-closed */
	bool wr_shut;      /* output: shutdown(SHUT_WR) done on the current connection */
	uint64_t nread;    /* input: bytes received from connections (counted once) */
	uint64_t nwritten; /* output: highest offset given to a connection */
	relay_conn_lost_cb lost_cb;
	void *lost_ud;
	/* linked streams (relay_hub.c) */
	struct relay_hub *hub;
	struct relay_stream *hprev, *hnext; /* hub->streams */
	uint32_t port;
	uint32_t dials;       /* connections made so far (HELLO's dial number) */
	enum relay_mode mode; /* of the current connection */
	bool first;           /* the next HELLO is the stream's first */
	bool no_redial;
	bool deep_pipe; /* output: the pipe was deepened on the hub's pipe budget */
	struct vsock_dialer *dial;
	ev_timer tm; /* back-off (no connection) or ACK delay (input, connected) */
	int backoff_ms;
	uint8_t ackb[RESUME_ACK_LEN]; /* input: ACK being sent */
	size_t nack;
	struct log_limit warn; /* this stream's protocol warnings */
};

struct relay {
	struct ev_loop *loop;
	struct relay_stream *s[3];
	int pty;      /* owned pty master, or -1 */
	int spare_fd; /* pty relay: the unused stderr connection, or -1 */
	relay_done_cb done;
	void *ud;
	bool done_fired;
	ev_timer kick; /* reports "done" from the loop when there is no output stream */
	int busy;
	bool free_pending;
};

struct relay_hub {
	struct ev_loop *loop;
	struct vsock_addr addr;
	bool open;
	enum relay_mode mode;
	struct relay_stream *streams;
	struct session_auth auth;    /* of the current negotiation (HELLO proofs) */
	struct resume_budget retain; /* ring memory of every linked output stream */
	size_t pipe_used;            /* deepened pipe capacity of linked output streams */
	size_t pipe_limit;
};

/* Close *fd if open and set it to -1. */
static inline void relay_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The stream's current connection speaks the resume protocol (HELLO/READY/ACK). */
static inline bool relay_resume_on(const struct relay_stream *s)
{
	return s->hub && s->mode == RELAY_MODE_RESUME;
}

/* ---- relay.c ---- */

/* Hold the relay busy: relay_free from a nested callback is deferred until the matching
 * relay_leave, which may free it (callers must not touch r after relay_leave). */
void relay_enter(struct relay *r);
void relay_leave(struct relay *r);
/* Stop the connection's read and write watchers. */
void relay_conn_stop(struct relay_stream *s);
/* Move whatever can move now and re-arm the watchers.  No-op on a finished stream. */
void relay_stream_pump(struct relay_stream *s);
/* End the stream: close its fds, unlink it from its hub, and fire the relay's done callback if
 * this was the last output stream (which may free the relay unless it is held busy). */
void relay_stream_finish(struct relay_stream *s);
/* rc < 0: relay_stream_conn_lost(s, rc); otherwise relay_stream_pump(s). */
void relay_stream_pump_or_lost(struct relay_stream *s, int rc);
/* The connection failed, was cut or ended early (code: negative errno): a linked stream
 * re-dials, an unlinked one with a lost callback pauses, any other stream finishes. */
void relay_stream_conn_lost(struct relay_stream *s, int code);

/* ---- relay_hub.c ---- */

/* Returned by the handshake functions below when they gave up the stream (it is finished). */
#define RELAY_GAVE_UP 1

/* Remove s from its hub's list (no-op when unlinked); s->hub becomes NULL. */
void relay_hub_unlink(struct relay_stream *s);
/* Arm s->tm for the next dial: 1 ms, then doubling up to RELAY_REDIAL_MAX_MS. */
void relay_hub_backoff(struct relay_stream *s);
/* Start dialling the stream's port when it is linked, unfinished and has no connection (or
 * finish it when re-dialling was given up). */
void relay_hub_connect(struct relay_stream *s);
/* The stream's timer (s->tm): back-off over (dial if the hub is open), or the input stream's
 * ACK delay (send the ACK). */
void relay_hub_on_timer(struct ev_loop *loop, ev_timer *w, int revents);
/* Input stream, resume mode: send ACK(delivered) when one is due (or `force`: the final one),
 * or finish a partial one; arms cwr when the connection would block, the ACK timer when one
 * will be due.  0, or a negative errno when the connection failed. */
int relay_hub_ack_send(struct relay_stream *s, bool force);
/* Output stream, resume mode: n bytes read from the connection (READY, then ACKs).  0;
 * RELAY_GAVE_UP when a READY could not be honoured (logged once; the stream is finished); a
 * negative errno when the connection is to be dropped and re-dialled (a malformed READY, the
 * host kept sending bad ACKs). */
int relay_hub_output_feed(struct relay_stream *s, const uint8_t *p, size_t n);
/* Input stream, C_HELLO: read the rest of READY (never beyond it: data follows) and apply it
 * (cs becomes C_UP).  0 (also when more bytes are needed), or a negative errno (-ECONNRESET on
 * EOF, -EPROTO for a bad READY) when the connection is to be treated as lost. */
int relay_hub_ready_read(struct relay_stream *s);
/* Input stream, resume mode: n data bytes just received at p (in the stream's buffer, not
 * committed yet).  Bytes the process already has (a resend from below what it got) are
 * dropped, the rest moved to the front of p; returns how many to keep, or a negative errno
 * when the connection is to be dropped. */
ssize_t relay_hub_input_data(struct relay_stream *s, uint8_t *p, size_t n);
/* Output stream: release the ring of an empty stream while the hub's budget is tight. */
void relay_hub_trim(struct relay_stream *s);

#endif
