/* A buffered, non-blocking byte stream on a libev loop over one fd (socket, pipe or pty):
 * incoming bytes accumulate in an input struct buf handed to a read callback; outgoing bytes
 * go to a write queue that an ev_io write watcher flushes, so stream_write() never blocks.
 * EOF and errors are reported through distinct callbacks; reading can be paused for
 * backpressure; the write side can be half-closed once the queue drains.  Every callback may
 * free the stream it was called for (the free is deferred until the callback returns, as in
 * redis' connection layer).  This is the libev glue under bridge connections and stdio
 * relays, on both the guest and the host. */
#ifndef FERRY_COMMON_STREAM_H
#define FERRY_COMMON_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "common/buf.h"
#include "common/err.h"

struct stream;

/* Callbacks; any may be NULL.  `ud` is the pointer given to stream_new.  Inside any of them
 * the stream may be written to, paused, shut down or freed. */
struct stream_cbs {
	/* New bytes were appended to `in` (the stream's input buffer).  Consume what you use
	 * with buf_consume(in, n); unconsumed bytes stay and are handed again, with more, on
	 * the next call.  The buffer is only valid during the callback. */
	void (*on_read)(struct stream *s, struct buf *in, void *ud);
	/* The peer closed its write side (read returned 0; EIO on a pty master counts too).
	 * Reading stops; writing is still allowed (half-close).  Called at most once.  Bytes
	 * still unconsumed in the input buffer stay available through stream_input(). */
	void (*on_eof)(struct stream *s, void *ud);
	/* A read or write failed (ECONNRESET, EPIPE, ...).  The stream is dead from now on:
	 * watchers are stopped, queued output is discarded and stream_write fails with -EPIPE.
	 * Called at most once; on_eof is never called after it (on_error may still follow an
	 * on_eof, when a later write fails). */
	void (*on_error)(struct stream *s, const struct err *why, void *ud);
	/* The write queue became empty after having held bytes (use with stream_pending for
	 * backpressure: pause the source above a high-water mark, resume here). */
	void (*on_drain)(struct stream *s, void *ud);
};

/* Wrap `fd`.  Takes ownership of the fd in every case (it is closed on failure).  Sets
 * O_NONBLOCK and FD_CLOEXEC and starts reading at once (a stream without on_read never
 * reads: use that for write-only fds).  `cbs` is copied.  Returns NULL with `e` filled on
 * failure (bad fd). */
struct stream *stream_new(struct ev_loop *loop, int fd, const struct stream_cbs *cbs, void *ud,
                          struct err *e);

/* Stop the watchers, close the fd (if not stolen) and free everything, dropping queued
 * output.  NULL-safe.  No callback is invoked.  Safe from inside the stream's own callbacks:
 * the fd is closed at once and the memory freed when the callback returns. */
void stream_free(struct stream *s);

/* Queue n bytes for writing; never blocks.  When the queue is empty the bytes are first
 * tried directly (one write(2)), so small messages cost one syscall.  Returns 0, or -EPIPE
 * (with `e`) when the stream already failed, was shut down for writing, or its fd was
 * stolen.  A write error found here is reported asynchronously through on_error (from the
 * loop, never from inside stream_write), and 0 is returned. */
int stream_write(struct stream *s, const void *p, size_t n, struct err *e);

/* Direct access to the write queue, for encoders that append in place (e.g.
 * bridge_frame_append); call stream_flush() afterwards.  Only bytes after the current end
 * may be appended; do not consume from it. */
struct buf *stream_wbuf(struct stream *s);
/* Start flushing bytes appended through stream_wbuf (same semantics as stream_write). */
int stream_flush(struct stream *s, struct err *e);

/* True when stream_write / stream_flush would accept bytes now (not failed, no error
 * waiting to be reported, not shut down for writing, fd not stolen). */
bool stream_writable(const struct stream *s);

/* Bytes queued and not yet accepted by the kernel. */
size_t stream_pending(const struct stream *s);

/* Total bytes read from / written to the fd over the stream's life (for exactly-once
 * accounting across reconnects). */
uint64_t stream_bytes_in(const struct stream *s);
uint64_t stream_bytes_out(const struct stream *s);

/* The input buffer (bytes read and not consumed yet). */
struct buf *stream_input(struct stream *s);

/* Stop / restart reading.  Idempotent; no-op after EOF, error or steal. */
void stream_pause_read(struct stream *s);
void stream_resume_read(struct stream *s);
bool stream_read_paused(const struct stream *s);

/* Half-close: once the write queue has drained, shutdown(SHUT_WR) a socket, or close a
 * non-socket fd (pipe write end; a pty cannot be half-closed, its fd is closed too, which
 * also ends reading, without an on_eof).  Later stream_write calls fail with -EPIPE.
 * Idempotent. */
void stream_shutdown_write(struct stream *s);
/* True once the shutdown (requested by stream_shutdown_write) has actually happened. */
bool stream_write_closed(const struct stream *s);

/* True after on_eof / on_error respectively (also readable from inside those callbacks). */
bool stream_at_eof(const struct stream *s);
bool stream_failed(const struct stream *s);

/* The fd (or -1 once stolen / closed). */
int stream_fd(const struct stream *s);

/* Detach the fd: stop the watchers and hand the fd to the caller (still NONBLOCK and
 * CLOEXEC), or -1 if it was already closed.  Queued output and buffered input stay in the
 * stream (readable through stream_wbuf / stream_input) until stream_free.  After this the
 * stream does no I/O; stream_write fails with -EPIPE. */
int stream_steal_fd(struct stream *s);

#endif
