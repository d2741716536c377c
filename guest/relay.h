/* Stdio relays between a process (pipes or a pty master) and host connections, on libev with
 * bounded buffers and backpressure (the source is not read while the buffer is full).  Output
 * streams (stdout/stderr: process -> connection) end with the clean close of the Linux GCS
 * (§6.4 copyAndCleanClose): copy to EOF, flush, shutdown(SHUT_WR), wait for the host's EOF,
 * close.  The input stream (stdin: connection -> process) closes the pipe on the host's EOF.
 * The connection end of a stream is replaceable (reconnect after live migration) and every
 * stream counts the bytes it moved, so a resumed stream can continue exactly once.  Streams
 * that re-dial their port by themselves and resume exactly once are *linked* to a hub:
 * guest/relay_hub.h. */
#ifndef FERRY_GUEST_RELAY_H
#define FERRY_GUEST_RELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define RELAY_BUF_MAX (256 * 1024) /* per-stream bound on bytes read but not yet sent */

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

#endif
