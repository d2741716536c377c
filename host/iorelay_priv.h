/* Internals shared by the host stdio relay's files (not for other modules): iorelay.c holds
 * the listener, the connection and local-endpoint callbacks and the plain (hcsshim) copy;
 * iorelay_resume.c the resume half (docs/stdio-resume.md §2): the receiver of output streams
 * (READY at the delivered offset, ACKs), the sender of stdin (retained bytes, rewinds) and the
 * HELLO/READY/ACK parsing of a resumed connection.  The structure is here because both files
 * walk it. */
#ifndef FERRY_HOST_IORELAY_PRIV_H
#define FERRY_HOST_IORELAY_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/stream.h"
#include "common/vsock.h"
#include "host/iorelay.h"

/* A connection accepted on a resumable relay's port, not yet proven (host/iorelay.h). */
struct iorelay_cand {
	struct iorelay *r;
	int fd;       /* -1: free slot */
	bool reading; /* mode known (RESUME): reading the HELLO */
	ev_io w;      /* readable */
	ev_timer tmo; /* IORELAY_HELLO_TIMEOUT_MS */
	uint8_t hello[RESUME_HELLO_LEN];
	size_t n;
};

struct iorelay {
	struct ev_loop *loop;
	struct vsock_addr addr;
	uint32_t port;
	enum iorelay_dir dir;
	int lfd;
	ev_io accept_w;
	int local_fd; /* our dup, until the local stream owns it */
	struct stream *conn;
	struct stream *local;
	struct iorelay_ops ops;
	void *ud;
	struct buf early;  /* TO_GUEST bytes not yet taken by the connection / the sender */
	bool close_write;  /* TO_GUEST: EOF requested */
	bool conn_eof;     /* FROM_GUEST: the guest finished sending (plain mode) */
	bool local_failed; /* the sink failed: discard further output */
	struct err local_err;
	bool done;
	bool dialled;   /* the guest connected (resume: and its HELLO was taken) at least once */
	unsigned depth; /* nesting of our callbacks, for deferred free */
	bool free_pending;
	uint64_t bytes;

	/* resume support */
	bool resumable; /* created by iorelay_new_resume */
	enum iorelay_mode (*mode_fn)(struct iorelay *r, struct session_auth *auth, void *ud);
	enum iorelay_mode mode;   /* of the current connection */
	struct session_auth auth; /* ... and its session (RESUME) */
	struct iorelay_cand cand[IORELAY_MAX_CANDIDATES];
	struct log_limit refused; /* refused candidates (impostors) */
	bool cut;                 /* iorelay_cut: not listening */
	struct resume_conn rc;
	struct resume_receiver rx; /* FROM_GUEST: rx.delivered = accepted by the sink */
	struct resume_stream end;  /* the rules for rc's events (&rx or &tx) */
	struct log_limit warn;     /* this stream's protocol warnings */
	bool offset_known;
	bool held;                 /* HELLO received, READY waits for the offset */
	struct resume_hello hello; /* the held HELLO */
	uint64_t sink_seen;        /* stream_bytes_out(local) already counted in rx */
	bool closing;              /* final ack written: close once it drained */
	bool finish_requested;     /* iorelay_finish */
	struct resume_sender tx;   /* TO_GUEST */
	bool shut;                 /* TO_GUEST: this connection was half-closed */
	ev_timer ack_timer;
	uint8_t *export_buf;
};

/* A resumed connection is up (it may still be before READY). */
static inline bool iorelay_resume_live(const struct iorelay *r)
{
	return r->conn && r->mode == IORELAY_MODE_RESUME;
}

/* iorelay.c */
/* Callback nesting: iorelay_free inside a callback is deferred until the outermost leave,
 * which returns true when the relay is gone. */
void iorelay_enter(struct iorelay *r);
bool iorelay_leave(struct iorelay *r);
/* Free the current connection (not the listener); resume state stays. */
void iorelay_drop_conn(struct iorelay *r);
/* The stream is over: report ops->on_done once (may free the relay: call inside enter). */
void iorelay_finish_stream(struct iorelay *r, int status, const struct err *e);
/* Finish with the sink's outcome once it has drained (or failed); no-op when done. */
void iorelay_finish_when_drained(struct iorelay *r);

/* iorelay_resume.c */
/* FROM_GUEST: count kernel-accepted sink bytes as delivered; send an ACK when due and arm
 * the ACK timer (ev callback iorelay_on_ack_timer, data = the relay). */
void iorelay_sync_sink(struct iorelay *r);
void iorelay_arm_ack(struct iorelay *r);
void iorelay_on_ack_timer(struct ev_loop *loop, ev_timer *w, int revents);
/* FROM_GUEST: after the guest's half-close, ack the final offset once the sink has it all
 * and close; after iorelay_finish, report done once the sink drained. */
void iorelay_maybe_close_resumed(struct iorelay *r);
void iorelay_maybe_finish_resume(struct iorelay *r);
/* TO_GUEST: move queued bytes into the retained sender; send what the connection takes and
 * half-close after the last byte. */
void iorelay_pull_early(struct iorelay *r);
void iorelay_pump(struct iorelay *r);
/* Input of a resumed connection: HELLO (answered, or held while the offset is unknown),
 * ACKs and data. */
void iorelay_conn_read_resume(struct iorelay *r, struct buf *in);

#endif
