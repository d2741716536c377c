/* Stdio relays between a process (pipes or a pty master) and host connections, on libev with
 * bounded buffers and backpressure (the source is not read while the buffer is full).  Output
 * streams (stdout/stderr: process -> connection) end with the clean close of the Linux GCS
 * (§6.4 copyAndCleanClose): copy to EOF, flush, shutdown(SHUT_WR), wait for the host's EOF,
 * close.  The input stream (stdin: connection -> process) closes the pipe on the host's EOF.
 * The connection end of a stream is replaceable (reconnect after live migration) and every
 * stream counts the bytes it moved, so a resumed stream can continue exactly once. */
#ifndef FERRY_GUEST_RELAY_H
#define FERRY_GUEST_RELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/vsock.h"

#define RELAY_BUF_MAX (64 * 1024) /* per-stream bound on bytes read but not yet sent */

struct relay;
struct relay_stream;

enum relay_which { RELAY_STDIN = 0, RELAY_STDOUT = 1, RELAY_STDERR = 2 };

/* The whole relay is finished: every output stream completed its clean close (or failed).
 * Called from the loop; the callback may free the relay. */
typedef void (*relay_done_cb)(struct relay *r, void *ud);

/* The connection of an output stream failed (write error such as EPIPE/ECONNRESET, or an error
 * while waiting for the host's EOF).  With this callback set, the stream pauses (keeps its
 * buffered bytes, stops reading the process) until relay_stream_set_conn gives it a new
 * connection; without it, the stream ends (it counts as finished for relay_done_cb).
 * `code` is the negative errno. */
typedef void (*relay_conn_lost_cb)(struct relay_stream *s, int code, void *ud);

/* Relay over pipes.  in_w: write end of the process's stdin pipe; out_r/err_r: read ends of
 * its stdout/stderr pipes; conn_*: the host connections.  Any of them may be -1.  A pipe whose
 * connection is -1 is closed at once (and vice versa).  Ownership of every fd >= 0 passes to
 * the relay (closed on failure too).  Fds are made CLOEXEC + NONBLOCK.  Copying starts
 * immediately; done fires once all output streams finished (at once, from the loop, if there
 * are none). */
struct relay *relay_new_pipes(struct ev_loop *loop, int in_w, int out_r, int err_r, int conn_in,
                              int conn_out, int conn_err, relay_done_cb done, void *ud,
                              struct err *e);

/* Relay over a pty master (owned by the relay): conn_in -> master, master -> conn_out
 * (ends on EIO once every slave fd is closed).  conn_err, if >= 0, is kept unused and closed
 * when the relay is freed (as the Go GCS does). */
struct relay *relay_new_pty(struct ev_loop *loop, int master, int conn_in, int conn_out,
                            int conn_err, relay_done_cb done, void *ud, struct err *e);

/* The process has exited: stop relaying stdin (close its connection and pipe).  Output streams
 * continue until their sources reach EOF. */
void relay_close_input(struct relay *r);

/* True once done has fired (or would have: all output streams finished). */
bool relay_finished(const struct relay *r);

/* The pty master of a pty relay (borrowed), or -1. */
int relay_pty_fd(const struct relay *r);

/* Stream of a relay, NULL if it has none in that slot. */
struct relay_stream *relay_get_stream(struct relay *r, enum relay_which which);

/* Stop every watcher and close every fd; no callback runs afterwards.  NULL-safe; may be
 * called from the relay's own callbacks. */
void relay_free(struct relay *r);

/* Replace the connection of a stream (ownership of conn_fd passes to the stream; the previous
 * connection, if any, is closed).  Buffered, not yet written bytes are written to the new
 * connection first.  A paused (connection-lost) stream resumes.  -EINVAL if the stream has
 * already finished. */
int relay_stream_set_conn(struct relay_stream *s, int conn_fd, struct err *e);

/* Install the connection-lost callback of a stream (see relay_conn_lost_cb). */
void relay_stream_on_conn_lost(struct relay_stream *s, relay_conn_lost_cb cb, void *ud);

/* Bytes read from the source so far, and bytes written to the sink so far (for an output
 * stream: delivered to the connection; buffered = read - written). */
uint64_t relay_stream_bytes_read(const struct relay_stream *s);
uint64_t relay_stream_bytes_written(const struct relay_stream *s);

/* The stream completed (clean close done, EOF forwarded, or failed without a lost callback). */
bool relay_stream_finished(const struct relay_stream *s);

/* ---- linked streams: stdio that survives the move (docs/stdio-resume.md) ----
 *
 * A stream *linked* to a hub with its vsock port owns its connection: when it is lost (error,
 * reset, or the host's EOF before the stream ended) the stream re-dials the same port on the
 * hub's address, at once and then with back-off (1, 2, 4 .. 100 ms), until it is finished or
 * relay_stop_redial is called.  Dials wait while the hub is closed (the bridge is down or not
 * yet renegotiated) and all start at once when it opens, so re-attaching is event-driven.
 * In RESUME mode (both sides offered FerryStdioResume in the current negotiation) every
 * connection starts with HELLO / READY and carries 8-byte ACKs back (bridge/resume.h wire
 * format): output streams retain every unacknowledged byte (up to RESUME_SENDER_CAP; the
 * process is back-pressured beyond) and resume exactly where the host says; the stdin stream
 * acknowledges what it wrote into the process (every RESUME_ACK_BYTES or 5 ms).  An output
 * stream is finished only when the host acknowledged the final offset and closed.  In PLAIN
 * mode (hcsshim host) output streams keep the last RESUME_FALLBACK_TAIL bytes sent and send
 * them again after a re-dial; stdin EOF ends the stream as before.
 * Unlinked streams behave as described above (relay_stream_on_conn_lost). */

#define RELAY_REDIAL_MAX_MS 100 /* re-dial back-off cap */

enum relay_mode { RELAY_MODE_PLAIN = 0, RELAY_MODE_RESUME = 1 };

struct relay_hub;

/* A hub dialling stdio ports on `addr` (copied).  Starts closed, in PLAIN mode. */
struct relay_hub *relay_hub_new(struct ev_loop *loop, const struct vsock_addr *addr);
/* Unlink every stream (they keep their current connection and behave as unlinked from now
 * on) and free.  NULL-safe. */
void relay_hub_free(struct relay_hub *h);
/* The bridge was negotiated with `mode`: connections dialled from now on use it; every
 * stream waiting for a connection dials now. */
void relay_hub_open(struct relay_hub *h, enum relay_mode mode);
/* The bridge is gone: no dial starts until relay_hub_open; dials and handshakes in progress
 * are abandoned (they start again on open).  Established connections are kept. */
void relay_hub_close(struct relay_hub *h);
/* Wake (the host changed): drop every stdio connection of every linked stream; they re-dial
 * as above. */
void relay_hub_cut(struct relay_hub *h);
bool relay_hub_is_open(const struct relay_hub *h);

struct relay_hub_stats {
	unsigned streams;  /* linked streams not finished */
	unsigned attached; /* ... with an established connection (handshake done) */
};
void relay_hub_stats(const struct relay_hub *h, struct relay_hub_stats *st);

/* Link the streams of `r` that have a connection and a non-zero port in ports[] (indexed by
 * enum relay_which) to `h`.  In RESUME mode the first HELLO (flag FIRST) is sent at once on
 * the current connection.  Call right after relay_new_*, before the loop runs again. */
void relay_link(struct relay *r, struct relay_hub *h, const uint32_t ports[3]);
/* Give up re-dialling (container shutdown/delete): a linked stream without a connection
 * finishes now, and one that loses its connection later finishes then. */
void relay_stop_redial(struct relay *r);

#endif
