/* The server's connection half: listeners, the peer check, connections on common/stream,
 * frame dispatch by type and stream id, backpressure and the shutdown sequence.  Calls live
 * in server_call.c.
 *
 * Re-entrancy: every loop callback brackets itself with server_enter/server_leave.  A
 * connection that dies (peer EOF, I/O error, shutdown) has its calls cancelled and its fd
 * closed at once, but its memory is only released at the outermost server_leave, so frame
 * loops further up the stack may still look at it (they check `dead`); ttrpc_server_free
 * inside a callback is deferred the same way. */
#include "ttrpc/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "ttrpc/server_priv.h"

/* A refused connection is closed after answering its first request, or after this long. */
#define REFUSE_LINGER_S 10.0
/* Frames a refused peer sends are not buffered beyond this (larger ones are skipped). */
#define REFUSE_MAX_DATA (64u << 10)
/* After the grace period, queued answers get this long to reach the peers. */
#define SHUTDOWN_FLUSH_S 1.0
/* Retry accepting after running out of descriptors or memory. */
#define ACCEPT_RETRY_S 0.1

struct listener {
	struct listener *next;
	struct ttrpc_server *s;
	int fd;
	ev_io w;
	ev_timer retry;
	char *path;
	dev_t dev;
	ino_t ino;
};

static void conn_kill(struct conn *c, int code);
static void process_input(struct conn *c);

/* ---- server lifetime ---- */

struct ttrpc_server *ttrpc_server_new(struct ev_loop *loop, const struct ttrpc_server_opts *opts)
{
	struct ttrpc_server *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	if (opts)
		s->opts = *opts;
	if (s->opts.max_streams == 0)
		s->opts.max_streams = TTRPC_DEFAULT_MAX_STREAMS;
	if (s->opts.write_highwater == 0)
		s->opts.write_highwater = TTRPC_DEFAULT_HIGHWATER;
	s->euid = geteuid();
	ev_init(&s->grace, NULL);
	ev_init(&s->done_timer, NULL);
	return s;
}

static void listener_close(struct listener *l)
{
	struct ttrpc_server *s = l->s;
	ev_io_stop(s->loop, &l->w);
	ev_timer_stop(s->loop, &l->retry);
	close(l->fd);
	struct stat st;
	/* Unlink only our own socket: another server may have replaced it since. */
	if (l->path && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	free(l->path);
	free(l);
}

static void close_listeners(struct ttrpc_server *s)
{
	while (s->listeners) {
		struct listener *l = s->listeners;
		s->listeners = l->next;
		listener_close(l);
	}
}

static void conn_destroy(struct conn *c)
{
	ttrpc_idmap_fini(&c->calls);
	free(c->refuse_msg);
	free(c);
}

/* Detach every call without callbacks (for ttrpc_server_free). */
static void detach_calls(struct conn *c)
{
	size_t n;
	void **v = ttrpc_idmap_take_all(&c->calls, &n);
	for (size_t i = 0; i < n; i++) {
		struct ttrpc_call *call = v[i];
		if (call->timed)
			ev_timer_stop(call->loop, &call->deadline);
		call->c = NULL;
		call->cancelled = true;
	}
	free(v);
}

static void destroy(struct ttrpc_server *s)
{
	close_listeners(s);
	while (s->conns) {
		struct conn *c = s->conns;
		s->conns = c->next;
		detach_calls(c);
		ev_timer_stop(s->loop, &c->refuse_timer);
		stream_free(c->st);
		conn_destroy(c);
	}
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->dead_next;
		conn_destroy(c);
	}
	ev_timer_stop(s->loop, &s->grace);
	ev_timer_stop(s->loop, &s->done_timer);
	free(s->regs);
	free(s);
}

void server_enter(struct ttrpc_server *s)
{
	s->depth++;
}

void server_leave(struct ttrpc_server *s)
{
	if (--s->depth > 0)
		return;
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->dead_next;
		conn_destroy(c);
	}
	if (s->free_pending)
		destroy(s);
}

void ttrpc_server_free(struct ttrpc_server *s)
{
	if (!s || s->free_pending)
		return;
	s->free_pending = true;
	if (s->depth == 0)
		destroy(s);
}

void ttrpc_server_stats(const struct ttrpc_server *s, struct ttrpc_server_stats *out)
{
	*out = s->stats;
}

size_t ttrpc_server_connections(const struct ttrpc_server *s)
{
	size_t n = 0;
	for (const struct conn *c = s->conns; c; c = c->next)
		n++;
	return n;
}

size_t ttrpc_server_calls(const struct ttrpc_server *s)
{
	size_t n = 0;
	for (const struct conn *c = s->conns; c; c = c->next)
		n += c->calls.n;
	return n;
}

/* ---- registration ---- */

static bool method_ok(const struct ttrpc_method *m)
{
	return m->name && m->name[0] && m->handler && m->input && m->output &&
	       m->input->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC &&
	       m->output->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC &&
	       !(m->flags & ~(TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER));
}

static const struct reg *find_service(const struct ttrpc_server *s, const char *name)
{
	for (size_t i = 0; i < s->n_regs; i++)
		if (strcmp(s->regs[i].svc->name, name) == 0)
			return &s->regs[i];
	return NULL;
}

static const struct ttrpc_method *find_method(const struct ttrpc_service *svc, const char *name)
{
	for (size_t i = 0; i < svc->n_methods; i++)
		if (strcmp(svc->methods[i].name, name) == 0)
			return &svc->methods[i];
	return NULL;
}

int ttrpc_server_register(struct ttrpc_server *s, const struct ttrpc_service *svc, void *ud,
                          struct err *e)
{
	if (!svc->name || !svc->name[0])
		return err_set(e, -EINVAL, "ttrpc: service without a name");
	if (find_service(s, svc->name))
		return err_set(e, -EEXIST, "ttrpc: service %s registered twice", svc->name);
	for (size_t i = 0; i < svc->n_methods; i++) {
		const struct ttrpc_method *m = &svc->methods[i];
		if (!method_ok(m))
			return err_set(
			    e, -EINVAL,
			    "ttrpc: service %s: method #%zu (%s) needs a name, input and "
			    "output descriptors, a handler and known flags",
			    svc->name, i, m->name ? m->name : "?");
		if (find_method(svc, m->name) != m)
			return err_set(e, -EEXIST, "ttrpc: service %s: method %s listed twice",
			               svc->name, m->name);
	}
	s->regs = xrealloc(s->regs, (s->n_regs + 1) * sizeof(*s->regs));
	s->regs[s->n_regs++] = (struct reg){.svc = svc, .ud = ud};
	return 0;
}

/* ---- output ---- */

int conn_flush(struct conn *c, struct err *e)
{
	int r = stream_flush(c->st, e);
	if (r == 0 && stream_pending(c->st) > c->s->opts.write_highwater)
		stream_pause_read(c->st); /* resumed by on_drain */
	return r;
}

void conn_send_status(struct conn *c, uint32_t id, int code, const char *fmt, ...)
{
	if (c->dead || !stream_writable(c->st))
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct err e;
	/* A status alone always fits in a frame. */
	if (ttrpc_wire_put_response(stream_wbuf(c->st), id, code, msg, 0, NULL, NULL, &e) == 0)
		conn_flush(c, &e);
}

/* ---- connections ---- */

static void check_done(struct ttrpc_server *s)
{
	if (!s->shutting_down || s->conns || s->done_pending || s->free_pending)
		return;
	s->done_pending = true;
	ev_timer_stop(s->loop, &s->grace);
	ev_timer_start(s->loop, &s->done_timer);
}

static void unlink_conn(struct conn *c)
{
	struct ttrpc_server *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* The connection is over: cancel its calls with `code` (nothing can be answered), close the
 * fd, and release the memory now or at the outermost server_leave. */
static void conn_kill(struct conn *c, int code)
{
	if (c->dead)
		return;
	struct ttrpc_server *s = c->s;
	c->dead = true;
	unlink_conn(c);
	ev_timer_stop(s->loop, &c->refuse_timer);
	stream_free(c->st);
	c->st = NULL;
	/* One at a time: a cancel callback may end other calls of this connection. */
	struct ttrpc_call *call;
	uint32_t id;
	while ((call = ttrpc_idmap_any(&c->calls, &id)))
		call_cancel(call, code, false, NULL);
	if (s->depth > 0) {
		c->dead_next = s->dead;
		s->dead = c;
	} else {
		conn_destroy(c);
	}
	check_done(s);
}

/* Stop reading and close once everything queued has been written. */
static void conn_finish(struct conn *c)
{
	if (c->dead || c->finishing)
		return;
	c->finishing = true;
	stream_pause_read(c->st);
	if (stream_pending(c->st) == 0)
		conn_kill(c, TTRPC_CANCELLED);
}

void conn_call_gone(struct conn *c)
{
	if (!c->dead && c->s->shutting_down && c->calls.n == 0)
		conn_finish(c);
}

static void on_read(struct stream *st, struct buf *in, void *ud)
{
	(void)st;
	(void)in;
	struct conn *c = ud;
	struct ttrpc_server *s = c->s;
	server_enter(s);
	process_input(c);
	server_leave(s);
}

static void on_eof(struct stream *st, void *ud)
{
	(void)st;
	struct conn *c = ud;
	struct ttrpc_server *s = c->s;
	server_enter(s);
	conn_kill(c, TTRPC_CANCELLED);
	server_leave(s);
}

static void on_error(struct stream *st, const struct err *why, void *ud)
{
	(void)st;
	(void)why;
	on_eof(st, ud);
}

static void on_drain(struct stream *st, void *ud)
{
	(void)st;
	struct conn *c = ud;
	struct ttrpc_server *s = c->s;
	server_enter(s);
	if (c->finishing) {
		conn_kill(c, TTRPC_CANCELLED);
	} else if (!c->refused) {
		call_drain_all(c);
		if (!c->dead && !c->finishing && stream_read_paused(c->st)) {
			stream_resume_read(c->st);
			process_input(c); /* frames that arrived before the pause */
		}
	}
	server_leave(s);
}

static void on_refuse_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct conn *c = w->data;
	struct ttrpc_server *s = c->s;
	server_enter(s);
	conn_kill(c, TTRPC_CANCELLED);
	server_leave(s);
}

static bool peer_allowed(const struct ttrpc_server *s, const struct ucred *cr)
{
	if (s->opts.peer_allowed)
		return s->opts.peer_allowed(cr, s->opts.ud);
	return cr->uid == s->euid || cr->uid == 0;
}

static void refuse(struct conn *c)
{
	struct ttrpc_server *s = c->s;
	const struct ucred *cr = &c->cred;
	char why[256];
	if (s->opts.peer_allowed)
		snprintf(
		    why, sizeof(why),
		    "refused connection from pid=%d uid=%u gid=%u: not allowed by the server's "
		    "peer check",
		    (int)cr->pid, (unsigned)cr->uid, (unsigned)cr->gid);
	else
		snprintf(why, sizeof(why),
		         "refused connection from pid=%d uid=%u gid=%u: only uid %u (the server's) "
		         "and root may connect",
		         (int)cr->pid, (unsigned)cr->uid, (unsigned)cr->gid, (unsigned)s->euid);
	c->refused = true;
	c->refuse_msg = xasprintf("ttrpc: permission denied: %s", why);
	ttrpc_framer_init(&c->fr, REFUSE_MAX_DATA);
	ev_timer_init(&c->refuse_timer, on_refuse_timer, REFUSE_LINGER_S, 0.);
	c->refuse_timer.data = c;
	ev_timer_start(s->loop, &c->refuse_timer);
	s->stats.conns_refused++;
	if (s->opts.on_refused)
		s->opts.on_refused(s, cr, why, s->opts.ud);
	else
		log_warn("ttrpc: %s", why);
}

static int conn_new(struct ttrpc_server *s, int fd, struct err *e)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		err_sys(e, -errno, "ttrpc: SO_PEERCRED fd=%d", fd);
		close(fd);
		return e->code;
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	static const struct stream_cbs cbs = {
	    .on_read = on_read,
	    .on_eof = on_eof,
	    .on_error = on_error,
	    .on_drain = on_drain,
	};
	c->st = stream_new(s->loop, fd, &cbs, c, e);
	if (!c->st) {
		free(c);
		return err_prefix(e, "ttrpc");
	}
	c->s = s;
	c->cred = cr;
	ttrpc_idmap_init(&c->calls);
	ttrpc_framer_init(&c->fr, TTRPC_MAX_DATA);
	ev_init(&c->refuse_timer, NULL);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (s->shutting_down) {
		conn_finish(c);
		return 0;
	}
	if (!peer_allowed(s, &cr))
		refuse(c);
	else
		s->stats.conns_accepted++;
	return 0;
}

int ttrpc_server_serve_fd(struct ttrpc_server *s, int fd, struct err *e)
{
	if (fd < 0)
		return err_set(e, -EBADF, "ttrpc: bad fd %d", fd);
	server_enter(s);
	int r = conn_new(s, fd, e);
	server_leave(s);
	return r;
}

/* ---- frames ---- */

static void reject(struct conn *c, uint32_t id, int code, const char *msg)
{
	c->s->stats.calls_rejected++;
	conn_send_status(c, id, code, "%s", msg);
}

static void handle_request(struct conn *c, const struct ttrpc_frame *f)
{
	struct ttrpc_server *s = c->s;
	uint32_t id = f->h.stream_id;
	if (id <= c->last_id) {
		reject(c, id, TTRPC_INVALID_ARGUMENT,
		       "StreamID cannot be re-used and must increment");
		return;
	}
	c->last_id = id;
	if (s->shutting_down) {
		reject(c, id, TTRPC_UNAVAILABLE, "ttrpc: server shutting down");
		return;
	}
	if (c->calls.n >= s->opts.max_streams) {
		char msg[128];
		snprintf(msg, sizeof(msg),
		         "ttrpc: too many streams in flight on this connection (%u)",
		         s->opts.max_streams);
		reject(c, id, TTRPC_RESOURCE_EXHAUSTED, msg);
		return;
	}
	struct err e;
	err_clear(&e);
	char msg[ERR_MSG_MAX + 64];
	Ttrpc__Request *req = ttrpc_request_decode(f->data, f->h.length, &e);
	if (!req) {
		snprintf(msg, sizeof(msg), "unmarshal request error: %s", e.msg);
		reject(c, id, TTRPC_INVALID_ARGUMENT, msg);
		return;
	}
	const struct reg *r = find_service(s, req->service);
	const struct ttrpc_method *m = r ? find_method(r->svc, req->method) : NULL;
	if (!m) {
		snprintf(msg, sizeof(msg), r ? "method %s" : "service %s",
		         r ? req->method : req->service);
		reject(c, id, TTRPC_UNIMPLEMENTED, msg);
		ttrpc_msg_free(&req->base);
		return;
	}
	if (req->timeout_nano < 0) {
		reject(c, id, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
		ttrpc_msg_free(&req->base);
		return;
	}
	ProtobufCMessage *input = NULL;
	if (!(m->flags & TTRPC_STREAMING_CLIENT)) {
		input = ttrpc_msg_unpack(m->input, req->payload.data, req->payload.len, &e);
		if (!input) {
			snprintf(msg, sizeof(msg), "ttrpc: error unmarshalling payload: %s", e.msg);
			reject(c, id,
			       e.code == -EMSGSIZE ? TTRPC_RESOURCE_EXHAUSTED : TTRPC_INTERNAL,
			       msg);
			ttrpc_msg_free(&req->base);
			return;
		}
	}
	call_start(c, id, f->h.flags, r, m, req, input);
}

static void handle_frame(struct conn *c, const struct ttrpc_frame *f)
{
	uint32_t id = f->h.stream_id;
	if (c->refused) {
		if (f->h.type == TTRPC_MSG_REQUEST) {
			conn_send_status(c, id, TTRPC_PERMISSION_DENIED, "%s", c->refuse_msg);
			conn_finish(c);
		}
		return;
	}
	if (f->oversized) {
		char msg[128];
		snprintf(msg, sizeof(msg), "message length %u exceed maximum message size of %u",
		         f->h.length, TTRPC_MAX_DATA);
		struct ttrpc_call *call = ttrpc_idmap_get(&c->calls, id);
		if (call) {
			call_cancel(call, TTRPC_RESOURCE_EXHAUSTED, true, msg);
		} else {
			if (f->h.type == TTRPC_MSG_REQUEST && id > c->last_id)
				c->last_id = id;
			reject(c, id, TTRPC_RESOURCE_EXHAUSTED, msg);
		}
		return;
	}
	if (id % 2 != 1) {
		reject(c, id, TTRPC_INVALID_ARGUMENT,
		       "StreamID must be odd for client initiated streams");
		return;
	}
	if (f->h.type == TTRPC_MSG_REQUEST) {
		handle_request(c, f);
	} else if (f->h.type == TTRPC_MSG_DATA) {
		struct ttrpc_call *call = ttrpc_idmap_get(&c->calls, id);
		if (call)
			call_data(call, f);
		else
			conn_send_status(c, id, TTRPC_INVALID_ARGUMENT,
			                 "StreamID is no longer active");
	}
	/* Responses from a client and unknown types are ignored, for future compatibility. */
}

static void process_input(struct conn *c)
{
	struct ttrpc_server *s = c->s;
	while (!c->dead && !s->free_pending && !stream_read_paused(c->st)) {
		struct ttrpc_frame f;
		if (ttrpc_framer_next(&c->fr, stream_input(c->st), &f) == 0)
			break;
		handle_frame(c, &f);
	}
}

/* ---- listening ---- */

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct listener *l = w->data;
	struct ttrpc_server *s = l->s;
	server_enter(s);
	while (!s->free_pending && !s->shutting_down) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				/* Out of descriptors or memory: back off instead of spinning. */
				log_warn("ttrpc: accept on %s: %s", l->path ? l->path : "socket",
				         strerror(errno));
				ev_io_stop(loop, &l->w);
				ev_timer_start(loop, &l->retry);
			}
			break;
		}
		struct err e;
		if (conn_new(s, fd, &e) < 0)
			log_warn("%s", e.msg);
	}
	server_leave(s);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct listener *l = w->data;
	ev_io_start(loop, &l->w);
}

int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "ttrpc: socket path `%.80s` empty or too long",
		               path);
	if (s->shutting_down)
		return err_set(e, -ESHUTDOWN, "ttrpc: server shutting down");
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, -EEXIST, "ttrpc: %s exists and is not a socket", path);
		unlink(path); /* stale socket of an earlier server */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, -errno, "ttrpc: socket");
	/* The socket file takes the socket inode's mode (less the umask) at bind: set 0600
	 * first, so there is no moment when others could connect. */
	if (fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0 || stat(path, &st) < 0) {
		err_sys(e, -errno, "ttrpc: listen on %s", path);
		close(fd);
		return e->code;
	}
	if ((st.st_mode & 0777) != 0600 && chmod(path, 0600) < 0) {
		err_sys(e, -errno, "ttrpc: chmod 0600 %s", path);
		close(fd);
		unlink(path);
		return e->code;
	}
	struct listener *l = xcalloc(1, sizeof(*l));
	l->s = s;
	l->fd = fd;
	l->path = xstrdup(path);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	ev_io_init(&l->w, on_accept, fd, EV_READ);
	l->w.data = l;
	ev_timer_init(&l->retry, on_accept_retry, ACCEPT_RETRY_S, 0.);
	l->retry.data = l;
	ev_io_start(s->loop, &l->w);
	l->next = s->listeners;
	s->listeners = l;
	return 0;
}

/* ---- shutdown ---- */

static void on_done_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ttrpc_server *s = w->data;
	server_enter(s);
	if (s->done && !s->free_pending)
		s->done(s, s->done_ud);
	server_leave(s);
}

static void cancel_all_calls(struct ttrpc_server *s)
{
	/* Call by call, rescanning: cancel callbacks may end other calls or connections. */
	for (;;) {
		struct conn *c = s->conns;
		while (c && c->calls.n == 0)
			c = c->next;
		if (!c)
			break;
		uint32_t id;
		struct ttrpc_call *call = ttrpc_idmap_any(&c->calls, &id);
		call_cancel(call, TTRPC_UNAVAILABLE, true, "ttrpc: server shutting down");
	}
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next; /* finishing a connection without calls runs no callback */
		conn_finish(c);
	}
}

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ttrpc_server *s = w->data;
	server_enter(s);
	if (ttrpc_server_calls(s) > 0) {
		/* Phase 1: cancel what is left; give the answers a moment to be written. */
		cancel_all_calls(s);
		ev_timer_set(&s->grace, SHUTDOWN_FLUSH_S, 0.);
		ev_timer_start(s->loop, &s->grace);
	} else {
		/* Phase 2: peers that do not read their answers are cut off. */
		while (s->conns)
			conn_kill(s->conns, TTRPC_UNAVAILABLE);
	}
	check_done(s);
	server_leave(s);
}

void ttrpc_server_shutdown(struct ttrpc_server *s, double grace_s,
                           void (*done)(struct ttrpc_server *s, void *ud), void *ud)
{
	if (s->shutting_down || s->free_pending)
		return;
	server_enter(s);
	s->shutting_down = true;
	s->done = done;
	s->done_ud = ud;
	close_listeners(s);
	ev_timer_init(&s->done_timer, on_done_timer, 0., 0.);
	s->done_timer.data = s;
	ev_timer_init(&s->grace, on_grace, grace_s > 0 ? grace_s : 0., 0.);
	s->grace.data = s;
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->calls.n == 0)
			conn_finish(c);
	}
	if (s->conns) {
		if (grace_s > 0)
			ev_timer_start(s->loop, &s->grace);
		else
			on_grace(s->loop, &s->grace, 0);
	}
	check_done(s);
	server_leave(s);
}
