/* Buffered libev stream.  Two ev_io watchers share one fd: the read watcher runs while
 * reading is wanted (not paused, no EOF/error), the write watcher only while the queue holds
 * bytes.  Errors found outside a watcher callback (inside stream_write or
 * stream_shutdown_write) are parked in `werr` and delivered from the loop by feeding the
 * write watcher, so user callbacks only ever run from the loop.  `depth` counts active
 * watcher callbacks; stream_free inside one closes the fd at once and leaves the memory to
 * be released when the outermost callback returns. */
#include "common/stream.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/xalloc.h"

#define READ_CHUNK (64u * 1024u)

struct stream {
	struct ev_loop *loop;
	int fd;
	ev_io rio;
	ev_io wio;
	struct stream_cbs cbs;
	void *ud;
	struct buf in;
	struct buf out;
	uint64_t nin;
	uint64_t nout;
	bool is_sock;
	bool is_tty;
	bool paused;
	bool eof;
	bool failed;
	bool stolen;
	bool shut_req;
	bool shut_done;
	bool werr_pending;
	bool free_pending;
	int depth;
	struct err werr;
};

static void destroy(struct stream *s)
{
	buf_fini(&s->in);
	buf_fini(&s->out);
	free(s);
}

static void stop_watchers(struct stream *s)
{
	ev_io_stop(s->loop, &s->rio);
	ev_io_stop(s->loop, &s->wio);
}

static void close_fd(struct stream *s)
{
	stop_watchers(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static bool can_read(const struct stream *s)
{
	return s->fd >= 0 && s->cbs.on_read && !s->paused && !s->eof && !s->failed &&
	       !s->free_pending;
}

static bool can_write(const struct stream *s)
{
	return s->fd >= 0 && !s->failed && !s->werr_pending && !s->shut_req && !s->free_pending;
}

static void update_read(struct stream *s)
{
	if (can_read(s))
		ev_io_start(s->loop, &s->rio);
	else
		ev_io_stop(s->loop, &s->rio);
}

static void enter(struct stream *s)
{
	s->depth++;
}

static void leave(struct stream *s)
{
	if (--s->depth == 0 && s->free_pending)
		destroy(s);
}

/* Mark the stream dead and tell the user.  Only called from watcher callbacks. */
static void fail(struct stream *s, const struct err *why)
{
	if (s->failed || s->free_pending)
		return;
	s->failed = true;
	stop_watchers(s);
	buf_reset(&s->out);
	if (s->cbs.on_error)
		s->cbs.on_error(s, why, s->ud);
}

/* Report an error later, from the loop (see the file comment). */
static void defer_fail(struct stream *s, const struct err *why)
{
	if (s->werr_pending || s->failed)
		return;
	s->werr = *why;
	s->werr_pending = true;
	ev_feed_event(s->loop, &s->wio, EV_WRITE);
}

static int do_shutdown(struct stream *s, struct err *e)
{
	s->shut_done = true;
	if (!s->is_sock) {
		close_fd(s);
		return 0;
	}
	if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return err_sys(e, -errno, "shutdown fd=%d", s->fd);
	return 0;
}

/* Write as much of the queue as the kernel takes.  Returns 1 when the queue is empty, 0 when
 * bytes remain (the write watcher is then running), or a negative errno with `e`. */
static int flush_some(struct stream *s, struct err *e)
{
	while (buf_avail(&s->out) > 0) {
		ssize_t r = fd_write(s->fd, buf_head(&s->out), buf_avail(&s->out), e);
		if (r == IO_AGAIN) {
			ev_io_start(s->loop, &s->wio);
			return 0;
		}
		if (r < 0)
			return (int)r;
		buf_consume(&s->out, (size_t)r);
		s->nout += (uint64_t)r;
	}
	ev_io_stop(s->loop, &s->wio);
	if (s->shut_req && !s->shut_done) {
		int r = do_shutdown(s, e);
		if (r < 0)
			return r;
	}
	return 1;
}

static void on_wio(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct stream *s = w->data;
	enter(s);
	if (s->werr_pending) {
		s->werr_pending = false;
		fail(s, &s->werr);
	} else if (s->fd >= 0 && !s->failed) {
		struct err e;
		err_clear(&e);
		int r = flush_some(s, &e);
		if (r < 0)
			fail(s, &e);
		else if (r == 1 && s->cbs.on_drain && !s->free_pending)
			s->cbs.on_drain(s, s->ud);
	}
	leave(s);
}

static void on_rio(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct stream *s = w->data;
	struct err e;
	err_clear(&e);
	enter(s);
	uint8_t *p = buf_reserve(&s->in, READ_CHUNK);
	ssize_t r = fd_read(s->fd, p, READ_CHUNK, &e);
	if (r == IO_AGAIN) {
		/* spurious wakeup */
	} else if (r == IO_EOF || (r == -EIO && s->is_tty)) {
		s->eof = true;
		update_read(s);
		if (s->cbs.on_eof)
			s->cbs.on_eof(s, s->ud);
	} else if (r < 0) {
		fail(s, &e);
	} else {
		buf_commit(&s->in, (size_t)r);
		s->nin += (uint64_t)r;
		s->cbs.on_read(s, &s->in, s->ud);
	}
	leave(s);
}

struct stream *stream_new(struct ev_loop *loop, int fd, const struct stream_cbs *cbs, void *ud,
                          struct err *e)
{
	struct stat st;
	if (fd < 0)
		return err_set(e, -EBADF, "stream: bad fd %d", fd), NULL;
	if (fd_set_flags(fd, true, e) < 0) {
		err_prefix(e, "stream");
		close(fd);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		err_sys(e, -errno, "stream: fstat fd=%d", fd);
		close(fd);
		return NULL;
	}
	struct stream *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->fd = fd;
	if (cbs)
		s->cbs = *cbs;
	s->ud = ud;
	s->is_sock = S_ISSOCK(st.st_mode);
	s->is_tty = !s->is_sock && isatty(fd);
	buf_init(&s->in);
	buf_init(&s->out);
	err_clear(&s->werr);
	ev_io_init(&s->rio, on_rio, fd, EV_READ);
	ev_io_init(&s->wio, on_wio, fd, EV_WRITE);
	s->rio.data = s;
	s->wio.data = s;
	update_read(s);
	return s;
}

void stream_free(struct stream *s)
{
	if (!s || s->free_pending)
		return;
	close_fd(s);
	if (s->depth > 0) {
		s->free_pending = true;
		return;
	}
	destroy(s);
}

int stream_flush(struct stream *s, struct err *e)
{
	if (!can_write(s))
		return err_set(e, -EPIPE, "stream fd=%d: not writable", s->fd);
	if (ev_is_active(&s->wio))
		return 0; /* the watcher will get to the new bytes */
	struct err we;
	err_clear(&we);
	int r = flush_some(s, &we);
	if (r < 0)
		defer_fail(s, &we);
	return 0;
}

int stream_write(struct stream *s, const void *p, size_t n, struct err *e)
{
	if (!can_write(s))
		return err_set(e, -EPIPE, "stream fd=%d: not writable", s->fd);
	if (n == 0)
		return 0;
	if (buf_avail(&s->out) == 0) {
		/* Fast path: try the kernel first, queue only the rest. */
		struct err we;
		err_clear(&we);
		ssize_t r = fd_write(s->fd, p, n, &we);
		if (r < 0 && r != IO_AGAIN) {
			defer_fail(s, &we);
			return 0;
		}
		if (r > 0) {
			s->nout += (uint64_t)r;
			p = (const uint8_t *)p + r;
			n -= (size_t)r;
		}
		if (n == 0)
			return 0;
		buf_append(&s->out, p, n);
		ev_io_start(s->loop, &s->wio);
		return 0;
	}
	buf_append(&s->out, p, n);
	return stream_flush(s, e);
}

struct buf *stream_wbuf(struct stream *s)
{
	return &s->out;
}

bool stream_writable(const struct stream *s)
{
	return can_write(s);
}

size_t stream_pending(const struct stream *s)
{
	return buf_avail(&s->out);
}

uint64_t stream_bytes_in(const struct stream *s)
{
	return s->nin;
}

uint64_t stream_bytes_out(const struct stream *s)
{
	return s->nout;
}

struct buf *stream_input(struct stream *s)
{
	return &s->in;
}

void stream_pause_read(struct stream *s)
{
	s->paused = true;
	update_read(s);
}

void stream_resume_read(struct stream *s)
{
	s->paused = false;
	update_read(s);
}

bool stream_read_paused(const struct stream *s)
{
	return s->paused;
}

void stream_shutdown_write(struct stream *s)
{
	if (s->shut_req || s->fd < 0 || s->failed || s->free_pending)
		return;
	s->shut_req = true;
	if (buf_avail(&s->out) == 0 && !s->werr_pending) {
		struct err e;
		err_clear(&e);
		if (do_shutdown(s, &e) < 0)
			defer_fail(s, &e);
	}
	/* otherwise flush_some shuts down once the queue is empty */
}

bool stream_write_closed(const struct stream *s)
{
	return s->shut_done;
}

bool stream_at_eof(const struct stream *s)
{
	return s->eof;
}

bool stream_failed(const struct stream *s)
{
	return s->failed || s->werr_pending;
}

int stream_fd(const struct stream *s)
{
	return s->fd;
}

int stream_steal_fd(struct stream *s)
{
	stop_watchers(s);
	s->stolen = true;
	s->werr_pending = false;
	return steal_fd(&s->fd);
}
